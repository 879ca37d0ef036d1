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
//! apart). Notifications are not sent to a modern server (it defines none over HTTP).
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
    agent: ureq::Agent,
    session: Mutex<Option<String>>,
    protocol: Mutex<Option<String>>,
    /// The initialize request, replayed when the server answers 404 for our session.
    init: Mutex<Option<Value>>,
    /// Modern: the `x-mcp-header` parameters of each tool (header name, property path).
    params: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// Modern: ids (as text) of `tools/list` requests whose answers teach `params`.
    listing: Mutex<HashSet<String>>,
    peer: Weak<Peer>,
}

const MAX_RESUMES: usize = 5;

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
    // Trust (SSL_CERT_FILE, SSL_CERT_DIR, system store) and proxy (HTTPS_PROXY, NO_PROXY): src/net.rs.
    let agent = crate::net::agent(
        url,
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect_timeout))
            .timeout_recv_response(None)
            .max_idle_connections_per_host(8),
    )?;
    let inner = Arc::new(Inner {
        name: peer.name.clone(),
        url: url.to_string(),
        headers: headers.to_vec(),
        auth: auth.clone(),
        root: root.to_path_buf(),
        helper_deadline: connect_timeout,
        auth_headers: Mutex::new(auth_headers),
        agent,
        session: Mutex::new(None),
        protocol: Mutex::new(None),
        init: Mutex::new(None),
        params: Mutex::new(HashMap::new()),
        listing: Mutex::new(HashSet::new()),
        peer: Arc::downgrade(peer),
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

    fn post(&self, msg: &Value) -> Result<Posted> {
        self.post_once(msg, false)
    }

    fn post_once(&self, msg: &Value, may_refresh: bool) -> Result<Posted> {
        let is_request = msg.get("id").is_some() && msg.get("method").is_some();
        // Modern: the era probe, or any request once the peer speaks that era (a request
        // forwarded from a modern client to a legacy server is not, whatever its `_meta`).
        let speaks_modern =
            msg["method"] == "server/discover" || self.peer.upgrade().is_some_and(|p| p.modern().is_some());
        let modern = if is_request && speaks_modern { jsonrpc::modern_version(msg.get("params")) } else { None };
        // A refusal of these is the answer: its JSON-RPC error tells the eras apart.
        let answers_refusal = modern.is_some() || msg["method"] == "initialize";
        let mut req = self
            .agent
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

    /// Read a response body (JSON or SSE) and hand every message to the peer.
    /// Returns whether a response with `want` as id was seen.
    fn deliver(&self, posted: Posted, want: Option<&Value>, resume: bool) -> Result<bool> {
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
                    seen |= self.take(&peer, m, want);
                }
                Ok(seen)
            }
            Posted::Stream(resp) => {
                let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
                self.read_stream(&peer, reader, want, resume)
            }
        }
    }

    /// Read an SSE stream; when it ends before our answer, resume it with GET + `Last-Event-ID`.
    fn read_stream(
        &self,
        peer: &Arc<Peer>,
        reader: impl Read + Send + 'static,
        want: Option<&Value>,
        resume: bool,
    ) -> Result<bool> {
        let mut r = sse::Reader::new(BufReader::new(Box::new(reader) as Box<dyn Read + Send>));
        let mut resumes = 0;
        loop {
            while let Some(ev) = r.next_event() {
                if ev.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&ev.data) {
                    Ok(v) => {
                        if self.take(peer, v, want) {
                            return Ok(true);
                        }
                    }
                    Err(_) => {
                        log::warn!("server `{}` sent an SSE event that is not JSON: {}", self.name, snippet(&ev.data))
                    }
                }
            }
            // The stream ended without our answer (a modern stream is not resumable).
            let (Some(_), Some(last), true) = (want, r.last_id.clone(), resume) else { return Ok(false) };
            if resumes == MAX_RESUMES {
                return Ok(false);
            }
            resumes += 1;
            let wait = Duration::from_millis(r.retry.unwrap_or(1000).min(30_000));
            log::debug!("server `{}`: SSE stream ended; resuming after {:?} from event {}", self.name, wait, last);
            std::thread::sleep(wait);
            let retry = r.retry;
            let resp = self.get_stream(Some(&last))?;
            r = sse::Reader::new(BufReader::new(
                Box::new(resp.into_body().into_with_config().limit(u64::MAX).reader()) as Box<dyn Read + Send>,
            ));
            r.retry = retry;
            r.last_id = Some(last);
        }
    }

    fn get_stream(&self, last_event_id: Option<&str>) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = self.agent.get(&self.url).header("Accept", "text/event-stream");
        for (k, v) in &self.all_headers() {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(s) = self.session.locked().as_deref() {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(p) = self.protocol.locked().as_deref() {
            req = req.header("MCP-Protocol-Version", p);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.call().map_err(|e| self.net_error(e))?;
        if !resp.status().is_success() {
            return Err(Error::server(format!(
                "server `{}`: resuming the stream failed with HTTP {}",
                self.name,
                resp.status().as_u16()
            ))
            .with_http_status(resp.status().as_u16()));
        }
        Ok(resp)
    }

    /// Hand one message to the peer; true when it is the answer we wait for.
    fn take(&self, peer: &Arc<Peer>, v: Value, want: Option<&Value>) -> bool {
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
    fn reinitialize(&self) -> Result<()> {
        let Some(init) = self.init.locked().clone() else {
            return Err(Error::protocol(format!("server `{}` lost the session before it was initialized", self.name)));
        };
        log::info!("server `{}`: session expired; initializing again", self.name);
        *self.session.locked() = None;
        let mut again = init;
        again["id"] = json!("mcpctl-reinit");
        let text = match self.post(&again)? {
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
        self.post(&jsonrpc::notification("notifications/initialized", None))?;
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

    fn send_now(&self, msg: &Value) -> Result<bool> {
        let want = msg.get("method").and(msg.get("id"));
        let resume = self.peer.upgrade().is_none_or(|p| p.modern().is_none());
        if !resume && msg["method"] == "tools/list" {
            if let Some(id) = want {
                self.listing.locked().insert(id.to_string());
            }
        }
        let mut posted = self.post_once(msg, true)?;
        if matches!(posted, Posted::Unauthorized) {
            self.refresh_auth()?;
            posted = self.post(msg)?;
        }
        if matches!(posted, Posted::Gone) {
            self.reinitialize()?;
            posted = self.post(msg)?;
            if matches!(posted, Posted::Gone) {
                return Err(Error::protocol(format!("server `{}` keeps answering 404 for a new session", self.name)));
            }
        }
        self.deliver(posted, want, resume)
    }
}

impl Transport for HttpTransport {
    fn send(&self, msg: &Value) -> Result<()> {
        let is_request = msg.get("method").is_some() && msg.get("id").is_some();
        if !is_request {
            // A modern server defines no notification over HTTP (closing a request's stream
            // is its cancellation) and never asks us anything we would answer.
            if self.inner.peer.upgrade().is_some_and(|p| p.modern().is_some()) {
                log::debug!(
                    "server `{}`: {} not sent (the 2026-07-28 era has none over HTTP)",
                    self.inner.name,
                    msg["method"]
                );
                return Ok(());
            }
            return self.inner.send_now(msg).map(|_| ());
        }
        if msg["method"] == "initialize" {
            *self.inner.init.locked() = Some(msg.clone());
            *self.inner.session.locked() = None;
        }
        // Requests run on their own thread so the caller's timeout stays in charge.
        let inner = self.inner.clone();
        let msg = msg.clone();
        std::thread::Builder::new()
            .name("http-request".into())
            .spawn(move || {
                let id = msg["id"].clone();
                let outcome = inner.send_now(&msg);
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
            })
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        Ok(())
    }

    fn shutdown(&self) {
        let session = self.inner.session.locked().take();
        if let Some(s) = session {
            let mut req = self
                .inner
                .agent
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

/// The name a modern request's `Mcp-Name` header mirrors: the tool or prompt name, the
/// resource URI.
pub(crate) fn name_of<'a>(method: &str, params: Option<&'a Value>) -> Option<&'a str> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params?.get(key)?.as_str()
}

/// One `x-mcp-header` parameter of a tool: the header's name part and the property path.
pub(crate) type ParamHeader = (String, Vec<String>);

/// The `x-mcp-header` parameters of a tool's input schema, or why the marks break the
/// rules (a mark must be a token, unique regardless of case, on a string, integer or
/// boolean property reached from the root through `properties` only).
pub(crate) fn param_headers(schema: &Value) -> std::result::Result<Vec<ParamHeader>, String> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) -> std::result::Result<(), String> {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
        for (key, prop) in props {
            path.push(key.clone());
            if let Some(mark) = prop.get("x-mcp-header") {
                let name = mark.as_str().unwrap_or("");
                let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
                if name.is_empty() || !name.bytes().all(token) {
                    return Err(format!("`{}` is not a header name", name));
                }
                if !matches!(prop["type"].as_str(), Some("string" | "integer" | "boolean")) {
                    return Err(format!("`{}` is on a property that is not a string, integer or boolean", name));
                }
                if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    return Err(format!("`{}` is given twice", name));
                }
                out.push((name.to_string(), path.clone()));
            }
            walk(prop, path, out)?;
            path.pop();
        }
        Ok(())
    }
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => usize::from(m.contains_key("x-mcp-header")) + m.values().map(count).sum::<usize>(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    if count(schema) != out.len() {
        return Err("is on a property not reached through `properties` alone".into());
    }
    Ok(out)
}

/// The `Mcp-Param-*` headers of a call: each marked argument that has a value.
pub(crate) fn param_values(decls: &[ParamHeader], arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, path) in decls {
        let mut v = arguments;
        for key in path {
            v = &v[key.as_str()];
        }
        let text = match v {
            Value::String(s) => header_value(s),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => continue,
        };
        out.push((name.clone(), text));
    }
    out
}

/// A header value as sent: plain when it is visible ASCII (inner spaces allowed), else in
/// the `=?base64?…?=` form the 2026-07-28 transport defines (also for a plain value that
/// looks like that form).
pub(crate) fn header_value(v: &str) -> String {
    let sentinel = v.starts_with("=?base64?") && v.ends_with("?=");
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !sentinel;
    if plain {
        v.to_string()
    } else {
        format!("=?base64?{}?=", base64(v.as_bytes()))
    }
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// The largest output of a `headersHelper` and the largest `bearerTokenFile` read.
const MAX_CREDENTIALS: usize = 64 * 1024;

/// The headers a server's credentials give: `Authorization: Bearer <token>` from its
/// `bearerTokenFile`, then what its `headersHelper` prints (which wins). No value is ever
/// put in a log line or an error.
fn auth_headers(
    server: &str,
    auth: &crate::config::HttpAuth,
    root: &std::path::Path,
    deadline: Duration,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(file) = &auth.bearer_token_file {
        let token = read_token_file(server, &root.join(file))?;
        out.push(("Authorization".into(), format!("Bearer {}", token)));
    }
    if let Some(cmd) = &auth.headers_helper {
        let text = run_helper(server, cmd, root, deadline)?;
        let helper = parse_helper_output(&text).map_err(|why| {
            Error::config(format!("server `{}`: the output of `headersHelper` {}", server, why))
                .hint("print a JSON object of headers, or `Name: value` lines, on stdout")
        })?;
        out.retain(|(k, _)| !helper.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)));
        out.extend(helper);
    }
    if !out.is_empty() {
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        log::debug!("server `{}`: credentials give the headers {}", server, names.join(", "));
    }
    Ok(out)
}

/// A bearer token from a file only its owner can read (as the gateway's token files).
fn read_token_file(server: &str, path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let at = |what: String| Error::config(format!("server `{}`: `bearerTokenFile` {}", server, what));
    let meta = std::fs::metadata(path).map_err(|e| at(format!("{}: {}", path.display(), e)))?;
    if meta.mode() & 0o077 != 0 {
        return Err(at(format!("{} can be read by others (mode {:o})", path.display(), meta.mode() & 0o777))
            .hint(format!("chmod 600 {}", path.display())));
    }
    if meta.len() > MAX_CREDENTIALS as u64 {
        return Err(at(format!("{} is larger than {} bytes", path.display(), MAX_CREDENTIALS)));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("{}: {}", path.display(), e)))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(at(format!("{} is empty", path.display())));
    }
    if token.chars().any(|c| c.is_control()) {
        return Err(at(format!("{} holds more than one line; it must hold the token alone", path.display())));
    }
    Ok(token.to_string())
}

/// Run a `headersHelper` with `sh -c` in the project root, in a process group of its own,
/// within `deadline` (killed, group and all, at the deadline): its stdout, or an error with
/// its last stderr lines.
fn run_helper(server: &str, cmd: &str, root: &std::path::Path, deadline: Duration) -> Result<String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let started = std::time::Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::config(format!("server `{}`: cannot run `headersHelper`: {}", server, e)))?;
    let pid = child.id();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_CREDENTIALS as u64 + 1).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= deadline || crate::signals::stopping() => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    if status.is_none() {
        // The helper leads its own process group.
        let _ = crate::sys::signal_group(pid, libc::SIGKILL);
        let _ = child.wait();
    }
    // A process the helper left in the background may hold the pipes open: it gets a
    // second, then its group (still alive, so still the helper's) is killed.
    let collect = |rx: &std::sync::mpsc::Receiver<Vec<u8>>| match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(b) => b,
        Err(_) => {
            // A member of the helper's group holds the pipe, so the group is the helper's.
            let _ = crate::sys::signal_group(pid, libc::SIGKILL);
            rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default()
        }
    };
    let stdout = collect(&out);
    let stderr = String::from_utf8_lossy(&collect(&err)).into_owned();
    let tail: Vec<String> = {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].iter().map(|l| format!("headersHelper: {}", l)).collect()
    };
    let fail = |what: String| {
        let e = Error::config(format!("server `{}`: `headersHelper` {}", server, what))
            .hint("run the command in the project root to see what it does");
        if tail.is_empty() {
            e
        } else {
            e.details(tail.clone())
        }
    };
    match status {
        None => return Err(fail(format!("did not finish within {}", crate::peer::human_duration(deadline)))),
        Some(st) if !st.success() => {
            return Err(fail(match st.code() {
                Some(c) => format!("failed (exit status {})", c),
                None => "was killed by a signal".into(),
            }))
        }
        Some(_) => {}
    }
    if stdout.len() > MAX_CREDENTIALS {
        return Err(fail(format!("printed more than {} bytes", MAX_CREDENTIALS)));
    }
    String::from_utf8(stdout).map_err(|_| fail("printed something that is not UTF-8".into()))
}

/// A helper's stdout as headers: a JSON object of strings, or `Name: value` lines. The
/// error never quotes the output (it holds secrets).
fn parse_helper_output(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|_| "is not a valid JSON object".to_string())?;
        for (k, v) in v.as_object().into_iter().flatten() {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("gives `{}` a value that is not a string", k)),
            };
            out.push((k.clone(), v));
        }
    } else {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (k, v) =
                line.split_once(':').ok_or_else(|| format!("has a line {} that is not `Name: value`", i + 1))?;
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if out.is_empty() {
        return Err("is empty".into());
    }
    for (k, v) in &out {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty() || !k.chars().all(token) {
            return Err(format!("names a header `{}` that is not a valid header name", k.escape_default()));
        }
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("gives `{}` a value with control characters", k));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_plain_or_base64_as_the_spec_shows() {
        assert_eq!(header_value("us-west1"), "us-west1");
        assert_eq!(header_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(header_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn marked_parameters_become_headers_and_bad_marks_are_refused() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "query": {"type": "string"},
        }});
        let decls = param_headers(&schema).unwrap();
        let args = json!({"region": "Hello, 世界", "opts": {"dry": true}, "n": 42, "query": "q"});
        let mut got = param_values(&decls, &args);
        got.sort();
        assert_eq!(
            got,
            [
                ("Dry".into(), "true".into()),
                ("N".into(), "42".into()),
                ("Region".into(), "=?base64?SGVsbG8sIOS4lueVjA==?=".into())
            ]
        );
        // Absent or null values send no header.
        assert_eq!(param_values(&decls, &json!({"n": null})), []);
        let bad = [
            json!({"properties": {"x": {"type": "number", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "a b"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "A"}, "y": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"x": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}}}),
            json!({"properties": {"x": {"anyOf": [{"type": "string", "x-mcp-header": "X"}]}}}),
        ];
        for b in bad {
            assert!(param_headers(&b).is_err(), "{}", b);
        }
    }

    #[test]
    fn the_name_header_mirrors_name_or_uri() {
        let p = json!({"name": "echo", "uri": "file:///a"});
        assert_eq!(name_of("tools/call", Some(&p)), Some("echo"));
        assert_eq!(name_of("prompts/get", Some(&p)), Some("echo"));
        assert_eq!(name_of("resources/read", Some(&p)), Some("file:///a"));
        assert_eq!(name_of("tools/list", Some(&p)), None);
    }

    #[test]
    fn helper_output_is_json_or_lines_and_errors_never_quote_it() {
        assert_eq!(
            parse_helper_output("{\"Authorization\": \"Bearer x\", \"X-N\": 1}\n").unwrap(),
            vec![("Authorization".to_string(), "Bearer x".to_string()), ("X-N".to_string(), "1".to_string())]
        );
        assert_eq!(
            parse_helper_output("Authorization: Bearer a:b\n\nX-Team: t\n").unwrap(),
            vec![("Authorization".to_string(), "Bearer a:b".to_string()), ("X-Team".to_string(), "t".to_string())]
        );
        for bad in ["", "sekrit-no-colon", "{\"a\": [1]}", "Bad Name: sekrit", "{oops sekrit"] {
            let e = parse_helper_output(bad).unwrap_err();
            assert!(!e.contains("sekrit"), "{}", e);
        }
    }
}
