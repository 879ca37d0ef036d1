//! The session's life beside the exchanges: initialized again when the gateway forgot it,
//! its GET stream (messages that belong to no request) kept open, and its end when stdin
//! closes (requests in flight drained briefly, the session DELETEd, stdout flushed).

use super::bridge::{Bridge, SIDE};
use super::exchange::content_type;
use crate::signals;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After stdin closes: how long requests in flight may take to finish.
const DRAIN: Duration = Duration::from_secs(2);

impl Bridge {
    /// The gateway forgot session `stale`: initialize again with the client's own
    /// `initialize` (one thread does it; the others wait for it, bounded).
    pub(super) fn renew(self: &Arc<Self>, stale: &str) -> bool {
        let until = Instant::now() + SIDE;
        loop {
            let now = self.session.locked().clone();
            if now.as_deref() != Some(stale) {
                return now.is_some();
            }
            if !self.renewing.swap(true, Ordering::SeqCst) {
                break;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ok = self.reinitialize();
        if !ok {
            *self.session.locked() = None;
        }
        self.renewing.store(false, Ordering::SeqCst);
        ok
    }

    fn reinitialize(self: &Arc<Self>) -> bool {
        let Some(init) = self.init.locked().clone() else { return false };
        let Ok(mut msg) = serde_json::from_str::<Value>(&init) else { return false };
        log::info!("the gateway ended the session; initializing again");
        msg["id"] = json!("mcpctl-serve-reinit");
        let resp = match self.post(&msg.to_string(), SIDE, None) {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                log::warn!("initializing again failed: HTTP {}", r.status().as_u16());
                return false;
            }
            Err((_, e)) => {
                log::warn!("initializing again failed: {}", e);
                return false;
            }
        };
        let Some(sid) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string) else {
            return false;
        };
        // The answer is the gateway's to us, not the client's: read and dropped.
        drop(resp);
        *self.session.locked() = Some(sid.clone());
        if let Ok(r) = self.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, SIDE, Some(&sid)) {
            drop(r);
        }
        self.open_stream();
        true
    }

    /// (Re)open the GET stream for messages that belong to no request.
    pub(super) fn open_stream(self: &Arc<Self>) {
        let generation = self.stream_gen.fetch_add(1, Ordering::SeqCst) + 1;
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("serve-get".into()).spawn(move || me.listen(generation));
        if let Err(e) = spawned {
            log::warn!("cannot start the thread of the GET stream: {}", e);
        }
    }

    fn listen(&self, generation: u64) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if generation != self.stream_gen.load(Ordering::SeqCst) || self.closing.load(Ordering::SeqCst) {
                return;
            }
            let Some(session) = self.session.locked().clone() else { return };
            let mut req = self
                .agent
                .get(&self.url)
                .config()
                .timeout_recv_response(Some(SIDE))
                .build()
                .header("Accept", "text/event-stream")
                .header("Mcp-Session-Id", session.as_str());
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(p) = self.protocol.locked().clone() {
                req = req.header("MCP-Protocol-Version", p.as_str());
            }
            match req.call() {
                Ok(resp) if resp.status().is_success() && content_type(&resp).starts_with("text/event-stream") => {
                    backoff = Duration::from_millis(500);
                    self.relay_stream(resp, None, Some(generation));
                }
                Ok(resp) if matches!(resp.status().as_u16(), 404 | 405) => {
                    log::debug!("no GET stream (HTTP {})", resp.status().as_u16());
                    return;
                }
                Ok(resp) => log::debug!("the GET stream was refused: HTTP {}", resp.status().as_u16()),
                Err(e) => log::debug!("the GET stream failed: {}", e),
            }
            // Ended or failed: open it again, after a pause that grows.
            let until = Instant::now() + backoff;
            while Instant::now() < until {
                if self.closing.load(Ordering::SeqCst) || signals::stopping() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    /// DELETE a session (its own children with it), with a short deadline.
    pub(super) fn end_session(&self, s: &str) {
        let mut req = self
            .agent
            .delete(&self.url)
            .config()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .header("Mcp-Session-Id", s);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Err(e) = req.call() {
            log::debug!("ending the session failed: {}", e);
        }
    }

    /// Stdin closed (or a signal): let requests in flight finish briefly, end the session,
    /// and write out what is queued.
    pub(super) fn finish(&self) {
        let until = Instant::now() + DRAIN;
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < until && !signals::stopping() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.closing.store(true, Ordering::SeqCst);
        // 2026-07-28 requests still open (a `subscriptions/listen`): their connections close.
        for (_, c) in self.conns.locked().drain() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let session = self.session.locked().take();
        if let Some(s) = session {
            self.end_session(&s);
        }
        self.stdout.flush();
    }
}
