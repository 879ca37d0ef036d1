//! The config's tool policy (`disabled`, `alwaysAllow`, `gatewayApproval`) on every path a
//! caller can take: `/mcp/<server>`, `/mcp` (aggregated), `/cli/call` and the shell client;
//! `"gatewayApproval": "ask"` (the user asked by elicitation, with a real client and by raw
//! HTTP); and the daemon reading no file on a caller's behalf.

use crate::support;

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

/// `POST /cli/call` as any local process could send it: the answer (HTTP 200).
fn cli_call(d: &Daemon, body: &Value) -> Value {
    let (status, v) = cli_call_status(d, body);
    assert_eq!(status, 200, "{}", v);
    v
}

/// `POST /cli/call`: the HTTP status and the JSON body.
fn cli_call_status(d: &Daemon, body: &Value) -> (u16, Value) {
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
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap())
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
        let body =
            json!({"v": 1, "server": server, "tool": tool, "args": [{"kind": "pair", "name": "text", "value": "x"}]});
        let v = cli_call(&d, &body);
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
        json!([{"kind": "var", "text": format!("text=@{}", path)}]),
        json!([{"kind": "var", "text": format!("a=@{}", path)}, {"kind": "pair", "name": "b", "value": "1"}]),
        json!([{"kind": "json", "text": "-"}]),
    ] {
        let tool = if args[0]["text"].as_str().map(|v| v.starts_with("a=")).unwrap_or(false) { "add" } else { "echo" };
        let v = cli_call(&d, &json!({"v": 1, "server": "fx", "tool": tool, "args": args}));
        let text = v.to_string();
        assert!(!text.contains("TOPSECRET"), "{}", text);
        assert!(v.get("result").is_none(), "{}", text);
        assert!(text.contains("the daemon does not read files or standard input"), "{}", text);
    }
    // Arguments of a shape the daemon does not know are an error (400: nothing ran), never a
    // call without them; so is a request of another version of the endpoint, or of none.
    for (body, says) in [
        (json!({"v": 1, "server": "fx", "tool": "echo", "args": "text=hi"}), "bad /cli/call request"),
        (json!({"v": 1, "server": "fx", "tool": "echo", "args": [{"Pair": "text"}]}), "bad /cli/call request"),
        (json!({"v": 1, "server": "fx", "args": []}), "missing field `tool`"),
        (json!({"server": "fx", "tool": "echo", "args": [{"Pair": ["text", "hi"]}]}), "`v` is missing"),
        (json!({"v": 2, "server": "fx", "tool": "echo"}), "version 2 is not spoken here"),
    ] {
        let (status, v) = cli_call_status(&d, &body);
        assert_eq!(status, 400, "{}", v);
        assert!(v["error"]["message"].as_str().unwrap_or("").contains(says), "{}: {}", says, v);
        assert!(v.get("result").is_none(), "{}", v);
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
        "asking": fx(json!({"alwaysAllow": ["add"], "gatewayApproval": "ask"})),
    }}));
    let want = [
        ("all", "allows all tools"),
        ("some", "allows 2 tools (echo, ad*); denies unlisted tools through the gateway"),
        ("none", "blocks all tools"),
        ("ask", "asks for every tool in the shell; denies unlisted tools through the gateway"),
        ("trusted", "asks for every tool in the shell; allows unlisted tools through the gateway"),
        ("off", "disabled"),
        ("asking", "allows 1 tool (add); asks the agent's user for unlisted tools through the gateway"),
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
    let one = p.cmd().args(["--json-output", "status", "asking"]).success().json();
    assert_eq!(one["server"]["gatewayApproval"], "ask");
    // The top-level default applies to servers without their own.
    p.write_config(&json!({"gatewayApproval": "allow", "mcpServers": {"ask": fx(json!({}))}}));
    let v = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(
        v["servers"][0]["policy"],
        "asks for every tool in the shell; allows unlisted tools through the gateway"
    );
    p.write_config(&json!({"gatewayApproval": "ask", "mcpServers": {"x": fx(json!({}))}}));
    let v = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(
        v["servers"][0]["policy"],
        "asks for every tool in the shell; asks the agent's user for unlisted tools through the gateway"
    );
    p.write_config(&json!({"mcpServers": {"x": fx(json!({"gatewayApproval": "maybe"}))}}));
    p.cmd().args(["list"]).status(1).stderr_has("`gatewayApproval` must be \"allow\", \"deny\" or \"ask\"");
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

/// tests/py/elicit_client.py (the Python SDK's client, answering elicitations as told):
/// its parsed output, or the failure with its stderr.
fn asker(url: &str, answer: &str, args: &[&str]) -> Value {
    let o = std::process::Command::new(support::venv_python())
        .arg(support::repo().join("tests/py/elicit_client.py"))
        .arg(url)
        .args(["--answer", answer, "--timeout", "20"])
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "elicit_client {} {:?}: {}{}", url, args, out, err);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({}): {}{}", e, out, err))
}

/// `"gatewayApproval": "ask"` with the official Python SDK client on `/mcp/<server>` and
/// `/mcp`: the user is asked (which server, which tool, the arguments); accept runs the
/// tool, decline/cancel/an unticked box refuse it before it reaches the child; a client
/// without the elicitation capability is refused with what to change; a listed tool runs
/// without a question.
#[test]
fn ask_asks_the_agents_user_through_a_real_client() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "fx": fx(json!({"alwaysAllow": ["add"], "gatewayApproval": "ask"})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let (one, all) = (d.url("/mcp/fx"), d.url("/mcp"));

    // Accepted with approve=true: the tool runs, on both endpoints; the question said what.
    for (url, tool) in [(&one, "echo"), (&all, "fx__echo")] {
        let v = asker(url, "accept", &["call", tool, "{\"text\": \"approved-run\"}"]);
        assert_eq!(v["error"], Value::Null, "{}", v);
        assert_eq!(v["result"]["content"][0]["text"], "approved-run", "{}", v);
        let asked = v["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{}", v);
        let message = asked[0]["message"].as_str().unwrap();
        assert!(message.contains("tool `echo` on server `fx`"), "{}", message);
        assert!(message.contains("text = \"approved-run\""), "{}", message);
        let schema = &asked[0]["requestedSchema"];
        assert_eq!(schema["properties"]["approve"]["type"], "boolean", "{}", schema);
        assert_eq!(schema["required"], json!(["approve"]), "{}", schema);
    }
    assert_eq!(calls(&p, "fx"), 2);

    // Declined, dismissed, accepted without the box ticked: refused, the child never called.
    for (url, tool, answer, says) in [
        (&one, "echo", "decline", "the user declined"),
        (&all, "fx__echo", "decline", "the user declined"),
        (&one, "echo", "cancel", "the user dismissed the question"),
        (&all, "fx__echo", "refuse", "the user did not approve"),
    ] {
        let v = asker(url, answer, &["call", tool, "{\"text\": \"must-not-run\"}"]);
        assert_eq!(v["result"], Value::Null, "{}", v);
        assert_eq!(v["asked"].as_array().unwrap().len(), 1, "{}", v);
        let why = v["error"].as_str().unwrap_or_else(|| panic!("{} {}: {}", url, answer, v));
        assert!(why.contains(says) && why.contains("tool `echo` on server `fx` was not run"), "{}", why);
    }
    assert_eq!(calls(&p, "fx"), 2, "a refused call reached the child");

    // A listed tool runs without a question; a client that can be asked sees every tool.
    let v = asker(&one, "decline", &["call", "add", "{\"a\": 2, \"b\": 3}"]);
    assert_eq!(v["result"]["content"][0]["text"], "5", "{}", v);
    assert_eq!(v["asked"], json!([]));
    assert_eq!(asker(&one, "accept", &["list-tools"])["result"].as_array().unwrap().len(), 20);
    assert_eq!(calls(&p, "fx"), 3);
    // An approved call whose tool asks the client something itself: on the same stream.
    let v = asker(&one, "accept", &["call", "elicit", "{\"message\": \"the child asks\"}"]);
    let asked = v["asked"].as_array().unwrap();
    assert_eq!(asked.len(), 2, "{}", v);
    assert!(asked[0]["message"].as_str().unwrap().contains("tool `elicit` on server `fx`"), "{}", v);
    assert_eq!(asked[1]["message"], "the child asks", "{}", v);
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains("\"approve\":true"), "{}", v);
    assert_eq!(calls(&p, "fx"), 4);

    // A client without the capability: `echo` is not listed, and calling it is refused.
    let sdk = |url: &str, args: &[&str]| {
        std::process::Command::new(support::venv_python())
            .arg(support::repo().join("tests/py/sdk_client.py"))
            .arg(url)
            .args(["--timeout", "20"])
            .args(args)
            .output()
            .unwrap()
    };
    let o = sdk(&one, &["list-tools"]);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap(), json!(["add"]));
    for (url, tool) in [(&one, "echo"), (&all, "fx__echo")] {
        let o = sdk(url, &["call", tool, "{\"text\": \"x\"}"]);
        assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}", err);
        assert!(err.contains("needs the user's approval (gatewayApproval \"ask\")"), "{}", err);
        assert!(err.contains("this client cannot be asked"), "{}", err);
        assert!(err.contains("mcpServers.fx.alwaysAllow"), "{}", err);
    }
    assert_eq!(calls(&p, "fx"), 4);

    let log = p.cmd().args(["logs"]).success().stdout();
    for word in ["approved", "declined", "refused"] {
        let line = log.lines().find(|l| l.contains("server=fx tool=echo") && l.ends_with(&format!("outcome={}", word)));
        assert!(line.is_some(), "no outcome={} for echo in {}", word, log);
    }
}

/// One POST with ureq: (status, Content-Type, every JSON message of the body, session id).
fn post_raw(url: &str, sid: Option<&str>, msg: &Value) -> (u16, String, Vec<Value>, Option<String>) {
    post_raw_then(url, sid, msg, || {})
}

/// As [`post_raw`], calling `on_head` when the answer's head has arrived (its body may
/// still be coming).
fn post_raw_then(
    url: &str,
    sid: Option<&str>,
    msg: &Value,
    on_head: impl FnOnce(),
) -> (u16, String, Vec<Value>, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json");
    if let Some(s) = sid {
        r = r.header("Mcp-Session-Id", s);
    }
    let resp = r.send(msg.to_string().as_str()).unwrap();
    on_head();
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let sid = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().read_to_string().unwrap_or_default();
    let msgs = body
        .lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (status, ctype, msgs, sid)
}

/// A session whose client declares form elicitation.
fn asking_session(url: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let (status, _, msgs, sid) = post_raw(url, None, &init);
    assert_eq!(status, 200, "{:?}", msgs);
    let sid = sid.unwrap();
    post_raw(url, Some(&sid), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    sid
}

/// `tools/call` on `/mcp/fx` by hand on its own connection; the question it gets is
/// approved on another POST. (The JSON-RPC answer, the time from the yes to it.)
fn call_and_approve(d: &Daemon, sid: &str, id: u64, tool: &str, args: Value) -> (Value, Duration) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
        .to_string();
    write!(
        conn,
        "POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMcp-Session-Id: {}\r\nContent-Length: {}\r\n\r\n{}",
        d.port,
        sid,
        body.len(),
        body
    )
    .unwrap();
    let messages = |text: &str| -> Vec<Value> {
        text.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|l| serde_json::from_str(l).ok()).collect()
    };
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let gid = loop {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before the question: {}", seen);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(v) = messages(&seen).into_iter().find(|v| v["method"] == "elicitation/create") {
            break v["id"].clone();
        }
    };
    let yes = json!({"jsonrpc": "2.0", "id": gid, "result": {"action": "accept", "content": {"approve": true}}});
    let said = std::time::Instant::now();
    assert_eq!(post_raw(&d.url("/mcp/fx"), Some(sid), &yes).0, 202);
    let mut rest = String::new();
    let _ = conn.read_to_string(&mut rest);
    let took = said.elapsed();
    seen.push_str(&rest);
    let answer = messages(&seen).into_iter().find(|v| v["id"] == id);
    (answer.unwrap_or_else(|| panic!("no answer in {}", seen)), took)
}

/// A client that declared elicitation but never answers: the question goes out on the
/// call's event stream (escaped, bounded), the call is refused at the server's timeout with
/// the question withdrawn, nothing waits meanwhile, a late answer runs nothing, and the
/// daemon stays healthy. `/cli/call` and the shell keep their own ways under "ask".
#[test]
fn an_unanswered_approval_is_refused_at_the_timeout() {
    let p = Project::new(&json!({"mcpServers": {
        "fx": fx(json!({"alwaysAllow": ["add"], "gatewayApproval": "ask", "timeout": 2})),
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let url = d.url("/mcp/fx");
    let sid = asking_session(&url);
    let long = format!("line1\nline2\u{202e}{}", "x".repeat(500));
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": long}}});
    let started = std::time::Instant::now();
    let (head_tx, head_rx) = std::sync::mpsc::channel();
    let waiting = {
        let (url, sid) = (url.clone(), sid.clone());
        std::thread::spawn(move || {
            post_raw_then(&url, Some(&sid), &call, move || {
                let _ = head_tx.send(());
            })
        })
    };
    // Once the call's event stream is open (it carries the question), the daemon answers
    // others at once: nothing waits for the user.
    head_rx.recv_timeout(Duration::from_secs(10)).expect("the call's answer never started");
    let t = std::time::Instant::now();
    let other = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(other.call("add", json!({"a": 1, "b": 1}))["content"][0]["text"], "2");
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());

    let (status, ctype, msgs, _) = waiting.join().unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(8), "{:?}", took);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/event-stream"), "{}", ctype);
    assert_eq!(msgs.len(), 3, "{:?}", msgs);
    let ask = &msgs[0];
    assert_eq!(ask["method"], "elicitation/create", "{}", ask);
    let gid = ask["id"].as_str().unwrap().to_string();
    let message = ask["params"]["message"].as_str().unwrap();
    assert!(message.contains("Allow the call of tool `echo` on server `fx`?"), "{}", message);
    // The argument is shown as JSON (its newline escaped), its bidi control escaped, cut short.
    assert!(message.contains("text = \"line1\\nline2\\u{202e}xxx"), "{}", message);
    assert!(!message.contains('\u{202e}') && message.contains('…'), "{}", message);
    assert!(message.len() < 600, "{}", message.len());
    assert_eq!(ask["params"]["requestedSchema"]["properties"]["approve"]["type"], "boolean");
    assert_eq!(msgs[1]["method"], "notifications/cancelled", "{}", msgs[1]);
    assert_eq!(msgs[1]["params"]["requestId"], json!(gid));
    assert_eq!(msgs[2]["id"], 7);
    let why = refused(&msgs[2]);
    assert!(
        why.contains("the user did not answer the approval request for tool `echo` on server `fx` within 2s"),
        "{}",
        why
    );

    // A late yes runs nothing.
    let late = json!({"jsonrpc": "2.0", "id": gid, "result": {"action": "accept", "content": {"approve": true}}});
    let (status, _, _, _) = post_raw(&url, Some(&sid), &late);
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(calls(&p, "fx"), 1, "only `add` ran");

    // A raw client's yes (answered on its own POST while the call's stream is open) runs it;
    // the call then has a deadline of its own (the server's timeout again).
    let (answer, _) = call_and_approve(&d, &sid, 8, "echo", json!({"text": "raw-yes"}));
    assert_eq!(answer["result"]["content"][0]["text"], "raw-yes", "{}", answer);
    assert_eq!(calls(&p, "fx"), 2);
    let (answer, after_yes) = call_and_approve(&d, &sid, 9, "hang", json!({}));
    assert_eq!(answer["error"]["code"], -32001, "{}", answer);
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("did not answer `tools/call` within 2s"),
        "{}",
        answer
    );
    assert!(after_yes >= Duration::from_millis(1900) && after_yes < Duration::from_secs(8), "{:?}", after_yes);
    assert_eq!(calls(&p, "fx"), 3);

    // /cli/call cannot ask: refused, with why; the shell asks on its terminal (here there is
    // none: refused without --yes, run by a child of its own with it).
    let v = cli_call(
        &d,
        &json!({"v": 1, "server": "fx", "tool": "echo", "args": [{"kind": "pair", "name": "text", "value": "x"}]}),
    );
    assert!(v.get("result").is_none(), "{}", v);
    assert!(v["error"]["message"].as_str().unwrap().contains("/cli/call cannot ask the user"), "{}", v);
    p.cmd().args(["call", "fx", "echo", "--text", "x"]).status(2).stderr_has("needs approval");
    p.cmd().args(["--yes", "call", "fx", "echo", "--text", "shell-yes"]).success().stdout_has("shell-yes");
    assert_eq!(calls(&p, "fx"), 3, "the daemon ran a call it should not have");

    // Healthy: a new session still works, and the log has the outcomes.
    let again = McpClient::open(d.url("/mcp"));
    assert_eq!(again.call("fx__add", json!({"a": 2, "b": 2}))["content"][0]["text"], "4");
    let log = p.cmd().args(["logs"]).success().stdout();
    assert!(log.contains("tool=echo") && log.contains("outcome=unanswered"), "{}", log);
    assert!(log.contains("outcome=approved"), "{}", log);
}
