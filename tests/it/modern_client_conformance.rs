//! What the official suite's 2026-07-28 client scenarios ask of mcpctl, against small
//! servers of our own (loopback, std only, no peers needed): the cases where mcpctl was
//! found wrong by the suite (`tests/conformance/mcpctl-client.sh`, docs/conformance.md).

use crate::support;

use serde_json::{json, Value};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{read_request, Project};

/// One request as the server saw it: lowercased head and the JSON body.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(&format!("{}:", name))).map(str::trim)
    }
}

/// A 2026-07-28-only server (as the suite's `request-metadata` one) that refuses the
/// first `refusals` POSTs with 400 and -32022 naming 2026-07-28 — the very version asked
/// — and serves the rest: `server/discover`, an empty `tools/list`. Every POST is recorded.
fn refusing_server(refusals: usize) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(32).flatten() {
            let log = log.clone();
            std::thread::spawn(move || serve(conn, refusals, &log));
        }
    });
    (port, seen)
}

fn serve(mut c: TcpStream, refusals: usize, log: &Mutex<Vec<Seen>>) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
    while let Some((head, body)) = read_request(&mut c) {
        if !head.starts_with("post ") {
            let _ = c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let n = {
            let mut l = log.lock().unwrap();
            l.push(Seen { head: head.clone(), body: body.clone() });
            l.len()
        };
        let id = body["id"].clone();
        let requested = Seen { head, body: Value::Null }.header("mcp-protocol-version").unwrap_or("").to_string();
        let (status, answer) = if n <= refusals {
            (
                "400 Bad Request",
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32022,
                "message": "Unsupported protocol version",
                "data": {"supported": ["2026-07-28"], "requested": requested}}}),
            )
        } else {
            let result = match body["method"].as_str() {
                Some("server/discover") => json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {}}, "serverInfo": {"name": "refusing", "version": "1.0"}}),
                Some("tools/list") => json!({"resultType": "complete", "tools": [
                    {"name": "noop", "inputSchema": {"type": "object"}}]}),
                _ => json!({"resultType": "complete"}),
            };
            ("200 OK", json!({"jsonrpc": "2.0", "id": id, "result": result}))
        };
        let a = answer.to_string();
        let r = format!(
            "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            status,
            a.len(),
            a
        );
        if c.write_all(r.as_bytes()).is_err() {
            return;
        }
    }
}

/// `mcpctl --json-output --url URL tools` in an empty project.
fn tools(port: u16, code: i32) -> Value {
    let p = Project::new(&json!({"mcpServers": {}}));
    p.cmd().args(["--json-output", "--url", &format!("http://127.0.0.1:{}/mcp", port), "tools"]).status(code).json()
}

#[test]
fn a_server_that_refuses_its_own_version_once_is_asked_again() {
    // request-metadata: the first request is refused with -32022 although the server lists
    // the version asked; the client retries with a version the server supports.
    let (port, seen) = refusing_server(1);
    let j = tools(port, 0);
    assert_eq!(j["tools"][0]["name"], "noop", "{}", j);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{:?}", seen);
    // The retry carries the version in the header and in _meta, alike.
    for s in &seen[1..] {
        assert_eq!(s.header("mcp-protocol-version"), Some("2026-07-28"), "{:?}", s);
        assert_eq!(s.body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28", "{:?}", s);
    }
    assert_eq!(seen[1].body["method"], "server/discover");
    assert_eq!(seen[2].body["method"], "tools/list");
    assert!(seen.iter().all(|s| s.body["method"] != "initialize"), "{:?}", seen);
}

#[test]
fn a_server_that_keeps_refusing_its_own_version_is_a_clear_error() {
    let (port, seen) = refusing_server(usize::MAX);
    let j = tools(port, 1);
    let e = j["error"].as_str().unwrap();
    assert!(e.contains("refused MCP protocol version 2026-07-28 twice"), "{}", j);
    assert!(!e.contains("does not support"), "{}", j);
    // Asked once more, then given up: no third probe, no `initialize` to a modern-only server.
    let seen = seen.lock().unwrap().clone();
    let methods: Vec<&str> = seen.iter().filter_map(|s| s.body["method"].as_str()).collect();
    assert_eq!(methods, ["server/discover", "server/discover"], "{:?}", seen);
}
