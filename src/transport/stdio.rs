//! A child process speaking newline-delimited JSON-RPC on stdin/stdout: spawn it in its
//! own process group, read stdout on one thread (feeding `Peer::dispatch`), drain stderr
//! on another into a ring of recent lines, and shut it down in stages
//! (close stdin, 2 s, SIGTERM, 2 s, SIGKILL) so no zombie or orphan is left.

use crate::error::{Error, Result};
use crate::peer::{Peer, Transport};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start a child.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Shown in errors (the command as configured, e.g. `npx`).
    pub display: String,
}

const STDERR_LINES: usize = 50;
const STDERR_LINE_MAX: usize = 400;

/// Recent stderr lines of a child (and any garbage it printed on stdout).
#[derive(Default)]
pub struct Ring(Mutex<VecDeque<String>>, std::sync::atomic::AtomicBool);

impl Ring {
    fn push(&self, line: &str) {
        let mut q = self.0.lock().unwrap();
        if q.len() == STDERR_LINES {
            q.pop_front();
        }
        let mut l = line.trim_end().to_string();
        if l.len() > STDERR_LINE_MAX {
            let mut cut = STDERR_LINE_MAX;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
            l.push('…');
        }
        q.push_back(l);
    }
    pub fn tail(&self, n: usize) -> Vec<String> {
        let q = self.0.lock().unwrap();
        q.iter().skip(q.len().saturating_sub(n)).cloned().collect()
    }
    /// The child's stderr reached its end (everything it wrote is in the ring).
    fn set_done(&self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// Wait (bounded) until stderr reached its end, so an exit reason shows its last lines.
    fn wait_done(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.1.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

pub struct StdioTransport {
    name: String,
    pid: u32,
    child: Mutex<Child>,
    stdin: Mutex<Option<BufWriter<ChildStdin>>>,
    stderr: Arc<Ring>,
}

/// Start the child and attach it to `peer`.
pub fn spawn(peer: &Arc<Peer>, launch: &Launch) -> Result<()> {
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &launch.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| spawn_error(&peer.name, launch, e))?;
    let pid = child.id();
    let stdin = child.stdin.take().map(BufWriter::new);
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let ring = Arc::new(Ring::default());
    let t = Arc::new(StdioTransport {
        name: peer.name.clone(),
        pid,
        child: Mutex::new(child),
        stdin: Mutex::new(stdin),
        stderr: ring.clone(),
    });
    peer.attach(Box::new(Shared(t.clone())));
    log::debug!("server `{}`: started `{}` (pid {})", peer.name, launch.display, pid);

    let name = peer.name.clone();
    std::thread::Builder::new()
        .name(format!("stderr-{}", name))
        .spawn(move || drain_stderr(&name, stderr, &ring))
        .map_err(|e| Error::failure(format!("cannot start a thread: {}", e)))?;
    let p = peer.clone();
    std::thread::Builder::new()
        .name(format!("stdout-{}", peer.name))
        .spawn(move || read_stdout(&p, stdout, &t))
        .map_err(|e| Error::failure(format!("cannot start a thread: {}", e)))?;
    Ok(())
}

fn spawn_error(name: &str, launch: &Launch, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::failure(format!("server `{}`: command `{}` not found", name, launch.display))
                .hint("install it, or fix `command` in the config (PATH is searched)")
        }
        std::io::ErrorKind::PermissionDenied => {
            Error::failure(format!("server `{}`: command `{}` is not executable", name, launch.display))
                .hint("check the file's permissions")
        }
        _ => Error::failure(format!("server `{}`: cannot start `{}`: {}", name, launch.display, e)),
    }
}

fn drain_stderr(name: &str, stderr: impl Read, ring: &Ring) {
    let mut r = BufReader::with_capacity(64 * 1024, stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return ring.set_done(),
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                log::debug!("[{}] {}", name, line.trim_end());
                ring.push(&line);
            }
        }
    }
}

fn read_stdout(peer: &Arc<Peer>, stdout: impl Read, t: &StdioTransport) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = String::new();
    let mut garbage = 0usize;
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                garbage += 1;
                t.stderr.push("[stdout] (a line that is not UTF-8)");
                // read_line keeps the bytes it consumed out of `line`; skip to the next newline.
                let mut skip = Vec::new();
                if r.read_until(b'\n', &mut skip).map(|n| n == 0).unwrap_or(true) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        match peer.dispatch_line(text) {
            Ok(()) => {}
            Err(why) => {
                garbage += 1;
                log::warn!(
                    "server `{}` printed something that is not JSON-RPC on stdout ({}): {}",
                    t.name,
                    why,
                    clip(text, 120)
                );
                t.stderr.push(&format!("[stdout, not JSON-RPC] {}", clip(text, 200)));
            }
        }
    }
    // stdout closed: the child is exiting (or closed its stdout, which is as bad).
    let status = t.wait_for_exit(Duration::from_millis(500));
    let mut reason = match status {
        Some(s) => format!("server `{}` exited ({})", t.name, describe(s)),
        None => format!("server `{}` closed its stdout", t.name),
    };
    if status.is_some() {
        // The child is gone; its stderr drain thread may still be reading its last lines.
        t.stderr.wait_done(Duration::from_millis(200));
    }
    if garbage > 0 {
        reason.push_str(&format!(" after printing {} non-JSON-RPC line(s) on stdout", garbage));
    }
    let tail = t.stderr.tail(3);
    if !tail.is_empty() {
        reason.push_str(&format!("; last stderr: {}", tail.join(" | ")));
    }
    peer.close(&reason);
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// "status 3" or "killed by signal 9".
pub fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("status {}", c),
        (None, Some(sig)) => format!("killed by signal {}", sig),
        _ => "unknown status".into(),
    }
}

impl StdioTransport {
    fn try_wait(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    fn wait_for_exit(&self, d: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + d;
        // Most children exit within a millisecond of losing stdin: poll often at first.
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn signal_group(&self, sig: libc::c_int) {
        // SAFETY: plain syscall; the child leads its own process group (process_group(0)).
        unsafe {
            libc::kill(-(self.pid as libc::pid_t), sig);
        }
    }
}

/// Lets the reader thread and the peer share one transport.
struct Shared(Arc<StdioTransport>);

impl Shared {
    /// Write one encoded line (encoded before taking the lock: writers wait less).
    fn write_line(&self, line: &[u8]) -> Result<()> {
        let t = &self.0;
        let mut guard = t.stdin.lock().unwrap();
        let Some(w) = guard.as_mut() else {
            return Err(Error::failure(format!("server `{}` is shut down", t.name)));
        };
        w.write_all(line)
            .and_then(|_| w.flush())
            .map_err(|e| Error::failure(format!("cannot write to server `{}`: {}", t.name, e)))
    }
}

impl Transport for Shared {
    fn send(&self, msg: &Value) -> Result<()> {
        let mut line =
            serde_json::to_vec(msg).map_err(|e| Error::failure(format!("cannot encode a message: {}", e)))?;
        line.push(b'\n');
        self.write_line(&line)
    }

    fn send_request(&self, id: u64, method: &str, params: Option<Value>) -> Result<()> {
        self.write_line(&crate::jsonrpc::request_line(id, method, params.as_ref()))
    }

    fn shutdown(&self) {
        let t = &self.0;
        drop(t.stdin.lock().unwrap().take());
        let stages: [(Option<libc::c_int>, u64); 3] =
            [(None, 2000), (Some(libc::SIGTERM), 2000), (Some(libc::SIGKILL), 2000)];
        for (sig, wait_ms) in stages {
            if let Some(sig) = sig {
                log::debug!("server `{}`: sending signal {} to pid {}", t.name, sig, t.pid);
                t.signal_group(sig);
            }
            if t.wait_for_exit(Duration::from_millis(wait_ms)).is_some() {
                // Grandchildren that ignored the stdin close still go with the group.
                t.signal_group(libc::SIGKILL);
                return;
            }
        }
        log::warn!("server `{}` (pid {}) did not exit after SIGKILL", t.name, t.pid);
    }

    fn stderr_tail(&self, n: usize) -> Vec<String> {
        self.0.stderr.tail(n)
    }

    fn pid(&self) -> Option<u32> {
        Some(self.0.pid)
    }
}
