//! Requests forwarded to one server: each is recorded (its session, its sink, its progress
//! token) before it leaves, its answer goes to its sink, and it can be cancelled; for a
//! 2026-07-28 child and a session-era client it is bridged (see `bridge`).

use super::bridge::{bridged_capabilities, input_required, session_era};
use super::{Call, Event, Flight, Sink, Upstream};
use crate::error::Result;
use crate::gateway::session::Session;
use crate::jsonrpc;
use crate::peer::Peer;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Upstream {
    /// Send a client's request upstream. Its answer and related messages go to `sink`.
    /// `on_id` learns the upstream id (for cancellation) before the request leaves: after
    /// that, the caller's thread touches nothing the reading thread needs.
    pub fn forward(
        self: &Arc<Self>,
        session: &Arc<Session>,
        method: &str,
        mut params: Option<Value>,
        sink: Sink,
        on_id: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let peer = self.peer(self.cfg.timeout)?;
        let mut our_token = None;
        if let Some(tok) = params.as_mut().and_then(|p| p.get_mut("_meta")).and_then(|m| m.get_mut("progressToken")) {
            let t = format!("mcpctl-p{}", self.next_token.fetch_add(1, Ordering::Relaxed));
            let original = std::mem::replace(tok, Value::String(t.clone()));
            self.progress.locked().insert(t.clone(), (original, sink.clone()));
            our_token = Some(t);
        }
        if method == "tools/call" {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        let bridged = peer.modern().is_some() && crate::client::PROTOCOL_VERSIONS.contains(&session.protocol());
        if bridged {
            let p = params.get_or_insert_with(|| json!({}));
            if let Some(m) = p.as_object_mut() {
                let meta = m.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.entry(jsonrpc::META_CLIENT_CAPABILITIES)
                        .or_insert_with(|| bridged_capabilities(session.client_capabilities()));
                    if let Some(level) = session.log_level() {
                        meta.entry(jsonrpc::META_LOG_LEVEL).or_insert(json!(level));
                    }
                }
            }
        }
        let id = peer.reserve_id();
        on_id(id);
        let call = Call {
            session: Arc::downgrade(session),
            peer: Arc::downgrade(&peer),
            method: method.to_string(),
            params: if bridged { params.clone() } else { None },
            sink,
            token: our_token,
            origin: id,
            round: 0,
            bridged,
        };
        self.send_call(&peer, id, params, call)
    }

    /// Send one attempt of `call` under `id`; its answer goes to the call's sink, unless it
    /// asks a bridged call's client for input first.
    pub(super) fn send_call(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        id: u64,
        params: Option<Value>,
        call: Call,
    ) -> Result<()> {
        // Record the flight before sending: the child may ask the client something
        // (sampling, elicitation, roots) before the send even returns.
        let flight = Flight { session: call.session.clone(), sink: call.sink.clone(), token: call.token.clone() };
        self.flights.locked().insert(id, flight);
        let token = call.token.clone();
        let origin = call.origin;
        let method = call.method.clone();
        let me = Arc::downgrade(self);
        let started = peer.start_raw_as(
            id,
            &method,
            params,
            Box::new(move |outcome| {
                let Some(me) = me.upgrade() else { return (call.sink)(Event::Done(outcome)) };
                match &outcome {
                    Err(e) if jsonrpc::is_unavailable(e) => {
                        me.failures.fetch_add(1, Ordering::Relaxed);
                        *me.last_failure.locked() = e["message"].as_str().map(str::to_string);
                    }
                    _ => me.failures.store(0, Ordering::Relaxed),
                }
                me.flights.locked().remove(&id);
                if call.bridged {
                    if let Some(result) = input_required(&outcome) {
                        return me.bridge(call, result);
                    }
                }
                me.done(&call);
                let outcome = if call.bridged { session_era(outcome) } else { outcome };
                (call.sink)(Event::Done(outcome));
            }),
        );
        if let Err(e) = started {
            self.flights.locked().remove(&id);
            if let Some(t) = token {
                self.progress.locked().remove(&t);
            }
            self.retried.locked().remove(&origin);
            return Err(e);
        }
        Ok(())
    }

    /// A call is answered (or abandoned): forget its routes.
    pub(super) fn done(&self, call: &Call) {
        if let Some(t) = &call.token {
            self.progress.locked().remove(t);
        }
        if call.round > 0 {
            self.retried.locked().remove(&call.origin);
        }
    }

    /// Stop waiting for `id`: tell the child, and forget the routes.
    pub fn cancel(&self, id: u64, reason: &str) {
        // A bridged request may have been sent again under another id since.
        let retried = self.retried.locked().remove(&id);
        if let Some(t) = retried.as_ref().and_then(|r| r.token.clone()) {
            self.progress.locked().remove(&t);
        }
        let id = retried.map(|r| r.current).unwrap_or(id);
        // Forget its routes too (a progress route keeps the request's state alive).
        let flight = self.flights.locked().remove(&id);
        if let Some(t) = flight.and_then(|f| f.token) {
            self.progress.locked().remove(&t);
        }
        // Never on this thread: the caller may be the one deadline thread.
        let peer = self.inner.locked().session.as_ref().map(|s| s.peer.clone());
        if let Some(peer) = peer {
            peer.cancel_detached(id, reason);
        }
    }
}
