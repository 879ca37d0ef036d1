//! The held input-required states of MCP 2026-07-28: a request answered `input_required`
//! (a child's question, or the user's approval of a tool call) waits here under a
//! `requestState` until the client's retry brings the answer, or [`HELD_TTL`] passes.

use super::http::{json_resp, rpc_error, send};
use super::modern::{name_field, STATE_PREFIX};
use super::modern_shape::{Binding, Shape};
use super::server::Request;
use super::session::Target;
use super::Hub;
use crate::jsonrpc;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The client capability a child's request needs.
pub(super) fn capability_for(method: &str) -> Option<&'static str> {
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

/// A new state of ours.
fn new_state() -> String {
    format!("{}{}", STATE_PREFIX, super::ids::random_id())
}

/// Hold a request under `state` (a new one) until its retry; the input-required result
/// asking `question` under `key`, or why it cannot be held.
fn park(state: String, waiting: Waiting, key: String, question: Value, binding: Binding) -> Result<Value, String> {
    let result = input_required(&key, &question, &state);
    let mut map = held().locked();
    if map.len() >= MAX_HELD {
        return Err(format!("{} requests already wait for their clients' input, the limit", MAX_HELD));
    }
    let first = map.is_empty();
    map.insert(state, Held { waiting, key, question, binding, expires: Instant::now() + HELD_TTL });
    drop(map);
    if first {
        let _ = std::thread::Builder::new().name("held-requests".into()).spawn(sweep);
    }
    Ok(result)
}

/// Hold the request for the client's answer to `m`; the input-required result to send.
pub(super) fn hold(resume: super::forward::Resume, gid: Value, binding: Binding, m: &Value) -> Result<Value, String> {
    let question = json!({"method": m["method"], "params": m.get("params").cloned().unwrap_or(json!({}))});
    let state = new_state();
    let key = format!("mcpctl-{}", &state[..8]);
    park(state, Waiting::Child { resume, gid }, key, question, binding)
}

/// The key of the approval question in `inputRequests`/`inputResponses`.
const APPROVAL_KEY: &str = "mcpctl-approval";

impl Shape {
    /// Hold a `tools/call` that needs its user's approval: the input-required result asking
    /// `question` (an `elicitation/create` request), or why it cannot be held.
    pub(super) fn hold_approval(&self, approval: super::approval::Approval, question: Value) -> Result<Value, String> {
        let Some(binding) = self.binding().cloned() else {
            return Err(format!("`{}` takes no input-required result", self.method()));
        };
        park(new_state(), Waiting::Approval(approval), APPROVAL_KEY.to_string(), question, binding)
    }
}

/// While requests are held: the ones whose client did not come back in time are given up
/// (the child is told the client did not answer).
fn sweep() {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = Instant::now();
        let (expired, empty): (Vec<Held>, bool) = {
            let mut map = held().locked();
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
            if held().locked().is_empty() {
                return;
            }
        }
    }
}

/// A retry of a held request (`requestState` given): verified (same token, method, name and
/// endpoint; not expired; used once), its answer passed to the child, and the call's answer
/// given to this request (for a call held for its user's approval: the call run, or refused).
pub(super) fn retry(
    hub: &Hub,
    req: Request<'_>,
    target: &Target,
    id: Value,
    method: &str,
    params: &Value,
    token: Option<&str>,
) {
    let state = params["requestState"].as_str().unwrap_or("");
    let name = name_field(method).and_then(|f| params.get(f)).and_then(Value::as_str);
    let h = {
        let mut map = held().locked();
        let fits = map.get(state).map(|h| h.expires > Instant::now() && h.binding.fits(token, method, name, target));
        match fits {
            Some(true) => map.remove(state),
            _ => None,
        }
    };
    let Some(h) = h else {
        let why = "Invalid params: requestState is unknown, expired, already used, or not this request's; call again without it";
        return send(req, rpc_error(400, id, jsonrpc::INVALID_PARAMS, why));
    };
    let Some(answer) = params["inputResponses"].get(&h.key).cloned() else {
        // Asked again, under a new state (the old one is used up).
        let state = new_state();
        let result = input_required(&h.key, &h.question, &state);
        held().locked().insert(state, Held { expires: Instant::now() + HELD_TTL, ..h });
        return send(req, json_resp(200, &jsonrpc::response(id, result)));
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
            let why = "the request ended while it waited for the input";
            send(req, rpc_error(200, id, jsonrpc::INTERNAL_ERROR, why))
        }
    }
}
