// A 2026-07-28 client of the TypeScript SDK v2 (@modelcontextprotocol/client 2.4.0) on its
// stdio transport, for `mcpctl serve --stdio`: it launches the command itself.
//
// Usage: node stdio_modern_client.mjs NODE_MODULES SPEC
//   SPEC is JSON: {"command": PATH, "args": [...], "cwd": DIR, "env": {...},
//   "calls": [[TOOL, {args}], ...], "listen": TOOL}
// The client is pinned to 2026-07-28 (no initialize), declares elicitation and answers every
// question {"name": "Ada"}. It sends server/discover, lists tools, makes each call; with
// "listen" it opens subscriptions/listen for tool list changes, calls TOOL (which changes the
// list) and counts the notifications that arrive within 20 s.
// Prints one JSON line: {"era", "protocol", "discover", "tools": [names], "results": [...],
// "asked": [messages], "honored", "changed"}; a call that failed holds {"error": {"code",
// "message"}}. Exit 1 (message on stderr) on any other failure.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [modules, specArg] = process.argv.slice(2);
const spec = JSON.parse(specArg);
const load = (p) => import(pathToFileURL(join(modules, p)).href);
const { Client } = await load('@modelcontextprotocol/client/dist/index.mjs');
const { StdioClientTransport } = await load('@modelcontextprotocol/client/dist/stdio.mjs');

const timer = setTimeout(() => {
  console.error('timed out after 60 s');
  process.exit(1);
}, 60_000);

const asked = [];
const client = new Client(
  { name: 'mcpctl-stdio-test', version: '1.0.0' },
  { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: {} } },
);
client.setRequestHandler('elicitation/create', (req) => {
  asked.push(req.params?.message ?? null);
  return { action: 'accept', content: { name: 'Ada' } };
});
const transport = new StdioClientTransport({
  command: spec.command,
  args: spec.args,
  cwd: spec.cwd,
  env: spec.env,
  stderr: 'inherit',
});
try {
  await client.connect(transport);
  const out = { era: client.getProtocolEra(), protocol: client.getNegotiatedProtocolVersion() };
  out.discover = await client.discover();
  out.tools = (await client.listTools()).tools.map((t) => t.name);
  out.results = [];
  for (const [name, args] of spec.calls ?? []) {
    try {
      out.results.push(await client.callTool({ name, arguments: args }));
    } catch (e) {
      out.results.push({ error: { code: typeof e?.code === 'number' ? e.code : null, message: String(e?.message ?? e) } });
    }
  }
  out.asked = asked;
  if (spec.listen) {
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      changed += 1;
    });
    const sub = await client.listen({ toolsListChanged: true });
    out.honored = sub.honoredFilter;
    await client.callTool({ name: spec.listen, arguments: {} });
    const t0 = Date.now();
    while (changed === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    out.changed = changed;
    await sub.close();
  }
  console.log(JSON.stringify(out));
  await client.close();
  clearTimeout(timer);
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exit(1);
}
