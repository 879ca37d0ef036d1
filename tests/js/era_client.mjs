// One cell-row of tests/era_matrix.rs: a real client connects to the gateway once and runs
// every feature against each child behind the URL, then prints one JSON report.
//
// Usage: node era_client.mjs NODE_MODULES SDK URL ERA TARGETS
//   NODE_MODULES  the folder holding the SDKs (.deps/npm/node_modules)
//   SDK           "v2" (@modelcontextprotocol/client 2.4.0) or "v1" (@modelcontextprotocol/sdk
//                 1.32, which speaks the session era only)
//   ERA           "modern" (v2 pinned to 2026-07-28) or "legacy" (initialize + session)
//   TARGETS       children behind URL as NAME=PREFIX, comma-separated: "leg=leg__,mod=mod__"
//                 on /mcp, "leg=" on /mcp/leg
// The client declares elicitation and answers every question {"name": "Ada"}; with
// MCPCTL_NO_ELICIT=1 it declares no elicitation (and has no handler for it), and only
// calls `ask` (the report's targets then hold `elicit` alone).
// Prints {"sdk", "era", "protocol", "tools": [names], "targets": {NAME: {echo, progress:
// {count, text}, cancel: {aborted, progress_before, status}, resources: [uris], read,
// prompts: [names], prompt, elicit, asked}}}; a feature that failed holds {"error": {"code", "message"}}.
// With MCPCTL_GATE=1 the question to the legacy child `leg` waits: the driver prints
// "ready" and asks only after a line on stdin. The gateway can route a stdio child's own
// request (elicitation/create) only while one client session has requests in flight to it,
// so the test lets these questions out one at a time.
// Exit 1 (message on stderr) when the client cannot connect at all.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [modules, which, url, era, targetsArg] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(join(modules, p)).href);

// A watchdog: 90 s for each half (before the gate, and after it).
const watchdog = () =>
  setTimeout(() => {
    console.error('timed out after 90 s');
    process.exit(1);
  }, 90_000);
let timer = watchdog();

let client;
let protocol = () => null;
const asked = [];
const elicit = process.env.MCPCTL_NO_ELICIT !== '1';
const capabilities = elicit ? { elicitation: {} } : {};
const answer = (params) => {
  asked.push(params?.message ?? null);
  return { action: 'accept', content: { name: 'Ada' } };
};
if (which === 'v2') {
  const { Client, StreamableHTTPClientTransport } = await load('@modelcontextprotocol/client/dist/index.mjs');
  const versionNegotiation = { mode: era === 'modern' ? { pin: '2026-07-28' } : 'legacy' };
  client = new Client({ name: 'era-matrix-v2', version: '1.0.0' }, { versionNegotiation, capabilities });
  if (elicit) client.setRequestHandler('elicitation/create', (req) => answer(req.params));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  protocol = () => client.getNegotiatedProtocolVersion();
} else {
  const { Client } = await load('@modelcontextprotocol/sdk/dist/esm/client/index.js');
  const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js');
  const { ElicitRequestSchema } = await load('@modelcontextprotocol/sdk/dist/esm/types.js');
  const v1caps = elicit ? { elicitation: { form: {} } } : {};
  client = new Client({ name: 'era-matrix-v1', version: '1.0.0' }, { capabilities: v1caps });
  if (elicit) client.setRequestHandler(ElicitRequestSchema, (req) => answer(req.params));
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  protocol = () => transport.protocolVersion ?? null;
}

const call = (name, args, options) =>
  which === 'v2' ? client.callTool({ name, arguments: args }, options) : client.callTool({ name, arguments: args }, undefined, options);
const textOf = (r) => r?.content?.find?.((c) => c.type === 'text')?.text ?? null;
const failure = (e) => ({ error: { code: typeof e?.code === 'number' ? e.code : null, message: String(e?.message ?? e) } });
async function feature(f) {
  try {
    return await f();
  } catch (e) {
    return failure(e);
  }
}
// The next line on stdin (the test's go-ahead).
function nextLine() {
  return new Promise((resolve) => {
    let seen = '';
    const on = (chunk) => {
      seen += chunk;
      if (seen.includes('\n')) {
        process.stdin.off('data', on);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', on);
    process.stdin.on('end', () => resolve());
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const run = Math.random().toString(16).slice(2, 10);

async function cancel(prefix) {
  const tag = `cancel-${which}-${era}-${run}-${prefix || 'one'}`;
  const ctl = new AbortController();
  let seen = 0;
  // Abort once the call is known to run at the child (its first progress), or after 10 s.
  const fallback = setTimeout(() => ctl.abort(), 10000);
  let aborted = null;
  try {
    const r = await call(`${prefix}slow`, { ms: 20000, tag }, {
      signal: ctl.signal,
      timeout: 30000,
      onprogress: () => {
        seen += 1;
        if (seen === 1) ctl.abort();
      }
    });
    aborted = { completed: textOf(r) };
  } catch (e) {
    aborted = ctl.signal.aborted ? 'aborted' : failure(e);
  }
  clearTimeout(fallback);
  // What the child saw: poll its state (bounded).
  let status = null;
  for (let i = 0; i < 50; i++) {
    status = textOf(await call(`${prefix}status`, { tag }));
    if (status !== 'running') break;
    await sleep(100);
  }
  return { aborted, progress_before: seen, status };
}

const out = { sdk: which, era, protocol: protocol() };
try {
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  out.targets = {};
  const gated = [];
  for (const pair of targetsArg.split(',')) {
    const [name, prefix] = pair.split('=');
    const t = {};
    const ask = async () => {
      const before = asked.length;
      t.elicit = await feature(async () => {
        const r = await call(`${prefix}ask`, { what: 'deploy' });
        return r.isError ? { isError: textOf(r) } : textOf(r);
      });
      if (elicit) t.asked = asked.slice(before);
    };
    out.targets[name] = t;
    if (name === 'leg' && process.env.MCPCTL_GATE === '1') gated.push(ask);
    else if (!elicit) await ask();
    if (!elicit) continue; // only the question matters: what a client that cannot be asked gets
    t.echo = await feature(async () => textOf(await call(`${prefix}echo`, { text: 'hi' })));
    t.progress = await feature(async () => {
      let count = 0;
      const r = await call(`${prefix}slow`, { ms: 300, tag: `progress-${run}` }, { onprogress: () => (count += 1) });
      return { count, text: textOf(r) };
    });
    t.cancel = await feature(() => cancel(prefix));
    t.resources = await feature(async () => (await client.listResources()).resources.map((r) => r.uri).sort());
    t.read = await feature(async () => (await client.readResource({ uri: `era://${name}/info` })).contents[0].text);
    t.prompts = await feature(async () => (await client.listPrompts()).prompts.map((p) => p.name).sort());
    t.prompt = await feature(
      async () => (await client.getPrompt({ name: `${prefix}greet`, arguments: { name: 'Ada' } })).messages[0].content.text
    );
    if (!gated.includes(ask)) await ask();
  }
  if (gated.length > 0) {
    console.log('ready');
    clearTimeout(timer);
    await nextLine();
    timer = watchdog();
    for (const ask of gated) await ask();
  }
  out.protocol = protocol();
  console.log(JSON.stringify(out));
  await client.close();
  clearTimeout(timer);
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exit(1);
}
