//! Client sessions of the gateway (one per `Mcp-Session-Id`): the negotiated version, the
//! standalone GET streams for unrelated server messages, the server→client requests
//! waiting for this client's answer (a child's, or the gateway's own: the approval of a
//! call under `"gatewayApproval": "ask"`), and its requests in flight (to cancel them). Its
//! own children (`"isolation": "session"`) are the hub's to keep: a session knows nothing of
//! the upstreams.

use crate::peer::{Outcome, Peer};
use crate::sync::Locked;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/mcp`: every server, names prefixed.
    All,
    /// `/mcp/<server>`: one server, names untouched.
    One(String),
}

impl Target {
    pub fn covers(&self, server: &str) -> bool {
        match self {
            Target::All => true,
            Target::One(s) => s == server,
        }
    }
}

/// One place counted against a cap (`MCPCTL_MAX_SESSION_CHILDREN`), given back on drop.
pub struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    /// A place when fewer than `max` are taken.
    pub fn take(count: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Slot> {
        if count.fetch_add(1, Ordering::SeqCst) >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the gateway does with a client's answer to a request of its own; called once, on
/// the thread that read the answer, with no lock of the session held.
pub type OnReply = Box<dyn FnOnce(Outcome) + Send>;

/// Where the answer to one server→client request goes.
enum Waiter {
    /// A child asked: (the child, its id of the request).
    Child(Weak<Peer>, Value),
    /// The gateway asked.
    Gateway(OnReply),
}

/// Stops waiting for a request in flight upstream, saying why (cancels it at its server).
pub type Cancel = Box<dyn FnOnce(&str) + Send>;

pub struct Session {
    id: String,
    target: Target,
    protocol: String,
    /// The name of the configured token it was created with (`None`: the daemon's own
    /// token, or none); requests bearing another token are refused.
    token: Option<String>,
    /// The client capabilities it declared (in `initialize`, or a 2026-07-28 request's
    /// `_meta`): what a child may send it (see [`missing_capability`]). `None`: the gateway's
    /// own caller (`mcpctl call` through the daemon), which answers every request itself.
    caps: Option<Value>,
    /// The log level it set (`logging/setLevel`): carried per request to 2026-07-28
    /// children, which have no such method.
    log_level: Mutex<Option<String>>,
    last_seen: Mutex<Instant>,
    /// The standalone streams: (our number for it, where its messages go).
    streams: Mutex<Vec<(u64, SyncSender<Vec<u8>>)>>,
    next_stream: AtomicU64,
    /// Our id of a server→client request → where its answer goes.
    client_replies: Mutex<HashMap<String, Waiter>>,
    next_gid: AtomicU64,
    closed: AtomicBool,
    /// Client request id (as JSON text) → how to cancel it upstream, for `notifications/cancelled`.
    inflight: Mutex<HashMap<String, Cancel>>,
}

impl Session {
    pub fn new(id: String, target: Target, protocol: String) -> Session {
        Session {
            id,
            target,
            protocol,
            token: None,
            caps: Some(Value::Object(Default::default())),
            log_level: Mutex::new(None),
            last_seen: Mutex::new(Instant::now()),
            streams: Mutex::new(Vec::new()),
            next_stream: AtomicU64::new(1),
            client_replies: Mutex::new(HashMap::new()),
            next_gid: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> Session {
        self.token = token;
        self
    }

    /// What the client said it can be sent: the client capabilities of its `initialize`
    /// (none given: nothing).
    pub fn with_client_capabilities(mut self, caps: Option<&Value>) -> Session {
        self.caps = Some(caps.filter(|c| c.is_object()).cloned().unwrap_or_else(|| Value::Object(Default::default())));
        self
    }

    /// The gateway's own caller, which answers what a child asks itself (refusing it, or
    /// not): every request is passed to it.
    pub fn answering_itself(mut self) -> Session {
        self.caps = None;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The protocol revision the client negotiated.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// The name of the named token it was created with.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether the client can be asked (form-mode elicitation).
    pub fn elicits(&self) -> bool {
        form_elicitation(self.caps.as_ref())
    }

    /// The capabilities it declared (`None`: the gateway's own caller, see [`Session::answering_itself`]).
    pub fn client_capabilities(&self) -> Option<&Value> {
        self.caps.as_ref()
    }

    /// What the client lacks to be sent a child's request `method` (see
    /// [`missing_capability`]); `None`: it may be sent.
    pub fn missing_capability(&self, method: &str, params: Option<&Value>) -> Option<String> {
        missing_capability(self.caps.as_ref()?, method, params)
    }

    pub fn log_level(&self) -> Option<String> {
        self.log_level.locked().clone()
    }

    pub fn set_log_level(&self, level: String) {
        *self.log_level.locked() = Some(level);
    }

    /// A request of this client (`key`: its id as JSON text) is in flight upstream.
    pub fn track(&self, key: String, cancel: Cancel) {
        self.inflight.locked().insert(key, cancel);
    }

    /// The request `key` is answered: nothing to cancel any more.
    pub fn untrack(&self, key: &str) {
        let gone = self.inflight.locked().remove(key);
        drop(gone); // outside the lock
    }

    /// The client cancelled the request `key`: tell its server (outside the lock); whether
    /// it was in flight.
    pub fn cancel(&self, key: &str, why: &str) -> bool {
        let entry = self.inflight.locked().remove(key);
        entry.map(|cancel| cancel(why)).is_some()
    }

    pub fn touch(&self) {
        *self.last_seen.locked() = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.last_seen.locked().elapsed()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// A new standalone stream (GET); returns what the HTTP thread reads from.
    pub fn open_stream(&self) -> (u64, Receiver<Vec<u8>>) {
        let (tx, rx) = sync_channel(256);
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams.locked().push((n, tx));
        (n, rx)
    }

    /// A standalone stream ended (its client went away): forget it now, not at the next
    /// message (a session whose clients reconnect would otherwise pile up dead streams).
    pub fn close_stream(&self, n: u64) {
        let gone = {
            let mut streams = self.streams.locked();
            streams.iter().position(|(k, _)| *k == n).map(|i| streams.remove(i))
        };
        drop(gone); // outside the lock
    }

    /// How many standalone streams are open.
    #[cfg(test)]
    pub fn stream_count(&self) -> usize {
        self.streams.locked().len()
    }

    /// Deliver an unrelated server message on one of the standalone streams.
    pub fn push(&self, msg: &Value) -> bool {
        let bytes = crate::sse::frame(None, &msg.to_string()).into_bytes();
        let mut streams = self.streams.locked();
        let mut delivered = false;
        streams.retain(|(_, tx)| {
            if !delivered {
                match tx.try_send(bytes.clone()) {
                    Ok(()) => delivered = true,
                    Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
        delivered
    }

    /// Remember a server→client request sent to this client under our id `gid`.
    pub fn expect_reply(&self, peer: &Arc<Peer>, child_id: Value) -> String {
        self.remember(Waiter::Child(Arc::downgrade(peer), child_id))
    }

    /// A request of the gateway's own to this client: its answer goes to `on_reply`. The
    /// caller sends the request under the returned id, and [`Session::forget_reply`]s it
    /// when it stops waiting.
    pub fn await_reply(&self, on_reply: OnReply) -> String {
        self.remember(Waiter::Gateway(on_reply))
    }

    fn remember(&self, w: Waiter) -> String {
        let gid =
            format!("mcpctl-{}-{}", &self.id[..8.min(self.id.len())], self.next_gid.fetch_add(1, Ordering::Relaxed));
        self.client_replies.locked().insert(gid.clone(), w);
        gid
    }

    /// Stop waiting for the answer to `gid`; whether it was still awaited.
    pub fn forget_reply(&self, gid: &str) -> bool {
        let w = self.client_replies.locked().remove(gid);
        w.is_some() // dropped here, outside the lock
    }

    /// The client answered one of our server→client requests: pass it to the child, or to
    /// the gateway's waiter (each outside the lock).
    pub fn take_reply(&self, gid: &Value, outcome: Outcome) -> bool {
        let Some(key) = gid.as_str() else { return false };
        let entry = self.client_replies.locked().remove(key);
        match entry {
            Some(Waiter::Child(peer, child_id)) => {
                if let Some(peer) = peer.upgrade() {
                    let _ = peer.respond(child_id, outcome);
                }
                true
            }
            Some(Waiter::Gateway(on_reply)) => {
                on_reply(outcome);
                true
            }
            None => false,
        }
    }

    /// End the session: close its streams (its own children are stopped by the hub).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.streams.locked().clear();
    }
}

/// Whether client capabilities declare form-mode elicitation: `"elicitation": {}` (form, for
/// backward compatibility) or `{"form": {...}, ...}`; not a client of URL mode alone.
pub fn form_elicitation(caps: Option<&Value>) -> bool {
    match caps.and_then(|c| c.get("elicitation")).and_then(Value::as_object) {
        Some(e) => e.get("form").map(Value::is_object).unwrap_or(!e.contains_key("url")),
        None => false,
    }
}

/// Whether client capabilities declare URL-mode elicitation (`{"url": {...}}`).
pub fn url_elicitation(caps: &Value) -> bool {
    caps.get("elicitation").and_then(|e| e.get("url")).map(Value::is_object).unwrap_or(false)
}

/// The capability a client must have declared to be sent the server→client request
/// `method` with `params`, named for the error (e.g. "the `sampling` capability"), when
/// `caps` (its declared client capabilities) lack it; `None` when it may be sent. By the
/// spec: `elicitation` (form mode, or URL mode for `"mode": "url"`), `sampling` (and
/// `sampling.tools` for a request with `tools` or `toolChoice`, `sampling.context` for an
/// `includeContext` other than `none`), `roots`. A method of no capability is not gated.
pub fn missing_capability(caps: &Value, method: &str, params: Option<&Value>) -> Option<String> {
    let declared = |k: &str| caps.get(k).map(Value::is_object).unwrap_or(false);
    let param = |k: &str| params.and_then(|p| p.get(k)).filter(|v| !v.is_null());
    match method {
        "elicitation/create" if param("mode").and_then(Value::as_str) == Some("url") => {
            (!url_elicitation(caps)).then(|| "the `elicitation` capability (URL mode)".to_string())
        }
        "elicitation/create" => {
            (!form_elicitation(Some(caps))).then(|| "the `elicitation` capability (form mode)".to_string())
        }
        "sampling/createMessage" => {
            let sub = |k: &str| caps["sampling"].get(k).map(Value::is_object).unwrap_or(false);
            let context = param("includeContext").and_then(Value::as_str).map(|c| c != "none").unwrap_or(false);
            if !declared("sampling") {
                Some("the `sampling` capability".to_string())
            } else if (param("tools").is_some() || param("toolChoice").is_some()) && !sub("tools") {
                Some("the `sampling.tools` capability (the request gives tools)".to_string())
            } else if context && !sub("context") {
                Some("the `sampling.context` capability (the request asks for `includeContext`)".to_string())
            } else {
                None
            }
        }
        "roots/list" => (!declared("roots")).then(|| "the `roots` capability".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_elicitation_as_the_spec_says() {
        let has = |c: Value| form_elicitation(Some(&c));
        assert!(has(json!({"elicitation": {}})));
        assert!(has(json!({"elicitation": {"form": {}}})));
        assert!(has(json!({"elicitation": {"form": {}, "url": {}}})));
        assert!(!has(json!({"elicitation": {"url": {}}})));
        assert!(!has(json!({"sampling": {}})));
        assert!(!has(json!({"elicitation": true})));
        assert!(!form_elicitation(None));
    }

    #[test]
    fn each_request_needs_its_capability() {
        let missing = |c: Value, m: &str, p: Value| missing_capability(&c, m, Some(&p));
        let form = json!({"message": "?", "requestedSchema": {}});
        let url = json!({"mode": "url", "message": "?", "url": "https://x", "elicitationId": "1"});
        assert_eq!(missing(json!({"elicitation": {}}), "elicitation/create", form.clone()), None);
        assert!(missing(json!({"elicitation": {"url": {}}}), "elicitation/create", form).unwrap().contains("form"));
        assert_eq!(missing(json!({"elicitation": {"url": {}}}), "elicitation/create", url.clone()), None);
        assert!(missing(json!({"elicitation": {}}), "elicitation/create", url).unwrap().contains("URL mode"));
        let sample = json!({"messages": [], "maxTokens": 1});
        assert_eq!(missing(json!({"sampling": {}}), "sampling/createMessage", sample.clone()), None);
        assert_eq!(
            missing(json!({"roots": {}}), "sampling/createMessage", sample.clone()).unwrap(),
            "the `sampling` capability"
        );
        let tools = json!({"messages": [], "maxTokens": 1, "tools": [], "includeContext": "none"});
        assert!(missing(json!({"sampling": {}}), "sampling/createMessage", tools.clone())
            .unwrap()
            .contains("sampling.tools"));
        assert_eq!(missing(json!({"sampling": {"tools": {}}}), "sampling/createMessage", tools), None);
        let context = json!({"messages": [], "maxTokens": 1, "includeContext": "thisServer"});
        assert!(missing(json!({"sampling": {}}), "sampling/createMessage", context.clone())
            .unwrap()
            .contains("context"));
        assert_eq!(missing(json!({"sampling": {"context": {}}}), "sampling/createMessage", context), None);
        assert_eq!(missing(json!({"roots": {}}), "roots/list", json!({})), None);
        assert_eq!(missing(json!({"sampling": {}}), "roots/list", json!({})).unwrap(), "the `roots` capability");
        assert_eq!(missing(json!({}), "something/else", json!({})), None);
        // A session that declared nothing lacks all; the gateway's own caller lacks none.
        let s = Session::new("0123456789abcdef".into(), Target::All, "2025-11-25".into());
        assert!(s.missing_capability("roots/list", None).is_some());
        let s = s.with_client_capabilities(Some(&json!({"roots": {}})));
        assert!(s.missing_capability("roots/list", None).is_none());
        assert!(s.answering_itself().missing_capability("sampling/createMessage", None).is_none());
    }

    #[test]
    fn ended_streams_are_forgotten_at_once() {
        let s = Session::new("0123456789abcdef".into(), Target::All, "2025-11-25".into());
        let (a, _ra) = s.open_stream();
        let (b, rb) = s.open_stream();
        assert_eq!(s.stream_count(), 2);
        s.close_stream(a);
        assert_eq!(s.stream_count(), 1);
        assert!(s.push(&json!({"m": 1})));
        assert!(!rb.try_recv().unwrap().is_empty());
        s.close_stream(b);
        assert_eq!(s.stream_count(), 0);
        assert!(!s.push(&json!({"m": 2})), "no stream left to deliver on");
    }

    #[test]
    fn a_reply_reaches_the_gateway_waiter_once() {
        let s = Session::new("0123456789abcdef".into(), Target::All, "2025-11-25".into());
        let (tx, rx) = std::sync::mpsc::channel();
        let gid = s.await_reply(Box::new(move |o| tx.send(o).unwrap()));
        assert!(gid.starts_with("mcpctl-01234567-"), "{}", gid);
        assert!(s.take_reply(&json!(gid), Ok(json!({"action": "accept"}))));
        assert_eq!(rx.try_recv().unwrap().unwrap()["action"], "accept");
        assert!(!s.take_reply(&json!(gid), Ok(json!({}))), "answered twice");
        let gid = s.await_reply(Box::new(|_| panic!("forgotten")));
        assert!(s.forget_reply(&gid));
        assert!(!s.take_reply(&json!(gid), Ok(json!({}))));
    }
}
