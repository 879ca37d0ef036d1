//! MCP 2026-07-28 on the gateway's endpoints, beside the session-based revisions.
//!
//! The era is decided per POST: a request without `Mcp-Session-Id` (other than
//! `initialize`) that carries `_meta["io.modelcontextprotocol/protocolVersion"]` or an
//! `MCP-Protocol-Version` header naming no session-based revision is served here,
//! statelessly; everything else takes the session path in `http.rs`, unchanged.
//!
//! A stateless request is checked as the transport page says (version, then the routing
//! headers `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` against the body: 400 with
//! -32020 or -32022 when they fail), then answered by the same code as a session's request
//! (`mcp::serve`: the same policy, tokens, aggregation and forwarding), under a session
//! object made for this request alone: never registered in the hub, never counted against
//! `MCPCTL_MAX_SESSIONS`, dropped with the answer. A [`Shape`] makes the answers 2026-07-28
//! ones: `resultType`, `_meta` serverInfo, cache hints on list results, no `notifications/message`
//! unless the request set a log level, and never a server→client request on the stream.
//! Tool calls' `Mcp-Param-*` headers are checked against the arguments the tool's cached
//! schema mirrors (`x-mcp-header`).
//!
//! `subscriptions/listen` replaces the GET stream: a long-lived answer carrying the list
//! changes and resource updates the client opted in to, each tagged with its
//! `subscriptionId`. Closing a request's response stream cancels the request upstream.
//!
//! A session-based child that asks the client something during `tools/call`, `prompts/get`
//! or `resources/read` (sampling, elicitation, roots) is bridged to multi round-trip
//! requests: the client is answered `input_required` with the question and a
//! `requestState` naming the call, which stays open upstream (at most [`HELD_TTL`]); the
//! client's retry (same token, method, name and endpoint; each state used once) carries
//! the answer to the child and takes over the call's answer. A client that did not declare
//! the capability is not asked: the child gets an error saying why.
//!
//! A `tools/call` that needs its user's approval (`"gatewayApproval": "ask"`) is held the
//! same way before anything goes upstream: answered `input_required` with the approval
//! question (`approval::ask_modern`); the retry's answer runs it or refuses it.
//!
//! Not served: servers with `"isolation": "session"` (they need a session; a stateless
//! request to one is refused with the reason, and `server/discover` offers only the
//! session-based revisions where one is behind the endpoint).

use super::http::{json_resp, rpc_error, send, Resp};
use super::modern_checks::{check_param_headers, validate};
use super::modern_shape::Shape;
use super::server::Request;
use super::session::{Session, Target};
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::config::Isolation;
use crate::jsonrpc::{self, Message};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The stateless revision served here.
pub const MODERN: &str = crate::client::LATEST_MODERN;
/// The ids of the per-request sessions start with this (see `Hub::upstream_for`).
pub const STATELESS_PREFIX: &str = "stateless-";
pub const HEADER_MISMATCH: i64 = jsonrpc::HEADER_MISMATCH;
pub const UNSUPPORTED_VERSION: i64 = jsonrpc::UNSUPPORTED_PROTOCOL_VERSION;
/// How long a client may keep a list result (ms). Lists follow the children, which change
/// at any time (announced only on listen streams): a few seconds at most.
pub const LIST_TTL_MS: u64 = 5000;

pub(super) const META_VERSION: &str = jsonrpc::META_PROTOCOL_VERSION;
/// How the `requestState`s the gateway mints begin (a child's own are passed on).
pub(super) const STATE_PREFIX: &str = "mcpctl-state-";
pub(super) const META_CAPS: &str = jsonrpc::META_CLIENT_CAPABILITIES;

/// The methods served statelessly (everything else is 404, -32601).
const SERVED: [&str; 8] = [
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "completion/complete",
];

/// Every version the endpoints speak: the stateless one, then the session-based ones.
pub fn supported() -> Vec<&'static str> {
    let mut v = vec![MODERN];
    v.extend(PROTOCOL_VERSIONS);
    v
}

/// An `MCP-Protocol-Version` header that names no session-based revision.
pub fn header_claims_modern(req: &Request<'_>) -> bool {
    req.header("MCP-Protocol-Version").map(|v| !PROTOCOL_VERSIONS.contains(&v)).unwrap_or(false)
}

/// Whether this POST is a 2026-07-28 one (see the module comment).
pub fn claims(req: &Request<'_>, msg: &Message) -> bool {
    if req.header("Mcp-Session-Id").is_some() {
        return false;
    }
    let params = match msg {
        // `initialize` opens a session, unless the request says it is of 2026-07-28, where
        // no such method exists (it is answered 404, -32601, like any removed method).
        Message::Request { method, .. } if method == "initialize" => {
            return header_claims_modern(req) && req.header("MCP-Protocol-Version") == Some(MODERN)
        }
        Message::Request { params, .. } | Message::Notification { params, .. } => params.as_ref(),
        Message::Response { .. } => None,
    };
    params.and_then(|p| p.get("_meta")).and_then(|m| m.get(META_VERSION)).is_some() || header_claims_modern(req)
}

/// The HTTP status of a 2026-07-28 answer that is a JSON-RPC error: the request's own
/// fault (malformed, a header that does not match, a capability or version the client
/// lacks) is 400, an unknown method 404; any other error (a tool's server failing, a
/// refusal by the policy) is a 200 carrying it.
pub fn status_of(error: &Value) -> u16 {
    match error["code"].as_i64() {
        Some(jsonrpc::METHOD_NOT_FOUND) => 404,
        Some(
            jsonrpc::INVALID_REQUEST
            | jsonrpc::INVALID_PARAMS
            | jsonrpc::HEADER_MISMATCH
            | jsonrpc::MISSING_CLIENT_CAPABILITY
            | jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        ) => 400,
        _ => 200,
    }
}

/// The body field `Mcp-Name` mirrors, for the methods that name something.
pub(super) fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A session made for one stateless request (or listen stream) alone: never registered in
/// the hub.
pub(super) fn stateless_session(target: Target) -> Session {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let sid = format!("{}{:x}", STATELESS_PREFIX, NEXT.fetch_add(1, Ordering::Relaxed));
    Session::new(sid, target, MODERN.to_string())
}

/// Serve one 2026-07-28 POST; `token` is the name of the named token it bears.
pub fn post(hub: &Arc<Hub>, req: Request<'_>, target: Target, msg: Message, token: Option<String>) {
    let (id, method, params) = match msg {
        // No client notification is defined on this transport (cancelling is closing the
        // stream): accepted and dropped.
        Message::Notification { .. } => return send(req, Resp::empty(202)),
        Message::Response { id, .. } => {
            let why = "Invalid Request: a 2026-07-28 client sends no responses";
            return send(req, rpc_error(400, id, jsonrpc::INVALID_REQUEST, why));
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    if method == "initialize" {
        let why = format!("Method not found: initialize is not a method in MCP {} (send requests directly)", MODERN);
        return send(req, rpc_error(404, id, jsonrpc::METHOD_NOT_FOUND, &why));
    }
    if let Err(r) = validate(&req, &id, &method, params.as_ref()) {
        return send(req, r);
    }
    if method == "tools/call" {
        if let Err(r) = check_param_headers(hub, &req, &target, &id, params.as_ref()) {
            return send(req, r);
        }
    }
    // A retry carrying a state of ours answers a held call; any other state is the child's
    // own (a 2026-07-28 child's input-required round), passed on with the request.
    let ours = |p: &&Value| p["requestState"].as_str().map(|s| s.starts_with(STATE_PREFIX)).unwrap_or(false);
    if let Some(p) = params.as_ref().filter(|p| ours(p) && name_field(&method).is_some()) {
        return super::modern_held::retry(hub, req, &target, id, &method, p, token.as_deref());
    }
    let shape = Arc::new(Shape::new(hub, &target, &method, params.as_ref(), token.as_deref()));
    if method == "server/discover" {
        let (_, capabilities, instructions) = super::mcp::identity(hub, &target);
        // A server with a child per session cannot be served without a session: where one is
        // behind the endpoint, only the session-based revisions are advertised, so that a
        // probing client opens a session (and keeps reaching it) rather than going stateless.
        let per_session = |u: &super::upstream::Upstream| u.cfg().isolation == Isolation::Session && !u.cfg().disabled;
        let needs_session = match &target {
            Target::One(name) => hub.upstream(name).map(|u| per_session(u)).unwrap_or(false),
            Target::All => hub.upstreams.iter().any(|u| per_session(u)),
        };
        let versions = if needs_session { PROTOCOL_VERSIONS.to_vec() } else { supported() };
        let mut r = json!({"supportedVersions": versions, "capabilities": capabilities_of(capabilities)});
        if let Some(i) = instructions {
            r["instructions"] = json!(i);
        }
        return send(req, json_resp(200, &shape.response(jsonrpc::response(id, r))));
    }
    if method == "subscriptions/listen" {
        return super::modern_listen::listen(hub, req, target, id, params.as_ref());
    }
    if !SERVED.contains(&method.as_str()) {
        let why = match method.as_str() {
            "initialize" | "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe" => {
                format!("Method not found: {} is not a method in MCP {}", method, MODERN)
            }
            _ => format!("Method not found: {}", crate::logsafe::safe(&method)),
        };
        return send(req, rpc_error(404, id, jsonrpc::METHOD_NOT_FOUND, &why));
    }
    // Asked for approval (`"gatewayApproval": "ask"`) only when this request says it can be.
    let caps = params.as_ref().and_then(|p| p["_meta"].get(META_CAPS));
    let session = Arc::new(stateless_session(target).with_token(token).with_client_capabilities(caps));
    // The envelope stays: a 2026-07-28 child reads the client's capabilities and log level
    // from it; a legacy child's connection drops it (`peer`).
    super::mcp::serve(hub, req, &session, id, &method, params, Some(shape));
}

/// Capabilities as a stateless client may use them: list changes come on
/// `subscriptions/listen`; resource subscriptions are not offered (no `resources/subscribe`
/// in this revision, and the listen stream does not honor them yet).
fn capabilities_of(mut caps: Value) -> Value {
    if let Some(c) = caps.get_mut("resources").and_then(Value::as_object_mut) {
        c.remove("subscribe");
    }
    caps
}
