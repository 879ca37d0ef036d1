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

use super::server::Request;
use super::session::{Session, Target};
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::config::Isolation;
use crate::jsonrpc::{self, Message};
use crate::peer::{self, RawOutcome};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The stateless revision served here.
pub const MODERN: &str = crate::client::LATEST_MODERN;
/// The ids of the per-request sessions start with this (see `Hub::upstream_for`).
pub const STATELESS_PREFIX: &str = "stateless-";
pub const HEADER_MISMATCH: i64 = jsonrpc::HEADER_MISMATCH;
pub const UNSUPPORTED_VERSION: i64 = jsonrpc::UNSUPPORTED_PROTOCOL_VERSION;
/// How long a client may keep a list result (ms). Lists follow the children, which change
/// at any time (announced only on listen streams): a few seconds at most.
pub const LIST_TTL_MS: u64 = 5000;

const META_VERSION: &str = jsonrpc::META_PROTOCOL_VERSION;
/// How the `requestState`s the gateway mints begin (a child's own are passed on).
const STATE_PREFIX: &str = "mcpctl-state-";
const META_CAPS: &str = jsonrpc::META_CLIENT_CAPABILITIES;
const META_LOG: &str = jsonrpc::META_LOG_LEVEL;
const META_SERVER_INFO: &str = jsonrpc::META_SERVER_INFO;

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

fn params_of(msg: &Message) -> Option<&Value> {
    match msg {
        Message::Request { params, .. } | Message::Notification { params, .. } => params.as_ref(),
        Message::Response { .. } => None,
    }
}

fn meta_version(params: Option<&Value>) -> Option<&Value> {
    params.and_then(|p| p.get("_meta")).and_then(|m| m.get(META_VERSION))
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
    if let Message::Request { method, .. } = msg {
        // `initialize` opens a session, unless the request says it is of 2026-07-28, where
        // no such method exists (it is answered 404, -32601, like any removed method).
        if method == "initialize" {
            return header_claims_modern(req) && req.header("MCP-Protocol-Version") == Some(MODERN);
        }
    }
    meta_version(params_of(msg)).is_some() || header_claims_modern(req)
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

pub(super) fn error(status: u16, id: Value, code: i64, msg: &str, data: Option<Value>) -> (u16, Value) {
    let mut e = jsonrpc::error_response(id, code, msg);
    if let Some(d) = data {
        e["error"]["data"] = d;
    }
    (status, e)
}

/// `=?base64?…?=` header values decoded; others as they are. `None`: not valid base64/UTF-8.
fn decode_header(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) else {
        return Some(v.to_string());
    };
    // Strict: the standard alphabet, whole quanta, padding only at the end (SEP-2243).
    let body = inner.trim_end_matches('=');
    if inner.len() % 4 != 0 || inner.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The body field `Mcp-Name` mirrors, for the methods that name something.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The transport's checks, in the order of the spec's server validation: `Err` is the
/// (status, JSON-RPC error) to answer.
fn validate(req: &Request<'_>, id: &Value, method: &str, params: Option<&Value>) -> Result<(), (u16, Value)> {
    // One value each: a proxy that routes on one copy must not see another served.
    for h in ["MCP-Protocol-Version", "Mcp-Method", "Mcp-Name"] {
        if req.header_count(h) > 1 {
            let e = format!("Header mismatch: the {} header appears more than once", h);
            return Err(error(400, id.clone(), HEADER_MISMATCH, &e, None));
        }
    }
    let hv = req.header("MCP-Protocol-Version");
    let meta = params.and_then(|p| p.get("_meta")).filter(|m| m.is_object());
    let unsupported = |asked: &str| {
        let why = if PROTOCOL_VERSIONS.contains(&asked) {
            format!(
                "Unsupported protocol version: {} is served in a session only (send initialize first); requests without a session speak {}",
                asked, MODERN
            )
        } else {
            format!("Unsupported protocol version: {} (supported: {})", asked, supported().join(", "))
        };
        error(400, id.clone(), UNSUPPORTED_VERSION, &why, Some(json!({"supported": supported(), "requested": asked})))
    };
    let Some(mv) = meta.and_then(|m| m.get(META_VERSION)) else {
        if let Some(h) = hv.filter(|h| *h != MODERN) {
            return Err(unsupported(h));
        }
        return Err(error(
            400,
            id.clone(),
            jsonrpc::INVALID_PARAMS,
            &format!("Invalid params: params._meta must carry `{}` and `{}`", META_VERSION, META_CAPS),
            None,
        ));
    };
    let Some(mv) = mv.as_str() else {
        return Err(error(
            400,
            id.clone(),
            jsonrpc::INVALID_PARAMS,
            &format!("Invalid params: `{}` must be a string", META_VERSION),
            None,
        ));
    };
    let mismatch = |what: String| error(400, id.clone(), HEADER_MISMATCH, &format!("Header mismatch: {}", what), None);
    match hv {
        None => return Err(mismatch("the MCP-Protocol-Version header is required".into())),
        Some(h) if h != mv => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header value '{}' does not match body value '{}'",
                crate::logsafe::safe(h),
                crate::logsafe::safe(mv)
            )))
        }
        Some(_) => {}
    }
    match req.header("Mcp-Method") {
        None => return Err(mismatch("the Mcp-Method header is required".into())),
        Some(h) if h != method => {
            return Err(mismatch(format!(
                "Mcp-Method header value '{}' does not match body value '{}'",
                crate::logsafe::safe(h),
                crate::logsafe::safe(method)
            )))
        }
        Some(_) => {}
    }
    if let Some(field) = name_field(method) {
        let body = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        if let Some(body) = body {
            match req.header("Mcp-Name").map(decode_header) {
                None => return Err(mismatch(format!("the Mcp-Name header is required for {}", method))),
                Some(None) => return Err(mismatch("the Mcp-Name header is not valid base64 UTF-8".into())),
                Some(Some(h)) if h != body => {
                    return Err(mismatch(format!(
                        "Mcp-Name header value '{}' does not match body value '{}'",
                        crate::logsafe::safe(&h),
                        crate::logsafe::safe(body)
                    )))
                }
                Some(Some(_)) => {}
            }
        }
    }
    if mv != MODERN {
        return Err(unsupported(mv));
    }
    if !meta.map(|m| m.get(META_CAPS).is_some_and(Value::is_object)).unwrap_or(false) {
        return Err(error(
            400,
            id.clone(),
            jsonrpc::INVALID_PARAMS,
            &format!("Invalid params: params._meta must carry `{}` (an object)", META_CAPS),
            None,
        ));
    }
    Ok(())
}

/// The `x-mcp-header` annotations of an input schema: (header name, property path), found
/// through `properties` only (the only places the annotation is valid), at most 16 deep.
fn param_headers(schema: &Value) -> Vec<(String, Vec<String>)> {
    fn walk(s: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
        if path.len() >= 16 {
            return;
        }
        for (k, p) in props {
            path.push(k.clone());
            if let Some(h) = p.get("x-mcp-header").and_then(Value::as_str) {
                out.push((h.to_string(), path.clone()));
            }
            walk(p, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// A `tools/call`'s `Mcp-Param-*` headers against its arguments, for the parameters the
/// tool's schema mirrors into headers (as the gateway has the schema cached).
fn check_param_headers(
    hub: &Hub,
    req: &Request<'_>,
    target: &Target,
    id: &Value,
    params: Option<&Value>,
) -> Result<(), (u16, Value)> {
    let name = params.and_then(|p| p["name"].as_str()).unwrap_or("");
    let (server, tool) = match target {
        Target::One(s) => (s.clone(), name.to_string()),
        Target::All => match hub.tool_table().resolve(name) {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => return Ok(()),
        },
    };
    let def = hub.upstream(&server).and_then(|u| u.tool(&tool).ok());
    let Some(def) = def else { return Ok(()) };
    let args = params.map(|p| &p["arguments"]).unwrap_or(&Value::Null);
    let mismatch = |what: String| error(400, id.clone(), HEADER_MISMATCH, &format!("Header mismatch: {}", what), None);
    for (h, path) in param_headers(&def["inputSchema"]) {
        let value = path.iter().try_fold(args, |a, k| a.get(k));
        let Some(value) = value.filter(|v| !v.is_null()) else { continue };
        let header = format!("Mcp-Param-{}", h);
        let Some(raw) = req.header(&header) else {
            return Err(mismatch(format!("the {} header is required (argument `{}`)", header, path.join("."))));
        };
        let Some(got) = decode_header(raw) else {
            return Err(mismatch(format!("the {} header is not valid base64 UTF-8", header)));
        };
        let same = match value {
            Value::String(v) => got == *v,
            Value::Bool(b) => got == b.to_string(),
            Value::Number(n) => got.trim().parse::<f64>().ok() == n.as_f64(),
            _ => true,
        };
        if !same {
            return Err(mismatch(format!(
                "{} header value '{}' does not match body value '{}'",
                header,
                crate::logsafe::safe(&got),
                crate::logsafe::safe(&value.to_string())
            )));
        }
    }
    Ok(())
}

pub(super) static NEXT: AtomicU64 = AtomicU64::new(1);

/// Serve one 2026-07-28 POST; `token` is the name of the named token it bears.
pub fn post(hub: &Arc<Hub>, req: Request<'_>, target: Target, msg: Message, token: Option<String>) {
    let (id, method, params) = match msg {
        // No client notification is defined on this transport (cancelling is closing the
        // stream): accepted and dropped.
        Message::Notification { .. } => return super::http::send_status(req, 202, None),
        Message::Response { id, .. } => {
            let (s, e) = error(
                400,
                id,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: a 2026-07-28 client sends no responses",
                None,
            );
            return super::http::send_status(req, s, Some(&e));
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    if method == "initialize" {
        let why = format!("Method not found: initialize is not a method in MCP {} (send requests directly)", MODERN);
        let (s, e) = error(404, id, jsonrpc::METHOD_NOT_FOUND, &why, None);
        return super::http::send_status(req, s, Some(&e));
    }
    if let Err((status, e)) = validate(&req, &id, &method, params.as_ref()) {
        return super::http::send_status(req, status, Some(&e));
    }
    if method == "tools/call" {
        if let Err((status, e)) = check_param_headers(hub, &req, &target, &id, params.as_ref()) {
            return super::http::send_status(req, status, Some(&e));
        }
    }
    // A retry carrying a state of ours answers a held call; any other state is the child's
    // own (a 2026-07-28 child's input-required round), passed on with the request.
    let ours = |p: &&Value| p["requestState"].as_str().map(|s| s.starts_with(STATE_PREFIX)).unwrap_or(false);
    if let Some(p) = params.as_ref().filter(|p| ours(p) && name_field(&method).is_some()) {
        return retry(hub, req, &target, id, &method, p, token.as_deref());
    }
    let shape = Arc::new(Shape::new(hub, &target, &method, params.as_ref(), token.as_deref()));
    if method == "server/discover" {
        let (_, capabilities, instructions) = super::mcp::identity(hub, &target);
        // A server with a child per session cannot be served without a session: where one is
        // behind the endpoint, only the session-based revisions are advertised, so that a
        // probing client opens a session (and keeps reaching it) rather than going stateless.
        let per_session = |u: &super::upstream::Upstream| u.cfg.isolation == Isolation::Session && !u.cfg.disabled;
        let needs_session = match &target {
            Target::One(name) => hub.upstream(name).map(|u| per_session(u)).unwrap_or(false),
            Target::All => hub.upstreams.iter().any(|u| per_session(u)),
        };
        let versions = if needs_session { PROTOCOL_VERSIONS.to_vec() } else { supported() };
        let mut r = json!({"supportedVersions": versions, "capabilities": capabilities_of(capabilities)});
        if let Some(i) = instructions {
            r["instructions"] = json!(i);
        }
        let body = shape.response(jsonrpc::response(id, r));
        return super::http::send_status(req, 200, Some(&body));
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
        let (s, e) = error(404, id, jsonrpc::METHOD_NOT_FOUND, &why, None);
        return super::http::send_status(req, s, Some(&e));
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let sid = format!("{}{:x}", STATELESS_PREFIX, n);
    // Asked for approval (`"gatewayApproval": "ask"`) only when this request says it can be.
    let caps = params.as_ref().and_then(|p| p["_meta"].get(META_CAPS));
    let session =
        Arc::new(Session::new(sid, target, MODERN.to_string()).with_token(token).with_client_capabilities(caps));
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

/// The client capability a child's request needs.
fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "elicitation/create" => Some("elicitation"),
        "sampling/createMessage" => Some("sampling"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// How long a held request waits for the client's retry.
pub const HELD_TTL: Duration = Duration::from_secs(60);
/// At most this many requests are held at once (beyond, the child gets an error).
const MAX_HELD: usize = 256;

/// A request answered `input_required`, open upstream until the client's retry (or, for a
/// tool that needs the user's approval, not sent upstream yet).
struct Held {
    waiting: Waiting,
    key: String,
    /// The question as the client was sent it (asked again when the retry lacks its answer).
    question: Value,
    binding: Binding,
    expires: Instant,
}

/// What a held request waits for.
enum Waiting {
    /// The client's answer to a child's question, for the call open upstream.
    Child {
        resume: super::forward::Resume,
        /// Our id of the child's question (the key of the session's replies).
        gid: Value,
    },
    /// The user's approval of a `tools/call` (`"gatewayApproval": "ask"`), not sent yet.
    Approval(super::approval::Approval),
}

fn held() -> &'static Mutex<HashMap<String, Held>> {
    static HELD: OnceLock<Mutex<HashMap<String, Held>>> = OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

fn input_required(key: &str, question: &Value, state: &str) -> Value {
    json!({"resultType": "input_required", "inputRequests": {key: question}, "requestState": state})
}

/// Hold the request for the client's answer to `m`; the input-required result to send.
fn hold(resume: super::forward::Resume, gid: Value, binding: Binding, m: &Value) -> Result<Value, String> {
    let question = json!({"method": m["method"], "params": m.get("params").cloned().unwrap_or(json!({}))});
    let state = format!("{}{}", STATE_PREFIX, super::ids::random_id());
    let key = format!("mcpctl-{}", &state[..8]);
    let result = input_required(&key, &question, &state);
    let mut map = held().lock().unwrap();
    if map.len() >= MAX_HELD {
        return Err(format!("{} requests already wait for their clients' input, the limit", MAX_HELD));
    }
    let first = map.is_empty();
    let waiting = Waiting::Child { resume, gid };
    map.insert(state, Held { waiting, key, question, binding, expires: Instant::now() + HELD_TTL });
    drop(map);
    if first {
        let _ = std::thread::Builder::new().name("held-requests".into()).spawn(sweep);
    }
    Ok(result)
}

/// The key of the approval question in `inputRequests`/`inputResponses`.
const APPROVAL_KEY: &str = "mcpctl-approval";

impl Shape {
    /// Hold a `tools/call` that needs its user's approval: the input-required result asking
    /// `question` (an `elicitation/create` request), or why it cannot be held.
    pub(super) fn hold_approval(&self, approval: super::approval::Approval, question: Value) -> Result<Value, String> {
        let Some(binding) = self.binding.clone() else {
            return Err(format!("`{}` takes no input-required result", self.method));
        };
        let state = format!("{}{}", STATE_PREFIX, super::ids::random_id());
        let result = input_required(APPROVAL_KEY, &question, &state);
        let mut map = held().lock().unwrap();
        if map.len() >= MAX_HELD {
            return Err(format!("{} requests already wait for their clients' input, the limit", MAX_HELD));
        }
        let first = map.is_empty();
        let waiting = Waiting::Approval(approval);
        let key = APPROVAL_KEY.to_string();
        map.insert(state, Held { waiting, key, question, binding, expires: Instant::now() + HELD_TTL });
        drop(map);
        if first {
            let _ = std::thread::Builder::new().name("held-requests".into()).spawn(sweep);
        }
        Ok(result)
    }
}

/// While requests are held: the ones whose client did not come back in time are given up
/// (the child is told the client did not answer).
fn sweep() {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = Instant::now();
        let (expired, empty): (Vec<Held>, bool) = {
            let mut map = held().lock().unwrap();
            let keys: Vec<String> = map.iter().filter(|(_, h)| h.expires <= now).map(|(k, _)| k.clone()).collect();
            (keys.iter().filter_map(|k| map.remove(k)).collect(), map.is_empty())
        };
        for h in expired {
            match h.waiting {
                Waiting::Child { resume, gid } => {
                    let e = jsonrpc::error_object(
                        jsonrpc::INTERNAL_ERROR,
                        &format!("mcpctl gateway: the client did not answer within {}s", HELD_TTL.as_secs()),
                    );
                    resume.session().take_reply(&gid, Err(e));
                }
                // Nothing was sent upstream: the call is just not run.
                Waiting::Approval(a) => a.log("unanswered"),
            }
        }
        if empty {
            // A request held just now spawns a new sweeper only into an empty map: check
            // again under the lock that none slipped in.
            if held().lock().unwrap().is_empty() {
                return;
            }
        }
    }
}

/// A retry of a held request (`requestState` given): verified (same token, method, name and
/// endpoint; not expired; used once), its answer passed to the child, and the call's answer
/// given to this request (for a call held for its user's approval: the call run, or refused).
fn retry(hub: &Hub, req: Request<'_>, target: &Target, id: Value, method: &str, params: &Value, token: Option<&str>) {
    let state = params["requestState"].as_str().unwrap_or("");
    let name = name_field(method).and_then(|f| params.get(f)).and_then(Value::as_str);
    let h = {
        let mut map = held().lock().unwrap();
        let fits = map.get(state).map(|h| {
            h.expires > Instant::now()
                && h.binding.token.as_deref() == token
                && h.binding.method == method
                && h.binding.name.as_deref() == name
                && h.binding.target == format!("{:?}", target)
        });
        match fits {
            Some(true) => map.remove(state),
            _ => None,
        }
    };
    let Some(h) = h else {
        let (s, e) = error(
            400,
            id,
            jsonrpc::INVALID_PARAMS,
            "Invalid params: requestState is unknown, expired, already used, or not this request's; call again without it",
            None,
        );
        return super::http::send_status(req, s, Some(&e));
    };
    let Some(answer) = params["inputResponses"].get(&h.key).cloned() else {
        // Asked again, under a new state (the old one is used up).
        let state = format!("{}{}", STATE_PREFIX, super::ids::random_id());
        let result = input_required(&h.key, &h.question, &state);
        let body = jsonrpc::response(id, result);
        held().lock().unwrap().insert(state, Held { expires: Instant::now() + HELD_TTL, ..h });
        return super::http::send_status(req, 200, Some(&body));
    };
    let (resume, gid) = match h.waiting {
        Waiting::Child { resume, gid } => (resume, gid),
        Waiting::Approval(a) => {
            let shape = Arc::new(Shape::new(hub, target, method, Some(params), token));
            return a.answered(req, id, answer, shape);
        }
    };
    match resume.resume(req, id.clone()) {
        None => {
            resume.session().take_reply(&gid, Ok(answer));
        }
        Some(req) => {
            let (s, e) =
                error(200, id, jsonrpc::INTERNAL_ERROR, "the request ended while it waited for the input", None);
            super::http::send_status(req, s, Some(&e));
        }
    }
}

const LEVELS: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// How the answers to one 2026-07-28 request are made.
pub struct Shape {
    server_info: Value,
    method: String,
    /// The least severity of log messages passed on (`None`: none, the request set no level).
    log_floor: Option<usize>,
    /// What the request may be asked back (see [`Binding`]); `None`: nothing (the method
    /// takes no input-required result).
    binding: Option<Binding>,
    /// The id the answer goes out under, once a retry has taken the request over.
    reply_id: Mutex<Option<Value>>,
}

/// What a held request is bound to: a retry must come from the same token, for the same
/// method and name; the capabilities say what the client can be asked.
#[derive(Clone, PartialEq)]
struct Binding {
    token: Option<String>,
    method: String,
    name: Option<String>,
    target: String,
    caps: Value,
}

/// What becomes of a message from the child while the request runs.
pub enum Step {
    /// Sent to the client (on the request's stream).
    Pass(Value),
    /// Not for this client.
    Drop,
    /// A question for the client: answer the request with this input-required result.
    Ask(Value),
}

impl Shape {
    fn new(hub: &Hub, target: &Target, method: &str, params: Option<&Value>, token: Option<&str>) -> Shape {
        let server_info = match target {
            Target::One(name) => hub.upstream(name).and_then(|u| u.server_info()),
            Target::All => None,
        }
        .unwrap_or_else(super::mcp::gateway_info);
        let meta = params.and_then(|p| p.get("_meta"));
        let level = meta.and_then(|m| m.get(META_LOG)).and_then(Value::as_str);
        let binding = name_field(method).map(|field| Binding {
            token: token.map(str::to_string),
            method: method.to_string(),
            name: params.and_then(|p| p.get(field)).and_then(Value::as_str).map(str::to_string),
            target: format!("{:?}", target),
            caps: meta.and_then(|m| m.get(META_CAPS)).cloned().unwrap_or(json!({})),
        });
        Shape {
            server_info,
            method: method.to_string(),
            log_floor: level.and_then(|l| LEVELS.iter().position(|x| *x == l)),
            binding,
            reply_id: Mutex::new(None),
        }
    }

    /// A retry (with its own id) takes the request over.
    pub fn answer_as(&self, id: Value) {
        *self.reply_id.lock().unwrap() = Some(id);
    }

    pub fn answer_id(&self) -> Option<Value> {
        self.reply_id.lock().unwrap().clone()
    }

    /// A result as 2026-07-28 has it.
    fn result(&self, r: &mut Value) {
        let Some(o) = r.as_object_mut() else { return };
        o.entry("resultType").or_insert(json!("complete"));
        let meta = o.entry("_meta").or_insert(json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert(META_SERVER_INFO.to_string(), self.server_info.clone());
        }
        let scope = match self.method.as_str() {
            // The same for every caller of this endpoint.
            "server/discover" => Some("public"),
            // What a list holds depends on the token's policy.
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" | "resources/read" => {
                Some("private")
            }
            _ => None,
        };
        if let Some(scope) = scope {
            o.entry("ttlMs").or_insert(json!(if self.method == "resources/read" { 0 } else { LIST_TTL_MS }));
            o.entry("cacheScope").or_insert(json!(scope));
        }
    }

    /// [`Shape::result`] on a child's result as it came, without building its tree: the
    /// usual result (an object with neither `resultType` nor `_meta`) gets the fields
    /// appended to its text; only one that has either is parsed (its top level only when
    /// it can be).
    fn raw_result(&self, raw: Box<RawValue>) -> Box<RawValue> {
        let text = raw.get().trim_end();
        let top: Option<HashMap<&str, &RawValue>> = serde_json::from_str(text).ok();
        let Some(top) = top else { return raw };
        if top.contains_key("resultType") || top.contains_key("_meta") {
            let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            self.result(&mut v);
            return peer::to_raw(&v);
        }
        let mut extra = serde_json::Map::new();
        let mut shaped = Value::Object(serde_json::Map::new());
        self.result(&mut shaped);
        if let Value::Object(m) = shaped {
            extra = m;
        }
        // `{...}` → `{..., "resultType": …, "_meta": …}` (no comma after an empty object).
        let inner = text.strip_suffix('}').unwrap_or(text).trim_end();
        let mut out = String::with_capacity(text.len() + 128);
        out.push_str(inner);
        for (k, v) in extra {
            if !top.is_empty() || !out.ends_with('{') {
                out.push(',');
            }
            out.push_str(&Value::String(k).to_string());
            out.push(':');
            out.push_str(&v.to_string());
        }
        out.push('}');
        RawValue::from_string(out).unwrap_or(raw)
    }

    /// A whole JSON-RPC response: its result shaped, its error in this revision's codes.
    pub fn response(&self, mut body: Value) -> Value {
        if let Some(r) = body.get_mut("result") {
            self.result(r);
        } else if body["error"]["code"] == json!(-32002) {
            // Resource not found is -32602 in 2026-07-28.
            body["error"]["code"] = json!(jsonrpc::INVALID_PARAMS);
        }
        body
    }

    /// A forwarded request's outcome.
    pub fn outcome(&self, o: RawOutcome) -> RawOutcome {
        match o {
            Ok(raw) => Ok(self.raw_result(raw)),
            Err(mut e) => {
                if e["code"] == json!(-32002) {
                    e["code"] = json!(jsonrpc::INVALID_PARAMS);
                }
                Err(e)
            }
        }
    }

    /// A message from the child while the request runs: what becomes of it. A request of
    /// the child (sampling, elicitation, roots) becomes an input-required result when the
    /// client can be asked it (`resume` holds the call for the retry); else the child gets
    /// an error saying why.
    pub fn message(&self, session: &Session, m: Value, resume: &dyn Fn() -> super::forward::Resume) -> Step {
        let method = m["method"].as_str().unwrap_or("");
        if let Some(gid) = m.get("id") {
            let refusal = match (&self.binding, capability_for(method)) {
                (None, _) => format!("`{}` takes no input-required result", self.method),
                (Some(_), None) => format!("`{}` is not a request a client can be asked", crate::logsafe::safe(method)),
                (Some(b), Some(cap)) if b.caps.get(cap).is_none() => {
                    format!("the client did not declare the `{}` capability", cap)
                }
                (Some(b), Some(_)) => match hold(resume(), gid.clone(), b.clone(), &m) {
                    Ok(result) => return Step::Ask(result),
                    Err(why) => why,
                },
            };
            let e = jsonrpc::error_object(
                jsonrpc::METHOD_NOT_FOUND,
                &format!(
                    "mcpctl gateway: the calling client speaks MCP {} and cannot be sent `{}` during this call: {}",
                    MODERN,
                    crate::logsafe::safe(method),
                    refusal
                ),
            );
            log::info!("answered a child's `{}` for a {} client: {}", crate::logsafe::safe(method), MODERN, refusal);
            session.take_reply(gid, Err(e));
            return Step::Drop;
        }
        if method == "notifications/message" {
            let Some(floor) = self.log_floor else { return Step::Drop };
            let level = m["params"]["level"].as_str().and_then(|l| LEVELS.iter().position(|x| *x == l)).unwrap_or(0);
            if level < floor {
                return Step::Drop;
            }
        }
        Step::Pass(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode() {
        assert_eq!(decode_header("plain").as_deref(), Some("plain"));
        assert_eq!(decode_header("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(decode_header("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(), Some("=?base64?literal?="));
        assert_eq!(decode_header("=?base64?!!?="), None);
        // Padding is required, and only the standard alphabet counts.
        assert_eq!(decode_header("=?base64?SGVsbG8?="), None);
        assert_eq!(decode_header("=?base64?SGVsbG8=?=").as_deref(), Some("Hello"));
        assert_eq!(decode_header("=?base64?SGVs!!!bG8=?="), None);
        assert_eq!(decode_header("=?base64?-_8=?="), None);
    }

    #[test]
    fn results_are_shaped() {
        let s = Shape::new(&crate::gateway::tests::hub(vec![]), &Target::All, "tools/list", None, None);
        let v = s.response(jsonrpc::response(json!(1), json!({"tools": []})));
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["cacheScope"], "private");
        assert_eq!(v["result"]["ttlMs"], LIST_TTL_MS);
        assert_eq!(v["result"]["_meta"][META_SERVER_INFO]["name"], "mcpctl");
        let e = s.response(jsonrpc::error_response(json!(1), -32002, "gone"));
        assert_eq!(e["error"]["code"], -32602);
    }

    /// A forwarded result is shaped on its text; the same as shaping its tree.
    #[test]
    fn raw_results_are_shaped_as_trees_are() {
        let hub = crate::gateway::tests::hub(vec![]);
        for method in ["tools/call", "tools/list"] {
            let s = Shape::new(&hub, &Target::All, method, None, None);
            for text in [
                r#"{"content":[{"type":"text","text":"}"}],"isError":false}"#,
                "{}",
                "{ }\n",
                r#"{"resultType":"input_required","inputRequests":{}}"#,
                r#"{"_meta":{"x":1},"content":[]}"#,
            ] {
                let shaped = s.outcome(Ok(peer::to_raw(&serde_json::from_str::<Value>(text).unwrap())));
                let raw = s.outcome(Ok(RawValue::from_string(text.to_string()).unwrap()));
                let mut want: Value = serde_json::from_str(text).unwrap();
                s.result(&mut want);
                for got in [shaped, raw] {
                    let got: Value = serde_json::from_str(got.unwrap().get()).unwrap();
                    assert_eq!(got, want, "{} {}", method, text);
                }
            }
        }
    }
}
