//! The shell client against real peers from `.deps` (`make deps`):
//! `@modelcontextprotocol/server-everything` over stdio and Streamable HTTP, and the
//! Python SDK fixture (`fixtures/py_server.py`) over stdio. Skipped when the peers are missing.

use crate::support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{npm_bin, path_with_deps, Cmd, Project};

fn everything_project() -> Project {
    Project::new(&json!({"mcpServers": {"ev": {
        "command": npm_bin().join("mcp-server-everything"),
        "env": {"PATH": path_with_deps()},
        "alwaysAllow": ["echo", "get-sum", "get-annotated-message", "get-tiny-image"],
        "timeout": 60
    }}}))
}

fn tool_names(j: &Value) -> Vec<String> {
    j["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn everything_over_stdio() {
    if !support::peers_available() {
        return;
    }
    let p = everything_project();
    let j = p.cmd().args(["--json-output", "tools", "ev"]).success().json();
    let names = tool_names(&j);
    for t in ["echo", "get-sum", "get-tiny-image", "get-annotated-message", "get-env"] {
        assert!(names.contains(&t.to_string()), "{} missing from {:?}", t, names);
    }
    let sum = j["tools"].as_array().unwrap().iter().find(|t| t["name"] == "get-sum").unwrap();
    assert_eq!(sum["inputSchema"]["properties"]["a"]["type"], "number");
    let r = p.cmd().args(["tools", "ev"]).success();
    r.stdout_has("  • echo\n    Echoes back the input string\n    Parameters:\n      --message  string, required  Message to echo\n");
    // An enum with its values, a default before the description, a range.
    r.stdout_has("      --messageType  \"error\" | \"success\" | \"debug\", required\n");
    r.stdout_has("      --includeImage  boolean  (default: false) Whether to include an example\n");
    r.stdout_has("      --count  number 1..10  (default: 3) Number of resource links to return\n");
    r.stdout_has("      --resourceType  \"Text\" | \"Blob\"  (default: \"Text\")\n");
    r.stdout_has("  • get-tiny-image\n    Returns a tiny MCP logo image.\n    Parameters: none\n");
    for line in r.stdout().lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {:?}", line);
    }

    assert_eq!(
        p.cmd().args(["call", "ev", "get-sum", "--a", "2", "--b", "3"]).success().stdout(),
        "The sum of 2 and 3 is 5.\n"
    );
    assert_eq!(
        p.cmd().args(["call", "ev", "get-sum", "--a", "1.5", "--b", "-1"]).success().stdout(),
        "The sum of 1.5 and -1 is 0.5.\n"
    );
    assert_eq!(p.cmd().args(["call", "ev", "echo", "--message", "007"]).success().stdout(), "Echo: 007\n");
    let j = p.cmd().args(["--json-output", "call", "ev", "echo", "--message", "hi"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["arguments"], json!({"message": "hi"}));
    assert_eq!(j["result"]["content"][0], json!({"type": "text", "text": "Echo: hi"}));
    // Images are summarised in text mode.
    p.cmd().args(["call", "ev", "get-tiny-image"]).success().stdout_has("[image: image/png, ");

    // The server rejects a value outside its enum: isError, exit 1.
    let r = p.cmd().args(["--json-output", "call", "ev", "get-annotated-message", "--messageType", "bogus"]).status(1);
    let j = r.json();
    assert_eq!(j["status"], "failure");
    assert_eq!(j["result"]["isError"], true);
    assert!(j["result"]["content"][0]["text"].as_str().unwrap().contains("messageType"), "{}", j);
    // Client-side typing stops a non-number before it reaches the server.
    let r = p.cmd().args(["call", "ev", "get-sum", "--a", "x", "--b", "1"]).status(1);
    r.stderr_has("--a must be number, got `x`");
    // Not in alwaysAllow.
    p.cmd().args(["call", "ev", "get-env"]).status(2).stderr_has("needs approval");
    // server-everything returns its tools in one page; status shows them all.
    let j = p.cmd().args(["--json-output", "status", "ev"]).success().json();
    assert_eq!(j["server"]["status"], "connected");
    assert_eq!(j["server"]["server_info"]["name"], "mcp-servers/everything");
    assert_eq!(j["server"]["tools"].as_array().unwrap().len(), names.len());
    assert_eq!(j["server"]["env"]["PATH"], "****");
}

/// `mcp-server-everything streamableHttp` on a free port, killed by pid on drop.
struct EverythingHttp {
    child: Child,
    url: String,
}

impl EverythingHttp {
    fn start() -> EverythingHttp {
        let port = support::free_port();
        let mut child = Command::new(npm_bin().join("mcp-server-everything"))
            .arg("streamableHttp")
            .env("PATH", path_with_deps())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read stderr until "listening" (bounded), then keep draining it so the server never blocks.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(());
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(30));
        let server = EverythingHttp { child, url: format!("http://127.0.0.1:{}/mcp", port) };
        assert!(ready.is_ok(), "mcp-server-everything did not say it was listening");
        server
    }
}

impl Drop for EverythingHttp {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn everything_over_streamable_http() {
    if !support::peers_available() {
        return;
    }
    let ev = EverythingHttp::start();
    let p = Project::new(&json!({"mcpServers": {"evh": {"url": ev.url, "alwaysAllow": ["get-sum", "echo"]}}}));
    let via_url =
        tool_names(&Cmd::new().cwd(&p.root).args(["--json-output", "--url", &ev.url, "tools"]).success().json());
    let via_cfg = tool_names(&p.cmd().args(["--json-output", "tools", "evh"]).success().json());
    assert!(via_url.contains(&"get-sum".to_string()), "{:?}", via_url);
    assert_eq!(via_url, via_cfg);
    assert_eq!(
        Cmd::new().cwd(&p.root).args(["call", "--url", &ev.url, "get-sum", "--a", "2", "--b", "3"]).success().stdout(),
        "The sum of 2 and 3 is 5.\n"
    );
    assert_eq!(p.cmd().args(["call", "evh", "echo", "--message", "007"]).success().stdout(), "Echo: 007\n");
    let j = p.cmd().args(["--json-output", "status", "evh"]).success().json();
    assert_eq!(j["server"]["status"], "connected");
    assert_eq!(j["server"]["server_info"]["name"], "mcp-servers/everything");
    let r = Cmd::new()
        .cwd(&p.root)
        .args(["--json-output", "call", "--url", &ev.url, "get-annotated-message", "--messageType", "bogus"])
        .status(1);
    assert_eq!(r.json()["result"]["isError"], true);
    // --progress: the long-running tool's progress arrives on the POST's SSE answer.
    let r = p
        .cmd()
        .args([
            "call",
            "evh",
            "trigger-long-running-operation",
            "--duration",
            "1",
            "--steps",
            "2",
            "--progress",
            "--yes",
        ])
        .success();
    assert_eq!(r.stdout(), "Long running operation completed. Duration: 1 seconds, Steps: 2.\n");
    assert_eq!(r.stderr(), "[progress] 1/2\n[progress] 2/2\n");
}

#[test]
fn python_sdk_fixture_over_stdio() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"py": {
        "command": support::venv_python(),
        "args": [support::repo().join("fixtures/py_server.py")],
        "alwaysAllow": ["*"],
        "timeout": 60
    }}}));
    assert_eq!(p.cmd().args(["call", "py", "echo_string", "--value", "007"]).success().stdout(), "str:007\n");
    assert_eq!(p.cmd().args(["call", "py", "echo_string", "--value", "true"]).success().stdout(), "str:true\n");
    assert_eq!(p.cmd().args(["call", "py", "add", "--a", "2", "--b", "3"]).success().stdout(), "5\n");
    assert_eq!(
        p.cmd().args(["call", "py", "tags", "--items", "[\"a\",\"007\"]"]).success().stdout(),
        "{\"items\":[\"a\",\"007\"],\"flag\":false}\n"
    );
    assert_eq!(p.cmd().args(["call", "py", "log_then_echo", "--message", "m"]).success().stdout(), "logged:m\n");
    let j = p.cmd().args(["--json-output", "call", "py", "echo_string", "--value", "007"]).success().json();
    assert_eq!(j["arguments"], json!({"value": "007"}));
    let r = p.cmd().args(["--json-output", "call", "py", "divide", "--a", "1", "--b", "0"]).status(1);
    let j = r.json();
    assert_eq!(j["status"], "failure");
    assert_eq!(j["result"]["isError"], true);
    let j = p.cmd().args(["--json-output", "tools", "py"]).success().json();
    assert_eq!(tool_names(&j), ["echo_string", "add", "divide", "tags", "log_then_echo"]);
}
