//! MCP Streamable HTTP, client side: each message is a POST; a request's answer comes back
//! as JSON or as an SSE stream (which may carry notifications and server→client requests
//! first). Keeps `Mcp-Session-Id` and `MCP-Protocol-Version`, re-initializes once when the
//! server forgets the session (404), resumes a cut SSE stream with `Last-Event-ID`, and
//! DELETEs the session on shutdown.
//!
//! A request that carries the 2026-07-28 envelope in its `_meta` (the peer stamps it once
//! the server is known to be modern, the client's probe carries it itself) is sent the
//! modern way: `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, no session, no
//! stream resumption; an HTTP error whose body is a JSON-RPC error becomes the request's
//! answer (that is how a modern server rejects a version, and how a legacy one is told
//! apart). Notifications are not sent to a modern server (it defines none over HTTP): a
//! modern request is cancelled by closing its connection. So every exchange runs on an agent
//! of its own, taken from a small pool of idle agents (each keeps its connections alive for
//! the next exchange) or built anew, and given back when the exchange is over; a modern
//! request's agent is recorded under its id, and the `notifications/cancelled` the peer
//! sends for it shuts that agent down, which closes that request's connection (and no
//! other) and interrupts its read. A session-era server is told with a POST, as before.
//! Tool parameters a modern server marks with `x-mcp-header` are mirrored into
//! `Mcp-Param-*` headers (learned from its `tools/list` answers; a tool whose marks break
//! the rules is left out of the list, as the transport requires).

use crate::error::{Error, Result};
use crate::jsonrpc::{self, Message};
use crate::peer::{Peer, Transport};
use crate::sse;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

mod agents;
mod credentials;
mod param_headers;
mod stream;

use agents::new_agent;
use credentials::auth_headers;
pub(crate) use param_headers::{decode_header, header_value, name_of, param_headers, param_values, ParamHeader};

pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    url: String,
    headers: Vec<(String, String)>,
    /// Where more headers come from (`headersHelper`, `bearerTokenFile`), and what they gave
    /// last (read again after a `401`).
    auth: crate::config::HttpAuth,
    root: std::path::PathBuf,
    helper_deadline: Duration,
    auth_headers: Mutex<Vec<(String, String)>>,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    /// The initialize request, replayed when the server answers 404 for our session.
    init: Mutex<Option<Value>>,
    /// Modern: the `x-mcp-header` parameters of each tool (header name, property path).
    params: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// Modern: ids (as text) of `tools/list` requests whose answers teach `params`.
    listing: Mutex<HashSet<String>>,
    peer: Weak<Peer>,
    connect_timeout: Duration,
    /// Idle agents (at most `agents::IDLE_AGENTS`): every exchange borrows one.
    idle: Mutex<Vec<ureq::Agent>>,
    /// Modern: the id (as text) of each request in flight → its agent, shut down to cancel
    /// it (at most `agents::MAX_CLOSEABLE`).
    inflight: Mutex<HashMap<String, ureq::Agent>>,
}

/// Attach a Streamable HTTP connection to `peer`.
pub fn connect(
    peer: &Arc<Peer>,
    url: &str,
    headers: &[(String, String)],
    auth: &crate::config::HttpAuth,
    root: &std::path::Path,
    connect_timeout: Duration,
) -> Result<()> {
    let auth_headers = auth_headers(&peer.name, auth, root, connect_timeout)?;
    let agent = new_agent(url, connect_timeout)?;
    let inner = Arc::new(Inner {
        name: peer.name.clone(),
        url: url.to_string(),
        headers: headers.to_vec(),
        auth: auth.clone(),
        root: root.to_path_buf(),
        helper_deadline: connect_timeout,
        auth_headers: Mutex::new(auth_headers),
        session: Mutex::new(None),
        protocol: Mutex::new(None),
        init: Mutex::new(None),
        params: Mutex::new(HashMap::new()),
        listing: Mutex::new(HashSet::new()),
        peer: Arc::downgrade(peer),
        connect_timeout,
        idle: Mutex::new(vec![agent]),
        inflight: Mutex::new(HashMap::new()),
    });
    peer.attach(Box::new(HttpTransport { inner }));
    Ok(())
}

enum Posted {
    /// `401` to a server whose credentials can be read again (`headersHelper`, `bearerTokenFile`).
    Unauthorized,
    /// 202 or an empty 200.
    Accepted,
    /// An HTTP error status that answers the request (a modern request or `initialize`):
    /// the status and the body.
    Refused(u16, String),
    /// The session is unknown to the server.
    Gone,
    Stream(ureq::http::Response<ureq::Body>),
    Json(String),
}

impl Inner {
    /// The config's headers, then the credentials' (which replace a config header of the same name).
    fn all_headers(&self) -> Vec<(String, String)> {
        let extra = self.auth_headers.locked().clone();
        let mut out: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        out.extend(extra);
        out
    }

    /// Read the credentials again (after a `401`).
    fn refresh_auth(&self) -> Result<()> {
        log::debug!("server `{}`: HTTP 401; reading its credentials again", self.name);
        let fresh = auth_headers(&self.name, &self.auth, &self.root, self.helper_deadline)?;
        *self.auth_headers.locked() = fresh;
        Ok(())
    }

    /// Whether `msg` goes out the modern way if it is a request: the era probe, or any
    /// request once the peer speaks that era.
    fn speaks_modern(&self, msg: &Value) -> bool {
        msg["method"] == "server/discover" || self.peer.upgrade().is_some_and(|p| p.modern().is_some())
    }

    fn post(&self, agent: &ureq::Agent, msg: &Value) -> Result<Posted> {
        self.post_once(agent, msg, false)
    }

    fn post_once(&self, agent: &ureq::Agent, msg: &Value, may_refresh: bool) -> Result<Posted> {
        let is_request = msg.get("id").is_some() && msg.get("method").is_some();
        // Modern: the era probe, or any request once the peer speaks that era (a request
        // forwarded from a modern client to a legacy server is not, whatever its `_meta`).
        let modern =
            if is_request && self.speaks_modern(msg) { jsonrpc::modern_version(msg.get("params")) } else { None };
        // A refusal of these is the answer: its JSON-RPC error tells the eras apart.
        let answers_refusal = modern.is_some() || msg["method"] == "initialize";
        let mut req = agent
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json");
        // A request runs on a thread of its own, bounded by its caller's timeout. Anything
        // else (a cancel, an answer, `initialized`) is sent on the caller's thread: it gets
        // a short deadline of its own, so that a server that never answers cannot hold a
        // timed-out or interrupted command.
        if msg.get("id").is_none() || msg.get("method").is_none() {
            req = req.config().timeout_global(Some(side_deadline())).build();
        }
        for (k, v) in &self.all_headers() {
            req = req.header(k.as_str(), v.as_str());
        }
        let session = if modern.is_some() { None } else { self.session.locked().clone() };
        if let Some(s) = &session {
            req = req.header("Mcp-Session-Id", s.as_str());
        }
        if let Some(v) = modern {
            req = req.header("MCP-Protocol-Version", v);
            let method = msg["method"].as_str().unwrap_or("");
            req = req.header("Mcp-Method", header_value(method));
            if let Some(name) = name_of(method, msg.get("params")) {
                req = req.header("Mcp-Name", header_value(name));
            }
            if method == "tools/call" {
                let tool = msg["params"]["name"].as_str().unwrap_or("");
                if let Some(decls) = self.params.locked().get(tool) {
                    for (name, value) in param_values(decls, &msg["params"]["arguments"]) {
                        req = req.header(format!("Mcp-Param-{}", name).as_str(), value.as_str());
                    }
                }
            }
        } else if let Some(p) = self.protocol.locked().as_deref() {
            req = req.header("MCP-Protocol-Version", p);
        }
        let body = serde_json::to_string(msg).expect("JSON serializes");
        let resp = req.send(body.as_str()).map_err(|e| self.net_error(e))?;
        let status = resp.status().as_u16();
        if modern.is_none() {
            if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                *self.session.locked() = Some(s.to_string());
            }
        }
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        match status {
            202 => Ok(Posted::Accepted),
            404 if session.is_some() => Ok(Posted::Gone),
            // A server that restarted and forgot our session may say so with 400 (as
            // server-everything does: "No valid session ID provided"), not 404.
            400 if session.is_some() => {
                let text = read_body(resp).unwrap_or_default();
                if text.to_ascii_lowercase().contains("session") {
                    return Ok(Posted::Gone);
                }
                Err(self.status_error(status, &text))
            }
            200..=299 if ctype.starts_with("text/event-stream") => Ok(Posted::Stream(resp)),
            200..=299 => {
                let text = read_body(resp)?;
                if text.trim().is_empty() {
                    Ok(Posted::Accepted)
                } else {
                    Ok(Posted::Json(text))
                }
            }
            401 if may_refresh && !self.auth.is_empty() => {
                let _ = read_body(resp);
                Ok(Posted::Unauthorized)
            }
            401 | 403 => {
                let text = read_body(resp).unwrap_or_default();
                Err(Error::auth(format!(
                    "server `{}` refused the request: HTTP {} {}",
                    self.name,
                    status,
                    snippet(&text)
                ))
                .with_http_status(status)
                .hint(if self.auth.is_empty() {
                    "set the right credentials in the server's `headers` (e.g. Authorization), `headersHelper` or `bearerTokenFile`"
                } else {
                    "check what the server's `headersHelper` or `bearerTokenFile` gives (it was read again after the first 401)"
                }))
            }
            _ if answers_refusal => Ok(Posted::Refused(status, read_body(resp).unwrap_or_default())),
            _ => {
                let text = read_body(resp).unwrap_or_default();
                Err(self.status_error(status, &text))
            }
        }
    }

    /// An HTTP error status as one line; a JSON-RPC error body is the most precise part.
    fn status_error(&self, status: u16, text: &str) -> Error {
        if let Ok(Message::Response { outcome: Err(e), .. }) = Message::parse(text) {
            return Error::server(format!(
                "server `{}` answered HTTP {}: {}",
                self.name,
                status,
                jsonrpc::error_text(&e)
            ))
            .with_http_status(status);
        }
        Error::server(format!("server `{}` answered HTTP {} {}", self.name, status, snippet(text)))
            .with_http_status(status)
    }

    fn net_error(&self, e: ureq::Error) -> Error {
        let what = match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_string()
            }
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::Timeout(t) => format!("timed out ({})", t),
            other => other.to_string(),
        };
        Error::unreachable(format!("cannot reach server `{}` at {}: {}", self.name, self.url, what))
            .hint("check that the server is running and the `url` is right")
    }

    /// Read a response body (JSON or SSE) and hand every message to the peer; `answered`
    /// runs once the response with `want` as id has been read, before the peer gets it.
    /// Returns whether that response was seen.
    fn deliver(
        &self,
        agent: &ureq::Agent,
        posted: Posted,
        want: Option<&Value>,
        resume: bool,
        answered: &dyn Fn(),
    ) -> Result<bool> {
        let Some(peer) = self.peer.upgrade() else { return Ok(false) };
        match posted {
            Posted::Accepted | Posted::Gone | Posted::Unauthorized => Ok(false),
            Posted::Refused(status, text) => {
                let Some(id) = want else { return Err(self.status_error(status, &text)) };
                // The error answers our request even when the server could not read its id.
                let outcome = match Message::parse(&text) {
                    Ok(Message::Response { outcome: Err(e), .. }) => Err(e),
                    _ => Err(jsonrpc::http_refused(&self.status_error(status, &text).one_line(), status)),
                };
                answered();
                peer.dispatch(Message::Response { id: id.clone(), outcome });
                Ok(true)
            }
            Posted::Json(text) => {
                let v: Value = serde_json::from_str(&text).map_err(|_| {
                    Error::protocol(format!("server `{}` sent a body that is not JSON: {}", self.name, snippet(&text)))
                })?;
                let msgs = match v {
                    Value::Array(a) => a,
                    v => vec![v],
                };
                let mut seen = false;
                for m in msgs {
                    seen |= self.take(&peer, m, want, answered);
                }
                Ok(seen)
            }
            Posted::Stream(resp) => {
                let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
                self.read_stream(agent, &peer, reader, want, resume, answered)
            }
        }
    }

    /// Hand one message to the peer; true when it is the answer we wait for (then
    /// `answered` runs first).
    fn take(&self, peer: &Arc<Peer>, v: Value, want: Option<&Value>, answered: &dyn Fn()) -> bool {
        match Message::from_value(v) {
            Ok(mut m) => {
                let is_answer = matches!(&m, Message::Response { id, .. } if Some(id) == want);
                if let (true, Message::Response { id, outcome: Ok(r) }) = (is_answer, &mut m) {
                    if self.listing.locked().remove(&id.to_string()) {
                        self.learn_tools(r);
                    }
                }
                if let Message::Response { outcome: Ok(r), .. } = &m {
                    if let (true, Some(p)) = (is_answer, r.get("protocolVersion").and_then(Value::as_str)) {
                        if self.init.locked().as_ref().map(|i| Some(&i["id"]) == want).unwrap_or(false) {
                            *self.protocol.locked() = Some(p.to_string());
                        }
                    }
                }
                if is_answer {
                    answered();
                }
                peer.dispatch(m);
                is_answer
            }
            Err(why) => {
                log::warn!("server `{}` sent an invalid JSON-RPC message: {}", self.name, why);
                false
            }
        }
    }

    /// The server forgot our session: initialize again (once) without bothering the peer.
    fn reinitialize(&self, agent: &ureq::Agent) -> Result<()> {
        let Some(init) = self.init.locked().clone() else {
            return Err(Error::protocol(format!("server `{}` lost the session before it was initialized", self.name)));
        };
        log::info!("server `{}`: session expired; initializing again", self.name);
        *self.session.locked() = None;
        let mut again = init;
        again["id"] = json!("mcpctl-reinit");
        let text = match self.post(agent, &again)? {
            Posted::Json(t) => t,
            Posted::Stream(resp) => {
                let mut r =
                    sse::Reader::new(BufReader::new(resp.into_body().into_with_config().limit(u64::MAX).reader()));
                let mut found = String::new();
                while let Some(ev) = r.next_event() {
                    if ev.data.contains("mcpctl-reinit") {
                        found = ev.data;
                        break;
                    }
                }
                found
            }
            Posted::Refused(status, text) => return Err(self.status_error(status, &text)),
            _ => String::new(),
        };
        if !text.contains("\"result\"") {
            return Err(Error::server(format!("server `{}` refused to initialize a new session", self.name)));
        }
        self.post(agent, &jsonrpc::notification("notifications/initialized", None))?;
        Ok(())
    }

    /// Learn the `x-mcp-header` parameters of a page of tools, leaving out the tools whose
    /// marks break the rules.
    fn learn_tools(&self, result: &mut Value) {
        let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else { return };
        let mut params = self.params.locked();
        tools.retain(|t| {
            let name = t["name"].as_str().unwrap_or("").to_string();
            match param_headers(&t["inputSchema"]) {
                Ok(decls) => {
                    if decls.is_empty() {
                        params.remove(&name);
                    } else {
                        params.insert(name, decls);
                    }
                    true
                }
                Err(why) => {
                    log::warn!("server `{}`: tool `{}` left out: its x-mcp-header {}", self.name, name, why);
                    params.remove(&name);
                    false
                }
            }
        });
    }

    /// Send `msg` on `agent` and hand what comes back to the peer (`answered`: see
    /// [`Inner::deliver`]); whether the answer came.
    fn send_now(&self, agent: &ureq::Agent, msg: &Value, answered: &dyn Fn()) -> Result<bool> {
        let want = msg.get("method").and(msg.get("id"));
        let resume = self.peer.upgrade().is_none_or(|p| p.modern().is_none());
        if !resume && msg["method"] == "tools/list" {
            if let Some(id) = want {
                self.listing.locked().insert(id.to_string());
            }
        }
        let mut posted = self.post_once(agent, msg, true)?;
        if matches!(posted, Posted::Unauthorized) {
            self.refresh_auth()?;
            posted = self.post_once(agent, msg, false)?;
        }
        if matches!(posted, Posted::Gone) {
            self.reinitialize(agent)?;
            posted = self.post_once(agent, msg, false)?;
            if matches!(posted, Posted::Gone) {
                return Err(Error::protocol(format!("server `{}` keeps answering 404 for a new session", self.name)));
            }
        }
        self.deliver(agent, posted, want, resume, answered)
    }
}

impl Transport for HttpTransport {
    fn send(&self, msg: &Value) -> Result<()> {
        let is_request = msg.get("method").is_some() && msg.get("id").is_some();
        if !is_request {
            // A modern server defines no notification over HTTP (closing a request's stream
            // is its cancellation) and never asks us anything we would answer.
            if self.inner.peer.upgrade().is_some_and(|p| p.modern().is_some()) {
                if msg["method"] == "notifications/cancelled" {
                    if let Some(id) = msg["params"].get("requestId") {
                        self.inner.close_request(&id.to_string());
                        return Ok(());
                    }
                }
                log::debug!(
                    "server `{}`: {} not sent (the 2026-07-28 era has none over HTTP)",
                    self.inner.name,
                    msg["method"]
                );
                return Ok(());
            }
            let agent = self.inner.lend()?;
            let sent = self.inner.send_now(&agent, msg, &|| {});
            self.inner.keep(agent);
            return sent.map(|_| ());
        }
        if msg["method"] == "initialize" {
            *self.inner.init.locked() = Some(msg.clone());
            *self.inner.session.locked() = None;
        }
        // A modern request's agent is recorded before the request leaves (so that a cancel
        // right after finds it).
        let key = msg["id"].to_string();
        let (agent, recorded) =
            if self.inner.speaks_modern(msg) { self.inner.check_out(&key)? } else { (self.inner.lend()?, false) };
        // Requests run on their own thread so the caller's timeout stays in charge.
        let inner = self.inner.clone();
        let msg = msg.clone();
        let unrecord = key.clone();
        let spawned = std::thread::Builder::new().name("http-request".into()).spawn(move || {
            let id = msg["id"].clone();
            // The agent is given back (once) as soon as the answer is read, before the peer
            // has it, so that the next request finds it idle; else when the exchange ends.
            let given_back = std::cell::Cell::new(false);
            let give_back = || {
                if !given_back.replace(true) {
                    inner.check_in(&key, agent.clone(), recorded)
                }
            };
            let outcome = inner.send_now(&agent, &msg, &give_back);
            give_back();
            let answered = matches!(outcome, Ok(true));
            if !answered {
                let e = match outcome {
                    Err(e) => jsonrpc::connection_failed(&e),
                    // A probe taken (202) or answered with nothing: no modern server.
                    Ok(_) => {
                        let why = format!("server `{}` ended the exchange without answering", inner.name);
                        if msg["method"] == "server/discover" {
                            jsonrpc::http_refused(&why, 202)
                        } else {
                            jsonrpc::connection_failed(&Error::protocol(why))
                        }
                    }
                };
                if let Some(peer) = inner.peer.upgrade() {
                    peer.dispatch(Message::Response { id, outcome: Err(e) });
                }
            }
        });
        if let Err(e) = spawned {
            self.inner.inflight.locked().remove(&unrecord);
            return Err(Error::internal(format!("cannot start a thread: {}", e)));
        }
        Ok(())
    }

    fn shutdown(&self) {
        // The connection ends: so do its 2026-07-28 requests still in flight (each server
        // sees its client hang up, as for a cancel).
        let open: Vec<ureq::Agent> = self.inner.inflight.locked().drain().map(|(_, a)| a).collect();
        for a in open {
            a.shutdown();
        }
        let session = self.inner.session.locked().take();
        if let (Some(s), Ok(agent)) = (session, self.inner.lend()) {
            let mut req = agent
                .delete(&self.inner.url)
                .config()
                .timeout_global(Some(side_deadline()))
                .build()
                .header("Mcp-Session-Id", s.as_str());
            for (k, v) in &self.inner.all_headers() {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(p) = self.inner.protocol.locked().as_deref() {
                req = req.header("MCP-Protocol-Version", p);
            }
            let _ = req.call();
        }
    }
}

/// The deadline of a message that is not a request (a cancel, an answer) and of the DELETE
/// that ends a session: 2 s, or half a second once Ctrl-C or SIGTERM has been received.
fn side_deadline() -> Duration {
    if crate::signals::stopping() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    }
}

fn read_body(resp: ureq::http::Response<ureq::Body>) -> Result<String> {
    let mut s = String::new();
    resp.into_body()
        .into_with_config()
        .limit(256 * 1024 * 1024)
        .reader()
        .read_to_string(&mut s)
        .map_err(|e| Error::disconnected(format!("reading the server's answer failed: {}", e)))?;
    Ok(s)
}

fn snippet(s: &str) -> String {
    let t = s.trim();
    let mut cut = t.len().min(200);
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t[..cut].to_string()
}
