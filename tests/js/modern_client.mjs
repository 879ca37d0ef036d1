// A client of the TypeScript SDK v2 (@modelcontextprotocol/client 2.4.0) for the gateway's
// 2026-07-28 tests.
//
// Usage: node modern_client.mjs NODE_MODULES URL MODE list-tools|call|listen [TOOL JSONARGS]
//   NODE_MODULES  the folder holding @modelcontextprotocol/client (.deps/npm/node_modules)
//   MODE          "2026-07-28" (pinned), "auto" or "legacy"
// Prints one JSON line: {"era", "protocol", "tools": [names]} or {"era", "protocol",
// "result"} or {"era", "protocol", "error": {"code", "message"}} when the call is refused,
// or for listen {"era", "protocol", "honored": filter, "changed": count, "closed": how}.
// MCPCTL_ANSWER, when set, makes the client declare elicitation and answer {"answer": it}.
// Exit 1 (message on stderr) on any other failure. MCPCTL_TOKEN, when set, is sent as the
// bearer token.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [modules, url, mode, command, tool, jsonargs] = process.argv.slice(2);
const sdk = await import(pathToFileURL(join(modules, '@modelcontextprotocol/client/dist/index.mjs')).href);
const { Client, StreamableHTTPClientTransport } = sdk;

const timer = setTimeout(() => {
  console.error('timed out after 60 s');
  process.exit(1);
}, 60_000);

const headers = process.env.MCPCTL_TOKEN ? { Authorization: `Bearer ${process.env.MCPCTL_TOKEN}` } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const versionNegotiation = { mode: mode === '2026-07-28' ? { pin: mode } : mode };
const answer = process.env.MCPCTL_ANSWER;
const capabilities = answer === undefined ? {} : { elicitation: {} };
const client = new Client({ name: 'mcpctl-test', version: '1.0.0' }, { versionNegotiation, capabilities });
if (answer !== undefined) {
  client.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { answer } }));
}
try {
  await client.connect(transport);
  const out = { era: client.getProtocolEra(), protocol: client.getNegotiatedProtocolVersion() };
  if (command === 'list-tools') {
    const r = await client.listTools();
    out.tools = r.tools.map((t) => t.name);
  } else if (command === 'listen') {
    // Open subscriptions/listen for tool list changes, call TOOL (which changes the list),
    // and count the notifications that arrive within 20 s.
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      changed += 1;
    });
    const sub = await client.listen({ toolsListChanged: true, promptsListChanged: true });
    out.honored = sub.honoredFilter;
    await client.callTool({ name: tool, arguments: {} });
    const t0 = Date.now();
    while (changed === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    out.changed = changed;
    await sub.close();
    out.closed = await sub.closed;
  } else {
    try {
      out.result = await client.callTool({ name: tool, arguments: JSON.parse(jsonargs ?? '{}') });
    } catch (e) {
      if (typeof e?.code !== 'number') throw e;
      out.error = { code: e.code, message: e.message };
    }
  }
  console.log(JSON.stringify(out));
  await client.close();
  clearTimeout(timer);
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exit(1);
}
