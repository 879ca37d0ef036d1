//! The gateway daemon, driven like a client would: the real `mcpctl start` on a free port,
//! real HTTP (a small raw HTTP/1.1 client over `TcpStream`, so malformed requests, SSE
//! streams and dropped connections are all in our hands), and the CLI next to it.

use crate::support;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{fixture_bin, Daemon, Project};

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------

/// A response whose status and headers are read; the body is read on demand.
struct Conn {
    status: u16,
    headers: Vec<(String, String)>,
    r: BufReader<TcpStream>,
    chunked: bool,
    length: Option<usize>,
    /// Decoded body bytes not yet consumed as SSE events.
    pending: Vec<u8>,
    done: bool,
}

impl Conn {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn is_sse(&self) -> bool {
        self.header("Content-Type").map(|c| c.starts_with("text/event-stream")).unwrap_or(false)
    }

    /// More decoded body bytes; empty at the end of the body.
    fn read_more(&mut self) -> Vec<u8> {
        if self.done {
            return Vec::new();
        }
        if self.chunked {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                self.done = true;
                return Vec::new();
            }
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).expect("chunk size");
            if n == 0 {
                let mut end = String::new();
                let _ = self.r.read_line(&mut end);
                self.done = true;
                return Vec::new();
            }
            let mut buf = vec![0; n + 2];
            self.r.read_exact(&mut buf).expect("chunk");
            buf.truncate(n);
            buf
        } else if let Some(n) = self.length {
            let mut buf = vec![0; n];
            self.r.read_exact(&mut buf).expect("body");
            self.done = true;
            buf
        } else {
            let mut buf = Vec::new();
            let _ = self.r.read_to_end(&mut buf);
            self.done = true;
            buf
        }
    }

    fn body(mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.pending);
        loop {
            let b = self.read_more();
            if b.is_empty() {
                return all;
            }
            all.extend(b);
        }
    }

    fn text(self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }

    fn json(self) -> Value {
        let t = self.text();
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({}): {}", e, t))
    }

    /// The next SSE event's `data` as JSON (comments and keep-alives skipped); None at the end.
    fn next_event(&mut self) -> Option<Value> {
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find("\n\n") {
                let frame = text[..at].to_string();
                self.pending.drain(..at + 2);
                let data: Vec<&str> =
                    frame.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.trim_start()).collect();
                if data.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&data.join("\n")).expect("SSE data is JSON"));
            }
            let more = self.read_more();
            if more.is_empty() {
                return None;
            }
            self.pending.extend(more);
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Send one request (Host set unless given) and read the status line and headers.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Conn {
    let mut s = connect(port);
    let mut req = format!("{} {} HTTP/1.1\r\n", method, path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", port));
    }
    for (k, v) in headers {
        req.push_str(&format!("{}: {}\r\n", k, v));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Transfer-Encoding")) {
        req.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    } else {
        req.push_str("Connection: close\r\n\r\n");
    }
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
    read_head(s)
}

fn read_head(s: TcpStream) -> Conn {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 =
        line.split_whitespace().nth(1).unwrap_or_else(|| panic!("bad status line {:?}", line)).parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let chunked = find("Transfer-Encoding").map(|v| v.eq_ignore_ascii_case("chunked")).unwrap_or(false);
    let length = find("Content-Length").and_then(|v| v.parse().ok());
    Conn { status, headers, r, chunked, length, pending: Vec::new(), done: false }
}

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON_CT: (&str, &str) = ("Content-Type", "application/json");

/// A Streamable HTTP client session on one endpoint.
struct Mcp {
    port: u16,
    path: String,
    sid: String,
    token: Option<String>,
    next: std::cell::Cell<u64>,
}

fn init_msg(version: &str) -> Value {
    init_declaring(version, json!({"sampling": {}, "roots": {"listChanged": true}}))
}

/// An `initialize` declaring the client capabilities `caps`.
fn init_declaring(version: &str, caps: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version,
        "capabilities": caps,
        "clientInfo": {"name": "gateway-test", "version": "1"}}})
}

impl Mcp {
    fn open(port: u16, path: &str) -> Mcp {
        Mcp::open_with(port, path, None)
    }

    fn open_with(port: u16, path: &str, token: Option<&str>) -> Mcp {
        Mcp::open_as(port, path, token, init_msg("2025-11-25"))
    }

    /// A session whose client declared the capabilities `caps` (and no others).
    fn open_declaring(port: u16, path: &str, caps: Value) -> Mcp {
        Mcp::open_as(port, path, None, init_declaring("2025-11-25", caps))
    }

    fn open_as(port: u16, path: &str, token: Option<&str>, init: Value) -> Mcp {
        let auth = token.map(|t| format!("Bearer {}", t));
        let mut h = vec![ACCEPT, JSON_CT];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        let c = http(port, "POST", path, &h, init.to_string().as_bytes());
        assert_eq!(c.status, 200, "initialize on {}", path);
        let sid = c.header("Mcp-Session-Id").expect("session id").to_string();
        let v = c.json();
        assert_eq!(v["result"]["protocolVersion"], "2025-11-25", "{}", v);
        let m = Mcp { port, path: path.into(), sid, token: token.map(str::to_string), next: std::cell::Cell::new(1) };
        let c = m.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(c.status, 202);
        m
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            (ACCEPT.0.to_string(), ACCEPT.1.to_string()),
            (JSON_CT.0.to_string(), JSON_CT.1.to_string()),
            ("Mcp-Session-Id".to_string(), self.sid.clone()),
            ("MCP-Protocol-Version".to_string(), "2025-11-25".to_string()),
        ];
        if let Some(t) = &self.token {
            h.push(("Authorization".into(), format!("Bearer {}", t)));
        }
        h
    }

    fn post(&self, msg: &Value) -> Conn {
        let h = self.headers();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http(self.port, "POST", &self.path, &h, msg.to_string().as_bytes())
    }

    fn id(&self) -> u64 {
        let n = self.next.get();
        self.next.set(n + 1);
        n
    }

    /// A request, its final answer (from a JSON body or at the end of an SSE stream).
    fn request(&self, method: &str, params: Value) -> Value {
        let id = self.id();
        let c = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        assert_eq!(c.status, 200, "{} answered HTTP {}", method, c.status);
        let v = answer_of(c);
        assert_eq!(v["id"], json!(id), "answer to the wrong request: {}", v);
        v
    }

    fn call(&self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// The text of a successful tool call.
    fn call_text(&self, tool: &str, args: Value) -> String {
        let v = self.call(tool, args);
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text result from {}: {}", tool, v))
            .to_string()
    }

    fn tool_names(&self) -> Vec<String> {
        let v = self.request("tools/list", json!({}));
        v["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn get_stream(&self) -> Conn {
        let mut h = self.headers();
        h[0].1 = "text/event-stream".into();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = http(self.port, "GET", &self.path, &h, b"");
        assert_eq!(c.status, 200);
        assert!(c.is_sse());
        c
    }

    fn delete(&self) -> u16 {
        let h = self.headers();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        http(self.port, "DELETE", &self.path, &h, b"").status
    }
}

/// The last message of a POST answer: the JSON body, or the last SSE event.
fn answer_of(mut c: Conn) -> Value {
    if c.is_sse() {
        let mut last = None;
        while let Some(e) = c.next_event() {
            last = Some(e);
        }
        last.expect("an SSE answer")
    } else {
        c.json()
    }
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

fn alive(pid: i32) -> bool {
    // A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Ok(s) => !s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

/// Pids of the live fixture-server processes whose parent is `parent`.
fn fixture_children(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let exe = fixture_bin();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid)) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 2 || f[0] == "Z" || f[1].parse::<i32>().ok() != Some(parent) {
            continue;
        }
        if std::fs::read_link(format!("/proc/{}/exe", pid)).map(|p| p == exe).unwrap_or(false) {
            out.push(pid);
        }
    }
    out.sort();
    out
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for {}", secs, what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_file(p: &Project) -> std::path::PathBuf {
    p.root.join(".mcpctl/daemon.json")
}

fn log_file(p: &Project) -> std::path::PathBuf {
    p.root.join(".mcpctl/logs/daemon.log")
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn status_json(p: &Project) -> Value {
    p.cmd().args(["--json-output", "status"]).success().json()
}

fn server_status(p: &Project, name: &str) -> Value {
    let v = status_json(p);
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {} in {}", name, v))
}

fn two_fixtures(extra: Value) -> Project {
    let mut fx = json!({"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 10});
    for (k, v) in extra.as_object().unwrap() {
        fx[k] = v.clone();
    }
    Project::new(&json!({"mcpServers": {"fx": fx.clone(), "fy": fx}}))
}

/// The secret must not appear in the state file, the log or the daemon's argv.
fn assert_secret_absent(p: &Project, pid: i32, secret: &str) {
    let state = std::fs::read_to_string(state_file(p)).unwrap();
    assert!(!state.contains(secret), "the token is in the state file:\n{}", state);
    let log = std::fs::read_to_string(log_file(p)).unwrap();
    assert!(!log.contains(secret), "the token is in the log:\n{}", log);
    let argv = std::fs::read(format!("/proc/{}/cmdline", pid)).unwrap();
    assert!(!String::from_utf8_lossy(&argv).contains(secret), "the token is in the daemon's argv");
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

#[test]
fn start_prints_url_writes_private_state_without_the_token() {
    let p = Project::fixture(json!({}));
    let secret = "s3cret-Env-Token-0123456789abcdef";
    let port = support::free_port();
    let r = p.cmd().args(["start", "--port", &port.to_string()]).env("MCPCTL_TOKEN", secret).success();
    r.stdout_has(&format!("http://127.0.0.1:{}/mcp", port));
    // `start` returned after the health check: the daemon answers right away.
    assert_eq!(http(port, "GET", "/health", &[], b"").status, 200);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(state_file(&p)).unwrap()).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    assert_eq!(state["token_mode"], "env");
    assert_eq!(mode(&state_file(&p)), 0o600);
    assert_eq!(mode(&p.root.join(".mcpctl")), 0o700);
    assert_secret_absent(&p, pid, secret);
    // The token is enforced.
    assert_eq!(http(port, "GET", "/status", &[], b"").status, 401);
    let auth = format!("Bearer {}", secret);
    assert_eq!(http(port, "GET", "/status", &[("Authorization", &auth)], b"").status, 200);
    p.cmd().args(["stop"]).env("MCPCTL_TOKEN", secret).success();
    assert!(!alive(pid));

    // The --token form: same rules.
    let secret2 = "s3cret-Flag-Token-fedcba9876543210";
    let r = p.cmd().args(["--json-output", "start", "--port", &port.to_string(), "--token", secret2]).success();
    let pid = r.json()["daemon"]["pid"].as_i64().unwrap() as i32;
    let state: Value = serde_json::from_str(&std::fs::read_to_string(state_file(&p)).unwrap()).unwrap();
    assert_eq!(state["token_mode"], "flag");
    assert_secret_absent(&p, pid, secret2);
    let auth = format!("Bearer {}", secret2);
    assert_eq!(http(port, "GET", "/status", &[("Authorization", &auth)], b"").status, 200);
    p.cmd().args(["stop"]).success();
    assert!(!alive(pid));
}

#[test]
fn second_start_is_a_no_op_and_other_settings_say_stop_first() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let port = d.port.to_string();
    let r = p.cmd().args(["start", "--port", &port]).success();
    r.stdout_has("already running");
    let r = p.cmd().args(["start", "--port", &support::free_port().to_string()]).status(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("already running with other settings") && all.contains("mcpctl stop"), "{}", r.dump());
    // Still the one daemon.
    let state: Value = serde_json::from_str(&std::fs::read_to_string(state_file(&p)).unwrap()).unwrap();
    assert_eq!(state["pid"].as_i64().unwrap() as i32, d.pid);
}

fn daemons_of(p: &Project) -> Vec<i32> {
    let root = p.root.to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(argv) = std::fs::read(format!("/proc/{}/cmdline", pid)) else { continue };
        let args: Vec<String> = argv.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "--foreground") && args.contains(&root) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn concurrent_starts_give_exactly_one_daemon() {
    let p = Project::fixture(json!({}));
    let port = support::free_port().to_string();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let c = p.cmd().args(["--json-output", "start", "--port", &port]);
            std::thread::spawn(move || c.success().json())
        })
        .collect();
    let outs: Vec<Value> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let pids: HashSet<i64> = outs.iter().map(|o| o["daemon"]["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "two starts reported different daemons: {:?}", outs);
    // A daemon that lost the race exits on its own: then one is left.
    let one = vec![*pids.iter().next().unwrap() as i32];
    wait_until("one daemon to be left", 10, || daemons_of(&p) == one);
    p.cmd().args(["stop"]).success();
    assert!(daemons_of(&p).is_empty());
}

#[test]
fn port_in_use_is_a_clear_error_naming_the_port() {
    let p = Project::fixture(json!({}));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let r = p.cmd().args(["start", "--port", &port]).status(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains(&format!("port {}", port)) && all.contains("in use"), "{}", r.dump());
    assert!(!state_file(&p).exists());
    assert!(daemons_of(&p).is_empty());
}

#[test]
fn open_bind_without_token_is_refused_before_anything_starts() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["start", "--host", "0.0.0.0", "--port", &support::free_port().to_string()]).status(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("Binding to 0.0.0.0 requires --token or MCPCTL_TOKEN"), "{}", r.dump());
    assert!(!p.root.join(".mcpctl/logs").exists(), "the log folder was created");
    assert!(!state_file(&p).exists());
    assert!(daemons_of(&p).is_empty());
}

#[test]
fn stop_ends_the_daemon_and_its_children() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let kids = fixture_children(d.pid);
    assert_eq!(kids.len(), 1, "one shared child expected: {:?}", kids);
    let r = p.cmd().args(["--json-output", "stop"]).success().json();
    assert_eq!(r["was_running"], true, "{}", r);
    assert!(!state_file(&p).exists());
    assert!(!alive(d.pid));
    wait_until("the fixture child to exit", 5, || !alive(kids[0]));
    let r = p.cmd().args(["stop"]).success();
    r.stdout_has("not running");
    let r = p.cmd().args(["--json-output", "stop"]).success().json();
    assert_eq!(r["was_running"], false);
}

#[test]
fn status_shows_running_stopped_stale_counters_and_stderr_of_a_failed_child() {
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
        "bad": {"command": fixture_bin(), "args": ["--crash-on-init"]},
    }}));
    assert_eq!(status_json(&p)["daemon"]["status"], "stopped");
    p.cmd().args(["status"]).success().stdout_has("Daemon: stopped");
    let d = Daemon::start(&p, &[]);
    wait_until("fx ready", 20, || server_status(&p, "fx")["status"] == "ready");
    let m = Mcp::open(d.port, "/mcp/fx");
    assert_eq!(m.call_text("echo", json!({"text": "one"})), "one");
    assert_eq!(m.call_text("add", json!({"a": 2, "b": 3})), "5");
    let v = status_json(&p);
    assert_eq!(v["daemon"]["status"], "running");
    let fx = server_status(&p, "fx");
    assert_eq!(fx["status"], "ready");
    assert_eq!(fx["tools_count"], 20, "{}", fx);
    assert_eq!(fx["calls"], 2, "{}", fx);
    assert_eq!(fx["restarts"], 0);
    // The failing child: not ready, with its last stderr lines.
    wait_until("bad's stderr in status", 20, || server_status(&p, "bad")["stderr"].is_array());
    let bad = server_status(&p, "bad");
    assert_ne!(bad["status"], "ready");
    let stderr = bad["stderr"].to_string();
    assert!(stderr.contains("FIXTURE_TOKEN is not set"), "{}", bad);
    let text = p.cmd().args(["status"]).success().stdout();
    assert!(text.contains("Daemon: running"), "{}", text);
    assert!(text.contains("Tools: 20") && text.contains("Calls: 2, restarts: 0"), "{}", text);
    assert!(text.contains("| fixture: fatal config error: FIXTURE_TOKEN is not set"), "{}", text);
    // kill -9: the state file stays behind, status says stale.
    unsafe { libc::kill(d.pid, libc::SIGKILL) };
    wait_until("the daemon to die", 5, || !alive(d.pid));
    assert_eq!(status_json(&p)["daemon"]["status"], "stale");
    p.cmd().args(["status"]).success().stdout_has("Daemon: stale");
    // `stop` cleans a stale state file up.
    p.cmd().args(["stop"]).success().stdout_has("stale");
    assert!(!state_file(&p).exists());
}

#[test]
fn logs_record_calls_without_argument_values_and_follow() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    let secret_arg = "ARGUMENT-VALUE-must-not-be-logged-42";
    assert_eq!(m.call_text("echo", json!({"text": secret_arg})), secret_arg);
    let r = p.cmd().args(["logs"]).success();
    let log = r.stdout();
    assert!(log.contains("listening on"), "{}", log);
    let line = log.lines().find(|l| l.contains("tool=echo")).unwrap_or_else(|| panic!("no call line:\n{}", log));
    assert!(line.contains("server=fx") && line.contains("duration_ms=") && line.contains("outcome=ok"), "{}", line);
    assert!(!log.contains(secret_arg), "an argument value is in the log:\n{}", log);
    let log_on_disk = std::fs::read_to_string(log_file(&p)).unwrap();
    assert!(!log_on_disk.contains(secret_arg));

    // --follow: prints the log, then what is appended, until SIGINT.
    let mut child = Command::new(support::mcpctl_bin())
        .args(["logs", "--follow"])
        .current_dir(&p.root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("`logs --follow` never printed {:?}", needle),
            }
        }
    };
    wait_for("tool=echo");
    // A new call appends a line; and so does a line appended by hand.
    assert_eq!(m.call_text("add", json!({"a": 1, "b": 1})), "2");
    wait_for("tool=add");
    let mut f = std::fs::OpenOptions::new().append(true).open(log_file(&p)).unwrap();
    writeln!(f, "appended-by-the-test").unwrap();
    wait_for("appended-by-the-test");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let Some(status) = support::wait_until(&mut child, Instant::now() + Duration::from_secs(5)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`logs --follow` did not stop on SIGINT");
    };
    assert!(status.success() || status.code() == Some(130), "{:?}", status);
}

// ---------------------------------------------------------------------------
// HTTP rules
// ---------------------------------------------------------------------------

#[test]
fn transport_rules_are_enforced_with_the_right_status_codes() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let port = d.port;
    // Health needs nothing.
    let c = http(port, "GET", "/health", &[], b"");
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["status"], "ok");
    // Junk body: 400 with a JSON-RPC parse error.
    let c = http(port, "POST", "/mcp/fx", &[ACCEPT, JSON_CT], b"{not json");
    assert_eq!(c.status, 400);
    assert_eq!(c.json()["error"]["code"], -32700);
    // Batch: 400.
    let batch = json!([init_msg("2025-11-25"), {"jsonrpc": "2.0", "id": 2, "method": "ping"}]);
    let c = http(port, "POST", "/mcp/fx", &[ACCEPT, JSON_CT], batch.to_string().as_bytes());
    assert_eq!(c.status, 400);
    assert!(c.json()["error"]["code"].is_i64());
    // PUT: 405.
    assert_eq!(http(port, "PUT", "/mcp/fx", &[ACCEPT, JSON_CT], b"{}").status, 405);
    // No session on a non-initialize request: 400.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    assert_eq!(http(port, "POST", "/mcp/fx", &[ACCEPT, JSON_CT], ping.as_bytes()).status, 400);
    // Unknown session: 404.
    let unknown = [ACCEPT, JSON_CT, ("Mcp-Session-Id", "0123456789abcdef0123456789abcdef")];
    assert_eq!(http(port, "POST", "/mcp/fx", &unknown, ping.as_bytes()).status, 404);
    // A real session: works; an unsupported MCP-Protocol-Version: 400.
    let m = Mcp::open(port, "/mcp/fx");
    assert_eq!(m.request("ping", json!({}))["result"], json!({}));
    let bad_version = [ACCEPT, JSON_CT, ("Mcp-Session-Id", m.sid.as_str()), ("MCP-Protocol-Version", "1999-01-01")];
    assert_eq!(http(port, "POST", "/mcp/fx", &bad_version, ping.as_bytes()).status, 400);
    // Wrong Accept: 406; wrong Content-Type: 415 (also for initialize).
    let init = init_msg("2025-11-25").to_string();
    assert_eq!(http(port, "POST", "/mcp/fx", &[("Accept", "text/html"), JSON_CT], init.as_bytes()).status, 406);
    assert_eq!(http(port, "POST", "/mcp/fx", &[("Accept", "application/json"), JSON_CT], init.as_bytes()).status, 406);
    assert_eq!(http(port, "POST", "/mcp/fx", &[ACCEPT, ("Content-Type", "text/plain")], init.as_bytes()).status, 415);
    // DELETE ends the session; then it is unknown.
    assert_eq!(m.delete(), 200);
    assert_eq!(m.post(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"})).status, 404);
    assert_eq!(m.delete(), 404);
    // The daemon is fine after all that.
    let m = Mcp::open(port, "/mcp/fx");
    assert_eq!(m.call_text("echo", json!({"text": "still here"})), "still here");
}

#[test]
fn oversized_bodies_get_413() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_BODY", "1000")]);
    let m = Mcp::open(d.port, "/mcp/fx");
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x".repeat(2000)}}})
    .to_string();
    assert_eq!(m.post(&serde_json::from_str(&big).unwrap()).status, 413);
    // Chunked, without a Content-Length: still refused.
    let mut body = format!("{:x}\r\n", big.len()).into_bytes();
    body.extend(big.as_bytes());
    body.extend(b"\r\n0\r\n\r\n");
    let h = [ACCEPT, JSON_CT, ("Mcp-Session-Id", m.sid.as_str()), ("Transfer-Encoding", "chunked")];
    assert_eq!(http(d.port, "POST", "/mcp/fx", &h, &body).status, 413);
    // Under the limit: fine.
    assert_eq!(m.call_text("echo", json!({"text": "small"})), "small");
}

#[test]
fn protocol_versions_are_negotiated() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    for (asked, expect) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
        ("2031-01-01", "2025-11-25"),
    ] {
        for path in ["/mcp", "/mcp/fx"] {
            let c = http(d.port, "POST", path, &[ACCEPT, JSON_CT], init_msg(asked).to_string().as_bytes());
            assert_eq!(c.status, 200);
            assert!(c.header("Mcp-Session-Id").is_some());
            let v = c.json();
            assert_eq!(v["result"]["protocolVersion"], expect, "asked {} on {}: {}", asked, path, v);
        }
    }
}

#[test]
fn token_is_required_except_for_health() {
    let p = Project::fixture(json!({}));
    let token = "a-long-test-token-0123456789abcdef";
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN", token)]);
    assert_eq!(http(d.port, "GET", "/health", &[], b"").status, 200);
    let init = init_msg("2025-11-25").to_string();
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer a-long-test-token-0123456789abcdeX"),
    ] {
        let mut h = vec![ACCEPT, JSON_CT];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let c = http(d.port, "POST", "/mcp", &h, init.as_bytes());
        assert_eq!(c.status, 401, "with {:?}", auth);
        assert!(c.header("WWW-Authenticate").map(|w| w.starts_with("Bearer")).unwrap_or(false), "{:?}", c.headers);
    }
    let m = Mcp::open_with(d.port, "/mcp/fx", Some(token));
    assert_eq!(m.call_text("echo", json!({"text": "authorized"})), "authorized");
    // The token is checked on every request of a session, not only at initialize.
    let h = [ACCEPT, JSON_CT, ("Mcp-Session-Id", m.sid.as_str())];
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    assert_eq!(http(d.port, "POST", "/mcp/fx", &h, ping.as_bytes()).status, 401);
}

#[test]
fn host_and_origin_checks_stop_dns_rebinding() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let init = init_msg("2025-11-25").to_string();
    let evil_host = [("Host", "evil.example:80"), ACCEPT, JSON_CT];
    assert_eq!(http(d.port, "POST", "/mcp", &evil_host, init.as_bytes()).status, 403);
    let localhost = format!("localhost:{}", d.port);
    assert_eq!(http(d.port, "POST", "/mcp", &[("Host", &localhost), ACCEPT, JSON_CT], init.as_bytes()).status, 200);
    let evil_origin = [("Origin", "http://evil.example"), ACCEPT, JSON_CT];
    assert_eq!(http(d.port, "POST", "/mcp", &evil_origin, init.as_bytes()).status, 403);
    drop(d);

    let d = Daemon::start(&p, &["--allowed-host", "mcp.internal", "--allowed-origin", "https://app.example"]);
    let host = format!("mcp.internal:{}", d.port);
    assert_eq!(http(d.port, "POST", "/mcp", &[("Host", &host), ACCEPT, JSON_CT], init.as_bytes()).status, 200);
    assert_eq!(
        http(d.port, "POST", "/mcp", &[("Host", "other.internal"), ACCEPT, JSON_CT], init.as_bytes()).status,
        403
    );
    let ok_origin = [("Origin", "https://app.example"), ACCEPT, JSON_CT];
    assert_eq!(http(d.port, "POST", "/mcp", &ok_origin, init.as_bytes()).status, 200);
    assert_eq!(http(d.port, "POST", "/mcp", &evil_origin, init.as_bytes()).status, 403);
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[test]
fn per_server_and_aggregated_endpoints_route_to_the_right_child() {
    let p = two_fixtures(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let one = Mcp::open(d.port, "/mcp/fx");
    let names = one.tool_names();
    assert!(names.contains(&"echo".to_string()) && !names.iter().any(|n| n.contains("__")), "{:?}", names);
    let all = Mcp::open(d.port, "/mcp");
    let names = all.tool_names();
    for n in ["fx__echo", "fy__echo", "fx__add", "fy__sleep"] {
        assert!(names.contains(&n.to_string()), "{} missing from {:?}", n, names);
    }
    assert_eq!(names.len(), 40, "{:?}", names);
    // An unknown server: 404.
    let c = http(d.port, "POST", "/mcp/nope", &[ACCEPT, JSON_CT], init_msg("2025-11-25").to_string().as_bytes());
    assert_eq!(c.status, 404);
    // A call through /mcp reaches fy alone.
    assert_eq!(all.call_text("fy__add", json!({"a": 40, "b": 2})), "42");
    assert_eq!(all.call_text("fy__echo", json!({"text": "to fy"})), "to fy");
    assert_eq!(server_status(&p, "fy")["calls"], 2);
    assert_eq!(server_status(&p, "fx")["calls"], 0);
    assert_eq!(all.call_text("fx__echo", json!({"text": "to fx"})), "to fx");
    assert_eq!(server_status(&p, "fx")["calls"], 1);
    // An unknown aggregated name is an error, not a crash.
    let v = all.call("nope__echo", json!({}));
    assert!(v["error"]["message"].as_str().unwrap().contains("Unknown tool"), "{}", v);
}

#[test]
fn progress_arrives_on_the_request_stream_with_the_clients_token() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    for path in ["/mcp/fx", "/mcp"] {
        let m = Mcp::open(d.port, path);
        let tool = if path == "/mcp" { "fx__sleep" } else { "sleep" };
        let mut c = m.post(&json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call",
            "params": {"name": tool, "arguments": {"ms": 400}, "_meta": {"progressToken": "my-own-token"}}}));
        assert_eq!(c.status, 200);
        assert!(c.is_sse(), "progress needs an SSE answer: {:?}", c.headers);
        let mut progress = Vec::new();
        let fin = loop {
            let e = c.next_event().expect("the stream ended before the answer");
            if e["method"] == "notifications/progress" {
                assert_eq!(e["params"]["progressToken"], "my-own-token", "{}", e);
                progress.push(e["params"]["progress"].as_f64().unwrap());
            } else {
                break e;
            }
        };
        assert_eq!(fin["id"], "call-1");
        assert_eq!(fin["result"]["content"][0]["text"], "slept 400");
        assert_eq!(progress, vec![1.0, 2.0, 3.0, 4.0]);
    }
}

#[test]
fn sampling_goes_to_the_caller_and_its_answer_back_to_the_child() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    for path in ["/mcp/fx", "/mcp"] {
        let m = Mcp::open(d.port, path);
        let tool = if path == "/mcp" { "fx__sample" } else { "sample" };
        let mut c = m.post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {"prompt": "say hi"}}}));
        if !c.is_sse() {
            panic!("the sampling request did not come on the call's stream; the answer was {}", c.text());
        }
        let ask = c.next_event().expect("a sampling request");
        assert_eq!(ask["method"], "sampling/createMessage", "{}", ask);
        assert_eq!(ask["params"]["messages"][0]["content"]["text"], "say hi");
        let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {
            "role": "assistant", "content": {"type": "text", "text": format!("ANSWER-via-{}", path)}, "model": "test-model"}});
        assert_eq!(m.post(&answer).status, 202);
        let fin = c.next_event().expect("the tool result");
        assert_eq!(fin["id"], 7);
        assert_eq!(fin["result"]["content"][0]["text"], format!("sampled: ANSWER-via-{}", path));

        // A session that did not declare sampling is never sent the request: the child is
        // told why at once, and its tool says so.
        let m = Mcp::open_declaring(d.port, path, json!({"roots": {}, "elicitation": {}}));
        let text = refused_at_once(&m, tool, json!({"prompt": "say hi"}));
        assert!(text.starts_with("sampling failed: mcpctl gateway:"), "{}", text);
        assert!(text.contains("`sampling/createMessage`") && text.contains("the `sampling` capability"), "{}", text);
    }
}

/// Call `tool` in a session that cannot be sent what the tool asks its client: the answer
/// comes with no server→client request before it; the text of its (error) result.
fn refused_at_once(m: &Mcp, tool: &str, args: Value) -> String {
    let started = Instant::now();
    let mut c = m.post(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
        "params": {"name": tool, "arguments": args}}));
    assert_eq!(c.status, 200);
    let fin = if c.is_sse() {
        let e = c.next_event().expect("an answer");
        assert!(e.get("method").is_none(), "the client was sent a request it did not declare: {}", e);
        e
    } else {
        c.json()
    };
    assert!(started.elapsed() < Duration::from_secs(10), "not answered at once: {:?}", started.elapsed());
    assert_eq!(fin["id"], 8, "{}", fin);
    assert_eq!(fin["result"]["isError"], true, "{}", fin);
    fin["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text: {}", fin)).to_string()
}

#[test]
fn roots_are_asked_of_a_caller_that_declared_them_only() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    for path in ["/mcp/fx", "/mcp"] {
        let tool = if path == "/mcp" { "fx__roots" } else { "roots" };
        let m = Mcp::open_declaring(d.port, path, json!({"roots": {}}));
        let mut c = m.post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}}));
        if !c.is_sse() {
            panic!("the roots request did not come on the call's stream; the answer was {}", c.text());
        }
        let ask = c.next_event().expect("a roots request");
        assert_eq!(ask["method"], "roots/list", "{}", ask);
        let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": [{"uri": "file:///the/root"}]}});
        assert_eq!(m.post(&answer).status, 202);
        let fin = c.next_event().expect("the tool result");
        assert_eq!(fin["id"], 7);
        assert!(fin["result"]["content"][0]["text"].as_str().unwrap().contains("file:///the/root"), "{}", fin);

        // Declaring sampling and elicitation but not roots: refused, the child told why.
        let m = Mcp::open_declaring(d.port, path, json!({"sampling": {}, "elicitation": {}}));
        let text = refused_at_once(&m, tool, json!({}));
        assert!(text.starts_with("roots failed: mcpctl gateway:"), "{}", text);
        assert!(text.contains("`roots/list`") && text.contains("the `roots` capability"), "{}", text);
    }
}

#[test]
fn tools_list_changed_reaches_a_get_stream() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    for path in ["/mcp/fx", "/mcp"] {
        let m = Mcp::open(d.port, path);
        let extra = if path == "/mcp" { "fx__extra" } else { "extra" };
        let toggle = if path == "/mcp" { "fx__toggle_tool" } else { "toggle_tool" };
        let had = m.tool_names().contains(&extra.to_string());
        let mut stream = m.get_stream();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(e) = stream.next_event() {
                if tx.send(e).is_err() {
                    break;
                }
            }
        });
        let text = m.call_text(toggle, json!({}));
        assert_eq!(text, if had { "extra tool removed" } else { "extra tool added" });
        let e = rx.recv_timeout(Duration::from_secs(10)).expect("list_changed on the GET stream");
        assert_eq!(e["method"], "notifications/tools/list_changed", "{}", e);
        assert_eq!(m.tool_names().contains(&extra.to_string()), !had);
        if !had {
            assert_eq!(m.call_text(extra, json!({})), "extra");
        }
        m.delete();
    }
}

#[test]
fn session_isolation_gives_each_session_its_own_child() {
    let p = Project::fixture(json!({"isolation": "session"}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let base = fixture_children(d.pid);
    let a = Mcp::open(d.port, "/mcp/fx");
    let b = Mcp::open(d.port, "/mcp/fx");
    assert_eq!(a.call_text("echo", json!({"text": "a"})), "a");
    assert_eq!(b.call_text("echo", json!({"text": "b"})), "b");
    let now = fixture_children(d.pid);
    let own: Vec<i32> = now.iter().filter(|p| !base.contains(p)).copied().collect();
    assert_eq!(own.len(), 2, "two sessions, two own children: before {:?}, now {:?}", base, now);
    // State in one child is not seen by the other: a's toggle does not add b's tool.
    assert_eq!(a.call_text("toggle_tool", json!({})), "extra tool added");
    wait_until("a's list to show extra", 5, || a.tool_names().contains(&"extra".to_string()));
    assert!(!b.tool_names().contains(&"extra".to_string()));
    assert_eq!(b.call_text("toggle_tool", json!({})), "extra tool added");
    // Ending a session ends its child.
    assert_eq!(a.delete(), 200);
    wait_until("a's child to exit", 10, || fixture_children(d.pid).len() == now.len() - 1);
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[test]
fn a_client_that_disconnects_mid_call_does_not_hurt_the_daemon() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    for _ in 0..3 {
        let mut s = connect(d.port);
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 800}}}).to_string();
        write!(
            s,
            "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMcp-Session-Id: {}\r\nContent-Length: {}\r\n\r\n{}",
            d.port,
            m.sid,
            body.len(),
            body
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // The next call is served at once, the dropped ones finish in the background.
    let t = Instant::now();
    assert_eq!(m.call_text("echo", json!({"text": "next"})), "next");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The dropped calls end in the server (run out, or cancelled).
    let fx = fixture_children(d.pid);
    assert_eq!(fx.len(), 1, "{:?}", fx);
    wait_until("the dropped calls to end", 10, || support::fixture_sleeps_running(fx[0]) == 0);
    assert!(alive(d.pid));
    assert_eq!(m.call_text("echo", json!({"text": "after"})), "after");
    assert_eq!(server_status(&p, "fx")["restarts"], 0);
}

#[test]
fn a_child_crash_fails_the_call_at_once_and_the_server_restarts() {
    let p = Project::fixture(json!({"timeout": 20}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    assert_eq!(m.call_text("echo", json!({"text": "before"})), "before");
    let t = Instant::now();
    let v = m.call("crash", json!({"code": 3}));
    assert!(t.elapsed() < Duration::from_secs(5), "the crash was noticed only after {:?}", t.elapsed());
    let msg = v["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error: {}", v));
    assert!(msg.contains("`fx`") && msg.contains("status 3"), "{}", msg);
    wait_until("the restart", 15, || {
        let s = server_status(&p, "fx");
        s["restarts"].as_u64().unwrap_or(0) >= 1 && s["status"] == "ready"
    });
    assert_eq!(m.call_text("echo", json!({"text": "after"})), "after");
}

#[test]
fn a_hanging_tool_times_out_and_the_daemon_is_fine() {
    let p = Project::fixture(json!({"timeout": 1}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    let t = Instant::now();
    let v = m.call("hang", json!({}));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(v["error"]["message"].as_str().unwrap().contains("did not answer"), "{}", v);
    assert_eq!(m.call_text("echo", json!({"text": "fine"})), "fine");
    let log = std::fs::read_to_string(log_file(&p)).unwrap();
    assert!(log.lines().any(|l| l.contains("tool=hang") && l.contains("outcome=error")), "{}", log);
}

#[test]
fn a_stderr_flood_does_not_stall() {
    let p = Project::fixture(json!({"timeout": 30}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    let t = Instant::now();
    assert_eq!(m.call_text("stderr_flood", json!({"bytes": 5 * 1024 * 1024})), "flooded 5242880");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(m.call_text("echo", json!({"text": "after flood"})), "after flood");
    assert_eq!(server_status(&p, "fx")["restarts"], 0);
}

#[test]
fn garbage_on_stdout_does_not_break_the_session() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let m = Mcp::open(d.port, "/mcp/fx");
    assert_eq!(m.call_text("garbage", json!({})), "garbage sent");
    assert_eq!(m.call_text("echo", json!({"text": "clean"})), "clean");
    assert_eq!(server_status(&p, "fx")["restarts"], 0);
}

#[test]
fn stop_with_calls_in_flight_finishes_within_its_grace_period() {
    let p = two_fixtures(json!({"timeout": 60}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let kids = fixture_children(d.pid);
    assert_eq!(kids.len(), 2);
    let port = d.port;
    let (done_tx, done_rx) = mpsc::channel();
    for path in ["/mcp/fx", "/mcp/fy", "/mcp"] {
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let m = Mcp::open(port, path);
            let tool = if path == "/mcp" { "fx__sleep" } else { "sleep" };
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"ms": 30000}}});
            // An error answer or a closed connection are both fine; hanging is not.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer_of(m.post(&body))));
            let _ = done_tx.send(outcome.map(|v| v.to_string()).unwrap_or_else(|_| "connection closed".into()));
        });
    }
    wait_until("three calls in flight", 10, || {
        let v = status_json(&p);
        v["servers"].as_array().unwrap().iter().map(|s| s["calls"].as_u64().unwrap_or(0)).sum::<u64>() == 3
    });
    let t = Instant::now();
    p.cmd().args(["stop"]).success().stdout_has("stopped");
    assert!(t.elapsed() < Duration::from_secs(10), "stop took {:?}", t.elapsed());
    assert!(!alive(d.pid));
    assert!(!state_file(&p).exists());
    for k in &kids {
        wait_until("children to exit", 5, || !alive(*k));
    }
    for _ in 0..3 {
        let outcome = done_rx.recv_timeout(Duration::from_secs(5)).expect("an in-flight call still hangs after stop");
        assert!(!outcome.contains("slept"), "a 30 s sleep completed: {}", outcome);
    }
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn sixty_four_sessions_on_one_child_get_their_own_answers() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let port = d.port;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/mcp/fx" } else { "/mcp" };
                let tool = if i % 2 == 0 { "echo" } else { "fx__echo" };
                // Everyone starts together (before anything that could panic).
                barrier.wait();
                let m = Mcp::open(port, path);
                let mut wrong = Vec::new();
                for j in 0..8 {
                    let text = format!("session-{}-call-{}-{}", i, j, "x".repeat((i * 7 + j) % 50));
                    let got = m.call_text(tool, json!({"text": text}));
                    if got != text {
                        wrong.push((text, got));
                    }
                }
                m.delete();
                wrong
            })
        })
        .collect();
    let wrong: Vec<_> = threads.into_iter().flat_map(|t| t.join().expect("a session thread failed")).collect();
    assert!(wrong.is_empty(), "cross-talk: {:?}", wrong);
    assert_eq!(server_status(&p, "fx")["calls"], 64 * 8);
    assert_eq!(fixture_children(d.pid).len(), 1, "one shared child");
}

// ---------------------------------------------------------------------------
// The CLI through the daemon
// ---------------------------------------------------------------------------

#[test]
fn cli_calls_go_through_the_daemon_unless_told_otherwise() {
    let p = Project::new(
        &json!({"mcpServers": {"fx": {"command": fixture_bin(), "alwaysAllow": ["echo", "hang", "fail"], "timeout": 5}}}),
    );
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let kids = fixture_children(d.pid);
    assert_eq!(kids.len(), 1);
    // Through the daemon: the verbose log says so, the daemon counts the call, and the
    // daemon's one child served it (no new child of the daemon; `call` spawned none).
    let r = p.cmd().args(["-v", "call", "fx", "echo", "--text", "via daemon"]).success();
    assert_eq!(r.stdout().trim(), "via daemon");
    r.stderr_has(&format!("using the daemon at http://127.0.0.1:{}", d.port));
    assert_eq!(server_status(&p, "fx")["calls"], 1);
    assert_eq!(fixture_children(d.pid), kids);
    // The allowlist still applies: forbidden, exit 2, nothing called.
    let r = p.cmd().args(["call", "fx", "add", "--a", "1", "--b", "2"]).status(2);
    assert!(format!("{}{}", r.stdout(), r.stderr()).contains("alwaysAllow"), "{}", r.dump());
    assert_eq!(server_status(&p, "fx")["calls"], 1);
    // --yes approves it for this shell, but the daemon's policy does not run unlisted
    // tools: the shell's own child runs it (the daemon's counter does not move).
    p.cmd().args(["--yes", "call", "fx", "add", "--a", "1", "--b", "2"]).success().stdout_has("3");
    assert_eq!(server_status(&p, "fx")["calls"], 1);
    // Exit codes: a tool error is 1, a timeout is 2.
    p.cmd().args(["call", "fx", "fail", "--message", "nope"]).status(1);
    p.cmd().args(["--timeout", "1", "call", "fx", "hang"]).status(2);
    assert_eq!(server_status(&p, "fx")["calls"], 3);
    // --no-daemon: direct, the daemon's counter does not move.
    let r = p.cmd().args(["-v", "--no-daemon", "call", "fx", "echo", "--text", "direct"]).success();
    assert_eq!(r.stdout().trim(), "direct");
    assert!(!r.stderr().contains("using the daemon"), "{}", r.dump());
    assert_eq!(server_status(&p, "fx")["calls"], 3);
    // `list` shows the live state and tool count.
    let v = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(v["daemon"]["status"], "running");
    assert_eq!(v["servers"][0]["status"], "ready");
    assert_eq!(v["servers"][0]["tools_count"], 20);
    let text = p.cmd().args(["list"]).success().stdout();
    assert!(text.contains("fx: ready") && text.contains("Tools: 20"), "{}", text);
}

// ---------------------------------------------------------------------------
// Servers still starting
// ---------------------------------------------------------------------------

/// A client that calls at once after `mcpctl start`, before a server has answered its
/// `tools/list`, waits for it (bounded by its `timeout`) instead of hearing "Unknown tool";
/// one whose start fails gets that failure within its timeout.
#[test]
fn calls_right_after_start_wait_for_a_starting_server() {
    let slow =
        |ms: &str| json!({"command": fixture_bin(), "args": ["--slow-start", ms], "alwaysAllow": ["*"], "timeout": 30});
    let p = Project::new(&json!({"mcpServers": {
        // Slower than the 5 s `initialize` on /mcp/<server> waits for a starting child.
        "sa": slow("7000"),
        "sb": slow("7000"),
        "sc": slow("7000"),
        // Ready well within the 5 s a listing of /mcp waits.
        "sd": slow("1000"),
        "hang": {"command": fixture_bin(), "args": ["--hang-on-init"], "alwaysAllow": ["*"], "timeout": 2},
    }}));
    let d = Daemon::start(&p, &[]);
    // Nothing is ready yet: each request below is sent while its server is starting.
    for s in ["sa", "sb", "sc", "sd"] {
        assert_eq!(server_status(&p, s)["status"], "starting", "{}", status_json(&p));
    }
    std::thread::scope(|scope| {
        let per_server = scope.spawn(|| {
            let one = Mcp::open(d.port, "/mcp/sa");
            let names = one.tool_names();
            assert!(names.contains(&"echo".to_string()), "{:?}", names);
            one.call_text("echo", json!({"text": "one"}))
        });
        let aggregated = scope.spawn(|| {
            let all = Mcp::open(d.port, "/mcp");
            all.call_text("sb__echo", json!({"text": "all"}))
        });
        let cli = scope.spawn(|| p.cmd().args(["-v", "call", "sc", "echo", "--text", "cli"]).success());
        let listing = scope.spawn(|| Mcp::open(d.port, "/mcp").tool_names());
        let failing = scope.spawn(|| {
            let all = Mcp::open(d.port, "/mcp");
            let started = Instant::now();
            let v = all.call("hang__echo", json!({"text": "x"}));
            (v, started.elapsed())
        });
        assert_eq!(per_server.join().unwrap(), "one");
        assert_eq!(aggregated.join().unwrap(), "all");
        let r = cli.join().unwrap();
        assert_eq!(r.stdout().trim(), "cli", "{}", r.dump());
        r.stderr_has("using the daemon");
        let names = listing.join().unwrap();
        assert!(names.contains(&"sd__echo".to_string()), "{:?}", names);
        let (v, took) = failing.join().unwrap();
        let msg = v["error"]["message"].as_str().unwrap_or_else(|| panic!("no error: {}", v)).to_string();
        assert!(!msg.contains("Unknown tool") && msg.contains("server `hang`"), "{}", msg);
        assert!(msg.contains("initialize") || msg.contains("still starting"), "{}", msg);
        assert!(took < Duration::from_secs(6), "took {:?}: {}", took, msg);
    });
    // Each call reached its own server, through the daemon.
    for s in ["sa", "sb", "sc"] {
        assert_eq!(server_status(&p, s)["calls"], 1, "{}", s);
    }
}

/// A 2026-07-28 child asks for input inside its result (`input_required`), told only what
/// the session declared; one that asks for more anyway (the conformance server's tools do)
/// is not passed on: the call fails at once, naming what the session did not declare.
#[test]
fn a_2026_07_28_childs_input_requests_reach_a_session_that_declared_them_only() {
    if !support::peers_available() {
        return;
    }
    let script = support::repo().join("fixtures/conformance_server_modern.py");
    let p = Project::new(&json!({"mcpServers": {"cf": {
        "command": support::venv_modern_python(), "args": [script], "alwaysAllow": ["*"], "timeout": 30,
    }}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let m = Mcp::open_declaring(d.port, "/mcp/cf", json!({"sampling": {}}));
    // Declared: the question comes on the call's stream, the answer goes back in the retry.
    let mut c = m.post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "test_input_required_result_sampling", "arguments": {}}}));
    if !c.is_sse() {
        panic!("the sampling request did not come on the call's stream; the answer was {}", c.text());
    }
    let ask = c.next_event().expect("a sampling request");
    assert_eq!(ask["method"], "sampling/createMessage", "{}", ask);
    let answer = json!({"jsonrpc": "2.0", "id": ask["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "test-model"}});
    assert_eq!(m.post(&answer).status, 202);
    let fin = c.next_event().expect("the tool result");
    assert_eq!(fin["id"], 7);
    assert_eq!(fin["result"]["content"][0]["text"], "Sampling response: Paris", "{}", fin);

    // Not declared (roots): the client is sent nothing; the call fails, saying why.
    let started = Instant::now();
    let mut c = m.post(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
        "params": {"name": "test_input_required_result_list_roots", "arguments": {}}}));
    let fin = if c.is_sse() { c.next_event().expect("an answer") } else { c.json() };
    assert!(fin.get("method").is_none(), "the client was sent a request it did not declare: {}", fin);
    assert!(started.elapsed() < Duration::from_secs(10), "not answered at once");
    assert_eq!(fin["id"], 8, "{}", fin);
    let msg = fin["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error: {}", fin));
    assert!(msg.contains("`roots/list`") && msg.contains("did not declare the `roots` capability"), "{}", msg);
}
