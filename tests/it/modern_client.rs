//! The shell client and the gateway against servers of both MCP eras: 2026-07-28 only
//! (the TypeScript SDK v2 with `legacy: 'reject'`), dual-era (TypeScript SDK v2 default,
//! Python SDK 2.3) and legacy only (our fixture server, the Python SDK 1.x, a server that
//! ignores unknown methods), over stdio and Streamable HTTP: `tools`, `call`, `status`
//! (which shows the negotiated revision), multi round-trip requests (roots answered,
//! elicitation and sampling refused off a terminal), and a 2026-07-28-only child served
//! by `mcpctl start` to old-era clients.

use crate::support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    fixture_bin, free_port, npm_bin, peers_available, repo, venv_modern_python, venv_python, Daemon, Project,
};

fn node() -> String {
    npm_bin().join("node").display().to_string()
}

fn ts_fixture() -> String {
    repo().join("fixtures/ts/modern_server.mjs").display().to_string()
}

fn py_modern_fixture() -> String {
    repo().join("fixtures/modern_server.py").display().to_string()
}

/// A stdio server entry running the TS SDK v2 fixture.
fn ts_stdio(modern_only: bool) -> Value {
    let mut args = vec![ts_fixture()];
    if modern_only {
        args.push("--modern-only".into());
    }
    json!({"command": node(), "args": args, "alwaysAllow": ["*"], "timeout": 30})
}

fn py_modern_stdio() -> Value {
    json!({"command": venv_modern_python(), "args": [py_modern_fixture()], "alwaysAllow": ["*"], "timeout": 60})
}

/// An HTTP server of a test, stopped (by pid) on drop.
struct Served {
    child: Child,
    port: u16,
}

impl Served {
    fn start(program: impl Into<PathBuf>, args: &[String], port: u16) -> Served {
        let child = Command::new(program.into())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let s = Served { child, port };
        // Up when it accepts connections (the Python SDK takes seconds to import).
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server on port {} did not come up", port);
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn ts(modern_only: bool) -> Served {
        let port = free_port();
        let mut args = vec![ts_fixture(), "--http".into(), port.to_string()];
        if modern_only {
            args.push("--modern-only".into());
        }
        Served::start(node(), &args, port)
    }

    fn py_legacy() -> Served {
        let port = free_port();
        let args = [repo().join("fixtures/py_server.py").display().to_string(), "--http".into(), port.to_string()];
        Served::start(venv_python(), &args, port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if support::wait_until(&mut self.child, Instant::now() + Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `status <server>` as JSON, checked for the negotiated revision and era.
fn assert_speaks(p: &Project, server: &str, version: &str, era: &str) {
    let j = p.cmd().args(["--json-output", "--no-daemon", "status", server]).success().json();
    assert_eq!(j["server"]["protocol_version"], version, "{}", j);
    assert_eq!(j["server"]["protocol_era"], era, "{}", j);
    let text = p.cmd().args(["--no-daemon", "status", server]).success();
    text.stdout_has(&format!("Protocol: {} ({} era)", version, era));
}

fn call_text(p: &Project, args: &[&str]) -> String {
    p.cmd().args(["--no-daemon", "call"]).args(args.iter().copied()).success().stdout()
}

#[test]
fn a_modern_only_stdio_server_works_for_tools_call_and_status() {
    if !peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"ts": ts_stdio(true)}}));
    assert_speaks(&p, "ts", "2026-07-28", "modern");
    let j = p.cmd().args(["--json-output", "--no-daemon", "status", "ts"]).success().json();
    assert_eq!(j["server"]["server_info"]["name"], "ts-modern-fixture", "{}", j);
    p.cmd().args(["--no-daemon", "tools", "ts"]).success().stdout_has("• echo").stdout_has("• where_am_i");
    assert_eq!(call_text(&p, &["ts", "echo", "--text", "hello modern"]), "hello modern\n");
    let j = p.cmd().args(["--json-output", "--no-daemon", "call", "ts", "echo", "--text", "x"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["result"]["content"][0]["text"], "x", "{}", j);
}

#[test]
fn dual_era_stdio_servers_are_spoken_to_in_the_modern_era() {
    if !peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"tsdual": ts_stdio(false), "py": py_modern_stdio()}}));
    assert_speaks(&p, "tsdual", "2026-07-28", "modern");
    assert_eq!(call_text(&p, &["tsdual", "echo", "--text", "both"]), "both\n");
    assert_speaks(&p, "py", "2026-07-28", "modern");
    assert_eq!(call_text(&p, &["py", "echo", "--text", "python 2"]), "python 2\n");
}

#[test]
fn legacy_stdio_servers_fall_back_to_initialize_at_once() {
    if !peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
        "py1": {"command": venv_python(), "args": [repo().join("fixtures/py_server.py")], "alwaysAllow": ["*"], "timeout": 60},
    }}));
    assert_speaks(&p, "fx", "2025-11-25", "legacy");
    // The fixture answers `server/discover` with -32601 at once: no probe deadline is spent.
    let r = p.cmd().args(["--no-daemon", "call", "fx", "echo", "--text", "old"]).success();
    assert_eq!(r.stdout(), "old\n");
    assert!(r.elapsed < Duration::from_millis(900), "the fallback waited: {:?}", r.elapsed);
    // The Python SDK 1.x answers it with -32602.
    assert_speaks(&p, "py1", "2025-11-25", "legacy");
    assert_eq!(call_text(&p, &["py1", "add", "--a", "2", "--b", "3"]), "5\n");
}

/// `"per-era"` on a server that speaks 2026-07-28 alone: its session-era child cannot
/// start, so session clients keep the first child (bridged), and `status` says why.
#[test]
fn a_per_era_server_without_the_session_era_keeps_serving_session_clients() {
    if !peers_available() {
        return;
    }
    let mut ts = ts_stdio(true);
    ts["protocol"] = json!("per-era");
    let p = Project::new(&json!({"mcpServers": {"ts": ts}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    for path in ["/mcp/ts", "/mcp"] {
        let c = support::McpClient::open(d.url(path));
        let tool = if path == "/mcp" { "ts__echo" } else { "echo" };
        let r = c.call(tool, json!({"text": "still served"}));
        assert_eq!(r["content"][0]["text"], "still served", "{}: {}", path, r);
    }
    let j = p.cmd().args(["--json-output", "status"]).success().json();
    let twin = &j["servers"][0]["session_era_child"];
    assert!(twin["status"] != "ready" && twin["error"].is_string(), "{}", j);
}

/// `"protocol"` pins the era: a dual-era server spoken to in the session era, the silent
/// legacy server without the probe's wait, and a legacy server refused when 2026-07-28 is
/// demanded (one line naming the setting).
#[test]
fn the_protocol_setting_pins_the_era() {
    if !peers_available() {
        return;
    }
    let mut py = py_modern_stdio();
    py["protocol"] = json!("2025-11-25");
    let quiet = repo().join("fixtures/silent_legacy_server.py");
    let p = Project::new(&json!({"mcpServers": {
        "py": py,
        "quiet": {"command": "python3", "args": [quiet], "alwaysAllow": ["*"], "timeout": 20, "protocol": "2025-11-25"},
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "protocol": "2026-07-28"},
    }}));
    assert_speaks(&p, "py", "2025-11-25", "legacy");
    assert_eq!(call_text(&p, &["py", "echo", "--text", "pinned"]), "pinned\n");
    let r = p.cmd().args(["--no-daemon", "call", "quiet", "echo", "--text", "hi"]).success();
    assert_eq!(r.stdout(), "hi\n");
    assert!(r.elapsed < Duration::from_millis(900), "a pinned server was probed: {:?}", r.elapsed);
    let r = p.cmd().args(["--no-daemon", "call", "fx", "echo", "--text", "x"]).status(1);
    r.stderr_has("server `fx` does not speak MCP 2026-07-28 (\"protocol\": \"2026-07-28\" in the config)");
    // A server that speaks 2026-07-28 alone, pinned to the session era: refused, not upgraded.
    let mut ts = ts_stdio(true);
    ts["protocol"] = json!("2025-11-25");
    let only = Project::new(&json!({"mcpServers": {"ts": ts}}));
    let r = only.cmd().args(["--no-daemon", "call", "ts", "echo", "--text", "x"]).status(1);
    r.stderr_has("server `ts` does not speak the session era: it refused `initialize`, naming MCP 2026-07-28");
    let bad = Project::new(&json!({"mcpServers": {"bad": {"command": fixture_bin(), "protocol": "2026"}}}));
    let r = bad.cmd().args(["--no-daemon", "tools", "bad"]).status(1);
    r.stderr_has("server `bad`: `protocol` `2026` is not one of").stderr_has("\"per-era\"");
}

#[test]
fn a_legacy_stdio_server_silent_on_the_probe_costs_only_the_probe_deadline() {
    let script = repo().join("fixtures/silent_legacy_server.py");
    let p = Project::new(&json!({"mcpServers": {
        "quiet": {"command": "python3", "args": [script], "alwaysAllow": ["*"], "timeout": 20},
    }}));
    let r = p.cmd().args(["--no-daemon", "call", "quiet", "echo", "--text", "hi"]).success();
    assert_eq!(r.stdout(), "hi\n");
    assert!(r.elapsed >= Duration::from_millis(900), "no probe was sent? {:?}", r.elapsed);
    assert!(r.elapsed < Duration::from_secs(8), "the probe took the whole timeout: {:?}", r.elapsed);
    assert_speaks(&p, "quiet", "2025-11-25", "legacy");
}

#[test]
fn http_servers_of_each_era() {
    if !peers_available() {
        return;
    }
    let modern = Served::ts(true);
    let dual = Served::ts(false);
    let legacy = Served::py_legacy();
    let p = Project::new(&json!({"mcpServers": {
        "modern": {"url": modern.url(), "alwaysAllow": ["*"]},
        "dual": {"url": dual.url(), "alwaysAllow": ["*"]},
        "legacy": {"url": legacy.url(), "alwaysAllow": ["*"]},
    }}));
    assert_speaks(&p, "modern", "2026-07-28", "modern");
    assert_speaks(&p, "dual", "2026-07-28", "modern");
    assert_speaks(&p, "legacy", "2025-11-25", "legacy");
    p.cmd().args(["--no-daemon", "tools", "modern"]).success().stdout_has("• echo");
    assert_eq!(call_text(&p, &["modern", "echo", "--text", "over http"]), "over http\n");
    // A parameter marked `x-mcp-header` travels in `Mcp-Param-*` too (the SDK refuses the
    // call without it), Base64-encoded when it is not plain ASCII; a tool whose mark breaks
    // the rules is left out of the list.
    let tools = p.cmd().args(["--json-output", "--no-daemon", "tools", "modern"]).success().json();
    let names: Vec<&str> = tools["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"regional") && !names.contains(&"bad_mark"), "{:?}", names);
    let out = call_text(&p, &["modern", "regional", "--region", "us-west1", "--query", "q"]);
    assert_eq!(out, "region=us-west1 query=q\n");
    let out = call_text(&p, &["modern", "regional", "--region", "Zürich ", "--query", "q"]);
    assert_eq!(out, "region=Zürich  query=q\n");
    let j = p.cmd().args(["--json-output", "--no-daemon", "call", "modern", "echo", "--text", "j"]).success().json();
    assert_eq!(j["result"]["content"][0]["text"], "j", "{}", j);
    assert_eq!(call_text(&p, &["dual", "echo", "--text", "d"]), "d\n");
    assert_eq!(call_text(&p, &["legacy", "echo_string", "--value", "007"]), "str:007\n");
}

#[test]
fn input_required_results_are_answered_with_roots_and_refused_without_a_terminal() {
    if !peers_available() {
        return;
    }
    let http = Served::ts(true);
    let p = Project::new(&json!({"mcpServers": {
        "ts": ts_stdio(true),
        "tshttp": {"url": http.url(), "alwaysAllow": ["*"]},
        "py": py_modern_stdio(),
    }}));
    let root = format!("roots: file://{}\n", p.root.display());
    assert_eq!(call_text(&p, &["ts", "where_am_i"]), root);
    assert_eq!(call_text(&p, &["tshttp", "where_am_i"]), root);
    assert_eq!(call_text(&p, &["py", "where_am_i"]), root);
    // Elicitation needs a terminal; without one it is not declared, and the refusal says so.
    let r = p.cmd().args(["--no-daemon", "call", "ts", "confirm", "--what", "deploy"]).status(1);
    r.stderr_has("✗ server `ts` needs to ask for input during `tools/call` (elicitation), which mcpctl can only do on a terminal");
    let j = p.cmd().args(["--json-output", "--no-daemon", "call", "tshttp", "confirm", "--what", "x"]).status(1).json();
    assert!(j["error"].as_str().unwrap().contains("only do on a terminal"), "{}", j);
    let r = p.cmd().args(["--no-daemon", "call", "ts", "summarize"]).status(1);
    r.stderr_has("needs a language model from the client for `tools/call` (sampling)");
}

#[test]
fn the_gateway_serves_a_modern_only_child_to_old_era_clients() {
    if !peers_available() {
        return;
    }
    let http = Served::ts(true);
    let p = Project::new(&json!({"mcpServers": {
        "ts": ts_stdio(true),
        "tshttp": {"url": http.url(), "alwaysAllow": ["*"]},
    }}));
    let d = Daemon::start(&p, &[]);
    let st = d.wait_ready(&[]);
    for s in st["servers"].as_array().unwrap() {
        assert_eq!(s["restarts"], 0, "{}", st);
    }
    // Our own CLI through the daemon (one round trip, and a session of its own).
    assert_eq!(p.cmd().args(["call", "ts", "echo", "--text", "via daemon"]).success().stdout(), "via daemon\n");
    assert_eq!(p.cmd().args(["call", "tshttp", "echo", "--text", "via daemon"]).success().stdout(), "via daemon\n");
    p.cmd().args(["tools", "ts"]).success().stdout_has("• echo");
    // A 2025-11-25 client speaking raw JSON-RPC on the gateway's endpoint.
    for name in ["ts", "tshttp"] {
        let c = support::McpClient::open(d.url(&format!("/mcp/{}", name)));
        let tools = c.request("tools/list", json!({}));
        let names: Vec<&str> =
            tools["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        assert!(names.contains(&"echo"), "{}", tools);
        let r = c.call("echo", json!({"text": "old client"}));
        assert_eq!(r["content"][0]["text"], "old client", "{}", r);
    }
    // The Python SDK 1.x client.
    let out = Command::new(venv_python())
        .arg(repo().join("tests/py/sdk_client.py"))
        .arg(d.url("/mcp/ts"))
        .args(["call", "echo", r#"{"text": "python 1"}"#])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["content"][0]["text"], "python 1", "{}", v);
    // Still the first child: it was never restarted as if it had crashed.
    let st = p.cmd().args(["--json-output", "status"]).success().json();
    for s in st["servers"].as_array().unwrap() {
        assert_eq!((s["status"].as_str(), s["restarts"].as_u64()), (Some("ready"), Some(0)), "{}", st);
    }
}

/// `mcpctl` run on a terminal (util-linux `script` gives it one) with `input` typed.
fn on_a_terminal(p: &Project, args: &str, input: &str) -> Option<String> {
    if !std::path::Path::new("/usr/bin/script").exists() {
        support::missing_peer("/usr/bin/script (util-linux) is not installed");
        return None;
    }
    let command = format!("{} --no-daemon {}", support::mcpctl_bin().display(), args);
    let mut child = Command::new("/usr/bin/script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(&p.root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    if support::wait_until(&mut child, deadline).is_none() {
        let _ = child.kill();
        panic!("`{}` on a terminal did not finish", args);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_elicitation_is_asked_and_answered() {
    if !peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"ts": ts_stdio(true)}}));
    let Some(out) = on_a_terminal(&p, "call ts confirm --what deploy", "y\nAda\n") else { return };
    assert!(out.contains("Server `ts` asks: Who confirms deploy?"), "{}", out);
    assert!(out.contains("deploy confirmed by Ada"), "{}", out);
    let out = on_a_terminal(&p, "call ts confirm --what deploy", "n\n").unwrap();
    assert!(out.contains("deploy not confirmed (decline)"), "{}", out);
}

/// `tools/call` from a 2025-11-25 client of the gateway that answers the server→client
/// requests arriving on the call's stream with `answer(method, params)`; the final answer.
fn call_answering(c: &support::McpClient, tool: &str, args: Value, answer: impl Fn(&str, &Value) -> Value) -> Value {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let body =
        json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let resp = agent
        .post(&c.url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Mcp-Session-Id", &c.sid)
        .send(body.to_string().as_str())
        .unwrap();
    let reader = std::io::BufReader::new(resp.into_body().into_reader());
    let mut seen = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        // A plain JSON answer (no stream was needed), or one event of the stream.
        let Some(data) = line.strip_prefix("data:").or(line.starts_with('{').then_some(line.as_str())) else {
            continue;
        };
        let v: Value = serde_json::from_str(data.trim()).unwrap();
        if v["id"] == "call-1" {
            return v;
        }
        if let (Some(id), Some(method)) = (v.get("id"), v["method"].as_str()) {
            let result = answer(method, &v["params"]);
            let (status, _) = c.post_status(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
            assert_eq!(status, 202, "the answer to {} was refused", method);
        }
    }
    panic!("the stream of `{}` ended without an answer: {:?}", tool, seen);
}

#[test]
fn the_gateway_bridges_a_modern_childs_input_requests_to_an_old_era_client() {
    if !peers_available() {
        return;
    }
    let http = Served::ts(true);
    let p = Project::new(&json!({"mcpServers": {
        "ts": ts_stdio(true),
        "tshttp": {"url": http.url(), "alwaysAllow": ["*"]},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    for name in ["ts", "tshttp"] {
        // A session that did not declare roots is not asked for them: the call fails at once
        // with the reason (no request reaches it).
        let bare = support::McpClient::open_with(d.url(&format!("/mcp/{}", name)), json!({"elicitation": {}}));
        let v = call_answering(&bare, "where_am_i", json!({}), |method, _| panic!("asked {} without roots", method));
        let msg = v["error"]["message"].as_str().or(v["result"]["content"][0]["text"].as_str()).unwrap_or_default();
        assert!(msg.contains("roots") && v["error"]["code"] == -32021, "{}", v);
        let c =
            support::McpClient::open_with(d.url(&format!("/mcp/{}", name)), json!({"elicitation": {}, "roots": {}}));
        // The client's own roots reach the child (asked as a legacy child would ask them).
        let v = call_answering(&c, "where_am_i", json!({}), |method, _| {
            assert_eq!(method, "roots/list");
            json!({"roots": [{"uri": "file:///client/root", "name": "root"}]})
        });
        assert_eq!(v["result"]["content"][0]["text"], "roots: file:///client/root", "{}", v);
        let v = call_answering(&c, "confirm", json!({"what": "deploy"}), |method, params| {
            assert_eq!(method, "elicitation/create");
            assert_eq!(params["message"], "Who confirms deploy?");
            json!({"action": "accept", "content": {"name": "Bob"}})
        });
        assert_eq!(v["result"]["content"][0]["text"], "deploy confirmed by Bob", "{}", v);
    }
    // The shell client through the daemon answers nothing the child asks: a clear error.
    let r = p.cmd().args(["call", "ts", "where_am_i"]).status(1);
    r.stderr_has("does not support roots/list");
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: the fields after the last `)`.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            out.extend(e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
        }
    }
    out
}

/// `"protocol": "per-era"`: a dual-era child (Python SDK 2.3) whose tools that send
/// `elicitation/create` of their own exist only in the session era. Session clients get a
/// second child spoken to in that era (on both endpoints); 2026-07-28 clients keep the
/// first; with the default (`auto`) such a tool is not there for session clients.
#[test]
fn a_per_era_server_gives_session_clients_a_child_of_their_era() {
    if !peers_available() {
        return;
    }
    let conf = |protocol: Option<&str>| {
        let mut v = json!({
            "command": venv_modern_python(),
            "args": [repo().join("fixtures/conformance_server_modern.py")],
            "alwaysAllow": ["*"],
            "timeout": 60,
        });
        if let Some(p) = protocol {
            v["protocol"] = json!(p);
        }
        v
    };
    let p = Project::new(&json!({"mcpServers": {"both": conf(Some("per-era")), "one": conf(None)}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    assert_eq!(children_of(d.pid).len(), 2, "one child per server before any session client");
    let answer = |method: &str, params: &Value| {
        assert_eq!(method, "elicitation/create");
        assert!(params["requestedSchema"]["properties"]["username"].is_object(), "{}", params);
        json!({"action": "accept", "content": {"username": "ann", "email": "ann@example.com"}})
    };
    let args = json!({"message": "who are you?"});
    for (path, tool) in [("/mcp/both", "test_elicitation"), ("/mcp", "both__test_elicitation")] {
        let c = support::McpClient::open_with(d.url(path), json!({"elicitation": {}}));
        let listed = c.request("tools/list", json!({}));
        let names: Vec<&str> =
            listed["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        assert!(names.contains(&tool), "{} lists {:?}", path, names);
        let v = call_answering(&c, tool, args.clone(), answer);
        let text = v["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("action=accept") && text.contains("ann@example.com"), "{}: {}", path, v);
    }
    // The 2026-07-28 clients still reach the first child, where the session-era tool fails.
    let params = json!({"name": "test_elicitation", "arguments": args});
    let a = crate::modern_gateway::modern(&d.url("/mcp/both"), 7, "tools/call", params);
    let r = a.response();
    assert!(r.get("error").is_some() || r["result"]["isError"] == true, "{}", r);
    // Without "per-era", the session-era tool is not there for a session client: an error, at once.
    let c = support::McpClient::open_with(d.url("/mcp/one"), json!({"elicitation": {}}));
    let v = c.request("tools/call", json!({"name": "test_elicitation", "arguments": args}));
    let why = v["error"]["message"].as_str().or(v["result"]["content"][0]["text"].as_str()).unwrap_or_default();
    assert!(why.contains("elicitation/create"), "{}", v);
    // `status` shows the second child; stopping the daemon stops it too.
    let j = p.cmd().args(["--json-output", "status"]).success().json();
    let both = j["servers"].as_array().unwrap().iter().find(|s| s["name"] == "both").cloned().unwrap();
    assert_eq!(both["session_era_child"]["status"], "ready", "{}", j);
    p.cmd().args(["status"]).success().stdout_has("Session-era child: ready");
    let kids = children_of(d.pid);
    assert_eq!(kids.len(), 3, "the first children and the twin: {:?}", kids);
    drop(d);
    support::eventually("the children to stop", Duration::from_secs(15), || {
        kids.iter().all(|k| unsafe { libc::kill(*k, 0) } != 0)
    });
}

/// A 2026-07-28 child announces list changes only on a `subscriptions/listen` stream: the
/// gateway keeps one open, so its tool list follows the child (through both endpoints).
#[test]
fn the_gateway_hears_a_modern_childs_list_changes() {
    if !peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"py": py_modern_stdio()}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let names = |c: &support::McpClient| -> Vec<String> {
        let tools = c.request("tools/list", json!({}));
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str().map(String::from))
            .collect()
    };
    let one = support::McpClient::open(d.url("/mcp/py"));
    let all = support::McpClient::open(d.url("/mcp"));
    assert!(!names(&one).iter().any(|n| n == "grown_1"));
    let r = one.call("grow", json!({}));
    assert_eq!(r["content"][0]["text"], "grown_1", "{}", r);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(names(&one).iter().any(|n| n == "grown_1") && names(&all).iter().any(|n| n == "py__grown_1")) {
        assert!(std::time::Instant::now() < deadline, "the gateway never saw the new tool: {:?}", names(&one));
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = all.call("py__grown_1", json!({}));
    assert_eq!(r["content"][0]["text"], "grown_1", "{}", r);
    let st = p.cmd().args(["--json-output", "status"]).success().json();
    assert_eq!(st["servers"][0]["restarts"], 0, "{}", st);
}

/// The state `wait_for_cancel` recorded under `key` at the TS fixture, as the client sees it.
fn cancel_state(c: &support::McpClient, key: &str) -> String {
    let r = c.call("cancel_state", json!({"key": key}));
    r["content"][0]["text"].as_str().unwrap_or("").to_string()
}

/// Wait (bounded) until `key`'s state at the fixture is `want`.
fn await_cancel_state(c: &support::McpClient, key: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = cancel_state(c, key);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "`{}` is {:?} at the server, not {:?}", key, got, want);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `wait_for_cancel` with `key`, called by `c` on a thread of its own (bounded: the tool
/// gives up after 60 s, the agent after 70 s).
fn start_waiting(c: &support::McpClient, id: u64, key: &str) {
    let (url, sid) = (c.url.clone(), c.sid.clone());
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "wait_for_cancel", "arguments": {"key": key}}});
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(70)))
            .build()
            .into();
        let _ = agent
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("Mcp-Session-Id", &sid)
            .send(msg.to_string().as_str())
            .and_then(|r| r.into_body().read_to_string());
    });
}

/// A session client cancels a call to a 2026-07-28 HTTP child (`notifications/cancelled`):
/// the gateway closes that request's connection, so the server sees the client hang up and
/// aborts the tool; another call in flight to the same server goes on.
#[test]
fn a_cancelled_call_to_a_2026_07_28_http_server_is_aborted_there() {
    if !peers_available() {
        return;
    }
    let served = Served::ts(true);
    let p = Project::new(&json!({"mcpServers": {
        "ht": {"url": served.url(), "alwaysAllow": ["*"], "timeout": 90},
        "hs": {"url": served.url(), "alwaysAllow": ["*"], "timeout": 90, "isolation": "session"},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let c = support::McpClient::open(d.url("/mcp/ht"));
    // Two calls in flight on the same session.
    let start = |id: u64, key: &str| start_waiting(&c, id, key);
    start(7001, "first");
    start(7002, "second");
    await_cancel_state(&c, "first", "waiting", Duration::from_secs(20));
    await_cancel_state(&c, "second", "waiting", Duration::from_secs(20));

    let cancel = |id: u64| {
        c.post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "the test gave up"}}));
    };
    cancel(7001);
    await_cancel_state(&c, "first", "cancelled", Duration::from_secs(10));
    // Only that request's connection was closed.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cancel_state(&c, "second"), "waiting");
    // The server still answers on the same upstream.
    assert_eq!(c.call("echo", json!({"text": "still here"}))["content"][0]["text"], "still here");
    cancel(7002);
    await_cancel_state(&c, "second", "cancelled", Duration::from_secs(10));
    // A connection that ends (here a session's own one, `"isolation": "session"`, as the
    // session is deleted) closes its calls still in flight at the server too.
    let cs = support::McpClient::open(d.url("/mcp/hs"));
    start_waiting(&cs, 7004, "fourth");
    await_cancel_state(&c, "fourth", "waiting", Duration::from_secs(20));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent.delete(&cs.url).header("Mcp-Session-Id", &cs.sid).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    await_cancel_state(&c, "fourth", "cancelled", Duration::from_secs(10));
}

/// `resources/subscribe` from session clients to a 2026-07-28 child over HTTP (which has
/// only `subscriptions/listen`): answered `{}`, the child's listen stream replaced by one
/// naming the subscribed resources (the old one closed, so the child keeps one), and the
/// updates delivered to the sessions that subscribed them only.
#[test]
fn session_clients_subscribe_to_a_2026_07_28_http_childs_resources() {
    if !peers_available() {
        return;
    }
    let served = Served::ts(true);
    let p = Project::new(&json!({"mcpServers": {"rs": {"url": served.url(), "alwaysAllow": ["*"], "timeout": 30}}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    crate::modern_gateway::session_subscriptions(&d, "rs");
}
