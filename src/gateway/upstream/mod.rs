//! One configured server inside the gateway: a supervisor thread keeps its child (or HTTP
//! session) alive — starting → ready → restarting with backoff (1 s doubling to 60 s,
//! reset after a minute healthy) — caches its tool list, and routes what the child sends
//! back to the client session it belongs to (progress by rewritten token, server→client
//! requests and logs to the one session with requests in flight).
//!
//! A child of the 2026-07-28 era (negotiated by `client::connect`; its peer stamps the
//! per-request `_meta`) asks for input inside a result (`input_required`) instead of with
//! requests of its own. For an old-era client the gateway bridges that: each input
//! request goes to the client as a server→client request on its request's stream, and
//! once all are answered the request is sent to the child again with the answers and its
//! `requestState` (at most `client::MAX_INPUT_ROUNDS` rounds, within the client's deadline).

mod bridge;
mod subscriptions;

use bridge::{bridged_capabilities, input_required, Retried};

use subscriptions::Subs;

use super::session::Session;
use super::Hub;
use crate::client::{self, Session as ClientSession};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::jsonrpc;
use crate::peer::{Handler, Inbound, Peer, RawOutcome};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Where the answer to a forwarded request, and the messages that belong to it, go.
/// Called on the thread that reads the child (or on the one that closes it).
pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

/// What a forwarded request's sink receives while the request is in flight upstream.
pub enum Event {
    /// A notification or server→client request that belongs to this request.
    Message(Value),
    /// The answer, its result as the server wrote it.
    Done(RawOutcome),
}

#[derive(Debug, Clone)]
pub enum State {
    Starting,
    Ready,
    Restarting { at: Instant, wall: SystemTime, error: String },
    Disabled,
    WaitingForRuntime,
    Stopped,
}

impl State {
    pub fn word(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Restarting { .. } => "restarting",
            State::Disabled => "disabled",
            State::WaitingForRuntime => "waiting for runtime",
            State::Stopped => "stopped",
        }
    }
}

/// What the child said about itself in `initialize`.
#[derive(Debug, Clone)]
pub struct Info {
    pub server_info: Value,
    pub capabilities: Value,
    pub protocol: String,
    pub instructions: Option<String>,
}

struct Inner {
    state: State,
    session: Option<ClientSession>,
    info: Option<Info>,
    tools: Option<Vec<Value>>,
    last_error: Option<String>,
    stderr: Vec<String>,
}

struct Flight {
    session: Weak<Session>,
    sink: Sink,
    /// Our progress token for it, if the client asked for progress.
    token: Option<String>,
}

/// A forwarded request, kept while it may be retried with answers to a modern child's
/// input requests.
struct Call {
    session: Weak<Session>,
    peer: Weak<Peer>,
    method: String,
    /// Its params as first sent (kept only when it is bridged).
    params: Option<Value>,
    sink: Sink,
    token: Option<String>,
    /// The upstream id the caller knows it by (cancellation names this one).
    origin: u64,
    round: usize,
    /// A modern child and an old-era client: input requests are bridged.
    bridged: bool,
}

pub struct Upstream {
    pub cfg: ServerConfig,
    root: PathBuf,
    inner: Mutex<Inner>,
    changed: Condvar,
    pub calls: AtomicU64,
    /// Requests in a row whose connection failed (the server answered nothing usable), and
    /// the last reason: a server that is `ready` but whose calls all fail is shown failing.
    pub failures: AtomicU64,
    pub last_failure: Mutex<Option<String>>,
    pub restarts: AtomicU64,
    stop: AtomicBool,
    hub: Weak<Hub>,
    /// Our progress token → (client's token, the request's event channel).
    progress: Mutex<HashMap<String, (Value, Sink)>>,
    /// Requests in flight by upstream id (recorded before the request is sent).
    flights: Mutex<HashMap<u64, Flight>>,
    /// Bridged requests retried with input answers, by the upstream id the caller knows.
    retried: Mutex<HashMap<u64, Retried>>,
    /// Numbers progress tokens.
    next_token: AtomicU64,
    /// Start only when first needed (managed runtime not installed yet).
    lazy: AtomicBool,
    /// Failed runtime-backed starts so far (a waiting caller returns when this moves).
    runtime_failures: AtomicU64,
    /// Tool list refreshes asked for by `notifications/tools/list_changed`.
    refresh: Mutex<Refresh>,
    /// Per-session children of this (shared) server alive now, against the cap.
    pub session_children: Arc<std::sync::atomic::AtomicUsize>,
    /// Why this stand-in is never started (a per-session child over the cap).
    refusal: Option<Error>,
    /// A 2026-07-28 child: the resources session clients subscribed to (`resources/subscribe`,
    /// translated into the child's `subscriptions/listen` filter).
    subs: Mutex<Subs>,
}

/// At most one tool list refresh runs per server; notifications meanwhile mark it dirty.
#[derive(Default)]
struct Refresh {
    dirty: bool,
    running: bool,
    peer: Option<Arc<Peer>>,
}

impl Upstream {
    pub fn new(cfg: ServerConfig, root: PathBuf, hub: Weak<Hub>, lazy: bool) -> Arc<Upstream> {
        // A server on the managed Node waits for its first use while Node is missing (never installed at boot).
        let lazy = lazy || (uses_node(&cfg) && !crate::runtime::node::installed_from_env());
        let state = if cfg.disabled {
            State::Disabled
        } else if lazy {
            State::WaitingForRuntime
        } else {
            State::Starting
        };
        Arc::new(Upstream {
            cfg,
            root,
            inner: Mutex::new(Inner {
                state,
                session: None,
                info: None,
                tools: None,
                last_error: None,
                stderr: Vec::new(),
            }),
            changed: Condvar::new(),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            restarts: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            hub,
            progress: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            retried: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            lazy: AtomicBool::new(lazy),
            runtime_failures: AtomicU64::new(0),
            refresh: Mutex::new(Refresh::default()),
            session_children: Arc::default(),
            refusal: None,
            subs: Mutex::default(),
        })
    }

    /// A stand-in that is never started and fails every request with `why`.
    pub fn refusing(cfg: ServerConfig, why: Error) -> Arc<Upstream> {
        let mut u = Upstream::new(cfg, PathBuf::new(), Weak::new(), false);
        if let Some(u) = Arc::get_mut(&mut u) {
            u.refusal = Some(why);
        }
        u
    }

    /// Whether this server runs on a managed runtime (uv or Node).
    pub fn needs_runtime(&self) -> bool {
        match &self.cfg.transport {
            crate::config::Transport::Stdio { command, .. } => {
                crate::runtime::uses_runtime(command, self.cfg.runtime.as_deref()) || uses_node(&self.cfg)
            }
            _ => false,
        }
    }

    /// Whether the managed runtime this server needs is installed.
    fn runtime_present(&self) -> bool {
        if uses_node(&self.cfg) {
            crate::runtime::node::installed_from_env()
        } else {
            runtime_installed()
        }
    }

    fn wait_until_needed(&self) {
        let mut i = self.inner.lock().unwrap();
        while self.lazy.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            i = self.changed.wait_timeout(i, Duration::from_millis(500)).unwrap().0;
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
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
        let mut i = self.inner.lock().unwrap();
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
                        let mut i = self.inner.lock().unwrap();
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
                let mut i = self.inner.lock().unwrap();
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
        let session = self.inner.lock().unwrap().session.take();
        drop(session);
        self.set_state(State::Stopped);
    }

    /// Why the child must be restarted because it stopped reading its stdin, if it did.
    fn stuck(&self) -> Option<String> {
        let peer = self.inner.lock().unwrap().session.as_ref().map(|s| s.peer.clone())?;
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
        let session = match client::connect(&self.cfg, &ctx) {
            Ok(s) => s,
            Err(e) => {
                let mut i = self.inner.lock().unwrap();
                i.stderr = e.details.clone();
                return Err(e);
            }
        };
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
            protocol: session.protocol.clone(),
            instructions: session.instructions.clone(),
        };
        log::info!("server `{}` ready ({} tools)", self.cfg.name, tools.len());
        if session.is_modern() {
            self.listen(&session.peer);
        }
        let mut i = self.inner.lock().unwrap();
        i.session = Some(session);
        i.info = Some(info);
        i.tools = Some(tools);
        i.state = State::Ready;
        self.changed.notify_all();
        drop(i);
        if let Some(hub) = self.hub.upgrade() {
            hub.tools_changed(&self.cfg.name);
        }
        Ok(rx)
    }

    /// Ask the supervisor to shut the child down and end; returns at once
    /// (see [`Upstream::wait_stopped`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.lazy.store(false, Ordering::SeqCst);
        let _guard = self.inner.lock().unwrap();
        self.changed.notify_all();
    }

    /// Wait (until `deadline`) for the supervisor to have shut the child down; false if
    /// it has not by then.
    pub fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut i = self.inner.lock().unwrap();
        loop {
            if matches!(i.state, State::Stopped | State::Disabled) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            i = self.changed.wait_timeout(i, left.min(Duration::from_millis(100))).unwrap().0;
        }
    }

    pub fn state(&self) -> State {
        self.inner.lock().unwrap().state.clone()
    }

    pub fn info(&self) -> Option<Info> {
        self.inner.lock().unwrap().info.clone()
    }

    /// Whether the child is spoken to in the 2026-07-28 era (false while not connected).
    pub fn speaks_modern(&self) -> bool {
        self.inner.lock().unwrap().session.as_ref().map(|s| s.is_modern()).unwrap_or(false)
    }

    /// The child's `serverInfo` alone (a 2026-07-28 result carries it: per request).
    pub fn server_info(&self) -> Option<Value> {
        self.inner.lock().unwrap().info.as_ref().map(|i| i.server_info.clone())
    }

    pub fn tools(&self) -> Option<Vec<Value>> {
        self.inner.lock().unwrap().tools.clone()
    }

    /// The cached definition of `tool` (or the error naming close ones), without copying the list.
    pub fn tool(&self, tool: &str) -> Result<Value> {
        let i = self.inner.lock().unwrap();
        let tools = i.tools.as_deref().unwrap_or(&[]);
        crate::call::find_tool(&self.cfg.name, tools, tool).cloned()
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.lock().unwrap().last_error.clone()
    }

    pub fn stderr_tail(&self) -> Vec<String> {
        let i = self.inner.lock().unwrap();
        match &i.session {
            Some(s) => s.peer.stderr_tail(5),
            None => i.stderr.iter().rev().take(5).rev().cloned().collect(),
        }
    }

    /// Ask a lazy server to start now, without waiting for it (its tools are announced
    /// with `notifications/tools/list_changed` when it is ready).
    pub fn trigger(&self) {
        if self.lazy.swap(false, Ordering::SeqCst) {
            self.changed.notify_all();
        }
    }

    /// The live connection, waiting up to `timeout` while the server starts.
    pub fn peer(&self, timeout: Duration) -> Result<Arc<Peer>> {
        if let Some(why) = &self.refusal {
            return Err(why.clone());
        }
        let failures = self.runtime_failures.load(Ordering::SeqCst);
        if self.lazy.swap(false, Ordering::SeqCst) {
            self.changed.notify_all();
        }
        let deadline = Instant::now() + timeout;
        let mut i = self.inner.lock().unwrap();
        loop {
            match &i.state {
                State::Ready => {
                    if let Some(s) = &i.session {
                        if !s.peer.is_closed() {
                            return Ok(s.peer.clone());
                        }
                    }
                }
                State::Disabled => {
                    return Err(Error::failure(format!("server `{}` is disabled", self.cfg.name))
                        .hint("set \"disabled\": false in the config and restart the daemon"))
                }
                State::Restarting { at, error, .. } => {
                    let secs = at.saturating_duration_since(Instant::now()).as_secs_f64().ceil();
                    return Err(Error::failure(format!(
                        "server `{}` is not available ({}); next restart in {}s",
                        self.cfg.name, error, secs
                    )));
                }
                State::Stopped => return Err(Error::failure(format!("server `{}` is stopped", self.cfg.name))),
                State::WaitingForRuntime if self.runtime_failures.load(Ordering::SeqCst) > failures => {
                    let why =
                        i.last_error.clone().unwrap_or_else(|| "the managed runtime could not be installed".into());
                    return Err(Error::failure(why));
                }
                State::Starting | State::WaitingForRuntime => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::timeout(format!("server `{}` is still starting", self.cfg.name)));
            }
            i = self.changed.wait_timeout(i, left.min(Duration::from_millis(100))).unwrap().0;
        }
    }

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
            self.progress.lock().unwrap().insert(t.clone(), (original, sink.clone()));
            our_token = Some(t);
        }
        if method == "tools/call" {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        let bridged = peer.modern().is_some() && crate::client::PROTOCOL_VERSIONS.contains(&session.protocol.as_str());
        if bridged {
            let p = params.get_or_insert_with(|| json!({}));
            if let Some(m) = p.as_object_mut() {
                let meta = m.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.entry(jsonrpc::META_CLIENT_CAPABILITIES).or_insert_with(bridged_capabilities);
                    if let Some(level) = session.log_level.lock().unwrap().clone() {
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
    fn send_call(self: &Arc<Self>, peer: &Arc<Peer>, id: u64, params: Option<Value>, call: Call) -> Result<()> {
        // Record the flight before sending: the child may ask the client something
        // (sampling, elicitation, roots) before the send even returns.
        let flight = Flight { session: call.session.clone(), sink: call.sink.clone(), token: call.token.clone() };
        self.flights.lock().unwrap().insert(id, flight);
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
                        *me.last_failure.lock().unwrap() = e["message"].as_str().map(str::to_string);
                    }
                    _ => me.failures.store(0, Ordering::Relaxed),
                }
                me.flights.lock().unwrap().remove(&id);
                if call.bridged {
                    if let Some(result) = input_required(&outcome) {
                        return me.bridge(call, result);
                    }
                }
                me.done(&call);
                (call.sink)(Event::Done(outcome));
            }),
        );
        if let Err(e) = started {
            self.flights.lock().unwrap().remove(&id);
            if let Some(t) = token {
                self.progress.lock().unwrap().remove(&t);
            }
            self.retried.lock().unwrap().remove(&origin);
            return Err(e);
        }
        Ok(())
    }

    /// A call is answered (or abandoned): forget its routes.
    fn done(&self, call: &Call) {
        if let Some(t) = &call.token {
            self.progress.lock().unwrap().remove(t);
        }
        if call.round > 0 {
            self.retried.lock().unwrap().remove(&call.origin);
        }
    }

    /// Stop waiting for `id`: tell the child, and forget the routes.
    pub fn cancel(&self, id: u64, reason: &str) {
        // A bridged request may have been sent again under another id since.
        let retried = self.retried.lock().unwrap().remove(&id);
        if let Some(t) = retried.as_ref().and_then(|r| r.token.clone()) {
            self.progress.lock().unwrap().remove(&t);
        }
        let id = retried.map(|r| r.current).unwrap_or(id);
        // Forget its routes too (a progress route keeps the request's state alive).
        let flight = self.flights.lock().unwrap().remove(&id);
        if let Some(t) = flight.and_then(|f| f.token) {
            self.progress.lock().unwrap().remove(&t);
        }
        // Never on this thread: the caller may be the one deadline thread.
        let peer = self.inner.lock().unwrap().session.as_ref().map(|s| s.peer.clone());
        if let Some(peer) = peer {
            peer.cancel_detached(id, reason);
        }
    }

    /// Fetch the tool list again, on one thread per server at a time: notifications that
    /// arrive meanwhile make it fetch once more when it is done.
    fn refresh_tools(self: &Arc<Self>, peer: &Arc<Peer>) {
        let mut r = self.refresh.lock().unwrap();
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
            self.refresh.lock().unwrap().running = false;
        }
    }

    fn refresh_loop(&self) {
        loop {
            let peer = {
                let mut r = self.refresh.lock().unwrap();
                match (r.dirty, r.peer.take()) {
                    (true, Some(p)) => {
                        r.dirty = false;
                        p
                    }
                    _ => {
                        r.running = false;
                        r.dirty = false;
                        return;
                    }
                }
            };
            match client::list_all(&peer, "tools/list", "tools", self.cfg.timeout) {
                Ok(tools) => self.inner.lock().unwrap().tools = Some(tools),
                Err(e) => log::warn!("server `{}`: tools/list failed: {}", self.cfg.name, e.one_line()),
            }
            if let Some(hub) = self.hub.upgrade() {
                hub.tools_changed(&self.cfg.name);
            }
        }
    }

    /// The one client session whose requests are in flight here, and its newest request's channel.
    fn attributed(&self) -> Option<(Arc<Session>, Sink)> {
        let flights = self.flights.lock().unwrap();
        let mut best: Option<(u64, Arc<Session>, Sink)> = None;
        for (id, f) in flights.iter() {
            let Some(s) = f.session.upgrade() else { continue };
            if let Some((bid, bs, _)) = &best {
                if !Arc::ptr_eq(bs, &s) {
                    return None;
                }
                if *bid > *id {
                    continue;
                }
            }
            best = Some((*id, s, f.sink.clone()));
        }
        best.map(|(_, s, tx)| (s, tx))
    }

    fn handler(self: &Arc<Self>) -> Handler {
        let me = Arc::downgrade(self);
        Arc::new(move |peer: &Arc<Peer>, msg: Inbound| {
            let Some(me) = me.upgrade() else { return };
            me.on_inbound(peer, msg);
        })
    }

    fn on_inbound(self: &Arc<Self>, peer: &Arc<Peer>, msg: Inbound) {
        match msg {
            Inbound::Notification { method, params } => match method.as_str() {
                "notifications/progress" => {
                    let mut p = params.unwrap_or(Value::Null);
                    let token = p.get("progressToken").and_then(Value::as_str).map(str::to_string);
                    let route = token.and_then(|t| self.progress.lock().unwrap().get(&t).cloned());
                    if let Some((original, sink)) = route {
                        p["progressToken"] = original;
                        sink(Event::Message(jsonrpc::notification(&method, Some(p))));
                    }
                }
                "notifications/tools/list_changed" => self.refresh_tools(peer),
                "notifications/message" => {
                    let msg = jsonrpc::notification(&method, params);
                    match self.attributed() {
                        Some((_, sink)) => {
                            sink(Event::Message(msg));
                        }
                        None => self.broadcast(&msg),
                    }
                }
                // Ours alone: the acknowledgement of the listen stream above.
                "notifications/cancelled" | "notifications/subscriptions/acknowledged" => {}
                // To the sessions that subscribed it, when the gateway keeps the subscriptions.
                "notifications/resources/updated" => {
                    let mut msg = jsonrpc::notification(&method, params);
                    let uri = msg["params"]["uri"].as_str().unwrap_or("").to_string();
                    if let Some(m) = msg["params"].as_object_mut() {
                        // The child's stream id means nothing to a session client.
                        if let Some(meta) = m.get_mut("_meta").and_then(Value::as_object_mut) {
                            meta.remove("io.modelcontextprotocol/subscriptionId");
                            if meta.is_empty() {
                                m.remove("_meta");
                            }
                        }
                    }
                    match (self.subscribers(&uri), self.hub.upgrade()) {
                        (Some(ids), Some(hub)) => hub.notify_sessions(&self.cfg.name, &ids, &msg),
                        _ => self.broadcast(&msg),
                    }
                }
                _ => self.broadcast(&jsonrpc::notification(&method, params)),
            },
            Inbound::Request { id, method, params } => {
                if method == "ping" {
                    let _ = peer.respond(id, Ok(json!({})));
                    return;
                }
                match self.attributed() {
                    Some((session, sink)) => {
                        let gid = session.expect_reply(peer, id);
                        sink(Event::Message(jsonrpc::request(json!(gid), &method, params)));
                    }
                    None => {
                        let e = jsonrpc::error_object(
                            jsonrpc::INTERNAL_ERROR,
                            &format!("mcpctl gateway: cannot tell which client session `{}` is for (no single session has a request in flight)", method),
                        );
                        let _ = peer.respond(id, Err(e));
                    }
                }
            }
        }
    }

    fn broadcast(&self, msg: &Value) {
        if let Some(hub) = self.hub.upgrade() {
            hub.broadcast(&self.cfg.name, msg);
        }
    }
}

/// Whether a server runs on the managed Node (`npx`, or `"runtime": "node"`).
fn uses_node(cfg: &ServerConfig) -> bool {
    matches!(&cfg.transport, crate::config::Transport::Stdio { command, .. }
        if crate::runtime::node::uses_node(command, cfg.runtime.as_deref()))
}

/// Whether the managed uv is installed (as the environment configures it).
pub fn runtime_installed() -> bool {
    crate::runtime::Settings::from_env().ok().and_then(|s| crate::runtime::install::installed(&s)).is_some()
}
