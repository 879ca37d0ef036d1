// A client of the TypeScript SDK v2 (@modelcontextprotocol/client 2.4.0) for the gateway's
// 2026-07-28 tests.
//
// Usage: node modern_client.mjs NODE_MODULES URL MODE list-tools|call [TOOL JSONARGS]
//   NODE_MODULES  the folder holding @modelcontextprotocol/client (.deps/npm/node_modules)
//   MODE          "2026-07-28" (pinned), "auto" or "legacy"
// Prints one JSON line: {"era", "protocol", "tools": [names]} or {"era", "protocol",
// "result"} or {"era", "protocol", "error": {"code", "message"}} when the call is refused.
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
const client = new Client({ name: 'mcpctl-test', version: '1.0.0' }, { versionNegotiation });
try {
  await client.connect(transport);
  const out = { era: client.getProtocolEra(), protocol: client.getNegotiatedProtocolVersion() };
  if (command === 'list-tools') {
    const r = await client.listTools();
    out.tools = r.tools.map((t) => t.name);
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
