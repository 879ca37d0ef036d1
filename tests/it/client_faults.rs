//! The shell client against HTTP servers that misbehave: every request, the cancel and
//! the closing DELETE included, has a deadline, so a server that never answers cannot hold
//! a command past its `--timeout`, nor keep it alive after Ctrl-C or SIGTERM.

use crate::support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// A Streamable HTTP server that initializes and lists one tool `slow`, then never answers
/// anything else (the call, the cancel, the DELETE): it holds each such connection open
/// for 60 s. Serves at most 64 connections; the thread ends with the test process.
fn wedged_server() -> u16 {
    fake_server(false).0
}

/// As [`wedged_server`], with the count of `tools/call` requests it has received.
fn counted_wedged_server() -> (u16, Arc<AtomicUsize>) {
    fake_server(false)
}

/// A server that initializes and lists `slow`, then answers every call with HTTP 500.
fn broken_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(256).flatten() {
            std::thread::spawn(move || serve_broken(conn));
        }
    });
    port
}

fn serve_broken(c: TcpStream) {
    let mut c = c;
    loop {
        let Some((_, body)) = read_request(&mut c) else { return };
        let id = serde_json::from_str::<serde_json::Value>(&body).ok().map(|v| v["id"].clone());
        let (status, a) = if body.contains("\"initialize\"") {
            (
                "200 OK",
                serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}}, "serverInfo": {"name": "broken", "version": "0"}}})
                .to_string(),
            )
        } else if body.contains("\"tools/list\"") {
            (
                "200 OK",
                serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
                {"name": "slow", "inputSchema": {"type": "object"}}]}})
                .to_string(),
            )
        } else if body.contains("\"tools/call\"") {
            ("500 Internal Server Error", "upstream database is down".to_string())
        } else {
            ("202 Accepted", String::new())
        };
        let r = format!(
            "HTTP/1.1 {}\r\nContent-Type: application/json\r\nMcp-Session-Id: b1\r\nContent-Length: {}\r\n\r\n{}",
            status,
            a.len(),
            a
        );
        if c.write_all(r.as_bytes()).is_err() {
            return;
        }
    }
}

/// With `forgetful`, the server instead answers `tools/call` on its first session with
/// 400 "No valid session ID provided" (as server-everything does after a restart), and
/// answers it on any later session.
/// Also returns the count of `tools/call` requests received.
fn fake_server(forgetful: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64).flatten() {
            let (sessions, calls) = (sessions.clone(), calls.clone());
            std::thread::spawn(move || serve(conn, forgetful, &sessions, &calls));
        }
    });
    (port, counted)
}

fn serve(mut c: TcpStream, forgetful: bool, sessions: &AtomicUsize, calls: &AtomicUsize) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
    loop {
        let Some((head, body)) = read_request(&mut c) else { return };
        if body.contains("\"tools/call\"") {
            calls.fetch_add(1, Ordering::SeqCst);
        }
        let id = serde_json::from_str::<serde_json::Value>(&body).ok().map(|v| v["id"].clone());
        let sid = head.lines().find_map(|l| l.strip_prefix("mcp-session-id:")).map(|v| v.trim().to_string());
        if forgetful && body.contains("\"initialize\"") {
            let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
            let a = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}}, "serverInfo": {"name": "forgetful", "version": "0"}}})
            .to_string();
            let r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s{}\r\nContent-Length: {}\r\n\r\n{}",
                n,
                a.len(),
                a
            );
            let _ = c.write_all(r.as_bytes());
            continue;
        }
        if forgetful && body.contains("\"tools/call\"") {
            let r = if sid.as_deref() == Some("s1") {
                let e = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;
                format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                    e.len(),
                    e
                )
            } else {
                let a = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "answered"}]}}).to_string();
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", a.len(), a)
            };
            let _ = c.write_all(r.as_bytes());
            continue;
        }
        let answer = if body.contains("\"initialize\"") {
            Some(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}}, "serverInfo": {"name": "wedged", "version": "0"}}}))
        } else if body.contains("\"tools/list\"") {
            Some(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
                {"name": "slow", "inputSchema": {"type": "object"}}]}}))
        } else {
            None
        };
        match answer {
            Some(a) => {
                let a = a.to_string();
                let r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\n\r\n{}",
                    a.len(),
                    a
                );
                let _ = c.write_all(r.as_bytes());
            }
            None if body.contains("notifications/initialized") => {
                let _ = c.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            }
            // The call, the cancel, the DELETE: never answered.
            None => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
        }
    }
}

#[test]
fn a_wedged_http_server_cannot_hold_a_call_past_its_timeout() {
    let port = wedged_server();
    let url = format!("http://127.0.0.1:{}/mcp", port);
    let dir = std::env::temp_dir().join(format!("mcpctl-wedged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let run = Cmd::new().cwd(&dir).args(["call", "--url", &url, "slow", "--timeout", "2"]).output();
    let took = started.elapsed();
    assert_eq!(run.out.status.code(), Some(2), "{}", run.dump());
    assert!(run.stderr().contains("timed out after 2s"), "{}", run.dump());
    // The cancel and the DELETE get 2 s each at most.
    assert!(took < Duration::from_secs(7), "took {:?}: {}", took, run.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_ends_a_call_to_a_wedged_http_server_at_once() {
    let (port, calls) = counted_wedged_server();
    let url = format!("http://127.0.0.1:{}/mcp", port);
    let mut child = std::process::Command::new(mcpctl_bin())
        .args(["call", "--url", &url, "slow", "--timeout", "60"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The call is in flight (the server holds it).
    eventually("the call to reach the server", Duration::from_secs(10), || {
        calls.load(Ordering::SeqCst) == 1 || child.try_wait().unwrap().is_some()
    });
    assert!(child.try_wait().unwrap().is_none(), "mcpctl ended before its call reached the server");
    // SAFETY: plain syscall on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let sent = Instant::now();
    let status = wait_until(&mut child, sent + Duration::from_secs(5));
    let took = sent.elapsed();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(status.is_some() && took < Duration::from_millis(1500), "SIGTERM took {:?} ({:?})", took, status);
}

#[test]
fn a_server_that_forgets_the_session_with_400_is_initialized_again() {
    let (port, _) = fake_server(true);
    let url = format!("http://127.0.0.1:{}/mcp", port);
    let dir = std::env::temp_dir().join(format!("mcpctl-forgetful-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = Cmd::new().cwd(&dir).args(["call", "--url", &url, "slow", "--timeout", "5"]).output();
    assert_eq!(run.out.status.code(), Some(0), "{}", run.dump());
    assert_eq!(run.stdout().trim(), "answered", "{}", run.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_http_server_that_never_initializes_gets_a_hint_about_its_url() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(8).flatten() {
            held.push(c); // accepted, never answered
        }
    });
    let dir = std::env::temp_dir().join(format!("mcpctl-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", port);
    let run = Cmd::new().cwd(&dir).args(["--url", &url, "tools", "--timeout", "2"]).output();
    assert_eq!(run.out.status.code(), Some(2), "{}", run.dump());
    assert!(run.stderr().contains("did not answer `initialize`"), "{}", run.dump());
    assert!(run.stderr().contains("MCP endpoint") && !run.stderr().contains("stdio"), "{}", run.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `url` server that initialized but whose calls all fail is not shown `ready`.
#[test]
fn an_upstream_whose_calls_all_fail_is_shown_failing() {
    let port = broken_server();
    let p = Project::new(&serde_json::json!({"mcpServers": {"up": {
        "url": format!("http://127.0.0.1:{}/mcp", port), "alwaysAllow": ["*"]}}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    for _ in 0..3 {
        p.cmd().args(["call", "up", "slow"]).status(1).stderr_has("HTTP 500");
    }
    let v = p.cmd().args(["--json-output", "status"]).success().json();
    let up = v["servers"].as_array().unwrap().iter().find(|s| s["name"] == "up").cloned().unwrap();
    assert_eq!(up["status"], "failing", "{}", up);
    assert!(up["error"].as_str().unwrap_or("").contains("HTTP 500"), "{}", up);
}

/// Through the daemon: an HTTP upstream that accepts and never answers times out at its
/// own `timeout` (its cancel sent off the deadline thread), while a healthy server in the
/// same daemon keeps answering and `status` answers.
#[test]
fn a_wedged_http_upstream_does_not_stall_the_daemon() {
    let (port, calls) = counted_wedged_server();
    let p = Project::new(&serde_json::json!({"mcpServers": {
        "up": {"url": format!("http://127.0.0.1:{}/mcp", port), "alwaysAllow": ["*"], "timeout": 2},
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]}}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let wedged: Vec<_> = (0..3)
        .map(|_| {
            let cmd = p.cmd().args(["call", "up", "slow"]);
            std::thread::spawn(move || (Instant::now(), cmd.output()))
        })
        .collect();
    // All three calls are in flight, held by the server.
    eventually("the three calls to reach the server", Duration::from_secs(10), || calls.load(Ordering::SeqCst) == 3);
    for i in 0..5 {
        let t = Instant::now();
        p.cmd().args(["call", "fx", "echo", "--text", &format!("h{}", i)]).success().stdout_has(&format!("h{}", i));
        assert!(t.elapsed() < Duration::from_millis(1500), "the healthy server took {:?}", t.elapsed());
    }
    let t = Instant::now();
    p.cmd().args(["status"]).success();
    assert!(t.elapsed() < Duration::from_secs(2), "status took {:?}", t.elapsed());
    for w in wedged {
        let (started, run) = w.join().unwrap();
        assert_eq!(run.out.status.code(), Some(2), "{}", run.dump());
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}: {}", started.elapsed(), run.dump());
    }
}
