//! Supervising one server's child (or HTTP session): start it, wait while it serves, and
//! restart it with backoff (1 s doubling to 60 s, reset after a minute healthy) when it
//! goes away or stops reading; and keep its cached tool list fresh.

use super::{Info, State, Upstream};
use crate::client;
use crate::error::Result;
use crate::peer::Peer;
use crate::sync::Locked;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// At most one tool list refresh runs per server; notifications meanwhile mark it dirty.
#[derive(Default)]
pub(super) struct Refresh {
    dirty: bool,
    running: bool,
    peer: Option<Arc<Peer>>,
}

impl Upstream {
    pub(super) fn wait_until_needed(&self) {
        let mut i = self.inner.locked();
        while self.lazy.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            i = crate::sync::wait_timeout(&self.changed, i, Duration::from_millis(500));
        }
    }

    /// Start the supervisor thread (not for disabled servers).
    pub fn spawn(self: &Arc<Self>) {
        if self.cfg.disabled {
            return;
        }
        let me = self.clone();
        let _ = std::thread::Builder::new().name(format!("supervise-{}", self.cfg.name)).spawn(move || me.supervise());
    }

    fn set_state(&self, s: State) {
        let mut i = self.inner.locked();
        i.state = s;
        self.changed.notify_all();
    }

    fn supervise(self: Arc<Self>) {
        // A lazy server waits for its first use.
        self.wait_until_needed();
        let mut backoff = Duration::from_secs(1);
        while !self.stop.load(Ordering::SeqCst) {
            self.set_state(State::Starting);
            let started = Instant::now();
            let error = match self.connect_once() {
                Ok(closed) => {
                    // Serve until the child goes away or we stop.
                    let reason = loop {
                        if self.stop.load(Ordering::SeqCst) {
                            break None;
                        }
                        if let Some(why) = self.stuck() {
                            break Some(why);
                        }
                        match closed.recv_timeout(Duration::from_millis(200)) {
                            Ok(r) => break Some(r),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                            Err(_) => break Some("connection lost".into()),
                        }
                    };
                    let Some(reason) = reason else { break };
                    if started.elapsed() >= Duration::from_secs(60) {
                        backoff = Duration::from_secs(1);
                    }
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    log::warn!("{}", crate::logsafe::unbounded(&reason));
                    reason
                }
                Err(e) => {
                    log::warn!(
                        "server `{}` failed to start: {}",
                        self.cfg.name,
                        crate::logsafe::unbounded(&e.one_line())
                    );
                    if self.needs_runtime() && !self.runtime_present() {
                        // No crash loop: wait for the next call to try the install again.
                        let mut i = self.inner.locked();
                        i.last_error = Some(e.one_line());
                        i.state = State::WaitingForRuntime;
                        self.lazy.store(true, Ordering::SeqCst);
                        self.runtime_failures.fetch_add(1, Ordering::SeqCst);
                        self.changed.notify_all();
                        drop(i);
                        self.wait_until_needed();
                        continue;
                    }
                    e.one_line()
                }
            };
            let old = {
                let mut i = self.inner.locked();
                let stderr = i.session.as_ref().map(|s| s.peer.stderr_tail(10)).unwrap_or_default();
                if !stderr.is_empty() {
                    i.stderr = stderr;
                }
                i.last_error = Some(error.clone());
                i.state = State::Restarting { at: Instant::now() + backoff, wall: SystemTime::now() + backoff, error };
                self.changed.notify_all();
                i.session.take()
            };
            drop(old); // shuts the child down, without holding the lock
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
        // The child is shut down on this thread: the one that started it (its
        // PR_SET_PDEATHSIG fires when this thread ends).
        let session = self.inner.locked().session.take();
        drop(session);
        self.set_state(State::Stopped);
    }

    /// Why the child must be restarted because it stopped reading its stdin, if it did.
    fn stuck(&self) -> Option<String> {
        let peer = self.inner.locked().session.as_ref().map(|s| s.peer.clone())?;
        let stalled = peer.input_stalled()?;
        if stalled <= self.cfg.timeout {
            return None;
        }
        Some(format!(
            "server `{}` stopped reading its input (a write blocked for {}); restarting it",
            self.cfg.name,
            crate::peer::human_duration(stalled)
        ))
    }

    /// Connect and initialize; returns a channel that fires when the connection closes.
    fn connect_once(self: &Arc<Self>) -> Result<Receiver<String>> {
        let ctx = client::Context {
            project_root: &self.root,
            handler: self.handler(),
            client_info: json!({"name": "mcpctl-gateway", "version": env!("CARGO_PKG_VERSION")}),
            capabilities: json!({"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}}),
            // The daemon has no terminal: it installs on demand (MCPCTL_RUNTIME_INSTALL=never forbids it).
            consent: Arc::new(|_| true),
        };
        let session =
            client::connect(&self.cfg, &ctx).inspect_err(|e| self.inner.locked().stderr = e.details.clone())?;
        let tools = client::list_all(&session.peer, "tools/list", "tools", self.cfg.timeout).unwrap_or_else(|e| {
            log::warn!("server `{}`: tools/list failed: {}", self.cfg.name, crate::logsafe::unbounded(&e.one_line()));
            Vec::new()
        });
        let (tx, rx) = channel();
        session.peer.on_close(Box::new(move |reason: &str| {
            let _ = tx.send(reason.to_string());
        }));
        let info = Info {
            server_info: session.server_info.clone(),
            capabilities: session.capabilities.clone(),
            instructions: session.instructions.clone(),
        };
        log::info!("server `{}` ready ({} tools)", self.cfg.name, tools.len());
        if session.is_modern() {
            self.listen(&session.peer);
        }
        let mut i = self.inner.locked();
        i.session = Some(session);
        i.info = Some(info);
        i.tools = Some(tools);
        i.state = State::Ready;
        self.changed.notify_all();
        drop(i);
        if let Some(hub) = self.owner() {
            hub.tools_changed(&self.cfg.name);
        }
        Ok(rx)
    }

    /// Fetch the tool list again, on one thread per server at a time: notifications that
    /// arrive meanwhile make it fetch once more when it is done.
    pub(super) fn refresh_tools(self: &Arc<Self>, peer: &Arc<Peer>) {
        let mut r = self.refresh.locked();
        r.dirty = true;
        r.peer = Some(peer.clone());
        if r.running {
            return;
        }
        r.running = true;
        drop(r);
        let me = self.clone();
        let started =
            std::thread::Builder::new().name(format!("tools-{}", self.cfg.name)).spawn(move || me.refresh_loop());
        if let Err(e) = started {
            log::error!("server `{}`: cannot start a thread to refresh its tools: {}", self.cfg.name, e);
            self.refresh.locked().running = false;
        }
    }

    fn refresh_loop(&self) {
        loop {
            let mut r = self.refresh.locked();
            let dirty = std::mem::take(&mut r.dirty);
            let Some(peer) = r.peer.take().filter(|_| dirty) else {
                r.running = false;
                return;
            };
            drop(r);
            match client::list_all(&peer, "tools/list", "tools", self.cfg.timeout) {
                Ok(tools) => self.inner.locked().tools = Some(tools),
                Err(e) => log::warn!("server `{}`: tools/list failed: {}", self.cfg.name, e.one_line()),
            }
            if let Some(hub) = self.owner() {
                hub.tools_changed(&self.cfg.name);
            }
        }
    }
}
