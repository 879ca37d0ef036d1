//! One connection to an MCP server, whatever carries it: we assign every outgoing
//! request our own id, match each response back by that id (never "the next line"), and
//! hand notifications and server→client requests to a handler the owner installs.
//! Both the shell client and the gateway talk to servers through this type.
//!
//! A peer whose server speaks MCP 2026-07-28 (see [`Peer::set_modern`]) stamps the
//! per-request `_meta` envelope on every request that leaves through it, forwarded ones
//! included, so every caller reaches such a server without knowing its era.

use crate::error::{Error, Result};
use crate::jsonrpc::{self, Message};
use crate::signals;
use crate::sync::{Locked, RwLocked};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

mod modern;

use modern::unstamp;
pub use modern::Modern;

/// What carries messages to the server. Incoming messages go to `Peer::dispatch`.
pub trait Transport: Send + Sync {
    /// Send one message.
    fn send(&self, msg: &Value) -> Result<()>;
    /// Send a request of ours (a transport may write it without building a tree first).
    fn send_request(&self, id: u64, method: &str, params: Option<Value>) -> Result<()> {
        self.send(&jsonrpc::request(json!(id), method, params))
    }
    /// Close gracefully (stdio: close stdin, then TERM, then KILL; http: DELETE the session).
    fn shutdown(&self);
    /// The last lines the server wrote to stderr (stdio only).
    fn stderr_tail(&self, _n: usize) -> Vec<String> {
        Vec::new()
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    /// How long a write to the server has been blocked (stdio: the child stopped reading).
    fn input_stalled(&self) -> Option<Duration> {
        None
    }
}

/// A message from the server that is not a response to us.
#[derive(Debug, Clone)]
pub enum Inbound {
    Request { id: Value, method: String, params: Option<Value> },
    Notification { method: String, params: Option<Value> },
}

pub type Handler = Arc<dyn Fn(&Arc<Peer>, Inbound) + Send + Sync>;
pub type CloseHook = Box<dyn FnOnce(&str) + Send>;
/// Receives the outcome of one request.
pub type Reply = Box<dyn FnOnce(Outcome) + Send>;

/// JSON-RPC outcome: `Ok(result)` or `Err(error object)`.
pub type Outcome = std::result::Result<Value, Value>;

/// An outcome whose result stays raw JSON text, as the server wrote it (a proxy passes it
/// on without building a tree and writing it out again).
pub type RawOutcome = std::result::Result<Box<RawValue>, Value>;
/// Receives the outcome of one request, raw.
pub type RawReply = Box<dyn FnOnce(RawOutcome) + Send>;

/// Who waits for a response.
enum Waiter {
    Value(Reply),
    Raw(RawReply),
}

impl Waiter {
    fn give(self, o: Outcome) {
        match self {
            Waiter::Value(r) => r(o),
            Waiter::Raw(r) => r(o.map(|v| to_raw(&v))),
        }
    }
}

pub fn to_raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).expect("a JSON value always serializes")
}

/// Just enough of a message to tell a response to a raw waiter from everything else.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

pub struct Peer {
    pub name: String,
    transport: OnceLock<Box<dyn Transport>>,
    /// Set once the server is known to speak the modern era (per connection: a restart
    /// makes a new peer, which probes again).
    modern: RwLock<Option<Arc<Modern>>>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Waiter>>,
    handler: RwLock<Option<Handler>>,
    /// Why the connection closed, and the server's last stderr lines (kept apart).
    closed: Mutex<Option<(String, String)>>,
    on_close: Mutex<Vec<CloseHook>>,
    /// Tests: widen the window between the closed check and the registration in `on_close`.
    #[cfg(test)]
    slow_on_close: std::sync::atomic::AtomicBool,
}

/// A request in flight: its upstream id and where its answer arrives.
pub struct Pending {
    pub id: u64,
    rx: Receiver<Outcome>,
}

/// What one look at a request in flight found.
pub enum Poll {
    Ready(Outcome),
    /// No answer yet.
    Waiting,
    /// The connection went away without an answer (the waiter was dropped).
    Closed,
}

impl Pending {
    /// The outcome, if it arrives within `d`.
    pub fn poll(&self, d: Duration) -> Poll {
        match self.rx.recv_timeout(d) {
            Ok(o) => Poll::Ready(o),
            Err(RecvTimeoutError::Timeout) => Poll::Waiting,
            Err(RecvTimeoutError::Disconnected) => Poll::Closed,
        }
    }
}

impl Peer {
    pub fn new(name: &str) -> Arc<Peer> {
        Arc::new(Peer {
            name: name.to_string(),
            transport: OnceLock::new(),
            modern: RwLock::new(None),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            handler: RwLock::new(None),
            closed: Mutex::new(None),
            on_close: Mutex::new(Vec::new()),
            #[cfg(test)]
            slow_on_close: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn attach(&self, t: Box<dyn Transport>) {
        if self.transport.set(t).is_err() {
            log::error!("server `{}`: transport attached twice", self.name);
        }
    }

    /// Speak the 2026-07-28 era from now on: every request gets the envelope of `m`.
    pub fn set_modern(&self, m: Modern) {
        *self.modern.write_locked() = Some(Arc::new(m));
    }

    /// The modern envelope, when the server speaks that era (`None`: the legacy era).
    pub fn modern(&self) -> Option<Arc<Modern>> {
        self.modern.read_locked().clone()
    }

    pub fn set_handler(&self, h: Handler) {
        *self.handler.write_locked() = Some(h);
    }

    /// Run `hook` once when the connection closes (now, if it already has).
    pub fn on_close(&self, hook: CloseHook) {
        // Checked under the hooks' lock: `close` sets the reason before it takes the
        // hooks, so a hook is either taken by `close` or sees the reason here.
        let mut hooks = self.on_close.locked();
        let closed = self.closed_reason();
        #[cfg(test)]
        if self.slow_on_close.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        match closed {
            Some(reason) => {
                drop(hooks);
                hook(&reason)
            }
            None => hooks.push(hook),
        }
    }

    /// How long a write to the server has been blocked.
    pub fn input_stalled(&self) -> Option<Duration> {
        self.transport.get().and_then(|t| t.input_stalled())
    }

    /// Why the connection closed, with the server's last stderr lines.
    pub fn closed_reason(&self) -> Option<String> {
        self.closed_error().map(|e| jsonrpc::error_message(&e).to_string())
    }

    /// The error a waiter gets once the connection is closed.
    fn closed_error(&self) -> Option<Value> {
        self.closed.locked().as_ref().map(|(reason, stderr)| jsonrpc::closed(reason, stderr))
    }

    pub fn is_closed(&self) -> bool {
        self.closed.locked().is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.transport.get().and_then(|t| t.pid())
    }

    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        self.transport.get().map(|t| t.stderr_tail(n)).unwrap_or_default()
    }

    fn transport(&self) -> Result<&dyn Transport> {
        self.transport
            .get()
            .map(|b| b.as_ref())
            .ok_or_else(|| Error::internal(format!("server `{}` is not connected", self.name)))
    }

    /// Send a notification.
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<()> {
        self.transport()?.send(&jsonrpc::notification(method, params))
    }

    /// Answer a server→client request.
    pub fn respond(&self, id: Value, outcome: Outcome) -> Result<()> {
        let msg = match outcome {
            Ok(r) => jsonrpc::response(id, r),
            Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
        };
        self.transport()?.send(&msg)
    }

    /// Send a request under a fresh id of ours; the answer arrives on the returned `Pending`.
    pub fn start(&self, method: &str, params: Option<Value>) -> Result<Pending> {
        if let Some(reason) = self.closed_reason() {
            return Err(Error::disconnected(reason));
        }
        let (tx, rx) = sync_channel::<Outcome>(1);
        let id = self.start_with(
            method,
            params,
            Box::new(move |o| {
                let _ = tx.send(o);
            }),
        )?;
        Ok(Pending { id, rx })
    }

    /// Send a request under a fresh id of ours; `reply` gets its outcome (also when the
    /// connection closes first). Returns the upstream id.
    pub fn start_with(&self, method: &str, params: Option<Value>, reply: Reply) -> Result<u64> {
        self.start_waiter(self.reserve_id(), method, params, Waiter::Value(reply))
    }

    /// A fresh id for [`Peer::start_raw_as`], so the caller can record it before the request
    /// leaves (once it has, the answer may be handled on the reading thread at any moment).
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Send a request under `id` (from [`Peer::reserve_id`]); `reply` gets its outcome with
    /// the result as raw JSON text.
    pub fn start_raw_as(&self, id: u64, method: &str, params: Option<Value>, reply: RawReply) -> Result<()> {
        self.start_waiter(id, method, params, Waiter::Raw(reply)).map(|_| ())
    }

    fn start_waiter(&self, id: u64, method: &str, params: Option<Value>, reply: Waiter) -> Result<u64> {
        if let Some(reason) = self.closed_reason() {
            return Err(Error::disconnected(reason));
        }
        let params = match self.modern() {
            Some(m) => Some(m.stamp(params)),
            // The era probe carries its own envelope.
            None if method == "server/discover" => params,
            None => unstamp(params),
        };
        self.pending.locked().insert(id, reply);
        let sent = self.transport().and_then(|t| t.send_request(id, method, params));
        if let Err(e) = sent {
            self.pending.locked().remove(&id);
            return Err(e);
        }
        // The connection may have closed between the check and the insert.
        if let Some(closed) = self.closed_error() {
            if let Some(r) = self.pending.locked().remove(&id) {
                r.give(Err(closed));
            }
        }
        Ok(id)
    }

    /// Forget a request without telling the server (its caller gave up).
    pub fn forget(&self, id: u64) -> bool {
        self.pending.locked().remove(&id).is_some()
    }

    /// Wait for a started request. On timeout or Ctrl-C, tell the server with
    /// `notifications/cancelled` and stop waiting.
    pub fn wait(&self, p: Pending, timeout: Duration, what: &str) -> Result<Outcome> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(outcome) => return Ok(outcome),
                Err(RecvTimeoutError::Disconnected) => {
                    let reason = self.closed_reason().unwrap_or_else(|| format!("server `{}` closed", self.name));
                    return Err(Error::disconnected(reason));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if signals::stopping() {
                        self.cancel(p.id, "interrupted");
                        return Err(Error::interrupted(format!("{} interrupted", what)).hint("Ctrl-C was pressed"));
                    }
                    if Instant::now() >= deadline {
                        self.cancel(p.id, "timeout");
                        return Err(timeout_error(&self.name, what, timeout));
                    }
                }
            }
        }
    }

    /// Stop waiting for `id` and tell the server.
    pub fn cancel(&self, id: u64, reason: &str) {
        if self.pending.locked().remove(&id).is_some() {
            let _ = self.notify("notifications/cancelled", Some(json!({"requestId": id, "reason": reason})));
        }
    }

    /// Stop waiting for `id`; the server is told on a background thread, so a caller on a
    /// deadline never waits for the server's transport (an HTTP POST, say).
    pub fn cancel_detached(self: &Arc<Self>, id: u64, reason: &str) {
        if !self.forget(id) {
            return;
        }
        let params = json!({"requestId": id, "reason": reason});
        let sent = cancel_sender().map(|tx| tx.try_send((self.clone(), params)));
        if !matches!(sent, Some(Ok(()))) {
            log::debug!("server `{}`: cancellation of request {} not sent (the queue is full)", self.name, id);
        }
    }

    /// Send a request and wait for its outcome.
    pub fn request(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Outcome> {
        let p = self.start(method, params)?;
        self.wait(p, timeout, &format!("`{}`", method))
    }

    /// Send a request; a JSON-RPC error becomes an `Error` naming the server.
    pub fn call(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Value> {
        self.request(method, params, timeout)?.map_err(|e| call_error(&self.name, method, &e))
    }

    /// Called by a transport for each line it reads: a response to a raw waiter is handed
    /// over as it is; anything else is parsed and dispatched. `Err` says why the line is
    /// not JSON-RPC.
    pub fn dispatch_line(self: &Arc<Self>, text: &str) -> std::result::Result<(), String> {
        if let Ok(env) = serde_json::from_str::<Envelope>(text) {
            let is_2_0 = env.jsonrpc.map(|v| v.get() == "\"2.0\"").unwrap_or(false);
            let id = env.id.and_then(|i| i.get().parse::<u64>().ok());
            if let (true, None, Some(id), Some(result), None) = (is_2_0, env.method, id, env.result, env.error) {
                let mut pending = self.pending.locked();
                if matches!(pending.get(&id), Some(Waiter::Raw(_))) {
                    let Some(Waiter::Raw(reply)) = pending.remove(&id) else { unreachable!() };
                    drop(pending);
                    crate::sync::contained("a reply callback", || reply(Ok(result.to_owned())));
                    return Ok(());
                }
            }
        }
        self.dispatch(Message::parse(text)?);
        Ok(())
    }

    /// Called by the transport for each message it reads.
    pub fn dispatch(self: &Arc<Self>, msg: Message) {
        match msg {
            Message::Response { id, outcome } => {
                let reply = id.as_u64().and_then(|n| self.pending.locked().remove(&n));
                match reply {
                    Some(reply) => crate::sync::contained("a reply callback", || reply.give(outcome)),
                    None => log::debug!("server `{}`: response to unknown id {} dropped", self.name, id),
                }
            }
            Message::Request { id, method, params } => {
                let h = self.handler.read_locked().clone();
                match h {
                    Some(h) => {
                        crate::sync::contained("a request handler", || h(self, Inbound::Request { id, method, params }))
                    }
                    None if method == "ping" => {
                        let _ = self.respond(id, Ok(json!({})));
                    }
                    None => {
                        let e =
                            jsonrpc::error_object(jsonrpc::METHOD_NOT_FOUND, &format!("{} is not supported", method));
                        let _ = self.respond(id, Err(e));
                    }
                }
            }
            Message::Notification { method, params } => {
                let h = self.handler.read_locked().clone();
                if let Some(h) = h {
                    crate::sync::contained("a notification handler", || {
                        h(self, Inbound::Notification { method, params })
                    });
                }
            }
        }
    }

    /// Called by the transport when the connection is gone: every waiter fails at once.
    pub fn close(&self, reason: &str) {
        self.close_with_stderr(reason, "")
    }

    /// [`Peer::close`], with the last lines the server wrote on stderr (shown after the
    /// reason, and after the request that was out: "exited (status 3) during `tools/call`;
    /// last stderr: ...").
    pub fn close_with_stderr(&self, reason: &str, stderr: &str) {
        {
            let mut c = self.closed.locked();
            if c.is_some() {
                return;
            }
            *c = Some((reason.to_string(), stderr.to_string()));
        }
        let closed = jsonrpc::closed(reason, stderr);
        let waiters: Vec<_> = self.pending.locked().drain().collect();
        for (_, reply) in waiters {
            crate::sync::contained("a reply callback", || reply.give(Err(closed.clone())));
        }
        let text = jsonrpc::error_message(&closed).to_string();
        let hooks: Vec<_> = std::mem::take(&mut *self.on_close.locked());
        for h in hooks {
            crate::sync::contained("a close hook", || h(&text));
        }
    }

    /// Close the connection on purpose and shut the server down.
    pub fn shutdown(&self) {
        if let Some(t) = self.transport.get() {
            t.shutdown();
        }
        self.close(&format!("server `{}` was shut down", self.name));
    }
}

/// A cancellation waiting to be sent.
type Cancel = (Arc<Peer>, Value);

/// The one thread that sends `notifications/cancelled` for [`Peer::cancel_detached`]
/// (`None` if it could not be started: cancellations are then dropped, with a log line).
fn cancel_sender() -> Option<&'static std::sync::mpsc::SyncSender<Cancel>> {
    static TX: OnceLock<Option<std::sync::mpsc::SyncSender<Cancel>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = sync_channel::<Cancel>(1024);
        let started = std::thread::Builder::new().name("cancel".into()).spawn(move || {
            for (peer, params) in rx {
                let _ = peer.notify("notifications/cancelled", Some(params));
            }
        });
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                log::error!("cannot start the thread that sends cancellations: {}", e);
                None
            }
        }
    })
    .as_ref()
}

/// A JSON-RPC error answer to `method` from `server`, as an `Error` naming the server.
pub fn call_error(server: &str, method: &str, e: &Value) -> Error {
    if jsonrpc::is_unavailable(e) {
        return jsonrpc::failed_during(e, &format!("`{}`", method));
    }
    Error::new(
        jsonrpc::answer_kind(e),
        format!("server `{}` answered `{}` with an error: {}", server, method, jsonrpc::error_text(e)),
    )
}

/// The error a caller sees when `what` on `server` outlives `timeout`.
pub fn timeout_error(server: &str, what: &str, timeout: Duration) -> Error {
    Error::timeout(format!("{} on server `{}` timed out after {}", what, server, human_duration(timeout)))
        .hint("raise `timeout` in the server's config or pass --timeout SECS")
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && (s.fract() == 0.0) {
        format!("{}s", s as u64)
    } else {
        format!("{:.1}s", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that answers every request with its own id echoed, asynchronously.
    struct Loop(Mutex<Option<Arc<Peer>>>);
    impl Transport for Loop {
        fn send(&self, msg: &Value) -> Result<()> {
            let peer = self.0.locked().clone().unwrap();
            let msg = msg.clone();
            std::thread::spawn(move || {
                if let Some(id) = msg.get("id") {
                    let delay = msg["params"]["delay"].as_u64().unwrap_or(0);
                    std::thread::sleep(Duration::from_millis(delay));
                    peer.dispatch(Message::Response { id: id.clone(), outcome: Ok(msg["params"].clone()) });
                }
            });
            Ok(())
        }
        fn shutdown(&self) {}
    }

    fn looped() -> Arc<Peer> {
        let p = Peer::new("t");
        let l = Loop(Mutex::new(Some(p.clone())));
        p.attach(Box::new(l));
        p
    }

    #[test]
    fn responses_match_by_id_even_out_of_order() {
        let p = looped();
        let slow = p.start("x", Some(json!({"n": 1, "delay": 100}))).unwrap();
        let fast = p.start("x", Some(json!({"n": 2, "delay": 0}))).unwrap();
        let f = p.wait(fast, Duration::from_secs(2), "x").unwrap().unwrap();
        let s = p.wait(slow, Duration::from_secs(2), "x").unwrap().unwrap();
        assert_eq!((f["n"].as_u64(), s["n"].as_u64()), (Some(2), Some(1)));
    }

    #[test]
    fn timeout_is_a_timeout_and_close_fails_waiters() {
        let p = looped();
        let e = p.request("x", Some(json!({"delay": 500})), Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.status(), crate::error::Status::Timeout);
        let pend = p.start("x", Some(json!({"delay": 5000}))).unwrap();
        p.close("server `t` exited with status 3");
        let out = p.wait(pend, Duration::from_secs(1), "x").unwrap();
        assert!(out.unwrap_err()["message"].as_str().unwrap().contains("status 3"));
        assert!(p.start("x", None).is_err());
    }

    #[test]
    fn a_close_hook_registered_while_the_connection_closes_still_runs() {
        for _ in 0..5 {
            let p = Peer::new("t");
            p.slow_on_close.store(true, Ordering::SeqCst);
            let ran = Arc::new(AtomicU64::new(0));
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let (p2, b2) = (p.clone(), barrier.clone());
            let closer = std::thread::spawn(move || {
                b2.wait();
                // While `on_close` has checked (not closed yet) and not registered.
                std::thread::sleep(Duration::from_millis(5));
                p2.close("server `t` exited (status 1)");
            });
            barrier.wait();
            let r = ran.clone();
            p.on_close(Box::new(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            }));
            closer.join().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1, "the close hook was lost");
        }
    }

    #[test]
    fn a_modern_peer_stamps_every_request_and_keeps_the_callers_meta() {
        let p = looped();
        // Legacy era: params go out untouched, but for a modern client's envelope.
        let out = p.request("x", Some(json!({"a": 1})), Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(out, json!({"a": 1}));
        let modern_client =
            json!({"a": 1, "_meta": {jsonrpc::META_PROTOCOL_VERSION: "2026-07-28", "progressToken": 5}});
        let out = p.request("x", Some(modern_client), Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(out, json!({"a": 1, "_meta": {"progressToken": 5}}));
        p.set_modern(Modern {
            version: "2026-07-28".into(),
            client_info: json!({"name": "mcpctl"}),
            capabilities: json!({}),
        });
        let out = p.request("x", None, Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(out["_meta"][jsonrpc::META_PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(out["_meta"][jsonrpc::META_CLIENT_INFO], json!({"name": "mcpctl"}));
        assert_eq!(out["_meta"][jsonrpc::META_CLIENT_CAPABILITIES], json!({}));
        // A forwarded request keeps its progress token and declared capabilities; the
        // version is always the negotiated one.
        let params = json!({"name": "t", "_meta": {
            "progressToken": "p1",
            jsonrpc::META_CLIENT_CAPABILITIES: {"roots": {}},
            jsonrpc::META_PROTOCOL_VERSION: "1999-01-01",
        }});
        let id = p.reserve_id();
        let (tx, rx) = std::sync::mpsc::channel();
        p.start_raw_as(id, "tools/call", Some(params), Box::new(move |o| tx.send(o).unwrap())).unwrap();
        let out: Value = serde_json::from_str(rx.recv_timeout(Duration::from_secs(2)).unwrap().unwrap().get()).unwrap();
        assert_eq!(out["name"], "t");
        assert_eq!(out["_meta"]["progressToken"], "p1");
        assert_eq!(out["_meta"][jsonrpc::META_CLIENT_CAPABILITIES], json!({"roots": {}}));
        assert_eq!(out["_meta"][jsonrpc::META_PROTOCOL_VERSION], "2026-07-28");
    }

    /// A transport that swallows what it is sent (the test feeds the answers).
    struct Sink;
    impl Transport for Sink {
        fn send(&self, _msg: &Value) -> Result<()> {
            Ok(())
        }
        fn shutdown(&self) {}
    }

    #[test]
    fn lines_reach_raw_and_value_waiters_alike() {
        let p = Peer::new("t");
        p.attach(Box::new(Sink));
        let (tx, rx) = std::sync::mpsc::channel();
        let raw_id = p.reserve_id();
        p.start_raw_as(
            raw_id,
            "x",
            None,
            Box::new(move |o| {
                let _ = tx.send(o.map(|r| r.get().to_string()));
            }),
        )
        .unwrap();
        let val = p.start("x", None).unwrap();
        // The raw waiter gets the result exactly as written, spacing and key order kept.
        let line = format!(r#"{{"jsonrpc":"2.0","id":{raw_id},"result":{{"z": 1, "a": [true]}}}}"#);
        p.dispatch_line(&line).unwrap();
        assert_eq!(rx.recv().unwrap().unwrap(), r#"{"z": 1, "a": [true]}"#);
        let line = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"n":2}}}}"#, val.id);
        p.dispatch_line(&line).unwrap();
        assert_eq!(p.wait(val, Duration::from_secs(1), "x").unwrap().unwrap(), json!({"n": 2}));
        // Errors, notifications and junk take the ordinary path.
        assert!(p.dispatch_line("not json").is_err());
        assert!(p.dispatch_line(r#"{"jsonrpc":"1.0","id":1,"result":{}}"#).is_err());
        p.dispatch_line(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#).unwrap();
    }

    /// A reply callback that panics (on the child's reader thread) costs its own request
    /// only: the next answer on the same connection still reaches its waiter.
    #[test]
    fn a_panicking_reply_callback_does_not_stop_the_reader() {
        let p = Peer::new("t");
        p.attach(Box::new(Sink));
        let bad = p.reserve_id();
        p.start_raw_as(bad, "x", None, Box::new(|_| panic!("a callback bug"))).unwrap();
        let good = p.start("x", None).unwrap();
        let reader = {
            let p = p.clone();
            let good_id = good.id;
            std::thread::spawn(move || {
                p.dispatch_line(&format!(r#"{{"jsonrpc":"2.0","id":{bad},"result":{{}}}}"#)).unwrap();
                p.dispatch_line(&format!(r#"{{"jsonrpc":"2.0","id":{good_id},"result":{{"ok":1}}}}"#)).unwrap();
            })
        };
        assert!(reader.join().is_ok(), "the reader thread died with the callback");
        assert_eq!(p.wait(good, Duration::from_secs(1), "x").unwrap().unwrap(), json!({"ok": 1}));
    }
}
