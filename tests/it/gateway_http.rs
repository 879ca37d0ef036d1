//! The gateway's own HTTP/1.1 server, driven over raw sockets: pipelined requests answered
//! in order, chunked bodies and `Expect: 100-continue`, clear statuses for malformed
//! requests, read deadlines, and a client that does not read a big answer while other
//! sessions keep using the same child.

use crate::support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l.trim_end().to_string()
}

/// Read one response (Content-Length or chunked body).
fn read_reply(r: &mut impl BufRead) -> Reply {
    let status_line = line(r);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line `{status_line}`"));
    let mut headers = Vec::new();
    loop {
        let l = line(r);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut reply = Reply { status, headers, body: Vec::new() };
    if let Some(n) = reply.header("content-length").map(|v| v.parse::<usize>().unwrap()) {
        reply.body.resize(n, 0);
        r.read_exact(&mut reply.body).unwrap();
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            let n = usize::from_str_radix(&line(r), 16).unwrap();
            if n == 0 {
                line(r);
                break;
            }
            let at = reply.body.len();
            reply.body.resize(at + n, 0);
            r.read_exact(&mut reply.body[at..]).unwrap();
            line(r);
        }
    }
    reply
}

fn post_head(sid: &str, len: usize) -> String {
    format!(
        "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: {sid}\r\nContent-Length: {len}\r\n\r\n"
    )
}

fn post_bytes(sid: &str, msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    let mut out = post_head(sid, body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

fn connect(d: &Daemon) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Wait until the answer starts to arrive on `r`, without taking any of it (bounded by the
/// read timeout of [`connect`]).
fn wait_for_bytes(r: &BufReader<TcpStream>) {
    let n = r.get_ref().peek(&mut [0u8; 1]).expect("no answer began within the read timeout");
    assert!(n > 0, "the daemon closed the connection");
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let (mut s, mut r) = connect(&d);
    // The first call is slow and the second fast: the answers still come in the order asked.
    let mut all = post_bytes(&sid, &call(1, "sleep", json!({"ms": 300})));
    all.extend(post_bytes(&sid, &call(2, "echo", json!({"text": "second"}))));
    all.extend(post_bytes(&sid, &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})));
    s.write_all(&all).unwrap();
    let ids: Vec<Value> = (0..3).map(|_| read_reply(&mut r).json()).collect();
    assert_eq!(ids[0]["id"], 1);
    assert_eq!(ids[0]["result"]["content"][0]["text"], "slept 300");
    assert_eq!(ids[1]["id"], 2);
    assert_eq!(ids[1]["result"]["content"][0]["text"], "second");
    assert_eq!(ids[2]["id"], 3);
}

#[test]
fn pipelined_json_answers_keep_their_order() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let (mut s, mut r) = connect(&d);
    let mut all = Vec::new();
    for i in 1..=20u64 {
        all.extend(post_bytes(&sid, &call(i, "echo", json!({"text": format!("n{i}")}))));
    }
    all.extend(post_bytes(&sid, &json!({"jsonrpc": "2.0", "id": 21, "method": "ping"})));
    s.write_all(&all).unwrap();
    for i in 1..=20u64 {
        let rep = read_reply(&mut r);
        assert_eq!(rep.status, 200);
        let v = rep.json();
        assert_eq!(v["id"], i);
        assert_eq!(v["result"]["content"][0]["text"], format!("n{i}"));
    }
    let last = read_reply(&mut r).json();
    assert_eq!((last["id"].clone(), last["result"].clone()), (json!(21), json!({})));
}

#[test]
fn chunked_bodies_and_expect_continue_are_understood() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let (mut s, mut r) = connect(&d);
    let body = call(1, "echo", json!({"text": "in chunks"})).to_string();
    let (a, b) = body.split_at(10);
    let head = post_head(&sid, 0).replace("Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n");
    write!(s, "{head}{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n", a.len(), b.len()).unwrap();
    let rep = read_reply(&mut r);
    assert_eq!(rep.json()["result"]["content"][0]["text"], "in chunks");

    // Expect: 100-continue: the server asks for the body, then answers.
    let body = call(2, "echo", json!({"text": "after continue"})).to_string();
    let head = post_head(&sid, body.len()).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(line(&mut r), "HTTP/1.1 100 Continue");
    assert_eq!(line(&mut r), "");
    s.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_reply(&mut r).json()["result"]["content"][0]["text"], "after continue");
}

#[test]
fn malformed_requests_get_a_clear_status_and_the_connection_ends() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_IO_TIMEOUT", "1")]);
    let cases: Vec<(String, u16, &str)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400, "malformed request line"),
        ("GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n".into(), 505, "HTTP/1.0 and HTTP/1.1"),
        (
            format!("GET /health HTTP/1.1\r\n{}\r\n", (0..200).map(|i| format!("X-{i}: y\r\n")).collect::<String>()),
            431,
            "too large",
        ),
        (
            "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".into(),
            400,
            "Content-Length",
        ),
        (
            "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
            400,
            "Transfer-Encoding",
        ),
    ];
    for (raw, status, says) in cases {
        let (mut s, mut r) = connect(&d);
        s.write_all(raw.as_bytes()).unwrap();
        let rep = read_reply(&mut r);
        assert_eq!(rep.status, status, "{raw:?}");
        assert!(String::from_utf8_lossy(&rep.body).contains(says), "{raw:?}: {}", String::from_utf8_lossy(&rep.body));
        assert_eq!(rep.header("connection"), Some("close"));
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).unwrap(), 0, "the connection was closed");
    }
    // A request that stops halfway gets 408 once the I/O timeout has passed.
    let (mut s, mut r) = connect(&d);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let t0 = Instant::now();
    assert_eq!(read_reply(&mut r).status, 408);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // An idle kept-alive connection is closed without a word after the I/O timeout.
    let (mut s, mut r) = connect(&d);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut r).status, 200);
    let t0 = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);
    assert!(t0.elapsed() >= Duration::from_millis(900) && t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

#[test]
fn a_client_that_does_not_read_a_big_answer_does_not_stall_the_shared_child() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let (mut s, mut r) = connect(&d);
    // 24 MB of answer, far more than the socket buffers hold; this client reads none of it yet.
    let size = 24 * 1024 * 1024;
    s.write_all(&post_bytes(&sid, &call(1, "big", json!({"bytes": size})))).unwrap();
    // The answer starts to arrive: the child has written all of it (the daemon reads a
    // line whole before it answers), and what the socket does not take waits in the daemon.
    wait_for_bytes(&r);
    // Meanwhile another session on the same child is answered promptly, call after call.
    let other = McpClient::open(d.url("/mcp/fx"));
    let t0 = Instant::now();
    for i in 0..20 {
        assert_eq!(other.call("echo", json!({"text": format!("o{i}")}))["content"][0]["text"], format!("o{i}"));
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "other calls waited: {:?}", t0.elapsed());
    // The slow client then gets its whole answer, intact.
    let rep = read_reply(&mut r);
    assert_eq!(rep.status, 200);
    let text = rep.json()["result"]["content"][0]["text"].as_str().map(str::len);
    assert_eq!(text, Some(size));
}

#[test]
fn head_gets_no_body_and_the_connection_stays_usable() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let (mut s, mut r) = connect(&d);
    s.write_all(b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // HEAD: the status line and headers only, no body after them.
    assert!(line(&mut r).starts_with("HTTP/1.1 200"));
    while !line(&mut r).is_empty() {}
    // The next answer starts right there.
    let rep = read_reply(&mut r);
    assert_eq!((rep.status, rep.body), (200, br#"{"status":"ok"}"#.to_vec()));
}

/// Send `raw` on a new connection and read the one answer.
fn exchange(d: &Daemon, raw: &[u8]) -> Reply {
    let (mut s, mut r) = connect(d);
    s.write_all(raw).unwrap();
    read_reply(&mut r)
}

#[test]
fn chunk_sizes_from_the_wire_cannot_overflow_or_pass_the_body_limit() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_BODY", "1000")]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let head = post_head(&sid, 0).replace("Content-Length: 0\r\n", "Transfer-Encoding: chunked\r\n");
    // One byte, then a size that wraps the running total around.
    let t0 = Instant::now();
    let rep = exchange(&d, format!("{head}1\r\n{{\r\nffffffffffffffff\r\n").as_bytes());
    assert_eq!(rep.status, 413, "{}", String::from_utf8_lossy(&rep.body));
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Sizes are bare hex digits: a sign, a 0x prefix or an overlong size line is refused.
    for bad in ["+5", "0x5", "-5", &format!("5;{}", "x".repeat(2000)), &"0".repeat(2000)] {
        let rep = exchange(&d, format!("{head}{bad}\r\nhello\r\n0\r\n\r\n").as_bytes());
        assert_eq!(rep.status, 400, "{bad:?}");
    }
    // A bare CR in the framing (before a size line's CRLF, or ending a chunk's data) is refused.
    for bad in ["5\r\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\r\n"] {
        let rep = exchange(&d, format!("{head}{bad}").as_bytes());
        assert_eq!(rep.status, 400, "{bad:?}");
    }
    // Trailers are bounded like a head.
    let trailers: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    let rep = exchange(&d, format!("{head}0\r\n{trailers}\r\n").as_bytes());
    assert_eq!(rep.status, 413);
    let health = exchange(&d, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(health.status, 200);
    let log = std::fs::read_to_string(p.root.join(".mcpctl/logs/daemon.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn ambiguous_or_malformed_heads_are_refused() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let cases: Vec<(&str, u16)> = vec![
        ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\0b\r\n\r\n", 400),
        ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rb\r\n\r\n", 400),
        ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\r\n\r\n", 400),
        ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
        ("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", 400),
        ("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost\r\nOrigin: http://evil\r\n\r\n", 400),
        ("POST /mcp/fx HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: x\r\n\r\n", 400),
        // Bracketed hosts must be IPv6 literals.
        ("GET /status HTTP/1.1\r\nHost: [localhost]\r\n\r\n", 403),
        ("GET /status HTTP/1.1\r\nHost: [evil]:7878\r\n\r\n", 403),
        // An absolute-form target's authority is the Host.
        ("GET http://evil.example/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 403),
        ("GET http://127.0.0.1/status HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200),
        ("GET /status HTTP/1.1\r\nHost: [::1]:7878\r\n\r\n", 200),
        ("POST /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405),
    ];
    for (raw, status) in cases {
        let rep = exchange(&d, raw.as_bytes());
        assert_eq!(rep.status, status, "{raw:?}: {}", String::from_utf8_lossy(&rep.body));
        if status == 405 {
            assert_eq!(rep.header("allow"), Some("GET, HEAD"));
        }
    }
}

#[test]
fn clients_are_served_while_hundreds_of_slowloris_connections_are_held() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_CONNECTIONS", "8")]);
    let sid_client = McpClient::open(d.url("/mcp/fx"));
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        // Some send nothing, some half a head.
        if i % 2 == 0 {
            let _ = s.write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        }
        s.set_nonblocking(true).unwrap();
        held.push(s);
    }
    // The daemon has taken them all in: past its cap of 8 it closed the ones not sending a
    // request to make room for the next, so all but a few are closed.
    support::eventually("the daemon to take in the 300 connections", Duration::from_secs(15), || {
        held.iter()
            .filter(|s| s.peek(&mut [0u8; 1]).map_or_else(|e| e.kind() != std::io::ErrorKind::WouldBlock, |_| true))
            .count()
            >= 300 - 8
    });
    let t0 = Instant::now();
    let health = exchange(&d, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(health.status, 200);
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": "served"}))["content"][0]["text"], "served");
    assert_eq!(sid_client.call("echo", json!({"text": "old"}))["content"][0]["text"], "old");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    drop(held);
}

#[test]
fn a_request_head_must_be_complete_within_the_head_timeout() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_HEAD_TIMEOUT", "1")]);
    // Trickled a byte at a time: still cut off at the head deadline, not the I/O timeout.
    let (mut s, mut r) = connect(&d);
    let t0 = Instant::now();
    let trickle = std::thread::spawn(move || {
        for b in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".iter().cycle().take(40) {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert_eq!(read_reply(&mut r).status, 408);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    trickle.join().unwrap();
}

#[test]
fn absurd_settings_in_the_environment_stop_the_start_with_one_line() {
    let p = Project::fixture(json!({}));
    for (k, v) in [
        ("MCPCTL_IO_TIMEOUT", "99999999999999"),
        ("MCPCTL_IO_TIMEOUT", "abc"),
        ("MCPCTL_IO_TIMEOUT", "0"),
        ("MCPCTL_HEAD_TIMEOUT", "-1"),
        ("MCPCTL_MAX_BODY", "1e9"),
        ("MCPCTL_MAX_BUFFERED", "0"),
    ] {
        // Bounded: a daemon that accepted the value would run until killed here.
        let mut child = std::process::Command::new(mcpctl_bin())
            .current_dir(&p.root)
            .args(["start", "--foreground", "--port", "0"])
            .env(k, v)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let Some(status) = wait_until(&mut child, Instant::now() + Duration::from_secs(10)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`start` with {k}={v} was still running after 10 s");
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{k}={v}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{k}=`{v}`")), "{err}");
    }
}

#[test]
fn slow_readers_together_cannot_buffer_past_the_daemon_wide_bound() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_BUFFERED", "4000000")]);
    let sid = McpClient::open(d.url("/mcp/fx")).sid;
    let (mut s, mut r) = connect(&d);
    s.write_all(&post_bytes(&sid, &call(1, "big", json!({"bytes": 24 * 1024 * 1024})))).unwrap();
    // Read nothing until the daemon says it cut this client off.
    let log = p.root.join(".mcpctl/logs/daemon.log");
    support::eventually("the cut-off in the daemon's log", Duration::from_secs(15), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("MCPCTL_MAX_BUFFERED")
    });
    // Cut off: what arrives ends well before the whole answer.
    let mut got = Vec::new();
    let _ = r.read_to_end(&mut got);
    assert!(got.len() < 20 * 1024 * 1024, "{} bytes arrived", got.len());
    let log = std::fs::read_to_string(p.root.join(".mcpctl/logs/daemon.log")).unwrap();
    assert!(log.contains("MCPCTL_MAX_BUFFERED"), "{log}");
    // Others are still served.
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": "ok"}))["content"][0]["text"], "ok");
}
