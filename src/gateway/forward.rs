//! Forwarding one client request to one upstream ([`forward`]): the answer goes back as
//! JSON, or as an event stream once a message of the request comes first; it is written by
//! the thread that reads the child's answer, or by the deadline thread ([`Forwarded`]). A
//! 2026-07-28 request held for its client's input waits here too ([`Resume`]).

use super::call_log::{log_call, session_word};
use super::modern;
use super::modern_shape::{Shape, Step};
use super::server::{Deferred, DeferredStream, Request};
use super::session::Session;
use super::streams::{end_stream, event_chunk, SSE_HEAD};
use super::upstream::{Event, Upstream};
use crate::jsonrpc;
use crate::peer;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Send a request to one upstream; answer as JSON, or switch to SSE as soon as a message
/// that belongs to this request (progress, log, sampling, elicitation) comes first. The
/// answer is written by the thread that reads the child's answer (no hand-off back to this
/// connection's thread), or by the deadline thread when the child takes too long.
/// With a `shape`, the answer and the messages on the way are made for a 2026-07-28 client.
pub(super) fn forward(
    req: Request<'_>,
    session: &Arc<Session>,
    u: &Arc<Upstream>,
    id: Value,
    method: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    forward_into(Out::Waiting(req.defer()), session, u, id, method, params, shape)
}

/// [`forward`] on an answer already deferred (or already an event stream: an approved call).
pub(super) fn forward_into(
    out: Out,
    session: &Arc<Session>,
    u: &Arc<Upstream>,
    id: Value,
    method: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    let tool = params.as_ref().filter(|_| method == "tools/call").and_then(|p| p["name"].as_str()).map(str::to_string);
    let timeout = u.cfg().timeout;
    let started = Instant::now();
    let fwd = Arc::new(Forwarded {
        out: Mutex::new(out),
        key: id.to_string(),
        id,
        method: method.to_string(),
        tool,
        upstream: Arc::downgrade(u),
        uid: AtomicU64::new(0),
        session: session.clone(),
        started,
        timeout,
        shape,
    });
    match &mut *fwd.out.locked() {
        Out::Waiting(d) => fwd.arm(d, started + timeout),
        Out::Streaming(st) => {
            let f = fwd.clone();
            st.set_deadline(started + timeout, Box::new(move || f.expire()));
        }
        Out::Held | Out::Done => {}
    }
    let f = fwd.clone();
    let mut on_id = |uid: u64| {
        fwd.uid.store(uid, Ordering::SeqCst);
        let u = Arc::downgrade(u);
        let cancel = move |why: &str| {
            if let Some(u) = u.upgrade() {
                u.cancel(uid, why);
            }
        };
        session.track(fwd.key.clone(), Box::new(cancel));
    };
    match u.forward(session, method, params, Arc::new(move |e| f.on_event(e)), &mut on_id) {
        Ok(()) => {}
        Err(e) if method == "tools/call" && u.needs_runtime() => {
            // The runtime could not be had: an in-band tool error, and the next call tries again.
            let result = json!({"content": [{"type": "text", "text": e.one_line()}], "isError": true});
            fwd.finish(Ok(peer::to_raw(&result)));
        }
        Err(e) => fwd.finish(Err(jsonrpc::error_object(jsonrpc::SERVER_UNAVAILABLE, &e.one_line()))),
    }
}

/// A request forwarded upstream, until it is answered.
pub(super) struct Forwarded {
    out: Mutex<Out>,
    /// The client's id, and as text (the key of `Session::inflight`).
    id: Value,
    key: String,
    method: String,
    tool: Option<String>,
    upstream: Weak<Upstream>,
    /// The upstream id (0 until known).
    uid: AtomicU64,
    session: Arc<Session>,
    started: Instant,
    timeout: Duration,
    /// How the answers are made for a 2026-07-28 client (`None`: as the child wrote them).
    shape: Option<Arc<Shape>>,
}

pub(super) enum Out {
    Waiting(Deferred),
    Streaming(DeferredStream),
    /// A 2026-07-28 client was answered `input_required`; its retry takes the answer.
    Held,
    Done,
}

impl Out {
    /// Write the whole answer (JSON text): as the response, or as the stream's last event.
    fn answer(self, status: u16, answer: &[u8]) {
        match self {
            Out::Waiting(d) => d.respond(status, &[("Content-Type", "application/json")], answer),
            Out::Streaming(s) => end_stream(s, &String::from_utf8_lossy(answer)),
            Out::Held | Out::Done => {}
        }
    }
}

/// A forwarded 2026-07-28 request held open upstream while its client gathers input.
pub(super) struct Resume(Arc<Forwarded>);

impl Resume {
    pub(super) fn session(&self) -> &Arc<Session> {
        &self.0.session
    }

    /// The client's retry takes over the answer (under its own id); the request is given
    /// back when the call ended meanwhile.
    pub(super) fn resume<'a>(&self, req: Request<'a>, id: Value) -> Option<Request<'a>> {
        let f = &self.0;
        let mut out = f.out.locked();
        if !matches!(*out, Out::Held) {
            return Some(req);
        }
        if let Some(s) = &f.shape {
            s.answer_as(id);
        }
        let mut d = req.defer();
        f.arm(&mut d, Instant::now() + f.timeout);
        *out = Out::Waiting(d);
        None
    }
}

impl Forwarded {
    /// The deadline of the answer, and (2026-07-28) cancelling when the client hangs up.
    fn arm(self: &Arc<Self>, d: &mut Deferred, at: Instant) {
        let f = self.clone();
        d.set_deadline(at, Box::new(move || f.expire()));
        if self.shape.is_some() {
            // 2026-07-28: closing the response stream cancels the request.
            let f = Arc::downgrade(self);
            d.on_hangup(Box::new(move || {
                if let Some(f) = f.upgrade() {
                    f.hang_up();
                }
            }));
        }
    }

    /// The id the answer goes out under (a 2026-07-28 retry's own).
    fn answer_id(&self) -> Value {
        self.shape.as_ref().and_then(|s| s.answer_id()).unwrap_or_else(|| self.id.clone())
    }

    /// Answer the client `result` (input required) now; the request stays open upstream.
    fn suspend(&self, result: Value) {
        let mut out = self.out.locked();
        let answer = jsonrpc::response(self.answer_id(), result).to_string();
        match std::mem::replace(&mut *out, Out::Held) {
            other @ (Out::Held | Out::Done) => *out = other,
            taken => taken.answer(200, answer.as_bytes()),
        }
    }

    fn on_event(self: &Arc<Self>, e: Event) {
        match e {
            Event::Message(m) => {
                let m = match &self.shape {
                    Some(s) => match s.message(&self.session, m, &|| Resume(self.clone())) {
                        Step::Pass(m) => m,
                        Step::Drop => return,
                        Step::Ask(result) => return self.suspend(result),
                    },
                    None => m,
                };
                let mut out = self.out.locked();
                let mut stream = match std::mem::replace(&mut *out, Out::Done) {
                    Out::Waiting(d) => d.into_stream(SSE_HEAD),
                    Out::Streaming(s) => s,
                    other @ (Out::Held | Out::Done) => {
                        *out = other;
                        return;
                    }
                };
                stream.send(&event_chunk(&m));
                *out = Out::Streaming(stream);
            }
            Event::Done(outcome) => self.finish(outcome),
        }
    }

    /// Tell the child to cancel the request (once its id is known), saying `why`; its
    /// server's name.
    fn cancel_upstream(&self, why: &str) -> String {
        let name = self.upstream.upgrade().map(|u| {
            let uid = self.uid.load(Ordering::SeqCst);
            if uid != 0 {
                u.cancel(uid, why);
            }
            u.name().to_string()
        });
        name.unwrap_or_default()
    }

    /// The deadline passed: tell the child to cancel, and the client why.
    fn expire(&self) {
        let name = self.cancel_upstream("timeout");
        let msg = format!("server `{}` did not answer `{}` within {}s", name, self.method, self.timeout.as_secs_f64());
        self.finish(Err(jsonrpc::error_object(jsonrpc::REQUEST_TIMEOUT, &msg)));
    }

    /// The client closed the connection (a 2026-07-28 client's cancellation): tell the child.
    fn hang_up(&self) {
        if matches!(*self.out.locked(), Out::Done | Out::Held) {
            return;
        }
        let name = self.cancel_upstream("the client closed the stream");
        log::info!(
            "`{}` to server `{}` cancelled: the client closed the stream",
            crate::logsafe::safe(&self.method),
            crate::logsafe::safe(&name)
        );
        self.finish(Err(jsonrpc::error_object(jsonrpc::REQUEST_TIMEOUT, "cancelled: the client closed the stream")));
    }

    /// Write the answer (once; later ones are dropped) and log the call.
    fn finish(&self, outcome: peer::RawOutcome) {
        let mut out = self.out.locked();
        let taken = std::mem::replace(&mut *out, Out::Done);
        if matches!(taken, Out::Done) {
            return;
        }
        self.session.untrack(&self.key);
        if let Some(tool) = &self.tool {
            let server = self.upstream.upgrade().map(|u| u.name().to_string()).unwrap_or_default();
            let word = match &outcome {
                Ok(r) if is_tool_error(r.get()) => "tool error",
                Ok(_) => "ok",
                Err(_) => "error",
            };
            let token = self.session.token().unwrap_or("-");
            log_call(session_word(&self.session), token, &server, tool, self.started, word);
        }
        let outcome = match &self.shape {
            Some(s) => s.outcome(outcome),
            None => outcome,
        };
        let answer = jsonrpc::response_bytes(&self.answer_id(), outcome.as_ref().map(|r| r.get()));
        // A 2026-07-28 client reads the kind of a refusal from the status too.
        let status = match (&self.shape, &outcome) {
            (Some(_), Err(e)) => modern::status_of(e),
            _ => 200,
        };
        taken.answer(status, &answer);
    }
}
/// Whether a tool result (raw JSON) says `"isError": true`; read without building a tree.
pub(super) fn is_tool_error(raw: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    serde_json::from_str::<Flag>(raw).map(|f| f.is_error).unwrap_or(false)
}
