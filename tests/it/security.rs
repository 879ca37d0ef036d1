//! What a client or a child can get at that it should not: mcpctl's token in a child's
//! environment, state files reached through planted symlinks, forged lines in the log.

use crate::support;

use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use support::{fixture_bin, Daemon, Project};

const TOKEN: &str = "s3cret-token-0123456789abcdef";

fn env_project(policy: Option<&str>) -> Project {
    let mut server = json!({"command": fixture_bin(), "args": ["--env-tool"], "alwaysAllow": ["*"],
        "env": {"OWN_VAR": "own"}});
    if let Some(p) = policy {
        server["envPolicy"] = json!(p);
    }
    Project::new(&json!({"mcpServers": {"fx": server}}))
}

fn env_of(p: &Project, name: &str, extra: &[&str]) -> String {
    p.cmd()
        .args(extra.iter().copied())
        .args(["call", "fx", "env", "--name", name])
        .env("MCPCTL_TOKEN", TOKEN)
        .env("MCPCTL_TOKEN_MODE", "env")
        .env("MCPCTL_TOKEN_CI", "named-secret")
        .env("SOME_VAR", "visible")
        .success()
        .stdout()
        .trim()
        .to_string()
}

#[test]
fn a_direct_child_never_sees_the_token() {
    let p = env_project(None);
    for k in ["MCPCTL_TOKEN", "MCPCTL_TOKEN_MODE", "MCPCTL_TOKEN_CI"] {
        assert_eq!(env_of(&p, k, &["--no-daemon"]), "(unset)", "{}", k);
    }
    assert_eq!(env_of(&p, "SOME_VAR", &["--no-daemon"]), "visible");
    assert_eq!(env_of(&p, "OWN_VAR", &["--no-daemon"]), "own");
}

#[test]
fn the_daemons_children_never_see_the_token() {
    let p = env_project(None);
    let _d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN", TOKEN), ("MCPCTL_TOKEN_CI", "named-secret")]);
    let r = p.cmd().args(["-v", "call", "fx", "env", "--name", "MCPCTL_TOKEN"]).env("MCPCTL_TOKEN", TOKEN).success();
    assert!(r.stderr().contains("daemon"), "went through the daemon: {}", r.dump());
    assert_eq!(r.stdout().trim(), "(unset)");
    assert_eq!(env_of(&p, "MCPCTL_TOKEN_CI", &[]), "(unset)");
    assert_eq!(env_of(&p, "OWN_VAR", &[]), "own");
}

#[test]
fn per_session_children_never_see_the_token() {
    let server = json!({"command": fixture_bin(), "args": ["--env-tool"], "alwaysAllow": ["*"],
        "isolation": "session"});
    let p = Project::new(&json!({"mcpServers": {"fx": server}}));
    // A named token in the daemon's environment (the daemon itself serves without one here).
    let d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN_CI", "named-secret"), ("SOME_VAR", "visible")]);
    let c = support::McpClient::open(d.url("/mcp/fx"));
    let v = c.call("env", json!({"name": "MCPCTL_TOKEN_CI"}));
    assert_eq!(v["content"][0]["text"], "(unset)", "{}", v);
    let v = c.call("env", json!({"name": "SOME_VAR"}));
    assert_eq!(v["content"][0]["text"], "visible", "{}", v);
}

#[test]
fn minimal_env_policy_keeps_only_the_basics_and_the_servers_env() {
    let p = env_project(Some("minimal"));
    assert_eq!(env_of(&p, "SOME_VAR", &["--no-daemon"]), "(unset)");
    assert_eq!(env_of(&p, "MCPCTL_TOKEN", &["--no-daemon"]), "(unset)");
    assert_eq!(env_of(&p, "OWN_VAR", &["--no-daemon"]), "own");
    assert_ne!(env_of(&p, "PATH", &["--no-daemon"]), "(unset)");
    let bad = env_project(Some("none"));
    let r = bad.cmd().args(["call", "fx", "env", "--name", "PATH"]).status(1);
    r.stderr_has("`envPolicy` `none` is not one of \"inherit\", \"minimal\"");
}

/// A file of someone else's that a planted link points at: (path, content).
fn victim(p: &Project) -> std::path::PathBuf {
    let v = p.root.join("victim.txt");
    std::fs::write(&v, "precious\n").unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o644)).unwrap();
    v
}

fn assert_untouched(v: &std::path::Path) {
    assert_eq!(std::fs::read_to_string(v).unwrap(), "precious\n", "victim's content changed");
    let mode = std::fs::metadata(v).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "victim's mode changed");
}

#[test]
fn a_link_planted_at_the_state_file_is_replaced_not_followed() {
    let p = Project::fixture(json!({}));
    let v = victim(&p);
    for name in ["daemon.json", "daemon.json.tmp"] {
        std::os::unix::fs::symlink(&v, p.root.join(".mcpctl").join(name)).unwrap();
    }
    let d = Daemon::start(&p, &[]);
    assert_untouched(&v);
    let state = p.root.join(".mcpctl/daemon.json");
    let meta = std::fs::symlink_metadata(&state).unwrap();
    assert!(meta.is_file(), "daemon.json is a plain file now");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    p.cmd().args(["stop"]).success();
    drop(d);
    assert_untouched(&v);
}

#[test]
fn a_link_planted_at_the_log_or_lock_is_refused() {
    for file in ["logs/daemon.log", "daemon.lock"] {
        let p = Project::fixture(json!({}));
        let v = victim(&p);
        std::fs::create_dir_all(p.root.join(".mcpctl/logs")).unwrap();
        std::os::unix::fs::symlink(&v, p.root.join(".mcpctl").join(file)).unwrap();
        let port = support::free_port().to_string();
        let r = p.cmd().args(["start", "--port", &port]).status(1);
        r.stderr_has("is a symbolic link");
        assert_untouched(&v);
        if file == "daemon.lock" {
            let r = p.cmd().args(["start", "--foreground", "--port", &port]).status(1);
            r.stderr_has("is a symbolic link");
            assert_untouched(&v);
        }
    }
}

#[test]
fn a_symlinked_state_folder_is_refused() {
    let p = Project::fixture(json!({}));
    let real = p.root.join("elsewhere");
    std::fs::rename(p.root.join(".mcpctl"), &real).unwrap();
    std::os::unix::fs::symlink(&real, p.root.join(".mcpctl")).unwrap();
    let port = support::free_port().to_string();
    let r = p.cmd().args(["start", "--port", &port]).status(1);
    r.stderr_has(".mcpctl is a symbolic link");
    assert!(!real.join("daemon.json").exists() && !real.join("logs").exists(), "nothing written through the link");
}

#[test]
fn client_strings_cannot_forge_log_lines_or_send_terminal_escapes() {
    use std::io::{Read, Write};
    let p = Project::fixture(json!({}));
    let d = Daemon::start(&p, &[]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: evil\x1b]0;pwn\x07\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    // Control characters in a header value are refused before anything is logged.
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.contains(" 400 ") && answer.contains("control character"), "{}", answer);
    let c = support::McpClient::open(d.url("/mcp/fx"));
    let forged = "echo\r\n[2026-01-01T00:00:00.000Z INFO ] FORGED line\x1b[2J";
    let _ = c.request("tools/call", json!({"name": forged, "arguments": {}}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let out = p.cmd().args(["logs"]).success().stdout();
        if out.contains("FORGED") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(log.contains("FORGED"), "the tool name is logged: {}", log);
    assert!(!log.contains('\x1b') && !log.contains('\r') && !log.contains('\x07'), "raw controls in: {:?}", log);
    assert!(!log.lines().any(|l| l.starts_with("[2026-01-01")), "a forged line: {}", log);
}

#[test]
fn server_everythings_get_env_through_the_daemon_does_not_hand_out_the_token() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"everything": {
        "command": support::npm_bin().join("mcp-server-everything"),
        "env": {"PATH": support::path_with_deps()}, "alwaysAllow": ["*"], "timeout": 20}}}));
    let _d = Daemon::start_env(&p, &[], &[("MCPCTL_TOKEN", TOKEN)]);
    let r = p.cmd().args(["-v", "call", "everything", "get-env"]).env("MCPCTL_TOKEN", TOKEN).success();
    assert!(r.stderr().contains("daemon"), "went through the daemon: {}", r.dump());
    assert!(r.stdout().contains("PATH"), "the environment is listed: {}", r.stdout());
    assert!(!r.stdout().contains(TOKEN) && !r.stdout().contains("MCPCTL_TOKEN"), "{}", r.stdout());
}

#[test]
fn mcpctl_logs_prints_no_terminal_escapes_even_from_an_old_log() {
    let p = Project::fixture(json!({}));
    std::fs::create_dir_all(p.root.join(".mcpctl/logs")).unwrap();
    std::fs::write(p.root.join(".mcpctl/logs/daemon.log"), b"one\x1b]0;pwn\x07 line\r\ntwo\n").unwrap();
    let out = p.cmd().args(["logs"]).success().stdout();
    assert_eq!(out, "one\\x1b]0;pwn\\x07 line\ntwo\n");
}
