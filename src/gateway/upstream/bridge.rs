//! Bridging a 2026-07-28 child's `input_required` results for a session-era client: each
//! input request goes to the client as a server→client request on its request's stream,
//! and once all are answered the request is sent to the child again with the answers and
//! its `requestState` (at most `client::MAX_INPUT_ROUNDS` rounds).

use super::{Call, Event, Upstream};
use crate::error::Result;
use crate::gateway::session::Session;
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

/// What the gateway tells a modern child it can answer for an old-era client: what the
/// session declared in `initialize` (elicitation by its modes, sampling with its
/// sub-capabilities, roots), so that the child itself refuses to ask for the rest (with
/// the reason). The gateway's own caller (`None`), which answers for itself: roots and
/// sampling, as before.
pub(super) fn bridged_capabilities(declared: Option<&Value>) -> Value {
    let Some(declared) = declared else { return json!({"roots": {}, "sampling": {}}) };
    let mut caps = json!({});
    let mut elicitation = json!({});
    if crate::gateway::session::form_elicitation(Some(declared)) {
        elicitation["form"] = json!({});
    }
    if crate::gateway::session::url_elicitation(declared) {
        elicitation["url"] = json!({});
    }
    if elicitation.as_object().map(|e| !e.is_empty()).unwrap_or(false) {
        caps["elicitation"] = elicitation;
    }
    if let Some(sampling) = declared.get("sampling").and_then(Value::as_object) {
        let subs: serde_json::Map<String, Value> = ["context", "tools"]
            .iter()
            .filter(|k| sampling.get(**k).map(Value::is_object).unwrap_or(false))
            .map(|k| (k.to_string(), json!({})))
            .collect();
        caps["sampling"] = Value::Object(subs);
    }
    if declared.get("roots").map(Value::is_object).unwrap_or(false) {
        caps["roots"] = json!({});
    }
    caps
}

/// The first of a modern child's input requests the session cannot be sent: (its key, its
/// method, the capability the session did not declare).
fn undeclared(session: &Session, requests: &[(String, Value)]) -> Option<(String, String, String)> {
    requests.iter().find_map(|(key, req)| {
        let method = req["method"].as_str().unwrap_or("");
        let missing = match crate::gateway::modern_held::capability_for(method) {
            None => format!("the client capability for `{}` (no request a client can be asked)", method),
            Some(_) => session.missing_capability(method, req.get("params"))?,
        };
        Some((key.clone(), method.to_string(), missing))
    })
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
    super::drop_meta(&mut m, jsonrpc::META_SERVER_INFO);
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
        if call.round > crate::client::MAX_INPUT_ROUNDS {
            let msg = format!(
                "server `{}` still asked for input after {} rounds of `{}`",
                self.cfg.name,
                crate::client::MAX_INPUT_ROUNDS,
                call.method
            );
            return self.fail(&call, jsonrpc::error_object(jsonrpc::INTERNAL_ERROR, &msg));
        }
        let Some(session) = call.session.upgrade() else { return self.done(&call) };
        let requests: Vec<(String, Value)> = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        // A child that asks for what the client did not declare (it was told what it may ask:
        // `bridged_capabilities`) is not passed on: the call fails, saying so.
        if let Some((key, method, missing)) = undeclared(&session, &requests) {
            let msg = format!(
                "server `{}` asked for input the client cannot give during `{}`: its input request `{}` is `{}`, and the client's session did not declare {} in `initialize`",
                self.cfg.name,
                call.method,
                crate::logsafe::safe(&key),
                crate::logsafe::safe(&method),
                missing
            );
            log::info!("{}", msg);
            return self.fail(&call, jsonrpc::error_object(jsonrpc::INTERNAL_ERROR, &msg));
        }
        let state = result.get("requestState").cloned();
        let me = Arc::downgrade(self);
        let origin = call.origin;
        let token = call.token.clone();
        let n = requests.len();
        let done: AnswersDone = Box::new(move |answers| {
            let Some(me) = me.upgrade() else { return };
            match answers {
                Ok(answers) => me.retry(call, answers, state),
                Err(e) => me.fail(&call, e),
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

    /// A bridged call ends with error `e` (after its routes are forgotten).
    fn fail(&self, call: &Call, e: Value) {
        self.done(call);
        (call.sink)(Event::Done(Err(e)));
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
            let e = jsonrpc::unavailable(&format!("server `{}` closed while its client answered", self.cfg.name));
            return self.fail(&call, e);
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
            sink(Event::Done(Err(jsonrpc::connection_failed(&e))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::session::Target;

    #[test]
    fn a_modern_child_is_told_only_what_the_session_declared() {
        assert_eq!(bridged_capabilities(Some(&json!({}))), json!({}));
        let all = json!({"elicitation": {}, "sampling": {"tools": {}, "x": 1}, "roots": {"listChanged": true}});
        let want = json!({"elicitation": {"form": {}}, "sampling": {"tools": {}}, "roots": {}});
        assert_eq!(bridged_capabilities(Some(&all)), want);
        let url = json!({"elicitation": {"url": {}}});
        assert_eq!(bridged_capabilities(Some(&url)), json!({"elicitation": {"url": {}}}));
        assert_eq!(bridged_capabilities(None), json!({"roots": {}, "sampling": {}}));
    }

    #[test]
    fn an_input_request_the_session_did_not_declare_is_found() {
        let s = Session::new("0123456789abcdef".into(), Target::All, "2025-11-25".into())
            .with_client_capabilities(Some(&json!({"elicitation": {}})));
        let ask =
            |m: &str| (format!("k-{}", m), json!({"method": m, "params": {"message": "?", "requestedSchema": {}}}));
        assert_eq!(undeclared(&s, &[ask("elicitation/create")]), None);
        let (key, method, missing) = undeclared(&s, &[ask("elicitation/create"), ask("roots/list")]).unwrap();
        assert_eq!((key.as_str(), method.as_str()), ("k-roots/list", "roots/list"));
        assert_eq!(missing, "the `roots` capability");
        assert!(undeclared(&s, &[ask("sampling/createMessage")]).unwrap().2.contains("sampling"));
        assert!(undeclared(&s, &[ask("tools/call")]).is_some(), "not a request a client can be asked");
    }
}
