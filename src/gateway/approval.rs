//! The "ask" approval flow (`"gatewayApproval": "ask"`): a tool call that needs its user's
//! approval is held while the client asks the user by `elicitation/create` — on an event
//! stream for a session client ([`ask`]), as an `input_required` answer for a 2026-07-28
//! client ([`ask_modern`]) — and runs only when the user approves (`Approval::settle`).

use super::call_log::{log_call, session_word};
use super::forward::{forward, forward_into, Out};
use super::gate::refusal;
use super::mcp::reply;
use super::modern_shape::Shape;
use super::server::{DeferredStream, Request};
use super::session::Session;
use super::streams::{end_stream, event_chunk, SSE_HEAD};
use super::upstream::Upstream;
use crate::jsonrpc;
use crate::peer;
use crate::policy;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// How many arguments an approval request shows (each at most `logsafe::MAX_CHARS` long).
const ASK_MAX_ARGS: usize = 20;

/// `tools/call` of a tool that needs the user's approval (`"gatewayApproval": "ask"`), from
/// a client that can be asked: the answer becomes an event stream carrying an
/// `elicitation/create` to this client. The call goes upstream only when the user accepts
/// with `approve: true` (on the thread that reads that answer); any other answer, or none
/// within the server's timeout (on the deadline thread), refuses it. No thread waits.
pub(super) fn ask(req: Request<'_>, session: &Arc<Session>, u: &Arc<Upstream>, id: Value, params: Option<Value>) {
    let call = Approval::new(session, u, params);
    let question = call.question();
    let deadline = call.started + u.cfg().timeout;
    let asking = Arc::new(Asking { out: Mutex::new(None), gid: OnceLock::new(), id, call });
    let a = asking.clone();
    let gid = session.await_reply(Box::new(move |outcome| a.answered(outcome)));
    let _ = asking.gid.set(gid.clone());
    let request = jsonrpc::request(json!(gid), "elicitation/create", Some(question));
    // Held while the stream starts: an answer or the deadline waits for it (never for I/O:
    // a deferred answer's writes do not block).
    let mut out = asking.out.locked();
    let mut d = req.defer();
    let a = asking.clone();
    d.set_deadline(deadline, Box::new(move || a.expire()));
    let mut stream = d.into_stream(SSE_HEAD);
    stream.send(&event_chunk(&request));
    *out = Some(stream);
}

/// [`ask`] for a 2026-07-28 client (one that declared form elicitation in its request's
/// `_meta`): the call is answered `input_required` with the same question, under a
/// `requestState` the gateway holds (see `modern`); nothing goes upstream until the retry
/// brings the user's approval ([`Approval::answered`]).
pub(super) fn ask_modern(
    req: Request<'_>,
    session: &Arc<Session>,
    u: &Arc<Upstream>,
    shape: Arc<Shape>,
    id: Value,
    params: Option<Value>,
) {
    let call = Approval::new(session, u, params);
    let question = json!({"method": "elicitation/create", "params": call.question()});
    let tool = call.tool.clone();
    let body = match shape.hold_approval(call, question) {
        Ok(result) => jsonrpc::response(id, result),
        Err(why) => {
            let token = session.token().unwrap_or("-");
            log_call(session_word(session), token, u.name(), &tool, Instant::now(), "refused");
            refusal(&id, &policy::cannot_ask(u.cfg(), &tool, &why).one_line())
        }
    };
    reply(req, Some(&shape), body);
}

/// A `tools/call` held for its user's approval (see [`ask`] and [`ask_modern`]).
pub(super) struct Approval {
    session: Arc<Session>,
    upstream: Arc<Upstream>,
    /// The call as the user was asked about it (the tool's own name); what runs.
    params: Value,
    tool: String,
    started: Instant,
}

impl Approval {
    fn new(session: &Arc<Session>, u: &Arc<Upstream>, params: Option<Value>) -> Approval {
        let params = params.unwrap_or(json!({}));
        let tool = params["name"].as_str().unwrap_or("").to_string();
        Approval { session: session.clone(), upstream: u.clone(), params, tool, started: Instant::now() }
    }

    /// The `elicitation/create` parameters asking the user about this call.
    fn question(&self) -> Value {
        approval_request(self.upstream.name(), &self.tool, &self.params["arguments"])
    }

    /// What the user's answer means, for both ways of asking: `Ok` (logged `approved`: run
    /// the call) or the refusal's message (logged `declined` when the user declined,
    /// dismissed, or accepted without ticking `approve`; `unanswered` when the client could
    /// not ask).
    fn settle(&self, outcome: &peer::Outcome) -> Result<(), String> {
        let (word, why) = match outcome {
            Ok(r) => match r["action"].as_str() {
                Some("accept") if r["content"]["approve"] == json!(true) => {
                    self.log("approved");
                    return Ok(());
                }
                Some("accept") => ("declined", "the user did not approve".to_string()),
                Some("decline") => ("declined", "the user declined".to_string()),
                Some("cancel") => ("declined", "the user dismissed the question".to_string()),
                _ => ("unanswered", "the client's answer has no known action".to_string()),
            },
            Err(e) => {
                let msg = crate::logsafe::safe(e["message"].as_str().unwrap_or("no message"));
                ("unanswered", format!("the client could not ask the user ({})", msg))
            }
        };
        self.log(word);
        let (tool, server) = (crate::logsafe::safe(&self.tool), self.upstream.name());
        Err(format!("{}: tool `{}` on server `{}` was not run", why, tool, server))
    }

    /// The client's retry brought `answer` (the elicitation result): run the call (under the
    /// retry's `id`, answered as `shape` makes it) or refuse it.
    pub(super) fn answered(self, req: Request<'_>, id: Value, answer: Value, shape: Arc<Shape>) {
        match self.settle(&Ok(answer)) {
            Ok(()) => {
                let (session, u) = (&self.session, &self.upstream);
                forward(req, session, u, id, "tools/call", Some(self.params), Some(shape))
            }
            Err(msg) => reply(req, Some(&shape), refusal(&id, &msg)),
        }
    }

    pub(super) fn log(&self, outcome: &str) {
        let token = self.session.token().unwrap_or("-");
        log_call(session_word(&self.session), token, self.upstream.name(), &self.tool, self.started, outcome);
    }
}

/// The `elicitation/create` parameters (form mode; `mode` left out, as the spec allows, for
/// clients of 2025-06-18): which server and tool, the arguments (escaped, bounded), and one
/// boolean to tick.
fn approval_request(server: &str, tool: &str, args: &Value) -> Value {
    use crate::logsafe::safe;
    let mut message = format!("Allow the call of tool `{}` on server `{}`?\n", safe(tool), safe(server));
    match args.as_object() {
        Some(map) if !map.is_empty() => {
            message.push_str("Arguments:\n");
            for (k, v) in map.iter().take(ASK_MAX_ARGS) {
                message.push_str(&format!("  {} = {}\n", safe(k), safe(&v.to_string())));
            }
            if map.len() > ASK_MAX_ARGS {
                message.push_str(&format!("  … and {} more\n", map.len() - ASK_MAX_ARGS));
            }
        }
        _ => message.push_str("Arguments: none\n"),
    }
    message.push_str("(mcpctl gateway: this tool is not in the server's alwaysAllow list; gatewayApproval is \"ask\")");
    json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "approve": {
                    "type": "boolean",
                    "title": "Approve",
                    "description": format!("Run tool `{}` on server `{}` with these arguments", safe(tool), safe(server)),
                    "default": false,
                },
            },
            "required": ["approve"],
        },
    })
}

/// A `tools/call` of a session client waiting for its user's approval.
struct Asking {
    /// The event stream of the answer; taken by whoever settles the call first.
    out: Mutex<Option<DeferredStream>>,
    /// Our id of the `elicitation/create`.
    gid: OnceLock<String>,
    /// The client's id of the call.
    id: Value,
    call: Approval,
}

impl Asking {
    /// The client answered the `elicitation/create`.
    fn answered(&self, outcome: peer::Outcome) {
        let Some(stream) = self.out.locked().take() else { return };
        let call = &self.call;
        match call.settle(&outcome) {
            Ok(()) => {
                let (id, params) = (self.id.clone(), Some(call.params.clone()));
                forward_into(Out::Streaming(stream), &call.session, &call.upstream, id, "tools/call", params, None)
            }
            Err(msg) => end_stream(stream, &refusal(&self.id, &msg).to_string()),
        }
    }

    /// No answer within the server's timeout: the question is withdrawn, the call refused.
    fn expire(&self) {
        let Some(mut stream) = self.out.locked().take() else { return };
        let call = &self.call;
        if let Some(gid) = self.gid.get() {
            call.session.forget_reply(gid);
            let withdrawn = jsonrpc::notification(
                "notifications/cancelled",
                Some(json!({"requestId": gid, "reason": "no answer in time"})),
            );
            stream.send(&event_chunk(&withdrawn));
        }
        call.log("unanswered");
        let msg = format!(
            "the user did not answer the approval request for tool `{}` on server `{}` within {}s (the server's timeout): it was not run",
            crate::logsafe::safe(&call.tool),
            call.upstream.name(),
            call.upstream.cfg().timeout.as_secs_f64()
        );
        end_stream(stream, &refusal(&self.id, &msg).to_string());
    }
}
