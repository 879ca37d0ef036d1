//! The gateway: one HTTP server (`server`: a thread per connection, bounded) that
//! re-exposes every configured server over MCP Streamable HTTP — `/mcp` aggregated,
//! `/mcp/<server>` one server — on top of supervised, shared upstream connections.
//!
//! What the rest of mcpctl uses of it (its public face): [`serve`] with its [`Options`],
//! [`is_loopback`], [`unix`], [`runtime_installed`], [`cli_wire`] (the shape of
//! `POST /cli/call`, which `mcpctl call` speaks) and [`names::SEP`]. Everything else is
//! the gateway's own: `http` routes and checks each request (`mcp`, `modern*`,
//! `aggregate`, `forward`, `approval`, `streams`, `cli_call` answer it), `session` and
//! `upstream` hold the state of clients and servers, `run` starts and stops it all. Here:
//! the [`Options`] and the `Hub`, the state every request shares.

mod aggregate;
mod approval;
mod call_log;
mod cli_call;
pub mod cli_wire;
mod deferred;
mod eras;
mod forward;
mod gate;
mod http;
mod ids;
mod mcp;
mod modern;
mod modern_checks;
mod modern_held;
mod modern_listen;
mod modern_shape;
pub mod names;
mod run;
mod server;
mod session;
mod streams;
mod upstream;

use crate::config::Isolation;
use crate::error::Error;
use crate::sync::Locked;
pub use run::serve;
use serde_json::{json, Value};
use session::{Session, Target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
pub use upstream::runtime_installed;
use upstream::Upstream;

/// How the gateway serves.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    /// none / flag / env: where the token came from (the token itself is never stored).
    pub token_mode: &'static str,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_body: usize,
    pub max_connections: usize,
    /// Client sessions open at once (`MCPCTL_MAX_SESSIONS`).
    pub max_sessions: usize,
    /// Per-session children of one server alive at once (`MCPCTL_MAX_SESSION_CHILDREN`).
    pub max_session_children: usize,
    pub session_idle: Duration,
    /// How long a write to a client connection may block (a client that stops reading).
    pub io_timeout: Duration,
    /// Named tokens from the config (`"tokens"`), each with its own allowlist.
    pub tokens: Vec<crate::tokens::NamedToken>,
    /// How long a client may take to send a complete request head.
    pub head_timeout: Duration,
    /// Bytes of answers all slow clients together may leave unread.
    pub max_buffered: usize,
    /// `--node-id`/`MCPCTL_NODE_ID` (validated): session ids are `<node>.<128-bit hex>`, so
    /// that a load balancer in front of several daemons routes a session to its own.
    pub node_id: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            host: "127.0.0.1".into(),
            port: 7878,
            token: None,
            token_mode: "none",
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body: 16 * 1024 * 1024,
            max_connections: 256,
            max_sessions: 1024,
            max_session_children: 32,
            session_idle: Duration::from_secs(30 * 60),
            io_timeout: Duration::from_secs(30),
            tokens: Vec::new(),
            head_timeout: Duration::from_secs(10),
            max_buffered: 256 * 1024 * 1024,
            node_id: None,
        }
    }
}

/// How many requests in a row must fail to get through before `status` says `failing`.
const FAILING_AFTER: u64 = 3;

pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.parse::<std::net::Ipv4Addr>().map(|a| a.is_loopback()).unwrap_or(false)
}

/// The children of one session alone, by server, each with its place against the cap.
type OwnChildren = HashMap<String, (Arc<Upstream>, session::Slot)>;

/// Shared state of the running gateway.
pub(crate) struct Hub {
    /// Every configured server (shared connections).
    upstreams: Vec<Arc<Upstream>>,
    /// The open sessions, by id.
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    opts: Options,
    project_root: std::path::PathBuf,
    started: SystemTime,
    /// Aggregated tool names, rebuilt when a tool list changes.
    tools: Mutex<names::Table>,
    /// Resource URI → server, learned from aggregated `resources/list` (and `owner_of`).
    resource_owner: Mutex<HashMap<String, String>>,
    /// Open `subscriptions/listen` streams of 2026-07-28 clients.
    listeners: Mutex<Vec<Arc<modern_listen::Listener>>>,
    /// The children of one session alone (`"isolation": "session"`), by session id and
    /// server, each holding its place against `MCPCTL_MAX_SESSION_CHILDREN`.
    own_children: Mutex<HashMap<String, OwnChildren>>,
    /// Session-era twins of `"protocol": "per-era"` servers, by server (see `eras`).
    twins: Mutex<HashMap<String, eras::Twin>>,
    last_sweep: Mutex<Instant>,
}

impl Hub {
    /// A new listen stream, unless `MCPCTL_MAX_SESSIONS` are open (`Err(limit)`).
    fn add_listener(&self, l: Arc<modern_listen::Listener>) -> std::result::Result<(), usize> {
        let mut ls = self.listeners.locked();
        if ls.len() >= self.opts.max_sessions {
            return Err(self.opts.max_sessions);
        }
        ls.push(l);
        Ok(())
    }

    /// A listen stream ended: so do its subscriptions at 2026-07-28 children.
    fn remove_listener(&self, l: &Arc<modern_listen::Listener>) {
        self.listeners.locked().retain(|x| !Arc::ptr_eq(x, l));
        for u in &self.upstreams {
            u.unsubscribe(&l.sid, None);
        }
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name() == name)
    }

    /// The upstream that serves `server` for `session` (its own child with isolation: session).
    /// (A session client of a `"protocol": "per-era"` server gets the child of its era.)
    pub fn upstream_for(self: &Arc<Self>, session: &Arc<Session>, server: &str) -> Option<Arc<Upstream>> {
        let shared = self.upstream(server)?;
        if shared.cfg().isolation != Isolation::Session || shared.cfg().disabled {
            return Some(self.era_upstream(session, shared));
        }
        if session.id().starts_with(modern::STATELESS_PREFIX) {
            // A child per session needs a session: a 2026-07-28 request has none.
            let why = Error::usage(format!(
                "server `{}` runs a child per session (\"isolation\": \"session\"); MCP {} requests have no session",
                server,
                modern::MODERN
            ))
            .hint("connect with a session-based client (initialize), or set \"isolation\": \"shared\"");
            return Some(Upstream::refusing(shared.cfg().clone(), why));
        }
        let mut children = self.own_children.locked();
        // An ended session gets no child (its children were stopped, or are about to be:
        // `remove_session` closes it before it takes this lock).
        if session.is_closed() {
            let why = Error::not_found(format!("the session has ended; server `{}` is not started for it", server));
            return Some(Upstream::refusing(shared.cfg().clone(), why));
        }
        let own = children.entry(session.id().to_string()).or_default();
        if let Some((u, _)) = own.get(server) {
            return Some(u.clone());
        }
        let max = self.opts.max_session_children;
        let Some(slot) = shared.session_slot(max) else {
            let why = Error::unreachable(format!(
                "server `{}` already runs {} per-session children, the limit (MCPCTL_MAX_SESSION_CHILDREN)",
                server, max
            ))
            .hint("end idle sessions (DELETE), or restart the daemon with a larger MCPCTL_MAX_SESSION_CHILDREN");
            return Some(Upstream::refusing(shared.cfg().clone(), why));
        };
        let me: Weak<Hub> = Arc::downgrade(self);
        let mut cfg = shared.cfg().clone();
        if cfg.protocol == crate::config::Protocol::PerEra {
            // Only session clients have children of their own: theirs is the session era.
            cfg.protocol = crate::config::Protocol::Legacy;
        }
        let u = Upstream::new(cfg, self.project_root.clone(), Some(owner(&me)), false);
        u.spawn();
        own.insert(server.to_string(), (u.clone(), slot));
        Some(u)
    }

    pub fn tool_table(&self) -> names::Table {
        self.tools.locked().clone()
    }

    /// The names of `/mcp` from every server's tool list as it is now (a twin's tools
    /// too: a session client may call what only the session era offers).
    pub fn rebuild_table(&self) -> names::Table {
        // Read the lists and store the table under one lock: two servers that become ready
        // at once must not store tables built from each other's stale lists (a lost update
        // left one server's tools out of `/mcp` until its next change).
        let mut table = self.tools.locked();
        let mut lists: Vec<(&str, Vec<Value>)> = Vec::new();
        for u in &self.upstreams {
            let mut list = u.tools().unwrap_or_default();
            let more = self.twin(u.name()).and_then(|t| t.tools()).unwrap_or_default();
            let fresh: Vec<Value> = more.into_iter().filter(|t| !list.iter().any(|o| o["name"] == t["name"])).collect();
            list.extend(fresh);
            lists.push((u.name(), list));
        }
        let pairs =
            lists.iter().flat_map(|(s, tools)| tools.iter().filter_map(move |t| t["name"].as_str().map(|n| (*s, n))));
        *table = names::Table::build(pairs);
        table.clone()
    }

    /// A message of server `server` that belongs to no request: for every session client
    /// that sees it (or, with `ids`, those sessions only: a resource update for its
    /// subscribers) and the listen streams that opted in to it, as `audience` says.
    fn deliver(&self, server: &str, msg: &Value, ids: Option<&[String]>, audience: eras::Audience) {
        if audience != eras::Audience::Listeners {
            let sessions: Vec<Arc<Session>> = {
                let all = self.sessions.locked();
                match ids {
                    Some(ids) => ids.iter().filter_map(|id| all.get(id).cloned()).collect(),
                    None => all.values().cloned().collect(),
                }
            };
            for s in sessions.iter().filter(|s| s.target().covers(server)) {
                s.push(msg);
            }
        }
        if audience != eras::Audience::Sessions {
            modern_listen::deliver(self, server, msg);
        }
    }

    /// Who hears what the first child of `server` says: everyone, unless a twin speaks
    /// to the session clients (its news is then for 2026-07-28 listen streams alone).
    fn audience_of(&self, server: &str) -> eras::Audience {
        if self.twins.locked().contains_key(server) {
            eras::Audience::Listeners
        } else {
            eras::Audience::All
        }
    }

    /// Add a session unless `MCPCTL_MAX_SESSIONS` are open (idle-expired ones are ended
    /// first, so they free their place); `Err(limit)` when full.
    pub fn add_session(&self, s: Arc<Session>) -> std::result::Result<(), usize> {
        let max = self.opts.max_sessions;
        if self.sessions.locked().len() >= max {
            self.expire_sessions_every(Duration::ZERO);
        }
        let mut sessions = self.sessions.locked();
        if sessions.len() >= max {
            return Err(max);
        }
        sessions.insert(s.id().to_string(), s);
        Ok(())
    }

    pub fn remove_session(&self, id: &str) -> bool {
        let Some(s) = self.sessions.locked().remove(id) else { return false };
        s.close();
        let own = self.own_children.locked().remove(id).unwrap_or_default();
        for (_, (u, _slot)) in own {
            u.stop();
        }
        // Its resource subscriptions at 2026-07-28 children end with it.
        for u in &self.upstreams {
            u.unsubscribe(s.id(), None);
        }
        true
    }

    /// End idle sessions, at most once per `every`.
    fn expire_sessions_every(&self, every: Duration) {
        {
            let mut last = self.last_sweep.locked();
            if last.elapsed() < every {
                return;
            }
            *last = Instant::now();
        }
        let idle = self.opts.session_idle;
        let expired: Vec<String> =
            self.sessions.locked().values().filter(|s| s.idle_for() > idle).map(|s| s.id().to_string()).collect();
        for id in expired {
            log::info!("session {}… expired after {:?} idle", &id[..8], idle);
            self.remove_session(&id);
        }
    }

    /// What `mcpctl status` shows: every server's state and counters.
    /// (A ready server whose last FAILING_AFTER requests found no connection is `failing`.)
    pub fn status(&self) -> Value {
        let servers: Vec<Value> = self
            .upstreams
            .iter()
            .map(|u| {
                let st = u.state();
                let (calls, restarts) = u.counts();
                let (failures, last_failure) = u.failures();
                let mut v = json!({
                    "name": u.name(),
                    "command": u.cfg().target(),
                    "disabled": u.cfg().disabled,
                    "operations_count": u.cfg().always_allow.as_ref().map(|a| a.len()).unwrap_or(0),
                    "status": st.word(),
                    "tools_count": u.tools().map(|t| t.len()),
                    "calls": calls,
                    "restarts": restarts,
                    "isolation": if u.cfg().isolation == Isolation::Session { "session" } else { "shared" },
                });
                // Ready, but its last requests all failed to get through: not `ready`.
                if matches!(st, upstream::State::Ready) && failures >= FAILING_AFTER {
                    v["status"] = json!("failing");
                    v["error"] = json!(last_failure);
                }
                if let upstream::State::Restarting { wall, error, .. } = &st {
                    v["next_retry"] = json!(unix(*wall));
                    v["error"] = json!(error);
                }
                if let Some(i) = u.info() {
                    v["server_info"] = i.server_info;
                }
                if let Some(t) = self.twin(u.name()) {
                    v["session_era_child"] =
                        json!({"status": t.state().word(), "restarts": t.counts().1, "error": t.last_error()});
                }
                if !matches!(st, upstream::State::Ready) {
                    if let Some(e) = u.last_error() {
                        v["error"] = json!(e);
                    }
                    let tail = u.stderr_tail();
                    if !tail.is_empty() {
                        v["stderr"] = json!(tail);
                    }
                }
                v
            })
            .collect();
        json!({
            "pid": std::process::id(),
            "project_dir": self.project_root,
            "token_mode": self.opts.token_mode,
            "node_id": self.opts.node_id,
            "started_at": unix(self.started),
            "uptime_secs": self.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
            "sessions": self.sessions.locked().len(),
            "servers": servers,
        })
    }
}

/// The hub as what its upstreams report to.
fn owner(hub: &Weak<Hub>) -> Weak<dyn upstream::Owner> {
    hub.clone()
}

impl upstream::Owner for Hub {
    fn tools_changed(&self, server: &str) {
        self.rebuild_table();
        let msg = crate::jsonrpc::notification("notifications/tools/list_changed", None);
        self.deliver(server, &msg, None, self.audience_of(server))
    }
    fn tell(&self, server: &str, msg: &Value, ids: Option<&[String]>) {
        self.deliver(server, msg, ids, self.audience_of(server))
    }
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Which endpoint a path is.
fn target_of(path: &str) -> Option<Target> {
    let p = path.split('?').next().unwrap_or("");
    let p = p.trim_end_matches('/');
    if p == "/mcp" {
        return Some(Target::All);
    }
    p.strip_prefix("/mcp/").filter(|s| !s.is_empty() && !s.contains('/')).map(|s| Target::One(s.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hub with no servers, for unit tests of request checks.
    pub fn hub(allowed_origins: Vec<String>) -> Hub {
        Hub {
            upstreams: Vec::new(),
            sessions: Mutex::new(HashMap::new()),
            opts: Options { allowed_origins, ..Options::default() },
            project_root: std::path::PathBuf::from("/"),
            started: SystemTime::now(),
            tools: Mutex::new(names::Table::default()),
            resource_owner: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
            own_children: Mutex::new(HashMap::new()),
            twins: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }
}
