//! Real MCP clients against the gateway: the official Python SDK client
//! (tests/py/sdk_client.py) and the inspector CLI, doing tools/list and tools/call on `/mcp`
//! and `/mcp/<server>`, with `@modelcontextprotocol/server-everything` and our fixture as
//! children; once more with a bearer token.

use crate::support;

use serde_json::{json, Value};
use std::process::{Command, Output};
use support::{fixture_bin, Daemon, Project};

fn project() -> Project {
    Project::new(&json!({"mcpServers": {
        "everything": {
            "command": support::npm_bin().join("mcp-server-everything"),
            "env": {"PATH": support::path_with_deps()},
            "alwaysAllow": ["*"],
            "timeout": 20,
        },
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 20},
    }}))
}

fn run(mut c: Command, what: &str) -> Output {
    c.output().unwrap_or_else(|e| panic!("{} does not run: {}", what, e))
}

fn dump(what: &str, o: &Output) -> String {
    format!(
        "{}: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        what,
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// tests/py/sdk_client.py with the project venv; stdout as JSON on success.
fn sdk(url: &str, token: Option<&str>, args: &[&str]) -> Result<Value, String> {
    let mut c = Command::new(support::venv_python());
    c.arg(support::repo().join("tests/py/sdk_client.py")).arg(url).args(["--timeout", "20"]);
    if let Some(t) = token {
        c.args(["--token", t]);
    }
    c.args(args);
    let o = run(c, "sdk_client.py");
    if !o.status.success() {
        return Err(dump("sdk_client.py", &o));
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("not JSON ({}): {}", e, dump("sdk_client.py", &o)))
}

/// `mcp-inspector --cli URL ...` with Node 22 first on PATH and a scratch HOME.
fn inspector(url: &str, home: &std::path::Path, token: Option<&str>, args: &[&str]) -> Result<Value, String> {
    let mut c = Command::new(support::npm_bin().join("mcp-inspector"));
    c.env_clear().env("PATH", support::path_with_deps()).env("HOME", home);
    // `/mcp/<server>` does not end in /mcp: name the transport.
    c.arg("--cli").arg(url).args(["--transport", "http"]);
    if let Some(t) = token {
        c.args(["--header", &format!("Authorization: Bearer {}", t)]);
    }
    c.args(args);
    let o = run(c, "mcp-inspector --cli");
    if !o.status.success() {
        return Err(dump("mcp-inspector", &o));
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("not JSON ({}): {}", e, dump("mcp-inspector", &o)))
}

fn names(v: &Value) -> Vec<String> {
    let list = if v.is_array() { v } else { &v["tools"] };
    list.as_array()
        .unwrap_or_else(|| panic!("no tool list in {}", v))
        .iter()
        .map(|t| t.as_str().or_else(|| t["name"].as_str()).unwrap().to_string())
        .collect()
}

fn first_text(v: &Value) -> String {
    v["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {}", v)).to_string()
}

fn has(list: &[String], n: &str) -> bool {
    list.iter().any(|x| x == n)
}

#[test]
fn python_sdk_client_through_the_gateway() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let all = names(&sdk(&d.url("/mcp"), None, &["list-tools"]).unwrap());
    for n in ["everything__echo", "everything__get-sum", "fx__echo", "fx__add"] {
        assert!(has(&all, n), "{} missing from {:?}", n, all);
    }
    let one = names(&sdk(&d.url("/mcp/everything"), None, &["list-tools"]).unwrap());
    assert!(has(&one, "echo") && has(&one, "get-sum") && !one.iter().any(|n| n.contains("__")), "{:?}", one);
    let one = names(&sdk(&d.url("/mcp/fx"), None, &["list-tools"]).unwrap());
    assert!(has(&one, "echo") && has(&one, "sleep"), "{:?}", one);

    let r = sdk(&d.url("/mcp"), None, &["call", "everything__get-sum", r#"{"a": 2, "b": 3}"#]).unwrap();
    assert_eq!(r["isError"], false, "{}", r);
    assert!(first_text(&r).contains('5'), "{}", r);
    let r = sdk(&d.url("/mcp/everything"), None, &["call", "echo", r#"{"message": "hi there"}"#]).unwrap();
    assert!(first_text(&r).contains("hi there"), "{}", r);
    let r = sdk(&d.url("/mcp"), None, &["call", "fx__echo", r#"{"text": "007"}"#]).unwrap();
    assert_eq!(first_text(&r), "007");
    let r = sdk(&d.url("/mcp/fx"), None, &["call", "add", r#"{"a": 40, "b": 2}"#]).unwrap();
    assert_eq!(first_text(&r), "42");
    // A tool error is a result, not a failure.
    let r = sdk(&d.url("/mcp/fx"), None, &["call", "fail", r#"{"message": "nope"}"#]).unwrap();
    assert_eq!(r["isError"], true);
}

#[test]
fn inspector_cli_through_the_gateway() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let home = p.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let all = names(&inspector(&d.url("/mcp"), &home, None, &["--method", "tools/list"]).unwrap());
    for n in ["everything__echo", "everything__get-sum", "fx__echo"] {
        assert!(has(&all, n), "{} missing from {:?}", n, all);
    }
    let one = names(&inspector(&d.url("/mcp/everything"), &home, None, &["--method", "tools/list"]).unwrap());
    assert!(has(&one, "get-sum") && !one.iter().any(|n| n.contains("__")), "{:?}", one);

    let call = |path: &str, tool: &str, args: &[&str]| {
        let mut a = vec!["--method", "tools/call", "--tool-name", tool, "--tool-arg"];
        a.extend_from_slice(args);
        inspector(&d.url(path), &home, None, &a).unwrap()
    };
    let r = call("/mcp", "everything__get-sum", &["a=2", "b=3"]);
    assert!(first_text(&r).contains('5'), "{}", r);
    let r = call("/mcp/everything", "get-sum", &["a=20", "b=22"]);
    assert!(first_text(&r).contains("42"), "{}", r);
    let r = call("/mcp", "fx__echo", &["text=007"]);
    assert_eq!(first_text(&r), "007");
    let r = call("/mcp/fx", "add", &["a=1", "b=2"]);
    assert_eq!(first_text(&r), "3");
}

#[test]
fn real_clients_with_a_token() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let home = p.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let token = "peers-test-token-0123456789abcdef";
    let env = [("MCPCTL_TOKEN", token)];
    let d = Daemon::start_env(&p, &[], &env);
    d.wait_ready(&env);

    // Without the token both clients fail; with it both work.
    assert!(sdk(&d.url("/mcp"), None, &["list-tools"]).is_err());
    assert!(sdk(&d.url("/mcp"), Some("wrong-token"), &["list-tools"]).is_err());
    let all = names(&sdk(&d.url("/mcp"), Some(token), &["list-tools"]).unwrap());
    assert!(has(&all, "everything__get-sum") && has(&all, "fx__echo"), "{:?}", all);
    let r = sdk(&d.url("/mcp/fx"), Some(token), &["call", "echo", r#"{"text": "with token"}"#]).unwrap();
    assert_eq!(first_text(&r), "with token");

    assert!(inspector(&d.url("/mcp"), &home, None, &["--method", "tools/list"]).is_err());
    let all = names(&inspector(&d.url("/mcp"), &home, Some(token), &["--method", "tools/list"]).unwrap());
    assert!(has(&all, "everything__echo") && has(&all, "fx__add"), "{:?}", all);
    let r = inspector(
        &d.url("/mcp/everything"),
        &home,
        Some(token),
        &["--method", "tools/call", "--tool-name", "get-sum", "--tool-arg", "a=2", "b=3"],
    )
    .unwrap();
    assert!(first_text(&r).contains('5'), "{}", r);
}
