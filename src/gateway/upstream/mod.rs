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
//!
//! Here: the server's state and what the gateway reads of it (its connection, its
//! identity, its cached tools). Its parts: `supervise` (the child's life), `calls`
//! (forwarded requests), `bridge` (input_required for session clients), `inbound` (what
//! the child sends on its own) and `subscriptions` (resource subscriptions at a
//! 2026-07-28 child).

mod bridge;
mod calls;
mod inbound;
mod subscriptions;
mod supervise;

use crate::sync::Locked;
use bridge::Retried;
use subscriptions::Subs;
use supervise::Refresh;

use super::session::Session;
use crate::client::Session as ClientSession;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::peer::{Peer, RawOutcome};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// What a server tells the gateway of its own accord (the hub answers it): an upstream
/// knows nothing else of the hub.
pub trait Owner: Send + Sync {
    /// Its tool list changed (it became ready, or said so).
    fn tools_changed(&self, server: &str);
    /// A message of it that belongs to no request, for every client that sees it (with
    /// `ids`, for those sessions only: a resource update for its subscribers).
    fn tell(&self, server: &str, msg: &Value, ids: Option<&[String]>);
}

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
    cfg: ServerConfig,
    root: PathBuf,
    inner: Mutex<Inner>,
    changed: Condvar,
    calls: AtomicU64,
    /// Requests in a row whose connection failed (the server answered nothing usable), and
    /// the last reason: a server that is `ready` but whose calls all fail is shown failing.
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    restarts: AtomicU64,
    stop: AtomicBool,
    /// The gateway it reports to (`None`: a stand-in that never starts).
    owner: Option<Weak<dyn Owner>>,
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
    session_children: Arc<std::sync::atomic::AtomicUsize>,
    /// Why this stand-in is never started (a per-session child over the cap).
    refusal: Option<Error>,
    /// A 2026-07-28 child: the resources session clients subscribed to (`resources/subscribe`,
    /// translated into the child's `subscriptions/listen` filter).
    subs: Mutex<Subs>,
}

impl Upstream {
    pub fn new(cfg: ServerConfig, root: PathBuf, owner: Option<Weak<dyn Owner>>, lazy: bool) -> Arc<Upstream> {
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
            owner,
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
        let mut u = Upstream::new(cfg, PathBuf::new(), None, false);
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

    /// The gateway, while it runs.
    fn owner(&self) -> Option<Arc<dyn Owner>> {
        self.owner.as_ref()?.upgrade()
    }

    /// Tool calls sent to it, and restarts of its child, so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.restarts.load(Ordering::Relaxed))
    }

    /// Requests in a row that found no usable connection, and the last reason.
    pub fn failures(&self) -> (u64, Option<String>) {
        (self.failures.load(Ordering::Relaxed), self.last_failure.locked().clone())
    }

    /// A place for one more per-session child of this server, when fewer than `max` run.
    pub fn session_slot(&self, max: usize) -> Option<super::session::Slot> {
        super::session::Slot::take(&self.session_children, max)
    }

    /// The server's configuration.
    pub fn cfg(&self) -> &ServerConfig {
        &self.cfg
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Ask the supervisor to shut the child down and end; returns at once
    /// (see [`Upstream::wait_stopped`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.lazy.store(false, Ordering::SeqCst);
        let _guard = self.inner.locked();
        self.changed.notify_all();
    }

    /// Wait (until `deadline`) for the supervisor to have shut the child down; false if
    /// it has not by then.
    pub fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut i = self.inner.locked();
        loop {
            if matches!(i.state, State::Stopped | State::Disabled) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            i = crate::sync::wait_timeout(&self.changed, i, left.min(Duration::from_millis(100)));
        }
    }

    pub fn state(&self) -> State {
        self.inner.locked().state.clone()
    }

    /// Whether its last start failed and no start has succeeded since (restarting, or
    /// starting again after a failure).
    pub fn start_failed(&self) -> bool {
        let i = self.inner.locked();
        match i.state {
            State::Restarting { .. } => true,
            State::Starting => i.last_error.is_some(),
            _ => false,
        }
    }

    pub fn info(&self) -> Option<Info> {
        self.inner.locked().info.clone()
    }

    /// Whether the child is spoken to in the 2026-07-28 era (false while not connected).
    pub fn speaks_modern(&self) -> bool {
        self.inner.locked().session.as_ref().map(|s| s.is_modern()).unwrap_or(false)
    }

    pub fn tools(&self) -> Option<Vec<Value>> {
        self.inner.locked().tools.clone()
    }

    /// The cached definition of `tool` (or the error naming close ones), without copying the list.
    pub fn tool(&self, tool: &str) -> Result<Value> {
        let i = self.inner.locked();
        let tools = i.tools.as_deref().unwrap_or(&[]);
        crate::call::find_tool(&self.cfg.name, tools, tool).cloned()
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.locked().last_error.clone()
    }

    pub fn stderr_tail(&self) -> Vec<String> {
        let i = self.inner.locked();
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
        let mut i = self.inner.locked();
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
                    return Err(Error::config(format!("server `{}` is disabled", self.cfg.name))
                        .hint("set \"disabled\": false in the config and restart the daemon"))
                }
                State::Restarting { at, error, .. } => {
                    let secs = at.saturating_duration_since(Instant::now()).as_secs_f64().ceil();
                    return Err(Error::unreachable(format!(
                        "server `{}` is not available ({}); next restart in {}s",
                        self.cfg.name, error, secs
                    )));
                }
                State::Stopped => return Err(Error::unreachable(format!("server `{}` is stopped", self.cfg.name))),
                State::WaitingForRuntime if self.runtime_failures.load(Ordering::SeqCst) > failures => {
                    let why =
                        i.last_error.clone().unwrap_or_else(|| "the managed runtime could not be installed".into());
                    return Err(Error::runtime(why));
                }
                State::Starting | State::WaitingForRuntime => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::timeout(format!("server `{}` is still starting", self.cfg.name)));
            }
            i = crate::sync::wait_timeout(&self.changed, i, left.min(Duration::from_millis(100)));
        }
    }
}

/// Remove `key` from the `_meta` of `m`, and `_meta` itself when that leaves it empty.
fn drop_meta(m: &mut serde_json::Map<String, Value>, key: &str) {
    if let Some(meta) = m.get_mut("_meta").and_then(Value::as_object_mut) {
        meta.remove(key);
        if meta.is_empty() {
            m.remove("_meta");
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
