//! The daemon commands when the config is broken or gone, and `--dry-run` on the commands
//! that act (`start`, `stop`, `runtime install`).

mod support;

use serde_json::json;
use support::{Daemon, Project};

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap_or_default();
    !stat.is_empty() && !stat.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with(['Z', 'X'])).unwrap_or(true)
}

fn wait_gone(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    !alive(pid)
}

#[test]
fn status_and_stop_work_while_the_config_is_broken_or_missing() {
    for broken in [true, false] {
        let p = Project::fixture(json!({}));
        let d = Daemon::start(&p, &[]);
        let cfg = p.root.join(".mcpctl/config.json");
        if broken {
            std::fs::write(&cfg, "{\"mcpServers\": {,}}").unwrap();
        } else {
            std::fs::remove_file(&cfg).unwrap();
        }
        let r = p.cmd().args(["status"]).success();
        r.stdout_has("Daemon: running");
        let v = p.cmd().args(["--json-output", "status"]).success().json();
        assert_eq!(v["daemon"]["pid"], d.pid, "{}", v);
        assert!(v["config_error"].as_str().is_some(), "{}", v);
        p.cmd().args(["stop"]).success().stdout_has("stopped");
        assert!(wait_gone(d.pid), "the daemon was stopped (broken: {})", broken);
        // With nothing running, the config's own error is the answer.
        if broken {
            p.cmd().args(["status"]).status(1).stderr_has("invalid JSON");
        }
    }
}

#[test]
fn runtime_commands_fail_on_a_broken_or_missing_config() {
    let p = Project::fixture(json!({}));
    let rt = p.root.join("rt");
    std::fs::write(p.root.join(".mcpctl/config.json"), "{\"mcpServers\": 1}").unwrap();
    for cmd in [["runtime", "status"], ["runtime", "install"]] {
        let r = p.cmd().args(cmd).env("MCPCTL_RUNTIME_ROOT", &rt).status(1);
        r.stderr_has("`mcpServers` must be an object");
    }
    std::fs::remove_file(p.root.join(".mcpctl/config.json")).unwrap();
    for cmd in [["runtime", "status"], ["runtime", "install"]] {
        p.cmd().args(cmd).env("MCPCTL_RUNTIME_ROOT", &rt).status(1).stderr_has("No mcpctl project found");
    }
}

#[test]
fn dry_run_start_and_stop_act_not() {
    let p = Project::fixture(json!({}));
    let port = support::free_port().to_string();
    let r = p.cmd().args(["--dry-run", "start", "--port", &port]).success();
    r.stdout_has("Dry run: would start the mcpctl daemon");
    assert!(!p.root.join(".mcpctl/daemon.json").exists(), "nothing started");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(), "nothing listens");
    let d = Daemon::start(&p, &[]);
    p.cmd().args(["stop", "--dry-run"]).success().stdout_has(&format!("would stop the mcpctl daemon (pid {})", d.pid));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(alive(d.pid), "the daemon still runs");
    p.cmd().args(["status"]).success().stdout_has("Daemon: running");
    let r = p.cmd().args(["runtime", "install", "--dry-run"]).env("MCPCTL_RUNTIME_ROOT", p.root.join("rt")).status(1);
    r.stderr_has("has no --dry-run");
    assert!(!p.root.join("rt").exists(), "nothing installed");
}

/// A state file whose pid now belongs to another process (the daemon died, the pid was
/// given out again): `stop` must not signal that process, and `status` must call it stale.
#[test]
fn stop_never_signals_a_process_that_took_the_daemons_pid() {
    let p = Project::fixture(json!({}));
    let mut bystander = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let pid = bystander.id();
    let real_start: u64 = {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap();
        stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    let state = json!({
        "pid": pid, "host": "127.0.0.1", "port": 9, "url": "http://127.0.0.1:9/mcp",
        "token_mode": "none", "project_dir": p.root, "config": p.root.join(".mcpctl/config.json"),
        "started_at": 0, "log_path": p.root.join(".mcpctl/logs/daemon.log"), "version": "0",
        "servers": [], "pid_start": real_start + 1,
    });
    std::fs::write(p.root.join(".mcpctl/daemon.json"), state.to_string()).unwrap();
    p.cmd().args(["status"]).success().stdout_has("stale");
    p.cmd().args(["stop"]).success().stdout_has("not running");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let still = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(still, "`stop` signalled pid {}, which is not the daemon", pid);
    assert!(!p.root.join(".mcpctl/daemon.json").exists(), "the stale state file is removed");
}

/// A state file naming a live process, but nothing listens on its port (a daemon stuck
/// before it listens, a port closed under it): the shell client cannot reach it, so it
/// connects directly, for a listing (the MCP endpoint) and a tool call (`/cli/call` first)
/// alike, instead of failing.
#[test]
fn a_daemon_that_cannot_be_reached_makes_the_cli_connect_directly() {
    struct Bystander(std::process::Child, std::path::PathBuf);
    impl Drop for Bystander {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.1);
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let p = Project::fixture(json!({}));
    let state_path = p.root.join(".mcpctl/daemon.json");
    let b = Bystander(std::process::Command::new("sleep").arg("30").spawn().unwrap(), state_path.clone());
    let pid = b.0.id();
    let start: u64 = {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).unwrap();
        stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap()
    };
    let port = support::free_port(); // nothing listens there
    let state = json!({
        "pid": pid, "host": "127.0.0.1", "port": port, "url": format!("http://127.0.0.1:{}/mcp", port),
        "token_mode": "none", "project_dir": p.root, "config": p.root.join(".mcpctl/config.json"),
        "started_at": 0, "log_path": p.root.join(".mcpctl/logs/daemon.log"), "version": "0",
        "servers": [], "pid_start": start,
    });
    std::fs::write(&state_path, state.to_string()).unwrap();
    p.cmd().args(["status"]).success().stdout_has(&format!("pid {} does not answer", pid));

    let r = p.cmd().args(["-v", "tools", "fx"]).success();
    r.stderr_has("the daemon did not answer (cannot reach server `fx`").stderr_has("connecting directly");
    r.stdout_has("echo");
    let r = p.cmd().args(["-v", "call", "fx", "echo", "--text", "direct"]).success();
    r.stderr_has("connecting the usual way").stderr_has("connecting directly");
    assert_eq!(r.stdout(), "direct\n");
    drop(b);
}
