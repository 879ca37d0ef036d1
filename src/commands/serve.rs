//! `mcpctl serve --stdio [--server NAME]`: the gateway over stdio, for clients that only
//! launch stdio servers (Claude Desktop and others).
//!
//! There is one implementation of the gateway's semantics (naming, policy, supervision,
//! routing): the HTTP gateway. This front end is a bridge to one:
//!
//! - the project's running daemon, at `/mcp` (or `/mcp/NAME`), when one runs and we may use
//!   it (`MCPCTL_TOKEN` when it needs a token; the same rules as the shell client);
//! - else an in-process gateway (`gateway::serve`) on `127.0.0.1:0` whose bearer token is
//!   fresh random bytes that never leave this process (not in argv, the environment, logs or
//!   a state file; no `.mcpctl/daemon.json` is written: other commands do not find it). Its
//!   children stop when stdin closes or on SIGTERM/SIGINT.
//!
//! The bridge is a Streamable HTTP client of its own (ureq), so it owns the session:
//!
//! - one thread reads newline-delimited JSON-RPC from stdin, lines bounded by
//!   `MCPCTL_MAX_LINE`; a line that is not JSON gets a `-32700` error with id null;
//! - the client's `initialize` is POSTed as it is (its protocol version and capabilities
//!   reach the gateway unchanged) on the reading thread; its answer gives the session, and a
//!   GET stream is opened for messages that belong to no request (`list_changed`, …);
//! - every other request is POSTed on a thread of its own (at most `MAX_IN_FLIGHT` at once,
//!   each with a deadline); a JSON answer is relayed, an SSE answer message by message in
//!   order (progress, server→client requests, then the answer);
//! - notifications (`notifications/cancelled` too) and the client's answers to
//!   server→client requests are POSTed in order on the reading thread, with a short deadline;
//! - ids are never rewritten: the client's own ids go to the gateway, which keeps them
//!   apart per session, and the gateway's ids of server→client requests come back as they are;
//! - the gateway forgetting the session (404: idle expiry, a daemon restart) re-initializes
//!   once with the client's own `initialize`, then the request is sent again;
//! - one writer thread owns stdout (one message a line, never interleaved), fed by a bounded
//!   queue. Logs go to stderr only.
//!
//! A 2026-07-28 stdio client (no `initialize`; `server/discover`, and the revision in each
//! request's `_meta`) is served beside that, statelessly: see [`modern`].

use super::Ctx;
use crate::config::Config;
use crate::error::{Error, Result, Status};
use crate::jsonrpc;
use crate::output::{Failure, Report};
use crate::signals;
use crate::sync::Locked;
use crate::transport::http::ParamHeader;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

mod backend;
mod modern;
use backend::{own_gateway, running_daemon, wait_done};
use modern::is_modern;
use std::time::{Duration, Instant};

type Outcome = std::result::Result<Report, Failure>;

/// Requests of the client in flight at once; past it a request gets an error at once.
const MAX_IN_FLIGHT: usize = 64;
/// Messages waiting for stdout.
const OUT_QUEUE: usize = 64;
/// Bytes of messages waiting for stdout (one message is always let in, however large).
const MAX_QUEUED: usize = 256 * 1024 * 1024;
/// How long a message waits for room in the stdout queue (a client that stops reading).
const OUT_WAIT: Duration = Duration::from_secs(60);
/// Deadline of a notification, an answer, `initialize` and the DELETE that ends the session.
const SIDE: Duration = Duration::from_secs(10);
/// Deadline of the client's `initialize`.
const INIT: Duration = Duration::from_secs(60);
/// How long the in-process gateway's servers may take to start before the client is served.
const STARTUP: Duration = Duration::from_secs(10);
/// After stdin closes: how long requests in flight may take to finish.
const DRAIN: Duration = Duration::from_secs(2);
/// The revisions with sessions (`initialize`); a request naming another one in its `_meta`
/// (or `server/discover`) is of the 2026-07-28 era and is forwarded statelessly.
const SESSION_REVISIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The error of a request that got no answer.
const UNAVAILABLE: i64 = jsonrpc::SERVER_UNAVAILABLE;
/// Cancelled ids remembered (so that no made-up error answers them).
const MAX_CANCELLED: usize = 1024;

pub fn serve(ctx: &Ctx, stdio: bool, server: Option<&str>) -> Outcome {
    if !stdio {
        return Err(Error::usage("mcpctl serve needs --stdio (the only front end it has)")
            .hint("usage: mcpctl serve --stdio [--server NAME]")
            .into());
    }
    if ctx.g.json_output {
        return Err(
            Error::usage("--json-output does not apply to `mcpctl serve --stdio` (stdout carries JSON-RPC)").into()
        );
    }
    let cfg = ctx.load_config()?;
    let path = match server {
        Some(name) => {
            ctx.server(&cfg, name)?;
            format!("/mcp/{}", name)
        }
        None => "/mcp".to_string(),
    };
    let deadline = request_deadline(&cfg);
    if let Some((base, headers)) = running_daemon(ctx, &cfg, server)? {
        log::info!("bridging stdio to the daemon at {}{}", base, path);
        let bridge = Bridge::new(format!("{}{}", base, path), headers, deadline)?;
        let done = bridge.clone().start(None)?;
        wait_done(&bridge, &done);
        bridge.finish();
        return Ok(quiet());
    }
    own_gateway(&cfg, &path, deadline)?;
    Ok(quiet())
}

/// Nothing on stdout when the session ends.
fn quiet() -> Report {
    Report { raw: Some(String::new()), ..Report::new(Status::Success, "serve") }
}

/// A request's deadline: longer than any server's `timeout` (the gateway answers by then),
/// with room for a question to the client's user.
fn request_deadline(cfg: &Config) -> Duration {
    let longest = cfg.servers.iter().map(|s| s.timeout).max().unwrap_or(Duration::from_secs(30));
    (longest + Duration::from_secs(60)).max(Duration::from_secs(120))
}

/// The bridge between the stdio client and one gateway endpoint.
struct Bridge {
    url: String,
    /// `Authorization`, when the gateway needs it (never logged).
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    deadline: Duration,
    max_line: usize,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    /// The client's `initialize`, replayed when the gateway forgets the session.
    init: Mutex<Option<String>>,
    renewing: AtomicBool,
    /// Which GET stream is current (an older one stops relaying).
    stream_gen: AtomicU64,
    in_flight: AtomicUsize,
    /// Ids (as JSON text) of the client's requests in flight, and those of them it cancelled.
    flying: Mutex<HashSet<String>>,
    cancelled: Mutex<HashSet<String>>,
    /// Ids of the 2026-07-28 requests in flight (their cancellation is not POSTed).
    modern: Mutex<HashSet<String>>,
    /// Ids of the 2026-07-28 `tools/list` requests in flight (their answers teach `params`).
    listing: Mutex<HashSet<String>>,
    /// The `x-mcp-header` parameters of each tool listed to a 2026-07-28 client.
    params: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// The connections of the 2026-07-28 requests in flight, by id (cancelling closes one).
    conns: Mutex<HashMap<String, std::net::TcpStream>>,
    out: SyncSender<Vec<u8>>,
    /// Bytes in `out`.
    queued: Arc<AtomicUsize>,
    /// The writer has written everything queued before the marker.
    flushed: Mutex<Option<Receiver<()>>>,
    closing: AtomicBool,
    client_gone: Arc<AtomicBool>,
}

/// One request in flight; counted out when dropped.
struct Flight {
    bridge: Arc<Bridge>,
    key: String,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.bridge.flying.locked().remove(&self.key);
        self.bridge.cancelled.locked().remove(&self.key);
        self.bridge.modern.locked().remove(&self.key);
        self.bridge.listing.locked().remove(&self.key);
        self.bridge.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a POST brought back.
enum Answer {
    /// The request's answer was relayed.
    Answered,
    /// No answer: the JSON-RPC error code to give the client, and why.
    Missing(i64, String),
    /// The gateway does not know the session (404).
    SessionGone,
}

impl Bridge {
    fn new(url: String, headers: Vec<(String, String)>, deadline: Duration) -> Result<Arc<Bridge>> {
        let agent = crate::net::loopback_agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(5)))
                .max_idle_connections_per_host(MAX_IN_FLIGHT + 2),
        );
        let (out, rx) = sync_channel::<Vec<u8>>(OUT_QUEUE);
        let (flushed_tx, flushed_rx) = sync_channel::<()>(1);
        let client_gone = Arc::new(AtomicBool::new(false));
        let gone = client_gone.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        std::thread::Builder::new()
            .name("serve-stdout".into())
            .spawn(move || writer(rx, flushed_tx, gone, q))
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        Ok(Arc::new(Bridge {
            url,
            headers,
            agent,
            deadline,
            max_line: crate::transport::stdio::max_line(),
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            init: Mutex::new(None),
            renewing: AtomicBool::new(false),
            stream_gen: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            flying: Mutex::new(HashSet::new()),
            cancelled: Mutex::new(HashSet::new()),
            modern: Mutex::new(HashSet::new()),
            listing: Mutex::new(HashSet::new()),
            params: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            out,
            queued,
            flushed: Mutex::new(Some(flushed_rx)),
            closing: AtomicBool::new(false),
            client_gone,
        }))
    }

    /// Start reading stdin (after the servers at `status` have started, when given); the
    /// receiver hears when stdin has closed.
    fn start(self: Arc<Self>, status: Option<String>) -> Result<Receiver<()>> {
        let (tx, rx) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("serve-stdin".into())
            .spawn(move || {
                if let Some(url) = status {
                    self.wait_started(&url);
                }
                self.read_stdin();
                let _ = tx.send(());
            })
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        Ok(rx)
    }

    /// Until no server of the in-process gateway is `starting` (at most STARTUP): a client
    /// that calls a tool right after `initialize` finds it, as it would at a warm daemon.
    fn wait_started(&self, status: &str) {
        let until = Instant::now() + STARTUP;
        while Instant::now() < until && !signals::stopping() {
            let mut req = self.agent.get(status).config().timeout_global(Some(Duration::from_secs(2))).build();
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let starting = match req.call() {
                Ok(r) if r.status().is_success() => read_body(r, 16 * 1024 * 1024)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v["servers"].as_array().map(|a| a.iter().any(|s| s["status"] == "starting")))
                    .unwrap_or(false),
                _ => false,
            };
            if !starting {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log::info!("serving while some servers are still starting (their tools come with tools/list_changed)");
    }

    fn read_stdin(self: &Arc<Self>) {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        loop {
            match read_line(&mut input, self.max_line, &mut line) {
                Ok(None) => {
                    log::debug!("stdin closed");
                    return;
                }
                Ok(Some(false)) => self.emit(&jsonrpc::error_response(
                    Value::Null,
                    jsonrpc::PARSE_ERROR,
                    &format!("Parse error: a line longer than {} bytes (MCPCTL_MAX_LINE)", self.max_line),
                )),
                Ok(Some(true)) => self.take_line(&line),
                Err(e) => {
                    log::warn!("reading stdin failed: {}", e);
                    return;
                }
            }
        }
    }

    /// One line from the client.
    fn take_line(self: &Arc<Self>, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            self.emit(&jsonrpc::error_response(
                Value::Null,
                jsonrpc::PARSE_ERROR,
                "Parse error: the line is not UTF-8",
            ));
            return;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.emit(&jsonrpc::error_response(Value::Null, jsonrpc::PARSE_ERROR, &format!("Parse error: {}", e)));
                return;
            }
        };
        let Some(obj) = v.as_object() else {
            let why = if v.is_array() { "batches are not supported" } else { "not a JSON-RPC message" };
            self.emit(&jsonrpc::error_response(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                &format!("Invalid Request: {}", why),
            ));
            return;
        };
        let id = obj.get("id").cloned();
        match (obj.get("method").and_then(Value::as_str), id) {
            (Some("initialize"), Some(id)) => {
                // On this thread: what follows needs the session it opens.
                *self.init.locked() = Some(text.to_string());
                let old = self.session.locked().take();
                if let Some(old) = old {
                    // A second `initialize`: the first session is ended, not left behind.
                    self.end_session(&old);
                }
                *self.protocol.locked() = None;
                self.exchange(&id, text, true, None);
            }
            (Some(method), Some(id)) if is_modern(method, &v) => {
                // A 2026-07-28 request: no session; forwarded with the routing headers the
                // HTTP hop needs (stdio has none).
                let headers = self.modern_headers(method, &v);
                if method == "tools/list" {
                    self.listing.locked().insert(id.to_string());
                }
                self.spawn_request(id, text.to_string(), Some(headers));
            }
            (Some(_), Some(id)) => self.spawn_request(id, text.to_string(), None),
            (Some(method), None) => {
                if method == "notifications/cancelled" {
                    // Remembered while that request is in flight (an id may be used again later).
                    let rid = obj.get("params").and_then(|p| p.get("requestId")).map(Value::to_string);
                    if let Some(rid) = rid.filter(|r| self.flying.locked().contains(r)) {
                        let modern = self.modern.locked().contains(&rid);
                        {
                            let mut c = self.cancelled.locked();
                            if c.len() < MAX_CANCELLED {
                                c.insert(rid.clone());
                            }
                        }
                        if modern {
                            // Over HTTP, a 2026-07-28 client cancels by closing the request's
                            // connection (the gateway cancels it upstream); nothing is POSTed.
                            self.close_modern(&rid);
                            return;
                        }
                    }
                }
                self.post_side(text);
            }
            // The client's answer to a server→client request.
            (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => self.post_side(text),
            (None, id) => self.emit(&jsonrpc::error_response(
                id.unwrap_or(Value::Null),
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: no method, result or error",
            )),
        }
    }

    /// A request on a thread of its own; `modern`: the 2026-07-28 routing headers (no session).
    fn spawn_request(self: &Arc<Self>, id: Value, text: String, modern: Option<Vec<(String, String)>>) {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.listing.locked().remove(&id.to_string());
            self.emit(&jsonrpc::error_response(
                id,
                jsonrpc::SERVER_UNAVAILABLE,
                &format!(
                    "mcpctl serve: {} requests are in flight already; try again when one has finished",
                    MAX_IN_FLIGHT
                ),
            ));
            return;
        }
        let key = id.to_string();
        self.flying.locked().insert(key.clone());
        if modern.is_some() {
            self.modern.locked().insert(key.clone());
        }
        let me = self.clone();
        let id2 = id.clone();
        let spawned = std::thread::Builder::new().name("serve-request".into()).spawn(move || {
            // Counted out however the exchange ends (a panic too).
            let _flight = Flight { bridge: me.clone(), key };
            me.exchange(&id2, &text, false, modern.as_deref());
        });
        if let Err(e) = spawned {
            self.flying.locked().remove(&id.to_string());
            self.modern.locked().remove(&id.to_string());
            self.listing.locked().remove(&id.to_string());
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.emit(&jsonrpc::error_response(
                id,
                jsonrpc::INTERNAL_ERROR,
                &format!("mcpctl serve: cannot start a thread: {}", e),
            ));
        }
    }

    /// POST a request and relay what comes back until its answer; a made-up error when none
    /// comes (unless the client cancelled it). With `modern` (2026-07-28 routing headers),
    /// statelessly: no session, and whatever the gateway answers is the answer.
    fn exchange(self: &Arc<Self>, id: &Value, text: &str, init: bool, modern: Option<&[(String, String)]>) {
        let timeout = if init { INIT } else { self.deadline };
        let session = self.session.locked().clone();
        let mut answer = match modern {
            Some(headers) => self.modern_request(id, text, headers),
            None => self.request(id, text, timeout, session.as_deref(), init),
        };
        if let (Answer::SessionGone, Some(stale)) = (&answer, session.as_deref()) {
            answer = if self.renew(stale) {
                let again = self.session.locked().clone();
                self.request(id, text, timeout, again.as_deref(), false)
            } else {
                Answer::Missing(UNAVAILABLE, "the gateway ended the session and a new one could not be opened".into())
            };
        }
        let (code, why) = match answer {
            Answer::Answered => {
                if init && self.session.locked().is_some() {
                    self.open_stream();
                }
                return;
            }
            Answer::Missing(code, why) => (code, why),
            Answer::SessionGone => (UNAVAILABLE, "the gateway does not know the session (HTTP 404)".into()),
        };
        if self.cancelled.locked().remove(&id.to_string()) {
            return;
        }
        log::warn!("request {}: {}", id, why);
        self.emit(&jsonrpc::error_response(id.clone(), code, &format!("mcpctl serve: {}", why)));
    }

    /// One POST of a request with `session`; relays what comes back.
    fn request(&self, id: &Value, text: &str, timeout: Duration, session: Option<&str>, init: bool) -> Answer {
        let started = Instant::now();
        let resp = match self.post(text, timeout, session) {
            Ok(r) => r,
            Err((code, e)) => return Answer::Missing(code, e),
        };
        let status = resp.status().as_u16();
        if init && (200..300).contains(&status) {
            if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                *self.session.locked() = Some(s.to_string());
            }
        }
        if status == 404 && session.is_some() {
            return Answer::SessionGone;
        }
        let stream = content_type(&resp).starts_with("text/event-stream");
        let answered = if stream && (200..300).contains(&status) {
            self.relay_stream(resp, Some(id), None)
        } else if status == 202 {
            return Answer::Missing(UNAVAILABLE, "the gateway accepted the request but sent no answer".into());
        } else {
            let body = match read_body(resp, self.max_line) {
                Ok(b) => b,
                Err(e) => return Answer::Missing(UNAVAILABLE, e),
            };
            match self.relay_body(status, &body, id) {
                Ok(seen) => seen,
                Err(missing) => return missing,
            }
        };
        self.outcome(answered, started, timeout, status)
    }

    /// The messages of a JSON answer (one, or a batch) relayed; whether the answer to `id` was
    /// among them.
    fn relay_body(&self, status: u16, body: &str, id: &Value) -> std::result::Result<bool, Answer> {
        Ok(match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(msgs)) => {
                // Every message is relayed, the answer wherever it is.
                let mut seen = false;
                for m in msgs {
                    seen |= self.relay(m, Some(id));
                }
                seen
            }
            Ok(m) if m.is_object() => self.relay(m, Some(id)),
            _ if (200..300).contains(&status) => false,
            _ => {
                return Err(Answer::Missing(
                    UNAVAILABLE,
                    format!("the gateway answered HTTP {}: {}", status, snippet(body)),
                ))
            }
        })
    }

    /// What an exchange that ended came to.
    fn outcome(&self, answered: bool, started: Instant, timeout: Duration, status: u16) -> Answer {
        if answered {
            Answer::Answered
        } else if started.elapsed() >= timeout {
            Answer::Missing(
                jsonrpc::REQUEST_TIMEOUT,
                format!("no answer from the gateway within {}s", timeout.as_secs()),
            )
        } else {
            Answer::Missing(UNAVAILABLE, format!("the gateway ended the exchange without answering (HTTP {})", status))
        }
    }

    /// Hand a message from the gateway to the client; true when it answers `want`. The
    /// revision in the answer to `initialize` goes on every later request.
    fn relay(&self, m: Value, want: Option<&Value>) -> bool {
        let is_answer = want.is_some()
            && m.get("method").is_none()
            && m.get("id") == want
            && (m.get("result").is_some() || m.get("error").is_some());
        if is_answer && self.cancelled.locked().remove(&m["id"].to_string()) {
            // The client cancelled it: no answer is due any more.
            log::debug!("dropped the answer to cancelled request {}", m["id"]);
            return true;
        }
        if is_answer && self.listing.locked().remove(&m["id"].to_string()) {
            self.learn_params(&m);
        }
        if is_answer {
            if let Some(p) = m.get("result").and_then(|r| r.get("protocolVersion")).and_then(Value::as_str) {
                let is_init = self.init.locked().is_some() && self.protocol.locked().is_none();
                if is_init {
                    *self.protocol.locked() = Some(p.to_string());
                }
            }
        }
        self.emit(&m);
        is_answer
    }

    /// Relay the events of an SSE body in order; with `want`, stop at its answer (true).
    /// With `generation`, stop once a newer GET stream has replaced this one.
    fn relay_stream(
        &self,
        resp: ureq::http::Response<ureq::Body>,
        want: Option<&Value>,
        generation: Option<u64>,
    ) -> bool {
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        self.relay_events(&mut std::io::BufReader::new(body), want, generation)
    }

    /// Relay the events of an SSE body (see `relay_stream`).
    fn relay_events(&self, r: &mut impl BufRead, want: Option<&Value>, generation: Option<u64>) -> bool {
        let mut line = Vec::new();
        let mut data = String::new();
        loop {
            if let Some(g) = generation {
                if g != self.stream_gen.load(Ordering::SeqCst) || self.closing.load(Ordering::SeqCst) {
                    return false;
                }
            }
            match read_line(r, self.max_line, &mut line) {
                Ok(None) | Err(_) => return false,
                Ok(Some(false)) => {
                    log::warn!("the gateway sent an SSE line longer than {} bytes; dropped", self.max_line);
                    data.clear();
                    continue;
                }
                Ok(Some(true)) => {}
            }
            let l = String::from_utf8_lossy(&line);
            let l = l.trim_end_matches('\r');
            if l.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let event = std::mem::take(&mut data);
                match serde_json::from_str::<Value>(&event) {
                    Ok(m) => {
                        if self.relay(m, want) {
                            return true;
                        }
                    }
                    Err(_) => log::warn!("the gateway sent an SSE event that is not JSON: {}", snippet(&event)),
                }
                continue;
            }
            if let Some(d) = l.strip_prefix("data:") {
                if data.len() + d.len() > self.max_line {
                    log::warn!("the gateway sent an SSE event longer than {} bytes; dropped", self.max_line);
                    data.clear();
                    continue;
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }

    fn post(
        &self,
        text: &str,
        timeout: Duration,
        session: Option<&str>,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, (i64, String)> {
        let mut req = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(s) = session {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(p) = self.protocol.locked().clone() {
            req = req.header("MCP-Protocol-Version", p.as_str());
        }
        req.send(text).map_err(|e| self.net_error(e))
    }

    /// A failed POST: `-32001` when it ran out of time, `-32000` else; and why.
    fn net_error(&self, e: ureq::Error) -> (i64, String) {
        match e {
            ureq::Error::Timeout(t) => {
                (jsonrpc::REQUEST_TIMEOUT, format!("no answer from the gateway in time ({})", t))
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                (UNAVAILABLE, format!("cannot reach the gateway at {}: connection refused", self.url))
            }
            other => (UNAVAILABLE, format!("cannot reach the gateway at {}: {}", self.url, other)),
        }
    }

    /// A notification or an answer of the client: POSTed now, in order, with a short deadline.
    fn post_side(&self, text: &str) {
        let session = self.session.locked().clone();
        match self.post(text, SIDE, session.as_deref()) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let body = read_body(resp, 64 * 1024).unwrap_or_default();
                    log::warn!("the gateway refused a message of the client: HTTP {} {}", status, snippet(&body));
                }
            }
            Err((_, e)) => log::warn!("a message of the client was not delivered: {}", e),
        }
    }

    /// The gateway forgot session `stale`: initialize again with the client's own
    /// `initialize` (one thread does it; the others wait for it, bounded).
    fn renew(self: &Arc<Self>, stale: &str) -> bool {
        let until = Instant::now() + SIDE;
        loop {
            let now = self.session.locked().clone();
            if now.as_deref() != Some(stale) {
                return now.is_some();
            }
            if !self.renewing.swap(true, Ordering::SeqCst) {
                break;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ok = self.reinitialize();
        if !ok {
            *self.session.locked() = None;
        }
        self.renewing.store(false, Ordering::SeqCst);
        ok
    }

    fn reinitialize(self: &Arc<Self>) -> bool {
        let Some(init) = self.init.locked().clone() else { return false };
        let Ok(mut msg) = serde_json::from_str::<Value>(&init) else { return false };
        log::info!("the gateway ended the session; initializing again");
        msg["id"] = json!("mcpctl-serve-reinit");
        let resp = match self.post(&msg.to_string(), SIDE, None) {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                log::warn!("initializing again failed: HTTP {}", r.status().as_u16());
                return false;
            }
            Err((_, e)) => {
                log::warn!("initializing again failed: {}", e);
                return false;
            }
        };
        let Some(sid) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string) else {
            return false;
        };
        // The answer is the gateway's to us, not the client's: read and dropped.
        drop(resp);
        *self.session.locked() = Some(sid.clone());
        if let Ok(r) = self.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, SIDE, Some(&sid)) {
            drop(r);
        }
        self.open_stream();
        true
    }

    /// (Re)open the GET stream for messages that belong to no request.
    fn open_stream(self: &Arc<Self>) {
        let generation = self.stream_gen.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("serve-get".into()).spawn(move || me.listen(generation));
        if let Err(e) = spawned {
            log::warn!("cannot start the thread of the GET stream: {}", e);
        }
    }

    fn listen(&self, generation: u64) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if generation != self.stream_gen.load(Ordering::SeqCst) || self.closing.load(Ordering::SeqCst) {
                return;
            }
            let Some(session) = self.session.locked().clone() else { return };
            let mut req = self
                .agent
                .get(&self.url)
                .config()
                .timeout_recv_response(Some(SIDE))
                .build()
                .header("Accept", "text/event-stream")
                .header("Mcp-Session-Id", session.as_str());
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(p) = self.protocol.locked().clone() {
                req = req.header("MCP-Protocol-Version", p.as_str());
            }
            match req.call() {
                Ok(resp) if resp.status().is_success() && content_type(&resp).starts_with("text/event-stream") => {
                    backoff = Duration::from_millis(500);
                    self.relay_stream(resp, None, Some(generation));
                }
                Ok(resp) if matches!(resp.status().as_u16(), 404 | 405) => {
                    log::debug!("no GET stream (HTTP {})", resp.status().as_u16());
                    return;
                }
                Ok(resp) => log::debug!("the GET stream was refused: HTTP {}", resp.status().as_u16()),
                Err(e) => log::debug!("the GET stream failed: {}", e),
            }
            // Ended or failed: open it again, after a pause that grows.
            let until = Instant::now() + backoff;
            while Instant::now() < until {
                if self.closing.load(Ordering::SeqCst) || signals::stopping() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// Queue one message for stdout (waiting at most OUT_WAIT for room: OUT_QUEUE messages,
    /// MAX_QUEUED bytes).
    fn emit(&self, m: &Value) {
        let mut line = serde_json::to_vec(m).expect("JSON serializes");
        line.push(b'\n');
        let len = line.len();
        let until = Instant::now() + OUT_WAIT;
        loop {
            let before = self.queued.fetch_add(len, Ordering::SeqCst);
            if before == 0 || before + len <= MAX_QUEUED {
                match self.out.try_send(line) {
                    Ok(()) => return,
                    Err(TrySendError::Disconnected(_)) => {
                        self.queued.fetch_sub(len, Ordering::SeqCst);
                        return;
                    }
                    Err(TrySendError::Full(l)) => line = l,
                }
            }
            self.queued.fetch_sub(len, Ordering::SeqCst);
            if Instant::now() > until || self.client_gone.load(Ordering::SeqCst) {
                log::warn!("the client does not read what we write; a message to it was dropped");
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// DELETE a session (its own children with it), with a short deadline.
    fn end_session(&self, s: &str) {
        let mut req = self
            .agent
            .delete(&self.url)
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .header("Mcp-Session-Id", s);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Err(e) = req.call() {
            log::debug!("ending the session failed: {}", e);
        }
    }

    /// Stdin closed (or a signal): let requests in flight finish briefly, end the session,
    /// and write out what is queued.
    fn finish(&self) {
        let until = Instant::now() + DRAIN;
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < until && !signals::stopping() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.closing.store(true, Ordering::SeqCst);
        // 2026-07-28 requests still open (a `subscriptions/listen`): their connections close.
        for (_, c) in self.conns.locked().drain() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let session = self.session.locked().take();
        if let Some(s) = session {
            self.end_session(&s);
        }
        // An empty message is the writer's flush marker.
        let _ = self.out.try_send(Vec::new());
        if let Some(rx) = self.flushed.locked().take() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// The one thread that writes stdout: a message a line, flushed each time.
fn writer(rx: Receiver<Vec<u8>>, flushed: SyncSender<()>, gone: Arc<AtomicBool>, queued: Arc<AtomicUsize>) {
    let stdout = std::io::stdout();
    for line in rx {
        if line.is_empty() {
            let _ = flushed.try_send(());
            continue;
        }
        if !gone.load(Ordering::SeqCst) {
            let mut out = stdout.lock();
            if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
                log::debug!("stdout is closed ({}); the client is gone", e);
                gone.store(true, Ordering::SeqCst);
            }
        }
        queued.fetch_sub(line.len(), Ordering::SeqCst);
    }
}

/// Read one line (without its `\n`) into `buf`, at most `max` bytes: `Ok(None)` at the end,
/// `Ok(Some(false))` for a longer line (read to its end and dropped), `Ok(Some(true))` else.
fn read_line(r: &mut impl BufRead, max: usize, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any { Some(!too_long) } else { None });
        }
        any = true;
        let (chunk, used, end) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if end {
            return Ok(Some(!too_long));
        }
    }
}

fn content_type(resp: &ureq::http::Response<ureq::Body>) -> String {
    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

fn read_body(resp: ureq::http::Response<ureq::Body>, max: usize) -> std::result::Result<String, String> {
    let mut s = String::new();
    resp.into_body()
        .into_with_config()
        .limit(max as u64)
        .reader()
        .read_to_string(&mut s)
        .map_err(|e| format!("reading the gateway's answer failed: {}", e))?;
    Ok(s)
}

/// A peer's text for a message: trimmed, escaped, at most `logsafe::MAX_CHARS` long.
fn snippet(s: &str) -> String {
    crate::logsafe::safe(s.trim()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_the_rest_is_read() {
        let mut r = std::io::BufReader::with_capacity(4, &b"ab\nabcdefgh\n\nxyz"[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"ab");
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(false));
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert!(buf.is_empty());
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"xyz");
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), None);
    }
}
