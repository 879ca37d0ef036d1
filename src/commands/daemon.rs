//! The gateway commands: `start` (daemonized or `--foreground`), `stop`, `logs`, and the
//! daemon part of `status`.

use super::Ctx;
use crate::cli::StartOpts;
use crate::daemon::{self, Found, State};
use crate::error::{Error, Result, Status};
use crate::gateway::{self, Options};
use crate::output::{Failure, Report};
use crate::settings;
use crate::signals;
use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Outcome = std::result::Result<Report, Failure>;

/// Gateway options from the command line and environment; refuses an open bind without a token.
fn options(o: &StartOpts) -> Result<Options> {
    let (token, mode) = match (&o.token, daemon::env_token()) {
        (Some(t), _) => (Some(t.clone()), "flag"),
        (None, Some(t)) => (Some(t), if settings::token_from_flag() { "flag" } else { "env" }),
        (None, None) => (None, "none"),
    };
    let host = o.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    if !gateway::is_loopback(&host) && token.is_none() {
        return Err(Error::usage(format!("Binding to {} requires --token or MCPCTL_TOKEN", host))
            .hint("without a token only loopback addresses are served"));
    }
    if token.as_deref().map(|t| t.len() < 16).unwrap_or(false) {
        log::warn!("the token is shorter than 16 characters; use a long random one");
    }
    let mut opts = Options { host, port: o.port.unwrap_or(7878), token, token_mode: mode, ..Options::default() };
    opts.allowed_hosts = o.allowed_hosts.clone();
    opts.allowed_origins = o.allowed_origins.clone();
    if let Some(v) = settings::MAX_BODY.usize()? {
        opts.max_body = v;
    }
    if let Some(v) = settings::MAX_CONNECTIONS.usize()? {
        opts.max_connections = v;
    }
    if let Some(v) = settings::IO_TIMEOUT.seconds()? {
        opts.io_timeout = v;
    }
    if let Some(v) = settings::MAX_SESSIONS.usize()? {
        opts.max_sessions = v;
    }
    if let Some(v) = settings::MAX_SESSION_CHILDREN.usize()? {
        opts.max_session_children = v;
    }
    if let Some(v) = settings::HEAD_TIMEOUT.seconds()? {
        opts.head_timeout = v;
    }
    if let Some(v) = settings::MAX_BUFFERED.usize()? {
        opts.max_buffered = v;
    }
    if let Some(v) = settings::SESSION_IDLE.seconds()? {
        opts.session_idle = v;
    }
    opts.node_id = node_id(o.node_id.clone(), settings::node_id())?;
    Ok(opts)
}

/// The daemon's node id (`--node-id`, else `MCPCTL_NODE_ID`; unset or empty: none): 1 to 32
/// of `A-Z a-z 0-9 _ -`, so that it is safe in a session id, a header and an nginx `map`.
fn node_id(flag: Option<String>, env: Option<String>) -> Result<Option<String>> {
    let (what, v) = match (flag, env.filter(|v| !v.is_empty())) {
        (Some(f), _) => ("--node-id", f),
        (None, Some(e)) => ("MCPCTL_NODE_ID", e),
        (None, None) => return Ok(None),
    };
    let ok = (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::config(format!(
            "{} `{}` is not a node id: 1 to 32 letters, digits, `_` or `-`",
            what,
            crate::logsafe::safe(&v)
        ))
        .hint("for example `node-1` (see docs/scale-out.md)"));
    }
    Ok(Some(v))
}

/// The project folder whose `.mcpctl/` holds the daemon's state, found without reading the
/// config (so `stop`, `status` and `logs` work while it is broken or gone): where the config
/// is found, else `--project-root`/`MCPCTL_PROJECT_DIR`, else the nearest folder up from
/// here with a `.mcpctl/daemon.json`.
pub fn state_root(ctx: &Ctx) -> Result<std::path::PathBuf> {
    let loc = crate::config::Locate { project_root: ctx.g.project_root.clone(), config: ctx.g.config.clone() }
        .with_env(settings::lookup)?;
    match crate::config::locate(&loc, &ctx.cwd) {
        Ok((root, _)) => Ok(root),
        Err(e) => {
            if let Some(r) = loc.project_root.as_ref().map(|r| ctx.cwd.join(r)).filter(|r| r.is_dir()) {
                return Ok(r);
            }
            ctx.cwd.ancestors().find(|d| daemon::state_path(d).is_file()).map(|d| d.to_path_buf()).ok_or(e)
        }
    }
}

pub fn start(ctx: &Ctx, o: &StartOpts) -> Outcome {
    let cfg = ctx.load_config()?;
    let opts = options(o)?;
    // Named tokens: their variables and files must be there before the daemon starts.
    crate::tokens::resolve(&cfg.tokens, &cfg.project_root)?;
    let root = cfg.project_root.clone();
    if ctx.g.dry_run {
        return Ok(start_dry_run(&cfg, &opts));
    }
    if o.foreground {
        return foreground(&cfg, opts).map_err(Failure::from);
    }
    match daemon::find(&root) {
        Found::Running(s) => return already_running(&s, &opts),
        Found::Stale(_) => daemon::remove_state(&root),
        Found::None => {}
    }
    daemon::ensure_dirs(&root)?;
    let log = daemon::log_path(&root);
    let out = daemon::open_private(&log, true)?;
    let err = out.try_clone().map_err(|e| Error::failure(format!("cannot open the log: {}", e)))?;
    let exe = std::env::current_exe().map_err(|e| Error::failure(format!("cannot find the mcpctl binary: {}", e)))?;
    let mut cmd = Command::new(exe);
    cmd.arg("start")
        .arg("--foreground")
        .arg("--project-root")
        .arg(&root)
        .arg("--config")
        .arg(&cfg.path)
        .arg("--host")
        .arg(&opts.host)
        .arg("--port")
        .arg(opts.port.to_string());
    for h in &opts.allowed_hosts {
        cmd.arg("--allowed-host").arg(h);
    }
    for h in &opts.allowed_origins {
        cmd.arg("--allowed-origin").arg(h);
    }
    if let Some(n) = &opts.node_id {
        cmd.arg("--node-id").arg(n);
    }
    // The token travels in the environment, never in argv.
    cmd.env_remove(settings::TOKEN).env_remove(settings::TOKEN_MODE);
    if let Some(t) = &opts.token {
        cmd.env(settings::TOKEN, t).env(settings::TOKEN_MODE, opts.token_mode);
    }
    if ctx.g.verbose {
        cmd.env(settings::LOG, "debug");
    }
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).current_dir(&root);
    // Detached from our terminal and session.
    crate::sys::spawn_in_new_session(&mut cmd);
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut child = cmd.spawn().map_err(|e| Error::failure(format!("cannot start the daemon: {}", e)))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = daemon::read_state(&root) {
            if s.pid == child.id() && daemon::healthy(&s) {
                // Reap it later from init, not us: we exit right away.
                return Ok(started_report(&s, &cfg, "Started"));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost a race with another `start`? Then that daemon is the answer.
            std::thread::sleep(Duration::from_millis(300));
            if let Found::Running(s) = daemon::find(&root) {
                if daemon::healthy(&s) {
                    return already_running(&s, &opts);
                }
            }
            let lines = new_log_lines(&log, log_start);
            let last = lines
                .iter()
                .rev()
                .find(|l| l.contains("error") || l.contains("✗"))
                .cloned()
                .or_else(|| lines.last().cloned());
            return Err(Error::failure(format!(
                "the daemon exited during start ({}): {}",
                crate::transport::stdio::describe(status),
                last.unwrap_or_else(|| "no log output".into())
            ))
            .hint(format!("see {}", log.display()))
            .into());
        }
        if Instant::now() > deadline {
            return Err(Error::timeout("the daemon did not answer its health check within 30s")
                .hint(format!("see {}", log.display()))
                .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn new_log_lines(path: &std::path::Path, from: u64) -> Vec<String> {
    let mut s = String::new();
    if let Ok(mut f) = daemon::open_read(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_string(&mut s);
    }
    s.lines().map(|l| l.to_string()).collect()
}

fn already_running(s: &State, opts: &Options) -> Outcome {
    let same = daemon::connect_host(&s.host) == daemon::connect_host(&opts.host)
        && s.port == opts.port
        && s.token_mode == opts.token_mode;
    if same {
        let mut r = Report::new(
            Status::Success,
            format!("mcpctl daemon is already running at {}/mcp (pid {})", daemon::base_url(s), s.pid),
        );
        r.fields.insert("daemon".into(), state_json(s, "running"));
        Ok(r)
    } else {
        Err(Error::failure(format!(
            "mcpctl daemon is already running with other settings ({}:{}, token {})",
            s.host, s.port, s.token_mode
        ))
        .hint("run `mcpctl stop` first")
        .into())
    }
}

fn started_report(s: &State, cfg: &crate::config::Config, verb: &str) -> Report {
    let mut r =
        Report::new(Status::Success, format!("{} mcpctl daemon at {}/mcp (pid {})", verb, daemon::base_url(s), s.pid));
    r.fields.insert("daemon".into(), state_json(s, "running"));
    r.fields.insert("url".into(), json!(format!("{}/mcp", daemon::base_url(s))));
    let mut body = String::new();
    for sv in &cfg.servers {
        let _ = writeln!(
            body,
            "  • {}: {}/mcp/{}{}",
            sv.name,
            daemon::base_url(s),
            sv.name,
            if sv.disabled { " (disabled)" } else { "" }
        );
    }
    let uv: Vec<&str> = cfg
        .servers
        .iter()
        .filter(|sv| matches!(&sv.transport, crate::config::Transport::Stdio { command, .. } if crate::runtime::uses_runtime(command, sv.runtime.as_deref())))
        .map(|sv| sv.name.as_str())
        .collect();
    if !uv.is_empty() {
        let installed = crate::gateway::runtime_installed();
        let _ = writeln!(
            body,
            "  Managed uv runtime ({}): {}",
            uv.join(", "),
            if installed { "installed" } else { "not installed yet; installed on first use" }
        );
        r.fields.insert("runtime_servers".into(), json!(uv));
        r.fields.insert("runtime_installed".into(), json!(installed));
    }
    let node: Vec<&str> = cfg
        .servers
        .iter()
        .filter(|sv| matches!(&sv.transport, crate::config::Transport::Stdio { command, .. } if crate::runtime::node::uses_node(command, sv.runtime.as_deref())))
        .map(|sv| sv.name.as_str())
        .collect();
    if !node.is_empty() {
        let installed = crate::runtime::node::installed_from_env();
        let _ = writeln!(
            body,
            "  Managed Node runtime ({}): {}",
            node.join(", "),
            if installed { "installed" } else { "not installed yet; installed on first use" }
        );
        r.fields.insert("node_runtime_servers".into(), json!(node));
        r.fields.insert("node_runtime_installed".into(), json!(installed));
    }
    let _ = write!(body, "  Logs: {}", s.log_path.display());
    r.body = body;
    r
}

use std::fmt::Write as _;

fn state_json(s: &State, status: &str) -> Value {
    json!({
        "status": status,
        "url": format!("{}/mcp", daemon::base_url(s)),
        "pid": s.pid,
        "host": s.host,
        "port": s.port,
        "token_mode": s.token_mode,
        "project_dir": s.project_dir,
        "started_at": s.started_at,
        "log_path": s.log_path,
        "version": s.version,
    })
}

/// Serve in this process until SIGINT/SIGTERM.
fn foreground(cfg: &crate::config::Config, opts: Options) -> Result<Report> {
    let root = cfg.project_root.clone();
    let Some(_lock) = daemon::try_lock(&root)? else {
        let who = daemon::read_state(&root).map(|s| format!(" (pid {})", s.pid)).unwrap_or_default();
        return Err(Error::failure(format!("another mcpctl daemon is running for {}{}", root.display(), who))
            .hint("run `mcpctl stop` first, or `mcpctl status` to see it"));
    };
    daemon::remove_state(&root);
    let host = opts.host.clone();
    let token_mode = opts.token_mode.to_string();
    let log_path = daemon::log_path(&root);
    let cfg_path = cfg.path.clone();
    let started = gateway::unix(std::time::SystemTime::now());
    // Servers on the managed runtime start on first use when it is not installed yet:
    // the daemon never downloads at boot.
    let installed = crate::gateway::runtime_installed();
    let lazy = |s: &crate::config::ServerConfig| {
        !installed
            && matches!(&s.transport, crate::config::Transport::Stdio { command, .. }
                if crate::runtime::uses_runtime(command, s.runtime.as_deref()))
    };
    let result = gateway::serve(cfg, opts, &lazy, &mut |addr| {
        let s = State {
            pid: std::process::id(),
            host: host.clone(),
            port: addr.port(),
            url: format!("http://{}:{}/mcp", daemon::connect_host(&host), addr.port()),
            token_mode: token_mode.clone(),
            project_dir: root.clone(),
            config: cfg_path.clone(),
            started_at: started,
            log_path: log_path.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            servers: cfg.servers.iter().map(|s| s.name.clone()).collect(),
            pid_start: daemon::start_time(std::process::id()),
        };
        daemon::write_state(&root, &s)?;
        eprintln!("mcpctl daemon listening on {} (pid {})", s.url, s.pid);
        Ok(())
    });
    daemon::remove_state(&root);
    result?;
    Ok(Report::new(Status::Success, "mcpctl daemon stopped"))
}

/// What `start` would do: nothing is started, no file is written.
fn start_dry_run(cfg: &crate::config::Config, opts: &Options) -> Report {
    if let Found::Running(s) = daemon::find(&cfg.project_root) {
        return Report::new(
            Status::DryRun,
            format!(
                "Dry run: mcpctl daemon is already running at {}/mcp (pid {}); nothing to start",
                daemon::base_url(&s),
                s.pid
            ),
        )
        .field("daemon", state_json(&s, "running"));
    }
    let url = format!("http://{}:{}/mcp", daemon::connect_host(&opts.host), opts.port);
    let mut r = Report::new(
        Status::DryRun,
        format!(
            "Dry run: would start the mcpctl daemon at {} (token {}) for {} server(s)",
            url,
            opts.token_mode,
            cfg.servers.len()
        ),
    )
    .field("url", json!(url))
    .field("config", json!(cfg.path));
    for sv in &cfg.servers {
        let _ = writeln!(r.body, "  • {}: {}{}", sv.name, sv.target(), if sv.disabled { " (disabled)" } else { "" });
    }
    r
}

pub fn stop(ctx: &Ctx) -> Outcome {
    let root = state_root(ctx)?;
    if ctx.g.dry_run {
        return Ok(match daemon::find(&root) {
            Found::Running(s) => {
                Report::new(Status::DryRun, format!("Dry run: would stop the mcpctl daemon (pid {})", s.pid))
                    .field("was_running", json!(true))
            }
            _ => Report::new(Status::DryRun, "Dry run: mcpctl daemon is not running; nothing to stop")
                .field("was_running", json!(false)),
        });
    }
    let s = match daemon::find(&root) {
        Found::None => {
            return Ok(Report::new(Status::Success, "mcpctl daemon is not running").field("was_running", json!(false)))
        }
        Found::Stale(_) => {
            daemon::remove_state(&root);
            return Ok(Report::new(Status::Success, "mcpctl daemon is not running (removed a stale state file)")
                .field("was_running", json!(false)));
        }
        Found::Running(s) => s,
    };
    let _ = crate::sys::signal_process(s.pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon::daemon_alive(&s) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut how = "stopped";
    if daemon::daemon_alive(&s) {
        let _ = crate::sys::signal_process(s.pid, libc::SIGKILL);
        how = "killed after 10s";
        let until = Instant::now() + Duration::from_secs(2);
        while daemon::daemon_alive(&s) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    daemon::remove_state(&root);
    Ok(Report::new(Status::Success, format!("mcpctl daemon (pid {}) {}", s.pid, how)).field("was_running", json!(true)))
}

/// The daemon's state for `status`/`list`: (json, text lines, live server states).
pub fn daemon_view(root: &std::path::Path) -> (Value, String, Option<Value>) {
    match daemon::find(root) {
        Found::None => (json!({"status": "stopped"}), "Daemon: stopped".into(), None),
        Found::Stale(s) => (
            state_json(&s, "stale"),
            format!("Daemon: stale (pid {} is gone or is no longer the daemon; `mcpctl start` will replace it)", s.pid),
            None,
        ),
        Found::Running(s) => match daemon::fetch_status(&s) {
            Ok(st) => {
                let mut v = state_json(&s, "running");
                v["uptime_secs"] = st["uptime_secs"].clone();
                v["sessions"] = st["sessions"].clone();
                let text = format!(
                    "Daemon: running at {}/mcp (pid {}, token {}, up {}s)\nProject: {}",
                    daemon::base_url(&s),
                    s.pid,
                    s.token_mode,
                    st["uptime_secs"],
                    s.project_dir.display()
                );
                (v, text, Some(st["servers"].clone()))
            }
            Err(e) if !daemon::healthy(&s) => (
                state_json(&s, "stale"),
                format!("Daemon: stale (pid {} does not answer: {})", s.pid, e.one_line()),
                None,
            ),
            Err(e) => {
                let mut v = state_json(&s, "running");
                v["error"] = json!(e.one_line());
                (v, format!("Daemon: running at {}/mcp (pid {}); {}", daemon::base_url(&s), s.pid, e.one_line()), None)
            }
        },
    }
}

/// `status` when the config cannot be loaded: a running daemon is still shown (with its
/// servers as it serves them and the config's error); otherwise the config's error.
pub fn status_without_config(ctx: &Ctx, failure: Failure) -> Outcome {
    let Ok(root) = state_root(ctx) else { return Err(failure) };
    if !matches!(daemon::find(&root), Found::Running(_)) {
        return Err(failure);
    }
    let (view, text, live) = daemon_view(&root);
    let problem = failure.error.one_line();
    let mut r = Report::new(Status::Success, "Status of the mcpctl daemon (the config cannot be loaded)")
        .field("daemon", view)
        .field("config_error", json!(problem))
        .field("servers", live.clone().unwrap_or(json!([])));
    let mut body = format!(
        "{}
Config: {}
",
        text, problem
    );
    for s in live.as_ref().and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let _ = writeln!(body, "  • {}: {}", s["name"].as_str().unwrap_or("?"), s["status"].as_str().unwrap_or("?"));
    }
    r.body = body;
    Ok(r)
}

pub fn logs(ctx: &Ctx, follow: bool) -> Outcome {
    let path = daemon::log_path(&state_root(ctx)?);
    let mut f = match daemon::open_read(&path) {
        Ok(f) => f,
        Err(_) => {
            return Err(Error::failure(format!("no daemon log at {}", path.display()))
                .hint("start the daemon with `mcpctl start`")
                .into())
        }
    };
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    if ctx.g.json_output && !follow {
        return Ok(Report::new(Status::Success, format!("Log of the mcpctl daemon ({})", path.display()))
            .field("log_path", json!(path))
            .field("log", json!(String::from_utf8_lossy(&buf))));
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(crate::logsafe::printable(&buf).as_bytes()).is_err() {
        return Ok(quiet());
    }
    let _ = out.flush();
    if !follow {
        return Ok(quiet());
    }
    // Follow natively: minimal images have no `tail`.
    let mut pos = f.stream_position().unwrap_or(0);
    while !signals::stopping() {
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Truncated or replaced: start over.
            f = match daemon::open_read(&path) {
                Ok(f) => f,
                Err(_) => continue,
            };
            pos = 0;
        }
        buf.clear();
        let _ = f.seek(SeekFrom::Start(pos));
        let _ = f.read_to_end(&mut buf);
        pos += buf.len() as u64;
        let text = crate::logsafe::printable(&buf);
        if !buf.is_empty() && (out.write_all(text.as_bytes()).is_err() || out.flush().is_err()) {
            break;
        }
    }
    Ok(quiet())
}

/// A report whose output was already written.
fn quiet() -> Report {
    Report { raw: Some(String::new()), ..Report::new(Status::Success, "log printed") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(node_id(None, None).unwrap(), None);
        assert_eq!(node_id(None, s("")).unwrap(), None);
        assert_eq!(node_id(None, s("b_2")).unwrap(), s("b_2"));
        // The flag wins over the environment.
        assert_eq!(node_id(s("node-a"), s("b")).unwrap(), s("node-a"));
        assert_eq!(node_id(s(&"x".repeat(32)), None).unwrap(), s(&"x".repeat(32)));
        for bad in ["", "a.b", "a b", "é", "a/b", "a\nb", &"x".repeat(33)] {
            let e = node_id(s(bad), None).unwrap_err().one_line();
            assert!(e.contains("is not a node id"), "{bad:?}: {e}");
        }
        let e = node_id(None, s("a;b")).unwrap_err().one_line();
        assert!(e.starts_with("MCPCTL_NODE_ID `a;b` is not a node id"), "{e}");
    }
}
