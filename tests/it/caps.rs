//! Bounds on what clients can make the gateway hold: sessions (`MCPCTL_MAX_SESSIONS`) and
//! per-session children (`MCPCTL_MAX_SESSION_CHILDREN`).

use crate::support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{fixture_bin, Daemon, McpClient, Project};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A bare initialize: (status, body).
fn initialize(url: &str) -> (u16, String) {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let resp = agent()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .send(init.to_string().as_str())
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().read_to_string().unwrap_or_default())
}

fn delete(c: &McpClient) {
    let r = agent().delete(&c.url).header("Mcp-Session-Id", &c.sid).call().unwrap();
    assert!(r.status().as_u16() < 300, "DELETE: {}", r.status());
}

#[test]
fn sessions_past_the_cap_get_503_naming_the_limit_and_a_closed_or_idle_one_frees_its_place() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_SESSIONS", "3"), ("MCPCTL_SESSION_IDLE", "1")]);
    let url = d.url("/mcp");
    let open: Vec<McpClient> = (0..3).map(|_| McpClient::open(url.clone())).collect();
    let (status, body) = initialize(&url);
    assert_eq!(status, 503, "{}", body);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("MCPCTL_MAX_SESSIONS"), "{}", body);
    assert!(v["error"]["message"].as_str().unwrap().contains("3 sessions"), "{}", body);
    delete(&open[0]);
    assert_eq!(initialize(&url).0, 200, "a closed session frees its place");
    assert_eq!(initialize(&url).0, 503);
    // Idle past MCPCTL_SESSION_IDLE: their places are free again.
    std::thread::sleep(Duration::from_millis(1300));
    for _ in 0..3 {
        assert_eq!(initialize(&url).0, 200, "idle sessions free their places");
    }
}

#[test]
fn per_session_children_past_the_cap_get_a_clear_error() {
    let server = json!({"command": fixture_bin(), "alwaysAllow": ["*"], "isolation": "session"});
    let p = Project::new(&json!({"mcpServers": {"fx": server}}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_SESSION_CHILDREN", "2")]);
    let url = d.url("/mcp/fx");
    let a = McpClient::open(url.clone());
    let b = McpClient::open(url.clone());
    let c = McpClient::open(url.clone());
    assert_eq!(a.call("echo", json!({"text": "a"}))["content"][0]["text"], "a");
    assert_eq!(b.call("echo", json!({"text": "b"}))["content"][0]["text"], "b");
    let v = c.request("tools/call", json!({"name": "echo", "arguments": {"text": "c"}}));
    let msg = v["error"]["message"].as_str().unwrap_or_else(|| panic!("an error: {}", v));
    assert!(msg.contains("MCPCTL_MAX_SESSION_CHILDREN") && msg.contains("2 per-session children"), "{}", v);
    delete(&a);
    assert_eq!(c.call("echo", json!({"text": "c"}))["content"][0]["text"], "c", "a freed place is used");
}
