//! The gateway's resource limits: a client that stops sending mid-request is cut off after
//! `MCPCTL_IO_TIMEOUT`, and the daemon keeps serving others meanwhile.

mod support;

use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn slow_clients_are_cut_off_and_others_are_served() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_IO_TIMEOUT", "1")]);
    // Half a request line and no more (slowloris), and a request whose body never comes.
    let mut slow = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    slow.write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let mut stalled = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    stalled
        .write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        .unwrap();
    // Meanwhile the daemon answers.
    let health = ureq::get(&d.url("/health")).call().unwrap().into_body().read_to_string().unwrap();
    assert_eq!(health, r#"{"status":"ok"}"#);
    for (name, mut s) in [("headers", slow), ("body", stalled)] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let waited = t0.elapsed();
        assert!(waited < Duration::from_secs(8), "a client stalled in its {} held the connection for {:?}", name, waited);
        let text = String::from_utf8_lossy(&buf);
        assert!(buf.is_empty() || text.starts_with("HTTP/1.1 4"), "unexpected answer to a stalled {}: {}", name, text);
    }
    // And still serves MCP afterwards.
    p.cmd().args(["call", "fx", "echo", "--text", "after"]).success().stdout_has("after");
}
