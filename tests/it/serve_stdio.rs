//! `mcpctl serve --stdio`: the gateway over stdio. Real peers (the Python SDK's stdio client,
//! tests/py/stdio_client.py, and the inspector CLI) launch it in a project with two fixture
//! servers, `fx` (every tool allowed) and `fy` (only `echo` and `add`): aggregated names,
//! policy, `--server`, elicitation and sampling from a child back to the client,
//! `tools/list_changed`, the running daemon used when there is one (with and without a token),
//! garbage and over-long lines on stdin, the session renewed when the gateway forgets it, and
//! no process left behind once stdin closes. 2026-07-28 clients over stdio (the TypeScript SDK
//! v2 and the Python SDK 2.3, pinned; raw lines): discover, calls with `Mcp-Param-*`, questions
//! through `input_required`, `subscriptions/listen`, cancellation, both eras on one stdin.

use crate::support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use support::{fixture_bin, Daemon, Project};

/// `fx` (all tools) writes its pid to `fx.pid` in the project; `fy` allows `echo` and `add` only.
fn project() -> Project {
    let p = Project::new(&json!({}));
    p.write_config(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "args": ["--pid-file", p.root.join("fx.pid")], "alwaysAllow": ["*"], "timeout": 20},
        "fy": {"command": fixture_bin(), "alwaysAllow": ["echo", "add"], "timeout": 20},
    }}));
    p
}

fn pid_in(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purpose (its parent has not reaped it yet).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start().chars().next()).unwrap_or(None);
    !stat.is_empty() && !matches!(state, Some('Z') | Some('X'))
}

/// Waits (bounded) until `pid` is gone.
fn gone_within(pid: i32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn serve_args(p: &Project, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["serve".to_string(), "--stdio".into(), "--project-root".into(), p.root.display().to_string()];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// tests/py/stdio_client.py launching `mcpctl serve --stdio ...`; its results.
fn python(p: &Project, extra: &[&str], env: &[(&str, &str)], steps: Value) -> Vec<Value> {
    let mut envs = json!({"PATH": std::env::var("PATH").unwrap_or_default(), "HOME": p.root});
    for (k, v) in env {
        envs[*k] = json!(v);
    }
    let spec = json!({
        "command": support::mcpctl_bin(),
        "args": serve_args(p, extra),
        "cwd": p.root,
        "env": envs,
        "steps": steps,
    });
    let mut c = Command::new(support::venv_python());
    c.arg(support::repo().join("tests/py/stdio_client.py")).arg(spec.to_string());
    let o = run_bounded(c, Duration::from_secs(90), "stdio_client.py");
    assert!(o.0 == Some(0), "stdio_client.py failed: {:?}\n--- stdout\n{}\n--- stderr\n{}", o.0, o.1, o.2);
    let v: Value = serde_json::from_str(o.1.trim()).unwrap_or_else(|e| panic!("not JSON ({}): {}", e, o.1));
    v["results"].as_array().unwrap().clone()
}

/// Run a command with a deadline (killed by pid past it): (exit code, stdout, stderr).
fn run_bounded(mut c: Command, limit: Duration, what: &str) -> (Option<i32>, String, String) {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{} does not run: {}", what, e));
    let pid = child.id() as i32;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut out = String::new();
    let mut err = String::new();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let _ = std::io::Read::read_to_string(&mut so, &mut out);
    err.push_str(&t.join().unwrap());
    let status = child.wait().unwrap();
    let _ = tx.send(());
    (status.code(), out, err)
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("no names in {}", v))
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn text(v: &Value) -> String {
    v["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {}", v)).to_string()
}

#[test]
fn python_sdk_client_over_stdio_without_a_daemon() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let r = python(
        &p,
        &[],
        &[],
        json!([
            ["list-tools"],
            ["call", "fx__echo", {"text": "over stdio"}],
            ["call", "fy__add", {"a": 40, "b": 2}],
            ["call", "fy__fail", {"message": "x"}],
            ["call", "fx__elicit", {"message": "ok?"}],
            ["call", "fx__sample", {"prompt": "p"}],
            ["call", "fx__toggle_tool", {}],
            ["wait-list-changed", 10],
        ]),
    );
    let all = names(&r[0]);
    for n in ["fx__echo", "fx__fail", "fx__elicit", "fy__echo", "fy__add"] {
        assert!(all.contains(&n.to_string()), "{} missing from {:?}", n, all);
    }
    // `fail` is not in fy's alwaysAllow: not listed, and refused.
    assert!(!all.contains(&"fy__fail".to_string()), "{:?}", all);
    assert_eq!(text(&r[1]), "over stdio");
    assert_eq!(text(&r[2]), "42");
    assert_eq!(r[3]["error"]["code"], -32003, "{}", r[3]);
    assert!(r[3]["error"]["message"].as_str().unwrap().contains("alwaysAllow"), "{}", r[3]);
    // The child's question reached the client and its answer went back.
    assert!(text(&r[4]).contains("from-python"), "{}", r[4]);
    assert_eq!(text(&r[5]), "sampled: sampled by python");
    assert_eq!(r[7], true, "no tools/list_changed on the GET stream");

    // The client closed stdin: the children are gone, and nothing was written for others.
    let pid = pid_in(&p.root.join("fx.pid")).expect("fx wrote its pid");
    assert!(gone_within(pid, Duration::from_secs(10)), "fx (pid {}) outlived serve --stdio", pid);
    assert!(!p.root.join(".mcpctl/daemon.json").exists(), "serve --stdio wrote a daemon state file");
}

#[test]
fn one_server_with_its_own_names() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let r = python(
        &p,
        &["--server", "fy"],
        &[],
        json!([["list-tools"], ["call", "add", {"a": 1, "b": 2}], ["call", "fail", {}]]),
    );
    assert_eq!(names(&r[0]), vec!["echo", "add"]);
    assert_eq!(text(&r[1]), "3");
    assert_eq!(r[2]["error"]["code"], -32003, "{}", r[2]);
    // Only the server served was started.
    assert!(!p.root.join("fx.pid").exists(), "fx was started for --server fy");
    // An unknown server is a one-line error before anything starts.
    let run = p.cmd().args(["serve", "--stdio", "--server", "nope"]).status(1);
    run.stderr_has("unknown server `nope`");
    assert!(run.stdout().is_empty(), "{}", run.dump());
}

#[test]
fn inspector_cli_over_stdio() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let home = p.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let inspector = |args: &[&str], serve: &[&str]| -> Value {
        let mut c = Command::new(support::npm_bin().join("mcp-inspector"));
        c.env_clear().env("PATH", support::path_with_deps()).env("HOME", &home);
        c.arg("--cli").args(args).arg("--").arg(support::mcpctl_bin()).args(serve_args(&p, serve));
        let (code, out, err) = run_bounded(c, Duration::from_secs(90), "mcp-inspector --cli");
        assert_eq!(code, Some(0), "mcp-inspector failed\n--- stdout\n{}\n--- stderr\n{}", out, err);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({}): {}", e, out))
    };
    let v = inspector(&["--method", "tools/list"], &[]);
    let all: Vec<&str> = v["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(all.contains(&"fx__echo") && all.contains(&"fy__add") && !all.contains(&"fy__fail"), "{:?}", all);
    let v = inspector(&["--method", "tools/call", "--tool-name", "fy__add", "--tool-arg", "a=2", "b=3"], &[]);
    assert_eq!(text(&v), "5");
    let v =
        inspector(&["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=one"], &["--server", "fx"]);
    assert_eq!(text(&v), "one");
    let pid = pid_in(&p.root.join("fx.pid")).expect("fx wrote its pid");
    assert!(gone_within(pid, Duration::from_secs(10)), "fx (pid {}) outlived serve --stdio", pid);
}

fn fx_calls(p: &Project, env: &[(&str, &str)]) -> u64 {
    let mut c = p.cmd().args(["--json-output", "status"]);
    for (k, v) in env {
        c = c.env(k, v);
    }
    let v = c.success().json();
    v["servers"].as_array().unwrap().iter().find(|s| s["name"] == "fx").unwrap()["calls"].as_u64().unwrap()
}

#[test]
fn the_running_daemon_is_used() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let child = pid_in(&p.root.join("fx.pid")).expect("the daemon's fx wrote its pid");
    let before = fx_calls(&p, &[]);
    let r = python(&p, &[], &[], json!([["call", "fx__echo", {"text": "via daemon"}], ["list-tools"]]));
    assert_eq!(text(&r[0]), "via daemon");
    assert!(!names(&r[1]).contains(&"fy__fail".to_string()));
    // The daemon served the call, on its own child (no second fx was started).
    assert!(fx_calls(&p, &[]) > before, "the daemon did not count the call");
    assert_eq!(pid_in(&p.root.join("fx.pid")), Some(child), "a second fx was started");
    assert!(alive(child), "the daemon's child was stopped by the bridge");
    drop(d);
}

#[test]
fn the_running_daemon_with_a_token() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let token = "serve-stdio-test-token-0123456789";
    let env = [("MCPCTL_TOKEN", token)];
    let d = Daemon::start_env(&p, &[], &env);
    d.wait_ready(&env);
    let before = fx_calls(&p, &env);
    let r = python(&p, &["--server", "fx"], &env, json!([["call", "echo", {"text": "tokened"}]]));
    assert_eq!(text(&r[0]), "tokened");
    assert!(fx_calls(&p, &env) > before, "the daemon did not count the call");
    // A 2026-07-28 request reaches the daemon too, with the token.
    let mut s = Raw::start(&p, &env);
    s.send(&modern_line(json!(1), "tools/call", json!({"name": "fx__echo", "arguments": {"text": "modern, tokened"}})));
    let v = s.answer(1);
    assert_eq!(v["result"]["content"][0]["text"], "modern, tokened", "{}", v);
    let (code, err) = s.close();
    assert_eq!(code, Some(0), "{}", err);
    assert!(err.contains("bridging stdio to the daemon"), "{}", err);
    // A token the daemon refuses: one line on stderr, nothing on stdout.
    let run = p.cmd().args(["serve", "--stdio"]).env("MCPCTL_TOKEN", "wrong-token-wrong-token").output();
    assert_ne!(run.out.status.code(), Some(0), "{}", run.dump());
    run.stderr_has("the running daemon refused MCPCTL_TOKEN");
    assert!(run.stdout().is_empty(), "{}", run.dump());
    drop(d);
}

/// The Python SDK 2.x on stdio: in `auto` mode it falls back to `initialize` and works;
/// pinned to 2026-07-28 (no `initialize`, every request with the envelope in `_meta`) it is
/// served statelessly: `server/discover`, tools, and a session-based child's question reaching
/// it as an `input_required` result that its retry answers.
#[test]
fn python_sdk_2_client_in_both_eras() {
    if !support::peers_available() {
        return;
    }
    let p = project();
    let modern = |mode: &str| -> Value {
        let spec = json!({
            "command": support::mcpctl_bin(),
            "args": serve_args(&p, &[]),
            "cwd": p.root,
            "env": {"PATH": std::env::var("PATH").unwrap_or_default(), "HOME": p.root},
            "mode": mode,
            "discover": mode == "2026-07-28",
            "call": ["fy__add", {"a": 2, "b": 2}],
            "calls": [["fx__elicit", {"message": "Your name?"}]],
        });
        let mut c = Command::new(support::venv_modern_python());
        c.arg(support::repo().join("tests/py/modern_stdio_client.py")).arg(spec.to_string());
        let (code, out, err) = run_bounded(c, Duration::from_secs(90), "modern_stdio_client.py");
        assert_eq!(code, Some(0), "modern_stdio_client.py failed\n--- stdout\n{}\n--- stderr\n{}", out, err);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({}): {}", e, out))
    };
    for mode in ["auto", "2026-07-28"] {
        let v = modern(mode);
        assert!(names(&v["tools"]).contains(&"fy__add".to_string()), "{}: {}", mode, v);
        assert_eq!(v["result"]["content"][0]["text"], "4", "{}: {}", mode, v);
        // The child's question reached the client's handler, and its answer the child.
        assert_eq!(v["asked"], json!(["Your name?"]), "{}: {}", mode, v);
        assert!(text(&v["results"][0]).contains("Ada"), "{}: {}", mode, v);
    }
    let v = modern("2026-07-28");
    assert_eq!(v["protocol"], "2026-07-28", "{}", v);
    assert!(v["discover"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{}", v);
    assert_eq!(v["result"]["resultType"], "complete", "a 2026-07-28 answer: {}", v);
}

/// The TypeScript SDK v2 pinned to 2026-07-28 on its stdio transport, against the fixture
/// server (`fx`) and a 2026-07-28 child on the same SDK (`md`): discover, tools/list, calls
/// (a non-ASCII argument, a tool whose parameter is mirrored into an `Mcp-Param-*` header
/// with a non-ASCII value), questions from both children through `input_required`, and
/// `subscriptions/listen` carrying a tool list change.
#[test]
fn typescript_sdk_2026_07_28_client_over_stdio() {
    if !support::peers_available() {
        return;
    }
    let node = support::npm_bin().join("node");
    let p = Project::new(&json!({}));
    p.write_config(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 20},
        "md": {"command": node, "args": [support::repo().join("fixtures/ts/modern_server.mjs"), "--modern-only"],
               "alwaysAllow": ["*"], "timeout": 30},
    }}));
    let spec = json!({
        "command": support::mcpctl_bin(),
        "args": serve_args(&p, &[]),
        "cwd": p.root,
        "env": {"PATH": std::env::var("PATH").unwrap_or_default(), "HOME": p.root},
        "calls": [
            ["fx__echo", {"text": "grüße"}],
            ["md__regional", {"region": "Zürich", "query": "weather"}],
            ["fx__elicit", {"message": "Your name?"}],
            ["md__confirm", {"what": "deploy"}],
        ],
        "listen": "fx__toggle_tool",
    });
    let mut c = Command::new(&node);
    c.arg(support::repo().join("tests/js/stdio_modern_client.mjs"))
        .arg(support::npm_bin().parent().unwrap())
        .arg(spec.to_string());
    let (code, out, err) = run_bounded(c, Duration::from_secs(90), "stdio_modern_client.mjs");
    assert_eq!(code, Some(0), "stdio_modern_client.mjs failed\n--- stdout\n{}\n--- stderr\n{}", out, err);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({}): {}", e, out));
    assert_eq!(v["era"], "modern", "{}", v);
    assert_eq!(v["protocol"], "2026-07-28", "{}", v);
    assert!(v["discover"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{}", v);
    assert_eq!(v["discover"]["capabilities"]["tools"]["listChanged"], true, "{}", v);
    let tools = names(&v["tools"]);
    for t in ["fx__echo", "fx__elicit", "md__regional", "md__confirm"] {
        assert!(tools.contains(&t.to_string()), "{} missing: {}", t, v);
    }
    let r = &v["results"];
    assert_eq!(text(&r[0]), "grüße", "{}", v);
    assert_eq!(text(&r[1]), "region=Zürich query=weather", "{}", v);
    assert!(text(&r[2]).contains("Ada"), "{}", v);
    assert_eq!(text(&r[3]), "deploy confirmed by Ada", "{}", v);
    assert_eq!(v["asked"].as_array().map(Vec::len), Some(2), "both questions reached the client: {}", v);
    assert_eq!(v["honored"]["toolsListChanged"], true, "{}", v);
    assert!(v["changed"].as_u64().unwrap_or(0) >= 1, "no tools/list_changed on the listen stream: {}", v);
}

/// `mcpctl serve --stdio` with pipes: lines in, lines out.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl Raw {
    fn start(p: &Project, env: &[(&str, &str)]) -> Raw {
        let mut c = Command::new(support::mcpctl_bin());
        c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("NO_COLOR", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(serve_args(p, &["--verbose"])).current_dir(&p.root);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let (etx, stderr) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
            let _ = etx.send(s);
        });
        Raw { stdin: child.stdin.take(), child, lines, stderr }
    }

    fn send(&mut self, line: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    /// The next line on stdout: every one must be a JSON-RPC message.
    fn next(&self) -> Value {
        let l = self.lines.recv_timeout(Duration::from_secs(30)).expect("an answer on stdout");
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("stdout line not JSON ({}): {}", e, l));
        assert_eq!(v["jsonrpc"], "2.0", "{}", l);
        v
    }

    /// The next response (or error), skipping notifications (`tools/list_changed` comes when
    /// the servers become ready).
    fn response(&self) -> Value {
        loop {
            let v = self.next();
            if v.get("method").is_none() {
                return v;
            }
        }
    }

    /// The answer with `id`, skipping notifications.
    fn answer(&self, id: i64) -> Value {
        loop {
            let v = self.next();
            if v["id"] == id && v.get("method").is_none() {
                return v;
            }
        }
    }

    fn initialize(&mut self) {
        self.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#);
        let v = self.answer(0);
        assert_eq!(v["result"]["protocolVersion"], "2025-06-18", "{}", v);
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }

    /// Close stdin; the exit status (killed past the deadline) and stderr.
    fn close(self) -> (Option<i32>, String) {
        let (code, err, _) = self.close_with_rest();
        (code, err)
    }

    /// Close stdin; the exit status, stderr, and the lines on stdout not read yet.
    fn close_with_rest(mut self) -> (Option<i32>, String, Vec<String>) {
        drop(self.stdin.take());
        let status = support::wait_until(&mut self.child, Instant::now() + Duration::from_secs(15));
        if status.is_none() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
            let _ = self.child.wait();
        }
        let err = self.stderr.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        let rest: Vec<String> = self.lines.try_iter().collect();
        (status.and_then(|s| s.code()), err, rest)
    }
}

fn has_secret_like(text: &str) -> bool {
    // 64 hex digits in a row: the shape of the in-process gateway's token.
    let b = text.as_bytes();
    let mut run = 0;
    for c in b {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 64 {
            return true;
        }
    }
    false
}

#[test]
fn garbage_and_long_lines_get_errors_and_stdin_eof_ends_cleanly() {
    let p = project();
    let mut s = Raw::start(&p, &[("MCPCTL_MAX_LINE", "4096")]);
    s.initialize();
    s.send("this is not json {");
    let v = s.response();
    assert_eq!(v["error"]["code"], -32700, "{}", v);
    assert_eq!(v["id"], Value::Null);
    s.send(&format!(r#"{{"jsonrpc":"2.0","id":7,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(8000)));
    let v = s.response();
    assert_eq!(v["error"]["code"], -32700, "{}", v);
    assert!(v["error"]["message"].as_str().unwrap().contains("MCPCTL_MAX_LINE"), "{}", v);
    s.send("[1, 2]");
    assert_eq!(s.response()["error"]["code"], -32600);
    // The session goes on: requests in flight do not wait for each other.
    s.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__sleep","arguments":{"ms":1500}}}"#);
    s.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"quick"}}}"#,
    );
    let first = s.response();
    assert_eq!(first["id"], 2, "the quick call waited for the slow one: {}", first);
    assert_eq!(first["result"]["content"][0]["text"], "quick");
    let v = s.answer(1);
    assert!(v.get("result").is_some(), "{}", v);
    s.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
    assert!(s.answer(3)["result"]["tools"].as_array().unwrap().len() > 10);
    let pid = pid_in(&p.root.join("fx.pid")).expect("fx wrote its pid");
    assert!(alive(pid));
    // The in-process gateway's token is in no argv and no environment.
    for f in
        [format!("/proc/{}/environ", pid), format!("/proc/{}/cmdline", pid), format!("/proc/{}/cmdline", s.child.id())]
    {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!has_secret_like(&text), "something token-like in {}", f);
    }

    let (code, err) = s.close();
    assert_eq!(code, Some(0), "exit status after stdin EOF\n{}", err);
    assert!(gone_within(pid, Duration::from_secs(5)), "fx (pid {}) outlived serve --stdio", pid);
    assert!(!has_secret_like(&err), "something token-like in the log:\n{}", err);
    assert!(!p.root.join(".mcpctl/daemon.json").exists());
}

#[test]
fn a_cancelled_request_is_passed_on_and_gets_no_answer() {
    let p = project();
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    s.send(
        r#"{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"fx__sleep","arguments":{"ms":60000}}}"#,
    );
    // The server runs the call.
    let mut fx = 0;
    support::eventually("the call to reach the server", Duration::from_secs(10), || {
        fx = pid_in(&p.root.join("fx.pid")).unwrap_or(0);
        fx > 0 && support::fixture_sleeps_running(fx) == 1
    });
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"test"}}"#);
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(s.response()["id"], 2);
    // The server was told: its call ends (while the server still runs).
    support::eventually("the server to end the call", Duration::from_secs(10), || {
        support::fixture_sleeps_running(fx) == 0
    });
    assert!(alive(fx));
    let (code, err, rest) = s.close_with_rest();
    assert_eq!(code, Some(0), "{}", err);
    // Nothing answered the cancelled request, before or after stdin closed.
    assert!(!rest.iter().any(|l| l.contains("\"slow\"")), "{:?}", rest);
    // The cancellation reached the gateway (which passes it on to the server).
    assert!(!err.contains("refused a message") && !err.contains("not delivered"), "{}", err);
}

/// A 2026-07-28 request with the envelope in `_meta`.
fn modern_line(id: Value, method: &str, params: Value) -> String {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// One stdin carries both eras: a session (after `initialize`) and 2026-07-28 requests (no
/// session, answered as that revision answers). A 2026-07-28 client's cancellation closes
/// its request's connection: the call ends at the server, and no answer comes.
#[test]
fn both_eras_on_one_stdin_and_a_2026_07_28_cancellation_ends_the_call() {
    let p = project();
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    s.send(&modern_line(json!(10), "server/discover", json!({})));
    let v = s.answer(10);
    assert!(v["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{}", v);
    s.send(&modern_line(json!(11), "tools/call", json!({"name": "fy__add", "arguments": {"a": 2, "b": 3}})));
    let v = s.answer(11);
    assert_eq!(v["result"]["content"][0]["text"], "5", "{}", v);
    assert_eq!(v["result"]["resultType"], "complete", "a 2026-07-28 answer: {}", v);
    // A method the revision does not have is the gateway's own error, passed on.
    s.send(&modern_line(json!(12), "ping", json!({})));
    assert_eq!(s.answer(12)["error"]["code"], -32601);
    // The session is untouched.
    s.send(r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"session"}}}"#);
    let v = s.answer(13);
    assert_eq!(v["result"]["content"][0]["text"], "session", "{}", v);
    assert!(v["result"].get("resultType").is_none(), "a session answer: {}", v);

    s.send(&modern_line(json!("slow"), "tools/call", json!({"name": "fx__sleep", "arguments": {"ms": 60000}})));
    let mut fx = 0;
    support::eventually("the call to reach the server", Duration::from_secs(10), || {
        fx = pid_in(&p.root.join("fx.pid")).unwrap_or(0);
        fx > 0 && support::fixture_sleeps_running(fx) == 1
    });
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"test"}}"#);
    support::eventually("the server to end the call", Duration::from_secs(10), || {
        support::fixture_sleeps_running(fx) == 0
    });
    s.send(r#"{"jsonrpc":"2.0","id":14,"method":"ping"}"#);
    assert_eq!(s.answer(14)["result"], json!({}));
    let (code, err, rest) = s.close_with_rest();
    assert_eq!(code, Some(0), "{}", err);
    assert!(!rest.iter().any(|l| l.contains("\"slow\"")), "{:?}", rest);
}

/// A 2026-07-28 client that calls a tool mirroring parameters into `Mcp-Param-*` headers
/// (`x-mcp-header`) without having listed tools first: the bridge looks the tool's schema
/// up itself, so the gateway gets the headers it checks (no -32020). A tool that does not
/// exist gets the gateway's own answer.
#[test]
fn a_2026_07_28_call_with_mirrored_parameters_needs_no_listing_first() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({}));
    p.write_config(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 20},
        "hx": {"command": support::venv_python(), "args": [support::repo().join("tests/py/header_server.py")],
               "alwaysAllow": ["*"], "timeout": 30},
    }}));
    let mut s = Raw::start(&p, &[]);
    let call = |id: i64, region: &str| {
        modern_line(json!(id), "tools/call", json!({"name": "hx__where", "arguments": {"region": region, "shard": 3}}))
    };
    s.send(&call(1, "Zürich"));
    let v = s.answer(1);
    assert_eq!(v["result"]["content"][0]["text"], "Zürich/3", "{}", v);
    s.send(&call(2, "eu-west"));
    let v = s.answer(2);
    assert_eq!(v["result"]["content"][0]["text"], "eu-west/3", "{}", v);
    s.send(&modern_line(json!(3), "tools/call", json!({"name": "hx__nowhere", "arguments": {}})));
    let v = s.answer(3);
    assert!(v.get("error").is_some() || v["result"]["isError"] == true, "{}", v);
    let (code, err) = s.close();
    assert_eq!(code, Some(0), "{}", err);
}

#[test]
fn sigterm_stops_the_children() {
    let p = project();
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    s.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x"}}}"#);
    s.answer(1);
    let pid = pid_in(&p.root.join("fx.pid")).expect("fx wrote its pid");
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let status = support::wait_until(&mut s.child, Instant::now() + Duration::from_secs(10));
    assert!(status.is_some(), "serve --stdio did not stop on SIGTERM");
    assert!(gone_within(pid, Duration::from_secs(5)), "fx (pid {}) outlived serve --stdio", pid);
}

#[test]
fn a_forgotten_session_is_opened_again() {
    let p = project();
    // The daemon forgets sessions idle for a second (swept every 5 s).
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_SESSION_IDLE", "1")]);
    d.wait_ready(&[]);
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    s.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"a"}}}"#);
    assert_eq!(s.answer(1)["result"]["content"][0]["text"], "a");
    // Until the daemon holds no session (ours was its only one).
    support::eventually("the daemon to forget the session", Duration::from_secs(20), || {
        p.cmd().args(["--json-output", "status"]).success().json()["daemon"]["sessions"] == 0
    });
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"b"}}}"#);
    let v = s.answer(2);
    assert_eq!(v["result"]["content"][0]["text"], "b", "{}", v);
    let (code, err) = s.close();
    assert_eq!(code, Some(0), "{}", err);
    assert!(err.contains("initializing again"), "{}", err);
    drop(d);
}

/// The daemon stopped under a session: calls get an error naming the cause; once a daemon
/// runs on the same port again, the session is opened again there and calls work.
#[test]
fn a_restarted_daemon_is_reached_again() {
    let p = project();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let port = d.port.to_string();
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    let call = |s: &mut Raw, id: i64, text: &str| -> Value {
        s.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"fx__echo","arguments":{{"text":"{}"}}}}}}"#,
            id, text
        ));
        s.answer(id)
    };
    assert_eq!(call(&mut s, 1, "one")["result"]["content"][0]["text"], "one");
    p.cmd().args(["stop"]).success();
    let v = call(&mut s, 2, "two");
    assert_eq!(v["error"]["code"], -32000, "{}", v);
    assert!(v["error"]["message"].as_str().unwrap().contains("cannot reach the gateway"), "{}", v);
    // A new daemon on the same port (stopped by the project's drop, by its pid).
    p.cmd().args(["start", "--port", &port]).success();
    d.wait_ready(&[]);
    let v = call(&mut s, 3, "three");
    assert_eq!(v["result"]["content"][0]["text"], "three", "{}", v);
    let (code, err) = s.close();
    assert_eq!(code, Some(0), "{}", err);
    assert!(err.contains("initializing again"), "{}", err);
    // The second daemon is stopped by `mcpctl stop`; the first one's pid is gone already and
    // must not be signalled again.
    p.cmd().args(["stop"]).success();
    std::mem::forget(d);
}

/// Named tokens belong to a daemon's clients: the in-process gateway does not need their
/// variables. A config that does not load is one line on stderr and exit 1, nothing on stdout.
#[test]
fn named_tokens_are_not_needed_and_a_broken_config_is_one_line() {
    let p = Project::new(&json!({
        "tokens": {"ci": {"env": "MCPCTL_TEST_UNSET_TOKEN_VAR", "allow": ["fx__echo"]}},
        "mcpServers": {"fx": {"command": fixture_bin(), "alwaysAllow": ["*"]}},
    }));
    let mut s = Raw::start(&p, &[]);
    s.initialize();
    s.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__add","arguments":{"a":1,"b":1}}}"#);
    let v = s.answer(1);
    assert_eq!(v["result"]["content"][0]["text"], "2", "{}", v);
    let (code, err) = s.close();
    assert_eq!(code, Some(0), "{}", err);

    p.write_config(&json!({"mcpServers": {"fx": {"alwaysAllow": ["*"]}}}));
    let run = p.cmd().args(["serve", "--stdio"]).stdin("").status(1);
    assert_eq!(run.stderr().trim().lines().count(), 1, "{}", run.dump());
    assert!(run.stderr().contains("fx"), "{}", run.dump());
    assert!(run.stdout().is_empty(), "{}", run.dump());
}
