//! Shared test harness: temporary projects, running the real `mcpctl` binary with a clean
//! environment (the result always checked for its exit code), free loopback ports, the
//! gateway daemon started and stopped by pid, and the peers `make deps` installs.
//! The runtime tests' archive builder and mirror server live in `archive.rs`.
#![allow(dead_code)]

pub mod archive;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn mcpctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcpctl"))
}

pub fn fixture_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcpctl-fixture-server"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.deps/npm/node_modules/.bin` (Node 22, server-everything, inspector, conformance).
pub fn npm_bin() -> PathBuf {
    repo().join(".deps/npm/node_modules/.bin")
}

pub fn venv_python() -> PathBuf {
    repo().join(".deps/venv/bin/python")
}

/// The Python SDK 2.x (`mcp` 2.3.0: speaks 2026-07-28 and 2025-11-25).
pub fn venv_modern_python() -> PathBuf {
    repo().join(".deps/venv-modern/bin/python")
}

/// Whether `make test` asked for every peer (MCPCTL_REQUIRE_PEERS set, and not empty or `0`).
pub fn peers_required() -> bool {
    std::env::var("MCPCTL_REQUIRE_PEERS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Every skip of a test goes through here. `what` is missing: something `make deps` or
/// `make test` provides (Node and npm, python3 and the venvs, nginx, the musl builds) or
/// that every Debian system has (util-linux). Under `make test` (MCPCTL_REQUIRE_PEERS=1)
/// that fails the test; otherwise it is skipped with a line on stderr. The caller returns.
pub fn missing_peer(what: &str) {
    if peers_required() {
        panic!("{what}: `make deps` / `make test` provide it (MCPCTL_REQUIRE_PEERS is set)");
    }
    eprintln!("skipping: {what} (run `make deps`)");
}

/// A skip for want of something no make target provides (the internet, root's right to
/// make namespaces, openssl, iproute2, a clean folder tree): a line on stderr, never a
/// failure, even under MCPCTL_REQUIRE_PEERS. The caller returns.
pub fn missing_optional(what: &str) {
    eprintln!("skipping (optional): {what}");
}

/// Whether the peers from `make deps` are there (Node under .deps/npm, both Python venvs);
/// when not, [`missing_peer`] (a failure under `make test`).
pub fn peers_available() -> bool {
    let ok = npm_bin().join("node").exists() && venv_python().exists() && venv_modern_python().exists();
    if !ok {
        missing_peer("the test peers under .deps (Node, .deps/venv, .deps/venv-modern) are not installed");
    }
    ok
}

/// PATH with the npm bin directory first.
pub fn path_with_deps() -> String {
    format!("{}:{}", npm_bin().display(), std::env::var("PATH").unwrap_or_default())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary project folder with `.mcpctl/config.json`; removed on drop.
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    pub fn new(config: &Value) -> Project {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("mcpctl-test-{}-{}", std::process::id(), n));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(".mcpctl")).unwrap();
        let p = Project { root: root.canonicalize().unwrap() };
        p.write_config(config);
        p
    }

    /// A project with one fixture server `fx` (extra fields merged into its config).
    pub fn fixture(extra: Value) -> Project {
        let mut server = serde_json::json!({"command": fixture_bin(), "alwaysAllow": ["*"]});
        if let (Some(s), Some(e)) = (server.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        Project::new(&serde_json::json!({"mcpServers": {"fx": server}}))
    }

    pub fn write_config(&self, config: &Value) {
        std::fs::write(self.root.join(".mcpctl/config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }

    pub fn cmd(&self) -> Cmd {
        Cmd::new().cwd(&self.root)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // A daemon left by a failed test is stopped by its pid.
        if let Ok(text) = std::fs::read_to_string(self.root.join(".mcpctl/daemon.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if let Some(pid) = v["pid"].as_i64() {
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One run of the real binary, with a clean environment.
#[must_use]
pub struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    desc: String,
}

impl Cmd {
    pub fn new() -> Cmd {
        let mut cmd = Command::new(mcpctl_bin());
        cmd.env_clear();
        for k in ["PATH", "HOME", "TMPDIR", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("NO_COLOR", "1");
        Cmd { cmd, stdin: None, desc: "mcpctl".into() }
    }
    pub fn cwd(mut self, p: &Path) -> Cmd {
        self.cmd.current_dir(p);
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Cmd {
        for a in args {
            self.desc.push(' ');
            self.desc.push_str(a.as_ref());
            self.cmd.arg(a.as_ref());
        }
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }
    pub fn stdin(mut self, data: &str) -> Cmd {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    pub fn output(mut self) -> Run {
        self.cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = self.cmd.spawn().expect("mcpctl runs");
        let input = self.stdin.take().unwrap_or_default();
        let mut sin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = sin.write_all(&input);
        });
        let out = child.wait_with_output().expect("mcpctl finishes");
        let _ = writer.join();
        Run { desc: self.desc, out, elapsed: started.elapsed() }
    }

    /// Run and check the exit code; returns the run for further checks.
    pub fn status(self, code: i32) -> Run {
        let r = self.output();
        if r.out.status.code() != Some(code) {
            panic!("expected exit {} from `{}`\n{}", code, r.desc, r.dump());
        }
        r
    }
    pub fn success(self) -> Run {
        self.status(0)
    }
}

pub struct Run {
    pub desc: String,
    pub out: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// stdout as exactly one JSON object.
    pub fn json(&self) -> Value {
        let s = self.stdout();
        assert_eq!(s.trim().lines().count(), 1, "expected one JSON line from `{}`\n{}", self.desc, self.dump());
        serde_json::from_str(s.trim())
            .unwrap_or_else(|e| panic!("not JSON ({}) from `{}`\n{}", e, self.desc, self.dump()))
    }
    pub fn dump(&self) -> String {
        format!("status: {:?}\n--- stdout\n{}\n--- stderr\n{}", self.out.status, self.stdout(), self.stderr())
    }
    pub fn stdout_has(&self, s: &str) -> &Run {
        assert!(self.stdout().contains(s), "stdout of `{}` lacks {:?}\n{}", self.desc, s, self.dump());
        self
    }
    pub fn stderr_has(&self, s: &str) -> &Run {
        assert!(self.stderr().contains(s), "stderr of `{}` lacks {:?}\n{}", self.desc, s, self.dump());
        self
    }
}

/// A free TCP port on 127.0.0.1.
/// Wait for `child` to exit until `deadline`; `None` when it is still running then (the
/// caller decides whether to kill it).
#[allow(dead_code)]
pub fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A daemon started with `mcpctl start` in a project; stopped (by pid) on drop.
pub struct Daemon<'a> {
    pub project: &'a Project,
    pub port: u16,
    pub pid: i32,
}

impl<'a> Daemon<'a> {
    pub fn start(project: &'a Project, extra: &[&str]) -> Daemon<'a> {
        Daemon::start_env(project, extra, &[])
    }

    pub fn start_env(project: &'a Project, extra: &[&str], env: &[(&str, &str)]) -> Daemon<'a> {
        let port = free_port();
        let mut c =
            project.cmd().args(["--json-output", "start", "--port", &port.to_string()]).args(extra.iter().copied());
        for (k, v) in env {
            c = c.env(k, v);
        }
        let r = c.success();
        let pid = r.json()["daemon"]["pid"].as_i64().expect("pid") as i32;
        Daemon { project, port, pid }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Wait until every enabled server reports `ready` (bounded).
    pub fn wait_ready(&self, env: &[(&str, &str)]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut c = self.project.cmd().args(["--json-output", "status"]);
            for (k, v) in env {
                c = c.env(k, v);
            }
            let v = c.success().json();
            let servers = v["servers"].as_array().cloned().unwrap_or_default();
            if servers.iter().all(|s| s["disabled"] == true || s["status"] == "ready") {
                return v;
            }
            assert!(Instant::now() < deadline, "servers not ready: {}", v);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while unsafe { libc::kill(self.pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

/// A minimal MCP client of the gateway (ureq): one session, JSON or SSE answers.
pub struct McpClient {
    pub url: String,
    pub sid: String,
    agent: ureq::Agent,
    next: std::cell::Cell<u64>,
}

impl McpClient {
    pub fn open(url: String) -> McpClient {
        McpClient::open_with(url, serde_json::json!({}))
    }

    /// [`McpClient::open`], declaring `capabilities` in `initialize` (e.g. elicitation).
    pub fn open_with(url: String, capabilities: Value) -> McpClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "t", "version": "1"}}});
        let resp = agent
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .send(init.to_string().as_str())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "initialize at {}", url);
        let sid = resp.headers().get("mcp-session-id").unwrap().to_str().unwrap().to_string();
        let c = McpClient { url, sid, agent, next: std::cell::Cell::new(1) };
        c.post(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        c
    }

    /// POST one message; (HTTP status, body).
    pub fn post_status(&self, msg: &Value) -> (u16, String) {
        let resp = self
            .agent
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("Mcp-Session-Id", &self.sid)
            .send(msg.to_string().as_str())
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().read_to_string().unwrap_or_default())
    }

    pub fn post(&self, msg: &Value) -> String {
        self.post_status(msg).1
    }

    /// A request; returns the JSON-RPC answer (from a JSON body or the SSE stream).
    pub fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next.get();
        self.next.set(id + 1);
        let body = self.post(&serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        body.lines()
            .map(|l| l.strip_prefix("data: ").unwrap_or(l))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no answer to {} in {}", method, body))
    }

    /// tools/call; returns the result (asserting there is one).
    pub fn call(&self, tool: &str, args: Value) -> Value {
        let v = self.request("tools/call", serde_json::json!({"name": tool, "arguments": args}));
        assert!(v.get("result").is_some(), "expected a result (in-band), got {}", v);
        v["result"].clone()
    }
}

/// The lines a child writes on one of its pipes, read by a thread as they come, so that a
/// test waits for a line (something observable) instead of sleeping.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(r: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            // Ends at EOF: when the child exits (or the pipe's other holders close it).
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Wait until a line contains `needle`; fails the test, showing what came, after `within`.
    pub fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {:?} within {:?}; got:\n{}", needle, within, self.seen.join("\n")),
            }
        }
    }

    /// Everything, up to the end of the stream (or `within`), as one text.
    pub fn all(mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while let Ok(line) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// Wait until `f` holds, polling every 20 ms; fails the test naming `what` after `within`.
pub fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "waited {:?} in vain for {}", within, what);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many `sleep` calls the fixture server `pid` is running: it runs each on a thread of
/// its own, its only threads besides the main one (0 when the process is gone).
pub fn fixture_sleeps_running(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", pid)).map(|d| d.count().saturating_sub(1)).unwrap_or(0)
}

/// One HTTP request's head (lowercased) and body (None at EOF), as a test server reads it.
pub fn read_request(c: &mut std::net::TcpStream) -> Option<(String, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match std::io::Read::read(c, &mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while got.len() < head_end + len {
        match std::io::Read::read(c, &mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some((head, String::from_utf8_lossy(&got[head_end..head_end + len]).to_string()))
}
