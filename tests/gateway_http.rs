//! The gateway's own HTTP/1.1 server, driven over raw sockets: pipelined requests answered
//! in order, chunked bodies and `Expect: 100-continue`, clear statuses for malformed
//! requests, read deadlines, and a client that does not read a big answer while other
//! sessions keep using the same child.

mod support;

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
    std::thread::sleep(Duration::from_millis(1500));
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
    // HEAD: the status line and headers only (GET /health only: 405), no body after them.
    assert!(line(&mut r).starts_with("HTTP/1.1 405"));
    while !line(&mut r).is_empty() {}
    // The next answer starts right there.
    let rep = read_reply(&mut r);
    assert_eq!((rep.status, rep.body), (200, br#"{"status":"ok"}"#.to_vec()));
}
