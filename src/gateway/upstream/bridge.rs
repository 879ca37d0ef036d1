//! Bridging a 2026-07-28 child's `input_required` results for a session-era client: each
//! input request goes to the client as a server→client request on its request's stream,
//! and once all are answered the request is sent to the child again with the answers and
//! its `requestState` (at most `client::MAX_INPUT_ROUNDS` rounds).

use super::{Call, Event, Upstream};
use crate::error::Result;
use crate::jsonrpc;
use crate::peer::{Peer, RawOutcome};
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bridged request between its first upstream id and its answer.
pub(super) struct Retried {
    /// Its upstream id now.
    pub(super) current: u64,
    /// Where the client's answers arrive while the gateway waits for them.
    answers: Option<Arc<Peer>>,
    pub(super) token: Option<String>,
}

/// Collects a client's answers to one round of input requests.
struct Answers {
    state: Mutex<(usize, serde_json::Map<String, Value>, Option<AnswersDone>)>,
}

type AnswersDone = Box<dyn FnOnce(std::result::Result<serde_json::Map<String, Value>, Value>) + Send>;

impl Answers {
    fn add(&self, key: String, outcome: crate::peer::Outcome) {
        let done = {
            let mut st = self.state.locked();
            match outcome {
                Ok(v) => {
                    st.1.insert(key, v);
                    st.0 = st.0.saturating_sub(1);
                    if st.0 > 0 {
                        return;
                    }
                    let answers = std::mem::take(&mut st.1);
                    st.2.take().map(|d| (d, Ok(answers)))
                }
                Err(e) => st.2.take().map(|d| (d, Err(e))),
            }
        };
        if let Some((d, r)) = done {
            d(r);
        }
    }
}

/// The transport of the peer the client's answers are addressed to (`Session::take_reply`
/// answers "the child" through a peer): each answer lands in `Answers` under its key.
struct AnswerSink(Arc<Answers>);

impl crate::peer::Transport for AnswerSink {
    fn send(&self, msg: &Value) -> Result<()> {
        let key = msg["id"].as_str().unwrap_or("").to_string();
        let outcome = match (msg.get("result"), msg.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => Err(jsonrpc::error_object(jsonrpc::INTERNAL_ERROR, "an empty answer")),
        };
        self.0.add(key, outcome);
        Ok(())
    }
    fn shutdown(&self) {}
}

/// What the gateway tells a modern child it can answer for an old-era client (what it
/// declares to legacy children in `initialize`: the client is asked), elicitation only when
/// the client declared it.
pub(super) fn bridged_capabilities(elicits: bool) -> Value {
    // Elicitation only for a client that declared it: else the child itself refuses to ask
    // (with the reason), rather than asking a client that cannot answer.
    let mut caps = json!({"roots": {}, "sampling": {}});
    if elicits {
        caps["elicitation"] = json!({"form": {}});
    }
    caps
}

/// A modern child's answer for a client of the earlier revisions: without what only
/// 2026-07-28 has (`resultType`, the cache hints `ttlMs`/`cacheScope`, the child's identity
/// in `_meta`), which that client does not know (and on `/mcp` would name the child where
/// its `initialize` named the gateway).
pub(super) fn session_era(outcome: RawOutcome) -> RawOutcome {
    let raw = outcome?;
    let modern_only = ["\"resultType\"", "\"ttlMs\"", "\"cacheScope\"", jsonrpc::META_SERVER_INFO];
    if !modern_only.iter().any(|k| raw.get().contains(k)) {
        return Ok(raw);
    }
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(raw.get()) else { return Ok(raw) };
    for k in ["resultType", "ttlMs", "cacheScope"] {
        m.remove(k);
    }
    if let Some(meta) = m.get_mut("_meta").and_then(Value::as_object_mut) {
        meta.remove(jsonrpc::META_SERVER_INFO);
        if meta.is_empty() {
            m.remove("_meta");
        }
    }
    Ok(serde_json::value::to_raw_value(&Value::Object(m)).unwrap_or(raw))
}

/// The result of `outcome` when it is a modern child's `input_required` result.
pub(super) fn input_required(outcome: &RawOutcome) -> Option<Value> {
    let raw = outcome.as_ref().ok()?.get();
    if !raw.contains("input_required") {
        return None;
    }
    let v: Value = serde_json::from_str(raw).ok()?;
    (v["resultType"] == "input_required").then_some(v)
}

impl Upstream {
    /// A modern child needs input for a bridged call: ask the client, then retry.
    pub(super) fn bridge(self: &Arc<Self>, mut call: Call, result: Value) {
        call.round += 1;
        let sink = call.sink.clone();
        let fail = |me: &Self, call: &Call, msg: String| {
            me.done(call);
            (call.sink)(Event::Done(Err(jsonrpc::error_object(jsonrpc::INTERNAL_ERROR, &msg))));
        };
        if call.round > crate::client::MAX_INPUT_ROUNDS {
            let msg = format!(
                "server `{}` still asked for input after {} rounds of `{}`",
                self.cfg.name,
                crate::client::MAX_INPUT_ROUNDS,
                call.method
            );
            return fail(self, &call, msg);
        }
        let Some(session) = call.session.upgrade() else { return self.done(&call) };
        let requests: Vec<(String, Value)> = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let state = result.get("requestState").cloned();
        let me = Arc::downgrade(self);
        let origin = call.origin;
        let token = call.token.clone();
        let n = requests.len();
        let done: AnswersDone = Box::new(move |answers| {
            let Some(me) = me.upgrade() else { return };
            match answers {
                Ok(answers) => me.retry(call, answers, state),
                Err(e) => {
                    me.done(&call);
                    (call.sink)(Event::Done(Err(e)));
                }
            }
        });
        let answers = Arc::new(Answers { state: Mutex::new((n, serde_json::Map::new(), Some(done))) });
        let to = Peer::new(&self.cfg.name);
        to.attach(Box::new(AnswerSink(answers.clone())));
        {
            let mut r = self.retried.locked();
            let entry = r.entry(origin).or_insert(Retried { current: origin, answers: None, token: None });
            entry.answers = Some(to.clone());
            entry.token = token;
        }
        if n == 0 {
            // Only state to echo: the child is not done yet; retry after a pause, off this thread.
            let _ = std::thread::Builder::new().name("input-retry".into()).spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                answers.add(String::new(), Ok(Value::Null));
            });
            return;
        }
        for (key, req) in requests {
            let gid = session.expect_reply(&to, json!(key));
            let method = req["method"].as_str().unwrap_or("").to_string();
            sink(Event::Message(jsonrpc::request(json!(gid), &method, req.get("params").cloned())));
        }
    }

    /// Send a bridged call again with the client's answers and the child's state.
    fn retry(self: &Arc<Self>, call: Call, mut answers: serde_json::Map<String, Value>, state: Option<Value>) {
        answers.remove(""); // the placeholder of a round that asked nothing
        let mut params = match call.params.clone() {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        if !answers.is_empty() {
            params.insert("inputResponses".into(), Value::Object(answers));
        }
        if let Some(s) = state {
            params.insert("requestState".into(), s);
        }
        let Some(peer) = call.peer.upgrade().filter(|p| !p.is_closed()) else {
            self.done(&call);
            let e = jsonrpc::unavailable(&format!("server `{}` closed while its client answered", self.cfg.name));
            return (call.sink)(Event::Done(Err(e)));
        };
        let id = peer.reserve_id();
        {
            let mut r = self.retried.locked();
            let entry = r.entry(call.origin).or_insert(Retried { current: id, answers: None, token: None });
            entry.current = id;
            entry.answers = None;
            entry.token = call.token.clone();
        }
        let sink = call.sink.clone();
        if let Err(e) = self.send_call(&peer, id, Some(Value::Object(params)), call) {
            sink(Event::Done(Err(jsonrpc::unavailable(&e.one_line()))));
        }
    }
}
