//! The shell client's credentials for remote servers without a browser: `bearerTokenFile`
//! and `headersHelper`, against a running mcpctl daemon that requires a bearer token
//! (`MCPCTL_TOKEN`), on 127.0.0.1. Each test checks what a user sees, and that the secret
//! values appear nowhere: not in output, `status`, `-v` logs or errors.

use crate::support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Daemon, Project};

const TOKEN: &str = "right-token-0123456789abcdef";

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn bearer_token_file_and_headers_helper_authenticate_and_stay_secret() {
    let upstream = Project::fixture(json!({}));
    let d = Daemon::start_env(&upstream, &[], &[("MCPCTL_TOKEN", TOKEN)]);
    d.wait_ready(&[("MCPCTL_TOKEN", TOKEN)]);
    let url = d.url("/mcp/fx");
    let p = Project::new(&json!({"mcpServers": {
        "file": {"url": url, "bearerTokenFile": "secret/token", "alwaysAllow": ["*"]},
        // Wrong the first time (a 401), right when run again: read again once after the 401.
        "helper": {"url": url, "headersHelper": "sh helper.sh", "alwaysAllow": ["*"]},
        "lines": {"url": url, "headersHelper": format!("echo 'X-Other: 1'; echo 'Authorization: Bearer {}'", TOKEN), "alwaysAllow": ["*"]},
        "none": {"url": url, "alwaysAllow": ["*"]},
    }}));
    std::fs::create_dir_all(p.root.join("secret")).unwrap();
    let token_file = p.root.join("secret/token");
    std::fs::write(&token_file, format!("{}\n", TOKEN)).unwrap();
    chmod(&token_file, 0o600);
    std::fs::write(
        p.root.join("helper.sh"),
        format!(
            "n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs\n\
             if [ $n -eq 1 ]; then echo 'Authorization: Bearer wrong'; else echo '{{\"Authorization\": \"Bearer {}\"}}'; fi\n",
            TOKEN
        ),
    )
    .unwrap();

    // Without credentials the daemon refuses; the error says where they go.
    p.cmd()
        .args(["call", "none", "echo", "--text", "x"])
        .status(1)
        .stderr_has("HTTP 401")
        .stderr_has("`headersHelper` or `bearerTokenFile`");
    let r = p.cmd().args(["-v", "call", "file", "echo", "--text", "via file"]).success();
    assert_eq!(r.stdout(), "via file\n");
    assert!(!r.stderr().contains(TOKEN), "token in the logs:\n{}", r.stderr());
    let r = p.cmd().args(["-v", "call", "helper", "echo", "--text", "via helper"]).success();
    assert_eq!(r.stdout(), "via helper\n");
    assert!(!r.stderr().contains(TOKEN), "token in the logs:\n{}", r.stderr());
    assert_eq!(std::fs::read_to_string(p.root.join("runs")).unwrap().trim(), "2", "the helper runs again after a 401");
    assert_eq!(p.cmd().args(["call", "lines", "echo", "--text", "via lines"]).success().stdout(), "via lines\n");

    // status masks the helper; no output holds the token.
    for server in ["file", "helper", "lines"] {
        let r = p.cmd().args(["--json-output", "status", server]).success();
        assert!(!r.stdout().contains(TOKEN) && !r.stderr().contains(TOKEN), "{}", r.dump());
        let r = p.cmd().args(["status", server]).success();
        assert!(!r.stdout().contains(TOKEN) && !r.stderr().contains(TOKEN), "{}", r.dump());
    }
    let j = p.cmd().args(["--json-output", "status", "lines"]).success().json();
    assert_eq!(j["server"]["headersHelper"], "****");
    let j = p.cmd().args(["--json-output", "status", "file"]).success().json();
    assert_eq!(j["server"]["bearerTokenFile"], "secret/token");
    let r = p.cmd().args(["--json-output", "list"]).success();
    assert!(!r.stdout().contains(TOKEN), "{}", r.stdout());

    // A token file others can read is refused, and the token is not shown.
    chmod(&token_file, 0o644);
    let r = p.cmd().args(["call", "file", "echo", "--text", "x"]).status(1);
    r.stderr_has("`bearerTokenFile`").stderr_has("can be read by others (mode 644)").stderr_has("chmod 600");
    assert!(!r.stderr().contains(TOKEN));
}

#[test]
fn a_failing_or_hanging_helper_fails_clearly_within_the_deadline() {
    // No server needed: the helper runs before anything is sent.
    let url = "http://127.0.0.1:9/mcp";
    let p = Project::new(&json!({"mcpServers": {
        "bad": {"url": url, "headersHelper": "echo 'Authorization: Bearer sekrit-value'; echo 'no credentials here' >&2; exit 3"},
        "garbled": {"url": url, "headersHelper": "echo sekrit-value"},
        "slow": {"url": url, "headersHelper": "echo $$ > helper.pid; exec sleep 30", "timeout": 1},
    }}));
    let r = p.cmd().args(["--yes", "call", "bad", "t"]).status(1);
    r.stderr_has("✗ server `bad`: `headersHelper` failed (exit status 3)")
        .stderr_has("headersHelper: no credentials here");
    assert!(!r.stderr().contains("sekrit"), "{}", r.dump());
    let j = p.cmd().args(["--json-output", "--yes", "call", "bad", "t"]).status(1).json();
    assert!(!j.to_string().contains("sekrit"), "{}", j);
    let r = p.cmd().args(["--yes", "call", "garbled", "t"]).status(1);
    r.stderr_has("the output of `headersHelper` has a line 1 that is not `Name: value`");
    assert!(!r.stderr().contains("sekrit"), "{}", r.dump());

    let started = Instant::now();
    p.cmd().args(["--yes", "call", "slow", "t"]).status(1).stderr_has("`headersHelper` did not finish within 1s");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let pid: i32 = std::fs::read_to_string(p.root.join("helper.pid")).unwrap().trim().parse().unwrap();
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the helper {} is still running", pid);
}

#[test]
fn credentials_are_for_url_servers_only() {
    let p = Project::new(&json!({"mcpServers": {"s": {"command": "x", "headersHelper": "echo"}}}));
    p.cmd()
        .args(["list"])
        .status(1)
        .stderr_has("server `s`: `headersHelper` is for `url` servers; a stdio server takes its credentials in `env`");
    let p = Project::new(&json!({"mcpServers": {"s": {"url": "http://127.0.0.1:9/mcp", "bearerTokenFile": 3}}}));
    p.cmd().args(["list"]).status(1).stderr_has("`bearerTokenFile` must be a string");
}
