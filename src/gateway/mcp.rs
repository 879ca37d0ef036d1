//! MCP over Streamable HTTP for session clients (2025-03-26 … 2025-11-25): a POST checked
//! for its transport rules, `initialize` opening a session, each request answered
//! ([`serve`]: also for 2026-07-28 clients) locally, by one server, or by all of them, and
//! DELETE ending a session.

use super::aggregate::aggregated;
use super::approval::{ask, ask_modern};
use super::call_log::session_word;
use super::forward::forward;
use super::gate::{listed, permit};
use super::http::{accepts, identify, invalid, json_resp, read_body, rpc_error, send, session_of, Resp};
use super::modern;
use super::modern_shape::Shape;
use super::server::Request;
use super::session::{Session, Target};
use super::upstream::Upstream;
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::jsonrpc::{self, Message};
use crate::policy;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn post(hub: &Arc<Hub>, mut req: Request<'_>, target: Target) {
    let ctype = req.header("Content-Type").unwrap_or("");
    if !ctype.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return send(req, invalid(415, "Unsupported Media Type: Content-Type must be application/json"));
    }
    if !(accepts(&req, "application/json") && accepts(&req, "text/event-stream")) {
        return send(req, invalid(406, "Not Acceptable: Accept must list application/json and text/event-stream"));
    }
    let body = match read_body(hub, &mut req) {
        Ok(b) => b,
        Err(r) => return send(req, r),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return send(req, rpc_error(400, Value::Null, jsonrpc::PARSE_ERROR, &format!("Parse error: {}", e))),
    };
    if value.is_array() {
        return send(req, invalid(400, "Invalid Request: JSON-RPC batches are not supported"));
    }
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let msg = match Message::from_value(value) {
        Ok(m) => m,
        Err(why) => {
            return send(req, rpc_error(400, id, jsonrpc::INVALID_REQUEST, &format!("Invalid Request: {}", why)))
        }
    };
    let who = || identify(hub, &req).ok().flatten().map(|t| t.name.clone());
    // A request of MCP 2026-07-28 (stateless) is served by the other front end.
    if modern::claims(&req, &msg) {
        let who = who();
        return modern::post(hub, req, target, msg, who);
    }
    if let Message::Request { id, method, params } = &msg {
        if method == "initialize" {
            let r = initialize(hub, &target, id.clone(), params.as_ref(), who());
            return send(req, r);
        }
    }
    if req.header("Mcp-Session-Id").is_none() {
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
        return send(req, rpc_error(400, id, jsonrpc::INVALID_REQUEST, &why));
    }
    let session = match session_of(hub, &req, &target) {
        Ok(s) => s,
        Err(r) => return send(req, r),
    };
    match msg {
        Message::Notification { method, params } => {
            let rid = params.as_ref().and_then(|p| p.get("requestId")).filter(|_| method == "notifications/cancelled");
            if let Some(k) = rid {
                session.cancel(&k.to_string(), "cancelled by the client");
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
        Message::Request { id, method, .. } if method == "ping" => {
            send(req, json_resp(200, &jsonrpc::response(id, json!({}))))
        }
        Message::Request { id, method, params } => serve(hub, req, &session, id, &method, params, None),
    }
}

fn initialize(hub: &Arc<Hub>, target: &Target, id: Value, params: Option<&Value>, token: Option<String>) -> Resp {
    let asked = params.and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).unwrap_or("");
    let version = if PROTOCOL_VERSIONS.contains(&asked) { asked } else { PROTOCOL_VERSIONS[0] };
    let (mut server_info, mut capabilities, mut instructions) = identity(hub, target);
    // A per-era server answers session clients with its session-era child (started now).
    let one = match target {
        Target::One(name) => hub.upstream(name),
        Target::All => None,
    };
    if let Some(twin) = one.and_then(|u| hub.twin_of(u)) {
        let _ = twin.peer(Duration::from_secs(5).min(twin.cfg().timeout));
        if let Some(i) = twin.info() {
            (server_info, capabilities, instructions) = (i.server_info, i.capabilities, i.instructions);
        }
    }
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
                let _ = u.peer(Duration::from_secs(5).min(u.cfg().timeout));
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
    match session.target() {
        Target::One(name) => {
            let Some(u) = hub.upstream_for(session, name) else {
                let r = jsonrpc::error_response(id, jsonrpc::INVALID_PARAMS, &format!("no server `{}`", name));
                return reply(req, shape.as_deref(), r);
            };
            if method == "tools/list" {
                // Answered from the cache, filtered by the policy (never the child's raw list).
                // The server's tool list, waiting up to its `timeout` while it starts.
                let r = match u.peer(u.cfg().timeout) {
                    Ok(_) => {
                        let tools: Vec<Value> = u
                            .tools()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|t| t["name"].as_str().map(|n| listed(hub, session, u.cfg(), n)).unwrap_or(false))
                            .collect();
                        jsonrpc::response(id, json!({"tools": tools}))
                    }
                    Err(why) => jsonrpc::error_response(
                        id,
                        jsonrpc::SERVER_UNAVAILABLE,
                        &format!("{}; see `mcpctl status`", why.one_line()),
                    ),
                };
                return reply(req, shape.as_deref(), r);
            }
            if method == "logging/setLevel" && shape.is_none() {
                set_log_level(session, params.as_ref());
                if u.speaks_modern() {
                    return reply(req, None, jsonrpc::response(id, json!({})));
                }
            }
            if method == "tools/call" {
                let tool = params.as_ref().and_then(|p| p["name"].as_str()).unwrap_or("").to_string();
                return call_tool(hub, req, session, &u, id, &tool, params, shape);
            }
            if matches!(method, "resources/subscribe" | "resources/unsubscribe") && u.translates_subscriptions() {
                return reply(req, shape.as_deref(), subscription(session, &u, id, method, params.as_ref()));
            }
            forward(req, session, &u, id, method, params, shape)
        }
        Target::All => aggregated(hub, req, session, id, method, params, shape),
    }
}

/// A `tools/call` of `tool` at `u`, as the policy says: run, asked of the client's user
/// first, or refused.
#[allow(clippy::too_many_arguments)]
pub(super) fn call_tool(
    hub: &Arc<Hub>,
    req: Request<'_>,
    session: &Arc<Session>,
    u: &Arc<Upstream>,
    id: Value,
    tool: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    match permit(hub, session, u, tool, &id) {
        Ok(policy::Gate::Run) => forward(req, session, u, id, "tools/call", params, shape),
        Ok(policy::Gate::Ask) => match shape {
            None => ask(req, session, u, id, params),
            Some(shape) => ask_modern(req, session, u, shape, id, params),
        },
        Err(r) => reply(req, shape.as_deref(), r),
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
        if let Err(why) = u.subscribe(session.id(), uri) {
            return jsonrpc::error_response(id, jsonrpc::INTERNAL_ERROR, &format!("mcpctl gateway: {}", why));
        }
    } else {
        u.unsubscribe(session.id(), Some(uri));
    }
    jsonrpc::response(id, json!({}))
}

/// Remember a session's `logging/setLevel` (2026-07-28 children get it per request).
pub(super) fn set_log_level(session: &Session, params: Option<&Value>) {
    if let Some(level) = params.and_then(|p| p["level"].as_str()) {
        session.set_log_level(crate::logsafe::safe(level).to_string());
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

pub(super) fn delete(hub: &Arc<Hub>, req: Request<'_>, target: &Target) {
    match session_of(hub, &req, target) {
        Ok(s) => {
            hub.remove_session(s.id());
            send(req, Resp::empty(200))
        }
        Err(r) => send(req, r),
    }
}
