//! The gateway's resource limits: a client that stops sending mid-request is cut off after
//! `MCPCTL_IO_TIMEOUT`, and the daemon keeps serving others meanwhile.

mod support;

use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn stalled_clients_do_not_block_others_and_an_idle_daemon_keeps_accepting() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_IO_TIMEOUT", "1")]);
    // Half a request line and no more (slowloris), and a request whose body never comes.
    let mut slow = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    slow.write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    let mut stalled = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    stalled
        .write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
        .unwrap();
    // Meanwhile the daemon answers, over plain HTTP (no CLI fallback to a direct connection).
    let health = ureq::get(&d.url("/health")).call().unwrap().into_body().read_to_string().unwrap();
    assert_eq!(health, r#"{"status":"ok"}"#);
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": "while stalled"}))["content"][0]["text"], "while stalled");
    // Idle for longer than the I/O timeout: the daemon must still accept new connections
    // (a receive timeout on the listening socket would make accept fail, and tiny_http,
    // the library the gateway once used, stopped accepting after an accept error).
    std::thread::sleep(Duration::from_millis(2500));
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": "after idle"}))["content"][0]["text"], "after idle");
    drop((slow, stalled));
    let r = p.cmd().args(["--verbose", "call", "fx", "echo", "--text", "after"]).success();
    r.stdout_has("after");
    r.stderr_has("using the daemon");
}

#[test]
fn idle_sessions_expire() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_SESSION_IDLE", "1")]);
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": "a"}))["content"][0]["text"], "a");
    // The sweep runs every few seconds; an idle session is gone within a bounded time.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let (status, _) = c.post_status(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}));
        if status == 404 {
            break;
        }
        // A ping refreshes the session: wait longer than the idle time between tries.
        std::thread::sleep(Duration::from_millis(1600));
        assert!(Instant::now() < deadline, "the idle session never expired");
    }
}

#[test]
fn past_the_connection_cap_requests_get_503_at_once() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_CONNECTIONS", "2")]);
    // Two requests whose heads are complete (their bodies still coming) hold both slots: a
    // busy connection is never closed to make room (only one without a complete head, or
    // an idle one, is).
    let url = d.url("/mcp/fx");
    let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let mut holders: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&authority).unwrap();
            let head = format!(
                "POST /mcp/fx HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: 40\r\n\r\n",
                authority
            );
            std::io::Write::write_all(&mut c, head.as_bytes()).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let t0 = Instant::now();
    let resp = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(&url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .send(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(t0.elapsed() < Duration::from_secs(1), "the 503 was not immediate: {:?}", t0.elapsed());
    holders.clear();
    // Slots free again: served.
    assert_eq!(McpClient::open(url).call("echo", json!({"text": "ok"}))["content"][0]["text"], "ok");
}

#[test]
fn aggregated_endpoint_routes_resources_prompts_and_long_names() {
    // A server name long enough that `<server>__<tool>` passes 64 characters.
    let long = "s".repeat(60);
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
        long.clone(): {"command": fixture_bin(), "alwaysAllow": ["*"]}
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let c = McpClient::open(d.url("/mcp"));
    let tools = c.request("tools/list", json!({}))["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"fx__echo"), "{:?}", names);
    for n in &names {
        assert!(n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{}", n);
    }
    // The long server's echo has the documented short form: the first 55 characters of
    // `<server>__<tool>`, `_`, and 8 hex digits of its FNV-1a hash.
    let full = format!("{}__echo", long);
    let mut h: u32 = 0x811c_9dc5;
    for b in full.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let short = format!("{}_{:08x}", &full[..55], h);
    assert!(names.contains(&short.as_str()), "{} not in {:?}", short, names);
    assert_eq!(c.call(&short, json!({"text": "long"}))["content"][0]["text"], "long");
    let st = p.cmd().args(["--json-output", "status"]).success().json();
    let calls =
        |name: &str| st["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["calls"].clone();
    assert_eq!((calls(&long), calls("fx")), (json!(1), json!(0)), "the call went to the wrong server: {}", st);
    assert_eq!(tools.len(), 40, "no tool dropped");
    // Prompts are prefixed and routed back.
    let prompts = c.request("prompts/list", json!({}))["result"]["prompts"].clone();
    assert!(prompts.as_array().unwrap().iter().any(|p| p["name"] == "fx__greet"), "{}", prompts);
    let got = c.request("prompts/get", json!({"name": "fx__greet", "arguments": {"name": "Ada"}}));
    assert!(got["result"]["messages"].to_string().contains("Ada"), "{}", got);
    // Resources keep their URIs and are read from their server.
    let res = c.request("resources/list", json!({}))["result"]["resources"].clone();
    assert!(res.as_array().unwrap().iter().any(|r| r["uri"] == "fixture://hello"), "{}", res);
    let read = c.request("resources/read", json!({"uri": "fixture://hello"}));
    assert!(read["result"]["contents"][0]["text"].is_string(), "{}", read);
    let missing = c.request("resources/read", json!({"uri": "nowhere://x"}));
    assert_eq!(missing["error"]["code"], -32002, "{}", missing);
    let unknown = c.request("tools/call", json!({"name": "nope__x", "arguments": {}}));
    assert_eq!(unknown["error"]["code"], -32602, "{}", unknown);
}

/// Bursts of new clients on keep-alive connections are all served promptly (the connection
/// pool of tiny_http, the library the gateway once used, could queue a new connection
/// behind threads parked on other clients' connections; the gateway ends connections
/// regularly so none waits for long).
#[test]
fn bursts_of_new_sessions_are_never_starved() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    for round in 0..10 {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..16 {
            let (tx, url) = (tx.clone(), d.url("/mcp/fx"));
            std::thread::spawn(move || {
                let c = McpClient::open(url);
                for k in 0..20 {
                    let text = format!("r{}-s{}-{}", round, i, k);
                    let got = c.call("echo", json!({"text": text}));
                    assert_eq!(got["content"][0]["text"], text.as_str());
                }
                let _ = tx.send(i);
            });
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut done = 0;
        while done < 16 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(_) => done += 1,
                Err(_) => panic!("round {}: only {} of 16 new sessions were served within 20 s", round, done),
            }
        }
    }
}

/// `mcpctl call` through the daemon takes one round trip (`/cli/call`) and prints exactly
/// what a direct call prints: same JSON envelope, same exit code, for every outcome.
#[test]
fn cli_calls_through_the_daemon_match_direct_calls() {
    let p = Project::fixture(json!({"timeout": 1}));
    std::fs::write(p.root.join("arg.txt"), "from a file").unwrap();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec!["echo", "--text", "007"], "", 0),
        (vec!["types", "--s", "true", "--n", "7", "--arr", "[1,2]"], "", 0),
        (vec!["echo", "--var", "text=@arg.txt"], "", 0),
        (vec!["types", "--json", "-"], r#"{"s": "stdin", "b": false}"#, 0),
        (vec!["fail", "--message", "boom"], "", 1),
        (vec!["sample", "--prompt", "hi"], "", 1),
        (vec!["ech", "--text", "x"], "", 1),
        (vec!["add", "--a", "abc", "--b", "1"], "", 1),
        (vec!["types", "--n", "1.5"], "", 1),
        (vec!["hang"], "", 2),
    ];
    for (args, stdin, code) in cases {
        let run = |extra: &[&str]| {
            p.cmd()
                .args(["--json-output"])
                .args(extra.iter().copied())
                .args(["call", "fx"])
                .args(args.iter().copied())
                .stdin(stdin)
                .status(code)
                .json()
        };
        let direct = run(&["--no-daemon"]);
        let via = run(&[]);
        assert_eq!(via, direct, "`call fx {}` differs through the daemon", args.join(" "));
    }
    let log = std::fs::read_to_string(p.root.join(".mcpctl/logs/daemon.log")).unwrap();
    assert!(
        log.contains("call session=cli token=- server=fx tool=echo"),
        "the one-round-trip path was not taken:\n{}",
        log
    );
    assert!(!log.contains("007"), "argument values must not be logged");
}

/// A server isolated per session is never called on the shared child from the shell: the
/// call gets a session (and a child) of its own.
#[test]
fn cli_calls_to_an_isolated_server_get_their_own_child() {
    let p = Project::fixture(json!({"isolation": "session"}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let r = p.cmd().args(["--verbose", "call", "fx", "echo", "--text", "own child"]).success();
    r.stdout_has("own child");
    r.stderr_has("using the daemon");
    let log = std::fs::read_to_string(p.root.join(".mcpctl/logs/daemon.log")).unwrap();
    assert!(!log.contains("session=cli"), "the shared child was used:\n{}", log);
    assert!(log.contains("server=fx tool=echo"), "the call was not made through the daemon:\n{}", log);
}

/// A server added to the config after the daemon started is not served by it: the shell
/// client connects to it directly (saying so, and how to have the daemon serve it).
#[test]
fn servers_added_after_start_are_reached_directly() {
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    p.write_config(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
        "new": {"command": fixture_bin(), "alwaysAllow": ["*"]}
    }}));
    let r = p.cmd().args(["call", "new", "echo", "--text", "hi"]).success();
    assert_eq!(r.stdout(), "hi\n");
    r.stderr_has("the daemon does not serve `new`");
    r.stderr_has("mcpctl stop && mcpctl start");
    p.cmd().args(["tools", "new"]).success().stdout_has("echo");
    // The server the daemon knows still goes through it.
    p.cmd().args(["--verbose", "call", "fx", "echo", "--text", "x"]).success().stderr_has("using the daemon");
}

/// Daemon commands used at the wrong moment say what is wrong and what to do, in one line.
#[test]
fn daemon_commands_out_of_place_explain_themselves() {
    let p = Project::fixture(json!({}));
    // `logs` before the daemon ever ran.
    let r = p.cmd().args(["logs"]).status(1);
    r.stderr_has("no daemon log at");
    r.stderr_has("start the daemon with `mcpctl start`");
    // A second daemon in the foreground while one runs.
    let secret = "a-long-test-token-0123456789";
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN", secret)]);
    let port = free_port().to_string();
    let r = p.cmd().args(["start", "--foreground", "--port", &port]).env("MCPCTL_TOKEN", secret).status(1);
    r.stderr_has("another mcpctl daemon is running for");
    r.stderr_has(&format!("(pid {})", d.pid));
    // `status` without the daemon's token: running, and what to set.
    let v = p.cmd().args(["--json-output", "status"]).success().json();
    assert_eq!(v["daemon"]["status"], "running", "{}", v);
    assert!(v["daemon"]["error"].as_str().unwrap_or("").contains("set MCPCTL_TOKEN"), "{}", v);
    // With it: the servers' states (bounded wait for the child to be ready).
    let v = d.wait_ready(&[("MCPCTL_TOKEN", secret)]);
    assert_eq!(v["servers"][0]["status"], "ready", "{}", v);
}

/// An upstream Streamable HTTP server that forgets our session (here: another mcpctl
/// daemon whose idle sessions expire) answers 404; the gateway initializes a new session
/// and the call goes through, without counting a restart.
#[test]
fn an_upstream_http_server_that_forgets_the_session_is_initialized_again() {
    // (a child per session keeps the upstream daemon session-based: it offers no 2026-07-28
    // to a probing client, which would need no session at all)
    let upstream = Project::fixture(json!({"isolation": "session"}));
    let up = Daemon::start_env(&upstream, &[], &[("MCPCTL_SESSION_IDLE", "1")]);
    let p = Project::new(&json!({"mcpServers": {"up": {"url": up.url("/mcp/fx"), "alwaysAllow": ["*"]}}}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let c = McpClient::open(d.url("/mcp/up"));
    assert_eq!(c.call("echo", json!({"text": "first"}))["content"][0]["text"], "first");
    // The upstream ends idle sessions (swept every 5 s): ours is gone after this.
    std::thread::sleep(Duration::from_millis(7000));
    assert_eq!(c.call("echo", json!({"text": "second"}))["content"][0]["text"], "second");
    let log = p.cmd().args(["logs"]).success().stdout();
    assert!(log.contains("server `up`: session expired; initializing again"), "{}", log);
    let status = p.cmd().args(["--json-output", "status"]).success().json();
    let up_status = status["servers"].as_array().unwrap().iter().find(|s| s["name"] == "up").cloned().unwrap();
    assert_eq!(up_status["restarts"], 0, "{}", up_status);
}

/// A big answer through the daemon (`POST /cli/call`) reaches the shell whole.
#[test]
fn a_big_answer_through_the_daemon_arrives_whole() {
    let p = Project::fixture(json!({}));
    let _d = Daemon::start(&p, &[]);
    let size = 16 * 1000 * 1000;
    let t0 = Instant::now();
    let r = p.cmd().args(["--verbose", "call", "fx", "big", "--bytes", &size.to_string()]).success();
    r.stderr_has("using the daemon");
    assert!(!r.stderr().contains("connecting the usual way"), "{}", r.stderr());
    assert_eq!(r.stdout().trim_end().len(), size);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

/// A shell with the wrong token: the daemon refuses it, and the CLI says so in one line
/// (exit code of `forbidden`) instead of starting the server a second time; `--no-daemon`
/// still calls it directly.
#[test]
fn a_wrong_token_for_the_daemon_is_a_clear_error() {
    let p = Project::fixture(json!({}));
    let _d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN", "right-token-123")]);
    let forbidden = |args: &[&str]| {
        let r = p.cmd().env("MCPCTL_TOKEN", "wrong-token-456").args(args).status(2);
        let stderr = r.stderr();
        assert_eq!(r.stdout(), "", "{}", stderr);
        let first = stderr.lines().find(|l| l.starts_with('✗')).unwrap_or_else(|| panic!("{}", stderr)).to_string();
        assert!(first.contains("the running daemon refused MCPCTL_TOKEN (HTTP 401)"), "{}", first);
        assert!(stderr.contains("--no-daemon"), "{}", stderr);
        assert!(!stderr.contains("wrong-token-456"), "the token must never be printed:\n{}", stderr);
        let j = p.cmd().env("MCPCTL_TOKEN", "wrong-token-456").args(["--json-output"]).args(args).status(2).json();
        assert_eq!(j["status"], "forbidden", "{}", j);
    };
    forbidden(&["call", "fx", "echo", "--text", "x"]); // POST /cli/call
    forbidden(&["tools", "fx"]); // the MCP endpoint
    let r =
        p.cmd().env("MCPCTL_TOKEN", "wrong-token-456").args(["--no-daemon", "call", "fx", "echo", "--text", "direct"]);
    r.success().stdout_has("direct");
}
