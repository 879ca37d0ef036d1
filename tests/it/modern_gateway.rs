//! MCP 2026-07-28 on the gateway's endpoints beside the session-based revisions: real
//! clients of both SDKs (Python `mcp` 2.3.0, TS `@modelcontextprotocol/client` 2.4.0),
//! pinned or probing, next to session-based clients on the same URLs; the same policy and
//! token rules; and the transport's checks over raw HTTP (-32022, -32020, missing headers).

use crate::support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{fixture_bin, Daemon, McpClient, Project};

const MODERN: &str = "2026-07-28";

fn fx(extra: Value) -> Value {
    let mut s = json!({"command": fixture_bin(), "timeout": 10});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

/// Run a test client (bounded: killed after 90 s); its one JSON line.
fn run_client(mut c: Command, what: &str) -> Value {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: {}", what, e));
    let status = support::wait_until(&mut child, Instant::now() + Duration::from_secs(90));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        what,
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{}: not JSON ({}): {}", what, e, stdout))
}

/// The Python SDK 2.3.0 client (`mode`: "2026-07-28", "auto" or "legacy").
fn py(url: &str, mode: &str, token: Option<&str>, args: &[&str]) -> Value {
    let mut c = Command::new(support::venv_modern_python());
    c.arg(support::repo().join("tests/py/modern_client.py")).arg(url).args(["--mode", mode]);
    if let Some(t) = token {
        c.args(["--token", t]);
    }
    c.args(args);
    run_client(c, &format!("python modern_client.py {} {} {:?}", url, mode, args))
}

/// The TypeScript SDK 2.4.0 client (`mode`: "2026-07-28" pinned, "auto" or "legacy").
fn ts(url: &str, mode: &str, token: Option<&str>, args: &[&str]) -> Value {
    ts_answering(url, mode, token, None, args)
}

/// [`ts`], answering elicitation with `{"answer": answer}` (and declaring it can).
fn ts_answering(url: &str, mode: &str, token: Option<&str>, answer: Option<&str>, args: &[&str]) -> Value {
    let mut c = Command::new(support::npm_bin().join("node"));
    match answer {
        Some(a) => c.env("MCPCTL_ANSWER", a),
        None => c.env_remove("MCPCTL_ANSWER"),
    };
    c.arg(support::repo().join("tests/js/modern_client.mjs"))
        .arg(support::repo().join(".deps/npm/node_modules"))
        .args([url, mode])
        .args(args);
    match token {
        Some(t) => c.env("MCPCTL_TOKEN", t),
        None => c.env_remove("MCPCTL_TOKEN"),
    };
    run_client(c, &format!("node modern_client.mjs {} {} {:?}", url, mode, args))
}

/// The session-based Python SDK 1.x client: the tool names.
fn legacy_py(url: &str, token: Option<&str>) -> Vec<String> {
    let mut c = Command::new(support::venv_python());
    c.arg(support::repo().join("tests/py/sdk_client.py")).arg(url);
    if let Some(t) = token {
        c.args(["--token", t]);
    }
    c.arg("list-tools");
    serde_json::from_value(run_client(c, &format!("python sdk_client.py {}", url))).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {}", v))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The `_meta` every 2026-07-28 request carries.
fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    })
}

fn body(id: u64, method: &str, mut params: Value) -> Value {
    if params.get("_meta").is_none() {
        params["_meta"] = envelope();
    }
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The headers a conforming client sends with `body`.
fn headers_for(body: &Value) -> Vec<(String, String)> {
    let method = body["method"].as_str().unwrap();
    let mut h =
        vec![("MCP-Protocol-Version".to_string(), MODERN.to_string()), ("Mcp-Method".to_string(), method.to_string())];
    let name = body["params"]["name"].as_str().or(body["params"]["uri"].as_str());
    if let (Some(n), "tools/call" | "prompts/get" | "resources/read") = (name, method) {
        h.push(("Mcp-Name".to_string(), n.to_string()));
    }
    h
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Every JSON-RPC message of the body (one, or the SSE stream's events).
    pub(crate) messages: Vec<Value>,
    session: Option<String>,
}

impl Answer {
    /// The response (the message with an id that is not a request).
    pub(crate) fn response(&self) -> &Value {
        self.messages
            .iter()
            .find(|m| m.get("method").is_none())
            .unwrap_or_else(|| panic!("no response in {:?}", self.messages))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POST `msg` with exactly `headers` (and the usual Accept/Content-Type).
fn post(url: &str, headers: &[(String, String)], msg: &Value) -> Answer {
    let mut r = agent()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        r = r.header(k.as_str(), v.as_str());
    }
    let resp = r.send(msg.to_string().as_str()).unwrap();
    let status = resp.status().as_u16();
    let session = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    let text = resp.into_body().read_to_string().unwrap_or_default();
    let messages = text
        .lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    Answer { status, messages, session }
}

/// A conforming 2026-07-28 request; the answer.
pub(crate) fn modern(url: &str, id: u64, method: &str, params: Value) -> Answer {
    let b = body(id, method, params);
    post(url, &headers_for(&b), &b)
}

fn with(mut h: Vec<(String, String)>, name: &str, value: Option<&str>) -> Vec<(String, String)> {
    h.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        h.push((name.to_string(), v.to_string()));
    }
    h
}

fn error_of(a: &Answer, status: u16, code: i64) -> Value {
    assert_eq!(a.status, status, "{:?}", a.messages);
    let r = a.response();
    assert_eq!(r["error"]["code"], code, "{}", r);
    r["error"].clone()
}

#[test]
fn clients_of_both_sdks_speak_2026_07_28_on_both_endpoints_beside_session_clients() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"fx": fx(json!({"alwaysAllow": ["echo", "add"]}))}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let all = d.url("/mcp");
    let one = d.url("/mcp/fx");

    // Pinned to 2026-07-28: no initialize, no session; listed and called on both endpoints.
    let v = py(&all, MODERN, None, &["list-tools"]);
    assert_eq!(v["protocol"], MODERN);
    assert_eq!(strs(&v["tools"]), ["fx__echo", "fx__add"]);
    let v = py(&all, MODERN, None, &["call", "fx__echo", r#"{"text": "via /mcp"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "via /mcp", "{}", v);
    assert_eq!(v["result"]["resultType"], "complete", "{}", v);
    let v = py(&one, MODERN, None, &["list-tools"]);
    assert_eq!(strs(&v["tools"]), ["echo", "add"]);
    let v = py(&one, MODERN, None, &["call", "add", r#"{"a": 2, "b": 3}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "5", "{}", v);

    // The TS client pinned: its connect probes server/discover, which must offer 2026-07-28.
    let v = ts(&all, MODERN, None, &["list-tools"]);
    assert_eq!((v["era"].as_str(), v["protocol"].as_str()), (Some("modern"), Some(MODERN)), "{}", v);
    assert_eq!(strs(&v["tools"]), ["fx__echo", "fx__add"]);
    let v = ts(&one, MODERN, None, &["call", "echo", r#"{"text": "ts"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "ts", "{}", v);
    assert_eq!(v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpctl-fixture", "{}", v);

    // Probing clients find the new revision; session-based ones keep their sessions.
    assert_eq!(py(&one, "auto", None, &["list-tools"])["protocol"], MODERN);
    assert_eq!(ts(&all, "auto", None, &["list-tools"])["era"], "modern");
    let v = py(&all, "legacy", None, &["list-tools"]);
    assert_eq!(v["protocol"], "2025-11-25");
    assert_eq!(strs(&v["tools"]), ["fx__echo", "fx__add"]);
    assert_eq!(ts(&one, "legacy", None, &["list-tools"])["era"], "legacy");
    assert_eq!(legacy_py(&all, None), ["fx__echo", "fx__add"]);

    // Side by side on one URL: a session open while stateless requests come and go.
    let sessions =
        || p.cmd().args(["--json-output", "status"]).success().json()["daemon"]["sessions"].as_u64().unwrap();
    let before = sessions();
    let s = McpClient::open(all.clone());
    let a = modern(&all, 1, "tools/call", json!({"name": "fx__echo", "arguments": {"text": "stateless"}}));
    assert_eq!(a.status, 200);
    assert_eq!(a.response()["result"]["content"][0]["text"], "stateless");
    assert!(a.session.is_none(), "a stateless answer carries no session id");
    assert_eq!(s.call("fx__echo", json!({"text": "session"}))["content"][0]["text"], "session");
    // The stateless requests opened no session: the one above is the only new one.
    assert_eq!(sessions(), before + 1);
}

#[test]
fn the_policy_holds_for_2026_07_28_clients() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "named": fx(json!({"alwaysAllow": ["echo"]})),
        "blocked": fx(json!({"alwaysAllow": []})),
        "deny": fx(json!({"gatewayApproval": "deny"})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);

    // Listed: only what alwaysAllow names, on both endpoints, for both SDKs.
    assert_eq!(strs(&py(&d.url("/mcp"), MODERN, None, &["list-tools"])["tools"]), ["named__echo"]);
    assert_eq!(strs(&ts(&d.url("/mcp"), MODERN, None, &["list-tools"])["tools"]), ["named__echo"]);
    assert_eq!(strs(&py(&d.url("/mcp/named"), MODERN, None, &["list-tools"])["tools"]), ["echo"]);
    assert!(strs(&py(&d.url("/mcp/blocked"), MODERN, None, &["list-tools"])["tools"]).is_empty());
    assert!(strs(&ts(&d.url("/mcp/deny"), MODERN, None, &["list-tools"])["tools"]).is_empty());

    // Called: refused with the policy's code and reason, never run.
    for (url, tool, why) in [
        ("/mcp", "named__add", "tool `add` on server `named` is not allowed through the gateway"),
        ("/mcp", "blocked__echo", "server `blocked` blocks every tool"),
        ("/mcp/named", "add", "not allowed through the gateway"),
        ("/mcp/blocked", "echo", "mcpServers.blocked.alwaysAllow"),
        ("/mcp/deny", "echo", "deny"),
    ] {
        let v = py(&d.url(url), MODERN, None, &["call", tool, r#"{"text": "x", "a": 1, "b": 2}"#]);
        assert_eq!(v["error"]["code"], -32003, "{} {}: {}", url, tool, v);
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{} {}: {}", url, tool, v);
        let v = ts(&d.url(url), MODERN, None, &["call", tool, r#"{"text": "x", "a": 1, "b": 2}"#]);
        assert_eq!(v["error"]["code"], -32003, "{} {}: {}", url, tool, v);
    }
    let status = p.cmd().args(["--json-output", "status"]).success().json();
    for s in status["servers"].as_array().unwrap() {
        assert_eq!(s["calls"], 0, "a refused call reached the child: {}", s);
    }
    // What is allowed runs.
    let v = py(&d.url("/mcp"), MODERN, None, &["call", "named__echo", r#"{"text": "ok"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "ok", "{}", v);
}

#[test]
fn named_tokens_hold_for_2026_07_28_requests() {
    if !support::peers_available() {
        return;
    }
    const CI: &str = "ci-secret-4f1d2a9b8c7e6d5f";
    const DESK: &str = "desk-secret-9a8b7c6d5e4f3a2b";
    let p = Project::new(&json!({
        "tokens": {"ci": {"env": "MCPCTL_TOKEN_CI", "allow": ["fx__echo", "fx__elicit"]}, "desk": {"env": "MCPCTL_TOKEN_DESK", "allow": ["fy__*"]}},
        "mcpServers": {"fx": fx(json!({"alwaysAllow": ["*"]})), "fy": fx(json!({"alwaysAllow": ["*"]}))},
    }));
    let env = [("MCPCTL_TOKEN_CI", CI), ("MCPCTL_TOKEN_DESK", DESK)];
    let d = Daemon::start_env(&p, &[], &env);
    d.wait_ready(&[("MCPCTL_TOKEN", CI)]);

    // Each request is authorised by its own token: each sees and runs only its tools.
    assert_eq!(strs(&py(&d.url("/mcp"), MODERN, Some(CI), &["list-tools"])["tools"]), ["fx__echo", "fx__elicit"]);
    assert_eq!(strs(&ts(&d.url("/mcp/fx"), MODERN, Some(CI), &["list-tools"])["tools"]), ["echo", "elicit"]);
    assert!(strs(&py(&d.url("/mcp/fy"), MODERN, Some(CI), &["list-tools"])["tools"]).is_empty());
    let desk = strs(&ts(&d.url("/mcp"), MODERN, Some(DESK), &["list-tools"])["tools"]);
    assert!(!desk.is_empty() && desk.iter().all(|n| n.starts_with("fy__")), "{:?}", desk);
    let v = py(&d.url("/mcp"), MODERN, Some(CI), &["call", "fx__echo", r#"{"text": "t"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "t", "{}", v);
    let v = py(&d.url("/mcp"), MODERN, Some(CI), &["call", "fy__echo", r#"{"text": "t"}"#]);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("token `ci` may not call tool `echo` on server `fy`"),
        "{}",
        v
    );
    let v = ts(&d.url("/mcp/fx"), MODERN, Some(DESK), &["call", "echo", r#"{"text": "t"}"#]);
    assert!(v["error"]["message"].as_str().unwrap().contains("tokens.desk.allow"), "{}", v);

    // No token, or a wrong one: 401 before anything is read.
    let b = body(1, "tools/list", json!({}));
    assert_eq!(post(&d.url("/mcp"), &headers_for(&b), &b).status, 401);
    let h = with(headers_for(&b), "Authorization", Some("Bearer not-a-token-at-all-000"));
    assert_eq!(post(&d.url("/mcp"), &h, &b).status, 401);
    let h = with(headers_for(&b), "Authorization", Some(&format!("Bearer {}", CI)));
    assert_eq!(post(&d.url("/mcp"), &h, &b).status, 200);

    // A held request belongs to the token that made it: another token cannot take it over
    // with its requestState (the policy is not checked again on the retry).
    let bearer = |t: &str, b: &Value| with(headers_for(b), "Authorization", Some(&format!("Bearer {}", t)));
    let mut meta = envelope();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let ask = body(5, "tools/call", json!({"name": "fx__elicit", "arguments": {"message": "?"}, "_meta": meta}));
    let r = post(&d.url("/mcp"), &bearer(CI, &ask), &ask).response()["result"].clone();
    assert_eq!(r["resultType"], "input_required", "{}", r);
    let key = r["inputRequests"].as_object().unwrap().keys().next().unwrap().clone();
    let mut retry = ask.clone();
    retry["id"] = json!(6);
    retry["params"]["requestState"] = r["requestState"].clone();
    retry["params"]["inputResponses"] = json!({key: {"action": "accept", "content": {"answer": "x"}}});
    error_of(&post(&d.url("/mcp"), &bearer(DESK, &retry), &retry), 400, -32602);
    let a = post(&d.url("/mcp"), &bearer(CI, &retry), &retry);
    assert_eq!(a.response()["result"]["resultType"], "complete", "{:?}", a.messages);
}

#[test]
fn the_transport_checks_of_2026_07_28() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let url = d.url("/mcp/fx");
    let call = body(7, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}));
    let good = headers_for(&call);

    // An unknown version: 400, -32022, every version we speak, the one asked, the request's id.
    let mut b = call.clone();
    b["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let e = error_of(&post(&url, &with(good.clone(), "MCP-Protocol-Version", Some("2099-01-01")), &b), 400, -32022);
    assert_eq!(e["data"]["requested"], "2099-01-01");
    let supported = strs(&e["data"]["supported"]);
    for v in [MODERN, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        assert!(supported.iter().any(|s| s == v), "{} missing from {:?}", v, supported);
    }
    let a = post(&url, &with(good.clone(), "MCP-Protocol-Version", Some("2099-01-01")), &b);
    assert_eq!(a.response()["id"], 7);
    // Only the header naming it (no _meta): the same answer.
    let mut b = call.clone();
    b["params"].as_object_mut().unwrap().remove("_meta");
    let e = error_of(&post(&url, &with(good.clone(), "MCP-Protocol-Version", Some("2099-01-01")), &b), 400, -32022);
    assert_eq!(e["data"]["requested"], "2099-01-01");
    // The header saying 2026-07-28 but no envelope in the body: invalid params, 400.
    error_of(&post(&url, &good, &b), 400, -32602);

    // Headers that are missing or disagree with the body: 400, -32020.
    let e = error_of(&post(&url, &with(good.clone(), "Mcp-Method", None), &call), 400, -32020);
    assert!(e["message"].as_str().unwrap().contains("Mcp-Method"), "{}", e);
    error_of(&post(&url, &with(good.clone(), "Mcp-Method", Some("tools/list")), &call), 400, -32020);
    let e = error_of(&post(&url, &with(good.clone(), "Mcp-Name", None), &call), 400, -32020);
    assert!(e["message"].as_str().unwrap().contains("Mcp-Name"), "{}", e);
    let e = error_of(&post(&url, &with(good.clone(), "Mcp-Name", Some("add")), &call), 400, -32020);
    assert!(e["message"].as_str().unwrap().contains("'add'"), "{}", e);
    error_of(&post(&url, &with(good.clone(), "MCP-Protocol-Version", None), &call), 400, -32020);
    let h = with(good.clone(), "MCP-Protocol-Version", Some("2025-11-25"));
    error_of(&post(&url, &h, &call), 400, -32020);
    // A routing header given twice: refused, whatever the copies say.
    let mut twice = good.clone();
    twice.push(("Mcp-Method".to_string(), "tools/call".to_string()));
    error_of(&post(&url, &twice, &call), 400, -32020);
    // A name sent in the header's base64 form is decoded before the comparison.
    let a = post(&url, &with(good.clone(), "Mcp-Name", Some("=?base64?ZWNobw==?=")), &call);
    assert_eq!(a.response()["result"]["content"][0]["text"], "x", "{:?}", a.messages);

    // A conforming call: JSON, shaped for the revision, no session.
    let a = post(&url, &good, &call);
    assert_eq!(a.status, 200);
    assert!(a.session.is_none());
    let r = &a.response()["result"];
    assert_eq!(r["resultType"], "complete", "{}", r);
    assert_eq!(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpctl-fixture", "{}", r);

    // server/discover: our versions, the child's identity; lists carry cache hints.
    let r = modern(&url, 1, "server/discover", json!({})).response()["result"].clone();
    assert_eq!(r["supportedVersions"][0], MODERN, "{}", r);
    assert!(r["capabilities"]["tools"].is_object(), "{}", r);
    assert_eq!(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpctl-fixture", "{}", r);
    let r = modern(&d.url("/mcp"), 1, "server/discover", json!({})).response()["result"].clone();
    assert_eq!(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcpctl", "{}", r);
    // List changes come on subscriptions/listen; resource subscriptions are not offered.
    assert_eq!(r["capabilities"]["tools"]["listChanged"], true, "{}", r);
    assert!(r["capabilities"]["resources"].get("subscribe").is_none(), "{}", r);
    let r = modern(&url, 2, "tools/list", json!({})).response()["result"].clone();
    assert_eq!(r["cacheScope"], "private", "{}", r);
    assert!(r["ttlMs"].as_u64().is_some(), "{}", r);
    let r = modern(&d.url("/mcp"), 3, "prompts/list", json!({})).response()["result"].clone();
    assert_eq!(r["prompts"][0]["name"], "fx__greet", "{}", r);
    assert_eq!(r["resultType"], "complete");
    let r = modern(&d.url("/mcp"), 4, "resources/read", json!({"uri": "mcpctl-test://missing"})).response().clone();
    assert_eq!(r["error"]["code"], -32602, "resource not found is -32602 in 2026-07-28: {}", r);

    // Methods this revision does not have: 404, -32601.
    for m in ["ping", "logging/setLevel", "resources/subscribe", "no/such"] {
        let a = modern(&url, 5, m, json!({}));
        error_of(&a, 404, -32601);
        assert_eq!(a.response()["id"], 5);
    }
    // No GET stream and no session to end in this revision: 405, Allow: POST.
    for m in ["GET", "DELETE"] {
        let resp = agent()
            .run(
                ureq::http::Request::builder()
                    .method(m)
                    .uri(&url)
                    .header("Accept", "text/event-stream")
                    .header("MCP-Protocol-Version", MODERN)
                    .body(())
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{}", m);
        assert_eq!(resp.headers().get("allow").unwrap(), "POST");
    }
    // A notification is accepted and dropped.
    let n = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert_eq!(post(&url, &good, &n).status, 202);

    // No session and no version at all: the session-based answer, a -32600 an auto client
    // falls back from, now with the request's id.
    let legacy = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}});
    let e = error_of(&post(&url, &[], &legacy), 400, -32600);
    assert!(e["message"].as_str().unwrap().contains("Mcp-Session-Id"), "{}", e);
    // initialize still opens a session, whatever headers come with it.
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let a = post(&url, &[], &init);
    assert_eq!(a.status, 200);
    assert!(a.session.is_some());
}

#[test]
fn a_call_of_2026_07_28_streams_its_progress_and_logs_only_when_asked() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let url = d.url("/mcp/fx");

    // Progress for the request comes on its own response stream, before the result.
    let mut meta = envelope();
    meta["progressToken"] = json!("p1");
    let a = modern(&url, 1, "tools/call", json!({"name": "sleep", "arguments": {"ms": 300}, "_meta": meta}));
    assert_eq!(a.status, 200);
    let progress: Vec<&Value> = a.messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert!(!progress.is_empty(), "{:?}", a.messages);
    assert_eq!(progress[0]["params"]["progressToken"], "p1");
    assert_eq!(a.response()["result"]["resultType"], "complete");

    // Log messages only with `logLevel` in the request's _meta, and at that level or above.
    let logs = |level: Option<&str>| {
        let mut meta = envelope();
        if let Some(l) = level {
            meta["io.modelcontextprotocol/logLevel"] = json!(l);
        }
        let a =
            modern(&url, 2, "tools/call", json!({"name": "log_then_echo", "arguments": {"text": "l"}, "_meta": meta}));
        assert_eq!(a.response()["result"]["content"][0]["text"], "l", "{:?}", a.messages);
        a.messages.iter().filter(|m| m["method"] == "notifications/message").count()
    };
    assert_eq!(logs(None), 0);
    assert_eq!(logs(Some("error")), 0);
    assert_eq!(logs(Some("debug")), 1);

    // A child that asks something mid-call a client that did not declare the capability
    // gets an error saying why; the client is never sent a request, and the call ends.
    let a = modern(&url, 3, "tools/call", json!({"name": "elicit", "arguments": {"message": "?"}}));
    assert!(a.messages.iter().all(|m| m.get("method").is_none()), "a request reached the client: {:?}", a.messages);
    let r = &a.response()["result"];
    assert_eq!(r["isError"], true, "{}", r);
    assert!(r["content"][0]["text"].as_str().unwrap().contains("speaks MCP 2026-07-28"), "{}", r);

    // The request's own capabilities decide, by what each question needs: a client of URL-mode
    // elicitation alone is not asked a form, nor one of elicitation alone for its roots.
    let refused = |id: u64, tool: &str, caps: Value, missing: &str| {
        let mut meta = envelope();
        meta["io.modelcontextprotocol/clientCapabilities"] = caps;
        let a = modern(
            &url,
            id,
            "tools/call",
            json!({"name": tool, "arguments": {"message": "?", "prompt": "p"}, "_meta": meta}),
        );
        assert!(a.messages.iter().all(|m| m.get("method").is_none()), "a request reached the client: {:?}", a.messages);
        let r = &a.response()["result"];
        assert_eq!(r["isError"], true, "{}: {:?}", tool, a.messages);
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(&format!("the client did not declare {}", missing)), "{}", text);
    };
    refused(4, "elicit", json!({"elicitation": {"url": {}}}), "the `elicitation` capability (form mode)");
    refused(5, "roots", json!({"elicitation": {}, "sampling": {}}), "the `roots` capability");
    refused(6, "sample", json!({"roots": {}}), "the `sampling` capability");
    // Declared: the question comes as an input-required result.
    let mut meta = envelope();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"roots": {}});
    let a = modern(&url, 7, "tools/call", json!({"name": "roots", "arguments": {}, "_meta": meta}));
    let r = &a.response()["result"];
    assert_eq!(r["resultType"], "input_required", "{}", r);
    let question = r["inputRequests"].as_object().unwrap().values().next().unwrap();
    assert_eq!(question["method"], "roots/list", "{}", r);
}

#[test]
fn a_server_with_a_child_per_session_is_refused_with_the_reason() {
    let p = Project::fixture(json!({"isolation": "session"}));
    let d = Daemon::start(&p, &[]);
    let a = modern(&d.url("/mcp/fx"), 1, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}));
    let e = &a.response()["error"];
    assert!(e["message"].as_str().unwrap_or("").contains("isolation"), "{:?}", a.messages);
    // No child was started for it.
    let status = p.cmd().args(["--json-output", "status"]).success().json();
    assert_eq!(status["daemon"]["sessions"], 0, "{}", status);
    // Discovery offers only the session-based revisions there, so a probing client opens a
    // session and reaches the server as before.
    let r = modern(&d.url("/mcp/fx"), 2, "server/discover", json!({})).response()["result"].clone();
    assert!(!strs(&r["supportedVersions"]).iter().any(|v| v == MODERN), "{}", r);
    assert!(strs(&r["supportedVersions"]).iter().any(|v| v == "2025-11-25"), "{}", r);
    if support::peers_available() {
        let v = py(&d.url("/mcp/fx"), "auto", None, &["call", "echo", r#"{"text": "in a session"}"#]);
        assert_eq!(v["protocol"], "2025-11-25", "{}", v);
        assert_eq!(v["result"]["content"][0]["text"], "in a session", "{}", v);
    }
}

#[test]
fn closing_the_stream_cancels_a_2026_07_28_call() {
    use std::io::Write;
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("fx.pid");
    p.write_config(&json!({"mcpServers": {"fx": {
        "command": support::fixture_bin(), "args": ["--pid-file", pid_file], "alwaysAllow": ["*"]}}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let fx: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // A call that runs for ten minutes unless cancelled.
    let b = body(1, "tools/call", json!({"name": "sleep", "arguments": {"ms": 600_000}}));
    let mut head = format!(
        "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        b.to_string().len()
    );
    for (k, v) in headers_for(&b) {
        head.push_str(&format!("{}: {}\r\n", k, v));
    }
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(format!("{}\r\n{}", head, b).as_bytes()).unwrap();
    support::eventually("the call to reach the server", Duration::from_secs(10), || {
        support::fixture_sleeps_running(fx) == 1
    });
    drop(s);
    // The child is told at once (not at the server's timeout, 60 s by default).
    let log = p.root.join(".mcpctl/logs/daemon.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("`tools/call` to server `fx` cancelled: the client closed the stream") {
            break;
        }
        assert!(Instant::now() < deadline, "no cancellation in the log:\n{}", text);
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server was told: its call ends.
    support::eventually("the server to end the call", Duration::from_secs(10), || {
        support::fixture_sleeps_running(fx) == 0
    });
    // The gateway goes on serving.
    let a = modern(&d.url("/mcp/fx"), 2, "tools/call", json!({"name": "echo", "arguments": {"text": "after"}}));
    assert_eq!(a.response()["result"]["content"][0]["text"], "after");
}

#[test]
fn subscriptions_listen_carries_the_list_changes_asked_for() {
    if !support::peers_available() {
        return;
    }
    let p = Project::fixture(json!({"alwaysAllow": ["echo", "toggle_tool"]}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    // The TS SDK's listen(): acknowledged, then a tools/list_changed when the list changes.
    for (url, tool) in [("/mcp", "fx__toggle_tool"), ("/mcp/fx", "toggle_tool")] {
        let v = ts(&d.url(url), MODERN, None, &["listen", tool]);
        assert_eq!(v["honored"]["toolsListChanged"], true, "{}", v);
        assert!(v["changed"].as_u64().unwrap() >= 1, "{}", v);
    }

    // Over raw HTTP: the stream's every message names the subscription (the request's id).
    let notifications = json!({"toolsListChanged": true, "resourceSubscriptions": ["fixture://hello"]});
    let mut l = Listen::open(d.port, "/mcp/fx", 41, notifications);
    let ack = l.next_event();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{}", ack);
    // What is honored: the list changes asked for, the resources the server subscribed.
    let honored = json!({"toolsListChanged": true, "resourceSubscriptions": ["fixture://hello"]});
    assert_eq!(ack["params"]["notifications"], honored, "{}", ack);
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41, "{}", ack);
    let a = modern(&d.url("/mcp/fx"), 42, "tools/call", json!({"name": "toggle_tool", "arguments": {}}));
    assert_eq!(a.status, 200);
    let n = l.next_event();
    assert_eq!(n["method"], "notifications/tools/list_changed", "{}", n);
    assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41, "{}", n);
}

#[test]
fn a_childs_question_reaches_a_2026_07_28_client_as_input_required() {
    if !support::peers_available() {
        return;
    }
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);

    // The Python SDK answers the input-required result and retries: the child's
    // elicitation and sampling requests get the client's answers, the calls complete.
    let v = py(&d.url("/mcp"), MODERN, None, &["--answer", "42", "call", "fx__elicit", r#"{"message": "?"}"#]);
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains(r#""answer":"42""#), "{}", v);
    assert_eq!(v["result"]["isError"], false, "{}", v);
    let v = py(&d.url("/mcp/fx"), MODERN, None, &["--answer", "hello", "call", "sample", r#"{"prompt": "p"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "sampled: hello", "{}", v);
    // The TS SDK fulfils it through its elicitation handler, the same way.
    let v = ts_answering(&d.url("/mcp"), MODERN, None, Some("ts-42"), &["call", "fx__elicit", r#"{"message": "?"}"#]);
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains(r#""answer":"ts-42""#), "{}", v);

    // Over raw HTTP: the question, the state, the retry's checks.
    let url = d.url("/mcp/fx");
    let mut meta = envelope();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let ask = json!({"name": "elicit", "arguments": {"message": "name?"}, "_meta": meta});
    let a = modern(&url, 1, "tools/call", ask.clone());
    let r = a.response()["result"].clone();
    assert_eq!(r["resultType"], "input_required", "{}", r);
    let (key, question) =
        r["inputRequests"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    assert_eq!(question["method"], "elicitation/create", "{}", r);
    assert_eq!(question["params"]["message"], "name?", "{}", r);
    let state = r["requestState"].as_str().unwrap().to_string();

    // A retry for another tool is refused (and does not use the state up).
    let mut other = ask.clone();
    other["name"] = json!("echo");
    other["requestState"] = json!(state);
    error_of(&modern(&url, 2, "tools/call", other), 400, -32602);
    // A retry without the answer is asked again, under a new state.
    let mut again = ask.clone();
    again["requestState"] = json!(state);
    let r = modern(&url, 3, "tools/call", again).response()["result"].clone();
    assert_eq!(r["resultType"], "input_required", "{}", r);
    assert!(r["inputRequests"].get(&key).is_some(), "{}", r);
    let state2 = r["requestState"].as_str().unwrap().to_string();
    assert_ne!(state, state2);
    // The answer: the call completes under the retry's id.
    let mut retry = ask.clone();
    retry["requestState"] = json!(state2);
    retry["inputResponses"] = json!({key.clone(): {"action": "accept", "content": {"answer": "Ada"}}});
    let a = modern(&url, 4, "tools/call", retry.clone());
    let r = a.response();
    assert_eq!(r["id"], 4, "{}", r);
    assert_eq!(r["result"]["resultType"], "complete", "{}", r);
    assert!(r["result"]["content"][0]["text"].as_str().unwrap().contains("Ada"), "{}", r);
    // A state is used once.
    error_of(&modern(&url, 5, "tools/call", retry), 400, -32602);
}

#[test]
fn parameters_mirrored_into_headers_are_checked_against_the_body() {
    if !support::peers_available() {
        return;
    }
    // A session-based child whose tool mirrors `region` and `shard` (x-mcp-header).
    let script = support::repo().join("tests/py/header_server.py");
    let p = Project::new(&json!({"mcpServers": {"hx": {
        "command": support::venv_python(), "args": [script], "alwaysAllow": ["*"], "timeout": 30,
    }}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);

    // The SDK's client mirrors them itself: the call goes through, on both endpoints.
    let v = py(&d.url("/mcp/hx"), MODERN, None, &["call", "where", r#"{"region": "eu-west", "shard": 3}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "eu-west/3", "{}", v);
    let v = py(&d.url("/mcp"), MODERN, None, &["call", "hx__where", r#"{"region": "Zürich"}"#]);
    assert_eq!(v["result"]["content"][0]["text"], "Zürich/0", "{}", v);

    // Over raw HTTP: a mirrored argument without its header, or with another value: -32020.
    let url = d.url("/mcp/hx");
    let call = body(1, "tools/call", json!({"name": "where", "arguments": {"region": "eu", "shard": 3}}));
    let base = headers_for(&call);
    let e = error_of(&post(&url, &with(base.clone(), "Mcp-Param-Shard", Some("3")), &call), 400, -32020);
    assert!(e["message"].as_str().unwrap().contains("Mcp-Param-Region"), "{}", e);
    let h = with(with(base.clone(), "Mcp-Param-Region", Some("us")), "Mcp-Param-Shard", Some("3"));
    let e = error_of(&post(&url, &h, &call), 400, -32020);
    assert!(e["message"].as_str().unwrap().contains("'us'"), "{}", e);
    let h = with(with(base.clone(), "Mcp-Param-Region", Some("eu")), "Mcp-Param-Shard", Some("4"));
    error_of(&post(&url, &h, &call), 400, -32020);
    // Matching (integers compared as numbers, base64 decoded): served.
    let h = with(with(base.clone(), "Mcp-Param-Region", Some("=?base64?ZXU=?=")), "Mcp-Param-Shard", Some("3.0"));
    let a = post(&url, &h, &call);
    assert_eq!(a.response()["result"]["content"][0]["text"], "eu/3", "{:?}", a.messages);
}

/// A raw `subscriptions/listen` stream: its events, one by one (each read bounded by 20 s).
struct Listen {
    _stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Listen {
    fn open(port: u16, path: &str, id: u64, notifications: Value) -> Listen {
        use std::io::Write;
        let b = body(id, "subscriptions/listen", json!({"notifications": notifications}));
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            path,
            b.to_string().len()
        );
        for (k, v) in headers_for(&b) {
            head.push_str(&format!("{}: {}\r\n", k, v));
        }
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(format!("{}\r\n{}", head, b).as_bytes()).unwrap();
        Listen { reader: std::io::BufReader::new(s.try_clone().unwrap()), _stream: s }
    }

    fn next_event(&mut self) -> Value {
        use std::io::BufRead;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "the stream ended");
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

#[test]
fn subscriptions_listen_carries_updates_of_the_resources_subscribed() {
    if !support::peers_available() {
        return;
    }
    let script = support::repo().join("tests/py/resource_server.py");
    let p = Project::new(&json!({"mcpServers": {
        "rx": {"command": support::venv_python(), "args": [script], "alwaysAllow": ["*"], "timeout": 30},
        "fx": fx(json!({"alwaysAllow": ["*"]})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let mut l = Listen::open(d.port, "/mcp", 7, json!({"resourceSubscriptions": ["memo://note", "memo://nobody"]}));
    let ack = l.next_event();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{}", ack);
    // Subscribed at the server that has it; a resource no server has is left out.
    assert_eq!(ack["params"]["notifications"], json!({"resourceSubscriptions": ["memo://note"]}), "{}", ack);
    let a = modern(&d.url("/mcp"), 8, "tools/call", json!({"name": "rx__touch", "arguments": {}}));
    assert_eq!(a.response()["result"]["content"][0]["text"], "touched", "{:?}", a.messages);
    let n = l.next_event();
    assert_eq!(n["method"], "notifications/resources/updated", "{}", n);
    assert_eq!(n["params"]["uri"], "memo://note", "{}", n);
    assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7, "{}", n);
}

fn calls(p: &Project, server: &str) -> Value {
    let v = p.cmd().args(["--json-output", "status"]).success().json();
    v["servers"].as_array().unwrap().iter().find(|s| s["name"] == server).unwrap()["calls"].clone()
}

/// `"gatewayApproval": "ask"` for 2026-07-28 clients: a client that declares form
/// elicitation in its request's `_meta` is answered `input_required` with the approval
/// question; its retry runs the call (approved) or is refused (declined, dismissed,
/// unticked); a client without the capability is refused with the reason. Nothing reaches
/// the child before the approval.
#[test]
fn ask_asks_2026_07_28_clients_by_input_required() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "fx": fx(json!({"alwaysAllow": ["add"], "gatewayApproval": "ask"})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let (one, all) = (d.url("/mcp/fx"), d.url("/mcp"));
    let mut meta = envelope();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});

    // Without the capability: refused with the reason, and not listed.
    let a = modern(&one, 1, "tools/call", json!({"name": "echo", "arguments": {"text": "no"}}));
    let e = error_of(&a, 200, -32003);
    let why = e["message"].as_str().unwrap();
    assert!(why.contains("needs the user's approval") && why.contains("`_meta` clientCapabilities"), "{}", why);
    let listed = |url: &str, meta: Option<&Value>| {
        let mut params = json!({});
        if let Some(m) = meta {
            params["_meta"] = m.clone();
        }
        let r = modern(url, 9, "tools/list", params).response()["result"]["tools"].clone();
        r.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert!(!listed(&one, None).contains(&"echo".to_string()));
    // With it: listed, and asked.
    assert!(listed(&one, Some(&meta)).contains(&"echo".to_string()));
    assert!(listed(&all, Some(&meta)).contains(&"fx__echo".to_string()));

    let ask = |url: &str, id: u64, tool: &str| {
        let params = json!({"name": tool, "arguments": {"text": "approved-run"}, "_meta": meta.clone()});
        let a = modern(url, id, "tools/call", params.clone());
        assert_eq!(a.status, 200, "{:?}", a.messages);
        let r = a.response();
        assert_eq!(r["id"], id, "{}", r);
        let r = r["result"].clone();
        assert_eq!(r["resultType"], "input_required", "{}", r);
        let (key, q) =
            r["inputRequests"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        assert_eq!(q["method"], "elicitation/create", "{}", r);
        let message = q["params"]["message"].as_str().unwrap();
        assert!(message.contains("tool `echo` on server `fx`"), "{}", message);
        assert!(message.contains("text = \"approved-run\""), "{}", message);
        assert_eq!(q["params"]["requestedSchema"]["properties"]["approve"]["type"], "boolean", "{}", q);
        assert_eq!(q["params"]["requestedSchema"]["required"], json!(["approve"]), "{}", q);
        let mut retry = params;
        retry["requestState"] = r["requestState"].clone();
        (key, retry)
    };
    let answer = |url: &str, id: u64, mut retry: Value, key: &str, response: Value| {
        retry["inputResponses"] = json!({key: response});
        (modern(url, id, "tools/call", retry.clone()), retry)
    };

    // Declined, dismissed, unticked: -32003 with why, the child never called.
    for (url, tool, response, says) in [
        (&one, "echo", json!({"action": "decline"}), "the user declined"),
        (&all, "fx__echo", json!({"action": "cancel"}), "the user dismissed the question"),
        (&one, "echo", json!({"action": "accept", "content": {"approve": false}}), "the user did not approve"),
    ] {
        let (key, retry) = ask(url, 2, tool);
        let (a, _) = answer(url, 3, retry, &key, response);
        let e = error_of(&a, 200, -32003);
        let why = e["message"].as_str().unwrap();
        assert!(why.contains(says) && why.contains("tool `echo` on server `fx` was not run"), "{}", why);
        assert_eq!(a.response()["id"], 3);
    }
    assert_eq!(calls(&p, "fx"), 0);

    // Approved: the call runs (once), answered under the retry's id, on both endpoints.
    for (n, (url, tool)) in [(&one, "echo"), (&all, "fx__echo")].into_iter().enumerate() {
        let (key, retry) = ask(url, 4, tool);
        // A retry without the answer is asked again, under a new state.
        let mut again = retry.clone();
        again.as_object_mut().unwrap().remove("inputResponses");
        let r = modern(url, 5, "tools/call", again).response()["result"].clone();
        assert_eq!(r["resultType"], "input_required", "{}", r);
        assert_ne!(r["requestState"], retry["requestState"]);
        // The first state is used up.
        let (a, _) = answer(url, 6, retry.clone(), &key, json!({"action": "accept", "content": {"approve": true}}));
        error_of(&a, 400, -32602);
        let mut retry = retry;
        retry["requestState"] = r["requestState"].clone();
        let (a, retry) = answer(url, 7, retry, &key, json!({"action": "accept", "content": {"approve": true}}));
        let r = a.response();
        assert_eq!(r["id"], 7, "{}", r);
        assert_eq!(r["result"]["resultType"], "complete", "{}", r);
        assert_eq!(r["result"]["content"][0]["text"], "approved-run", "{}", r);
        assert_eq!(calls(&p, "fx"), n as u64 + 1);
        // A state is used once.
        error_of(&modern(url, 8, "tools/call", retry), 400, -32602);
    }
    // Another token, method or endpoint cannot use a state (it is bound like a child's).
    let (key, mut retry) = ask(&one, 10, "echo");
    retry["inputResponses"] = json!({key.clone(): {"action": "accept", "content": {"approve": true}}});
    let mut other = retry.clone();
    other["name"] = json!("add");
    other["arguments"] = json!({"a": 1, "b": 2});
    error_of(&modern(&one, 11, "tools/call", other), 400, -32602);
    let mut elsewhere = retry.clone();
    elsewhere["name"] = json!("fx__echo");
    error_of(&modern(&all, 12, "tools/call", elsewhere), 400, -32602);
    assert_eq!(modern(&one, 13, "tools/call", retry).response()["result"]["content"][0]["text"], "approved-run");
    assert_eq!(calls(&p, "fx"), 3);
    // A listed tool runs without a question.
    let r = modern(&one, 14, "tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": meta}));
    assert_eq!(r.response()["result"]["resultType"], "complete", "{:?}", r.messages);
    assert_eq!(calls(&p, "fx"), 4);

    // The Python SDK 2.3 client answers the question through its elicitation callback.
    for (url, tool) in [(&one, "echo"), (&all, "fx__echo")] {
        let before = calls(&p, "fx").as_u64().unwrap();
        let v = py(url, MODERN, None, &["--approve", "accept", "call", tool, r#"{"text": "py-run"}"#]);
        assert_eq!(v["result"]["content"][0]["text"], "py-run", "{}", v);
        let asked = v["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{}", v);
        assert!(asked[0]["message"].as_str().unwrap().contains("text = \"py-run\""), "{}", v);
        assert_eq!(calls(&p, "fx"), before + 1);
        for (flag, says) in [("decline", "the user declined"), ("refuse", "the user did not approve")] {
            let v = py(url, MODERN, None, &["--approve", flag, "call", tool, r#"{"text": "no"}"#]);
            assert_eq!(v["error"]["code"], -32003, "{}", v);
            assert!(v["error"]["message"].as_str().unwrap().contains(says), "{}", v);
        }
        let v = py(url, MODERN, None, &["call", tool, r#"{"text": "no"}"#]);
        assert_eq!(v["error"]["code"], -32003, "{}", v);
        assert!(v["error"]["message"].as_str().unwrap().contains("clientCapabilities"), "{}", v);
        assert_eq!(calls(&p, "fx"), before + 1);
    }
    // The log has the outcomes, as for session clients.
    let log = p.cmd().args(["logs"]).success().stdout();
    for outcome in ["approved", "declined", "refused"] {
        assert!(log.contains("server=fx tool=echo") && log.contains(&format!("outcome={}", outcome)), "{}", log);
    }
}

/// The messages of a session's GET stream, as they come (the reading thread ends with the
/// stream, at the latest after the agent's 40 s).
pub(crate) fn session_events(c: &McpClient) -> std::sync::mpsc::Receiver<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(40)))
        .build()
        .into();
    let resp = agent.get(&c.url).header("Accept", "text/event-stream").header("Mcp-Session-Id", &c.sid).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(v) = line.strip_prefix("data: ").and_then(|l| serde_json::from_str::<Value>(l).ok()) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The `notifications/resources/updated` URIs that came within `wait`.
pub(crate) fn updates(rx: &std::sync::mpsc::Receiver<Value>, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(v) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if v["method"] == "notifications/resources/updated" {
            out.push(v["params"]["uri"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

/// `resources/subscribe`/`unsubscribe` from session clients to a 2026-07-28 child (which has
/// only `subscriptions/listen`): answered `{}`, the child's listen stream reopened with the
/// subscribed resources (the old one closed), and the updates delivered to the sessions that
/// subscribed them only; an unsubscribed resource's updates reach nobody.
#[test]
fn session_clients_subscribe_to_a_2026_07_28_childs_resources() {
    if !support::peers_available() {
        return;
    }
    let script = support::repo().join("tests/py/modern_resource_server.py");
    let p = Project::new(&json!({"mcpServers": {"rs": {
        "command": support::venv_modern_python(), "args": [script], "alwaysAllow": ["*"], "timeout": 30,
    }}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    session_subscriptions(&d, "rs");
    let a = McpClient::open(d.url("/mcp/rs"));
    // A URI is required.
    let r = a.request("resources/subscribe", json!({}));
    assert_eq!(r["error"]["code"], -32602, "{}", r);
}

/// Two session clients (A on `/mcp/<server>`, B on `/mcp`) subscribe to resources of a
/// 2026-07-28 child: each `resources/subscribe` is answered `{}`, the child keeps one listen
/// stream (replaced by one naming the subscribed resources), each update reaches the
/// sessions that subscribed it only, and an unsubscribed resource's reaches nobody.
pub(crate) fn session_subscriptions(d: &Daemon, server: &str) {
    let a = McpClient::open(d.url(&format!("/mcp/{}", server)));
    let b = McpClient::open(d.url("/mcp"));
    let (ea, eb) = (session_events(&a), session_events(&b));
    let streams = || a.call("streams", json!({}))["content"][0]["text"].as_str().unwrap().parse::<u32>().unwrap();
    let one_stream = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while streams() != 1 {
            assert!(Instant::now() < deadline, "the child keeps {} listen streams open", streams());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let touch = |c: &McpClient, uri: &str| {
        assert_eq!(
            c.call(
                &if c.url.ends_with("/mcp") { format!("{}__touch", server) } else { "touch".to_string() },
                json!({"uri": uri})
            )["content"][0]["text"],
            format!("touched {}", uri)
        );
    };
    // The gateway listens for list changes (on one stream).
    one_stream();

    // Subscribed: answered at once; the child's stream is replaced, the update reaches A only.
    let r = a.request("resources/subscribe", json!({"uri": "note://a"}));
    assert_eq!(r["result"], json!({}), "{}", r);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        touch(&a, "note://a");
        let got = updates(&ea, Duration::from_millis(300));
        if !got.is_empty() {
            assert!(got.iter().all(|u| u == "note://a"), "{:?}", got);
            break;
        }
        assert!(Instant::now() < deadline, "no notifications/resources/updated for the subscribed resource");
    }
    one_stream();
    assert!(updates(&eb, Duration::from_millis(300)).is_empty(), "a session that did not subscribe got the update");

    // B subscribes another resource on /mcp: its updates reach B, not A.
    let r = b.request("resources/subscribe", json!({"uri": "note://b"}));
    assert_eq!(r["result"], json!({}), "{}", r);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        touch(&b, "note://b");
        if updates(&eb, Duration::from_millis(300)).contains(&"note://b".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "no update for B's resource");
    }
    one_stream();
    touch(&b, "note://a");
    assert_eq!(updates(&ea, Duration::from_millis(500)), ["note://a"]);
    assert!(!updates(&ea, Duration::from_millis(300)).contains(&"note://b".to_string()));
    assert!(updates(&eb, Duration::from_millis(300)).iter().all(|u| u == "note://b"));

    // Unsubscribed: no update reaches A any more; the child keeps one stream.
    let r = a.request("resources/unsubscribe", json!({"uri": "note://a"}));
    assert_eq!(r["result"], json!({}), "{}", r);
    touch(&a, "note://a");
    assert!(updates(&ea, Duration::from_millis(800)).is_empty());
    one_stream();
}

/// A 2026-07-28 client's own `resourceSubscriptions` of a 2026-07-28 child's resources: the
/// child has no `resources/subscribe`, so the gateway names them in its listen stream at the
/// child; updates reach the client's stream, and its subscription ends with that stream.
#[test]
fn a_listen_stream_subscribes_to_a_2026_07_28_childs_resources() {
    if !support::peers_available() {
        return;
    }
    let script = support::repo().join("tests/py/modern_resource_server.py");
    let p = Project::new(&json!({"mcpServers": {"rs": {
        "command": support::venv_modern_python(), "args": [script], "alwaysAllow": ["*"], "timeout": 30,
    }}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let url = d.url("/mcp/rs");
    let call = |id: u64, name: &str, args: Value| {
        let a = modern(&url, id, "tools/call", json!({"name": name, "arguments": args}));
        a.response()["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string()
    };
    let streams_become = |n: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while call(1, "streams", json!({})) != n {
            assert!(Instant::now() < deadline, "the child does not get to {} listen streams", n);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut l = Listen::open(d.port, "/mcp/rs", 9, json!({"resourceSubscriptions": ["note://a"]}));
    let ack = l.next_event();
    assert_eq!(ack["params"]["notifications"], json!({"resourceSubscriptions": ["note://a"]}), "{}", ack);
    // The gateway's stream at the child is replaced by one that names the resource.
    streams_become("1");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(call(2, "touch", json!({"uri": "note://a"})), "touched note://a");
        // Until the new stream is up an update may be missed: touch again.
        l.reader.get_ref().set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut line = String::new();
        let mut got = None;
        while std::io::BufRead::read_line(&mut l.reader, &mut line).is_ok_and(|n| n > 0) {
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                got = Some(serde_json::from_str::<Value>(data).unwrap());
                break;
            }
            line.clear();
        }
        if let Some(n) = got {
            assert_eq!(n["method"], "notifications/resources/updated", "{}", n);
            assert_eq!(n["params"]["uri"], "note://a", "{}", n);
            assert_eq!(n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 9, "{}", n);
            break;
        }
        assert!(Instant::now() < deadline, "no notifications/resources/updated on the listen stream");
    }
}
