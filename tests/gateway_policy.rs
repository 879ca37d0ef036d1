//! The config's tool policy (`disabled`, `alwaysAllow`, `gatewayApproval`) on every path a
//! caller can take: `/mcp/<server>`, `/mcp` (aggregated), `/cli/call` and the shell client;
//! and the daemon reading no file on a caller's behalf.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{fixture_bin, Daemon, McpClient, Project};

fn fx(extra: Value) -> Value {
    let mut s = json!({"command": fixture_bin(), "timeout": 10});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

fn names(list: &Value) -> Vec<String> {
    let tools = list["result"]["tools"].as_array().unwrap_or_else(|| panic!("no tools in {}", list));
    tools.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

/// A refused `tools/call`: a JSON-RPC error (not a result) with the policy's code.
fn refused(answer: &Value) -> String {
    assert_eq!(answer["error"]["code"], -32003, "expected a refusal, got {}", answer);
    assert!(answer.get("result").is_none(), "{}", answer);
    answer["error"]["message"].as_str().unwrap().to_string()
}

/// `POST /cli/call` as any local process could send it.
fn cli_call(d: &Daemon, body: &Value) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let resp = agent
        .post(&d.url("/cli/call"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_str())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap()
}

fn calls(p: &Project, server: &str) -> Value {
    let v = p.cmd().args(["--json-output", "status"]).success().json();
    v["servers"].as_array().unwrap().iter().find(|s| s["name"] == server).unwrap()["calls"].clone()
}

#[test]
fn the_policy_holds_on_every_gateway_path() {
    let p = Project::new(&json!({"mcpServers": {
        "blocked": fx(json!({"alwaysAllow": []})),
        "named": fx(json!({"alwaysAllow": ["echo"]})),
        "open": fx(json!({})),
        "trusted": fx(json!({"gatewayApproval": "allow"})),
        "off": fx(json!({"alwaysAllow": ["*"], "disabled": true})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);

    // `"alwaysAllow": []` blocks every tool: nothing listed, every call refused, with why and how.
    let blocked = McpClient::open(d.url("/mcp/blocked"));
    assert_eq!(names(&blocked.request("tools/list", json!({}))), Vec::<String>::new());
    let why = refused(&blocked.request("tools/call", json!({"name": "echo", "arguments": {"text": "x"}})));
    assert!(why.contains("server `blocked` blocks every tool"), "{}", why);
    assert!(why.contains("mcpServers.blocked.alwaysAllow"), "{}", why);

    // A list: its names run, the others are neither listed nor run.
    let named = McpClient::open(d.url("/mcp/named"));
    assert_eq!(names(&named.request("tools/list", json!({}))), vec!["echo"]);
    assert_eq!(named.call("echo", json!({"text": "hi"}))["content"][0]["text"], "hi");
    let why = refused(&named.request("tools/call", json!({"name": "add", "arguments": {"a": 1, "b": 2}})));
    assert!(why.contains("tool `add` on server `named` is not allowed through the gateway"), "{}", why);
    assert!(why.contains("mcpServers.named.gatewayApproval"), "{}", why);

    // No list: unlisted, so denied by default; `"gatewayApproval": "allow"` runs them.
    let open = McpClient::open(d.url("/mcp/open"));
    assert!(names(&open.request("tools/list", json!({}))).is_empty());
    refused(&open.request("tools/call", json!({"name": "echo", "arguments": {"text": "x"}})));
    let trusted = McpClient::open(d.url("/mcp/trusted"));
    assert_eq!(names(&trusted.request("tools/list", json!({}))).len(), 20);
    assert_eq!(trusted.call("add", json!({"a": 1, "b": 2}))["content"][0]["text"], "3");

    // A disabled server is served by no path.
    let off = McpClient::open(d.url("/mcp/off"));
    assert!(off.request("tools/list", json!({})).get("error").is_some());
    let why = refused(&off.request("tools/call", json!({"name": "echo", "arguments": {"text": "x"}})));
    assert!(why.contains("server `off` is disabled"), "{}", why);

    // The aggregated endpoint: the same decisions under the prefixed names.
    let all = McpClient::open(d.url("/mcp"));
    let listed = names(&all.request("tools/list", json!({})));
    assert!(listed.contains(&"named__echo".to_string()), "{:?}", listed);
    assert!(listed.contains(&"trusted__add".to_string()), "{:?}", listed);
    for n in &listed {
        assert!(n.starts_with("named__echo") || n.starts_with("trusted__"), "{} should not be listed", n);
    }
    for name in ["blocked__echo", "named__add", "open__echo"] {
        refused(&all.request("tools/call", json!({"name": name, "arguments": {"text": "x", "a": 1, "b": 2}})));
    }
    // A disabled server has no tools here at all.
    let v = all.request("tools/call", json!({"name": "off__echo", "arguments": {"text": "x"}}));
    assert!(v["error"]["message"].as_str().unwrap().contains("Unknown tool: off__echo"), "{}", v);
    assert_eq!(all.call("named__echo", json!({"text": "agg"}))["content"][0]["text"], "agg");

    // `/cli/call`, sent by hand: the same.
    for (server, tool, says) in [
        ("blocked", "echo", "blocks every tool"),
        ("named", "add", "not allowed through the gateway"),
        ("open", "echo", "not allowed through the gateway"),
        ("off", "echo", "is disabled"),
    ] {
        let v = cli_call(&d, &json!({"server": server, "tool": tool, "args": [{"Pair": ["text", "x"]}]}));
        assert!(v.get("result").is_none(), "{}", v);
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{} {}: {}", server, tool, v);
    }
    // Nothing refused reached a child.
    for s in ["blocked", "open"] {
        assert_eq!(calls(&p, s), 0, "{}", s);
    }
    assert_eq!(calls(&p, "named"), 2);

    // The shell client: `--yes` approves an unlisted tool for this call; the daemon does not
    // run it (its policy says no), so a child of the shell runs it instead.
    p.cmd().args(["call", "named", "add", "--a", "1", "--b", "2"]).status(2);
    p.cmd().args(["--yes", "call", "named", "add", "--a", "1", "--b", "2"]).success().stdout_has("3");
    assert_eq!(calls(&p, "named"), 2);
    p.cmd().args(["call", "named", "echo", "--text", "via"]).success().stdout_has("via");
    assert_eq!(calls(&p, "named"), 3);
    p.cmd().args(["--yes", "call", "blocked", "echo", "--text", "x"]).status(2);
    // `tools` in the shell lists every tool (the gateway would show only `echo`).
    let v = p.cmd().args(["--json-output", "tools", "named"]).success().json();
    assert_eq!(v["tools"].as_array().unwrap().len(), 20, "{}", v);

    // The refusals are in the call log.
    let log = p.cmd().args(["logs"]).success().stdout();
    assert!(log.contains("server=blocked tool=echo") && log.contains("outcome=refused"), "{}", log);
}

#[test]
fn the_daemon_reads_no_file_for_a_caller() {
    let p = Project::fixture(json!({}));
    let secret = p.root.join("secret.txt");
    std::fs::write(&secret, "TOPSECRET-4711").unwrap();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let path = secret.display().to_string();
    // An attacker's raw requests: a file for a string, a file for an integer (a type error
    // would quote it), standard input. Each refused, the contents nowhere.
    for args in [
        json!([{"Var": format!("text=@{}", path)}]),
        json!([{"Var": format!("a=@{}", path)}, {"Pair": ["b", "1"]}]),
        json!([{"Json": "-"}]),
    ] {
        let tool = if args[0]["Var"].as_str().map(|v| v.starts_with("a=")).unwrap_or(false) { "add" } else { "echo" };
        let v = cli_call(&d, &json!({"server": "fx", "tool": tool, "args": args}));
        let text = v.to_string();
        assert!(!text.contains("TOPSECRET"), "{}", text);
        assert!(v.get("result").is_none(), "{}", text);
        assert!(text.contains("the daemon does not read files or standard input"), "{}", text);
    }
    assert_eq!(calls(&p, "fx"), 0);
    // The shell client reads the file itself and sends its contents: it still works.
    let r = p.cmd().args(["-v", "call", "fx", "echo", "--var", &format!("text=@{}", path)]).success();
    assert_eq!(r.stdout().trim(), "TOPSECRET-4711");
    r.stderr_has("using the daemon");
    assert_eq!(calls(&p, "fx"), 1);
    p.cmd()
        .args(["call", "fx", "echo", "--json", "-"])
        .stdin("{\"text\": \"from stdin\"}")
        .success()
        .stdout_has("from stdin");
}

#[test]
fn list_and_status_say_the_policy_in_words() {
    let p = Project::new(&json!({"mcpServers": {
        "all": fx(json!({"alwaysAllow": ["*"]})),
        "some": fx(json!({"alwaysAllow": ["echo", "ad*"]})),
        "none": fx(json!({"alwaysAllow": []})),
        "ask": fx(json!({})),
        "trusted": fx(json!({"gatewayApproval": "allow"})),
        "off": fx(json!({"disabled": true})),
    }}));
    let want = [
        ("all", "allows all tools"),
        ("some", "allows 2 tools (echo, ad*); denies unlisted tools through the gateway"),
        ("none", "blocks all tools"),
        ("ask", "asks for every tool in the shell; denies unlisted tools through the gateway"),
        ("trusted", "asks for every tool in the shell; allows unlisted tools through the gateway"),
        ("off", "disabled"),
    ];
    let v = p.cmd().args(["--json-output", "list"]).success().json();
    let text = p.cmd().args(["list"]).success().stdout();
    for (name, words) in want {
        let s = v["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
        assert_eq!(s["policy"], words, "{}", name);
        assert!(text.contains(&format!("Policy: {}\n", words)), "{}: {}", name, text);
    }
    let one = p.cmd().args(["--json-output", "status", "some"]).success().json();
    assert_eq!(one["server"]["policy"], want[1].1);
    p.cmd().args(["status", "none"]).success().stdout_has("Policy: blocks all tools");
    // The top-level default applies to servers without their own.
    p.write_config(&json!({"gatewayApproval": "allow", "mcpServers": {"ask": fx(json!({}))}}));
    let v = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(
        v["servers"][0]["policy"],
        "asks for every tool in the shell; allows unlisted tools through the gateway"
    );
    p.write_config(&json!({"mcpServers": {"x": fx(json!({"gatewayApproval": "ask"}))}}));
    p.cmd().args(["list"]).status(1).stderr_has("`gatewayApproval` must be \"allow\" or \"deny\"");
}

/// The official Python SDK client (tests/py/sdk_client.py): a blocked tool is not listed
/// and calling it is refused, on `/mcp` and on `/mcp/<server>`.
#[test]
fn a_real_client_sees_the_refusal() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "blocked": fx(json!({"alwaysAllow": []})),
        "named": fx(json!({"alwaysAllow": ["echo"]})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let sdk = |url: &str, args: &[&str]| {
        let o = std::process::Command::new(support::venv_python())
            .arg(support::repo().join("tests/py/sdk_client.py"))
            .arg(url)
            .args(["--timeout", "20"])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, out, err) = sdk(&d.url("/mcp"), &["list-tools"]);
    assert_eq!(code, Some(0), "{}", err);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!(["named__echo"]));
    let (code, out, err) = sdk(&d.url("/mcp/blocked"), &["list-tools"]);
    assert_eq!(code, Some(0), "{}", err);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));
    for (url, tool) in [("/mcp", "blocked__echo"), ("/mcp/blocked", "echo"), ("/mcp/named", "add")] {
        let (code, out, err) = sdk(&d.url(url), &["call", tool, "{\"text\": \"x\", \"a\": 1, \"b\": 2}"]);
        assert_eq!(code, Some(1), "{} {}: {} {}", url, tool, out, err);
        assert!(err.contains("alwaysAllow"), "{} {}: {}", url, tool, err);
    }
    assert_eq!(calls(&p, "blocked"), 0);
    let (code, out, err) = sdk(&d.url("/mcp/named"), &["call", "echo", "{\"text\": \"ok\"}"]);
    assert_eq!(code, Some(0), "{}", err);
    assert!(out.contains("\"ok\""), "{}", out);
}

/// A small client that bears a token: (HTTP status, the JSON-RPC answer or body, session id).
fn rpc(
    url: &str,
    token: &str,
    sid: Option<&str>,
    id: u64,
    method: &str,
    params: Value,
) -> (u16, Value, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {}", token));
    if let Some(s) = sid {
        r = r.header("Mcp-Session-Id", s);
    }
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let resp = r.send(msg.to_string().as_str()).unwrap();
    let status = resp.status().as_u16();
    let sid = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().read_to_string().unwrap_or_default();
    let v = body
        .lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == id)
        .unwrap_or(json!({"body": body}));
    (status, v, sid)
}

fn session(url: &str, token: &str) -> String {
    let init =
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let (status, v, sid) = rpc(url, token, None, 0, "initialize", init);
    assert_eq!(status, 200, "{}", v);
    sid.unwrap()
}

#[test]
fn named_tokens_each_reach_only_their_tools() {
    const CI: &str = "ci-secret-4f1d2a9b8c7e6d5f";
    const DESK: &str = "desk-secret-9a8b7c6d5e4f3a2b";
    let cfg = json!({
        "tokens": {"ci": {"env": "MCPCTL_TOKEN_CI", "allow": ["fx__echo"]}, "desk": {"file": "desk.token", "allow": ["fy__*"]}},
        "mcpServers": {"fx": fx(json!({"alwaysAllow": ["*"]})), "fy": fx(json!({"alwaysAllow": ["*"]}))},
    });
    let p = Project::new(&cfg);
    let file = p.root.join("desk.token");
    std::fs::write(&file, format!("{}\n", DESK)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    // A token file others can read is refused before anything starts.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    p.cmd()
        .args(["start", "--port", &support::free_port().to_string()])
        .env("MCPCTL_TOKEN_CI", CI)
        .status(1)
        .stderr_has(&format!("chmod 600 {}", file.display()));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.cmd()
        .args(["start", "--port", &support::free_port().to_string()])
        .status(1)
        .stderr_has("MCPCTL_TOKEN_CI is not set");
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN_CI", CI)]);
    d.wait_ready(&[("MCPCTL_TOKEN", CI)]);

    let tools = |url: &str, token: &str| {
        let sid = session(url, token);
        let (_, v, _) = rpc(url, token, Some(&sid), 1, "tools/list", json!({}));
        names(&v)
    };
    let call = |url: &str, token: &str, tool: &str| {
        let sid = session(url, token);
        rpc(url, token, Some(&sid), 2, "tools/call", json!({"name": tool, "arguments": {"text": "t"}})).1
    };
    // /mcp: each token sees only its own tools, and is refused the other's.
    assert_eq!(tools(&d.url("/mcp"), CI), vec!["fx__echo"]);
    let desk_tools = tools(&d.url("/mcp"), DESK);
    assert_eq!(desk_tools.len(), 20);
    assert!(desk_tools.iter().all(|n| n.starts_with("fy__")), "{:?}", desk_tools);
    assert_eq!(call(&d.url("/mcp"), CI, "fx__echo")["result"]["content"][0]["text"], "t");
    assert!(
        refused(&call(&d.url("/mcp"), CI, "fy__echo")).contains("token `ci` may not call tool `echo` on server `fy`")
    );
    assert!(refused(&call(&d.url("/mcp"), DESK, "fx__echo")).contains("tokens.desk.allow"));
    // /mcp/<server>: the same.
    assert_eq!(tools(&d.url("/mcp/fx"), CI), vec!["echo"]);
    assert!(tools(&d.url("/mcp/fy"), CI).is_empty());
    assert!(tools(&d.url("/mcp/fx"), DESK).is_empty());
    refused(&call(&d.url("/mcp/fx"), DESK, "echo"));
    refused(&call(&d.url("/mcp/fy"), CI, "echo"));
    assert_eq!(call(&d.url("/mcp/fy"), DESK, "echo")["result"]["content"][0]["text"], "t");
    // /cli/call, through the shell client with each token.
    let shell =
        |token: &str, server: &str| p.cmd().args(["call", server, "echo", "--text", "t"]).env("MCPCTL_TOKEN", token);
    shell(CI, "fx").success().stdout_has("t");
    shell(CI, "fy").status(2).stderr_has("token `ci` may not call tool `echo` on server `fy`");
    shell(DESK, "fx").status(2).stderr_has("token `desk` may not call");
    // A session belongs to its token: another token (or none) cannot use it.
    let sid = session(&d.url("/mcp"), CI);
    let (status, v, _) = rpc(&d.url("/mcp"), DESK, Some(&sid), 3, "tools/list", json!({}));
    assert_eq!(status, 403, "{}", v);
    let (status, _, _) = rpc(&d.url("/mcp"), "not-a-token-at-all-000", Some(&sid), 3, "tools/list", json!({}));
    assert_eq!(status, 401);
    // The log names tokens, never their values; nor does any file of .mcpctl/.
    let log = p.cmd().args(["logs"]).env("MCPCTL_TOKEN", CI).success().stdout();
    assert!(log.contains("token=ci server=fx tool=echo"), "{}", log);
    assert!(log.contains("token=desk server=fx tool=echo") && log.contains("outcome=refused"), "{}", log);
    for entry in std::fs::read_dir(p.root.join(".mcpctl"))
        .unwrap()
        .chain(std::fs::read_dir(p.root.join(".mcpctl/logs")).unwrap())
    {
        let path = entry.unwrap().path();
        if let Ok(text) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains(CI) && !text.contains(DESK), "{} holds a token value", path.display());
        }
    }
    // A value written in the config is refused.
    let mut bad = cfg.clone();
    bad["tokens"]["ci"] = json!({"value": CI});
    p.write_config(&bad);
    p.cmd().args(["list"]).status(1).stderr_has("the token's value must not be written in the config");
}
