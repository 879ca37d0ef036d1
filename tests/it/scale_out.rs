//! Scale-out (docs/scale-out.md): three daemons with node ids behind nginx, configured with
//! the very nginx file the document shows (its ports replaced). Sessions must reach the
//! daemon that made them, 2026-07-28 requests any daemon, and when a daemon dies only its
//! sessions may be lost (404, then a new session works). Needs `nginx` (Debian
//! `nginx-light`; `make test` installs it where it can); without it the test is skipped,
//! unless MCPCTL_REQUIRE_PEERS is set. Everything runs on 127.0.0.1 and every process it
//! starts (daemons, nginx, the load generator) is stopped by its pid.

use crate::support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, Daemon, Project};

const TOKEN: &str = "scale-out-test-token-0123456789";
const MODERN: &str = "2026-07-28";

fn nginx_bin() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').map(PathBuf::from).chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    for d in dirs {
        let p = d.join("nginx");
        if p.is_file() {
            return Some(p);
        }
    }
    support::missing_peer(
        "nginx is not installed (`make deps` installs nginx-light as root; else apt-get install nginx-light)",
    );
    None
}

/// The first ```nginx block of docs/scale-out.md, for daemons on `ports` (node ids a, b, c)
/// and nginx on `listen`.
fn documented_config(ports: &[u16; 3], listen: u16) -> String {
    let doc = std::fs::read_to_string(support::repo().join("docs/scale-out.md")).unwrap();
    let start = doc.find("```nginx\n").expect("docs/scale-out.md has an nginx block") + "```nginx\n".len();
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    for needle in ["127.0.0.1:7801", "127.0.0.1:7802", "127.0.0.1:7803", "listen 127.0.0.1:8080;"] {
        assert!(block.contains(needle), "the documented config lacks {needle}");
    }
    block
        .replace("127.0.0.1:7801", &format!("127.0.0.1:{}", ports[0]))
        .replace("127.0.0.1:7802", &format!("127.0.0.1:{}", ports[1]))
        .replace("127.0.0.1:7803", &format!("127.0.0.1:{}", ports[2]))
        .replace("listen 127.0.0.1:8080;", &format!("listen 127.0.0.1:{listen};"))
}

/// nginx with its own prefix, config, logs, temp folders and pid file in `dir`; stopped by
/// its pid on drop.
struct Nginx {
    dir: PathBuf,
    pid: i32,
    port: u16,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path, site: &str) -> Nginx {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        std::fs::write(dir.join("mcpctl.conf"), site).unwrap();
        let conf = format!(
            "worker_processes 1;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               include {d}/mcpctl.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let port = site
            .lines()
            .find_map(|l| l.trim().strip_prefix("listen 127.0.0.1:"))
            .and_then(|p| p.trim_end_matches(';').parse().ok())
            .unwrap();
        let child = Command::new(bin)
            .args(["-e", &format!("{d}/error.log"), "-p", &format!("{d}/"), "-c", &format!("{d}/nginx.conf")])
            .args(["-g", &format!("daemon off; pid {d}/nginx.pid;")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let n = Nginx { dir: dir.to_path_buf(), pid: child.id() as i32, port };
        // Reaped by init when this test process exits; waited for by pid below.
        std::mem::forget(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(unsafe { libc::kill(n.pid, 0) } == 0, "nginx exited during start:\n{}", n.log());
            assert!(Instant::now() < deadline, "nginx did not listen within 10 s:\n{}", n.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: fast shutdown of the master and its worker; SIGKILL if it lingers.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) } == 0 && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POST `msg` with the token and `headers`: (status, session id sent back, JSON-RPC messages).
fn post(url: &str, headers: &[(&str, &str)], msg: &Value) -> (u16, Option<String>, Vec<Value>) {
    let mut r = agent()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {TOKEN}"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send(msg.to_string().as_str()).unwrap();
    let status = resp.status().as_u16();
    let sid = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    let text = resp.into_body().read_to_string().unwrap_or_default();
    let msgs = text
        .lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (status, sid, msgs)
}

/// A session through nginx: initialize + initialized; its id.
fn open_session(url: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (status, sid, msgs) = post(url, &[], &init);
    assert_eq!(status, 200, "initialize through nginx: {msgs:?}");
    let sid = sid.expect("initialize answers with Mcp-Session-Id");
    let (status, _, _) =
        post(url, &[("Mcp-Session-Id", &sid)], &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    assert_eq!(status, 202);
    sid
}

/// `tools/call echo` in session `sid`: (HTTP status, the answer's text or the error).
fn session_echo(url: &str, sid: &str, text: &str) -> (u16, String) {
    let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "fx__echo", "arguments": {"text": text}}});
    let (status, _, msgs) = post(url, &[("Mcp-Session-Id", sid), ("MCP-Protocol-Version", "2025-11-25")], &msg);
    let answer = msgs.iter().find(|m| m["id"] == 7 || m.get("error").is_some());
    let text = match answer {
        Some(m) if m.get("error").is_some() => m["error"].to_string(),
        Some(m) => m["result"]["content"][0]["text"].as_str().unwrap_or("").to_string(),
        None => String::new(),
    };
    (status, text)
}

/// A stateless 2026-07-28 `tools/call echo` (routing headers, no session): the answer's text.
fn modern_echo(url: &str, text: &str) -> String {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"text": text}, "_meta": meta}});
    let headers = [("MCP-Protocol-Version", MODERN), ("Mcp-Method", "tools/call"), ("Mcp-Name", "fx__echo")];
    let (status, sid, msgs) = post(url, &headers, &msg);
    assert_eq!(status, 200, "2026-07-28 call through nginx: {msgs:?}");
    assert!(sid.is_none(), "a 2026-07-28 request opens no session");
    let r = msgs.iter().find(|m| m["id"] == 1).unwrap_or_else(|| panic!("no answer in {msgs:?}"));
    r["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {r}")).to_string()
}

/// A session's `GET` stream through nginx: its lines, as they come, on a channel (the
/// reading thread ends when the stream does, at the latest when nginx stops).
fn get_stream(url: &str, sid: &str) -> std::sync::mpsc::Receiver<String> {
    let resp = agent()
        .get(url)
        .header("Accept", "text/event-stream")
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("Mcp-Session-Id", sid)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET stream through nginx");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn node(sid: &str) -> &str {
    sid.split_once('.').map(|(n, _)| n).unwrap_or("")
}

/// `mcpctl-loadgen run` through nginx (bounded: `calls` per session, at most 60 s).
fn loadgen(url: &str, sessions: usize, calls: u64) -> Value {
    let lg = PathBuf::from(env!("CARGO_BIN_EXE_mcpctl-loadgen"));
    let mut child = Command::new(lg)
        .args(["run", url, "--sessions", &sessions.to_string(), "--calls", &calls.to_string()])
        .args(["--warmup", "2", "--duration", "60", "--token", TOKEN, "--label", "nginx"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    if support::wait_until(&mut child, deadline).is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "loadgen: {:?}\n{}\n{}", out.status, text, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("loadgen printed no JSON ({e}): {text}"))
}

#[test]
fn sessions_stay_on_their_daemon_behind_nginx_and_only_a_dead_daemons_are_lost() {
    let Some(nginx_bin) = nginx_bin() else { return };
    let t0 = Instant::now();
    let projects: Vec<Project> = (0..3).map(|_| Project::fixture(json!({}))).collect();
    let ids = ["a", "b", "c"];
    let env = [("MCPCTL_TOKEN", TOKEN)];
    let mut daemons: Vec<Option<Daemon>> =
        projects.iter().zip(ids).map(|(p, id)| Some(Daemon::start_env(p, &["--node-id", id], &env))).collect();
    for d in daemons.iter().flatten() {
        d.wait_ready(&env);
    }
    let ports = [0, 1, 2].map(|i| daemons[i].as_ref().unwrap().port);
    let dir = std::env::temp_dir().join(format!("mcpctl-test-nginx-{}", std::process::id()));
    let nginx = Nginx::start(&nginx_bin, &dir, &documented_config(&ports, free_port()));
    let url = nginx.url();

    // 2026-07-28 requests: no session, any daemon (three in a row: each daemon once).
    for i in 0..3 {
        assert_eq!(modern_echo(&url, &format!("modern-{i}")), format!("modern-{i}"));
    }

    // 64 sessions, spread over the three daemons, each reaching its own on every call.
    let r = loadgen(&format!("{url}/fx"), 64, 20);
    assert_eq!(r["init_errors"], 0, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["mismatches"], 0, "{r}");
    assert_eq!(r["calls"], 64 * 20, "{r}");
    let spread: BTreeMap<String, u64> = serde_json::from_value(r["session_nodes"].clone()).unwrap();
    assert_eq!(spread.keys().map(String::as_str).collect::<Vec<_>>(), ids, "sessions per node: {r}");
    assert!(spread.values().all(|&n| n >= 10), "round robin spreads the sessions: {spread:?}");

    // Sessions on every daemon; then daemon b dies.
    let sessions: Vec<String> = (0..9).map(|_| open_session(&url)).collect();
    for id in ids {
        assert!(sessions.iter().any(|s| node(s) == id), "no session on {id}: {sessions:?}");
    }
    for s in &sessions {
        assert_eq!(session_echo(&url, s, s), (200, s.clone()));
    }
    // A session's GET stream passes through nginx: it opens at once, and the list change a
    // call sets off arrives while it stays open. (With `proxy_buffering on`, nginx 1.22 held
    // the stream's headers back until the daemon's first keep-alive comment, 15 s later.)
    let on_a = sessions.iter().find(|s| node(s) == "a").unwrap();
    let opening = Instant::now();
    let stream = get_stream(&url, on_a);
    assert!(
        opening.elapsed() < Duration::from_secs(5),
        "the GET stream took {:?} to open through nginx",
        opening.elapsed()
    );
    assert_eq!(session_echo(&url, on_a, "x").0, 200);
    let msg = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "fx__toggle_tool", "arguments": {}}});
    let (status, _, _) = post(&url, &[("Mcp-Session-Id", on_a), ("MCP-Protocol-Version", "2025-11-25")], &msg);
    assert_eq!(status, 200);
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.recv_timeout(left) {
            Ok(line) if line.contains("notifications/tools/list_changed") => {
                eprintln!("tools/list_changed on the GET stream {} ms after the call", asked.elapsed().as_millis());
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no tools/list_changed on the GET stream through nginx within 10 s ({e})"),
        }
    }
    let b = daemons[1].take().unwrap();
    unsafe { libc::kill(b.pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while unsafe { libc::kill(b.pid, 0) } == 0 {
        assert!(Instant::now() < deadline, "the daemon survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(b);

    for s in &sessions {
        let (status, text) = session_echo(&url, s, s);
        if node(s) == "b" {
            assert_eq!(status, 404, "a dead daemon's session is gone: {text}");
            assert!(text.contains("-32001") && text.contains("initialize a new session"), "{text}");
            // The client initializes again, and lands on a live daemon.
            let again = open_session(&url);
            assert!(["a", "c"].contains(&node(&again)), "{again}");
            assert_eq!(session_echo(&url, &again, "again"), (200, "again".to_string()));
        } else {
            assert_eq!((status, text), (200, s.clone()), "a live daemon's session keeps working");
        }
    }
    // Stateless requests go to the live daemons (more than one round of the three).
    for i in 0..6 {
        assert_eq!(modern_echo(&url, &format!("after-{i}")), format!("after-{i}"));
    }
    // New sessions too, all of them on the two live daemons.
    let r = loadgen(&format!("{url}/fx"), 16, 10);
    assert_eq!(
        (r["init_errors"].clone(), r["errors"].clone(), r["mismatches"].clone()),
        (json!(0), json!(0), json!(0)),
        "{r}"
    );
    let spread: BTreeMap<String, u64> = serde_json::from_value(r["session_nodes"].clone()).unwrap();
    assert_eq!(spread.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "c"], "{r}");

    drop(nginx);
    drop(daemons);
    eprintln!("scale-out test took {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn a_bad_node_id_stops_start_with_one_line() {
    let p = Project::fixture(json!({}));
    p.cmd()
        .args(["start", "--port", "0", "--node-id", "a.b"])
        .status(1)
        .stderr_has("--node-id `a.b` is not a node id: 1 to 32 letters, digits, `_` or `-`");
    p.cmd()
        .args(["start", "--port", "0"])
        .env("MCPCTL_NODE_ID", "x".repeat(33))
        .status(1)
        .stderr_has("MCPCTL_NODE_ID `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` is not a node id");
    assert!(!p.root.join(".mcpctl/daemon.json").exists(), "no daemon started");
}
