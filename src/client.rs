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
use crate::peer::{Handler, Inbound, Modern, Outcome, Peer, Pending, Poll};
use crate::transport::{http, stdio};
use crate::{jsonrpc, launch, signals};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The shell client's handler: answer ping and roots/list, refuse sampling and elicitation.
pub fn cli_handler(project_root: &Path) -> Handler {
    let root = project_root.to_path_buf();
    Arc::new(move |peer: &Arc<Peer>, msg: Inbound| match msg {
        Inbound::Request { id, method, .. } => {
            let outcome = match method.as_str() {
                "ping" => Ok(json!({})),
                "roots/list" => Ok(roots(&root)),
                "sampling/createMessage" | "elicitation/create" => Err(jsonrpc::error_object(
                    jsonrpc::METHOD_NOT_FOUND,
                    &format!("mcpctl's shell client does not support {}", method),
                )),
                _ => Err(jsonrpc::error_object(jsonrpc::METHOD_NOT_FOUND, &format!("{} is not supported", method))),
            };
            let _ = peer.respond(id, outcome);
        }
        Inbound::Notification { method, params } => match method.as_str() {
            "notifications/progress" if progress_shown() => show_progress(&params.unwrap_or(Value::Null)),
            "notifications/message" => {
                let p = params.unwrap_or(Value::Null);
                log::info!(
                    "[{}] {}: {}",
                    peer.name,
                    p["level"].as_str().unwrap_or("info"),
                    p.get("data").unwrap_or(&Value::Null)
                );
            }
            _ => log::debug!("[{}] notification {}", peer.name, method),
        },
    })
}

/// Whether `notifications/progress` are shown on stderr ([`progress`]).
static PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether a progress line is open on a terminal (overwritten by the next, ended by [`progress`]).
static PROGRESS_LINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The progress token `call` sends (one request at a time asks for progress).
pub const PROGRESS_TOKEN: &str = "mcpctl-progress";

/// Show (or stop showing) progress notifications on stderr; stopping ends an open
/// terminal line.
pub fn progress(on: bool) {
    use std::sync::atomic::Ordering;
    PROGRESS.store(on, Ordering::SeqCst);
    if !on && PROGRESS_LINE.swap(false, Ordering::SeqCst) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

fn progress_shown() -> bool {
    PROGRESS.load(std::sync::atomic::Ordering::SeqCst)
}

/// `[progress] 3/10 message`: one line, or on a terminal one line rewritten in place.
fn show_progress(p: &Value) {
    let line = progress_line(p);
    let mut err = std::io::stderr().lock();
    if crate::output::is_tty(2) {
        PROGRESS_LINE.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = write!(err, "\r\x1b[K{}", line);
    } else {
        let _ = writeln!(err, "{}", line);
    }
    let _ = err.flush();
}

/// The text of a `notifications/progress`: `[progress] 3/10 message` (`3` without a total,
/// `2.5/10` for fractions; control characters of the server's message are dropped).
pub fn progress_line(p: &Value) -> String {
    let num = |v: &Value| match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{}", (f * 100.0).round() / 100.0),
        None => "?".into(),
    };
    let mut line = format!("[progress] {}", num(&p["progress"]));
    if let Some(t) = p.get("total").filter(|t| t.is_number()) {
        line.push_str(&format!("/{}", num(t)));
    }
    if let Some(m) = p["message"].as_str().filter(|m| !m.trim().is_empty()) {
        let m: String = m.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        line.push(' ');
        line.push_str(m.trim());
    }
    line
}

/// The answer to `roots/list`: the project root.
fn roots(root: &Path) -> Value {
    json!({"roots": [{"uri": file_uri(root), "name": root_name(root)}]})
}

pub fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn root_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into())
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
    let n = Negotiation { peer: &peer, ctx, budget: left, deadline: Instant::now() + left, over_http };
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

/// What one answer to `server/discover` says about the server.
enum Verdict {
    /// It speaks this modern version (the discover result).
    Modern(Value, String),
    /// It is modern and refused the version asked, naming one of ours (another, or — a
    /// server that changed its mind — the same): probe again with it, once.
    Retry(String),
    /// Anything that is not positive evidence of a modern server.
    Legacy,
    Fatal(Error),
}

/// The newest modern version of ours among `supported`.
fn mutual_modern(supported: &[&str]) -> Option<String> {
    MODERN_VERSIONS.iter().find(|v| supported.contains(v)).map(|v| v.to_string())
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// "2026-07-28, 2025-11-25, …": every version we speak.
fn all_versions() -> String {
    MODERN_VERSIONS.iter().chain(PROTOCOL_VERSIONS.iter()).copied().collect::<Vec<_>>().join(", ")
}

/// The one connect-time negotiation of a connection.
struct Negotiation<'a> {
    peer: &'a Arc<Peer>,
    ctx: &'a Context<'a>,
    /// The time it may take, as said in a timeout error.
    budget: Duration,
    deadline: Instant,
    over_http: bool,
}

impl Negotiation<'_> {
    fn name(&self) -> &str {
        &self.peer.name
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn run(&self) -> Result<Session> {
        let mut version = LATEST_MODERN.to_string();
        let mut retried = false;
        loop {
            let probe = self.probe(&version)?;
            let deadline = if self.over_http { HTTP_PROBE_DEADLINE } else { PROBE_DEADLINE };
            let first = deadline.min(self.budget / 2).min(self.left());
            let Some(outcome) = self.wait(&probe, first)? else {
                log::debug!(
                    "server `{}`: no answer to `server/discover` within {:?}; sending `initialize`",
                    self.name(),
                    first
                );
                return self.initialize(Some((probe, version)));
            };
            match self.judge(outcome) {
                Verdict::Modern(result, v) => return Ok(self.modern(result, v)),
                Verdict::Retry(v) if !retried => {
                    log::debug!("server `{}`: wants protocol version {}; probing again", self.name(), v);
                    retried = true;
                    version = v;
                }
                Verdict::Retry(v) if v == version => {
                    return Err(Error::protocol(format!(
                        "server `{}` refused MCP protocol version {} twice, though it names it among its versions",
                        self.name(),
                        v
                    )))
                }
                Verdict::Retry(_) | Verdict::Legacy => return self.initialize(None),
                Verdict::Fatal(e) => return Err(e),
            }
        }
    }

    fn probe(&self, version: &str) -> Result<Pending> {
        let params = json!({"_meta": {
            jsonrpc::META_PROTOCOL_VERSION: version,
            jsonrpc::META_CLIENT_INFO: self.ctx.client_info,
            jsonrpc::META_CLIENT_CAPABILITIES: {},
        }});
        self.peer.start("server/discover", Some(params))
    }

    /// The outcome of `p` if it comes within `d` (Ctrl-C stops the wait).
    fn wait(&self, p: &Pending, d: Duration) -> Result<Option<Outcome>> {
        let until = Instant::now() + d;
        loop {
            let slice = until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match p.poll(slice) {
                Poll::Ready(o) => return Ok(Some(o)),
                Poll::Waiting => {}
                Poll::Closed => return Err(self.closed()),
            }
            if signals::stopping() {
                self.peer.cancel(p.id, "interrupted");
                return Err(Error::interrupted(format!("connecting to server `{}` interrupted", self.name()))
                    .hint("Ctrl-C was pressed"));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
        }
    }

    fn closed(&self) -> Error {
        Error::disconnected(self.peer.closed_reason().unwrap_or_else(|| format!("server `{}` closed", self.name())))
    }

    fn judge(&self, outcome: Outcome) -> Verdict {
        match outcome {
            Ok(result) => match mutual_modern(&strings(&result["supportedVersions"])) {
                Some(v) => Verdict::Modern(result, v),
                // A discover answer naming no modern version of ours advertises the legacy era.
                None => Verdict::Legacy,
            },
            Err(e) if jsonrpc::is_unavailable(&e) => match jsonrpc::refused_status(&e) {
                // An HTTP error without a JSON-RPC error body: a legacy server.
                Some(_) => Verdict::Legacy,
                None => Verdict::Fatal(jsonrpc::failed_during(&e, "`server/discover`")),
            },
            Err(e) if e["code"].as_i64() == Some(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION) => {
                let supported = strings(&e["data"]["supported"]);
                match mutual_modern(&supported) {
                    Some(v) => Verdict::Retry(v),
                    _ if supported.is_empty() || supported.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) => {
                        Verdict::Legacy
                    }
                    _ => Verdict::Fatal(self.no_common_version(&supported)),
                }
            }
            Err(e) if jsonrpc::is_modern_error(&e) => Verdict::Fatal(Error::server(format!(
                "server `{}` refused `server/discover`: {}",
                self.name(),
                jsonrpc::error_text(&e)
            ))),
            Err(e) => {
                log::debug!(
                    "server `{}`: `server/discover` failed ({}): legacy era",
                    self.name(),
                    jsonrpc::error_text(&e)
                );
                Verdict::Legacy
            }
        }
    }

    fn no_common_version(&self, supported: &[&str]) -> Error {
        Error::protocol(format!(
            "server `{}` speaks MCP protocol version{} {}, which mcpctl does not support",
            self.name(),
            if supported.len() == 1 { "" } else { "s" },
            supported.join(", ")
        ))
        .hint(format!("mcpctl speaks {}", all_versions()))
    }

    fn timed_out(&self, what: &str) -> Error {
        Error::timeout(format!(
            "server `{}` did not answer `{}` within {}",
            self.name(),
            what,
            crate::peer::human_duration(self.budget)
        ))
        .hint(if self.over_http {
            "check that the URL is the server's MCP endpoint (often ending in /mcp), or raise its `timeout`"
        } else {
            "check that it is an MCP server speaking on stdio, or raise its `timeout`"
        })
    }

    /// The modern era, from the answer to `server/discover`.
    fn modern(&self, result: Value, version: String) -> Session {
        self.peer.set_modern(Modern {
            version: version.clone(),
            client_info: self.ctx.client_info.clone(),
            capabilities: json!({}),
        });
        let server_info = result
            .get("_meta")
            .and_then(|m| m.get(jsonrpc::META_SERVER_INFO))
            .or_else(|| result.get("serverInfo"))
            .cloned()
            .unwrap_or(Value::Null);
        Session {
            peer: self.peer.clone(),
            server_info,
            protocol: version,
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
            root: self.ctx.project_root.to_path_buf(),
        }
    }

    /// The legacy handshake. `late` is a probe still unanswered (stdio): its answer, if it
    /// comes first and says modern, wins over `initialize`.
    fn initialize(&self, late: Option<(Pending, String)>) -> Result<Session> {
        let params = json!({
            "protocolVersion": LATEST,
            "capabilities": self.ctx.capabilities,
            "clientInfo": self.ctx.client_info,
        });
        let init = self.peer.start("initialize", Some(params))?;
        let mut probe = late;
        // `initialize` failed while the probe may still say modern.
        let mut refused: Option<Value> = None;
        loop {
            if refused.is_none() {
                match init.poll(Duration::from_millis(10)) {
                    Poll::Ready(Ok(result)) => {
                        if let Some((p, _)) = probe.take() {
                            self.peer.forget(p.id);
                        }
                        return self.legacy(result);
                    }
                    Poll::Ready(Err(e)) => {
                        // The server named a modern version of ours: it is modern after all (a
                        // probe that timed out here may have made a slow server settle on it).
                        let supported = strings(&e["data"]["supported"]);
                        let code = e["code"].as_i64();
                        if let (Some(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION), Some(v), None) =
                            (code, mutual_modern(&supported), &probe)
                        {
                            return self.reprobe(v);
                        }
                        if probe.is_none() {
                            return Err(self.refused(&e));
                        }
                        refused = Some(e);
                    }
                    Poll::Waiting => {}
                    Poll::Closed => return Err(self.closed()),
                }
            }
            if let Some((p, _)) = &probe {
                let slice = if refused.is_some() { Duration::from_millis(50) } else { Duration::from_millis(10) };
                match p.poll(slice) {
                    Poll::Ready(outcome) => match self.judge(outcome) {
                        Verdict::Modern(result, v) => {
                            self.peer.forget(init.id);
                            return Ok(self.modern(result, v));
                        }
                        Verdict::Fatal(e) => {
                            self.peer.forget(init.id);
                            return Err(e);
                        }
                        Verdict::Retry(_) | Verdict::Legacy => {
                            probe = None;
                            if let Some(e) = &refused {
                                return Err(self.refused(e));
                            }
                        }
                    },
                    Poll::Waiting => {}
                    Poll::Closed => return Err(self.closed()),
                }
            }
            if signals::stopping() || Instant::now() >= self.deadline {
                let interrupted = signals::stopping();
                let why = if interrupted { "interrupted" } else { "timeout" };
                self.peer.cancel(init.id, why);
                if let Some((p, _)) = &probe {
                    self.peer.cancel(p.id, why);
                }
                if interrupted {
                    return Err(Error::interrupted(format!("connecting to server `{}` interrupted", self.name()))
                        .hint("Ctrl-C was pressed"));
                }
                if let Some(e) = &refused {
                    return Err(self.refused(e));
                }
                return Err(self.timed_out("initialize"));
            }
        }
    }

    /// `initialize` was refused with -32022 naming `version`: probe with it, for the rest of the time.
    fn reprobe(&self, version: String) -> Result<Session> {
        log::debug!("server `{}`: refused `initialize` naming {}; probing again", self.name(), version);
        let probe = self.probe(&version)?;
        let Some(outcome) = self.wait(&probe, self.left())? else {
            self.peer.cancel(probe.id, "timeout");
            return Err(self.timed_out("server/discover"));
        };
        match self.judge(outcome) {
            Verdict::Modern(result, v) => Ok(self.modern(result, v)),
            Verdict::Fatal(e) => Err(e),
            Verdict::Retry(_) | Verdict::Legacy => Err(Error::protocol(format!(
                "server `{}` refused `initialize` for a version it then did not accept in `server/discover`",
                self.name()
            ))),
        }
    }

    fn refused(&self, e: &Value) -> Error {
        if jsonrpc::is_unavailable(e) {
            return jsonrpc::failed_during(e, "initialize");
        }
        let err = Error::server(format!("server `{}` refused to initialize: {}", self.name(), jsonrpc::error_text(e)));
        let supported = strings(&e["data"]["supported"]);
        if supported.is_empty() {
            err
        } else {
            err.hint(format!("it speaks {}; mcpctl speaks {}", supported.join(", "), all_versions()))
        }
    }

    /// The legacy era, from the answer to `initialize`.
    fn legacy(&self, result: Value) -> Result<Session> {
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        if !PROTOCOL_VERSIONS.contains(&version) {
            return Err(Error::protocol(format!(
                "server `{}` speaks MCP protocol version `{}`, which mcpctl does not support",
                self.name(),
                version
            ))
            .hint(format!(
                "mcpctl speaks {} through `initialize`, and {} without it",
                PROTOCOL_VERSIONS.join(", "),
                MODERN_VERSIONS.join(", ")
            )));
        }
        self.peer.notify("notifications/initialized", None)?;
        Ok(Session {
            peer: self.peer.clone(),
            server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
            protocol: version.to_string(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
            root: self.ctx.project_root.to_path_buf(),
        })
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

    /// Send a request and return its final result; a JSON-RPC error becomes an `Error`.
    /// A modern server may answer `input_required` (multi round-trip requests): its input
    /// requests are answered here — `roots/list` with the project root, `elicitation/create`
    /// by asking on the terminal (refused without one), `sampling/createMessage` refused —
    /// and the request is sent again with the answers and the server's `requestState`, at
    /// most [`MAX_INPUT_ROUNDS`] times, each round within `timeout`.
    pub fn call(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Value> {
        if !self.is_modern() {
            return self.peer.call(method, params, timeout);
        }
        let interactive = crate::output::is_tty(0) && crate::output::is_tty(2);
        let mut params = match params {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        // What this loop can answer, declared on this request (the peer's default is none).
        let mut caps = json!({"roots": {}});
        if interactive {
            caps["elicitation"] = json!({"form": {}});
        }
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry(jsonrpc::META_CLIENT_CAPABILITIES).or_insert(caps);
        }
        let mut idle = Duration::from_millis(50);
        for round in 0..=MAX_INPUT_ROUNDS {
            let result = match self.peer.request(method, Some(Value::Object(params.clone())), timeout)? {
                Ok(r) => r,
                Err(e) => return Err(self.refusal(method, &e)),
            };
            match result.get("resultType").and_then(Value::as_str) {
                None | Some("complete") => return Ok(result),
                Some("input_required") => {}
                Some(other) => {
                    return Err(Error::protocol(format!(
                        "server `{}` answered `{}` with a result of unknown type `{}`",
                        self.peer.name, method, other
                    )))
                }
            }
            if round == MAX_INPUT_ROUNDS {
                break;
            }
            params.remove("inputResponses");
            params.remove("requestState");
            match result.get("inputRequests").and_then(Value::as_object).filter(|m| !m.is_empty()) {
                Some(requests) => {
                    idle = Duration::from_millis(50);
                    let answers = self.answer(method, requests, interactive)?;
                    params.insert("inputResponses".into(), Value::Object(answers));
                }
                None => {
                    // Only state to echo: the server is not done yet; back off a little.
                    std::thread::sleep(idle);
                    idle = (idle * 2).min(Duration::from_millis(250));
                }
            }
            if let Some(state) = result.get("requestState") {
                params.insert("requestState".into(), state.clone());
            }
            log::debug!("server `{}`: `{}` needs input; round {} answered", self.peer.name, method, round + 1);
        }
        Err(Error::protocol(format!(
            "server `{}` still asked for input after {} rounds of `{}`",
            self.peer.name, MAX_INPUT_ROUNDS, method
        )))
    }

    /// A modern server's error answer to `method`, worded for the shell: a capability it
    /// needs and we did not declare says what mcpctl cannot do here.
    fn refusal(&self, method: &str, e: &Value) -> Error {
        let needed = e["data"]["requiredCapabilities"].as_object();
        if e["code"].as_i64() != Some(jsonrpc::MISSING_CLIENT_CAPABILITY) || needed.is_none() {
            return crate::peer::call_error(&self.peer.name, method, e);
        }
        let needed = needed.map(|m| m.keys().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
        if needed.contains(&"sampling") {
            return Error::failure(format!(
                "server `{}` needs a language model from the client for `{}` (sampling), which the shell client does not have",
                self.peer.name, method
            ))
            .hint("use a client with a model for this tool");
        }
        if needed.contains(&"elicitation") {
            return Error::failure(format!(
                "server `{}` needs to ask for input during `{}` (elicitation), which mcpctl can only do on a terminal",
                self.peer.name, method
            ))
            .hint("run the command in a terminal to answer it");
        }
        Error::failure(format!(
            "server `{}` needs client capabilities mcpctl does not have for `{}`: {}",
            self.peer.name,
            method,
            needed.join(", ")
        ))
    }

    /// The answers to one round of input requests, by their keys.
    fn answer(&self, method: &str, requests: &Map<String, Value>, interactive: bool) -> Result<Map<String, Value>> {
        let mut answers = Map::new();
        for (key, req) in requests {
            let params = req.get("params").unwrap_or(&Value::Null);
            let answer = match req["method"].as_str().unwrap_or("") {
                "roots/list" => roots(&self.root),
                "elicitation/create" if interactive => elicit(&self.peer.name, params)?,
                "elicitation/create" => {
                    let message = params["message"].as_str().unwrap_or("");
                    return Err(Error::failure(format!(
                        "server `{}` asked for input during `{}` (elicitation: \"{}\"), which mcpctl can only ask for on a terminal",
                        self.peer.name,
                        method,
                        message.trim()
                    ))
                    .hint("run the command in a terminal to answer it"));
                }
                "sampling/createMessage" => {
                    return Err(Error::failure(format!(
                        "server `{}` asked mcpctl to sample a language model during `{}` (sampling/createMessage), which the shell client does not do",
                        self.peer.name, method
                    ))
                    .hint("use a client with a model (through the gateway: `mcpctl start`) for this tool"))
                }
                other => {
                    return Err(Error::protocol(format!(
                        "server `{}` asked for input of a kind mcpctl does not know (`{}`) during `{}`",
                        self.peer.name, other, method
                    )))
                }
            };
            answers.insert(key.clone(), answer);
        }
        Ok(answers)
    }
}

/// Ask the user on the terminal what an `elicitation/create` request wants: an
/// `ElicitResult` (`accept` with the typed values, `decline`, or `cancel` at end of input).
fn elicit(server: &str, params: &Value) -> Result<Value> {
    let mut err = std::io::stderr().lock();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut read = |prompt: &str| -> Option<String> {
        let _ = write!(err, "{}", prompt);
        let _ = err.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    };
    let message = params["message"].as_str().unwrap_or("").trim();
    if params["mode"] == "url" {
        let url = params["url"].as_str().unwrap_or("");
        let q = format!("Server `{}` asks: {}\n  Open {} and finish there. Done? [y/N] ", server, message, url);
        return Ok(match read(&q) {
            None => json!({"action": "cancel"}),
            Some(a) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => json!({"action": "accept"}),
            Some(_) => json!({"action": "decline"}),
        });
    }
    match read(&format!("Server `{}` asks: {}\n  Answer? [y/N] ", server, message)) {
        None => return Ok(json!({"action": "cancel"})),
        Some(a) if !matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            return Ok(json!({"action": "decline"}))
        }
        Some(_) => {}
    }
    let schema = &params["requestedSchema"];
    let required = strings(&schema["required"]);
    let mut content = Map::new();
    let empty = Map::new();
    for (name, field) in schema["properties"].as_object().unwrap_or(&empty) {
        let ty = field["type"].as_str().unwrap_or("string");
        let choices = strings(&field["enum"]);
        let mut prompt = format!("  {}", field["title"].as_str().unwrap_or(name));
        if let Some(d) = field["description"].as_str() {
            prompt.push_str(&format!(" — {}", d));
        }
        if !choices.is_empty() {
            prompt.push_str(&format!(" ({})", choices.join("|")));
        } else if ty != "string" {
            prompt.push_str(&format!(" ({})", ty));
        }
        if let Some(d) = field.get("default") {
            prompt.push_str(&format!(" [{}]", d));
        }
        prompt.push_str(": ");
        let mut tries = 0;
        loop {
            let Some(text) = read(&prompt) else { return Ok(json!({"action": "cancel"})) };
            let text = text.trim();
            if text.is_empty() {
                if let Some(d) = field.get("default") {
                    content.insert(name.clone(), d.clone());
                    break;
                }
                if !required.contains(&name.as_str()) {
                    break;
                }
            } else if let Some(v) = typed_answer(ty, &choices, text) {
                content.insert(name.clone(), v);
                break;
            }
            tries += 1;
            if tries == 3 {
                return Ok(json!({"action": "decline"}));
            }
            let _ = writeln!(
                std::io::stderr(),
                "  (a {} is needed{})",
                ty,
                if choices.is_empty() { "" } else { " from the list" }
            );
        }
    }
    Ok(json!({"action": "accept", "content": content}))
}

/// What was typed, as a value of the field's primitive type (`None`: it is not one).
fn typed_answer(ty: &str, choices: &[&str], text: &str) -> Option<Value> {
    match ty {
        "integer" => text.parse::<i64>().ok().map(Value::from),
        "number" => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        "boolean" => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" => Some(Value::Bool(true)),
            "n" | "no" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ if !choices.is_empty() && !choices.contains(&text) => None,
        _ => Some(Value::String(text.to_string())),
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn progress_lines() {
        let l = |v: Value| progress_line(&v);
        assert_eq!(l(json!({"progress": 3, "total": 10, "message": "copying"})), "[progress] 3/10 copying");
        assert_eq!(l(json!({"progress": 3})), "[progress] 3");
        assert_eq!(l(json!({"progress": 0.255, "total": 1.0})), "[progress] 0.26/1");
        assert_eq!(l(json!({"progress": 1, "message": "a\x1b[2Jb\n"})), "[progress] 1 a [2Jb");
    }
}
