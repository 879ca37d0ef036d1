//! `mcpctl-loadgen`: the load generator and timing harness behind `scripts/bench.sh`.
//!
//! ```text
//! mcpctl-loadgen run URL [--sessions N] [--duration S] [--calls N] [--warmup N] [--pid PID] [--label L] [--token T]
//!                        [--protocol 2026-07-28]
//! mcpctl-loadgen floor [--list] CMD [ARGS...]
//! mcpctl-loadgen time [--warmup N] -- NAME RUNS EXPECT CMD [ARGS...] [:: NAME RUNS EXPECT CMD...]
//! ```
//!
//! `run`: N sessions (one thread each) speak MCP Streamable HTTP to URL (loopback only).
//! Each initializes its own session (JSON or SSE answers), sends
//! `notifications/initialized`, makes `--warmup` calls, then all sessions start together
//! and loop `tools/call echo {text: "<session>-<i>"}` until `--duration` seconds have
//! passed or each has made `--calls` calls. Every answer's text must equal what was sent
//! (else a mismatch). With `--protocol 2026-07-28` each "session" is a stateless client of
//! that revision: `server/discover` instead of the handshake, no session id, every request
//! with `_meta` (protocol version, client capabilities) and the routing headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`). With `--pid`, that process's own CPU time (utime+stime, children
//! excluded) is read before and after the measured phase, and its VmRSS sampled every
//! 10 ms during it. `--token T` sends `Authorization: Bearer T`. Prints one JSON object;
//! `session_nodes` counts the sessions per node id (the part of a session id before its
//! first `.`, as `mcpctl start --node-id` makes them; `-` for ids without one), which shows
//! how a load balancer spread them.
//!
//! `floor`: the least a shell call can do: spawn CMD (a stdio MCP server), initialize,
//! initialized, one `tools/call echo {text: "floor"}`, close stdin, wait for the exit.
//! Prints the answer's text. `floor --list` also asks `tools/list` first, as `mcpctl
//! call` does to type the arguments.
//!
//! `rtt`: the machine's floor for one session, without any gateway: the median of 3000
//! sequential `tools/call echo` round trips over CMD's stdio pipes; of round trips of the
//! same size over loopback TCP to a thread that echoes; and through a bare relay (TCP in,
//! CMD's stdin, its stdout, TCP out: a gateway's shape with no HTTP and no JSON work), with
//! a second thread reading the child or with one thread doing both. Prints JSON.
//!
//! `time`: runs each case's command RUNS times, the cases round-robin so that they see the
//! same machine (stdin and stderr null, stdout captured), and prints per case one JSON line
//! with the wall-time median and spread in ms; a run that exits non-zero or whose stdout
//! does not contain EXPECT counts as a failure.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const PROTOCOL_VERSION: &str = "2025-06-18";
const MAX_SESSIONS: usize = 1024;
const MAX_DURATION: f64 = 120.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("floor") => floor(&args[1..]),
        Some("time") => time(&args[1..]),
        Some("rtt") => rtt(&args[1..]),
        _ => Err("usage: mcpctl-loadgen run URL [--sessions N] [--duration S] [--calls N] [--warmup N] \
                  [--pid PID] [--label L] [--token T] | floor [--list] CMD [ARGS...] | time [--warmup N] -- NAME RUNS \
                  EXPECT CMD [ARGS...] [:: NAME RUNS EXPECT CMD...] | rtt CMD [ARGS...]"
            .to_string()),
    };
    if let Err(e) = result {
        eprintln!("mcpctl-loadgen: {e}");
        std::process::exit(2);
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> Result<T, String> {
    v.ok_or_else(|| format!("{flag} needs a value"))?.parse().map_err(|_| format!("{flag}: not a number"))
}

// ---------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------

/// utime + stime of the process itself (all its threads, children excluded), in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------
// run: Streamable HTTP load
// ---------------------------------------------------------------------------

fn check_loopback(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or("the URL must start with http://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host == "localhost" || host == "::1" || host.starts_with("127.") {
        Ok(())
    } else {
        Err(format!("refusing a non-loopback host `{host}`"))
    }
}

struct Session {
    http: Http,
    /// `Bearer <token>`, sent on every request when given.
    auth: Option<String>,
    sid: Option<String>,
    version: String,
    next_id: u64,
    /// A stateless 2026-07-28 client (no session; `_meta` and routing headers on each request).
    modern: bool,
}

/// The revision a `--protocol 2026-07-28` client speaks.
const MODERN: &str = "2026-07-28";

enum CallError {
    Transport(String),
    Rpc(String),
}

/// A minimal HTTP/1.1 client on one kept-alive connection (Content-Length, chunked or
/// read-to-close bodies). The load generator shares the machine with the gateway it
/// measures, so it spends as little CPU per request as it can (a general-purpose client
/// library cost more than some gateways).
struct Http {
    addr: String,
    path: String,
    conn: Option<BufReader<std::net::TcpStream>>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Http {
    fn new(url: &str) -> Http {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (addr, path) = match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        };
        Http { addr, path, conn: None }
    }

    /// One request; a kept-alive connection the server closed meanwhile is opened again once.
    fn send(&mut self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, String> {
        let reused = self.conn.is_some();
        match self.try_send(method, headers, body) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.conn = None;
                self.try_send(method, headers, body)
            }
            Err(e) => Err(e),
        }
    }

    fn try_send(&mut self, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, String> {
        if self.conn.is_none() {
            let s = std::net::TcpStream::connect(&self.addr).map_err(|e| format!("connect {}: {e}", self.addr))?;
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            self.conn = Some(BufReader::with_capacity(16 * 1024, s));
        }
        let conn = self.conn.as_mut().expect("connected");
        let mut out = Vec::with_capacity(256 + body.len());
        let _ =
            write!(out, "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.path, self.addr, body.len());
        for (k, v) in headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        conn.get_mut().write_all(&out).map_err(|e| format!("write: {e}"))?;
        let r = read_reply(conn)?;
        if r.header("connection").map(|v| v.eq_ignore_ascii_case("close")).unwrap_or(false) {
            self.conn = None;
        }
        Ok(r)
    }
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => Err(format!("read: {e}")),
    }
}

fn read_reply(r: &mut BufReader<std::net::TcpStream>) -> Result<Reply, String> {
    let status_line = read_line(r)?;
    let status: u16 =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(format!("bad status line `{status_line}`"))?;
    let mut headers = Vec::new();
    loop {
        let l = read_line(r)?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut reply = Reply { status, headers, body: Vec::new() };
    if let Some(n) = reply.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        reply.body.resize(n, 0);
        r.read_exact(&mut reply.body).map_err(|e| format!("body: {e}"))?;
    } else if reply.header("transfer-encoding").map(|v| v.eq_ignore_ascii_case("chunked")).unwrap_or(false) {
        loop {
            let size = read_line(r)?;
            let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size `{size}`"))?;
            if n == 0 {
                while !read_line(r)?.is_empty() {}
                break;
            }
            let at = reply.body.len();
            reply.body.resize(at + n, 0);
            r.read_exact(&mut reply.body[at..]).map_err(|e| format!("chunk: {e}"))?;
            read_line(r)?;
        }
    } else if !(reply.status == 204 || reply.status == 304 || (100..200).contains(&reply.status)) {
        r.read_to_end(&mut reply.body).map_err(|e| format!("body: {e}"))?;
        reply.headers.push(("connection".into(), "close".into()));
    }
    Ok(reply)
}

impl Session {
    fn new(url: &str, modern: bool) -> Session {
        let version = if modern { MODERN } else { PROTOCOL_VERSION };
        Session { http: Http::new(url), auth: None, sid: None, version: version.into(), next_id: 0, modern }
    }

    /// POSTs one message; for a request, returns the JSON-RPC response with its id.
    fn post(&mut self, body: &Value, expect_answer: bool) -> Result<Option<Value>, CallError> {
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
        if let Some(a) = &self.auth {
            headers.push(("Authorization", a));
        }
        if let Some(sid) = &self.sid {
            headers.push(("Mcp-Session-Id", sid));
            headers.push(("MCP-Protocol-Version", &self.version));
        }
        if self.modern {
            headers.push(("MCP-Protocol-Version", MODERN));
            if let Some(m) = body["method"].as_str() {
                headers.push(("Mcp-Method", m));
            }
            if let Some(n) = body["params"]["name"].as_str() {
                headers.push(("Mcp-Name", n));
            }
        }
        let resp = self.http.send("POST", &headers, body.to_string().as_bytes()).map_err(CallError::Transport)?;
        let status = resp.status;
        if self.sid.is_none() {
            if let Some(s) = resp.header("mcp-session-id") {
                self.sid = Some(s.to_string());
            }
        }
        let ctype = resp.header("content-type").unwrap_or("").to_ascii_lowercase();
        let text = String::from_utf8_lossy(&resp.body);
        if !(200..300).contains(&status) {
            return Err(CallError::Transport(format!("HTTP {status}: {}", text.trim())));
        }
        if !expect_answer {
            return Ok(None);
        }
        let id = &body["id"];
        let found = if ctype.starts_with("text/event-stream") {
            sse_events(&text)
                .into_iter()
                .filter_map(|d| serde_json::from_str::<Value>(&d).ok())
                .find(|m| &m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
        } else {
            serde_json::from_slice::<Value>(&resp.body).ok().filter(|m| &m["id"] == id)
        };
        match found {
            Some(m) if m.get("error").is_some() => Err(CallError::Rpc(m["error"].to_string())),
            Some(m) => Ok(Some(m)),
            None => Err(CallError::Transport(format!("no answer with id {id} in: {}", text.trim()))),
        }
    }

    fn request(&mut self, method: &str, mut params: Value) -> Result<Value, CallError> {
        self.next_id += 1;
        if self.modern {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "mcpctl-loadgen", "version": "0.1"},
            });
        }
        let msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        Ok(self.post(&msg, true)?.unwrap_or(Value::Null))
    }

    fn initialize(&mut self) -> Result<(), CallError> {
        let step = |what: &'static str| {
            move |e: CallError| match e {
                CallError::Transport(s) => CallError::Transport(format!("{what}: {s}")),
                CallError::Rpc(s) => CallError::Rpc(format!("{what}: {s}")),
            }
        };
        if self.modern {
            // No handshake in 2026-07-28: the optional discovery stands in for it.
            let r = self.request("server/discover", json!({})).map_err(step("server/discover"))?;
            let speaks = r["result"]["supportedVersions"].as_array().map(|v| v.iter().any(|x| x == MODERN));
            if speaks != Some(true) {
                return Err(CallError::Transport(format!("server/discover does not list {MODERN}: {r}")));
            }
            return Ok(());
        }
        let r = self
            .request(
                "initialize",
                json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "mcpctl-loadgen", "version": "0.1"}}),
            )
            .map_err(step("initialize"))?;
        if self.sid.is_none() {
            return Err(CallError::Transport("initialize answered without Mcp-Session-Id".into()));
        }
        if let Some(v) = r["result"]["protocolVersion"].as_str() {
            self.version = v.to_string();
        }
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(&note, false).map_err(step("notifications/initialized"))?;
        Ok(())
    }

    /// One echo call; `Ok(true)` when the answer's text is what was sent.
    fn echo(&mut self, text: &str) -> Result<bool, CallError> {
        let r = self.request("tools/call", json!({"name": "echo", "arguments": {"text": text}}))?;
        Ok(r["result"]["content"][0]["text"].as_str() == Some(text))
    }

    fn close(&mut self) {
        if let Some(sid) = self.sid.clone() {
            let mut headers = vec![("Mcp-Session-Id", sid.as_str())];
            if let Some(a) = &self.auth {
                headers.push(("Authorization", a));
            }
            let _ = self.http.send("DELETE", &headers, b"");
        }
    }
}

/// The data of each SSE event (multi-line data joined with `\n`).
fn sse_events(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut data: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            out.extend(data.take());
        } else if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            match &mut data {
                Some(s) => {
                    s.push('\n');
                    s.push_str(d);
                }
                None => data = Some(d.to_string()),
            }
        }
    }
    out.extend(data);
    out
}

#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    mismatches: u64,
    errors: u64,
    init_error: bool,
    /// How long initialize + notifications/initialized took.
    init_ns: u64,
    /// The node id that prefixes the session id (`-`: none; empty: no session).
    node: String,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: CallError) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(match e {
                CallError::Transport(s) => s,
                CallError::Rpc(s) => format!("JSON-RPC error {s}"),
            });
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn run(args: &[String]) -> Result<(), String> {
    let mut url = None;
    let (mut sessions, mut duration, mut calls, mut warmup) = (1usize, 3.0f64, u64::MAX, 20u64);
    let mut pid: Option<u32> = None;
    let mut label = String::new();
    let mut modern = false;
    let mut token: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sessions" => sessions = num(a, it.next())?,
            "--duration" => duration = num(a, it.next())?,
            "--calls" => calls = num(a, it.next())?,
            "--warmup" => warmup = num(a, it.next())?,
            "--pid" => pid = Some(num(a, it.next())?),
            "--label" => label = it.next().cloned().unwrap_or_default(),
            "--protocol" => match it.next().map(String::as_str) {
                Some(MODERN) => modern = true,
                Some(PROTOCOL_VERSION) => modern = false,
                other => return Err(format!("--protocol takes {MODERN} or {PROTOCOL_VERSION}, not {other:?}")),
            },
            "--token" => token = Some(it.next().cloned().ok_or("--token needs a value")?),
            u if !u.starts_with("--") && url.is_none() => url = Some(u.to_string()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let url = url.ok_or("run needs a URL")?;
    check_loopback(&url)?;
    if sessions == 0 || sessions > MAX_SESSIONS {
        return Err(format!("--sessions must be 1..={MAX_SESSIONS}"));
    }
    if !(duration > 0.0 && duration <= MAX_DURATION) {
        return Err(format!("--duration must be in (0, {MAX_DURATION}] seconds"));
    }

    let barrier = Arc::new(Barrier::new(sessions + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..sessions)
        .map(|n| {
            let (url, barrier, stop, token) = (url.clone(), barrier.clone(), stop.clone(), token.clone());
            std::thread::Builder::new()
                .name(format!("session-{n}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut t = Tally::default();
                    let mut s = Session::new(&url, modern);
                    s.auth = token.map(|t| format!("Bearer {t}"));
                    let t0 = Instant::now();
                    let mut ready = s.initialize();
                    t.init_ns = t0.elapsed().as_nanos() as u64;
                    if let Some(sid) = &s.sid {
                        t.node = sid.split_once('.').map(|(n, _)| n).unwrap_or("-").to_string();
                    }
                    for i in 0..warmup {
                        if ready.is_err() {
                            break;
                        }
                        let text = format!("{n}-w{i}");
                        ready = s.echo(&text).and_then(|ok| {
                            if ok {
                                Ok(())
                            } else {
                                Err(CallError::Transport(format!("warm-up answer mismatch for {text}")))
                            }
                        });
                    }
                    barrier.wait();
                    if let Err(e) = ready {
                        t.init_error = true;
                        t.error(e);
                        return t;
                    }
                    t.latencies_ns.reserve(100_000);
                    let mut i = 0u64;
                    let mut text = String::with_capacity(32);
                    while i < calls && !stop.load(Ordering::Relaxed) {
                        text.clear();
                        let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{n}-{i}"));
                        let t0 = Instant::now();
                        let r = s.echo(&text);
                        t.latencies_ns.push(t0.elapsed().as_nanos() as u64);
                        match r {
                            Ok(true) => {}
                            Ok(false) => t.mismatches += 1,
                            Err(e) => t.error(e),
                        }
                        i += 1;
                    }
                    s.close();
                    t
                })
                .map_err(|e| format!("cannot start a session thread: {e}"))
        })
        .collect::<Result<_, _>>()?;

    barrier.wait();
    let self_pid = std::process::id();
    let (cpu0, self0) = (pid.and_then(cpu_seconds), cpu_seconds(self_pid));
    let rss_before = pid.and_then(rss_kb);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(duration);
    let mut rss_peak = rss_before.unwrap_or(0);
    while Instant::now() < deadline && !threads.iter().all(|t| t.is_finished()) {
        if let Some(kb) = pid.and_then(rss_kb) {
            rss_peak = rss_peak.max(kb);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    let mut init_errors = 0;
    let mut init_ns = Vec::with_capacity(sessions);
    let mut nodes = std::collections::BTreeMap::<String, u64>::new();
    for t in threads {
        let t = t.join().map_err(|_| "a session thread panicked")?;
        all.latencies_ns.extend(t.latencies_ns);
        all.mismatches += t.mismatches;
        all.errors += t.errors;
        init_errors += u64::from(t.init_error);
        init_ns.push(t.init_ns);
        if !t.node.is_empty() {
            *nodes.entry(t.node).or_default() += 1;
        }
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cpu1, self1) = (pid.and_then(cpu_seconds), cpu_seconds(self_pid));
    let n = all.latencies_ns.len() as u64;
    init_ns.sort_unstable();
    all.latencies_ns.sort_unstable();
    let per_call_us = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if n > 0 => json!(round((b - a) / n as f64 * 1e6, 2)),
        _ => Value::Null,
    };
    let mean = if n > 0 { all.latencies_ns.iter().sum::<u64>() as f64 / n as f64 / 1e6 } else { 0.0 };
    let out = json!({
        "label": label,
        "url": url,
        "sessions": sessions,
        "calls": n,
        "seconds": round(seconds, 3),
        "calls_per_s": round(n as f64 / seconds, 1),
        "p50_ms": round(percentile(&all.latencies_ns, 0.50), 4),
        "p99_ms": round(percentile(&all.latencies_ns, 0.99), 4),
        "mean_ms": round(mean, 4),
        "mismatches": all.mismatches,
        "errors": all.errors,
        "init_errors": init_errors,
        "init_p50_ms": round(percentile(&init_ns, 0.5), 3),
        "init_max_ms": round(init_ns.last().copied().unwrap_or(0) as f64 / 1e6, 3),
        "first_error": all.first_error,
        "session_nodes": nodes,
        "server_pid": pid,
        "server_cpu_s": match (cpu0, cpu1) { (Some(a), Some(b)) => json!(round(b - a, 3)), _ => Value::Null },
        "server_cpu_us_per_call": per_call_us(cpu0, cpu1),
        "server_rss_kb_before": rss_before,
        "server_rss_kb_peak": pid.map(|_| rss_peak),
        "loadgen_cpu_us_per_call": per_call_us(self0, self1),
    });
    println!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------
// floor: the minimal direct stdio call
// ---------------------------------------------------------------------------

fn floor(args: &[String]) -> Result<(), String> {
    let (list, args) = match args.first().map(String::as_str) {
        Some("--list") => (true, &args[1..]),
        _ => (false, args),
    };
    let (cmd, rest) = args.split_first().ok_or("floor needs a command")?;
    let (mut child, mut stdin, mut stdout) = spawn_piped(cmd, rest, Stdio::inherit())?;
    let mut line = String::new();
    let mut send = |msg: &str| stdin.write_all(msg.as_bytes()).and_then(|_| stdin.flush());
    let mut answer = |stdout: &mut BufReader<_>, id: u64| -> Result<Value, String> {
        loop {
            line.clear();
            if stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("the server closed stdout".into());
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| format!("not JSON: {e}"))?;
            if v["id"] == json!(id) {
                return Ok(v);
            }
        }
    };
    let io = |e: std::io::Error| e.to_string();
    send(concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
        r#""capabilities":{},"clientInfo":{"name":"floor","version":"0"}}}"#,
        "\n"
    ))
    .map_err(io)?;
    answer(&mut stdout, 1)?;
    send(concat!(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, "\n")).map_err(io)?;
    if list {
        send(concat!(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#, "\n")).map_err(io)?;
        answer(&mut stdout, 3)?;
    }
    send(concat!(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"floor"}}}"#,
        "\n"
    ))
    .map_err(io)?;
    let r = answer(&mut stdout, 2)?;
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    let text = r["result"]["content"][0]["text"].as_str().unwrap_or("").to_string();
    println!("{text}");
    if !status.success() {
        return Err(format!("the server exited with {status}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// time: wall time of commands, interleaved
// ---------------------------------------------------------------------------

struct Case {
    name: String,
    runs: usize,
    expect: String,
    cmd: Vec<String>,
    times: Vec<u64>,
    failures: u64,
    first_failure: Option<String>,
}

/// Runs once: wall time from spawn to exit, and whether it exited 0 printing `expect`.
fn time_once(c: &Case) -> Result<(u64, Option<String>), String> {
    let t0 = Instant::now();
    let mut child = Command::new(&c.cmd[0])
        .args(&c.cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", c.cmd[0]))?;
    let mut out = String::new();
    let _ = child.stdout.take().expect("piped").read_to_string(&mut out);
    let status = child.wait().map_err(|e| e.to_string())?;
    let dt = t0.elapsed().as_nanos() as u64;
    let bad = !status.success() || !out.contains(&c.expect);
    Ok((dt, bad.then(|| format!("{status}: {}", out.trim()))))
}

/// `time [--warmup W] -- NAME RUNS EXPECT CMD... [:: NAME RUNS EXPECT CMD...]`: the
/// cases run round-robin (one run of each in turn) so that they see the same machine.
fn time(args: &[String]) -> Result<(), String> {
    let mut warmup = 1usize;
    let mut it = args.iter();
    let mut rest: Vec<String> = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--warmup" => warmup = num(a, it.next())?,
            "--" => rest = it.by_ref().cloned().collect(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let mut cases = Vec::new();
    for group in rest.split(|a| a == "::") {
        let [name, runs, expect, cmd @ ..] = group else {
            return Err("each case is NAME RUNS EXPECT CMD [ARGS...]".into());
        };
        let runs: usize = num("RUNS", Some(runs))?;
        if cmd.is_empty() || runs == 0 || runs > 1000 {
            return Err(format!("case {name}: RUNS must be 1..=1000 and a command given"));
        }
        cases.push(Case {
            name: name.clone(),
            runs,
            expect: expect.clone(),
            cmd: cmd.to_vec(),
            times: Vec::with_capacity(runs),
            failures: 0,
            first_failure: None,
        });
    }
    if cases.is_empty() {
        return Err("time needs -- NAME RUNS EXPECT CMD...".into());
    }
    for c in &cases {
        for _ in 0..warmup {
            time_once(c)?;
        }
    }
    while cases.iter().any(|c| c.times.len() < c.runs) {
        for c in cases.iter_mut().filter(|c| c.times.len() < c.runs) {
            let (dt, failure) = time_once(c)?;
            c.times.push(dt);
            if let Some(f) = failure {
                c.failures += 1;
                c.first_failure.get_or_insert(f);
            }
        }
    }
    for c in &mut cases {
        c.times.sort_unstable();
        let t = &c.times;
        let out = json!({
            "name": c.name,
            "runs": c.runs,
            "median_ms": round(percentile(t, 0.5), 3),
            "p10_ms": round(percentile(t, 0.1), 3),
            "p90_ms": round(percentile(t, 0.9), 3),
            "min_ms": round(t[0] as f64 / 1e6, 3),
            "max_ms": round(t[t.len() - 1] as f64 / 1e6, 3),
            "failures": c.failures,
            "first_failure": c.first_failure,
        });
        println!("{out}");
    }
    Ok(())
}

/// Start CMD with piped stdin and stdout.
fn spawn_piped(
    cmd: &str,
    rest: &[String],
    stderr: Stdio,
) -> Result<(std::process::Child, std::process::ChildStdin, BufReader<std::process::ChildStdout>), String> {
    let mut child = Command::new(cmd)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {cmd}: {e}"))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    Ok((child, stdin, stdout))
}

/// initialize + notifications/initialized, as lines.
const RTT_HANDSHAKE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
    r#""capabilities":{},"clientInfo":{"name":"rtt","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n"
);

/// The `i`th echo call of a round-trip measurement, as a line (its answer carries `0-i`).
fn rtt_call(i: u64) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"0-{i}\"}}}}}}\n"
    )
}

fn median_us(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    round(v[v.len() / 2], 1)
}

fn rtt(args: &[String]) -> Result<(), String> {
    const N: u64 = 3000;
    let (cmd, rest) = args.split_first().ok_or("rtt needs a command")?;
    let (mut child, mut stdin, mut stdout) = spawn_piped(cmd, rest, Stdio::null())?;
    let mut line = String::new();
    let io = |e: std::io::Error| e.to_string();
    stdin.write_all(RTT_HANDSHAKE.as_bytes()).map_err(io)?;
    stdout.read_line(&mut line).map_err(io)?;
    let mut stdio = Vec::new();
    let mut size = 0;
    for i in 1..=N {
        let msg = rtt_call(i);
        size = msg.len();
        line.clear();
        let t = Instant::now();
        stdin.write_all(msg.as_bytes()).map_err(io)?;
        stdout.read_line(&mut line).map_err(io)?;
        stdio.push(t.elapsed().as_secs_f64() * 1e6);
        if !line.contains(&format!("0-{i}")) {
            return Err(format!("unexpected answer: {line}"));
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; 4096];
        let mut s2 = s.try_clone()?;
        let mut r = s;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            s2.write_all(&buf[..n])?;
        }
    });
    let mut c = std::net::TcpStream::connect(addr).map_err(io)?;
    c.set_nodelay(true).map_err(io)?;
    let msg = vec![b'x'; size + 200];
    let mut back = vec![0u8; msg.len()];
    let mut tcp = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        c.write_all(&msg).map_err(io)?;
        c.read_exact(&mut back).map_err(io)?;
        tcp.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(c);
    let _ = echo.join();
    let relay2 = relay(cmd, rest, N, false)?;
    let relay1 = relay(cmd, rest, N, true)?;
    let (stdio, tcp) = (median_us(stdio), median_us(tcp));
    println!(
        "{}",
        json!({"name": "rtt", "round_trips": N, "stdio_p50_us": stdio, "tcp_p50_us": tcp,
               "floor_p50_ms": round((stdio + tcp) / 1000.0, 3),
               "relay_two_threads_p50_us": relay2, "relay_one_thread_p50_us": relay1})
    );
    Ok(())
}

/// The least a gateway can do: relay lines from a loopback TCP client to CMD's stdin and
/// its answers back, with no HTTP and no JSON work. `one_thread`: the thread that writes a
/// request reads the answer itself; else a second thread reads the child (as a gateway that
/// serves many clients from one child must). Median round trip in µs, seen by the client.
fn relay(cmd: &str, rest: &[String], n: u64, one_thread: bool) -> Result<f64, String> {
    let io = |e: std::io::Error| e.to_string();
    let (mut child, mut stdin, stdout) = spawn_piped(cmd, rest, Stdio::null())?;
    let mut stdout = Some(stdout);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let relay = std::thread::spawn(move || -> std::io::Result<()> {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut from_client = BufReader::new(s.try_clone()?);
        let mut to_client = s;
        let mut line = String::new();
        let mut answer = String::new();
        let reader = if one_thread {
            None
        } else {
            let mut to_client = to_client.try_clone()?;
            let mut stdout = stdout.take().expect("not taken yet");
            Some(std::thread::spawn(move || -> std::io::Result<()> {
                let mut line = String::new();
                while {
                    line.clear();
                    stdout.read_line(&mut line)? > 0
                } {
                    to_client.write_all(line.as_bytes())?;
                }
                Ok(())
            }))
        };
        loop {
            line.clear();
            if from_client.read_line(&mut line)? == 0 {
                drop(stdin);
                if let Some(r) = reader {
                    let _ = r.join();
                }
                return Ok(());
            }
            stdin.write_all(line.as_bytes())?;
            if one_thread && line.contains("\"id\"") {
                answer.clear();
                stdout.as_mut().expect("kept").read_line(&mut answer)?;
                to_client.write_all(answer.as_bytes())?;
            }
        }
    });
    let c = std::net::TcpStream::connect(addr).map_err(io)?;
    c.set_nodelay(true).map_err(io)?;
    let mut w = c.try_clone().map_err(io)?;
    let mut r = BufReader::new(c);
    let mut line = String::new();
    w.write_all(RTT_HANDSHAKE.as_bytes()).map_err(io)?;
    r.read_line(&mut line).map_err(io)?;
    let mut times = Vec::new();
    for i in 1..=n {
        let msg = rtt_call(i);
        line.clear();
        let t = Instant::now();
        w.write_all(msg.as_bytes()).map_err(io)?;
        r.read_line(&mut line).map_err(io)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if !line.contains(&format!("0-{i}")) {
            return Err(format!("unexpected answer through the relay: {line}"));
        }
    }
    drop((w, r));
    let _ = relay.join();
    let _ = child.kill();
    let _ = child.wait();
    Ok(median_us(times))
}
