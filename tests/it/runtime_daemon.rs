//! The managed runtime seen from the gateway daemon and the CLI: a `uvx` server waits for
//! its runtime, is started on first use, a failed install is an in-band tool error (the
//! daemon stays up, other servers keep answering), and the next call succeeds once the
//! mirror is fixed. All offline: a mirror of the test's own on 127.0.0.1 serves a
//! release-shaped archive whose `uvx` runs our fixture server.

use crate::support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::archive::{sha256_hex, targz, Entry, Server, TempDir};
use support::*;

const VERSION: &str = "0.11.21";
const FILE: &str = "uv-test-runtime.tar.gz";

/// An archive whose `uvx` execs the fixture server (so `uvx` servers speak MCP).
fn runtime_archive() -> Vec<u8> {
    let uv = format!("#!/bin/sh\necho \"uv {} (test)\"\n", VERSION).into_bytes();
    let uvx = format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", fixture_bin().display()).into_bytes();
    targz(&[Entry::Dir("uv-test/"), Entry::File("uv-test/uv", &uv, 0o755), Entry::File("uv-test/uvx", &uvx, 0o755)])
}

struct Setup {
    mirror: Server,
    dir: TempDir,
    archive: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let archive = runtime_archive();
        let dir = TempDir::new("rtd");
        let manifest = json!({"version": VERSION, "file": FILE, "sha256": sha256_hex(&archive)});
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        Setup { mirror: Server::start(), dir, archive }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MCPCTL_RUNTIME_ROOT".into(), self.dir.path().join("root").display().to_string()),
            ("MCPCTL_UV_MANIFEST".into(), self.dir.path().join("manifest.json").display().to_string()),
            ("MCPCTL_UV_DOWNLOAD_URL".into(), self.mirror.base_url()),
        ]
    }
}

fn project() -> Project {
    Project::new(&json!({"mcpServers": {
        "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
        "py": {"command": "uvx", "args": [], "alwaysAllow": ["*"], "timeout": 20}
    }}))
}

fn text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or("").to_string()
}

#[test]
fn lazy_runtime_in_the_daemon_fails_in_band_then_recovers() {
    let s = Setup::new();
    let p = project();
    let env = s.env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The mirror is broken at first: the daemon must still start and serve `fx` at once.
    s.mirror.put(&format!("/{}", FILE), 500, b"mirror down".to_vec());
    let d = Daemon::start_env(&p, &[], &envs);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut c = p.cmd().args(["--json-output", "status"]);
            for (k, v) in &envs {
                c = c.env(k, v);
            }
            let v = c.success().json();
            if v["servers"][0]["status"] == "ready" || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status["servers"][0]["status"], "ready", "{}", status);
    assert_eq!(status["servers"][1]["status"], "waiting for runtime", "{}", status);
    assert_eq!(s.mirror.hits(&format!("/{}", FILE)), 0, "the daemon must not download at boot");

    // First call: the install fails → an in-band tool error carrying the message.
    let py = McpClient::open(d.url("/mcp/py"));
    let r = py.call("echo", json!({"text": "hi"}));
    assert_eq!(r["isError"], true, "{}", r);
    assert!(text(&r).contains("500"), "the message says what failed: {}", text(&r));
    assert!(s.mirror.hits(&format!("/{}", FILE)) >= 1);

    // The daemon is up and the other server answers.
    let fx = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(text(&fx.call("echo", json!({"text": "still here"}))), "still here");

    // Fix the mirror, make it slow: the next call installs; `fx` answers meanwhile.
    s.mirror.put(&format!("/{}", FILE), 200, s.archive.clone());
    s.mirror.set_delay(Duration::from_millis(1500));
    let asked = s.mirror.hits(&format!("/{}", FILE));
    let url = d.url("/mcp/py");
    let installing = std::thread::spawn(move || {
        let py = McpClient::open(url);
        py.call("echo", json!({"text": "from uvx"}))
    });
    // The install has begun: the (slow) mirror got its request.
    support::eventually("the install to ask the mirror", Duration::from_secs(10), || {
        s.mirror.hits(&format!("/{}", FILE)) > asked
    });
    let t0 = Instant::now();
    assert_eq!(text(&fx.call("echo", json!({"text": "during install"}))), "during install");
    assert!(t0.elapsed() < Duration::from_millis(1000), "fx waited for the install: {:?}", t0.elapsed());
    let r = installing.join().unwrap();
    assert_ne!(r["isError"], true, "{}", r);
    assert_eq!(text(&r), "from uvx");
    assert!(s.dir.path().join("root/uv").join(VERSION).join("uvx").exists());
}

#[test]
fn never_policy_refuses_the_download_with_a_clear_message() {
    let s = Setup::new();
    s.mirror.put(&format!("/{}", FILE), 200, s.archive.clone());
    let p = project();
    let mut env = s.env();
    env.push(("MCPCTL_RUNTIME_INSTALL".into(), "never".into()));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // From the CLI: refused, forbidden, naming the variable; nothing downloaded.
    let mut c = p.cmd().args(["--json-output", "--no-daemon", "call", "py", "echo", "--text", "x"]);
    for (k, v) in &envs {
        c = c.env(k, v);
    }
    let v = c.status(2).json();
    assert_eq!(v["status"], "forbidden", "{}", v);
    assert!(v["error"].as_str().unwrap().contains("MCPCTL_RUNTIME_INSTALL=never"), "{}", v);

    // Through the daemon: an in-band error, the daemon stays up.
    let d = Daemon::start_env(&p, &[], &envs);
    let py = McpClient::open(d.url("/mcp/py"));
    let r = py.call("echo", json!({"text": "x"}));
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("MCPCTL_RUNTIME_INSTALL=never"), "{}", text(&r));
    assert_eq!(s.mirror.hits(&format!("/{}", FILE)), 0);
    let fx = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(text(&fx.call("echo", json!({"text": "ok"}))), "ok");
}

#[test]
fn cli_without_a_terminal_refuses_then_installs_with_yes() {
    let s = Setup::new();
    s.mirror.put(&format!("/{}", FILE), 200, s.archive.clone());
    let p = project();
    let env = s.env();
    let run = |args: &[&str], code: i32| {
        let mut c = p.cmd().args(args.iter().copied());
        for (k, v) in &env {
            c = c.env(k, v);
        }
        c.status(code)
    };
    // No TTY, no --yes: refused with the command that installs it.
    let v = run(&["--json-output", "call", "py", "echo", "--text", "x"], 2).json();
    assert!(v["error"].as_str().unwrap().contains("mcpctl runtime install --yes"), "{}", v);
    assert_eq!(s.mirror.hits(&format!("/{}", FILE)), 0);
    // --yes: installs (checksum verified) and the call runs through the managed uvx.
    let r = run(&["call", "--yes", "py", "echo", "--text", "via managed uvx"], 0);
    assert_eq!(r.stdout().trim(), "via managed uvx");
    // status reports it.
    let st = run(&["--json-output", "runtime", "status"], 0).json();
    assert_eq!(st["installed"], true, "{}", st);
}

/// The real uv (from PyPI's `uv` wheel, made release-shaped by tests/support/make-uv-mirror.sh,
/// served from a local mirror with a test manifest) runs a real Python MCP server,
/// `mcp-server-time`, through `uvx`: from `mcpctl call` and under the gateway.
/// Needs PyPI (for the wheel and the server's packages); `make test` has it.
#[test]
fn real_uv_runs_mcp_server_time() {
    if !peers_available() {
        return;
    }
    // The mirror folder is cached under .deps (git-ignored): the wheel is 25 MB.
    let mirror = repo().join(".deps/uv-mirror");
    if !mirror.join("manifest.json").exists() {
        let st = std::process::Command::new("sh")
            .arg(repo().join("tests/support/make-uv-mirror.sh"))
            .arg(&mirror)
            .env(
                "PATH",
                format!("{}:{}", venv_python().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default()),
            )
            .status()
            .unwrap();
        assert!(st.success(), "make-uv-mirror.sh failed");
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(mirror.join("manifest.json")).unwrap()).unwrap();
    let file = manifest["file"].as_str().unwrap().to_string();
    let server = Server::start();
    server.put(&format!("/{}", file), 200, std::fs::read(mirror.join(&file)).unwrap());
    let dir = TempDir::new("realuv");
    let mut env = vec![
        ("MCPCTL_RUNTIME_ROOT", dir.path().join("root").display().to_string()),
        ("MCPCTL_UV_MANIFEST", mirror.join("manifest.json").display().to_string()),
        ("MCPCTL_UV_DOWNLOAD_URL", server.base_url()),
    ];
    // uv reaches PyPI through this machine's TLS set-up (a CA bundle in SSL_CERT_FILE here).
    for k in ["SSL_CERT_FILE", "SSL_CERT_DIR", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "HTTPS_PROXY", "https_proxy"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k, v));
        }
    }
    // This sandbox cannot reach Python's own download host, so uv uses the system Python here.
    let p = Project::new(&json!({"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"UV_PYTHON_PREFERENCE": "system"},
                 "alwaysAllow": ["get_current_time"], "timeout": 180}
    }}));
    let mut c = p.cmd().args(["--yes", "--no-daemon", "call", "time", "get_current_time", "--timezone", "UTC"]);
    for (k, v) in &env {
        c = c.env(k, v);
    }
    let r = c.success();
    let out: Value = serde_json::from_str(r.stdout().trim()).unwrap_or_else(|_| panic!("{}", r.dump()));
    assert_eq!(out["timezone"], "UTC", "{}", r.dump());
    assert!(dir.path().join("root/uv").join(manifest["version"].as_str().unwrap()).join("uvx").exists());

    // Under the gateway: the same server, reached by the CLI through the daemon.
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _d = Daemon::start_env(&p, &[], &envs);
    let mut c =
        p.cmd().args(["--json-output", "--verbose", "call", "time", "get_current_time", "--timezone", "Europe/Paris"]);
    for (k, v) in &envs {
        c = c.env(k, v);
    }
    let r = c.success();
    r.stderr_has("using the daemon");
    let v = r.json();
    let t: Value = serde_json::from_str(v["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(t["timezone"], "Europe/Paris", "{}", v);
}
