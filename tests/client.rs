//! The shell client, end to end: the real `mcpctl` binary against the fixture server
//! (and, when `make deps` ran, the Python SDK fixture over Streamable HTTP). Each test
//! checks what a user sees: stdout, the one-line error on stderr, the JSON envelope's
//! `status`, and the exit code.

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{fixture_bin, free_port, Cmd, Project, Run};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A failure as a user sees it, checked twice: in text mode (nothing on stdout, one
/// `✗` line on stderr that contains `needle`) and with `--json-output` (one object with
/// `status`, `message`, a one-line `error` containing `needle`). Returns the JSON.
fn fails(make: impl Fn() -> Cmd, code: i32, status: &str, needle: &str) -> Value {
    let r = make().status(code);
    assert_eq!(r.stdout(), "", "text-mode failure printed on stdout\n{}", r.dump());
    let first = r.stderr().lines().find(|l| l.starts_with('✗')).map(str::to_string);
    let first = first.unwrap_or_else(|| panic!("no ✗ line on stderr of `{}`\n{}", r.desc, r.dump()));
    assert!(first.contains(needle), "error line of `{}` lacks {:?}:\n{}", r.desc, needle, first);
    let j = make().args(["--json-output"]).status(code).json();
    assert_eq!(j["status"], status, "{}", j);
    let err = j["error"].as_str().unwrap_or_else(|| panic!("no `error` in {}", j));
    assert!(!err.contains('\n'), "error is not one line: {:?}", err);
    assert!(err.contains(needle), "`error` lacks {:?}: {}", needle, j);
    assert!(j["message"].is_string(), "{}", j);
    j
}

/// A successful call's plain stdout.
fn out(r: Run) -> String {
    r.stdout()
}

fn fx() -> String {
    fixture_bin().display().to_string()
}

fn tmpdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("mcpctl-client-{}-{}-{}", tag, std::process::id(), n));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_pid(path: &Path, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` is a live process (a zombie, already dead and awaiting its reaper, is not).
fn alive(pid: i32) -> bool {
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Wait (bounded) until `pid` is gone; panics with `what` otherwise (after killing it).
fn assert_gone(pid: i32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() > deadline {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{}: child {} still runs", what, pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process we started, killed by pid on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------
// Config: discovery
// ---------------------------------------------------------------------------

#[test]
fn config_is_found_in_the_nearest_ancestor_and_mcp_json_works() {
    let outer = Project::new(&json!({"mcpServers": {"outer": {"command": fx()}}}));
    let inner = outer.root.join("a");
    std::fs::create_dir_all(inner.join("b/c")).unwrap();
    std::fs::write(inner.join(".mcp.json"), json!({"mcpServers": {"inner": {"command": fx()}}}).to_string()).unwrap();
    let j = Cmd::new().cwd(&inner.join("b/c")).args(["--json-output", "list"]).success().json();
    let names: Vec<&str> = j["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["inner"], "{}", j);
    let j = Cmd::new().cwd(&outer.root.join(".mcpctl")).args(["--json-output", "list"]).success().json();
    assert_eq!(j["servers"][0]["name"], "outer");
    // .mcp.json works for calls too (relative to its own folder).
    let r =
        Cmd::new().cwd(&inner.join("b")).args(["--yes", "call", "inner", "echo", "--text", "from .mcp.json"]).success();
    assert_eq!(r.stdout(), "from .mcp.json\n");
}

#[test]
fn project_root_flag_env_and_config_flag() {
    let p = Project::fixture(json!({}));
    let elsewhere = Scratch(tmpdir("elsewhere"));
    let root = p.root.display().to_string();
    let r = Cmd::new().cwd(&elsewhere.0).args(["--project-root", &root, "call", "fx", "echo", "--text", "a"]).success();
    assert_eq!(r.stdout(), "a\n");
    let r = Cmd::new()
        .cwd(&elsewhere.0)
        .env("MCPCTL_PROJECT_DIR", &root)
        .args(["call", "fx", "echo", "--text", "b"])
        .success();
    assert_eq!(r.stdout(), "b\n");
    let cfg = p.root.join(".mcpctl/config.json").display().to_string();
    let r = Cmd::new().cwd(&elsewhere.0).args(["call", "fx", "echo", "--text", "c", "--config", &cfg]).success();
    assert_eq!(r.stdout(), "c\n");
    // A config file with any name, anywhere.
    let other = elsewhere.0.join("servers.json");
    std::fs::copy(&cfg, &other).unwrap();
    let j = Cmd::new().cwd(&elsewhere.0).args(["--json-output", "--config", "servers.json", "list"]).success().json();
    assert_eq!(j["total_count"], 1);
    fails(|| Cmd::new().cwd(&elsewhere.0).args(["list", "--config", "nope.json"]), 1, "failure", "nope.json not found");
    fails(
        || Cmd::new().cwd(&elsewhere.0).args(["list", "--project-root", "no-such-dir"]),
        1,
        "failure",
        "is not a directory",
    );
}

#[test]
fn empty_mcpctl_project_dir_is_an_error() {
    let p = Project::fixture(json!({}));
    fails(|| p.cmd().env("MCPCTL_PROJECT_DIR", "").args(["list"]), 1, "failure", "MCPCTL_PROJECT_DIR is set but empty");
}

#[test]
fn missing_config_says_where_and_how_to_fix() {
    let d = Scratch(tmpdir("noproject"));
    // Only meaningful when no folder above the temp dir holds a project.
    if d.0.ancestors().any(|a| a.join(".mcpctl/config.json").is_file() || a.join(".mcp.json").is_file()) {
        eprintln!("skipping: a project exists above {}", d.0.display());
        return;
    }
    let needle = format!("No mcpctl project found in {}", d.0.display());
    let j = fails(|| Cmd::new().cwd(&d.0).args(["list"]), 1, "failure", &needle);
    assert!(j["error"].as_str().unwrap().contains("create .mcpctl/config.json"), "{}", j);
    assert!(j["error"].as_str().unwrap().contains("--project-root"), "{}", j);
    fails(|| Cmd::new().cwd(&d.0).args(["call", "x", "y"]), 1, "failure", "No mcpctl project found");
}

// ---------------------------------------------------------------------------
// Config: validation
// ---------------------------------------------------------------------------

fn project_with_text(text: &str) -> Project {
    let p = Project::new(&json!({}));
    std::fs::write(p.root.join(".mcpctl/config.json"), text).unwrap();
    p
}

#[test]
fn malformed_json_names_file_and_line() {
    let p = project_with_text("{\"mcpServers\": {\n  \"a\": {\"command\": \"x\",}\n}}");
    let j = fails(|| p.cmd().args(["list"]), 1, "failure", "invalid JSON at line 2");
    assert!(j["error"].as_str().unwrap().contains("config.json"), "{}", j);
    // (`servers` alone is VS Code's shape, read as such; a file with neither is an error.)
    let p = project_with_text(r#"{"server": {}}"#);
    fails(|| p.cmd().args(["list"]), 1, "failure", "no `mcpServers` object");
}

#[test]
fn both_command_and_url_is_an_error() {
    let p = Project::new(&json!({"mcpServers": {"a": {"command": "x", "url": "http://127.0.0.1:1/mcp"}}}));
    fails(|| p.cmd().args(["list"]), 1, "failure", "server `a`: `command` and `url` are both set");
}

#[test]
fn neither_command_nor_url_is_an_error() {
    let p = Project::new(&json!({"mcpServers": {"a": {"args": ["x"]}}}));
    fails(|| p.cmd().args(["list"]), 1, "failure", "server `a`: `command` is missing");
}

#[test]
fn wrong_field_types_are_named() {
    for (server, needle) in [
        (json!({"command": "x", "args": "--flag"}), "`args` must be an array of strings"),
        (json!({"command": "x", "args": [1]}), "`args` must be an array of strings"),
        (json!({"command": "x", "timeout": "5"}), "`timeout` must be a number"),
        (json!({"command": "x", "disabled": "no"}), "`disabled` must be true or false"),
        (json!({"command": 7}), "`command` must be a string"),
        (json!({"command": "x", "env": {"K": ["v"]}}), "`env` value of `K` must be a string"),
        (json!({"command": "x", "alwaysAllow": "echo"}), "`alwaysAllow` must be an array of strings"),
        (json!({"url": "ftp://h/mcp"}), "`url` must start with http:// or https://"),
    ] {
        let p = Project::new(&json!({"mcpServers": {"s": server}}));
        fails(|| p.cmd().args(["list"]), 1, "failure", needle);
    }
}

#[test]
fn bad_server_name_is_an_error() {
    let p = Project::new(&json!({"mcpServers": {"my server": {"command": "x"}}}));
    fails(|| p.cmd().args(["list"]), 1, "failure", "server name `my server` is not allowed");
}

#[test]
fn variables_are_substituted_and_unset_ones_fail() {
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": "${FX_BIN}", "args": ["--page-size", "${PAGE:-3}"], "alwaysAllow": ["*"],
               "env": {"TOKEN": "${MY_TOKEN}"}}
    }}));
    let run = |c: Cmd| c.env("FX_BIN", fx()).env("MY_TOKEN", "s3cret");
    let r = run(p.cmd().args(["call", "fx", "echo", "--text", "subst"])).success();
    assert_eq!(r.stdout(), "subst\n");
    let j = run(p.cmd().args(["--json-output", "status", "fx"])).success().json();
    assert_eq!(j["server"]["command"], fx());
    assert_eq!(j["server"]["args"], json!(["--page-size", "3"]));
    assert_eq!(j["server"]["env"]["TOKEN"], "****");
    assert!(!run(p.cmd().args(["--json-output", "status", "fx"])).success().stdout().contains("s3cret"));
    let j = run(p.cmd().args(["--json-output", "status", "fx"])).env("PAGE", "5").success().json();
    assert_eq!(j["server"]["args"], json!(["--page-size", "5"]));
    // FX_BIN unset: one line naming the variable and the way out.
    let j = fails(|| p.cmd().env("MY_TOKEN", "x").args(["list"]), 1, "failure", "uses ${FX_BIN}, which is not set");
    assert!(j["error"].as_str().unwrap().contains("${FX_BIN:-default}"), "{}", j);
}

#[test]
fn unknown_fields_are_ignored() {
    let p = Project::new(&json!({"mcpServers": {
        "fx": {"command": fx(), "alwaysAllow": ["echo"], "autoApprove": ["add"], "someClientSetting": {"x": 1}}
    }, "otherTopLevel": true}));
    let j = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(j["servers"][0]["operations_count"], 1);
    assert_eq!(p.cmd().args(["call", "fx", "echo", "--text", "ok"]).success().stdout(), "ok\n");
    // autoApprove is not mcpctl's allowlist: add still needs approval.
    fails(|| p.cmd().args(["call", "fx", "add", "--a", "1", "--b", "2"]), 2, "forbidden", "needs approval");
}

// ---------------------------------------------------------------------------
// list / status / tools
// ---------------------------------------------------------------------------

#[test]
fn list_never_starts_servers() {
    let p = Project::new(&json!({}));
    let marker = p.root.join("spawned");
    p.write_config(&json!({"mcpServers": {
        "toucher": {"command": "/bin/sh", "args": ["-c", format!("touch {}", marker.display())], "alwaysAllow": ["a", "b"]},
        "ghost": {"command": "no-such-command-anywhere"},
        "remote": {"url": "http://127.0.0.1:9/mcp"},
        "off": {"command": "x", "disabled": true}
    }}));
    let r = p.cmd().args(["list"]).success();
    r.stdout_has("Found 4 configured MCP servers")
        .stdout_has("• ghost: disconnected")
        .stdout_has("Command: no-such-command-anywhere");
    r.stdout_has("• off: disabled").stdout_has("Operations: 2").stdout_has("Command: http://127.0.0.1:9/mcp");
    let j = p.cmd().args(["--json-output", "list"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["total_count"], 4);
    assert_eq!(
        j["servers"][0],
        json!({"name": "toucher", "command": "/bin/sh", "disabled": false, "operations_count": 2,
               "policy": "allows 2 tools (a, b); denies unlisted tools through the gateway",
               "status": "disconnected", "tools_count": null})
    );
    assert_eq!(j["servers"][3]["status"], "disabled");
    assert_eq!(j["servers"][3]["disabled"], true);
    p.cmd().args(["status"]).success().stdout_has("• ghost: disconnected");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!marker.exists(), "list/status started a server");
}

#[test]
fn status_without_a_name_shows_every_server() {
    let p = Project::new(&json!({"mcpServers": {"a": {"command": fx()}, "b": {"command": "x", "disabled": true}}}));
    let r = p.cmd().args(["status"]).success();
    r.stdout_has("Daemon: stopped").stdout_has("• a: disconnected").stdout_has("• b: disabled");
    let j = p.cmd().args(["--json-output", "status"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["servers"].as_array().unwrap().len(), 2);
    assert!(j.get("daemon").is_some(), "{}", j);
}

#[test]
fn status_of_one_server_connects_and_masks_env() {
    let p = Project::fixture(json!({"env": {"API_KEY": "hunter2"}, "args": ["--page-size", "7"]}));
    let r = p.cmd().args(["status", "fx"]).success();
    r.stdout_has("• fx: connected").stdout_has("Server: mcpctl-fixture 1.0.0").stdout_has("Protocol: 2025-11-25");
    r.stdout_has("Capabilities: tools, resources, prompts, logging").stdout_has("Tools (20): echo, add,");
    assert!(!r.stdout().contains("hunter2"));
    let j = p.cmd().args(["--json-output", "status", "fx"]).success().json();
    let s = &j["server"];
    assert_eq!(s["status"], "connected");
    assert_eq!(s["server_info"], json!({"name": "mcpctl-fixture", "version": "1.0.0"}));
    assert_eq!(s["protocol_version"], "2025-11-25");
    assert_eq!(s["capabilities"]["tools"], json!({"listChanged": true}));
    assert_eq!(s["tools"].as_array().unwrap().len(), 20, "all pages: {}", s["tools"]);
    assert_eq!(s["env"], json!({"API_KEY": "****"}));
    assert_eq!(s["alwaysAllow"], json!(["*"]));
    assert!(!j.to_string().contains("hunter2"));
}

#[test]
fn status_of_a_disabled_or_broken_server() {
    let p = Project::new(&json!({"mcpServers": {
        "off": {"command": "x", "disabled": true},
        "broken": {"command": fx(), "args": ["--crash-on-init"]}
    }}));
    let j = p.cmd().args(["--json-output", "status", "off"]).success().json();
    assert_eq!(j["server"]["status"], "disabled");
    let j = fails(|| p.cmd().args(["status", "broken"]), 1, "failure", "exited (status 4) during initialize");
    assert_eq!(j["server"]["name"], "broken");
    fails(|| p.cmd().args(["status", "brokn"]), 1, "failure", "did you mean `broken`?");
}

#[test]
fn tools_text_shows_parameters_and_json_the_schema() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["tools", "fx"]).success();
    r.stdout_has("Found 20 tools on server 'fx'")
        .stdout_has("• echo\n    Returns its text\n    Parameters:\n      --text  string, required\n");
    r.stdout_has("    Parameters:\n      --a  number, required\n      --b  number, required\n");
    r.stdout_has("      --s    string\n      --n    integer\n      --f    number\n      --b    boolean\n      --arr  array\n      --obj  object\n");
    r.stdout_has("  • hang\n    Never answers\n    Parameters: none\n");
    let j = p.cmd().args(["--json-output", "tools", "fx"]).success().json();
    assert_eq!(j["status"], "success");
    assert_eq!(j["server"], "fx");
    let types = j["tools"].as_array().unwrap().iter().find(|t| t["name"] == "types").unwrap();
    assert_eq!(
        types["inputSchema"],
        json!({"type": "object", "properties": {"s": {"type": "string"}, "n": {"type": "integer"},
            "f": {"type": "number"}, "b": {"type": "boolean"}, "arr": {"type": "array"}, "obj": {"type": "object"}},
            "required": []})
    );
    let structured = j["tools"].as_array().unwrap().iter().find(|t| t["name"] == "structured").unwrap();
    assert_eq!(structured["outputSchema"]["properties"]["answer"], json!({"type": "integer"}));
}

#[test]
fn tools_text_shows_enums_defaults_unions_and_descriptions_on_80_columns() {
    let p = Project::fixture(json!({"args": ["--rich-tool"]}));
    let r = p.cmd().args(["tools", "fx"]).success();
    r.stdout_has("Found 21 tools on server 'fx'");
    r.stdout_has(concat!(
        "  • search\n",
        "    Searches the fixture's pretend index. This description is long on purpose,\n",
        "    so that a listing has to wrap it over more than one line, and then cut what\n",
        "    still does not fit after three lines, which is what happens to descriptions…\n",
        "    Parameters:\n",
        "      --query  string, required      What to look for\n",
        "      --mode   \"fast\" | \"deep\"       (default: \"fast\") How hard to look\n",
        "      --limit  integer 1..50 | null  (default: 10) At most this many results\n",
        "      --since  string | null         An ISO date; results from then on\n",
        "      --tags   array of string\n",
        "      --where  object {lang: string, year?: integer}\n",
        "                                     Filters\n",
        "      --note   string                A description far too long for one line of\n",
        "                                     a listing: it goes on to say a great many\n",
        "                                     things about notes, which nobody will read…\n",
    ));
    for line in r.stdout().lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {:?}", line);
    }
    // --json-output keeps the schema as the server sent it.
    let j = p.cmd().args(["--json-output", "tools", "fx"]).success().json();
    let search = j["tools"].as_array().unwrap().iter().find(|t| t["name"] == "search").unwrap();
    assert_eq!(search["inputSchema"]["properties"]["mode"]["enum"], json!(["fast", "deep"]));
    assert_eq!(search["inputSchema"]["properties"]["limit"]["default"], 10);
    // What the listing says is what the call takes.
    let out = p.cmd().args(["call", "fx", "search", "--query", "q", "--mode", "deep", "--tags", "[\"a\"]"]).success();
    assert_eq!(out.stdout(), "{\"query\":\"q\",\"mode\":\"deep\",\"tags\":[\"a\"]}\n");
}

#[test]
fn tools_follows_pagination_to_the_end() {
    let plain = Project::fixture(json!({}));
    let paged = Project::fixture(json!({"args": ["--page-size", "3"]}));
    let names = |p: &Project| -> Vec<String> {
        let j = p.cmd().args(["--json-output", "tools", "fx"]).success().json();
        j["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    let all = names(&plain);
    assert_eq!(all.len(), 20);
    assert_eq!(names(&paged), all);
    paged.cmd().args(["tools", "fx"]).success().stdout_has("Found 20 tools").stdout_has("• big");
    // Calls find tools on later pages too.
    assert_eq!(paged.cmd().args(["call", "fx", "big", "--bytes", "3"]).success().stdout(), "xxx\n");
}

// ---------------------------------------------------------------------------
// call: output
// ---------------------------------------------------------------------------

#[test]
fn call_prints_text_content_plainly() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["call", "fx", "echo", "--text", "hello world"]).success();
    assert_eq!(r.stdout(), "hello world\n");
    assert_eq!(r.stderr(), "");
    let r = p.cmd().args(["call", "fx", "echo", "--text", "line 1\nline 2\n"]).success();
    assert_eq!(r.stdout(), "line 1\nline 2\n");
    // Big output arrives whole.
    let r = p.cmd().args(["call", "fx", "big", "--bytes", "300000"]).success();
    assert_eq!(r.stdout().len(), 300_001);
}

#[test]
fn call_json_envelope_shape() {
    let p = Project::fixture(json!({}));
    let j = p.cmd().args(["--json-output", "call", "fx", "echo", "--text", "hi"]).success().json();
    assert_eq!(
        j,
        json!({"status": "success", "message": "Tool 'echo' executed successfully", "server": "fx", "tool": "echo",
               "arguments": {"text": "hi"}, "result": {"content": [{"type": "text", "text": "hi"}]}})
    );
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["status", "message", "server", "tool", "arguments", "result"]);
}

#[test]
fn call_summarizes_media_in_text_and_keeps_it_whole_in_json() {
    let p = Project::fixture(json!({}));
    assert_eq!(out(p.cmd().args(["call", "fx", "image"]).success()), "[image: image/png, 70 bytes]\n");
    assert_eq!(out(p.cmd().args(["call", "fx", "audio"]).success()), "[audio: audio/wav, 52 bytes]\n");
    assert_eq!(
        out(p.cmd().args(["call", "fx", "resource"]).success()),
        "[resource: fixture://hello (text/plain, 26 bytes)]\n"
    );
    let j = p.cmd().args(["--json-output", "call", "fx", "image"]).success().json();
    let c = &j["result"]["content"][0];
    assert_eq!(c["type"], "image");
    assert_eq!(c["mimeType"], "image/png");
    assert!(c["data"].as_str().unwrap().starts_with("iVBORw0KGgo") && c["data"].as_str().unwrap().len() == 96, "{}", c);
    let j = p.cmd().args(["--json-output", "call", "fx", "resource"]).success().json();
    assert_eq!(j["result"]["content"][0]["resource"]["text"], "Hello from mcpctl-fixture!");
}

#[test]
fn call_prints_structured_content_when_there_is_no_text() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["call", "fx", "structured"]).success();
    let v: Value = serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("not JSON: {}\n{}", e, r.dump()));
    assert_eq!(v, json!({"answer": 42}));
    let j = p.cmd().args(["--json-output", "call", "fx", "structured"]).success().json();
    assert_eq!(j["result"]["structuredContent"], json!({"answer": 42}));
}

#[test]
fn tool_error_is_a_failure_with_the_tools_text() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["call", "fx", "fail", "--message", "disk is full"]).status(1);
    assert_eq!(r.stdout(), "");
    r.stderr_has("✗ tool `fail` on server `fx` returned an error").stderr_has("disk is full");
    let j =
        fails(|| p.cmd().args(["call", "fx", "fail", "--message", "disk is full"]), 1, "failure", "returned an error");
    assert_eq!(j["result"]["isError"], true);
    assert_eq!(j["result"]["content"][0]["text"], "disk is full");
    assert_eq!(j["arguments"], json!({"message": "disk is full"}));
    assert_eq!(j["tool"], "fail");
}

// ---------------------------------------------------------------------------
// call: arguments
// ---------------------------------------------------------------------------

/// What the `types` tool received, as a JSON value.
fn received(p: &Project, args: &[&str]) -> Value {
    let r = p.cmd().args(["call", "fx", "types"]).args(args.iter().copied()).success();
    serde_json::from_str(r.stdout().trim()).unwrap_or_else(|e| panic!("{}: {}", e, r.dump()))
}

#[test]
fn argument_forms() {
    let p = Project::fixture(json!({}));
    assert_eq!(
        received(&p, &["--s", "x y", "--n=5", "--b", "--f", "-1.5", "--arr", "[1,\"a\"]", "--obj={\"k\":null}"]),
        json!({"s": "x y", "n": 5, "b": true, "f": -1.5, "arr": [1, "a"], "obj": {"k": null}})
    );
    assert_eq!(received(&p, &["--var", "s=a=b", "--var", "n=3"]), json!({"s": "a=b", "n": 3}));
    let dir = Scratch(tmpdir("var"));
    let file = dir.0.join("note.txt");
    std::fs::write(&file, "from a file\nline 2\n").unwrap();
    assert_eq!(received(&p, &["--var", &format!("s=@{}", file.display())]), json!({"s": "from a file\nline 2\n"}));
    assert_eq!(received(&p, &["--json", r#"{"s": "j", "arr": []}"#]), json!({"s": "j", "arr": []}));
    let r = p
        .cmd()
        .args(["call", "fx", "types", "--json", "-", "--n", "1"])
        .stdin(r#"{"s": "stdin", "b": false}"#)
        .success();
    assert_eq!(serde_json::from_str::<Value>(r.stdout().trim()).unwrap(), json!({"s": "stdin", "b": false, "n": 1}));
    fails(
        || p.cmd().args(["call", "fx", "types", "--var", "s=@/no/such/file"]),
        1,
        "failure",
        "--var s=@/no/such/file: cannot read the file",
    );
}

#[test]
fn later_arguments_win() {
    let p = Project::fixture(json!({}));
    assert_eq!(
        received(&p, &["--s", "a", "--json", r#"{"s": "b", "n": 1}"#, "--var", "s=c"]),
        json!({"s": "c", "n": 1})
    );
    assert_eq!(received(&p, &["--var", "s=c", "--json", r#"{"s": "b"}"#]), json!({"s": "b"}));
    assert_eq!(received(&p, &["--n", "1", "--n=2"]), json!({"n": 2}));
}

#[test]
fn double_dash_makes_our_flags_tool_arguments() {
    let p = Project::fixture(json!({}));
    let j = p
        .cmd()
        .args([
            "--json-output",
            "call",
            "fx",
            "types",
            "--s",
            "x",
            "--",
            "--dry-run",
            "--timeout",
            "5",
            "--json",
            "raw",
        ])
        .success()
        .json();
    assert_eq!(j["status"], "success", "`--dry-run` after `--` must not make a dry run: {}", j);
    let text = j["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"s": "x", "dry-run": true, "timeout": 5, "json": "raw"})
    );
}

#[test]
fn string_parameters_keep_their_text() {
    let p = Project::fixture(json!({}));
    assert_eq!(received(&p, &["--s", "007"]), json!({"s": "007"}));
    assert_eq!(received(&p, &["--s", "true"]), json!({"s": "true"}));
    assert_eq!(received(&p, &["--s", "null"]), json!({"s": "null"}));
    assert_eq!(received(&p, &["--s", "[1]"]), json!({"s": "[1]"}));
    assert_eq!(received(&p, &["--var", "s=007"]), json!({"s": "007"}));
    assert_eq!(out(p.cmd().args(["call", "fx", "echo_string", "--value", "007"]).success()), "007\n");
    // ...and typed ones are parsed.
    assert_eq!(received(&p, &["--n", "7", "--f", "0.5", "--b", "false"]), json!({"n": 7, "f": 0.5, "b": false}));
    assert_eq!(out(p.cmd().args(["call", "fx", "add", "--a", "2", "--b", "3"]).success()), "5\n");
}

#[test]
fn values_that_do_not_fit_the_schema_fail_clearly() {
    let p = Project::fixture(json!({}));
    let p = &p;
    let call = |a: &'static [&'static str]| move || p.cmd().args(["call", "fx", "types"]).args(a.iter().copied());
    fails(call(&["--n", "abc"]), 1, "failure", "--n must be integer, got `abc`");
    fails(call(&["--n", "1.5"]), 1, "failure", "--n must be integer, got `1.5`");
    fails(call(&["--b", "maybe"]), 1, "failure", "--b must be boolean, got `maybe`");
    fails(call(&["--arr", "{}"]), 1, "failure", "--arr must be array");
    fails(call(&["--json", r#"{"n": "x"}"#]), 1, "failure", "--n must be integer, got a string");
    fails(call(&["--s"]), 1, "failure", "--s needs a value (string)");
    let j = fails(|| p.cmd().args(["call", "fx", "echo"]), 1, "failure", "missing required argument(s) --text");
    assert!(j["error"].as_str().unwrap().contains("parameters: --text"), "{}", j);
}

#[test]
fn bad_json_and_var_fail_clearly() {
    let p = Project::fixture(json!({}));
    let p = &p;
    let call = |a: &'static [&'static str]| move || p.cmd().args(["call", "fx", "types"]).args(a.iter().copied());
    fails(call(&["--json", "[1]"]), 1, "failure", "--json must be a JSON object, not an array");
    fails(call(&["--json", "\"s\""]), 1, "failure", "--json must be a JSON object, not a string");
    fails(call(&["--json", "{bad"]), 1, "failure", "--json is not valid JSON");
    fails(
        || p.cmd().args(["call", "fx", "types", "--json", "-"]).stdin("{\"s\":"),
        1,
        "failure",
        "--json is not valid JSON",
    );
    fails(call(&["--var", "novalue"]), 1, "failure", "--var `novalue` needs the form key=value");
    fails(call(&["--var", "=v"]), 1, "failure", "has an empty key");
    fails(call(&["--var", "obj={nope"]), 1, "failure", "--obj must be object, got `{nope`");
    fails(call(&["stray"]), 1, "failure", "unexpected argument `stray` after the tool name");
}

#[test]
fn dry_run_anywhere_runs_nothing() {
    // `crash` would end the server: a dry run that ran it could not succeed.
    let p = Project::fixture(json!({}));
    for args in [
        &["--dry-run", "call", "fx", "crash", "--code", "9"][..],
        &["call", "--dry-run", "fx", "crash", "--code", "9"],
        &["call", "fx", "crash", "--code", "9", "--dry-run"],
    ] {
        let j = p.cmd().args(["--json-output"]).args(args.iter().copied()).success().json();
        assert_eq!(j["status"], "dry_run", "{}", j);
        assert_eq!(j["arguments"], json!({"code": 9}));
        assert_eq!(
            j["request"],
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "crash", "arguments": {"code": 9}}})
        );
        assert_eq!(j["approval"], "allowed");
    }
    p.cmd()
        .args(["call", "fx", "crash", "--dry-run"])
        .success()
        .stdout_has("Dry run: would call 'crash'")
        .stdout_has("(nothing was run)");
    // Dry runs still validate.
    fails(|| p.cmd().args(["call", "fx", "crash", "--code", "x", "--dry-run"]), 1, "failure", "--code must be integer");
    // The tool really crashes the server when it runs.
    fails(|| p.cmd().args(["call", "fx", "crash", "--code", "9"]), 1, "failure", "exited (status 9)");
}

#[test]
fn unknown_server_and_tool_suggest_close_names() {
    let p = Project::new(
        &json!({"mcpServers": {"files": {"command": fx(), "alwaysAllow": ["*"]}, "github": {"command": fx()}}}),
    );
    let j = fails(|| p.cmd().args(["call", "fils", "echo"]), 1, "failure", "unknown server `fils`");
    assert!(j["error"].as_str().unwrap().contains("did you mean `files`?"), "{}", j);
    fails(|| p.cmd().args(["call", "zzz", "echo"]), 1, "failure", "configured servers: files, github");
    fails(|| p.cmd().args(["tools", "gthub"]), 1, "failure", "did you mean `github`?");
    let j = fails(
        || p.cmd().args(["call", "files", "ech", "--text", "x"]),
        1,
        "failure",
        "unknown tool `ech` on server `files`",
    );
    assert!(j["error"].as_str().unwrap().contains("did you mean: echo, echo_string, log_then_echo?"), "{}", j);
    fails(|| p.cmd().args(["call", "files", "qqqqqqqq"]), 1, "failure", "run `mcpctl tools files` to see its 20 tools");
}

#[test]
fn disabled_server_is_refused() {
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(&json!({"mcpServers": {"fx": {"command": fx(), "args": ["--pid-file", pid_file], "disabled": true, "alwaysAllow": ["*"]}}}));
    fails(
        || p.cmd().args(["call", "fx", "echo", "--text", "a"]),
        1,
        "failure",
        "server `fx` is disabled; set \"disabled\": false",
    );
    fails(|| p.cmd().args(["tools", "fx"]), 1, "failure", "server `fx` is disabled");
    assert!(!pid_file.exists(), "a disabled server was started");
}

#[test]
fn bad_command_lines_fail_clearly() {
    let p = Project::fixture(json!({}));
    fails(|| p.cmd().args(["lst"]), 1, "failure", "unknown command `lst`; did you mean `list`?");
    fails(|| p.cmd().args(["list", "--verbos"]), 1, "failure", "did you mean --verbose?");
    fails(|| p.cmd().args(["call", "fx"]), 1, "failure", "usage: mcpctl call <server> <tool>");
    fails(|| p.cmd().args(["call", "fx", "echo", "--timeout", "soon"]), 1, "failure", "--timeout takes seconds");
}

// ---------------------------------------------------------------------------
// Allowlists
// ---------------------------------------------------------------------------

fn allow_project() -> Project {
    let p = Project::new(&json!({}));
    let pid = |n: &str| p.root.join(format!("{}.pid", n)).display().to_string();
    p.write_config(&json!({"mcpServers": {
        "ask": {"command": fx(), "args": ["--pid-file", pid("ask")]},
        "named": {"command": fx(), "alwaysAllow": ["echo", "ad*"]},
        "all": {"command": fx(), "alwaysAllow": ["*"]},
        "blocked": {"command": fx(), "args": ["--pid-file", pid("blocked")], "alwaysAllow": []}
    }}));
    p
}

#[test]
fn no_allowlist_needs_yes_without_a_terminal() {
    let p = allow_project();
    let j = fails(
        || p.cmd().args(["call", "ask", "echo", "--text", "a"]),
        2,
        "forbidden",
        "tool `echo` on server `ask` needs approval",
    );
    assert!(j["error"].as_str().unwrap().contains("pass --yes, or add it to the server's alwaysAllow list"), "{}", j);
    // (the server is started to tell a tool that needs approval from one that does not
    // exist; nothing is called)
    assert!(j.get("result").is_none(), "{}", j);
    assert_eq!(out(p.cmd().args(["call", "ask", "echo", "--text", "a", "--yes"]).success()), "a\n");
    assert_eq!(out(p.cmd().args(["-y", "call", "ask", "echo", "--text", "b"]).success()), "b\n");
}

#[test]
fn allowlist_names_and_globs() {
    let p = allow_project();
    assert_eq!(out(p.cmd().args(["call", "named", "echo", "--text", "e"]).success()), "e\n");
    assert_eq!(out(p.cmd().args(["call", "named", "add", "--a", "1", "--b", "1"]).success()), "2\n");
    fails(|| p.cmd().args(["call", "named", "echo_string", "--value", "x"]), 2, "forbidden", "needs approval");
    fails(|| p.cmd().args(["call", "named", "types"]), 2, "forbidden", "needs approval");
    // A typo of a tool is an unknown tool, with the close names (not "needs approval").
    let j = fails(|| p.cmd().args(["call", "named", "ecoh", "--text", "x"]), 1, "failure", "unknown tool `ecoh`");
    assert!(j["error"].as_str().unwrap().contains("did you mean: echo"), "{}", j);
    assert_eq!(out(p.cmd().args(["call", "all", "echo_string", "--value", "x"]).success()), "x\n");
    let j = p.cmd().args(["--json-output", "--dry-run", "call", "named", "types"]).success().json();
    assert_eq!(j["approval"], "required");
}

#[test]
fn empty_allowlist_blocks_even_with_yes() {
    let p = allow_project();
    let j = fails(
        || p.cmd().args(["call", "blocked", "echo", "--text", "a", "--yes"]),
        2,
        "forbidden",
        "server `blocked` blocks every tool (`alwaysAllow` is empty)",
    );
    assert!(
        j["error"].as_str().unwrap().contains("add \"echo\" (or a pattern like \"*\") to its alwaysAllow list"),
        "{}",
        j
    );
    assert!(!p.root.join("blocked.pid").exists(), "a blocked server was started");
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[test]
fn command_not_found() {
    let p =
        Project::new(&json!({"mcpServers": {"ghost": {"command": "no-such-mcp-server-xyz", "alwaysAllow": ["*"]}}}));
    let j = fails(
        || p.cmd().args(["call", "ghost", "echo"]),
        1,
        "failure",
        "server `ghost`: command `no-such-mcp-server-xyz` not found",
    );
    assert!(j["error"].as_str().unwrap().contains("PATH is searched"), "{}", j);
    fails(|| p.cmd().args(["tools", "ghost"]), 1, "failure", "not found");
}

#[test]
fn child_exiting_during_initialize_shows_its_last_stderr_lines() {
    let p = Project::fixture(json!({"args": ["--crash-on-init"]}));
    for _ in 0..3 {
        let r = p.cmd().args(["call", "fx", "echo", "--text", "a"]).status(1);
        r.stderr_has("✗ server `fx` exited (status 4) during initialize");
        r.stderr_has("fixture: fatal config error: FIXTURE_TOKEN is not set");
    }
    let j = fails(|| p.cmd().args(["tools", "fx"]), 1, "failure", "FIXTURE_TOKEN is not set");
    assert_eq!(
        j["details"],
        json!([
            "fixture: starting",
            "fixture: reading configuration",
            "fixture: fatal config error: FIXTURE_TOKEN is not set"
        ])
    );
}

#[test]
fn child_printing_garbage_on_stdout() {
    let p = Project::fixture(json!({"args": ["--garbage-on-init"]}));
    let j =
        fails(|| p.cmd().args(["call", "fx", "echo", "--text", "a"]), 1, "failure", "non-JSON-RPC line(s) on stdout");
    assert!(j["error"].as_str().unwrap().contains("fixture: this is not JSON-RPC, sorry"), "{}", j);
    // A garbage line in the middle of a session is skipped; the answer still arrives.
    let p = Project::fixture(json!({}));
    assert_eq!(out(p.cmd().args(["call", "fx", "garbage"]).success()), "garbage sent\n");
}

#[test]
fn child_hanging_on_initialize_times_out() {
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(&json!({"mcpServers": {"fx": {"command": fx(), "args": ["--hang-on-init", "--pid-file", pid_file], "timeout": 1, "alwaysAllow": ["*"]}}}));
    let started = Instant::now();
    let j = fails(
        || p.cmd().args(["call", "fx", "echo", "--text", "a"]),
        2,
        "timeout",
        "server `fx` did not answer `initialize` within 1.0s",
    );
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert!(j["error"].as_str().unwrap().contains("raise its `timeout`"), "{}", j);
    assert_gone(read_pid(&pid_file, Duration::from_secs(1)), Duration::from_secs(3), "after an initialize timeout");
}

#[test]
fn request_timeout_stops_the_child() {
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(
        &json!({"mcpServers": {"fx": {"command": fx(), "args": ["--pid-file", pid_file], "alwaysAllow": ["*"]}}}),
    );
    let r = p.cmd().args(["call", "fx", "hang", "--timeout", "1"]).status(2);
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    assert!(r.elapsed >= Duration::from_millis(900), "gave up early: {:?}", r.elapsed);
    r.stderr_has("✗ `tools/call` on server `fx` timed out after 1s; raise `timeout` in the server's config or pass --timeout SECS");
    assert_gone(read_pid(&pid_file, Duration::from_secs(1)), Duration::from_secs(3), "after a request timeout");
    let j = p.cmd().args(["--json-output", "call", "fx", "hang", "--timeout", "0.5"]).status(2).json();
    assert_eq!(j["status"], "timeout");
    assert_eq!(j["tool"], "hang");
    // The server's own `timeout` applies when --timeout is not given.
    p.write_config(&json!({"mcpServers": {"fx": {"command": fx(), "timeout": 0.5, "alwaysAllow": ["*"]}}}));
    let r = p.cmd().args(["call", "fx", "hang"]).status(2);
    r.stderr_has("timed out after 0.5s");
}

#[test]
fn a_child_that_ignores_stdin_close_is_still_stopped() {
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(&json!({"mcpServers": {"fx": {"command": fx(), "args": ["--ignore-stdin-close", "--pid-file", pid_file], "alwaysAllow": ["*"]}}}));
    let r = p.cmd().args(["call", "fx", "echo", "--text", "x"]).success();
    assert_eq!(r.stdout(), "x\n");
    // close stdin, 2 s, SIGTERM (ignored), 2 s, SIGKILL.
    assert!(r.elapsed < Duration::from_secs(8), "took {:?}", r.elapsed);
    assert_gone(read_pid(&pid_file, Duration::from_secs(1)), Duration::from_secs(2), "after the staged shutdown");
}

/// The answer is printed as soon as it arrives; a server that does not exit when its
/// input closes is stopped after that (server-everything is one).
#[test]
fn the_result_is_printed_before_the_server_is_stopped() {
    use std::io::BufRead;
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(&json!({"mcpServers": {"fx": {"command": fx(), "args": ["--ignore-stdin-close", "--pid-file", pid_file], "alwaysAllow": ["*"]}}}));
    let t0 = Instant::now();
    let mut child = Command::new(support::mcpctl_bin())
        .args(["call", "fx", "echo", "--text", "early"])
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let printed = t0.elapsed();
    let status = support::wait_until(&mut child, Instant::now() + Duration::from_secs(15));
    let done = t0.elapsed();
    assert_eq!(line, "early\n");
    assert!(status.map(|s| s.success()).unwrap_or(false), "{:?}", status);
    // The staged stop takes 2 s at least (stdin close, then SIGTERM): the answer came first.
    assert!(done >= Duration::from_secs(2), "stopped in {:?}", done);
    assert!(printed + Duration::from_millis(1500) < done, "printed at {:?}, done at {:?}", printed, done);
    assert_gone(read_pid(&pid_file, Duration::from_secs(1)), Duration::from_secs(2), "after the deferred stop");
}

#[test]
fn unsupported_protocol_version() {
    let p = Project::fixture(json!({"args": ["--protocol-version", "1999-01-01"]}));
    let j = fails(
        || p.cmd().args(["call", "fx", "echo", "--text", "a"]),
        1,
        "failure",
        "server `fx` speaks MCP protocol version `1999-01-01`, which mcpctl does not support",
    );
    assert!(j["error"].as_str().unwrap().contains("mcpctl speaks 2025-11-25"), "{}", j);
    // An older version we do speak is fine.
    let p = Project::fixture(json!({"args": ["--protocol-version", "2024-11-05"]}));
    let j = p.cmd().args(["--json-output", "status", "fx"]).success().json();
    assert_eq!(j["server"]["protocol_version"], "2024-11-05");
}

#[test]
fn stderr_floods_do_not_stall() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["call", "fx", "stderr_flood", "--bytes", "5000000"]).success();
    assert_eq!(r.stdout(), "flooded 5000000\n");
    assert!(r.elapsed < Duration::from_secs(20), "took {:?}", r.elapsed);
    let p = Project::fixture(json!({"args": ["--stderr-at-start", "5000000"]}));
    let r = p.cmd().args(["call", "fx", "echo", "--text", "after the flood"]).success();
    assert_eq!(r.stdout(), "after the flood\n");
    assert!(r.elapsed < Duration::from_secs(20), "took {:?}", r.elapsed);
}

#[test]
fn log_notifications_do_not_confuse_replies() {
    let p = Project::fixture(json!({}));
    assert_eq!(out(p.cmd().args(["call", "fx", "log_then_echo", "--text", "logged"]).success()), "logged\n");
    let p = Project::fixture(json!({"args": ["--log-before-response", "--page-size", "2"]}));
    let j = p.cmd().args(["--json-output", "call", "fx", "echo", "--text", "right reply"]).success().json();
    assert_eq!(j["result"], json!({"content": [{"type": "text", "text": "right reply"}]}));
    assert_eq!(out(p.cmd().args(["call", "fx", "log_then_echo", "--text", "t"]).success()), "t\n");
    // With -v the server's log messages show on stderr, never on stdout.
    let r = p.cmd().args(["-v", "call", "fx", "echo", "--text", "v"]).success();
    assert_eq!(r.stdout(), "v\n");
    r.stderr_has("about to respond");
}

#[test]
fn child_crashing_mid_call() {
    let p = Project::fixture(json!({}));
    let j = fails(
        || p.cmd().args(["call", "fx", "crash", "--code", "3"]),
        1,
        "failure",
        "server `fx` exited (status 3) during `tools/call`; last stderr: fixture: crashing",
    );
    assert!(!j["error"].as_str().unwrap().contains("answered"), "a crash is not an answer: {}", j);
    assert_eq!(j["tool"], "crash");
}

#[test]
fn ctrl_c_during_a_call_exits_promptly_and_stops_the_child() {
    let p = Project::new(&json!({}));
    let pid_file = p.root.join("pid");
    p.write_config(
        &json!({"mcpServers": {"fx": {"command": fx(), "args": ["--pid-file", pid_file], "alwaysAllow": ["*"]}}}),
    );
    let child = Command::new(support::mcpctl_bin())
        .args(["call", "fx", "sleep", "--ms", "30000"])
        .current_dir(&p.root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let server = read_pid(&pid_file, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300)); // initialize, tools/list, tools/call
    assert!(alive(server));
    let sent = Instant::now();
    unsafe { libc::kill(proc.0.id() as i32, libc::SIGINT) };
    let status = loop {
        if let Some(s) = proc.0.try_wait().unwrap() {
            break s;
        }
        assert!(sent.elapsed() < Duration::from_secs(8), "mcpctl did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = sent.elapsed();
    let mut stderr = String::new();
    use std::io::Read;
    proc.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(elapsed < Duration::from_secs(5), "took {:?} after SIGINT", elapsed);
    assert_eq!(status.code(), Some(1), "{}", stderr);
    assert!(stderr.starts_with("✗ `tools/call` interrupted"), "{}", stderr);
    assert_gone(server, Duration::from_secs(3), "after Ctrl-C");
}

// ---------------------------------------------------------------------------
// Streamable HTTP (the Python SDK fixture)
// ---------------------------------------------------------------------------

/// `py_server.py --http PORT`, stopped by pid on drop.
struct PyHttp {
    _proc: Proc,
    url: String,
}

impl PyHttp {
    fn start() -> Option<PyHttp> {
        if !support::peers_available() {
            return None;
        }
        let port = free_port();
        let child = Command::new(support::venv_python())
            .arg(support::repo().join("fixtures/py_server.py"))
            .args(["--http", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "py_server.py did not listen on {}", port);
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(PyHttp { _proc: proc, url: format!("http://127.0.0.1:{}/mcp", port) })
    }
}

#[test]
fn http_url_form_tools_and_calls() {
    let Some(py) = PyHttp::start() else { return };
    let d = Scratch(tmpdir("url"));
    let c = || Cmd::new().cwd(&d.0);
    let r = c().args(["--url", &py.url, "tools"]).success();
    r.stdout_has("Found 5 tools")
        .stdout_has("• echo_string")
        .stdout_has("    Parameters:\n      --value  string, required\n");
    r.stdout_has("    Parameters:\n      --a  integer, required\n      --b  integer, required\n");
    assert_eq!(out(c().args(["call", "--url", &py.url, "echo_string", "--value", "007"]).success()), "str:007\n");
    assert_eq!(out(c().args(["call", "--url", &py.url, "echo_string", "--value", "true"]).success()), "str:true\n");
    assert_eq!(out(c().args(["--url", &py.url, "call", "add", "--a", "2", "--b", "3"]).success()), "5\n");
    assert_eq!(
        out(c().args(["call", "--url", &py.url, "tags", "--items", "[\"x\",\"007\"]", "--flag"]).success()),
        "{\"items\":[\"x\",\"007\"],\"flag\":true}\n"
    );
    let j = c().args(["--json-output", "call", "--url", &py.url, "echo_string", "--value", "007"]).success().json();
    assert_eq!(j["arguments"], json!({"value": "007"}));
    assert_eq!(j["result"]["structuredContent"], json!({"result": "str:007"}));
    let j = fails(
        || c().args(["call", "--url", &py.url, "divide", "--a", "1", "--b", "0"]),
        1,
        "failure",
        "tool `divide` on server `url` returned an error",
    );
    assert_eq!(j["result"]["isError"], true);
    assert!(j["result"]["content"][0]["text"].as_str().unwrap().contains("division by zero"), "{}", j);
    fails(
        || c().args(["call", "--url", &py.url, "add", "--a", "x", "--b", "1"]),
        1,
        "failure",
        "--a must be integer, got `x`",
    );
    fails(|| c().args(["call", "--url", &py.url, "nope"]), 1, "failure", "unknown tool `nope`");
}

#[test]
fn http_server_from_the_config() {
    let Some(py) = PyHttp::start() else { return };
    let p = Project::new(
        &json!({"mcpServers": {"py": {"url": py.url, "alwaysAllow": ["echo_string", "divide", "log_then_echo"]}}}),
    );
    let j = p.cmd().args(["--json-output", "status", "py"]).success().json();
    assert_eq!(j["server"]["status"], "connected");
    assert_eq!(j["server"]["server_info"]["name"], "py-fixture");
    assert!(j["server"]["protocol_version"].as_str().unwrap().starts_with("20"), "{}", j);
    assert_eq!(j["server"]["tools"].as_array().unwrap().len(), 5);
    p.cmd().args(["list"]).success().stdout_has(&format!("Command: {}", py.url));
    assert_eq!(out(p.cmd().args(["call", "py", "echo_string", "--value", "007"]).success()), "str:007\n");
    assert_eq!(out(p.cmd().args(["call", "py", "log_then_echo", "--message", "m"]).success()), "logged:m\n");
    fails(|| p.cmd().args(["call", "py", "divide", "--a", "1", "--b", "0"]), 1, "failure", "returned an error");
    fails(|| p.cmd().args(["call", "py", "add", "--a", "1", "--b", "2"]), 2, "forbidden", "needs approval");
    let j = p.cmd().args(["--json-output", "call", "py", "divide", "--a", "1", "--b", "4"]).success().json();
    assert_eq!(j["result"]["content"][0]["text"], "0.25");
}

#[test]
fn http_connection_refused_is_one_line() {
    let port = free_port(); // nothing listens there
    let url = format!("http://127.0.0.1:{}/mcp", port);
    let d = Scratch(tmpdir("refused"));
    let needle = format!("cannot reach server `url` at {}: connection refused", url);
    let j = fails(|| Cmd::new().cwd(&d.0).args(["--url", &url, "tools"]), 1, "failure", &needle);
    assert!(!j["error"].as_str().unwrap().contains("refused to initialize"), "{}", j);
    assert_eq!(j["hint"], "check that the server is running and the `url` is right", "the fix is the hint: {}", j);
    fails(|| Cmd::new().cwd(&d.0).args(["call", "--url", &url, "echo_string", "--value", "x"]), 1, "failure", &needle);
    let p = Project::new(&json!({"mcpServers": {"remote": {"url": url, "alwaysAllow": ["*"]}}}));
    fails(|| p.cmd().args(["call", "remote", "x"]), 1, "failure", "cannot reach server `remote`");
}

#[test]
fn a_server_whose_pages_never_end_is_a_clear_failure() {
    // The same cursor again: the listing would never end.
    let p = Project::fixture(json!({"args": ["--bad-cursor", "stuck"]}));
    let r = p.cmd().args(["tools", "fx"]).status(1);
    r.stderr_has("✗ server `fx` returned the same `tools/list` cursor twice");
    assert_eq!(r.stdout(), "");
    fails(|| p.cmd().args(["call", "fx", "echo", "--text", "a"]), 1, "failure", "cursor twice");
    // A new cursor every time: bounded, not followed forever.
    let p = Project::fixture(json!({"args": ["--bad-cursor", "endless"]}));
    let t = std::time::Instant::now();
    let r = p.cmd().args(["tools", "fx"]).status(1);
    r.stderr_has("✗ server `fx`: `tools/list` has more than 1000 pages");
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "{:?}", t.elapsed());
}

/// Each command has its own help (usage, options, examples), reached three ways.
#[test]
fn per_command_help_and_completion_scripts() {
    let p =
        Project::new(&json!({"mcpServers": {"alpha": {"command": "x"}, "beta": {"url": "http://127.0.0.1:1/mcp"}}}));
    for line in [&["call", "--help"][..], &["help", "call"], &["call", "-h"]] {
        let r = p.cmd().args(line).success();
        r.stdout_has("Usage: mcpctl call <server> <tool>");
        r.stdout_has("--var key=value");
        r.stdout_has("Examples:");
    }
    p.cmd().args(["start", "--help"]).success().stdout_has("--allowed-origin O");
    p.cmd().args(["help", "strat"]).status(1).stderr_has("did you mean `start`?");
    let v = p.cmd().args(["--version"]).success();
    v.stdout_has("MCP revisions: 2025-11-25");
    // Server names for scripts and completion.
    assert_eq!(out(p.cmd().args(["list", "--names"]).success()), "alpha\nbeta\n");
    // bash completion, driven as bash drives it.
    let script = out(p.cmd().args(["completion", "bash"]).success());
    let bin_dir = support::mcpctl_bin().parent().unwrap().to_path_buf();
    let complete = |words: &str, cword: usize| -> String {
        let prog =
            format!("{}\nCOMP_WORDS=({}); COMP_CWORD={}; _mcpctl; echo \"${{COMPREPLY[*]}}\"", script, words, cword);
        let o = std::process::Command::new("bash")
            .args(["--norc", "-c", &prog])
            .current_dir(&p.root)
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(complete("mcpctl st", 1), "status start stop");
    assert_eq!(complete("mcpctl call ''", 2), "alpha beta");
    assert_eq!(complete("mcpctl start --fo", 2), "--foreground");
    assert_eq!(complete("mcpctl logs --f", 2), "--follow");
    // zsh and fish: at least a script their own parser accepts, where they are installed.
    for shell in ["zsh", "fish"] {
        let text = out(p.cmd().args(["completion", shell]).success());
        assert!(!text.contains("alpha") && text.contains("list --names"), "{}", shell);
        let f = p.root.join(format!("c.{}", shell));
        std::fs::write(&f, text).unwrap();
        if let Ok(o) = std::process::Command::new(shell).arg("-n").arg(&f).output() {
            assert!(o.status.success(), "{} -n: {}", shell, String::from_utf8_lossy(&o.stderr));
        }
    }
    p.cmd().args(["completion", "tcsh"]).status(1).stderr_has("use `mcpctl completion bash`");
}

/// Other clients' files: Codex's TOML imported (printed, written, not overwritten), read in
/// place with --config without leaving mcpctl's state in Codex's folder.
#[test]
fn import_and_read_a_codex_config() {
    let p = Project::new(&json!({"mcpServers": {}}));
    std::fs::remove_file(p.root.join(".mcpctl/config.json")).unwrap();
    let codex = p.root.join("home/.codex");
    std::fs::create_dir_all(&codex).unwrap();
    let toml = format!(
        "model = \"o3\"\n\n[mcp_servers.fx]\ncommand = \"{}\"\ntool_timeout_sec = 12\nenv = {{ \"TOKEN\" = \"${{SECRET}}\" }}\nenabled_tools = [\"echo\"]\n\n[mcp_servers.off]\nurl = \"http://127.0.0.1:1/mcp\"\nbearer_token_env_var = \"OFF_TOKEN\"\nenabled = false\n",
        fixture_bin().display()
    );
    std::fs::write(codex.join("config.toml"), toml).unwrap();
    let r = p.cmd().args(["import", "codex"]).env("CODEX_HOME", &codex).success();
    let v: Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["mcpServers"]["fx"]["timeout"], 12, "{}", v);
    assert_eq!(v["mcpServers"]["fx"]["env"]["TOKEN"], "${SECRET}", "variables stay references: {}", v);
    assert_eq!(v["mcpServers"]["off"]["headers"]["Authorization"], "Bearer ${OFF_TOKEN}");
    assert_eq!(v["mcpServers"]["off"]["disabled"], true);
    r.stderr_has("enabled_tools");
    // Written into the project, then not overwritten without --force.
    p.cmd().args(["import", "codex", "--write"]).env("CODEX_HOME", &codex).success().stdout_has("Wrote 2 servers");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(p.root.join(".mcpctl/config.json")).unwrap()).unwrap();
    assert_eq!(written, v);
    assert!(std::fs::read_to_string(p.root.join(".mcpctl/.gitignore")).unwrap().contains("daemon.*"));
    p.cmd().args(["import", "codex", "--write"]).env("CODEX_HOME", &codex).status(1).stderr_has("--force");
    p.cmd().args(["import", "codx"]).status(1).stderr_has("did you mean `codex`?");
    std::fs::remove_file(p.root.join(".mcpctl/config.json")).unwrap();
    // Read in place: the call works, and the daemon's state goes to the current folder.
    let cfg = codex.join("config.toml");
    let cfg = cfg.to_str().unwrap();
    let env = |c: Cmd| c.env("SECRET", "s").env("OFF_TOKEN", "o");
    let out = env(p.cmd().args(["--config", cfg, "call", "fx", "echo", "--text", "hi", "--yes"])).success();
    assert_eq!(out.stdout(), "hi\n");
    let started = env(p.cmd().args(["--config", cfg, "--json-output", "start", "--port", "0"])).success();
    let pid = started.json()["daemon"]["pid"].as_i64().unwrap();
    let state = p.root.join(".mcpctl/daemon.json").exists();
    let in_codex = codex.join(".mcpctl").exists();
    env(p.cmd().args(["--config", cfg, "stop"])).success();
    assert!(state && !in_codex, "state in the project: {}, in Codex's folder: {}", state, in_codex);
    assert_gone(pid as i32, Duration::from_secs(5), "the daemon after stop");
}

/// A project with only VS Code's `.vscode/mcp.json` is found; its `${input:…}` variables are
/// answered from MCPCTL_INPUT_*; an SSE entry is left out with a warning, the rest work.
#[test]
fn vscode_project_file_and_an_sse_entry() {
    let p = Project::new(&json!({"mcpServers": {}}));
    std::fs::remove_dir_all(p.root.join(".mcpctl")).unwrap();
    std::fs::create_dir_all(p.root.join(".vscode")).unwrap();
    let doc = json!({
        "inputs": [{"type": "promptString", "id": "tok", "password": true}],
        "servers": {
            "fx": {"type": "stdio", "command": fixture_bin(), "args": ["--env-tool"], "env": {"FX_TOKEN": "${input:tok}"}},
            "legacy": {"type": "sse", "url": "http://127.0.0.1:1/sse"}
        }
    });
    std::fs::write(p.root.join(".vscode/mcp.json"), doc.to_string()).unwrap();
    p.cmd().args(["tools", "fx"]).status(1).stderr_has("uses ${MCPCTL_INPUT_TOK}, which is not set");
    let r = p.cmd().args(["list", "--names"]).env("MCPCTL_INPUT_TOK", "t0k").success();
    assert_eq!(r.stdout(), "fx\n");
    r.stderr_has("server `legacy` left out");
    let out =
        p.cmd().args(["call", "fx", "env", "--name", "FX_TOKEN", "--yes"]).env("MCPCTL_INPUT_TOK", "t0k").success();
    assert_eq!(out.stdout(), "t0k\n", "the input's value reached the server's environment");
}

/// After `call <server> <tool>`, a name the tool declares is the tool's, even when it is
/// also one of mcpctl's options (`--url`, `--timeout`, `--verbose`, `--json`); one it does
/// not declare is still mcpctl's; `--config` there that the tool also declares is an error
/// naming both readings.
#[test]
fn tool_parameters_named_like_our_options_reach_the_tool() {
    let p = Project::fixture(json!({"args": ["--fetchlike-tool"]}));
    let out = p
        .cmd()
        .args([
            "call",
            "fx",
            "fetchlike",
            "--url",
            "http://127.0.0.1:9/page",
            "--timeout",
            "7",
            "--verbose",
            "--json",
            "{\"a\":1}",
        ])
        .success();
    let v: Value = serde_json::from_str(out.stdout().trim()).unwrap();
    assert_eq!(v, json!({"url": "http://127.0.0.1:9/page", "timeout": 7, "verbose": true, "json": "{\"a\":1}"}));
    // (our debug lines stop once the schema says `--verbose` is the tool's)
    assert!(!out.stderr().contains("calling `fetchlike`"), "the tool's --verbose is not ours: {}", out.stderr());
    // Not declared by the tool: ours, as before the tool's name.
    let r = p.cmd().args(["--json-output", "call", "fx", "sleep", "--ms", "3000", "--timeout", "0.5"]).status(2);
    assert_eq!(r.json()["status"], "timeout", "{}", r.json());
    p.cmd().args(["call", "fx", "echo", "--json", "{\"text\": \"from json\"}"]).success().stdout_has("from json");
    p.cmd().args(["call", "fx", "echo", "--text", "hi", "--dry-run"]).success().stdout_has("nothing was run");
    p.cmd().args(["-v", "call", "fx", "echo", "--text", "hi"]).success().stderr_has("DEBUG");
    // Ours after the tool's name, checked as ours.
    p.cmd()
        .args(["call", "fx", "echo", "--text", "hi", "--timeout", "soon"])
        .status(1)
        .stderr_has("--timeout takes seconds (a number above 0), not `soon`");
    p.cmd()
        .args(["call", "fx", "echo", "--text", "hi", "--dry-run", "yes"])
        .status(1)
        .stderr_has("--dry-run takes no value (got `yes`)");
    // A server is named: `--url` after the tool cannot be ours.
    p.cmd()
        .args(["call", "fx", "echo", "--text", "hi", "--url", "http://127.0.0.1:9/"])
        .status(1)
        .stderr_has("`echo` has no parameter `url`, and a server is named already");
    // Both readings possible: an error naming both.
    p.cmd()
        .args(["call", "fx", "fetchlike", "--url", "u", "--config", ".mcpctl/config.json"])
        .status(1)
        .stderr_has("--config after the tool's name is both mcpctl's option and a parameter of `fetchlike`");
    // The tool's own after `--`.
    let out = p.cmd().args(["call", "fx", "fetchlike", "--url", "u", "--", "--config", "c.toml"]).success();
    assert!(out.stdout().contains("\"config\":\"c.toml\""), "{}", out.stdout());
    // An argument the tool does not declare: a warning with the close name.
    p.cmd()
        .args(["call", "fx", "echo", "--text", "hi", "--txet", "x"])
        .success()
        .stderr_has("`--txet` is not a parameter of `echo`; did you mean `--text`?");
}

/// An unknown tool is an unknown tool (exit 1, close names), also when it is not
/// allowlisted; "needs approval" is for tools that exist.
#[test]
fn an_unknown_tool_is_unknown_even_when_not_allowlisted() {
    let p = Project::fixture(json!({"alwaysAllow": ["echo"]}));
    p.cmd().args(["call", "fx", "ech0"]).status(1).stderr_has("unknown tool `ech0` on server `fx`");
    p.cmd().args(["call", "fx", "add", "--a", "1", "--b", "2"]).status(2).stderr_has("needs approval");
}

// ---------------------------------------------------------------------------
// call --progress
// ---------------------------------------------------------------------------

const SLEEP_PROGRESS: &str = "[progress] 1/4 slept 50 of 200 ms\n[progress] 2/4 slept 100 of 200 ms\n\
[progress] 3/4 slept 150 of 200 ms\n[progress] 4/4 slept 200 of 200 ms\n";

#[test]
fn progress_is_shown_on_stderr_with_the_flag() {
    let p = Project::fixture(json!({}));
    let r = p.cmd().args(["call", "fx", "sleep", "--ms", "200", "--progress"]).success();
    assert_eq!(r.stdout(), "slept 200\n");
    assert_eq!(r.stderr(), SLEEP_PROGRESS);
    // Off a terminal, without the flag: none asked for, none shown.
    let r = p.cmd().args(["call", "fx", "sleep", "--ms", "200"]).success();
    assert_eq!((r.stdout(), r.stderr()), ("slept 200\n".to_string(), String::new()));
    // Before `call`, with JSON output: stdout stays one object.
    let r = p.cmd().args(["--progress", "--json-output", "call", "fx", "sleep", "--ms", "200"]).success();
    assert_eq!(r.json()["result"]["content"][0]["text"], "slept 200");
    assert_eq!(r.stderr(), SLEEP_PROGRESS);
    // A flag takes no value.
    p.cmd()
        .args(["call", "fx", "sleep", "--ms", "200", "--progress", "3"])
        .status(1)
        .stderr_has("--progress takes no value");
}

#[test]
fn progress_comes_through_the_daemon() {
    let p = Project::fixture(json!({}));
    let d = support::Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let calls = || {
        let j = p.cmd().args(["--json-output", "list"]).success().json();
        j["servers"][0]["calls"].as_u64().unwrap_or(0)
    };
    let before = calls();
    let r = p.cmd().args(["call", "fx", "sleep", "--ms", "200", "--progress"]).success();
    assert_eq!(r.stdout(), "slept 200\n");
    assert_eq!(r.stderr(), SLEEP_PROGRESS);
    // The daemon's child ran it (no child of this command).
    assert_eq!(calls(), before + 1);
}

#[test]
fn progress_is_one_rewritten_line_on_a_terminal_by_default() {
    // `script` gives the command a terminal; without it there is nothing to check here.
    if !Path::new("/usr/bin/script").exists() {
        return;
    }
    let p = Project::fixture(json!({}));
    let run = |args: &str| -> String {
        let log = p.root.join("tty.out");
        let line = format!("{} {}", support::mcpctl_bin().display(), args);
        let mut child = Command::new("/usr/bin/script")
            .args(["-qc", &line, "/dev/null"])
            .current_dir(&p.root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if support::wait_until(&mut child, Instant::now() + Duration::from_secs(30)).is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{}` did not finish", line);
        }
        std::fs::read_to_string(&log).unwrap()
    };
    let out = run("call fx sleep --ms 200");
    assert!(
        out.contains("\r\x1b[K[progress] 1/4 slept 50 of 200 ms\r\x1b[K[progress] 2/4"),
        "no progress line rewritten in place: {:?}",
        out
    );
    // The line is erased before the result.
    assert!(out.contains("[progress] 4/4 slept 200 of 200 ms\r\x1b[Kslept 200"), "{:?}", out);
    // JSON output on a terminal: no progress unless asked.
    let out = run("--json-output call fx sleep --ms 200");
    assert!(!out.contains("[progress]"), "{:?}", out);
    assert!(out.contains("\"status\":\"success\""), "{:?}", out);
}
