//! `mcpctl resources|read|prompts|prompt|complete`: against our fixture server (its
//! `fixture://hello` resource and `greet` prompt), against the real
//! `@modelcontextprotocol/server-everything` (static resources, text and blob templates,
//! prompts with arguments, completions), through the running daemon, with a blob on a
//! terminal (a pseudo-terminal), and against a tiny stdio server that declares neither
//! resources nor prompts. The tests that need the peers from `make deps` are skipped
//! without them.

use crate::support;

use serde_json::{json, Value};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{npm_bin, path_with_deps, Daemon, Project};

/// The fixture as `fx`, with every tool blocked: resources and prompts do not care.
fn fixture_project() -> Project {
    Project::fixture(json!({"alwaysAllow": [], "timeout": 20}))
}

fn everything(always_allow: Value) -> Value {
    json!({
        "command": npm_bin().join("mcp-server-everything"),
        "env": {"PATH": path_with_deps()},
        "alwaysAllow": always_allow,
        "timeout": 60
    })
}

#[test]
fn fixture_resources_read_and_prompts() {
    let p = fixture_project();
    // resources: text and JSON.
    p.cmd()
        .args(["resources", "fx"])
        .success()
        .stdout_has("✓ Found 1 resource and 0 resource templates on server 'fx'")
        .stdout_has("  • fixture://hello\n    hello — Hello (text/plain)\n    A greeting\n");
    let j = p.cmd().args(["--json-output", "resources", "fx"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["server"], "fx");
    assert_eq!(j["resources"][0]["uri"], "fixture://hello");
    assert_eq!(j["resources"][0]["mimeType"], "text/plain");
    assert_eq!(j["resource_templates"], json!([]));

    // read: the text as it is (a newline added, as `call` does).
    assert_eq!(p.cmd().args(["read", "fx", "fixture://hello"]).success().stdout(), "Hello from mcpctl-fixture!\n");
    let j = p.cmd().args(["--json-output", "read", "fx", "fixture://hello"]).success().json();
    assert_eq!(j["uri"], "fixture://hello");
    assert_eq!(
        j["result"],
        json!({"contents": [{"uri": "fixture://hello", "mimeType": "text/plain", "text": "Hello from mcpctl-fixture!"}]})
    );
    // An unknown resource: exit 1 with the server's message.
    let r = p.cmd().args(["read", "fx", "fixture://nope"]).status(1);
    r.stderr_has("cannot read `fixture://nope` from server `fx`: Resource not found: fixture://nope")
        .stderr_has("`mcpctl resources fx` lists");
    assert_eq!(r.stdout(), "");
    let j = p.cmd().args(["--json-output", "read", "fx", "fixture://nope"]).status(1).json();
    assert_eq!(
        (j["status"].as_str(), j["server"].as_str(), j["uri"].as_str()),
        (Some("failure"), Some("fx"), Some("fixture://nope"))
    );
    assert!(j["error"].as_str().unwrap().contains("Resource not found"), "{}", j);
    // --dry-run: the request, not sent.
    let j = p.cmd().args(["--json-output", "--dry-run", "read", "fx", "fixture://nope"]).success().json();
    assert_eq!(j["status"], "dry_run");
    assert_eq!(
        j["request"],
        json!({"jsonrpc": "2.0", "method": "resources/read", "params": {"uri": "fixture://nope"}})
    );

    // prompts.
    p.cmd().args(["prompts", "fx"]).success().stdout_has(
        "  • greet — Greet\n    Greets someone by name\n    Arguments:\n      --name (required)  Who to greet\n",
    );
    let j = p.cmd().args(["--json-output", "prompts", "fx"]).success().json();
    assert_eq!(j["prompts"][0]["name"], "greet");
    assert_eq!(
        j["prompts"][0]["arguments"][0],
        json!({"name": "name", "description": "Who to greet", "required": true})
    );

    // prompt: the arguments given like tool arguments, strings kept as typed.
    assert_eq!(p.cmd().args(["prompt", "fx", "greet", "--name", "Bob"]).success().stdout(), "user: Hello, Bob!\n");
    assert_eq!(p.cmd().args(["prompt", "fx", "greet", "--name=007"]).success().stdout(), "user: Hello, 007!\n");
    assert_eq!(p.cmd().args(["prompt", "fx", "greet", "--var", "name=Ann"]).success().stdout(), "user: Hello, Ann!\n");
    assert_eq!(
        p.cmd().args(["prompt", "fx", "greet", "--json", "-"]).stdin("{\"name\": \"Stdin\"}").success().stdout(),
        "user: Hello, Stdin!\n"
    );
    let j = p.cmd().args(["--json-output", "prompt", "fx", "greet", "--name", "Bob"]).success().json();
    assert_eq!(j["prompt"], "greet");
    assert_eq!(j["arguments"], json!({"name": "Bob"}));
    assert_eq!(j["result"]["messages"][0], json!({"role": "user", "content": {"type": "text", "text": "Hello, Bob!"}}));
    // A missing required argument is named before the server is asked.
    p.cmd()
        .args(["prompt", "fx", "greet"])
        .status(1)
        .stderr_has("prompt `greet` on server `fx`: missing required argument(s) --name")
        .stderr_has("takes --name (required)");
    // A string argument is a string: a number in --json is refused.
    p.cmd().args(["prompt", "fx", "greet", "--json", "{\"name\": 5}"]).status(1).stderr_has("--name must be string");
    // An unknown prompt: the close name.
    let j = p.cmd().args(["--json-output", "prompt", "fx", "gret"]).status(1).json();
    assert_eq!(j["status"], "failure");
    assert_eq!(j["message"], "unknown prompt `gret` on server `fx`");
    assert_eq!(j["hint"], "did you mean `greet`?");
    assert_eq!((j["server"].as_str(), j["prompt"].as_str()), (Some("fx"), Some("gret")));
    // --dry-run shows the request.
    let j = p.cmd().args(["--json-output", "--dry-run", "prompt", "fx", "greet", "--name", "Bob"]).success().json();
    assert_eq!(j["status"], "dry_run");
    assert_eq!(
        j["request"],
        json!({"jsonrpc": "2.0", "method": "prompts/get", "params": {"name": "greet", "arguments": {"name": "Bob"}}})
    );
    // The fixture declares no completions.
    p.cmd()
        .args(["complete", "fx", "--prompt", "greet", "--arg", "name"])
        .status(1)
        .stderr_has("server `fx` has no completions");
}

/// A stdio server that declares only `tools`: every other method is method-not-found.
/// With `--slow` it declares resources too: `resources/list` has one, `resources/read` is
/// never answered, `resources/templates/list` is method-not-found.
const TOOLS_ONLY: &str = r#"
import json, sys
slow = "--slow" in sys.argv
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "initialize":
        caps = {"tools": {}, "resources": {}} if slow else {"tools": {}}
        r = {"result": {"protocolVersion": m["params"]["protocolVersion"], "capabilities": caps,
                        "serverInfo": {"name": "tools-only", "version": "1"}}}
    elif m["method"] == "tools/list":
        r = {"result": {"tools": []}}
    elif slow and m["method"] == "resources/list":
        r = {"result": {"resources": [{"uri": "x://y", "name": "y"}]}}
    elif slow and m["method"] == "resources/read":
        continue
    else:
        r = {"error": {"code": -32601, "message": "Method not found"}}
    r.update({"jsonrpc": "2.0", "id": m["id"]})
    print(json.dumps(r), flush=True)
"#;

#[test]
fn a_server_without_the_capability_says_so() {
    // The project's venv when `make deps` made it, else the system's python3.
    let python = if support::venv_python().exists() { support::venv_python() } else { "python3".into() };
    if Command::new(&python).arg("--version").output().is_err() {
        return support::missing_peer("no python3");
    }
    let p = Project::new(&json!({}));
    std::fs::write(p.root.join("tools_only.py"), TOOLS_ONLY).unwrap();
    p.write_config(&json!({"mcpServers": {
        "bare": {"command": python, "args": ["tools_only.py"], "timeout": 20},
        "slow": {"command": python, "args": ["tools_only.py", "--slow"], "timeout": 20},
    }}));
    for (cmd, what) in [("resources", "resources"), ("prompts", "prompts")] {
        let r = p.cmd().args([cmd, "bare"]).status(1);
        r.stderr_has(&format!("server `bare` has no {}", what)).stderr_has("mcpctl status bare");
        assert!(!r.stderr().contains("-32601"), "{}", r.dump());
    }
    p.cmd().args(["read", "bare", "x://y"]).status(1).stderr_has("server `bare` has no resources");
    let j = p.cmd().args(["--json-output", "prompt", "bare", "p"]).status(1).json();
    assert_eq!(j["message"], "server `bare` has no prompts");
    assert_eq!(j["server"], "bare");
    // A resource that is never answered: --timeout, exit 2. A server with resources and
    // no templates method lists its resources all the same.
    let t = Instant::now();
    let j = p.cmd().args(["--json-output", "--timeout", "0.5", "read", "slow", "x://y"]).status(2).json();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(j["status"], "timeout");
    assert_eq!(j["message"], "`resources/read` on server `slow` timed out after 0.5s");
    assert_eq!(j["uri"], "x://y");
    let j = p.cmd().args(["--json-output", "resources", "slow"]).success().json();
    assert_eq!(j["resources"], json!([{"uri": "x://y", "name": "y"}]));
    assert_eq!(j["resource_templates"], json!([]));
}

#[test]
fn everything_resources_read_prompts_and_complete() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"ev": everything(json!(["echo"]))}}));
    // resources: the static documents and both templates.
    let j = p.cmd().args(["--json-output", "resources", "ev"]).success().json();
    let uris: Vec<&str> = j["resources"].as_array().unwrap().iter().filter_map(|r| r["uri"].as_str()).collect();
    assert!(uris.contains(&"demo://resource/static/document/features.md"), "{:?}", uris);
    let templates: Vec<&str> =
        j["resource_templates"].as_array().unwrap().iter().filter_map(|t| t["uriTemplate"].as_str()).collect();
    assert!(templates.contains(&"demo://resource/dynamic/text/{resourceId}"), "{:?}", templates);
    assert!(templates.contains(&"demo://resource/dynamic/blob/{resourceId}"), "{:?}", templates);
    p.cmd()
        .args(["resources", "ev"])
        .success()
        .stdout_has("  • demo://resource/static/document/features.md\n    features.md (text/markdown)\n")
        .stdout_has("Resource templates on ev")
        .stdout_has(
            "  • demo://resource/dynamic/blob/{resourceId}\n    Dynamic Blob Resource (application/octet-stream)\n",
        );

    // read: a static document, a text template, a blob (raw bytes to a pipe, nothing added).
    p.cmd()
        .args(["read", "ev", "demo://resource/static/document/features.md"])
        .success()
        .stdout_has("# Everything Server - Features");
    let out = p.cmd().args(["read", "ev", "demo://resource/dynamic/text/1"]).success().stdout();
    assert!(out.starts_with("Resource 1: This is a plaintext resource created at"), "{}", out);
    let r = p.cmd().args(["read", "ev", "demo://resource/dynamic/blob/7"]).success();
    let bytes = r.out.stdout.clone();
    assert!(bytes.starts_with(b"Resource 7: This is a base64 blob created at"), "{}", r.dump());
    assert!(!bytes.ends_with(b"\n"), "a blob gets no newline added: {:?}", r.stdout());
    let j = p.cmd().args(["--json-output", "read", "ev", "demo://resource/dynamic/blob/7"]).success().json();
    let content = &j["result"]["contents"][0];
    assert_eq!(content["uri"], "demo://resource/dynamic/blob/7");
    assert!(content["blob"].as_str().unwrap().starts_with("UmVzb3VyY2UgNzo"), "{}", j);
    // An unknown resource: the server's message, exit 1.
    p.cmd()
        .args(["read", "ev", "demo://nope"])
        .status(1)
        .stderr_has("cannot read `demo://nope` from server `ev`")
        .stderr_has("Resource demo://nope not found");

    // prompts with their arguments.
    let j = p.cmd().args(["--json-output", "prompts", "ev"]).success().json();
    let names: Vec<&str> = j["prompts"].as_array().unwrap().iter().filter_map(|x| x["name"].as_str()).collect();
    for n in ["simple-prompt", "args-prompt", "resource-prompt"] {
        assert!(names.contains(&n), "{} missing from {:?}", n, names);
    }
    p.cmd()
        .args(["prompts", "ev"])
        .success()
        .stdout_has("  • args-prompt — Arguments Prompt\n")
        .stdout_has("      --city (required)  Name of the city\n      --state\n");
    assert_eq!(p.cmd().args(["prompt", "ev", "simple-prompt"]).success().stdout().lines().count(), 1);
    assert_eq!(
        p.cmd().args(["prompt", "ev", "args-prompt", "--city", "Paris"]).success().stdout(),
        "user: What's weather in Paris?\n"
    );
    assert_eq!(
        p.cmd()
            .args(["prompt", "ev", "args-prompt", "--json", r#"{"city": "Paris", "state": "TX"}"#])
            .success()
            .stdout(),
        "user: What's weather in Paris, TX?\n"
    );
    // Embedded resources are described.
    p.cmd()
        .args(["prompt", "ev", "resource-prompt", "--resourceType", "Text", "--resourceId", "2"])
        .success()
        .stdout_has("user: [resource: demo://resource/dynamic/text/2 (text/plain, ");
    p.cmd()
        .args(["prompt", "ev", "args-prompt", "--state", "TX"])
        .status(1)
        .stderr_has("missing required argument(s) --city");
    p.cmd().args(["prompt", "ev", "args-prompt", "--cty", "Paris"]).status(1).stderr_has("did you mean --city?");
    p.cmd().args(["prompt", "ev", "args-promt"]).status(1).stderr_has("did you mean `args-prompt`?");

    // complete: a prompt argument (with context) and a template variable.
    assert_eq!(
        p.cmd()
            .args(["complete", "ev", "--prompt", "completable-prompt", "--arg", "department", "--value", "E"])
            .success()
            .stdout(),
        "Engineering\n"
    );
    assert_eq!(
        p.cmd()
            .args([
                "complete",
                "ev",
                "--prompt",
                "completable-prompt",
                "--arg",
                "name",
                "--context",
                "department=Engineering"
            ])
            .success()
            .stdout(),
        "Alice\nBob\nCharlie\n"
    );
    let j = p
        .cmd()
        .args(["--json-output", "complete", "ev", "--resource", "demo://resource/dynamic/text/{resourceId}"])
        .args(["--arg", "resourceId", "--value", "1"])
        .success()
        .json();
    assert_eq!(j["ref"], json!({"type": "ref/resource", "uri": "demo://resource/dynamic/text/{resourceId}"}));
    assert_eq!(j["argument"], json!({"name": "resourceId", "value": "1"}));
    assert_eq!(j["completion"]["values"], json!(["1"]));
}

/// `mcpctl read` of a blob with stdout on a pseudo-terminal: a one-line note, no bytes.
#[test]
fn a_blob_on_a_terminal_is_a_note() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {"ev": everything(json!([]))}}));
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills in two new descriptors; we own both.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors are ours and open; each File owns one.
    let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) };
    let mut child = Command::new(support::mcpctl_bin())
        .args(["read", "ev", "demo://resource/dynamic/blob/3"])
        .current_dir(&p.root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the terminal on a thread (until the child closes it), bounded by a deadline here.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut master = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < 1 << 20 {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(out);
    });
    let status = support::wait_until(&mut child, Instant::now() + Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("mcpctl read did not finish");
    }
    let out =
        String::from_utf8_lossy(&rx.recv_timeout(Duration::from_secs(10)).expect("the terminal's output")).into_owned();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.unwrap().code(), Some(0), "{}\n{}", out, err);
    assert_eq!(out.trim_end().lines().count(), 1, "{:?}", out);
    assert!(out.contains("[binary content: "), "{:?}", out);
    assert!(out.contains(" bytes, text/plain; not printed on a terminal"), "{:?}", out);
    assert!(out.contains("mcpctl read ev 'demo://resource/dynamic/blob/3' > FILE"), "{:?}", out);
    assert!(!out.contains("This is a base64 blob"), "{:?}", out);
}

/// Through the running daemon (its `/mcp/<server>`): resources, reads and prompts of a
/// server whose every tool is blocked (`alwaysAllow: []`), since the allowlist concerns tools.
#[test]
fn through_the_daemon() {
    if !support::peers_available() {
        return;
    }
    let p = Project::new(&json!({"mcpServers": {
        "ev": everything(json!([])),
        "fx": {"command": support::fixture_bin(), "alwaysAllow": [], "timeout": 20},
    }}));
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let via = "using the daemon at";
    let r = p.cmd().args(["-v", "--json-output", "resources", "ev"]).success();
    r.stderr_has(via);
    assert!(r.json()["resources"].as_array().unwrap().len() >= 7, "{}", r.dump());
    let r = p.cmd().args(["-v", "read", "ev", "demo://resource/dynamic/text/5"]).success();
    r.stderr_has(via).stdout_has("Resource 5: This is a plaintext resource");
    let r = p.cmd().args(["-v", "read", "ev", "demo://resource/dynamic/blob/5"]).success();
    r.stderr_has(via);
    assert!(r.out.stdout.starts_with(b"Resource 5: This is a base64 blob"), "{}", r.dump());
    p.cmd().args(["-v", "prompts", "ev"]).success().stderr_has(via).stdout_has("  • args-prompt");
    let r = p.cmd().args(["-v", "prompt", "ev", "args-prompt", "--city", "Oslo"]).success();
    r.stderr_has(via);
    assert_eq!(r.stdout(), "user: What's weather in Oslo?\n");
    p.cmd().args(["prompt", "ev", "nope-prompt"]).status(1).stderr_has("unknown prompt `nope-prompt` on server `ev`");
    p.cmd()
        .args(["-v", "complete", "ev", "--prompt", "completable-prompt", "--arg", "department", "--value", "Mar"])
        .success()
        .stderr_has(via)
        .stdout_has("Marketing");
    let r = p.cmd().args(["-v", "prompt", "fx", "greet", "--name", "Daemon"]).success();
    r.stderr_has(via);
    assert_eq!(r.stdout(), "user: Hello, Daemon!\n");
    p.cmd().args(["read", "fx", "fixture://nope"]).status(1).stderr_has("Resource not found: fixture://nope");
    // The tools stay blocked.
    p.cmd().args(["call", "ev", "echo", "--message", "x"]).status(2).stderr_has("blocks every tool");
}
