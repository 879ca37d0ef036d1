//! Streamable HTTP, server side: the security checks (Host, Origin, bearer token), the
//! transport rules (methods, headers, sessions, versions, body limits), and answering each
//! client message — locally, by forwarding to one server, or by merging all servers.

use super::aggregate::aggregated;
use super::approval::{ask, ask_modern};
use super::call_log::{log_call, session_word, token_name};
use super::cli_call::cli_call;
use super::forward::forward;
use super::modern::{self, Shape};
use super::server::{BodyError, Request};
use super::session::{Session, Target};
use super::streams::get_stream;
use super::upstream::Upstream;
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::jsonrpc::{self, Message};
use crate::policy;
use serde_json::{json, Value};
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
pub(super) fn subscription(
    session: &Session,
    u: &Arc<Upstream>,
    id: Value,
    method: &str,
    params: Option<&Value>,
) -> Value {
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
pub(super) fn set_log_level(session: &Session, params: Option<&Value>) {
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
pub(super) fn permit(
    hub: &Hub,
    session: &Session,
    u: &Upstream,
    tool: &str,
    id: &Value,
) -> Result<policy::Gate, Value> {
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
pub(super) fn listed(hub: &Hub, session: &Session, cfg: &crate::config::ServerConfig, tool: &str) -> bool {
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
