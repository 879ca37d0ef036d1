//! A bounded, fixed-seed mutation fuzz of the gateway over raw sockets: its HTTP/1.1
//! request parser (request line, headers, Content-Length / chunked framing, pipelining) and
//! its JSON-RPC dispatch (`/mcp`, `/mcp/<server>`, `/cli/call`), against a real daemon with
//! the fixture server as its child (one without a token, one with). Every connection must
//! get well-formed HTTP/1.1 answers or a close within a deadline, with no 5xx but the
//! documented 503 (caps) and 505 (version), no smuggled request and no answer of another
//! connection; afterwards the daemon must be alive, serve a normal session and have logged
//! no panic.
//!
//! `make test` runs a few thousand cases from a fixed seed; `make fuzz` runs longer
//! (`MCPCTL_FUZZ_SEED`, `MCPCTL_FUZZ_ITERS`, `MCPCTL_FUZZ_JOBS` parallel connections);
//! `MCPCTL_FUZZ_ONLY=<iteration>` replays one case of a seed and prints its bytes.

use crate::support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// The seed of the bounded run in `make test`.
const DEFAULT_SEED: u64 = 0x6d63_7063_746c_0009;
const DEFAULT_ITERS: u64 = 2500;
/// Request ids of the cases start here (id = this + iteration).
const CASE_IDS: u64 = 1_000_000_000;
/// How long one connection may take to be answered or closed (the daemon runs with a 1 s
/// head timeout and a 2 s I/O timeout, and the fixture server with a 5 s call timeout).
const ANSWER_DEADLINE: Duration = Duration::from_secs(12);
/// No case sends more than this (long lines and big heads included).
const MAX_SENT: usize = 96 * 1024;
/// Nor reads more than this.
const MAX_READ: usize = 4 * 1024 * 1024;

// ---- a small PRNG (SplitMix64): no crate, the same sequence everywhere ----

struct Rng(u64);

impl Rng {
    /// The generator of one iteration: cases are independent of each other and of the
    /// order the workers run them in, so one can be replayed alone.
    fn for_case(seed: u64, iter: u64) -> Rng {
        let mut r = Rng(seed ^ iter.wrapping_mul(0xa076_1d64_78bd_642f));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `num` in `den`.
    fn one_in(&mut self, den: usize) -> bool {
        self.below(den) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---- the corpus: valid requests, as parts that the mutations work on ----

#[derive(Clone)]
struct Req {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
}

#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// `Content-Length` (none for an empty body of a GET).
    Length,
    /// `Transfer-Encoding: chunked`, the body cut into chunks of at most this many bytes.
    Chunked(usize),
    /// The framing headers were written by a mutation: add none.
    Manual,
}

/// What the cases fill in: the daemon's port and the sessions they may use.
struct Ctx {
    port: u16,
    /// A session on `/mcp/fx` and one on `/mcp` (the aggregated endpoint).
    sid_one: String,
    sid_all: String,
    /// The daemon's bearer token, when it has one (every request but the mutated ones
    /// carries it).
    token: Option<String>,
}

/// The Authorization header a request to this daemon needs, if any.
fn with_token(r: Req, token: Option<&str>) -> Req {
    match token {
        Some(t) => r.header("Authorization", &format!("Bearer {t}")),
        None => r,
    }
}

impl Req {
    fn new(method: &str, target: &str) -> Req {
        Req {
            method: method.into(),
            target: target.into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "127.0.0.1".into())],
            body: Vec::new(),
            framing: Framing::Length,
        }
    }
    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn mcp(target: &str, sid: Option<&str>, msg: &Value) -> Req {
        let mut r = Req::new("POST", target)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        if let Some(s) = sid {
            r = r.header("Mcp-Session-Id", s);
        }
        r.body = msg.to_string().into_bytes();
        r
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match self.framing {
            Framing::Length if !self.body.is_empty() || self.method == "POST" => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
            }
            Framing::Chunked(n) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for c in self.body.chunks(n.max(1)) {
                    out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            _ => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&self.body);
            }
        }
        out
    }
}

fn rpc(id: Value, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn init_msg() -> Value {
    rpc(
        json!(0),
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}),
    )
}

/// Tools of the fixture a case may call: each answers at once (no `hang`, `sleep`, `crash`,
/// `big`, no request back to the client).
const SAFE_TOOLS: &[&str] =
    &["echo", "add", "echo_string", "types", "fail", "structured", "image", "resource", "log_then_echo", "garbage"];

const TEMPLATES: &[&str] = &[
    "initialize-one",
    "initialize-all",
    "tools/list",
    "tools/call",
    "tools/call-all",
    "ping",
    "initialized",
    "cancelled",
    "response",
    "get-stream",
    "delete",
    "health",
    "status",
    "cli/call",
    "aggregated-misc",
    "head-health",
];

/// Template `t` with the shared sessions (`fresh`: a session made for this case alone).
fn template(t: usize, iter: u64, ctx: &Ctx, fresh: Option<&str>, rng: &mut Rng) -> Req {
    let one = Some(ctx.sid_one.as_str());
    let all = Some(ctx.sid_all.as_str());
    // Ids and texts of this case alone: an answer meant for another connection shows.
    let id = json!(CASE_IDS + iter);
    let text = format!("case-{iter}");
    let r = match TEMPLATES[t] {
        "initialize-one" => Req::mcp("/mcp/fx", None, &init_msg()),
        "initialize-all" => Req::mcp("/mcp", None, &init_msg()),
        "tools/list" => Req::mcp("/mcp/fx", one, &rpc(id, "tools/list", json!({}))),
        "tools/call" => {
            let tool = *rng.pick(SAFE_TOOLS);
            Req::mcp("/mcp/fx", one, &rpc(id, "tools/call", json!({"name": tool, "arguments": {"text": text}})))
        }
        "tools/call-all" => {
            let tool = format!("fx__{}", rng.pick(SAFE_TOOLS));
            Req::mcp(
                "/mcp",
                all,
                &rpc(id, "tools/call", json!({"name": tool, "arguments": {"text": text, "a": 1, "b": 2}})),
            )
        }
        "ping" => Req::mcp("/mcp/fx", one, &json!({"jsonrpc": "2.0", "id": id, "method": "ping"})),
        "initialized" => Req::mcp("/mcp/fx", one, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        "cancelled" => Req::mcp(
            "/mcp/fx",
            one,
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "x"}}),
        ),
        "response" => Req::mcp("/mcp/fx", one, &json!({"jsonrpc": "2.0", "id": "g-1", "result": {}})),
        "get-stream" => {
            Req::new("GET", "/mcp/fx").header("Accept", "text/event-stream").header("Mcp-Session-Id", &ctx.sid_one)
        }
        "delete" => Req::new("DELETE", "/mcp/fx").header("Mcp-Session-Id", fresh.unwrap_or(&ctx.sid_one)),
        "health" => Req::new("GET", "/health"),
        "status" => Req::new("GET", "/status"),
        "cli/call" => {
            let mut r = Req::new("POST", "/cli/call").header("Content-Type", "application/json");
            let args = match rng.below(3) {
                0 => json!([{"kind": "pair", "name": "text", "value": text}]),
                1 => json!([{"kind": "var", "text": format!("text={text}")}]),
                _ => json!([{"kind": "json", "text": json!({"text": text}).to_string()}]),
            };
            r.body = json!({"v": 1, "server": "fx", "tool": "echo", "args": args}).to_string().into_bytes();
            r
        }
        "aggregated-misc" => {
            let (m, p) = rng
                .pick(&[
                    ("prompts/list", json!({})),
                    ("prompts/get", json!({"name": "fx__greet", "arguments": {"name": "a"}})),
                    ("resources/list", json!({})),
                    ("resources/templates/list", json!({})),
                    ("resources/read", json!({"uri": "fixture://hello"})),
                    ("completion/complete", json!({"ref": {"type": "ref/prompt", "name": "fx__greet"}, "argument": {"name": "name", "value": "a"}})),
                    ("logging/setLevel", json!({"level": "debug"})),
                ])
                .clone();
            Req::mcp("/mcp", all, &rpc(id, m, p))
        }
        _ => Req::new("HEAD", "/health"),
    };
    with_token(r, ctx.token.as_deref())
}

// ---- mutations ----

/// Odd JSON values, as raw text (some cannot be a serde_json `Value`: huge numbers, lone
/// surrogates, deep nesting).
fn odd_json(rng: &mut Rng) -> String {
    let fixed: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "-0",
        "1e308",
        "-1e308",
        "1e999999",
        "-1e999999",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890123456789",
        "0.0000000000000000000000000001",
        "\"\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\uffff\"",
        "\"\\u202e\\u2028\"",
        "\"é\u{1f600}\"",
        "\"\\\"\"",
        "[]",
        "{}",
        "[null]",
        "{\"\":null}",
        "{\"a\":1,\"a\":2}",
        "\"1\"",
        "\"fx__echo\"",
        "\"__\"",
        "\"fx__\"",
        "\"../../etc\"",
        "\"x\\r\\nINFO forged\"",
        "\"\\u001b[31m\"",
        "[1,2",
        "{\"a\"",
        "\"unterminated",
        "nul",
        "tru",
        "01",
        "1.",
        ".5",
        "+1",
        "NaN",
        "Infinity",
        "0x10",
        "'x'",
    ];
    match rng.below(10) {
        0 => {
            let depth = *rng.pick(&[8usize, 64, 126, 127, 128, 129, 200, 2000]);
            let (open, close) = if rng.one_in(2) { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth))
        }
        1 => format!("\"{}\"", "x".repeat(*rng.pick(&[200usize, 1000, 20_000]))),
        2 => format!("\"{}\"", "\\u00e9".repeat(rng.below(300))),
        3 => rng.next().to_string(),
        4 => format!("-{}", rng.next()),
        _ => rng.pick(fixed).to_string(),
    }
}

const ODD_METHODS: &[&str] = &[
    "",
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/get",
    "prompts/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "resources/templates/list",
    "completion/complete",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/initialized",
    "notifications/progress",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "rpc.discover",
    "$/cancelRequest",
    "TOOLS/LIST",
    "tools/list ",
    "tools/call\u{0}",
    "nope",
    "x/y/z",
    "é",
];

const ODD_TOOLS: &[&str] = &[
    "",
    "nope",
    "fx__echo",
    "fx__",
    "__",
    "fx__nope",
    "ECHO",
    "echo ",
    " echo",
    "echo\u{0}",
    "../echo",
    "echo/..",
    "fx/echo",
    "é",
    "\u{202e}echo",
    "echo\r\nX: y",
    "*",
];

/// A mutation of the JSON body; the names count what was done.
fn mutate_json(v: &mut Value, rng: &mut Rng, raw: &mut Vec<(String, String)>, kinds: &mut Vec<&'static str>) {
    let marker = |raw: &mut Vec<(String, String)>, text: String| {
        let m = format!("@@raw{}@@", raw.len());
        raw.push((format!("\"{}\"", m), text));
        Value::String(m)
    };
    if !v.is_object() {
        *v = json!({});
    }
    match rng.below(12) {
        0 => {
            kinds.push("json:id");
            v["id"] = marker(raw, odd_json(rng));
        }
        1 => {
            kinds.push("json:method");
            v["method"] = if rng.one_in(3) { marker(raw, odd_json(rng)) } else { json!(rng.pick(ODD_METHODS)) };
        }
        2 => {
            kinds.push("json:params");
            v["params"] = marker(raw, odd_json(rng));
        }
        3 => {
            kinds.push("json:drop-field");
            let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            if !keys.is_empty() {
                let k = rng.pick(&keys).clone();
                v.as_object_mut().unwrap().remove(&k);
            }
        }
        4 => {
            kinds.push("json:jsonrpc");
            v["jsonrpc"] = json!(rng.pick(&[json!("1.0"), json!(2.0), json!(null), json!("2.0 ")]).clone());
        }
        5 => {
            kinds.push("json:tool-name");
            v["method"] = json!("tools/call");
            if !v["params"].is_object() {
                v["params"] = json!({});
            }
            v["params"]["name"] = if rng.one_in(4) { marker(raw, odd_json(rng)) } else { json!(rng.pick(ODD_TOOLS)) };
        }
        6 => {
            kinds.push("json:tool-arguments");
            v["method"] = json!("tools/call");
            if !v["params"].is_object() {
                v["params"] = json!({"name": "echo"});
            }
            let key = rng.pick(&["text", "a", "b", "value", "s", "n", "obj", "arr", ""]).to_string();
            let mut args = json!({});
            args[key] = marker(raw, odd_json(rng));
            v["params"]["arguments"] = if rng.one_in(5) { marker(raw, odd_json(rng)) } else { args };
        }
        7 => {
            kinds.push("json:cancel-id");
            v["method"] = json!("notifications/cancelled");
            v.as_object_mut().unwrap().remove("id");
            v["params"] = json!({"requestId": marker(raw, odd_json(rng))});
        }
        8 => {
            kinds.push("json:response");
            v.as_object_mut().unwrap().remove("method");
            v["id"] = marker(raw, odd_json(rng));
            let k = if rng.one_in(2) { "result" } else { "error" };
            v[k] = marker(raw, odd_json(rng));
        }
        9 => {
            kinds.push("json:whole-body");
            *v = marker(raw, odd_json(rng));
        }
        10 => {
            kinds.push("json:cli-fields");
            let k = rng.pick(&["v", "server", "tool", "args", "timeout_ms"]).to_string();
            let val = match rng.below(4) {
                0 => json!([{"kind": "var", "text": "text=@/etc/passwd"}]),
                1 => json!([{"kind": "json", "text": "-"}, {"kind": "pair", "name": "text", "value": null}]),
                _ => marker(raw, odd_json(rng)),
            };
            v[k] = val;
        }
        _ => {
            kinds.push("json:extra-field");
            let k = rng.pick(&["_meta", "", "\u{0}", "id ", "jsonrpc\u{0}", "x"]).to_string();
            v[k] = marker(raw, odd_json(rng));
        }
    }
}

/// Serialize with the raw texts in place of their markers.
fn json_text(v: &Value, raw: &[(String, String)]) -> Vec<u8> {
    let mut s = v.to_string();
    for (m, text) in raw {
        s = s.replacen(m.as_str(), text, 1);
    }
    s.into_bytes()
}

/// Byte strings that parsers tend to get wrong.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b"\r\n ",
    b"\r\n\t",
    b":",
    b"\x7f",
    b"\xff",
    b"\xc3\x28",
    b"\xe2\x80\xae",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"HTTP/2",
    b"%00",
    b"../",
    b"//",
    b"?",
    b"#",
    b"99999999999999999999",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"null",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Mcp-Session-Id: 00\r\n",
    b"Host: evil.example\r\n",
    b"Origin: null\r\n",
    b"Authorization: Bearer x\r\n",
];

const ODD_HOSTS: &[&str] = &[
    "localhost",
    "localhost:1",
    "[::1]",
    "[::1]:7878",
    "[localhost]",
    "[::1]x",
    "[::1",
    "evil.example",
    "127.0.0.1.evil.example",
    "",
    "127.0.0.1:abc",
    "127.0.0.1:",
    "127.0.0.1:99999999999999999999",
    "LOCALHOST",
    "127.1",
    "0.0.0.0",
    "::1",
    "\u{e9}",
];

const ODD_ORIGINS: &[&str] = &[
    "null",
    "",
    "http://localhost",
    "http://127.0.0.1:1/",
    "https://[::1]",
    "http://evil.example",
    "http://localhost.evil.example",
    "file://",
    "http://[localhost]",
    "chrome-extension://x",
];

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// A mutation of the HTTP framing on the parts of a request.
fn mutate_http(r: &mut Req, ctx: &Ctx, rng: &mut Rng, kinds: &mut Vec<&'static str>) {
    match rng.below(13) {
        12 => {
            kinds.push("http:authorization");
            let t = ctx.token.clone().unwrap_or_else(|| "x".repeat(32));
            let v = match rng.below(12) {
                0 => format!("bearer {t}"),
                1 => format!("Bearer  {t}"),
                2 => format!("Bearer {t} "),
                3 => format!("Bearer {t}x"),
                4 => format!("Bearer {}", &t[..t.len() - 1]),
                5 => "Bearer".into(),
                6 => "Bearer ".into(),
                7 => format!("Basic {t}"),
                8 => t.clone(),
                9 => String::new(),
                10 => format!("Bearer {}", long(20_000)),
                _ => format!("Bearer {}", t.to_uppercase()),
            };
            r.headers.retain(|(k, _)| k != "Authorization");
            if !rng.one_in(8) {
                r.headers.push(("Authorization".into(), v));
            }
        }
        0 => {
            kinds.push("http:request-line");
            match rng.below(3) {
                0 => {
                    r.method = rng
                        .pick(&[
                            "GET", "POST", "DELETE", "HEAD", "PUT", "OPTIONS", "CONNECT", "post", "G ET", "", "GET\0",
                            "PRI", "\u{e9}", "X-Y",
                        ])
                        .to_string();
                    if rng.one_in(10) {
                        r.method = long(20_000);
                    }
                    // The shared sessions must live through the run: a DELETE names none.
                    if r.method == "DELETE" {
                        for (k, v) in r.headers.iter_mut() {
                            if k == "Mcp-Session-Id" {
                                *v = "0".repeat(32);
                            }
                        }
                    }
                }
                1 => {
                    let port = ctx.port;
                    r.target = match rng.below(18) {
                        0 => format!("http://127.0.0.1:{port}{}", r.target),
                        1 => format!("https://[::1]{}", r.target),
                        2 => format!("http://evil.example{}", r.target),
                        3 => format!("http://user@127.0.0.1{}", r.target),
                        4 => "http://127.0.0.1".into(),
                        5 => "*".into(),
                        6 => "".into(),
                        7 => format!("{}/../fx", r.target),
                        8 => "/mcp/%66x".into(),
                        9 => format!("{}?a=b&c", r.target),
                        10 => "/mcp//".into(),
                        11 => format!("/{}", long(17_000)),
                        12 => "/mcp/nope".into(),
                        13 => "/MCP".into(),
                        14 => format!("{}#frag", r.target),
                        15 => "mcp/fx".into(),
                        16 => format!("{}\u{e9}", r.target),
                        _ => "/mcp/fx/".into(),
                    };
                }
                _ => {
                    r.version = rng
                        .pick(&[
                            "HTTP/1.0",
                            "HTTP/1.2",
                            "HTTP/2",
                            "HTTP/2.0",
                            "http/1.1",
                            "HTTP/1.1 ",
                            "HTTP/1.1\r",
                            "HTTP/",
                            "HTTP/1",
                            "HTTP/01.1",
                            "",
                            "HTTP/1.1 extra",
                        ])
                        .to_string()
                }
            }
        }
        1 => {
            kinds.push("http:header-value");
            let v = rng
                .pick(&["a\0b", "a\rb", "a\r", "a\nb", "\u{7f}", "\tx\t", "a\r\n b", "é", "\u{202e}", ""])
                .to_string();
            let v = if rng.one_in(5) { long(*rng.pick(&[8000usize, 16_400, 70_000])) } else { v };
            if !r.headers.is_empty() && rng.one_in(2) {
                let i = rng.below(r.headers.len());
                r.headers[i].1 = v;
            } else {
                r.headers.push(("X-Fuzz".into(), v));
            }
        }
        2 => {
            kinds.push("http:header-name");
            let n = rng
                .pick(&[
                    "Bad Name",
                    "",
                    "X:Y",
                    "X\0",
                    "é",
                    "Host ",
                    " Host",
                    "Content-Length ",
                    "Transfer-Encoding\t",
                    "X(y)",
                    "\u{7f}",
                ])
                .to_string();
            r.headers.push((n, "x".into()));
        }
        3 => {
            kinds.push("http:duplicate-header");
            if !r.headers.is_empty() {
                let i = rng.below(r.headers.len());
                let (k, mut v) = r.headers[i].clone();
                if rng.one_in(2) {
                    v.push('x');
                }
                let k = if rng.one_in(3) { k.to_ascii_uppercase() } else { k };
                r.headers.push((k, v));
            }
        }
        4 => {
            kinds.push("http:obs-fold");
            if !r.headers.is_empty() {
                let i = rng.below(r.headers.len());
                let fold = rng.pick(&["\r\n ", "\r\n\t", "\n ", "\r\n"]);
                r.headers[i].1 = format!("{}{}", fold, r.headers[i].1);
            }
        }
        5 => {
            kinds.push("http:many-headers");
            let n = *rng.pick(&[99usize, 100, 101, 500]);
            for i in 0..n {
                r.headers.push((format!("X-{i}"), "y".into()));
            }
        }
        6 => {
            kinds.push("http:length-vs-encoding");
            r.framing = Framing::Manual;
            let n = r.body.len();
            let cl = [
                n.to_string(),
                (n + 10).to_string(),
                n.saturating_sub(3).to_string(),
                format!("+{n}"),
                format!("-{n}"),
                format!("0{n}"),
                format!("{n}, {n}"),
                format!(" {n} "),
                format!("0x{n:x}"),
                "".into(),
                "99999999999999999999999".into(),
                "18446744073709551615".into(),
                "16777217".into(),
                "1000000000".into(),
            ];
            let te = [
                "chunked",
                "Chunked",
                " chunked",
                "chunked, identity",
                "identity",
                "gzip",
                "gzip, chunked",
                "xchunked",
                "",
            ];
            let mut h = Vec::new();
            match rng.below(4) {
                0 => h.push(("Content-Length", rng.pick(&cl).clone())),
                1 => {
                    h.push(("Content-Length", rng.pick(&cl).clone()));
                    h.push(("Content-Length", rng.pick(&cl).clone()));
                }
                2 => h.push(("Transfer-Encoding", rng.pick(&te).to_string())),
                _ => {
                    h.push(("Content-Length", rng.pick(&cl).clone()));
                    h.push(("Transfer-Encoding", rng.pick(&te).to_string()));
                    if rng.one_in(2) {
                        h.reverse();
                    }
                }
            }
            for (k, v) in h {
                r.headers.push((k.into(), v));
            }
            if r.headers.iter().any(|(k, _)| k == "Transfer-Encoding") && rng.one_in(2) {
                r.body = chunked(&r.body, 7);
            }
        }
        7 => {
            kinds.push("http:chunk-lines");
            r.framing = Framing::Manual;
            r.headers.push(("Transfer-Encoding".into(), "chunked".into()));
            let n = r.body.len();
            let size = [
                format!("{n:x}"),
                format!("{:x}", n + 1),
                format!("{:x}", n.saturating_sub(1)),
                format!("{n:X}"),
                format!("+{n:x}"),
                format!("-{n:x}"),
                format!("0x{n:x}"),
                format!("{n:x};ext=1"),
                format!("{n:x};"),
                format!("{n:x} ;a=\"b\""),
                format!("{n:x};{}", long(1100)),
                format!("{}{n:x}", "0".repeat(*rng.pick(&[15usize, 16, 17, 40, 1100]))),
                "ffffffffffffffff".into(),
                "10000000000000000".into(),
                "7fffffffffffffff".into(),
                "".into(),
                " ".into(),
                "g".into(),
            ];
            let eol = *rng.pick(&["\r\n", "\n", "\r", "", "\r\r\n", " \r\n"]);
            let mut b = format!("{}{}", rng.pick(&size), if rng.one_in(2) { eol } else { "\r\n" }).into_bytes();
            b.extend_from_slice(&r.body);
            let tail = *rng.pick(&[
                "\r\n0\r\n\r\n",
                "0\r\n\r\n",
                "\r\n0\r\n",
                "\r\n",
                "",
                "\r\n0\r\nX: y\r\n\r\n",
                "\r\n0;x\r\n\r\n",
                "\n0\n\n",
                "\r\n0\r\nX: y\r\nbad\r\n\r\n",
            ]);
            b.extend_from_slice(tail.as_bytes());
            r.body = b;
        }
        8 => {
            kinds.push("http:host-origin");
            if rng.one_in(2) {
                r.headers.retain(|(k, _)| k != "Host");
                if !rng.one_in(6) {
                    r.headers.push(("Host".into(), rng.pick(ODD_HOSTS).to_string()));
                }
            } else {
                r.headers.push(("Origin".into(), rng.pick(ODD_ORIGINS).to_string()));
            }
        }
        9 => {
            kinds.push("http:session-header");
            r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("Mcp-Session-Id"));
            let v = match rng.below(6) {
                0 => ctx.sid_all.clone(),
                1 => ctx.sid_one.to_uppercase(),
                2 => format!("{} ", ctx.sid_one),
                3 => "".into(),
                4 => long(300),
                _ => ctx.sid_one[..8].to_string(),
            };
            r.headers.push(("Mcp-Session-Id".into(), v));
            if rng.one_in(2) {
                let pv = *rng.pick(&["2025-11-25", "2024-11-05", "1999-01-01", "", "2025-11-25, 2025-06-18"]);
                r.headers.push(("MCP-Protocol-Version".into(), pv.into()));
            }
        }
        10 => {
            kinds.push("http:content-headers");
            r.headers.retain(|(k, _)| k != "Content-Type" && k != "Accept");
            let ct = *rng.pick(&[
                "application/json",
                "application/json; charset=utf-8",
                "APPLICATION/JSON",
                "text/plain",
                "application/jsonx",
                "",
                "application/json;",
                ";application/json",
            ]);
            let acc = *rng.pick(&[
                "application/json, text/event-stream",
                "*/*",
                "text/event-stream",
                "application/json",
                "application/json;q=0, text/event-stream;q=0",
                "",
                ",,,",
            ]);
            r.headers.push(("Content-Type".into(), ct.into()));
            r.headers.push(("Accept".into(), acc.into()));
        }
        _ => {
            kinds.push("http:expect-connection");
            let h = *rng.pick(&[
                ("Expect", "100-continue"),
                ("Expect", "100-CONTINUE"),
                ("Expect", "200-ok"),
                ("Connection", "close"),
                ("Connection", "keep-alive"),
                ("Connection", "keep-alive, close"),
                ("Connection", "upgrade"),
                ("Upgrade", "h2c"),
            ]);
            r.headers.push((h.0.into(), h.1.into()));
        }
    }
}

fn chunked(body: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(n) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Byte-level havoc on a whole serialized request.
fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng, kinds: &mut Vec<&'static str>) {
    if b.is_empty() {
        b.push(b'x');
    }
    let at = rng.below(b.len() + 1);
    match rng.below(7) {
        0 => {
            kinds.push("bytes:flip");
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            kinds.push("bytes:insert");
            b.insert(at, rng.next() as u8);
        }
        2 => {
            kinds.push("bytes:delete");
            let n = 1 + rng.below(16);
            let end = (at + n).min(b.len());
            b.drain(at.min(end)..end);
        }
        3 => {
            kinds.push("bytes:splice-token");
            let t = rng.pick(TOKENS);
            b.splice(at..at, t.iter().copied());
        }
        4 => {
            kinds.push("bytes:duplicate-range");
            let n = 1 + rng.below(64);
            let end = (at + n).min(b.len());
            let piece = b[at.min(end)..end].to_vec();
            b.splice(end..end, piece);
        }
        5 => {
            kinds.push("bytes:truncate");
            b.truncate(at);
        }
        _ => {
            kinds.push("bytes:overwrite-token");
            let t = rng.pick(TOKENS);
            let end = (at + t.len()).min(b.len());
            b.splice(at.min(end)..end, t.iter().copied());
        }
    }
}

/// The framing probes: a request whose body holds a request for `/health`, under framing
/// headers that are ambiguous or malformed. Read correctly, the inner request is body (or
/// the whole request is refused): `/health` must never answer.
fn smuggle_probe(ctx: &Ctx, rng: &mut Rng, kinds: &mut Vec<&'static str>) -> Vec<u8> {
    kinds.push("smuggle-probe");
    let inner = "GET /health?smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let target = *rng.pick(&["/mcp/fx", "/mcp", "/cli/call", "/status", "/nope", "/health"]);
    let auth = ctx.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let fixed = format!(
        "Host: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n{auth}",
        ctx.sid_one
    );
    let zero = format!("0\r\n\r\n{inner}");
    let as_chunk = format!("{:x}\r\n{inner}\r\n0\r\n\r\n", inner.len());
    let n = zero.len();
    let (version, framing, body): (&str, String, String) = match rng.below(16) {
        0 => ("1.1", format!("Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n"), zero),
        1 => ("1.1", format!("Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n"), zero),
        2 => ("1.1", format!("Content-Length: {n}\r\nTransfer-Encoding: chunked, identity\r\n"), zero),
        3 => ("1.1", format!("Content-Length: {n}\r\nTransfer-Encoding:\r\n chunked\r\n"), zero),
        4 => ("1.1", format!("Content-Length: {n}\r\nTransfer-Encoding: xchunked\r\n"), zero),
        5 => ("1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n".into(), zero),
        6 => ("1.1", format!("Content-Length: {n}, {n}\r\n"), zero),
        7 => ("1.1", format!("Content-Length: {n}\r\n"), zero),
        8 => ("1.0", format!("Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n"), zero),
        9 => ("1.1", "Transfer-Encoding: chunked\r\n".into(), as_chunk),
        10 => ("1.1", "Transfer-Encoding: chunked\r\n".into(), as_chunk.replace("\r\n", "\n")),
        11 => ("1.1", "Transfer-Encoding: chunked\r\n".into(), as_chunk.replacen("\r\n", "\r\r\n", 1)),
        12 => ("1.1", format!("Content-Length: 000{n}\r\n"), zero),
        13 => ("1.1", format!("Content-Length : {n}\r\n"), zero),
        14 => ("1.1", format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"), zero),
        _ => ("1.1", "Transfer-Encoding: chunked\r\n".into(), format!("1{}\r\n{inner}\r\n0\r\n\r\n", "0".repeat(16))),
    };
    let mut out = format!("POST {target} HTTP/{version}\r\n{fixed}{framing}\r\n{body}").into_bytes();
    // Then a harmless request that may be answered (or not, once the connection ends).
    out.extend(with_token(Req::new("GET", "/status"), ctx.token.as_deref()).bytes());
    out
}

// ---- one case ----

struct Case {
    bytes: Vec<u8>,
    kinds: Vec<&'static str>,
    /// Close our sending side after the bytes (the daemon then sees the end at once);
    /// otherwise the daemon's own deadlines must end the exchange.
    half_close: bool,
    /// A framing probe: no `/health` answer may come.
    probe: bool,
    /// The template needs a session of its own (DELETE).
    needs_fresh: bool,
    /// How many complete, well-framed requests the bytes hold, when known (no mutation of
    /// the HTTP layer): each must be answered, until an answer closes the connection.
    requests: Option<usize>,
    /// The request bodies as sent before any chunked framing (ids and texts whole).
    logical: Vec<u8>,
}

fn needs_fresh(t: usize) -> bool {
    TEMPLATES[t] == "delete"
}

fn make_case(seed: u64, iter: u64, ctx: &Ctx, fresh: Option<&str>) -> Case {
    let mut rng = Rng::for_case(seed, iter);
    let mut kinds = Vec::new();
    let t = rng.below(TEMPLATES.len());
    let half_close = !rng.one_in(150);
    if !half_close {
        kinds.push("keep-open");
    }
    if rng.one_in(10) {
        let mut bytes = smuggle_probe(ctx, &mut rng, &mut kinds);
        let probe = !rng.one_in(4);
        if !probe {
            mutate_bytes(&mut bytes, &mut rng, &mut kinds);
        }
        return Case { bytes, kinds, half_close, probe, needs_fresh: false, requests: None, logical: Vec::new() };
    }
    let mut req = template(t, iter, ctx, fresh, &mut rng);
    kinds.push(TEMPLATES[t]);
    let mode = rng.below(10);
    // JSON-RPC layer: a valid request with a mutated body (one in three chunked).
    if mode < 4 || (mode < 7 && rng.one_in(2)) {
        let mut v: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
        let mut raw = Vec::new();
        for _ in 0..1 + rng.below(3) {
            mutate_json(&mut v, &mut rng, &mut raw, &mut kinds);
        }
        req.body = json_text(&v, &raw);
        if req.method == "GET" || req.method == "DELETE" || req.method == "HEAD" {
            req.method = "POST".into();
            req =
                req.header("Content-Type", "application/json").header("Accept", "application/json, text/event-stream");
        }
        if rng.one_in(3) {
            req.framing = Framing::Chunked(1 + rng.below(40));
            kinds.push("http:chunked-body");
        }
    }
    // HTTP layer: structured mutations of the framing and headers.
    let mut logical = req.body.clone();
    let mut framed = true;
    if (4..7).contains(&mode) {
        framed = false;
        for _ in 0..1 + rng.below(2) {
            mutate_http(&mut req, ctx, &mut rng, &mut kinds);
        }
    }
    let mut bytes = req.bytes();
    let mut requests = 1;
    // Pipelining: another request (valid or not) right behind.
    if rng.one_in(8) {
        kinds.push("pipelined");
        let t2 = rng.below(TEMPLATES.len());
        let next = if needs_fresh(t2) {
            template(0, iter, ctx, None, &mut rng)
        } else {
            template(t2, iter, ctx, None, &mut rng)
        };
        logical.extend_from_slice(&next.body);
        let next = next.bytes();
        if rng.one_in(3) {
            bytes.extend_from_slice(&bytes.clone());
            logical.extend_from_slice(&logical.clone());
            requests += 1;
        }
        bytes.extend_from_slice(&next);
        requests += 1;
    }
    // Byte layer: havoc on the whole thing.
    if mode >= 7 || rng.one_in(10) {
        framed = false;
        for _ in 0..1 + rng.below(4) {
            mutate_bytes(&mut bytes, &mut rng, &mut kinds);
        }
    }
    framed &= bytes.len() <= MAX_SENT;
    bytes.truncate(MAX_SENT);
    let requests = framed.then_some(requests);
    Case { bytes, kinds, half_close, probe: false, needs_fresh: needs_fresh(t), requests, logical }
}

// ---- sending and checking ----

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

enum Parsed {
    /// Every byte so far is whole answers; an event stream that stays open ends the list.
    Answers(Vec<Answer>, bool),
    NeedMore,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Parse what the daemon sent: whole HTTP/1.1 answers, strictly. `maybe_head`: the request
/// bytes hold a HEAD, whose answer has a Content-Length but no body.
fn parse_answers(buf: &[u8], eof: bool, maybe_head: bool) -> Result<Parsed, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        let Some(end) = find(rest, b"\r\n\r\n") else {
            if rest.len() > 64 * 1024 {
                return Err("an answer head over 64 KiB".into());
            }
            return if eof { Err("the connection ended inside an answer head".into()) } else { Ok(Parsed::NeedMore) };
        };
        let head = std::str::from_utf8(&rest[..end]).map_err(|_| "an answer head that is not UTF-8".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .filter(|s| s.len() >= 4 && s.as_bytes()[3] == b' ' && s[..3].bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| s[4..].bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
            .and_then(|s| s[..3].parse::<u16>().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| format!("a malformed status line {:?}", status_line))?;
        let mut headers = Vec::new();
        for l in lines {
            let (k, v) = l.split_once(": ").ok_or_else(|| format!("a malformed answer header {:?}", l))?;
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!("a malformed answer header name {:?}", k));
            }
            if v.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(format!("a control character in answer header {:?}", k));
            }
            headers.push((k.to_string(), v.to_string()));
        }
        let mut a = Answer { status, headers, body: Vec::new() };
        let body_at = at + end + 4;
        if status < 200 {
            out.push(a);
            at = body_at;
            continue;
        }
        if a.header("transfer-encoding") == Some("chunked") {
            if a.header("content-type") != Some("text/event-stream") {
                return Err("a chunked answer that is not an event stream".into());
            }
            out.push(a);
            return Ok(Parsed::Answers(out, true));
        }
        let len: usize = a
            .header("content-length")
            .ok_or("an answer with neither Content-Length nor chunked")?
            .parse()
            .map_err(|_| "a malformed Content-Length in an answer".to_string())?;
        let after = &buf[body_at..];
        let headless = maybe_head && (after.starts_with(b"HTTP/1.1 ") || (eof && after.is_empty()));
        if !headless {
            if after.len() < len {
                return if eof {
                    Err("the connection ended inside an answer body".into())
                } else {
                    Ok(Parsed::NeedMore)
                };
            }
            a.body = after[..len].to_vec();
        }
        at = body_at + a.body.len();
        out.push(a);
    }
    Ok(Parsed::Answers(out, false))
}

struct Outcome {
    answers: Vec<Answer>,
    /// The last answer is an event stream, left open.
    stream: bool,
    received: Vec<u8>,
    elapsed: Duration,
}

/// Send `bytes` on a new connection and read until the daemon closes it, an event stream
/// opens, or the deadline passes (an error).
fn exchange(port: u16, bytes: &[u8], half_close: bool) -> Result<Outcome, (String, Vec<u8>)> {
    let t0 = Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| (format!("connect: {e}"), vec![]))?;
    let _ = s.set_nodelay(true);
    s.set_write_timeout(Some(ANSWER_DEADLINE)).unwrap();
    // The daemon may answer and close before taking every byte: a failed write is not an
    // error, what it answered is still read.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let maybe_head = find(bytes, b"HEAD ").is_some();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = t0 + ANSWER_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((format!("neither answered nor closed within {:?}", ANSWER_DEADLINE), buf));
        }
        s.set_read_timeout(Some(left)).unwrap();
        let eof = match s.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_READ {
                    return Err(("more than 4 MiB of answers".into(), buf));
                }
                false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            // A reset after the daemon closed with our bytes unread: a close.
            Err(_) => true,
        };
        match parse_answers(&buf, eof, maybe_head) {
            Err(why) => return Err((why, buf)),
            Ok(Parsed::Answers(answers, true)) => {
                return Ok(Outcome { answers, stream: true, received: buf, elapsed: t0.elapsed() })
            }
            Ok(Parsed::Answers(answers, false)) if eof => {
                return Ok(Outcome { answers, stream: false, received: buf, elapsed: t0.elapsed() })
            }
            _ if eof => unreachable!("parse_answers at the end returns answers or an error"),
            _ => {}
        }
    }
}

/// The runs of digits right after each `prefix` in `hay` (tagged 0 for `"id":`, 1 else).
fn numbers_after<'a>(hay: &'a [u8], prefix: &'a [u8]) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
    let tag = u8::from(prefix != b"\"id\":");
    (0..hay.len().saturating_sub(prefix.len())).filter(move |&i| hay[i..].starts_with(prefix)).filter_map(move |i| {
        let rest = &hay[i + prefix.len()..];
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        (n > 0 && n < 20).then(|| (tag, &rest[..n]))
    })
}

/// Whether the bytes hold a complete request head as the daemon reads one: a line that is
/// not empty, later an empty one (`\r\n` or `\n`). Such a head is always answered, if only
/// with a refusal.
fn has_complete_head(bytes: &[u8]) -> bool {
    let mut seen_line = false;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            return false;
        }
        let empty = line == b"\n" || line == b"\r\n";
        if empty && seen_line {
            return true;
        }
        seen_line |= !empty;
    }
    false
}

/// What every answer must satisfy, whatever was sent.
fn check(case: &Case, iter: u64, o: &Outcome) -> Result<(), String> {
    let finals: Vec<&Answer> = o.answers.iter().filter(|a| a.status >= 200).collect();
    for (i, a) in o.answers.iter().enumerate() {
        match a.status {
            // 503: the documented caps (connections, sessions), always with Retry-After.
            503 if a.header("retry-after") == Some("1") => {}
            // 505: a request line with another HTTP version.
            505 if String::from_utf8_lossy(&a.body).contains("only HTTP/1.0 and HTTP/1.1") => {}
            s if s >= 500 => return Err(format!("answer {i} is a {s}")),
            100 if find(&case.bytes.to_ascii_lowercase(), b"100-continue").is_none() => {
                return Err("100 Continue without Expect: 100-continue".into())
            }
            s if s < 200 && s != 100 => return Err(format!("answer {i} is a {s}")),
            _ => {}
        }
        let json_type = a.header("content-type") == Some("application/json");
        if json_type && !a.body.is_empty() && serde_json::from_slice::<Value>(&a.body).is_err() {
            return Err(format!("answer {i} says application/json but is not JSON"));
        }
    }
    if finals.is_empty() && !o.stream && has_complete_head(&case.bytes) {
        return Err("a complete request head got no answer".into());
    }
    // Nothing after an answer that said the connection ends.
    if let Some(i) = finals.iter().position(|a| a.header("connection") == Some("close")) {
        if i + 1 < finals.len() {
            return Err(format!("answer {} follows one with Connection: close", i + 1));
        }
    }
    // No more answers than request lines (one more: the refusal of a malformed one).
    let lines = count(&case.bytes, b"HTTP/1.");
    if finals.len() > lines + 1 {
        return Err(format!("{} answers to {} request lines", finals.len(), lines));
    }
    // Only this case's ids and texts come back (not another connection's answer).
    // (Not after byte havoc: a flipped digit inside a chunked body is hard to tell apart.)
    let havoc = case.kinds.iter().any(|k| k.starts_with("bytes:"));
    for (tag, digits) in numbers_after(&o.received, b"\"id\":").chain(numbers_after(&o.received, b"case-")) {
        let n: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap_or(0);
        let (ours, said) = if tag == 0 {
            (n < CASE_IDS || n == CASE_IDS + iter, format!("\"id\":{n}"))
        } else {
            (n == iter, format!("case-{n}"))
        };
        let sent = find(&case.bytes, said.as_bytes()).is_some() || find(&case.logical, said.as_bytes()).is_some();
        if !havoc && !ours && !sent {
            return Err(format!("an answer carries {said}, which this case never sent"));
        }
    }
    // Well-framed requests are all answered, unless an answer ends the connection.
    if let Some(n) = case.requests {
        let ended = o.stream || finals.last().map(|a| a.header("connection") == Some("close")).unwrap_or(false);
        if finals.len() < n && !ended {
            return Err(format!("{} answers to {} well-framed requests", finals.len(), n));
        }
    }
    if case.probe && finals.iter().any(|a| a.body == br#"{"status":"ok"}"#) {
        return Err("a request inside a body was answered (request smuggling)".into());
    }
    Ok(())
}

// ---- the harness ----

/// A clean initialize; the new session's id.
fn new_session(port: u16, token: Option<&str>, target: &str) -> Result<String, String> {
    let bytes = with_token(Req::mcp(target, None, &init_msg()), token).bytes();
    let mut tries = 0;
    let o = loop {
        let o = exchange(port, &bytes, true).map_err(|(e, got)| format!("initialize: {e}: {}", got.escape_ascii()))?;
        // At a cap (open GET streams of earlier cases count for a while): as documented,
        // try again shortly.
        if o.answers.first().map(|a| a.status) == Some(503) && tries < 50 {
            tries += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        break o;
    };
    let a = o.answers.first().ok_or("initialize: no answer")?;
    if a.status != 200 {
        return Err(format!("initialize: {} {}", a.status, String::from_utf8_lossy(&a.body)));
    }
    Ok(a.header("mcp-session-id").ok_or("initialize: no session id")?.to_string())
}

/// End a session a case created (whichever endpoint it belongs to), so that a long run
/// does not reach MCPCTL_MAX_SESSIONS.
fn end_session(port: u16, token: Option<&str>, sid: &str) {
    let mut bytes = Vec::new();
    for t in ["/mcp/fx", "/mcp"] {
        bytes.extend(with_token(Req::new("DELETE", t).header("Mcp-Session-Id", sid), token).bytes());
    }
    let _ = exchange(port, &bytes, true);
}

#[derive(Default)]
struct Stats {
    cases: u64,
    by_class: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
    kinds: BTreeMap<&'static str, u64>,
    slowest: Duration,
}

struct Failure {
    iter: u64,
    kinds: Vec<&'static str>,
    sent: Vec<u8>,
    why: String,
    received: Vec<u8>,
}

fn run_case(seed: u64, iter: u64, ctx: &Ctx, stats: &Mutex<Stats>) -> Result<(), Failure> {
    // A DELETE case gets a session of its own (made cleanly, not mutated).
    let probe = make_case(seed, iter, ctx, None);
    let mut fresh = None;
    let case = if probe.needs_fresh {
        let sid = new_session(ctx.port, ctx.token.as_deref(), "/mcp/fx").map_err(|why| Failure {
            iter,
            kinds: vec!["(making a session for the case)"],
            sent: Vec::new(),
            why,
            received: Vec::new(),
        })?;
        let case = make_case(seed, iter, ctx, Some(&sid));
        fresh = Some(sid);
        case
    } else {
        probe
    };
    let result = exchange(ctx.port, &case.bytes, case.half_close);
    let fail = |why: String, received: Vec<u8>| Failure {
        iter,
        kinds: case.kinds.clone(),
        sent: case.bytes.clone(),
        why,
        received,
    };
    let o = result.map_err(|(why, got)| fail(why, got))?;
    check(&case, iter, &o).map_err(|why| fail(why, o.received.clone()))?;
    for sid in o.answers.iter().filter_map(|a| a.header("mcp-session-id")).chain(fresh.as_deref()) {
        end_session(ctx.port, ctx.token.as_deref(), sid);
    }
    let mut st = stats.lock().unwrap();
    st.cases += 1;
    st.slowest = st.slowest.max(o.elapsed);
    for k in &case.kinds {
        *st.kinds.entry(k).or_default() += 1;
    }
    if case.requests.is_some() {
        *st.kinds.entry("(well-framed: every request answered)").or_default() += 1;
    }
    if o.answers.is_empty() {
        *st.by_class.entry("closed without an answer".into()).or_default() += 1;
    }
    for a in &o.answers {
        let key = match a.status {
            503 | 505 => a.status.to_string(),
            s => format!("{}xx", s / 100),
        };
        *st.by_class.entry(key).or_default() += 1;
        *st.by_status.entry(a.status).or_default() += 1;
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}=`{v}` is not a number")))
}

/// Fuzz a running daemon; the first failure, printed so it can be replayed.
fn fuzz(ctx: &Arc<Ctx>, seed: u64, iters: std::ops::Range<u64>, jobs: u64) -> (Stats, Option<Failure>) {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let failure: Arc<Mutex<Option<Failure>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(iters.start));
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (ctx, stats, failure, stop, next, end) =
                (ctx.clone(), stats.clone(), failure.clone(), stop.clone(), next.clone(), iters.end);
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= end || stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(f) = run_case(seed, i, &ctx, &stats) {
                    stop.store(true, Ordering::SeqCst);
                    let mut slot = failure.lock().unwrap();
                    if slot.as_ref().map(|g| f.iter < g.iter).unwrap_or(true) {
                        *slot = Some(f);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let stats = std::mem::take(&mut *stats.lock().unwrap());
    let failure = failure.lock().unwrap().take();
    (stats, failure)
}

/// `seed`: as given (`MCPCTL_FUZZ_SEED`); `test`: the test to run again.
fn print_failure(seed: u64, test: &str, f: &Failure) -> String {
    let mut got = f.received.clone();
    got.truncate(4096);
    format!(
        "fuzz case failed: {}\n  seed {seed:#x}, iteration {}\n  mutations: {}\n  replay: MCPCTL_FUZZ_SEED={seed:#x} MCPCTL_FUZZ_ONLY={} cargo test --test it gateway_fuzz::{test} -- --exact --nocapture\n  sent ({} bytes): b\"{}\"\n  received ({} bytes, first 4096): b\"{}\"",
        f.why,
        f.iter,
        f.kinds.join(", "),
        f.iter,
        f.sent.len(),
        f.sent.escape_ascii(),
        f.received.len(),
        got.escape_ascii()
    )
}

fn fuzz_project() -> Project {
    // A short call timeout: should a case ever reach a tool that does not answer, it is
    // answered (with a timeout error) well within the answer deadline.
    Project::fixture(json!({"timeout": 5}))
}

fn fuzz_daemon<'a>(p: &'a Project, token: Option<&str>) -> Daemon<'a> {
    let mut env = vec![("MCPCTL_HEAD_TIMEOUT", "1"), ("MCPCTL_IO_TIMEOUT", "2")];
    if let Some(t) = token {
        env.push(("MCPCTL_TOKEN", t));
    }
    Daemon::start_env(p, &[], &env)
}

/// One tool call in a new session (initialize, initialized, tools/call); its result.
fn fresh_call(port: u16, token: Option<&str>, target: &str, tool: &str, args: Value) -> Value {
    let sid = new_session(port, token, target).unwrap_or_else(|e| panic!("after the run: {e}"));
    let mut bytes = with_token(
        Req::mcp(target, Some(&sid), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        token,
    )
    .bytes();
    bytes.extend(
        with_token(
            Req::mcp(target, Some(&sid), &rpc(json!(7), "tools/call", json!({"name": tool, "arguments": args}))),
            token,
        )
        .bytes(),
    );
    let o =
        exchange(port, &bytes, true).unwrap_or_else(|(e, got)| panic!("after the run: {e}: {}", got.escape_ascii()));
    let statuses: Vec<u16> = o.answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [202, 200], "after the run: {}", o.received.escape_ascii());
    let v: Value = serde_json::from_slice(&o.answers[1].body).unwrap();
    assert_eq!(v["id"], 7, "{v}");
    v["result"].clone()
}

/// After the run: the daemon is alive, healthy, serves a normal session, and logged no panic.
fn assert_still_serving(p: &Project, d: &Daemon, token: Option<&str>) {
    assert_eq!(unsafe { libc::kill(d.pid, 0) }, 0, "the daemon (pid {}) is gone", d.pid);
    let o = exchange(d.port, &Req::new("GET", "/health").bytes(), true)
        .unwrap_or_else(|(e, got)| panic!("GET /health after the run: {e}: {}", got.escape_ascii()));
    assert_eq!(o.answers.len(), 1);
    assert_eq!((o.answers[0].status, o.answers[0].body.as_slice()), (200, br#"{"status":"ok"}"#.as_slice()));
    let r = fresh_call(d.port, token, "/mcp/fx", "echo", json!({"text": "after the fuzz"}));
    assert_eq!(r["content"][0]["text"], "after the fuzz");
    let r = fresh_call(d.port, token, "/mcp", "fx__add", json!({"a": 2, "b": 3}));
    assert_eq!(r["content"][0]["text"], "5");
    if token.is_none() {
        // And through a client of its own (ureq), as an agent would.
        let c = McpClient::open(d.url("/mcp/fx"));
        assert_eq!(c.call("echo", json!({"text": "after the fuzz"}))["content"][0]["text"], "after the fuzz");
    }
    let log = std::fs::read_to_string(p.root.join(".mcpctl/logs/daemon.log")).unwrap();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "the daemon log shows panics:\n{}", panics.join("\n"));
}

#[test]
fn the_gateway_survives_mutated_requests() {
    run("the_gateway_survives_mutated_requests", None, 1);
}

/// The same against a daemon with a bearer token (its checks, and the sessions it binds to
/// the token), a quarter as many cases, from another seed.
#[test]
fn the_gateway_with_a_token_survives_mutated_requests() {
    run("the_gateway_with_a_token_survives_mutated_requests", Some("fuzz-token-0123456789abcdef"), 4);
}

/// Fuzz a new daemon: `MCPCTL_FUZZ_ITERS / share` cases (`MCPCTL_FUZZ_ONLY`: that one
/// alone), then check the daemon.
fn run(test: &str, token: Option<&str>, share: u64) {
    let given = env_u64("MCPCTL_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    // Other cases than the run without a token, from the same seed.
    let seed = given ^ u64::from(token.is_some());
    let only = env_u64("MCPCTL_FUZZ_ONLY");
    let iters = match only {
        Some(i) => i..i + 1,
        None => 0..env_u64("MCPCTL_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS) / share,
    };
    let jobs = env_u64("MCPCTL_FUZZ_JOBS").unwrap_or(2).clamp(1, 16);
    let p = fuzz_project();
    let d = fuzz_daemon(&p, token);
    let ctx = Arc::new(Ctx {
        port: d.port,
        sid_one: new_session(d.port, token, "/mcp/fx").unwrap(),
        sid_all: new_session(d.port, token, "/mcp").unwrap(),
        token: token.map(str::to_string),
    });
    if let Some(i) = only {
        let c = make_case(seed, i, &ctx, None);
        println!("seed {given:#x} iteration {i}: {}\n  b\"{}\"", c.kinds.join(", "), c.bytes.escape_ascii());
    }
    let t0 = Instant::now();
    let (stats, failure) = fuzz(&ctx, seed, iters.clone(), jobs);
    let elapsed = t0.elapsed();
    println!(
        "gateway fuzz ({}): seed {given:#x}, iterations {}..{} ({} run, {} workers), {:.1} s, slowest connection {:.2} s",
        if token.is_some() { "with a token" } else { "without a token" },
        iters.start,
        iters.end,
        stats.cases,
        jobs,
        elapsed.as_secs_f64(),
        stats.slowest.as_secs_f64()
    );
    println!("  answers: {}", stats.by_class.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    println!("  by status: {}", stats.by_status.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    println!("  mutations: {}", stats.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    if let Some(f) = failure {
        panic!("{}", print_failure(given, test, &f));
    }
    assert_still_serving(&p, &d, token);
    if only.is_none() && iters.end >= 500 {
        // The cases reach both layers: some are served, some refused.
        assert!(stats.by_class.get("2xx").copied().unwrap_or(0) > 0, "no 2xx answer at all");
        assert!(stats.by_class.get("4xx").copied().unwrap_or(0) > 0, "no 4xx answer at all");
        if token.is_some() {
            assert!(stats.by_status.get(&401).copied().unwrap_or(0) > 0, "no 401 answer at all");
        }
    }
}
