//! Connecting to one configured server as an MCP client: start its transport, find out
//! which era of MCP it speaks and negotiate a version, list tools (all pages) and call them.
//!
//! Eras (MCP 2026-07-28, basic/versioning): a *modern* server (2026-07-28) takes the
//! protocol version, client info and capabilities in every request's `_meta` and has no
//! handshake; a *legacy* one (2024-11-05 … 2025-11-25) needs `initialize`. We probe with
//! `server/discover` first: a `DiscoverResult` or a modern error (-32022 naming versions)
//! means modern, anything else (another error, an HTTP error without a modern JSON-RPC
//! error, silence past [`PROBE_DEADLINE`] or [`HTTP_PROBE_DEADLINE`]) means legacy, and we
//! `initialize` (a probe answered later still counts, as long as `initialize` is not).
//! The verdict holds for the connection (a restart probes again).

use crate::config::{ServerConfig, Transport as Kind};
use crate::error::{Error, Result};
use crate::launch;
use crate::peer::{Handler, Peer};
use crate::transport::{http, stdio};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod handler;
mod input;
mod negotiate;

pub use handler::{cli_handler, file_uri, progress, progress_line, PROGRESS_TOKEN};
use negotiate::Negotiation;

/// Legacy protocol versions (negotiated with `initialize`), newest first. The gateway's
/// legacy endpoint offers exactly these.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
pub const LATEST: &str = PROTOCOL_VERSIONS[0];
/// Modern protocol versions (per-request `_meta`, no handshake), newest first.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];
pub const LATEST_MODERN: &str = MODERN_VERSIONS[0];

/// How long a stdio server has to answer the `server/discover` probe before `initialize`
/// is sent as well. A server answers the probe in milliseconds once it runs; only a
/// legacy server that ignores unknown methods stays silent, and it costs exactly this
/// once per start. The probe stays open after it: a slow modern server that answers
/// later is still recognized (its answer wins over its refusal of `initialize`), so a
/// short deadline never misjudges an era. Capped at half the server's `timeout`.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(1);
/// The same over HTTP, where the server already runs: one round trip. A legacy server
/// answers the probe with an HTTP error at once; one that holds a request it does not
/// know costs this, not the whole `timeout`.
pub const HTTP_PROBE_DEADLINE: Duration = Duration::from_millis(500);

/// The most times one request is retried with answers to a modern server's input requests.
pub const MAX_INPUT_ROUNDS: usize = 8;

/// A connected server: initialized (legacy era) or discovered (modern era).
pub struct Session {
    pub peer: Arc<Peer>,
    pub server_info: Value,
    /// The negotiated protocol version (`2026-07-28` for a modern server).
    pub protocol: String,
    pub capabilities: Value,
    pub instructions: Option<String>,
    /// Answered to a modern server's `roots/list` input requests.
    pub root: PathBuf,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.peer.shutdown();
    }
}

/// Sessions whose shutdown waits until the command's answer is printed: a server that does
/// not exit when its input closes takes seconds to stop (stdin close, 2 s, SIGTERM), and
/// the answer should not wait for that.
static AFTER_OUTPUT: std::sync::Mutex<Vec<Session>> = std::sync::Mutex::new(Vec::new());

/// Stop `s` after the command's output is printed ([`shutdown_deferred`]).
pub fn defer_shutdown(s: Session) {
    AFTER_OUTPUT.lock().unwrap_or_else(|p| p.into_inner()).push(s);
}

/// Stop the sessions deferred so far (their children are never left behind: this runs
/// before the process exits).
pub fn shutdown_deferred() {
    let sessions = std::mem::take(&mut *AFTER_OUTPUT.lock().unwrap_or_else(|p| p.into_inner()));
    drop(sessions);
}

/// Everything `connect` needs besides the server's own config.
pub struct Context<'a> {
    pub project_root: &'a Path,
    pub handler: Handler,
    pub client_info: Value,
    /// Declared in `initialize` (legacy era). A modern request declares `{}` unless it sets
    /// its own (see [`Session::call`]).
    pub capabilities: Value,
    pub consent: launch::Consent,
}

pub fn default_client_info() -> Value {
    json!({"name": "mcpctl", "version": env!("CARGO_PKG_VERSION")})
}

/// Start the server's transport and negotiate with it, all within the server's `timeout`.
pub fn connect(server: &ServerConfig, ctx: &Context) -> Result<Session> {
    if server.disabled {
        return Err(Error::config(format!("server `{}` is disabled", server.name))
            .hint("set \"disabled\": false in the config to use it"));
    }
    let started = Instant::now();
    log::debug!("server `{}`: connecting", server.name);
    let peer = Peer::new(&server.name);
    peer.set_handler(ctx.handler.clone());
    match &server.transport {
        Kind::Stdio { command, args, env, cwd } => {
            let launch =
                launch::launch_for(server, command, args, env, cwd.as_deref(), ctx.project_root, &ctx.consent)?;
            stdio::spawn(&peer, &launch)?;
        }
        Kind::Http { url, headers, auth } => {
            http::connect(&peer, url, headers, auth, ctx.project_root, server.timeout)?
        }
    }
    let left = server.timeout.saturating_sub(started.elapsed());
    log::debug!("server `{}`: transport up after {:?}; negotiating", server.name, started.elapsed());
    let over_http = matches!(server.transport, crate::config::Transport::Http { .. });
    let n = Negotiation {
        peer: &peer,
        ctx,
        budget: left,
        deadline: Instant::now() + left,
        over_http,
        protocol: server.protocol,
    };
    match n.run() {
        Ok(s) => {
            log::debug!("server `{}`: speaks {} (after {:?})", server.name, s.protocol, started.elapsed());
            Ok(s)
        }
        Err(e) => {
            let tail = peer.stderr_tail(5);
            peer.shutdown();
            Err(if tail.is_empty() || !e.details.is_empty() { e } else { e.details(tail) })
        }
    }
}

const MAX_PAGES: usize = 1000;

/// Every item of a paginated list method (`tools/list`, `prompts/list`, ...), following `nextCursor`.
pub fn list_all(peer: &Peer, method: &str, key: &str, timeout: Duration) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}));
        let mut page = peer.call(method, params, timeout)?;
        if let Some(Value::Array(a)) = page.get_mut(key).map(Value::take) {
            items.extend(a);
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => {
                if cursor.as_deref() == Some(next) {
                    return Err(Error::protocol(format!(
                        "server `{}` returned the same `{}` cursor twice",
                        peer.name, method
                    )));
                }
                cursor = Some(next.to_string());
            }
            _ => return Ok(items),
        }
    }
    Err(Error::protocol(format!("server `{}`: `{}` has more than {} pages", peer.name, method, MAX_PAGES)))
}

impl Session {
    pub fn tools(&self, timeout: Duration) -> Result<Vec<Value>> {
        list_all(&self.peer, "tools/list", "tools", timeout)
    }

    /// Whether the server speaks the modern era (2026-07-28).
    pub fn is_modern(&self) -> bool {
        self.peer.modern().is_some()
    }

    /// "modern" or "legacy".
    pub fn era(&self) -> &'static str {
        if self.is_modern() {
            "modern"
        } else {
            "legacy"
        }
    }
}
