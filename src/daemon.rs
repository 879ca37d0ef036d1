//! The daemon's footprint in a project: `.mcpctl/` (0700) holding `daemon.json` (0600,
//! written once the port is bound, never holding the token), `daemon.lock` (one daemon per
//! project) and `logs/daemon.log`; plus the small HTTP client the CLI uses to ask it things.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub pid: u32,
    pub host: String,
    pub port: u16,
    pub url: String,
    /// none / flag / env — never the token.
    pub token_mode: String,
    pub project_dir: PathBuf,
    pub config: PathBuf,
    pub started_at: u64,
    pub log_path: PathBuf,
    pub version: String,
    /// The servers it serves (its config as it was at start).
    #[serde(default)]
    pub servers: Vec<String>,
    /// When its process started (clock ticks since boot, `/proc/<pid>/stat`): a pid the
    /// system has since given to another process does not match, so it is never signalled.
    #[serde(default)]
    pub pid_start: Option<u64>,
}

pub fn dir(root: &Path) -> PathBuf {
    root.join(".mcpctl")
}
pub fn state_path(root: &Path) -> PathBuf {
    dir(root).join("daemon.json")
}
pub fn log_path(root: &Path) -> PathBuf {
    dir(root).join("logs").join("daemon.log")
}

/// Create `.mcpctl/` and `.mcpctl/logs/` with mode 0700 when missing; refuse either when it
/// is a symbolic link, not a folder, or owned by another user (then files written there
/// could land elsewhere or be read by someone else).
pub fn ensure_dirs(root: &Path) -> Result<()> {
    for d in [dir(root), dir(root).join("logs")] {
        match fs::symlink_metadata(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {}
                // Another mcpctl (a second `start`) made it just now: check what is there.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let m = fs::symlink_metadata(&d)
                        .map_err(|e| Error::failure(format!("cannot read {}: {}", d.display(), e)))?;
                    check_dir(&d, &m)?;
                }
                Err(e) => return Err(Error::failure(format!("cannot create {}: {}", d.display(), e))),
            },
            Err(e) => return Err(Error::failure(format!("cannot read {}: {}", d.display(), e))),
            Ok(m) => check_dir(&d, &m)?,
        }
        let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o700));
    }
    // The state is nobody's to commit (the config beside it is): a `.gitignore` of its own,
    // written once, never through a link, never over the user's.
    let ignore = dir(root).join(".gitignore");
    if let Ok(mut f) = nofollow().write(true).create_new(true).mode(0o644).open(&ignore) {
        let _ = f.write_all(
            b"# mcpctl's own state (the daemon's state file, lock and logs); config.json is yours\ndaemon.*\nlogs/\n",
        );
    }
    Ok(())
}

fn check_dir(d: &Path, m: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if m.file_type().is_symlink() {
        return Err(Error::failure(format!(
            "{} is a symbolic link; mcpctl keeps its state only in a real folder",
            d.display()
        ))
        .hint(format!("remove the link (`rm {}`) and run the command again", d.display())));
    }
    if !m.is_dir() {
        return Err(Error::failure(format!("{} is not a folder", d.display()))
            .hint(format!("move it away (`mv {0} {0}.old`) and run the command again", d.display())));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(Error::failure(format!(
            "{} belongs to another user (uid {}, you are {})",
            d.display(),
            m.uid(),
            me
        ))
        .hint(format!("remove it or `chown` it to yourself (`sudo chown -R {} {}`)", me, d.display())));
    }
    Ok(())
}

/// Open options that never follow a symbolic link at the last component and create 0600.
fn nofollow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o
}

fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::failure(format!("{} is a symbolic link; mcpctl does not write through links", path.display()))
            .hint(format!("remove it (`rm {}`) and run the command again", path.display()));
    }
    Error::failure(format!("cannot open {}: {}", path.display(), e))
}

/// Open (creating 0600) a state, log or lock file of ours: never through a symbolic link,
/// never a file with other hard links; its mode is set on the open file, not by path.
pub fn open_private(path: &Path, append: bool) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    let mut o = nofollow();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    let f = o.open(path).map_err(|e| open_error(path, e))?;
    let meta = f.metadata().map_err(|e| open_error(path, e))?;
    if !meta.is_file() || meta.nlink() > 1 {
        return Err(Error::failure(format!(
            "{} is not a plain file of its own (a device or a hard link)",
            path.display()
        ))
        .hint(format!("remove it (`rm {}`) and run the command again", path.display())));
    }
    let _ = f.set_permissions(fs::Permissions::from_mode(0o600));
    Ok(f)
}

/// Write the state atomically: a new temporary file (O_EXCL, no link followed) renamed over
/// `daemon.json` (a link planted there is replaced, its target untouched).
pub fn write_state(root: &Path, s: &State) -> Result<()> {
    ensure_dirs(root)?;
    let path = state_path(root);
    let tmp = dir(root).join(format!("daemon.json.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = nofollow().write(true).create_new(true).open(&tmp).map_err(|e| open_error(&tmp, e))?;
    let written = f
        .write_all(serde_json::to_string_pretty(s).expect("serializes").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::failure(format!("cannot write {}: {}", tmp.display(), e)))
        .and_then(|_| {
            fs::rename(&tmp, &path).map_err(|e| Error::failure(format!("cannot write {}: {}", path.display(), e)))
        });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The state file, when it is a plain file (not a link) of a sane size that parses.
pub fn read_state(root: &Path) -> Option<State> {
    use std::io::Read;
    let f = nofollow().read(true).open(state_path(root)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Open a file of ours for reading, never through a symbolic link (the log for `mcpctl logs`).
pub fn open_read(path: &Path) -> std::io::Result<File> {
    nofollow().read(true).open(path)
}

pub fn remove_state(root: &Path) {
    let _ = fs::remove_file(state_path(root));
}

/// The daemon's token as this process knows it (`MCPCTL_TOKEN`, when set and not empty).
pub fn env_token() -> Option<String> {
    std::env::var("MCPCTL_TOKEN").ok().filter(|t| !t.is_empty())
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the state's daemon is still the process behind its pid (alive, and not a
/// later process that was given the same pid).
pub fn daemon_alive(s: &State) -> bool {
    pid_alive(s.pid) && (s.pid_start.is_none() || start_time(s.pid) == s.pid_start)
}

pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid as libc::pid_t, 0) == 0 } && !zombie(pid)
}

/// A dead process not reaped yet (a killed daemon's parent is init, which in a container
/// may reap late or never): signal 0 still reaches it, but it is gone.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(false)
}

/// Holds `.mcpctl/daemon.lock` for as long as it lives.
pub struct Lock(#[allow(dead_code)] File);

/// Take the project's daemon lock without waiting; `None` when another process holds it.
pub fn try_lock(root: &Path) -> Result<Option<Lock>> {
    ensure_dirs(root)?;
    let f = open_private(&dir(root).join("daemon.lock"), true)?;
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok(if r == 0 { Some(Lock(f)) } else { None })
}

/// Where a running daemon is: its state when the pid lives.
pub enum Found {
    None,
    Stale(State),
    Running(State),
}

pub fn find(root: &Path) -> Found {
    match read_state(root) {
        None => Found::None,
        Some(s) if daemon_alive(&s) => Found::Running(s),
        Some(s) => Found::Stale(s),
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    // Our own daemon on loopback: never through a proxy, whatever *_PROXY says.
    crate::net::loopback_agent(ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)))
}

/// The host to connect to for a bound host (a wildcard bind is reached on loopback).
pub fn connect_host(host: &str) -> String {
    match host {
        "0.0.0.0" => "127.0.0.1".into(),
        "::" | "[::]" => "[::1]".into(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{}]", h),
        h => h.into(),
    }
}

pub fn base_url(s: &State) -> String {
    format!("http://{}:{}", connect_host(&s.host), s.port)
}

/// How a [`post`] to the daemon ended.
pub enum Posted {
    Answer(u16, Vec<u8>),
    /// The request did not reach the daemon whole (no connection, or the write failed):
    /// nothing ran, so asking another way is safe.
    Failed(String),
    /// The request was sent but no whole answer came back: what it asked may have run.
    Lost(String),
    TimedOut,
    Interrupted,
}

/// POST to our own daemon on loopback: one connection, the request in one write, the answer
/// read on this thread (checking for Ctrl-C every 50 ms), until `deadline`. Lean on purpose:
/// a shell call through the daemon should cost little more than starting the process.
pub fn post(base: &str, path: &str, headers: &[(String, String)], body: &[u8], deadline: std::time::Instant) -> Posted {
    use std::io::Read;
    let authority = base.strip_prefix("http://").unwrap_or(base);
    let mut stream = match std::net::TcpStream::connect(authority) {
        Ok(s) => s,
        Err(e) => return Posted::Failed(format!("cannot connect to {}: {}", authority, e)),
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        path,
        authority,
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(format!("{}: {}\r\n", k, v).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    if let Err(e) = stream.write_all(&req) {
        return Posted::Failed(format!("cannot send to the daemon: {}", e));
    }
    let mut got = Vec::with_capacity(4096);
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(r) = parse_answer(&got) {
            return r;
        }
        match stream.read(&mut buf) {
            Ok(0) => return parse_answer(&got).unwrap_or(Posted::Lost("the daemon closed the connection".into())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if crate::signals::stopping() {
                    return Posted::Interrupted;
                }
                if std::time::Instant::now() > deadline {
                    return Posted::TimedOut;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Posted::Lost(format!("reading the daemon's answer: {}", e)),
        }
    }
}

/// A whole answer (status and Content-Length body) once `got` holds it.
fn parse_answer(got: &[u8]) -> Option<Posted> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&got[..end]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
    let len = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (got.len() >= end + len).then(|| Posted::Answer(status, got[end..end + len].to_vec()))
}

/// GET /health answers ok.
pub fn healthy(s: &State) -> bool {
    agent(Duration::from_secs(2))
        .get(&format!("{}/health", base_url(s)))
        .call()
        .map(|r| r.status().as_u16() == 200)
        .unwrap_or(false)
}

/// GET /status with the token from the environment, if any.
pub fn fetch_status(s: &State) -> Result<Value> {
    let mut req = agent(Duration::from_secs(5)).get(&format!("{}/status", base_url(s)));
    if let Some(t) = env_token() {
        req = req.header("Authorization", &format!("Bearer {}", t));
    }
    let resp =
        req.call().map_err(|e| Error::unreachable(format!("cannot reach the daemon at {}: {}", base_url(s), e)))?;
    match resp.status().as_u16() {
        200 => {
            let text = resp.into_body().read_to_string().unwrap_or_default();
            serde_json::from_str(&text).map_err(|e| Error::protocol(format!("the daemon's status is not JSON: {}", e)))
        }
        401 => Err(Error::forbidden("the daemon requires a token").hint("set MCPCTL_TOKEN to the daemon's token")),
        c => Err(Error::server(format!("the daemon answered HTTP {} for its status", c)).with_http_status(c)),
    }
}
