//! A child process speaking newline-delimited JSON-RPC on stdin/stdout: spawn it in its
//! own process group (dying with us: PR_SET_PDEATHSIG), write its stdin from a queue on
//! one thread (sending never blocks), read stdout on another (feeding `Peer::dispatch`,
//! lines capped at MCPCTL_MAX_LINE), drain stderr into a ring of recent lines, watch the
//! child process itself on a fourth, and shut it down in stages (close stdin, 2 s,
//! SIGTERM, 2 s, SIGKILL, then the whole group) so no zombie or orphan is left.

use crate::error::{Error, Result};
use crate::peer::{Peer, Transport};
use crate::sync::Locked;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to start a child.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub env_policy: crate::childenv::EnvPolicy,
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
        let mut q = self.0.locked();
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
        let q = self.0.locked();
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
    input: Arc<Input>,
    stderr: Arc<Ring>,
}

/// How many bytes may wait for a child that is slow to read its stdin before a new
/// message is refused (a single larger message is still taken when nothing waits).
const QUEUE_MAX: usize = 8 * 1024 * 1024;

/// Lines waiting for the child's stdin, written by the child's writer thread: sending
/// never blocks on the pipe, so a child that stops reading cannot stall its callers.
#[derive(Default)]
struct Input {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// No more lines: the writer closes stdin once the queue is empty.
    closed: bool,
    /// When the write in progress started (`None`: the writer is idle).
    writing_since: Option<Instant>,
}

impl Input {
    fn push(&self, name: &str, line: Vec<u8>) -> Result<()> {
        let mut q = self.queue.locked();
        if q.closed {
            return Err(Error::disconnected(format!("server `{}` is shut down", name)));
        }
        if q.bytes > 0 && q.bytes + line.len() > QUEUE_MAX {
            return Err(Error::failure(format!(
                "server `{}` is not reading its input ({} bytes are waiting for it)",
                name, q.bytes
            ))
            .hint("the server is stuck; it is restarted once it has been stuck past its `timeout`"));
        }
        q.bytes += line.len();
        q.lines.push_back(line);
        self.ready.notify_one();
        Ok(())
    }

    fn close(&self) {
        self.queue.locked().closed = true;
        self.ready.notify_all();
    }

    /// How long the write in progress has been blocked.
    fn stalled_for(&self) -> Option<Duration> {
        self.queue.locked().writing_since.map(|t| t.elapsed())
    }

    /// The writer thread: one line at a time, no lock held while writing.
    fn run(&self, name: &str, stdin: ChildStdin) {
        let mut w = stdin;
        loop {
            let line = {
                let mut q = self.queue.locked();
                loop {
                    if let Some(l) = q.lines.pop_front() {
                        q.writing_since = Some(Instant::now());
                        break l;
                    }
                    if q.closed {
                        return; // drops stdin: the child sees EOF
                    }
                    q = crate::sync::wait_timeout(&self.ready, q, Duration::from_millis(500));
                }
            };
            let written = w.write_all(&line).and_then(|_| w.flush());
            let mut q = self.queue.locked();
            q.writing_since = None;
            q.bytes -= line.len();
            if let Err(e) = written {
                log::debug!("server `{}`: cannot write to its stdin: {}", name, e);
                q.closed = true;
                q.lines.clear();
                q.bytes = 0;
                return;
            }
        }
    }
}

/// Children alive now (pid = process group), so a PID 1 reaper leaves them to their
/// own waiter and a stopping daemon can kill what is left of their groups.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Whether `pid` is a child a transport still waits for.
pub fn is_ours(pid: u32) -> bool {
    CHILDREN.locked().contains(&pid)
}

/// Kill the process groups of every child still known (the daemon is exiting).
pub fn kill_all_groups() {
    let pids = CHILDREN.locked().clone();
    for pid in pids {
        let _ = crate::sys::signal_group(pid, libc::SIGKILL);
    }
}

fn forget_child(pid: u32) {
    CHILDREN.locked().retain(|p| *p != pid);
}

/// The longest line a child may write on stdout (MCPCTL_MAX_LINE bytes, default 64 MiB).
pub fn max_line() -> usize {
    crate::settings::max_line()
}

/// Start the child and attach it to `peer`.
///
/// The child gets PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that spawned it,
/// so callers spawn from a thread that outlives the child (the gateway's supervisor
/// thread of the server, the CLI's main thread), and a daemon killed with SIGKILL
/// leaves no child behind.
pub fn spawn(peer: &Arc<Peer>, launch: &Launch) -> Result<()> {
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    crate::childenv::apply(&mut cmd, launch.env_policy, &launch.env);
    if let Some(dir) = &launch.cwd {
        cmd.current_dir(dir);
    }
    crate::sys::spawn_dying_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| spawn_error(&peer.name, launch, e))?;
    let pid = child.id();
    CHILDREN.locked().push(pid);
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let ring = Arc::new(Ring::default());
    let t = Arc::new(StdioTransport {
        name: peer.name.clone(),
        pid,
        child: Mutex::new(child),
        input: Arc::new(Input::default()),
        stderr: ring.clone(),
    });
    peer.attach(Box::new(Shared(t.clone())));
    log::debug!("server `{}`: started `{}` (pid {})", peer.name, launch.display, pid);

    let started = start_threads(peer, &t, stdin, stdout, stderr, ring);
    if let Err(e) = started {
        t.signal_group(libc::SIGKILL);
        t.input.close();
        let _ = t.wait_for_exit(Duration::from_secs(2));
        peer.close(&e.one_line());
        return Err(e);
    }
    Ok(())
}

fn start_threads(
    peer: &Arc<Peer>,
    t: &Arc<StdioTransport>,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
    ring: Arc<Ring>,
) -> Result<()> {
    let no_thread = |e: std::io::Error| Error::internal(format!("cannot start a thread: {}", e));
    let name = peer.name.clone();
    let input = t.input.clone();
    std::thread::Builder::new()
        .name(format!("stdin-{}", name))
        .spawn(move || input.run(&name, stdin))
        .map_err(no_thread)?;
    let name = peer.name.clone();
    std::thread::Builder::new()
        .name(format!("stderr-{}", name))
        .spawn(move || drain_stderr(&name, stderr, &ring))
        .map_err(no_thread)?;
    let (p, t2) = (peer.clone(), t.clone());
    std::thread::Builder::new()
        .name(format!("stdout-{}", peer.name))
        .spawn(move || read_stdout(&p, stdout, &t2))
        .map_err(no_thread)?;
    let (p, t2) = (peer.clone(), t.clone());
    std::thread::Builder::new()
        .name(format!("wait-{}", peer.name))
        .spawn(move || watch_exit(&p, &t2))
        .map_err(no_thread)?;
    Ok(())
}

/// Wait for the child itself to exit (not only for EOF on its stdout, which a process
/// it started may hold open): then the connection closes and its group is killed.
fn watch_exit(peer: &Arc<Peer>, t: &StdioTransport) {
    // The zombie is reaped below through `Child`, which then remembers the status.
    let _ = crate::sys::wait_exited_keep_zombie(t.pid);
    let status = t.try_wait();
    forget_child(t.pid);
    // Most exits are noticed by the stdout reader at EOF, with the last stderr lines.
    let deadline = Instant::now() + Duration::from_millis(500);
    while !peer.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Whatever the child left running in its group goes with it.
    t.signal_group(libc::SIGKILL);
    if peer.is_closed() {
        return;
    }
    let how = status.map(describe).unwrap_or_else(|| "unknown status".into());
    let reason = format!("server `{}` exited ({}) while a process it started kept its stdout open", t.name, how);
    peer.close(&reason);
}

fn spawn_error(name: &str, launch: &Launch, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::unreachable(format!("server `{}`: command `{}` not found", name, launch.display))
                .hint("install it, or fix `command` in the config (PATH is searched)")
        }
        std::io::ErrorKind::PermissionDenied => {
            Error::unreachable(format!("server `{}`: command `{}` is not executable", name, launch.display))
                .hint("check the file's permissions")
        }
        _ => Error::unreachable(format!("server `{}`: cannot start `{}`: {}", name, launch.display, e)),
    }
}

/// What one capped line read gave.
enum Line {
    /// A line is in the buffer (with its newline, unless the stream ended without one).
    Data,
    Eof,
    /// The line passed `max` bytes; the buffer holds its first `max` bytes and the rest
    /// of the line is still unread.
    TooLong,
}

/// Read one line of at most `max` bytes into `buf` (cleared first).
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() { Line::Eof } else { Line::Data });
        }
        let (take, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > max + 1 {
            let room = max - buf.len().min(max);
            buf.extend_from_slice(&avail[..room]);
            r.consume(room);
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            return Ok(Line::Data);
        }
    }
}

/// Skip the rest of a line; false at the end of the stream.
fn skip_line(r: &mut impl BufRead) -> bool {
    loop {
        let avail = match r.fill_buf() {
            Ok(a) if !a.is_empty() => a,
            _ => return false,
        };
        match avail.iter().position(|b| *b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return true;
            }
            None => {
                let n = avail.len();
                r.consume(n);
            }
        }
    }
}

/// A buffer that held a big line gives its memory back.
fn release(buf: &mut Vec<u8>) {
    const KEEP: usize = 64 * 1024;
    if buf.capacity() > 4 * KEEP {
        buf.clear();
        buf.shrink_to(KEEP);
    }
}

fn drain_stderr(name: &str, stderr: impl Read, ring: &Ring) {
    let mut r = BufReader::with_capacity(64 * 1024, stderr);
    let mut buf = Vec::new();
    loop {
        match read_line_capped(&mut r, &mut buf, STDERR_READ_MAX) {
            Ok(Line::Eof) | Err(_) => return ring.set_done(),
            Ok(Line::Data) => {}
            Ok(Line::TooLong) => {
                if !skip_line(&mut r) {
                    return ring.set_done();
                }
            }
        }
        let line = String::from_utf8_lossy(&buf);
        log::debug!("[{}] {}", name, line.trim_end());
        ring.push(&line);
    }
}

/// Stderr lines are kept short (the ring clips them further); the rest is dropped.
const STDERR_READ_MAX: usize = 64 * 1024;

fn read_stdout(peer: &Arc<Peer>, stdout: impl Read, t: &StdioTransport) {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::new();
    let mut garbage = 0usize;
    let max = max_line();
    let mut too_long = false;
    loop {
        match read_line_capped(&mut r, &mut buf, max) {
            Ok(Line::Data) => {}
            Ok(Line::Eof) | Err(_) => break,
            Ok(Line::TooLong) => {
                too_long = true;
                break;
            }
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            garbage += 1;
            t.stderr.push("[stdout] (a line that is not UTF-8)");
            release(&mut buf);
            continue;
        };
        let text = line.trim();
        if !text.is_empty() {
            if let Err(why) = peer.dispatch_line(text) {
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
        release(&mut buf);
    }
    drop(buf);
    if too_long {
        let reason = format!(
            "server `{}` wrote a line longer than {} bytes on stdout (raise MCPCTL_MAX_LINE if it is legitimate); restarting it",
            t.name, max
        );
        log::error!("{}", reason);
        t.signal_group(libc::SIGKILL);
        peer.close(&reason);
        return;
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
    peer.close_with_stderr(&reason, &t.stderr.tail(3).join(" | "));
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
        self.child.locked().try_wait().ok().flatten()
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
        // The child leads its own process group (process_group(0)).
        let _ = crate::sys::signal_group(self.pid, sig);
    }
}

/// Lets the reader thread and the peer share one transport.
struct Shared(Arc<StdioTransport>);

impl Shared {
    /// Queue one encoded line for the writer thread (never blocks on the child).
    fn write_line(&self, line: Vec<u8>) -> Result<()> {
        self.0.input.push(&self.0.name, line)
    }
}

impl Transport for Shared {
    fn send(&self, msg: &Value) -> Result<()> {
        let mut line =
            serde_json::to_vec(msg).map_err(|e| Error::internal(format!("cannot encode a message: {}", e)))?;
        line.push(b'\n');
        self.write_line(line)
    }

    fn send_request(&self, id: u64, method: &str, params: Option<Value>) -> Result<()> {
        self.write_line(crate::jsonrpc::request_line(id, method, params.as_ref()))
    }

    fn shutdown(&self) {
        let t = &self.0;
        // A child stuck on a full stdin never sees it close: go straight to SIGTERM.
        let stuck = t.input.stalled_for().is_some_and(|d| d > Duration::from_millis(100));
        t.input.close();
        let first_wait = if stuck { 0 } else { 2000 };
        let stages: [(Option<libc::c_int>, u64); 3] =
            [(None, first_wait), (Some(libc::SIGTERM), 2000), (Some(libc::SIGKILL), 2000)];
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

    fn input_stalled(&self) -> Option<Duration> {
        self.0.input.stalled_for()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut r = BufReader::with_capacity(8, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line_capped(&mut r, &mut buf, max).unwrap() {
                Line::Eof => return out,
                Line::Data => out.push(String::from_utf8_lossy(&buf).into_owned()),
                Line::TooLong => {
                    out.push(format!("TOO LONG {}", String::from_utf8_lossy(&buf)));
                    if !skip_line(&mut r) {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn lines_are_capped_and_the_next_line_survives() {
        assert_eq!(lines(b"ab\ncdefghijkl\nx\ny", 5), ["ab\n", "TOO LONG cdefg", "x\n", "y"]);
        // Exactly `max` bytes plus the newline is still a line.
        assert_eq!(lines(b"abcde\n", 5), ["abcde\n"]);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let input = Input::default();
        input.push("t", vec![b'x'; QUEUE_MAX]).unwrap();
        let e = input.push("t", vec![b'y'; 10]).unwrap_err();
        assert!(e.one_line().contains("not reading its input"), "{}", e.one_line());
    }
}
