//! Children that misbehave cannot freeze the daemon: one that stops reading its stdin,
//! one that exits while a process it started holds its stdout, one that writes huge or
//! broken lines, one that floods notifications, ones slow to die. Every test also checks
//! that a healthy server keeps answering and that nothing is left running.

use crate::support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Ok(stat) => {
            stat.rsplit_once(')').map(|(_, r)| r.trim_start().as_bytes().first() != Some(&b'Z')).unwrap_or(false)
        }
        Err(_) => false,
    }
}

/// Processes whose parent is `pid`, with their state letter.
fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", p)) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(1).and_then(|x| x.parse::<i32>().ok()) == Some(pid) {
            out.push((p, f[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

fn wait_gone(pids: &[i32], within: Duration) {
    let deadline = Instant::now() + within;
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "still running after {:?}: {:?}",
            within,
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return p;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["servers"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
}

/// `mcpctl status` answers within `within`; returns it.
fn status_within(p: &Project, within: Duration) -> Value {
    let t0 = Instant::now();
    let st = p.cmd().args(["--json-output", "status"]).success().json();
    assert!(t0.elapsed() < within, "status took {:?}", t0.elapsed());
    st
}

/// The healthy server answers an echo within a second.
fn healthy_answers(d: &Daemon, text: &str) {
    let t0 = Instant::now();
    let c = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(c.call("echo", json!({"text": text}))["content"][0]["text"], text);
    assert!(t0.elapsed() < Duration::from_secs(1), "the healthy server took {:?}", t0.elapsed());
}

/// `mcpctl stop` stops the daemon gracefully (no SIGKILL) within `within`.
fn stop_within(p: &Project, d: &Daemon, within: Duration) {
    let t0 = Instant::now();
    let r = p.cmd().args(["stop"]).success();
    let took = t0.elapsed();
    assert!(!r.stdout().contains("killed"), "stop had to kill the daemon: {}", r.stdout());
    assert!(took < within, "stop took {:?}", took);
    assert!(!alive(d.pid));
}

#[test]
fn a_child_that_stops_reading_its_input_freezes_nothing() {
    let p = Project::new(&json!({}));
    let (wpid, fpid) = (p.root.join("wedged.pid"), p.root.join("fx.pid"));
    p.write_config(&json!({"mcpServers": {
        // initialize, notifications/initialized, tools/list: then it reads no more.
        "wedged": {"command": fixture_bin(), "args": ["--no-read-after", "3", "--pid-file", wpid], "alwaysAllow": ["*"], "timeout": 3},
        "fx": {"command": fixture_bin(), "args": ["--pid-file", fpid], "alwaysAllow": ["*"], "timeout": 2},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let first_wedged = read_pid(&wpid);
    // A call big enough to fill the pipe: the write to the child blocks.
    let url = d.url("/mcp/wedged");
    let t0 = Instant::now();
    let stuck = std::thread::spawn(move || {
        let c = McpClient::open(url);
        let v = c.request("tools/call", json!({"name": "echo", "arguments": {"text": "x".repeat(6 << 20)}}));
        (v, t0.elapsed())
    });
    // Wait until the daemon's writer to the child is stuck in the write (the big body takes
    // a while to parse in a debug build first).
    let since = Instant::now();
    eventually("the write to the child to block", Duration::from_secs(20), || {
        match thread_wchan(d.pid, "stdin-wedged") {
            Some(w) if w.contains("pipe_write") => true,
            // A kernel that hides wchan shows `0` throughout (as for a running thread): then
            // time stands in for it.
            Some(w) if w.trim() == "0" => since.elapsed() > Duration::from_secs(3),
            _ => false,
        }
    });
    // More input for it is refused at once, with a clear error.
    let c = McpClient::open(d.url("/mcp/wedged"));
    let t1 = Instant::now();
    let refused = c.request("tools/call", json!({"name": "echo", "arguments": {"text": "y".repeat(3 << 20)}}));
    // Refused before the server's 3 s timeout could have passed (parsing the 3 MiB body in a
    // debug build on 2 busy cores takes a good part of a second already).
    assert!(t1.elapsed() < Duration::from_millis(2900), "the refusal took {:?}", t1.elapsed());
    assert!(refused.to_string().contains("not reading its input"), "{}", refused);
    // Meanwhile the healthy server answers and so does /status.
    for i in 0..5 {
        healthy_answers(&d, &format!("alive {}", i));
        status_within(&p, Duration::from_secs(2));
        let t = Instant::now();
        let all = McpClient::open(d.url("/mcp"));
        let tools = all.request("tools/list", json!({}));
        assert!(tools["result"]["tools"].to_string().contains("fx__echo"), "{}", tools);
        assert!(t.elapsed() < Duration::from_secs(2), "/mcp tools/list took {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (v, took) = stuck.join().unwrap();
    assert_eq!(v["error"]["code"], -32001, "{}", v);
    assert!(took >= Duration::from_secs(3) && took < Duration::from_millis(4500), "the wedged call took {:?}", took);
    // Stuck past its timeout: the wedged child is restarted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = status_within(&p, Duration::from_secs(2));
        let w = server(&st, "wedged");
        if w["restarts"].as_u64() >= Some(1) {
            assert!(
                w["error"].to_string().contains("stopped reading its input") || w["status"] != "restarting",
                "{}",
                w
            );
            break;
        }
        assert!(Instant::now() < deadline, "the wedged server was never restarted: {}", st);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_gone(&[first_wedged], Duration::from_secs(5));
    healthy_answers(&d, "still here");
    d.wait_ready(&[]);
    let pids = [read_pid(&wpid), read_pid(&fpid)];
    stop_within(&p, &d, Duration::from_secs(9));
    wait_gone(&pids, Duration::from_secs(1));
}

#[test]
fn a_child_that_exits_while_a_grandchild_holds_its_stdout_is_restarted() {
    let p = Project::new(&json!({}));
    let gpid = p.root.join("grandchild.pid");
    p.write_config(&json!({"mcpServers": {
        "wrapped": {
            "command": repo().join("fixtures/grandchild_wrapper.sh"), "args": [fixture_bin()],
            "env": {"GRANDCHILD_PID_FILE": gpid}, "alwaysAllow": ["*"], "timeout": 3,
        },
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 3},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let grandchild = read_pid(&gpid);
    assert!(alive(grandchild));
    let c = McpClient::open(d.url("/mcp/wrapped"));
    let t0 = Instant::now();
    let v = c.request("tools/call", json!({"name": "crash", "arguments": {"code": 7}}));
    assert!(t0.elapsed() < Duration::from_secs(2), "the crash was noticed after {:?}: {}", t0.elapsed(), v);
    assert!(v.to_string().contains("exited (status 7)"), "{}", v);
    healthy_answers(&d, "unaffected");
    // The helper went with its group, and the server comes back.
    wait_gone(&[grandchild], Duration::from_secs(2));
    let st = d.wait_ready(&[]);
    assert_eq!(server(&st, "wrapped")["restarts"], 1, "{}", st);
    let c = McpClient::open(d.url("/mcp/wrapped"));
    assert_eq!(c.call("echo", json!({"text": "back"}))["content"][0]["text"], "back");
    let second = read_pid(&gpid);
    let children: Vec<i32> = children_of(d.pid).into_iter().map(|(p, _)| p).collect();
    stop_within(&p, &d, Duration::from_secs(9));
    let mut all = children;
    all.push(second);
    wait_gone(&all, Duration::from_secs(1));
}

#[test]
fn huge_lines_restart_the_child_and_a_non_utf8_line_loses_nothing_else() {
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "args": ["--bad-utf8"], "alwaysAllow": ["*"], "timeout": 5},
    }}));
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_MAX_LINE", "1048576")]);
    d.wait_ready(&[]);
    let c = McpClient::open(d.url("/mcp/fx"));
    // The line after a non-UTF-8 one (the answer) arrives.
    let v = c.request("tools/call", json!({"name": "garbage", "arguments": {}}));
    assert_eq!(v["result"]["content"][0]["text"], "garbage sent", "{}", v);
    // Under the cap: answered, and the reading buffer gives the memory back.
    let v = c.request("tools/call", json!({"name": "big", "arguments": {"bytes": 900_000}}));
    assert_eq!(v["result"]["content"][0]["text"].as_str().map(str::len), Some(900_000));
    // Over it: the call fails at once with the reason and the child is restarted.
    let t0 = Instant::now();
    let v = c.request("tools/call", json!({"name": "big", "arguments": {"bytes": 2_000_000}}));
    assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
    assert!(v.to_string().contains("longer than 1048576 bytes"), "{}", v);
    // The call failed at once; the supervisor sees the child go a moment later.
    support::eventually("the child's restart", Duration::from_secs(10), || {
        let st = d.wait_ready(&[]);
        server(&st, "fx")["restarts"] == 1
    });
    healthy_answers(&d, "after the long line");
    let children: Vec<i32> = children_of(d.pid).into_iter().map(|(p, _)| p).collect();
    stop_within(&p, &d, Duration::from_secs(9));
    wait_gone(&children, Duration::from_secs(1));
}

/// Where the daemon's thread `name` (e.g. `stdin-<server>`, the writer to a child's stdin)
/// waits in the kernel (/proc/<pid>/task/<tid>/wchan: `anon_pipe_write` or `pipe_write`
/// while a write to a full pipe blocks; `0` while it runs).
fn thread_wchan(pid: i32, name: &str) -> Option<String> {
    for t in std::fs::read_dir(format!("/proc/{}/task", pid)).ok()?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return std::fs::read_to_string(t.path().join("wchan")).ok();
        }
    }
    None
}

fn vm_rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid)).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_big_line_does_not_stay_resident() {
    let p = Project::fixture(json!({"timeout": 20}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let c = McpClient::open(d.url("/mcp/fx"));
    let before = vm_rss_kib(d.pid);
    let body = ureq::post(&c.url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("Mcp-Session-Id", &c.sid)
        .send(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "big", "arguments": {"bytes": 48_000_000}}}).to_string().as_str())
        .unwrap()
        .into_body()
        .with_config()
        .limit(200_000_000)
        .read_to_string()
        .unwrap();
    assert!(body.len() > 48_000_000, "{}", body.len());
    drop(body);
    // Freed once the answer is written: wait (bounded) for the resident size to come down.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rss = vm_rss_kib(d.pid);
    while rss >= before + 30 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        rss = vm_rss_kib(d.pid);
    }
    assert!(
        rss < before + 30 * 1024,
        "the daemon keeps {} KiB resident after a 48 MB line ({} KiB before)",
        rss,
        before
    );
    healthy_answers(&d, "fine");
}

#[test]
fn a_flood_of_list_changed_keeps_the_thread_count_small() {
    let p = Project::new(&json!({"mcpServers": {
        "flood": {"command": fixture_bin(), "args": ["--flood-list-changed", "2000"], "alwaysAllow": ["*"], "timeout": 5},
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"], "timeout": 5},
    }}));
    let d = Daemon::start(&p, &[]);
    let threads = || std::fs::read_dir(format!("/proc/{}/task", d.pid)).map(|r| r.count()).unwrap_or(0);
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        most = most.max(threads());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(most < 60, "the daemon ran {} threads for a flood of notifications", most);
    let st = d.wait_ready(&[]);
    assert_eq!(server(&st, "flood")["tools_count"], 20, "{}", st);
    healthy_answers(&d, "calm");
    // Refreshes still happen: a tool appears after its notification.
    let c = McpClient::open(d.url("/mcp/flood"));
    c.call("toggle_tool", json!({}));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tools = c.request("tools/list", json!({}))["result"]["tools"].clone();
        if tools.as_array().unwrap().iter().any(|t| t["name"] == "extra") {
            break;
        }
        assert!(Instant::now() < deadline, "the tool list was never refreshed: {}", tools);
        std::thread::sleep(Duration::from_millis(50));
    }
    let children: Vec<i32> = children_of(d.pid).into_iter().map(|(p, _)| p).collect();
    stop_within(&p, &d, Duration::from_secs(9));
    wait_gone(&children, Duration::from_secs(1));
}

#[test]
fn stop_stops_slow_children_in_parallel_and_leaves_none() {
    // Each ignores stdin EOF and SIGTERM: each takes the whole staged shutdown (about 4 s).
    let slow = json!({"command": fixture_bin(), "args": ["--ignore-stdin-close"], "alwaysAllow": ["*"]});
    let mut per_session = slow.clone();
    per_session["isolation"] = json!("session");
    let delayed = json!({"command": fixture_bin(), "args": ["--exit-delay", "1500"], "alwaysAllow": ["*"]});
    let p = Project::new(
        &json!({"mcpServers": {"a": slow, "b": slow, "own": per_session, "late": delayed, "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]}}}),
    );
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    // Two sessions with their own child each.
    let sessions: Vec<McpClient> = (0..2).map(|_| McpClient::open(d.url("/mcp/own"))).collect();
    for s in &sessions {
        assert_eq!(s.call("echo", json!({"text": "mine"}))["content"][0]["text"], "mine");
    }
    let children: Vec<i32> = children_of(d.pid).into_iter().map(|(p, _)| p).collect();
    assert_eq!(children.len(), 7, "{:?}", children);
    stop_within(&p, &d, Duration::from_secs(8));
    wait_gone(&children, Duration::from_secs(1));
}

#[test]
fn children_die_with_a_killed_daemon() {
    let p = Project::new(&json!({"mcpServers": {
        "a": {"command": fixture_bin(), "args": ["--ignore-stdin-close"], "alwaysAllow": ["*"]},
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let children: Vec<i32> = children_of(d.pid).into_iter().map(|(p, _)| p).collect();
    assert_eq!(children.len(), 2, "{:?}", children);
    unsafe { libc::kill(d.pid, libc::SIGKILL) };
    wait_gone(&children, Duration::from_secs(1));
}

/// Whether we can make a PID namespace (root, util-linux `unshare`).
fn unshare_works() -> bool {
    std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn as_pid_1_the_daemon_reaps_orphans_and_stops_on_sigterm() {
    if !unshare_works() {
        return support::missing_optional("`unshare --pid --fork --mount-proc` is not allowed here (needs root)");
    }
    // The wrapper leaves an orphan behind: it is re-parented to PID 1 and exits soon.
    let script = format!("(sleep 0.2 &); exec {}", fixture_bin().display());
    let p = Project::new(&json!({"mcpServers": {
        "orphans": {"command": "sh", "args": ["-c", script], "alwaysAllow": ["*"]},
    }}));
    let port = free_port();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(mcpctl_bin())
        .args(["start", "--foreground", "--port", &port.to_string()])
        .current_dir(&p.root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut unshare = cmd.spawn().unwrap();
    // The daemon is the one child of `unshare`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let daemon = loop {
        if let Some((pid, _)) = children_of(unshare.id() as i32).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "no daemon under unshare");
        std::thread::sleep(Duration::from_millis(20));
    };
    let kill_all = |sig| unsafe { libc::kill(daemon, sig) };
    let health = format!("http://127.0.0.1:{}/health", port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ureq::get(&health).call().is_err() {
        if Instant::now() > deadline {
            kill_all(libc::SIGKILL);
            let _ = unshare.wait();
            panic!("the daemon never answered /health");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Once the wrapper has become the fixture server (`exec`), its orphan exists, a child of
    // PID 1; it exits after 0.2 s. Wait (bounded) until the server is PID 1's only child.
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{}/comm", pid)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(daemon);
        if kids.len() == 1 && comm(kids[0].0).starts_with("mcpctl-fixture") {
            break;
        }
        if Instant::now() > deadline {
            break; // the zombies, if that is what is left, are reported below
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let zombies: Vec<i32> = children_of(daemon).into_iter().filter(|(_, s)| *s == 'Z').map(|(p, _)| p).collect();
    let stopped = {
        kill_all(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(9);
        loop {
            if let Some(s) = unshare.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                kill_all(libc::SIGKILL);
                let _ = unshare.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(zombies.is_empty(), "PID 1 left zombies: {:?}", zombies);
    let status = stopped.expect("SIGTERM did not stop PID 1 within 9 s");
    assert_eq!(status.code(), Some(0), "{:?}", status);
}

/// A shell call that reached the daemon is never sent a second time another way: the
/// daemon dies (SIGKILL) while `sleep` runs through `/cli/call`, and the CLI reports that
/// the tool may have run instead of starting the server itself and running it again.
#[test]
fn a_call_that_reached_the_daemon_is_never_run_twice() {
    let dir = std::env::temp_dir().join(format!("mcpctl-twice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("fx.pid");
    let p = Project::fixture(json!({"args": ["--pid-file", pid_file.to_str().unwrap()]}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let first = std::fs::read_to_string(&pid_file).unwrap();
    let call = {
        let cmd = p.cmd().args(["call", "fx", "sleep", "--ms", "3000"]);
        std::thread::spawn(move || cmd.output())
    };
    // The daemon's server runs the call.
    let fx: i32 = first.trim().parse().unwrap();
    eventually("the call to reach the server", Duration::from_secs(10), || fixture_sleeps_running(fx) == 1);
    // SAFETY: plain syscall on the daemon this test started.
    unsafe { libc::kill(d.pid, libc::SIGKILL) };
    let run = call.join().unwrap();
    assert_eq!(run.out.status.code(), Some(1), "{}", run.dump());
    assert!(run.stderr().contains("went to the daemon") && run.stderr().contains("may have run"), "{}", run.dump());
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), first, "the CLI started the server itself: {}", run.dump());
    let _ = std::fs::remove_dir_all(&dir);
}
