//! Streamable HTTP, server side: the security checks (Host, Origin, bearer token), the
//! transport rules (methods, headers, sessions, versions, body limits), and answering each
//! client message — locally, by forwarding to one server, or by merging all servers.

use super::approval::{ask, ask_modern};
use super::call_log::{log_call, session_word, token_name};
use super::forward::forward;
use super::modern::{self, Shape};
use super::server::{BodyError, Request};
use super::session::{Session, Target};
use super::streams::get_stream;
use super::upstream::{Event, Upstream};
use super::{names, Hub};
use crate::client::{LATEST, PROTOCOL_VERSIONS};
use crate::error::Error;
use crate::jsonrpc::{self, Message};
use crate::peer;
use crate::policy;
use serde_json::{json, Map, Value};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A whole response, written by [`send`].
pub struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Resp {
        Resp { status, headers: vec![("Content-Type", content_type.to_string())], body }
    }
    fn empty(status: u16) -> Resp {
        Resp { status, headers: Vec::new(), body: Vec::new() }
    }
    fn with_header(mut self, name: &'static str, value: &str) -> Resp {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// Write a response in one piece.
pub fn send(req: Request<'_>, r: Resp) {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    req.respond(r.status, &headers, &r.body);
}

pub fn text(status: u16, body: &str) -> Resp {
    Resp::new(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

pub(super) fn json_resp(status: u16, body: &Value) -> Resp {
    Resp::new(status, "application/json", body.to_string().into_bytes())
}

/// A JSON body (or none) with `status`, for the 2026-07-28 front end.
pub(super) fn send_status(req: Request<'_>, status: u16, body: Option<&Value>) {
    match body {
        Some(b) => send(req, json_resp(status, b)),
        None => send(req, Resp::empty(status)),
    }
}

pub(super) fn rpc_error(status: u16, id: Value, code: i64, msg: &str) -> Resp {
    json_resp(status, &jsonrpc::error_response(id, code, msg))
}

/// The whole request body, or the answer to give: 413 past the limit, 400 when unreadable.
pub(super) fn read_body(hub: &Hub, req: &mut Request<'_>) -> Result<Vec<u8>, Resp> {
    req.body().map_err(|e| match e {
        BodyError::TooLarge => too_large(hub.opts.max_body),
        BodyError::Unreadable => {
            rpc_error(400, Value::Null, jsonrpc::PARSE_ERROR, "Parse error: the body could not be read")
        }
    })
}

fn too_large(limit: usize) -> Resp {
    rpc_error(413, Value::Null, jsonrpc::INVALID_REQUEST, &format!("Payload Too Large: the limit is {} bytes", limit))
}

pub(super) fn get<'a>(req: &'a Request<'_>, name: &'static str) -> Option<&'a str> {
    req.header(name)
}

/// Constant-time comparison: the time taken does not depend on where the inputs differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// Which token the request bears: `Ok(None)` the daemon's own (or none needed),
/// `Ok(Some(t))` a named one, `Err` none that we accept. Every configured token is compared
/// (in constant time each), whichever matches.
pub(super) fn identify<'a>(hub: &'a Hub, req: &Request<'_>) -> Result<Option<&'a crate::tokens::NamedToken>, ()> {
    if hub.opts.token.is_none() && hub.opts.tokens.is_empty() {
        return Ok(None);
    }
    let given = get(req, "Authorization")
        .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
        .map(|g| g.trim().as_bytes())
        .ok_or(())?;
    let mut found: Option<Option<&crate::tokens::NamedToken>> = None;
    if let Some(t) = &hub.opts.token {
        if same_secret(given, t.as_bytes()) {
            found = Some(None);
        }
    }
    for t in &hub.opts.tokens {
        if same_secret(given, t.value.as_bytes()) && found.is_none() {
            found = Some(Some(t));
        }
    }
    found.ok_or(())
}

/// The named token a session was created with.
pub(super) fn token_of<'a>(hub: &'a Hub, session: &Session) -> Option<&'a crate::tokens::NamedToken> {
    let name = session.token.as_deref()?;
    hub.opts.tokens.iter().find(|t| t.name == name)
}

/// The host name of a Host header, without the port. A bracketed name must be an IPv6
/// literal followed by nothing or a port (else "", which no check accepts).
fn host_name(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else { return "" };
        let port_ok = after.is_empty()
            || after.strip_prefix(':').map(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).unwrap_or(false);
        return if port_ok && ip.parse::<std::net::Ipv6Addr>().is_ok() { ip } else { "" };
    }
    h.rsplit_once(':').map(|(n, p)| if p.chars().all(|c| c.is_ascii_digit()) { n } else { h }).unwrap_or(h)
}

fn host_allowed(hub: &Hub, host: &str) -> bool {
    let name = host_name(host);
    super::is_loopback(name)
        || name.eq_ignore_ascii_case(&hub.opts.host)
        || hub.opts.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
}

/// A browser Origin we accept: one listed with --allowed-origin, or a loopback origin
/// (a page served from this machine; a DNS-rebinding page carries its attacker's name).
fn origin_allowed(hub: &Hub, origin: &str) -> bool {
    if hub.opts.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.map(|r| super::is_loopback(host_name(r.trim_end_matches('/')))).unwrap_or(false)
}

pub fn handle(hub: &Arc<Hub>, req: Request<'_>) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    if path == "/health" {
        let r = match req.method() {
            "GET" | "HEAD" => json_resp(200, &json!({"status": "ok"})),
            _ => text(405, "method not allowed").with_header("Allow", "GET, HEAD"),
        };
        send(req, r);
        return;
    }
    // DNS rebinding: the Host must be ours, and a browser's Origin must be allowed.
    match get(&req, "Host") {
        Some(h) if host_allowed(hub, h) => {}
        Some(h) => {
            log::warn!("refused a request with Host `{}`", crate::logsafe::safe(h));
            send(req, text(403, "mcpctl gateway: Host not allowed (start the daemon with --allowed-host to allow it)"));
            return;
        }
        None => {
            send(req, text(403, "mcpctl gateway: a Host header is required"));
            return;
        }
    }
    if let Some(o) = get(&req, "Origin") {
        if !origin_allowed(hub, o) {
            log::warn!("refused a request with Origin `{}`", crate::logsafe::safe(o));
            send(
                req,
                text(403, "mcpctl gateway: Origin not allowed (start the daemon with --allowed-origin to allow it)"),
            );
            return;
        }
    }
    let who = match identify(hub, &req) {
        Ok(who) => who,
        Err(()) => {
            let r = text(401, "mcpctl gateway: a valid bearer token is required")
                .with_header("WWW-Authenticate", "Bearer realm=\"mcpctl\"");
            send(req, r);
            return;
        }
    };
    if path == "/status" {
        let r = match req.method() {
            "GET" | "HEAD" => json_resp(200, &hub.status()),
            _ => text(405, "method not allowed").with_header("Allow", "GET, HEAD"),
        };
        send(req, r);
        return;
    }
    if path == "/cli/call" && req.method() == "POST" {
        cli_call(hub, req, who);
        return;
    }
    let Some(target) = super::target_of(&path) else {
        send(req, text(404, "mcpctl gateway: not found; MCP is served at /mcp and /mcp/<server>"));
        return;
    };
    if let Target::One(name) = &target {
        if hub.upstream(name).is_none() {
            let names: Vec<&str> = hub.upstreams.iter().map(|u| u.name()).collect();
            send(req, text(404, &format!("mcpctl gateway: no server `{}` (servers: {})", name, names.join(", "))));
            return;
        }
    }
    match req.method() {
        "POST" => post(hub, req, target),
        "GET" | "DELETE" if get(&req, "Mcp-Session-Id").is_none() && modern::header_claims_modern(&req) => {
            let why = format!(
                "Method Not Allowed: MCP {} has no GET stream and no session to end; POST subscriptions/listen for change notifications",
                modern::MODERN
            );
            send(req, rpc_error(405, Value::Null, jsonrpc::INVALID_REQUEST, &why).with_header("Allow", "POST"));
        }
        "GET" => get_stream(hub, req, &target),
        "DELETE" => delete(hub, req, &target),
        _ => {
            send(req, text(405, "method not allowed").with_header("Allow", "GET, POST, DELETE"));
        }
    }
}

pub(super) fn accepts(req: &Request<'_>, mime: &str) -> bool {
    get(req, "Accept")
        .map(|a| {
            a.split(',').any(|p| {
                let p = p.split(';').next().unwrap_or("").trim();
                p.eq_ignore_ascii_case(mime) || p == "*/*"
            })
        })
        .unwrap_or(false)
}

/// The session named by the request, or the error response to send.
pub(super) fn session_of(hub: &Hub, req: &Request<'_>, target: &Target) -> Result<Arc<Session>, Resp> {
    let Some(id) = get(req, "Mcp-Session-Id") else {
        return Err(rpc_error(
            400,
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    let s = hub.sessions.lock().unwrap().get(id).cloned();
    let who = identify(hub, req).ok().flatten().map(|t| t.name.as_str());
    match s {
        Some(s) if &s.target == target && s.token.as_deref() != who => Err(rpc_error(
            403,
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Forbidden: this session was created with another token; initialize a session of your own",
        )),
        Some(s) if &s.target == target => {
            if let Some(v) = get(req, "MCP-Protocol-Version") {
                if !PROTOCOL_VERSIONS.contains(&v) {
                    return Err(rpc_error(
                        400,
                        Value::Null,
                        jsonrpc::INVALID_REQUEST,
                        &format!(
                            "Bad Request: unsupported MCP-Protocol-Version `{}` (supported: {})",
                            v,
                            PROTOCOL_VERSIONS.join(", ")
                        ),
                    ));
                }
            }
            s.touch();
            Ok(s)
        }
        _ => Err(rpc_error(404, Value::Null, -32001, "Session not found; initialize a new session")),
    }
}

fn post(hub: &Arc<Hub>, mut req: Request<'_>, target: Target) {
    let ctype = get(&req, "Content-Type").unwrap_or("");
    if !ctype.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        send(
            req,
            rpc_error(
                415,
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Unsupported Media Type: Content-Type must be application/json",
            ),
        );
        return;
    }
    if !(accepts(&req, "application/json") && accepts(&req, "text/event-stream")) {
        send(
            req,
            rpc_error(
                406,
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Not Acceptable: Accept must list application/json and text/event-stream",
            ),
        );
        return;
    }
    let body = match read_body(hub, &mut req) {
        Ok(b) => b,
        Err(r) => {
            send(req, r);
            return;
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            send(req, rpc_error(400, Value::Null, jsonrpc::PARSE_ERROR, &format!("Parse error: {}", e)));
            return;
        }
    };
    if value.is_array() {
        send(
            req,
            rpc_error(
                400,
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported",
            ),
        );
        return;
    }
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let msg = match Message::from_value(value) {
        Ok(m) => m,
        Err(why) => {
            send(req, rpc_error(400, id, jsonrpc::INVALID_REQUEST, &format!("Invalid Request: {}", why)));
            return;
        }
    };
    // A request of MCP 2026-07-28 (stateless) is served by the other front end.
    if modern::claims(&req, &msg) {
        let who = identify(hub, &req).ok().flatten().map(|t| t.name.clone());
        modern::post(hub, req, target, msg, who);
        return;
    }
    if let Message::Request { id, method, params } = &msg {
        if method == "initialize" {
            let who = identify(hub, &req).ok().flatten().map(|t| t.name.clone());
            let r = initialize(hub, &target, id.clone(), params.as_ref(), who);
            send(req, r);
            return;
        }
    }
    if get(&req, "Mcp-Session-Id").is_none() {
        // Neither a session nor a version: not a 2026-07-28 error (-32600), so that a
        // client probing for that revision falls back to `initialize`.
        let id = match &msg {
            Message::Request { id, .. } => id.clone(),
            _ => Value::Null,
        };
        let why = format!(
            "Bad Request: Mcp-Session-Id header is required (initialize a session first, or send MCP {} requests with the MCP-Protocol-Version header and _meta)",
            modern::MODERN
        );
        send(req, rpc_error(400, id, jsonrpc::INVALID_REQUEST, &why));
        return;
    }
    let session = match session_of(hub, &req, &target) {
        Ok(s) => s,
        Err(r) => {
            send(req, r);
            return;
        }
    };
    match msg {
        Message::Notification { method, params } => {
            if method == "notifications/cancelled" {
                let rid = params.as_ref().and_then(|p| p.get("requestId")).map(|v| v.to_string());
                let entry = rid.and_then(|k| session.inflight.lock().unwrap().remove(&k));
                if let Some((u, uid)) = entry {
                    if let Some(u) = u.upgrade() {
                        u.cancel(uid, "cancelled by the client");
                    }
                }
            }
            send(req, Resp::empty(202));
        }
        Message::Response { id, outcome } => {
            // Acknowledged first: what the answer sets off (an approved call going upstream)
            // is not the client's to wait for.
            send(req, Resp::empty(202));
            if !session.take_reply(&id, outcome) {
                log::debug!("session {}…: answer to unknown request {} dropped", session_word(&session), id);
            }
        }
        Message::Request { id, method, params } => request(hub, req, &session, id, &method, params),
    }
}

fn initialize(hub: &Arc<Hub>, target: &Target, id: Value, params: Option<&Value>, token: Option<String>) -> Resp {
    let asked = params.and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).unwrap_or("");
    let version = if PROTOCOL_VERSIONS.contains(&asked) { asked } else { PROTOCOL_VERSIONS[0] };
    let (server_info, capabilities, instructions) = identity(hub, target);
    let sid = match super::ids::new_session_id(hub.opts.node_id.as_deref()) {
        Ok(sid) => sid,
        Err(e) => {
            log::error!("initialize refused: no session id can be made: {}", e);
            let msg = format!("Internal error: the gateway cannot make a session id ({})", e);
            return rpc_error(500, id, jsonrpc::INTERNAL_ERROR, &msg);
        }
    };
    let session = Arc::new(
        Session::new(sid.clone(), target.clone(), version.to_string())
            .with_token(token)
            .with_client_capabilities(params.and_then(|p| p.get("capabilities"))),
    );
    if let Err(max) = hub.add_session(session) {
        let msg = format!(
            "the gateway already has {} sessions open, the limit (MCPCTL_MAX_SESSIONS); end one (DELETE) or retry later",
            max
        );
        return rpc_error(503, id, -32000, &msg).with_header("Retry-After", "1");
    }
    let mut result = json!({"protocolVersion": version, "capabilities": capabilities, "serverInfo": server_info});
    if let Some(i) = instructions {
        result["instructions"] = json!(i);
    }
    json_resp(200, &jsonrpc::response(id, result)).with_header("Mcp-Session-Id", &sid)
}

/// What an endpoint says of itself: (serverInfo, capabilities, instructions). For
/// `/mcp/<server>`, the child's own (after waiting briefly for a starting one).
pub(super) fn identity(hub: &Arc<Hub>, target: &Target) -> (Value, Value, Option<String>) {
    match target {
        Target::One(name) => {
            let u = hub.upstream(name).expect("checked");
            // Wait briefly for a starting child so its own identity can be passed on
            // (but never start a lazy one: that waits for a call or a listing).
            if !matches!(u.state(), super::upstream::State::WaitingForRuntime) {
                let _ = u.peer(Duration::from_secs(5).min(u.cfg.timeout));
            }
            match u.info() {
                Some(i) => (i.server_info, i.capabilities, i.instructions),
                None => (gateway_info(), full_capabilities(), None),
            }
        }
        Target::All => (
            gateway_info(),
            full_capabilities(),
            Some("Tools and prompts of every server configured in mcpctl, named <server>__<name>.".to_string()),
        ),
    }
}

pub(super) fn gateway_info() -> Value {
    json!({"name": "mcpctl", "version": env!("CARGO_PKG_VERSION")})
}

fn full_capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "prompts": {"listChanged": true},
        "resources": {"subscribe": true, "listChanged": true},
        "logging": {},
        "completions": {},
    })
}

fn request(hub: &Arc<Hub>, req: Request<'_>, session: &Arc<Session>, id: Value, method: &str, params: Option<Value>) {
    if method == "ping" {
        send(req, json_resp(200, &jsonrpc::response(id, json!({}))));
        return;
    }
    serve(hub, req, session, id, method, params, None)
}

/// Answer a client request (of a session, or a 2026-07-28 one whose answers `shape` makes):
/// the policy, the routing and the aggregation are the same for both.
pub(super) fn serve(
    hub: &Arc<Hub>,
    req: Request<'_>,
    session: &Arc<Session>,
    id: Value,
    method: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    match &session.target {
        Target::One(name) => {
            let u = match hub.upstream_for(session, name) {
                Some(u) => u,
                None => {
                    let r = jsonrpc::error_response(id, jsonrpc::INVALID_PARAMS, &format!("no server `{}`", name));
                    reply(req, shape.as_deref(), r);
                    return;
                }
            };
            if method == "tools/list" {
                // Answered from the cache, filtered by the policy (never the child's raw list).
                let r = match cached_tools(&u) {
                    Some(tools) => {
                        let tools: Vec<Value> = tools
                            .into_iter()
                            .filter(|t| t["name"].as_str().map(|n| listed(hub, session, &u.cfg, n)).unwrap_or(false))
                            .collect();
                        jsonrpc::response(id, json!({"tools": tools}))
                    }
                    None => jsonrpc::error_response(
                        id,
                        jsonrpc::SERVER_UNAVAILABLE,
                        &format!("server `{}` is not available; see `mcpctl status`", name),
                    ),
                };
                reply(req, shape.as_deref(), r);
                return;
            }
            if method == "logging/setLevel" && shape.is_none() {
                set_log_level(session, params.as_ref());
                if u.speaks_modern() {
                    reply(req, None, jsonrpc::response(id, json!({})));
                    return;
                }
            }
            if method == "tools/call" {
                let tool = params.as_ref().and_then(|p| p["name"].as_str()).unwrap_or("").to_string();
                match permit(hub, session, &u, &tool, &id) {
                    Ok(policy::Gate::Run) => {}
                    Ok(policy::Gate::Ask) => match shape {
                        None => return ask(req, session, &u, id, params),
                        Some(shape) => return ask_modern(req, session, &u, shape, id, params),
                    },
                    Err(r) => {
                        reply(req, shape.as_deref(), r);
                        return;
                    }
                }
            }
            if matches!(method, "resources/subscribe" | "resources/unsubscribe") && u.translates_subscriptions() {
                return reply(req, shape.as_deref(), subscription(session, &u, id, method, params.as_ref()));
            }
            forward(req, session, &u, id, method, params, shape)
        }
        Target::All => aggregated(hub, req, session, id, method, params, shape),
    }
}

/// `resources/subscribe`/`unsubscribe` of a session client to a 2026-07-28 child, which has
/// no such methods: the gateway keeps the subscription and the child's listen stream asks
/// for the resources subscribed (see `Upstream::subscribe`); answered at once.
fn subscription(session: &Session, u: &Arc<Upstream>, id: Value, method: &str, params: Option<&Value>) -> Value {
    let Some(uri) = params.and_then(|p| p["uri"].as_str()).filter(|u| !u.is_empty() && u.len() <= 4096) else {
        let why = "Invalid params: `uri` (a string of at most 4096 bytes) is required";
        return jsonrpc::error_response(id, jsonrpc::INVALID_PARAMS, why);
    };
    if method == "resources/subscribe" {
        if let Err(why) = u.subscribe(&session.id, uri) {
            return jsonrpc::error_response(id, jsonrpc::INTERNAL_ERROR, &format!("mcpctl gateway: {}", why));
        }
    } else {
        u.unsubscribe(&session.id, Some(uri));
    }
    jsonrpc::response(id, json!({}))
}

/// Remember a session's `logging/setLevel` (2026-07-28 children get it per request).
fn set_log_level(session: &Session, params: Option<&Value>) {
    if let Some(level) = params.and_then(|p| p["level"].as_str()) {
        *session.log_level.lock().unwrap() = Some(crate::logsafe::safe(level).to_string());
    }
}

/// A JSON-RPC answer, shaped for a 2026-07-28 client when there is a `shape`.
pub(super) fn reply(req: Request<'_>, shape: Option<&Shape>, body: Value) {
    let (status, body) = match shape {
        Some(s) => {
            let body = s.response(body);
            (body.get("error").map(modern::status_of).unwrap_or(200), body)
        }
        None => (200, body),
    };
    send(req, json_resp(status, &body));
}

/// The policy's word on a tool call from a gateway client: run it, ask the user first (a
/// client that declared elicitation), or `Err`: the JSON-RPC refusal.
fn permit(hub: &Hub, session: &Session, u: &Upstream, tool: &str, id: &Value) -> Result<policy::Gate, Value> {
    let token = token_of(hub, session);
    let gate = policy::gateway_for(&u.cfg, tool, token).and_then(|g| match g {
        policy::Gate::Ask if !session.elicits => Err(policy::cannot_ask(
            &u.cfg,
            tool,
            if session.protocol == modern::MODERN {
                "this client cannot be asked (its request did not declare the elicitation capability, form mode, in `_meta` clientCapabilities)"
            } else {
                "this client cannot be asked (it did not declare the elicitation capability, form mode, in `initialize`)"
            },
        )),
        g => Ok(g),
    });
    gate.map_err(|e| {
        log_call(session_word(session), token_name(token), u.name(), tool, Instant::now(), "refused");
        refusal(id, &e.one_line())
    })
}

/// The JSON-RPC error of a call the gateway does not run.
pub(super) fn refusal(id: &Value, why: &str) -> Value {
    jsonrpc::error_response(id.clone(), policy::REFUSED, &format!("mcpctl gateway: {}", why))
}

/// Whether the session's client sees `tool` of server `cfg` listed: what it may call, with
/// the tools that need its user's approval only for a client that can be asked.
fn listed(hub: &Hub, session: &Session, cfg: &crate::config::ServerConfig, tool: &str) -> bool {
    match policy::gateway_for(cfg, tool, token_of(hub, session)) {
        Ok(policy::Gate::Run) => true,
        Ok(policy::Gate::Ask) => session.elicits,
        Err(_) => false,
    }
}

fn cached_tools(u: &Upstream) -> Option<Vec<Value>> {
    u.peer(u.cfg.timeout).ok()?;
    u.tools()
}

fn delete(hub: &Arc<Hub>, req: Request<'_>, target: &Target) {
    match session_of(hub, &req, target) {
        Ok(s) => {
            hub.remove_session(&s.id);
            send(req, Resp::empty(200));
        }
        Err(r) => {
            send(req, r);
        }
    }
}

// ---- the aggregated endpoint ----

fn aggregated(
    hub: &Arc<Hub>,
    req: Request<'_>,
    session: &Arc<Session>,
    id: Value,
    method: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    let answer = |req: Request<'_>, outcome: Result<Value, (i64, String)>| {
        let body = match outcome {
            Ok(r) => jsonrpc::response(id.clone(), r),
            Err((code, msg)) => jsonrpc::error_response(id.clone(), code, &msg),
        };
        reply(req, shape.as_deref(), body);
    };
    match method {
        "tools/list" => {
            // A listing starts servers waiting for their runtime; their tools follow
            // with notifications/tools/list_changed.
            for u in &hub.upstreams {
                u.trigger();
            }
            let table = hub.tool_table();
            let mut tools = Vec::new();
            for u in &hub.upstreams {
                for t in u.tools().unwrap_or_default() {
                    let Some(name) = t["name"].as_str() else { continue };
                    if !listed(hub, session, &u.cfg, name) {
                        continue;
                    }
                    if let Some((_, _, exposed)) = table.order.iter().find(|(s, n, _)| s == u.name() && n == name) {
                        let mut t = t.clone();
                        t["name"] = json!(exposed);
                        tools.push(t);
                    }
                }
            }
            answer(req, Ok(json!({"tools": tools})))
        }
        "tools/call" => {
            let mut params = params.unwrap_or(json!({}));
            let exposed = params["name"].as_str().unwrap_or("").to_string();
            let table = hub.tool_table();
            let Some((server, tool)) = table.resolve(&exposed) else {
                return answer(req, Err((jsonrpc::INVALID_PARAMS, format!("Unknown tool: {}", exposed))));
            };
            params["name"] = json!(tool);
            let u = hub.upstream_for(session, server).expect("listed");
            match permit(hub, session, &u, tool, &id) {
                Ok(policy::Gate::Run) => {}
                Ok(policy::Gate::Ask) => match shape {
                    None => return ask(req, session, &u, id, Some(params)),
                    Some(shape) => return ask_modern(req, session, &u, shape, id, Some(params)),
                },
                Err(r) => {
                    reply(req, shape.as_deref(), r);
                    return;
                }
            }
            forward(req, session, &u, id, method, Some(params), shape.clone())
        }
        "prompts/list" => answer(req, merge_list(hub, session, "prompts/list", "prompts", true)),
        "resources/list" => {
            let r = merge_list(hub, session, "resources/list", "resources", false);
            answer(req, r)
        }
        "resources/templates/list" => {
            answer(req, merge_list(hub, session, "resources/templates/list", "resourceTemplates", false))
        }
        "prompts/get" => {
            let mut params = params.unwrap_or(json!({}));
            let name = params["name"].as_str().unwrap_or("").to_string();
            match split_prefixed(hub, &name) {
                Some((u, original)) => {
                    params["name"] = json!(original);
                    let u = hub.upstream_for(session, u.name()).expect("listed");
                    forward(req, session, &u, id, method, Some(params), shape.clone())
                }
                None => answer(req, Err((jsonrpc::INVALID_PARAMS, format!("Unknown prompt: {}", name)))),
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = params.as_ref().and_then(|p| p["uri"].as_str()).unwrap_or("").to_string();
            match owner_of(hub, session, &uri) {
                Some(u) if method != "resources/read" && u.translates_subscriptions() => {
                    reply(req, shape.as_deref(), subscription(session, &u, id, method, params.as_ref()))
                }
                Some(u) => forward(req, session, &u, id, method, params, shape.clone()),
                None => answer(req, Err((-32002, format!("Resource not found: {}", uri)))),
            }
        }
        "completion/complete" => {
            let mut params = params.unwrap_or(json!({}));
            let r = &params["ref"];
            let routed = match r["type"].as_str() {
                Some("ref/prompt") => split_prefixed(hub, r["name"].as_str().unwrap_or("")).map(|(u, n)| {
                    params["ref"]["name"] = json!(n);
                    u.clone()
                }),
                Some("ref/resource") => owner_of(hub, session, r["uri"].as_str().unwrap_or("")),
                _ => None,
            };
            match routed {
                Some(u) => {
                    let u = hub.upstream_for(session, u.name()).expect("listed");
                    forward(req, session, &u, id, method, Some(params), shape.clone())
                }
                None => answer(req, Ok(json!({"completion": {"values": [], "hasMore": false}}))),
            }
        }
        "logging/setLevel" => {
            set_log_level(session, params.as_ref());
            // Sent on, not waited for (a wedged child must not hold this answer); a
            // 2026-07-28 child gets the level with each request instead.
            for u in hub.upstreams.iter().filter(|u| !u.speaks_modern()) {
                if let Ok(p) = u.peer(Duration::from_millis(10)) {
                    let _ = p.start_with("logging/setLevel", params.clone(), Box::new(|_| {}));
                }
            }
            answer(req, Ok(json!({})))
        }
        _ => answer(req, Err((jsonrpc::METHOD_NOT_FOUND, format!("Method not found: {}", method)))),
    }
}

/// `<server>__<name>` → (server, name) for prompts.
fn split_prefixed<'a>(hub: &'a Hub, exposed: &str) -> Option<(&'a Arc<Upstream>, String)> {
    // Longest server name first, so `a__b` wins over `a` where both exist.
    let mut ups: Vec<&Arc<Upstream>> = hub.upstreams.iter().collect();
    ups.sort_by_key(|u| std::cmp::Reverse(u.name().len()));
    ups.into_iter().find_map(|u| {
        exposed.strip_prefix(u.name()).and_then(|r| r.strip_prefix(names::SEP)).map(|n| (u, n.to_string()))
    })
}

/// Call a list method on every ready server and merge the items (names prefixed if asked).
fn merge_list(
    hub: &Arc<Hub>,
    session: &Arc<Session>,
    method: &str,
    key: &str,
    prefix: bool,
) -> Result<Value, (i64, String)> {
    let mut items = Vec::new();
    for shared in &hub.upstreams {
        let Some(u) = hub.upstream_for(session, shared.name()) else { continue };
        let Ok(peer) = u.peer(Duration::from_millis(if u.cfg.disabled { 0 } else { 2000 })) else { continue };
        let cap = match key {
            "prompts" => "prompts",
            _ => "resources",
        };
        if u.info().map(|i| i.capabilities.get(cap).is_none()).unwrap_or(true) {
            continue;
        }
        match crate::client::list_all(&peer, method, key, u.cfg.timeout) {
            Ok(list) => {
                for mut it in list {
                    if prefix {
                        if let Some(n) = it["name"].as_str() {
                            it["name"] = json!(format!("{}{}{}", u.name(), names::SEP, n));
                        }
                    } else if let Some(uri) = it["uri"].as_str() {
                        hub.resource_owner.lock().unwrap().insert(uri.to_string(), u.name().to_string());
                    }
                    items.push(it);
                }
            }
            Err(e) => log::warn!("{}", crate::logsafe::unbounded(&e.one_line())),
        }
    }
    let mut m = Map::new();
    m.insert(key.to_string(), Value::Array(items));
    Ok(Value::Object(m))
}

/// The server a resource URI belongs to: learned from listings, else by template prefix.
pub(super) fn owner_of(hub: &Arc<Hub>, session: &Arc<Session>, uri: &str) -> Option<Arc<Upstream>> {
    let known = hub.resource_owner.lock().unwrap().get(uri).cloned();
    if let Some(name) = known {
        return hub.upstream_for(session, &name);
    }
    for shared in &hub.upstreams {
        let Some(u) = hub.upstream_for(session, shared.name()) else { continue };
        let Ok(peer) = u.peer(Duration::from_millis(500)) else { continue };
        if u.info().map(|i| i.capabilities.get("resources").is_none()).unwrap_or(true) {
            continue;
        }
        let templates = crate::client::list_all(&peer, "resources/templates/list", "resourceTemplates", u.cfg.timeout)
            .unwrap_or_default();
        let fits = templates.iter().any(|t| {
            let tpl = t["uriTemplate"].as_str().unwrap_or("");
            let head = tpl.split('{').next().unwrap_or("");
            !head.is_empty() && uri.starts_with(head)
        });
        let listed = crate::client::list_all(&peer, "resources/list", "resources", u.cfg.timeout)
            .unwrap_or_default()
            .iter()
            .any(|r| r["uri"] == uri);
        if fits || listed {
            hub.resource_owner.lock().unwrap().insert(uri.to_string(), u.name().to_string());
            return Some(u);
        }
    }
    None
}

/// `POST /cli/call`: one tool call for the shell client in a single round trip (the
/// five MCP exchanges of a session cost more than the call itself). The client has settled
/// approval already and sends the arguments as typed; they are typed here by the cached
/// schema, exactly as `mcpctl call` types them, and the answer carries the result or the
/// error (status word, message, hint) for the client to print as it would its own.
fn cli_call(hub: &Arc<Hub>, mut req: Request<'_>, who: Option<&crate::tokens::NamedToken>) {
    let body = match read_body(hub, &mut req) {
        Ok(b) => b,
        Err(r) => {
            send(req, r);
            return;
        }
    };
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => run_cli_call(hub, &v, who),
        Err(e) => json!({"error": Error::failure(format!("bad /cli/call body: {}", e)).to_json()}),
    };
    send(req, json_resp(200, &answer));
}

fn run_cli_call(hub: &Arc<Hub>, v: &Value, who: Option<&crate::tokens::NamedToken>) -> Value {
    let bad = |what: String| {
        json!({"error": Error::failure(format!("bad /cli/call request: {}", what))
            .hint("send it with the mcpctl binary of the daemon (a client of another version speaks another shape)")
            .to_json()})
    };
    let (Some(server), Some(tool)) = (v["server"].as_str(), v["tool"].as_str()) else {
        return bad("`server` and `tool` must be strings".into());
    };
    // Arguments that do not decode are an error, never a call with no arguments.
    let typed: Vec<crate::cli::ToolArg> = match v.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(a) => match serde_json::from_value(a.clone()) {
            Ok(t) => t,
            Err(e) => return bad(format!("`args`: {}", e)),
        },
    };
    let Some(u) = hub.upstream(server).filter(|u| u.cfg.isolation == crate::config::Isolation::Shared) else {
        return json!({"error": Error::failure(format!("the daemon has no shared server `{}`", server)).hint("restart it with `mcpctl stop && mcpctl start` after changing the config").to_json()});
    };
    // The same policy as every other path: the shell client asks for nothing more here, and
    // settles "ask" on its own terminal (running such a tool on a child of its own).
    let gate = policy::gateway_for(&u.cfg, tool, who).and_then(|g| match g {
        policy::Gate::Run => Ok(()),
        policy::Gate::Ask => Err(policy::cannot_ask(&u.cfg, tool, "/cli/call cannot ask the user")),
    });
    if let Err(e) = gate {
        log_call("cli", token_name(who), server, tool, Instant::now(), "refused");
        return json!({"error": e.to_json()});
    }
    // The daemon reads no file and no standard input for a caller.
    if let Err(e) = crate::call::only_values(&typed) {
        return json!({"error": e.to_json()});
    }
    let timeout = v["timeout_ms"].as_u64().map(Duration::from_millis).unwrap_or(u.cfg.timeout);
    // Start a lazy server and wait for a starting one: its tool list comes with it.
    if let Err(e) = u.peer(u.cfg.timeout) {
        return json!({"error": e.to_json()});
    }
    let def = match u.tool(tool) {
        Ok(d) => d,
        Err(e) => return json!({"error": e.to_json()}),
    };
    let arguments = match crate::call::arguments(&def, &typed, &mut std::io::empty()) {
        Ok(a) => a,
        Err(bad) => return json!({"error": bad.error.to_json(), "arguments": bad.arguments}),
    };
    // A session of its own (not listed in the hub), so that what the child asks while the
    // call runs is attributed correctly: to this call when it is the only one in flight.
    let session = Arc::new(Session::new("cli".into(), Target::One(server.to_string()), LATEST.to_string()));
    let started = std::time::Instant::now();
    let params = json!({"name": tool, "arguments": arguments});
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let mut uid = 0;
    if let Err(e) = u.forward(&session, "tools/call", Some(params), sink, &mut |id| uid = id) {
        return json!({"error": e.to_json(), "arguments": arguments});
    }
    // The shell client answers no server→client requests (as when it runs the server itself).
    let outcome = await_forwarded(u, uid, &rx, timeout, |m| {
        if let (Some(id), Some(method)) = (m.get("id"), m["method"].as_str()) {
            let e = jsonrpc::error_object(
                jsonrpc::METHOD_NOT_FOUND,
                &format!("mcpctl's shell client does not support {}", method),
            );
            session.take_reply(id, Err(e));
        }
    });
    let outcome = match outcome {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(peer::call_error(server, "tools/call", &e)),
        None => Err(peer::timeout_error(server, "`tools/call`", timeout)),
    };
    let word = match &outcome {
        Ok(r) if r["isError"] == json!(true) => "tool error",
        Ok(_) => "ok",
        Err(_) => "error",
    };
    log_call("cli", token_name(who), server, tool, started, word);
    match outcome {
        Ok(r) => json!({"arguments": arguments, "result": r}),
        Err(e) => json!({"error": e.to_json(), "arguments": arguments}),
    }
}

/// Wait for a request forwarded upstream, handing each message that belongs to it
/// (progress, log, server→client request) to `on_message` on the way. `None` when it
/// outlived `timeout`; the child has then been told to cancel it.
fn await_forwarded(
    u: &Upstream,
    uid: u64,
    rx: &Receiver<Event>,
    timeout: Duration,
    mut on_message: impl FnMut(Value),
) -> Option<crate::peer::Outcome> {
    loop {
        match rx.recv_timeout(timeout) {
            Ok(Event::Done(o)) => return Some(o.map(|r| serde_json::from_str(r.get()).unwrap_or(Value::Null))),
            Ok(Event::Message(m)) => on_message(m),
            Err(_) => {
                u.cancel(uid, "timeout");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_fully() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn host_names_without_ports() {
        assert_eq!(host_name("localhost:7878"), "localhost");
        assert_eq!(host_name("[::1]:7878"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example"), "evil.example");
        // Brackets hold an IPv6 literal and nothing else.
        for h in ["[localhost]", "[evil]", "[127.0.0.1]", "[::1]x", "[::1]:", "[::1"] {
            assert_eq!(host_name(h), "", "{h}");
        }
    }

    #[test]
    fn loopback_origins_only() {
        let hub = crate::gateway::tests::hub(vec!["https://app.example".into()]);
        assert!(origin_allowed(&hub, "http://localhost:6274"));
        assert!(origin_allowed(&hub, "http://127.0.0.1:7878"));
        assert!(origin_allowed(&hub, "http://[::1]:7878"));
        assert!(origin_allowed(&hub, "https://app.example"));
        assert!(!origin_allowed(&hub, "http://evil.example"));
        assert!(!origin_allowed(&hub, "http://localhost.evil.example"));
        assert!(!origin_allowed(&hub, "null"));
    }
}
