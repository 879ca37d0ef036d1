//! The era matrix (MCP 2026-07-28 issue, "Done means"): real clients of both MCP eras
//! against ONE gateway that fronts one session-era child (`leg`: @modelcontextprotocol/sdk
//! 1.32, fixtures/ts/era_legacy_server.mjs) and one 2026-07-28-only child (`mod`: TS SDK v2,
//! fixtures/ts/era_modern_server.mjs), on `/mcp` (both, names prefixed) and on `/mcp/leg`,
//! `/mcp/mod`. Features: tools/list + tools/call, progress reaching the client, cancellation
//! (seen on the child's side: its `status` tool tells what became of the cancelled call),
//! resources/list + read, prompts/list + get, elicitation (a tool that asks; the client's
//! answer is in the result).
//!
//! Clients, each in every era it can speak:
//! - TS SDK v2 (@modelcontextprotocol/client 2.4.0): 2026-07-28 (pinned) and 2025-11-25;
//! - @modelcontextprotocol/sdk 1.32: 2025-11-25 only (its newest revision);
//! - Python `mcp` 2.3.0: 2026-07-28 (pinned) and 2025-11-25;
//! - the inspector CLI (2.12, `--protocol-era modern|legacy`): one method per run, so no
//!   progress or cancellation; it declares no elicitation, so its questions are refused;
//! - mcpctl itself (`--url`): probes `server/discover`, so 2026-07-28.
//!
//! One driver process per (client, era, endpoint) runs every feature and prints a JSON
//! report (tests/js/era_client.mjs, tests/py/era_client.py); the drivers run a few at a
//! time. Every cell is checked and the whole matrix printed (with `--nocapture`); the test
//! fails listing each cell that did not hold. Cells refused by design assert the error.

mod support;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{Daemon, McpClient, Project};

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// One cell of the matrix: which client, era, endpoint and feature, and what came of it.
struct Cell {
    client: &'static str,
    era: &'static str,
    endpoint: String,
    feature: String,
    /// Ok(what was seen) or Err(why it does not hold).
    outcome: Result<String, String>,
}

fn project() -> Project {
    let node = support::npm_bin().join("node");
    let fixture = |f: &str| support::repo().join("fixtures/ts").join(f);
    Project::new(&json!({"mcpServers": {
        "leg": {"command": node, "args": [fixture("era_legacy_server.mjs")], "alwaysAllow": ["*"], "timeout": 30},
        "mod": {"command": node, "args": [fixture("era_modern_server.mjs")], "alwaysAllow": ["*"], "timeout": 30},
    }}))
}

/// Run a client process, bounded (killed by its pid after 90 s): (exit code, stdout, stderr).
fn run(mut c: Command, what: &str) -> (Option<i32>, String, String) {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: {}", what, e));
    // Read both pipes on their own threads, so a chatty client never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = support::wait_until(&mut child, Instant::now() + Duration::from_secs(90));
    if status.is_none() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    (status.code(), o.join().unwrap(), e.join().unwrap())
}

/// A driver started with MCPCTL_GATE=1: it runs every feature but the question to the
/// legacy child, prints "ready" and waits for a line on stdin before asking it. (The
/// gateway routes a stdio child's own request, here `elicitation/create`, to the one
/// session with requests in flight to that child; with several, it cannot tell, and the
/// child gets an error saying so: docs/gateway.md, Isolation. So the questions to `leg`
/// go out one at a time, after every other feature of every client has run.)
struct Gated {
    what: String,
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// The report, once printed.
    report: Option<Result<Value, String>>,
}

impl Gated {
    fn spawn(mut c: Command, what: String) -> Gated {
        c.env("MCPCTL_GATE", "1").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: {}", what, e));
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Gated { what, stdin: child.stdin.take(), child, lines, stderr: Some(stderr), report: None }
    }

    /// The next line of stdout within `until`, else why not (the driver is then killed).
    fn line(&mut self, until: Instant) -> Result<String, String> {
        let left = until.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(l) => Ok(l),
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.stderr.take().map(|h| h.join().unwrap()).unwrap_or_default();
                Err(format!(
                    "{}: no line on stdout ({:?}; exit {:?})\n--- stderr\n{}",
                    self.what,
                    e,
                    self.child.try_wait(),
                    err
                ))
            }
        }
    }

    fn parse(&mut self, line: Result<String, String>) {
        self.report = Some(line.and_then(|l| {
            serde_json::from_str(l.trim()).map_err(|e| format!("{}: not JSON ({}): {}", self.what, e, l))
        }));
    }

    /// Phase 1: wait until it is ready to ask (or has reported: nothing to hold back).
    fn until_ready(&mut self, until: Instant) {
        match self.line(until) {
            Ok(l) if l == "ready" => {}
            other => self.parse(other),
        }
    }

    /// Phase 2: let its question out; its report.
    fn finish(&mut self, until: Instant) -> Result<Value, String> {
        if self.report.is_none() {
            let _ = std::io::Write::write_all(self.stdin.as_mut().unwrap(), b"go\n");
            let line = self.line(until);
            self.parse(line);
        }
        self.stdin.take();
        // Bounded: it exits once it has reported.
        if support::wait_until(&mut self.child, until).is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.report.take().unwrap()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        // A test that failed half-way leaves no driver behind (killed by its own pid).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a driver points and which children are behind it (name, prefix).
struct Endpoint {
    path: &'static str,
    targets: &'static [(&'static str, &'static str)],
}

const ENDPOINTS: [Endpoint; 3] = [
    Endpoint { path: "/mcp", targets: &[("leg", "leg__"), ("mod", "mod__")] },
    Endpoint { path: "/mcp/leg", targets: &[("leg", "")] },
    Endpoint { path: "/mcp/mod", targets: &[("mod", "")] },
];

fn targets_arg(e: &Endpoint) -> String {
    e.targets.iter().map(|(n, p)| format!("{}={}", n, p)).collect::<Vec<_>>().join(",")
}

fn js(sdk: &str, url: &str, era: &str, targets: &str, elicit: bool) -> Command {
    let mut c = Command::new(support::npm_bin().join("node"));
    c.arg(support::repo().join("tests/js/era_client.mjs"))
        .arg(support::repo().join(".deps/npm/node_modules"))
        .args([sdk, url, era, targets]);
    if elicit {
        c.env_remove("MCPCTL_NO_ELICIT");
    } else {
        c.env("MCPCTL_NO_ELICIT", "1");
    }
    c
}

fn py(url: &str, era: &str, targets: &str) -> Command {
    let mut c = Command::new(support::venv_modern_python());
    c.arg(support::repo().join("tests/py/era_client.py")).args([url, era, targets]);
    c
}

/// `Ok(seen)` when `ok`, else `Err` with what was seen.
fn expect(ok: bool, seen: &Value) -> Result<String, String> {
    let s = seen.to_string();
    let short = if s.len() > 300 { format!("{}…", &s[..300]) } else { s };
    if ok {
        Ok(short)
    } else {
        Err(format!("got {}", short))
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The cells of one SDK driver's report (every feature, elicitation answered "Ada").
fn sdk_cells(client: &'static str, era: &'static str, e: &Endpoint, r: Result<Value, String>) -> Vec<Cell> {
    let cell =
        |feature: &str, outcome| Cell { client, era, endpoint: e.path.to_string(), feature: feature.into(), outcome };
    let r = match r {
        Ok(r) => r,
        Err(why) => return vec![cell("connect", Err(why))],
    };
    let protocol = if era == "modern" { MODERN } else { LEGACY };
    let mut cells = vec![cell("negotiated", expect(r["protocol"] == protocol, &r["protocol"]))];
    // tools/list: exactly the children's tools, prefixed on /mcp only.
    let mut want: Vec<String> =
        e.targets.iter().flat_map(|(_, p)| ["ask", "echo", "slow", "status"].map(|t| format!("{}{}", p, t))).collect();
    want.sort();
    cells.push(cell("tools/list", expect(strings(&r["tools"]) == want, &r["tools"])));
    for (name, _) in e.targets {
        let t = &r["targets"][name];
        let f = |what: &str| format!("{} [{}]", what, name);
        cells.push(cell(&f("tools/call"), expect(t["echo"] == format!("{}: hi", name), &t["echo"])));
        let p = &t["progress"];
        let done = p["text"].as_str().is_some_and(|s| s.starts_with("slow ") && s.ends_with(" done"));
        cells.push(cell(&f("progress"), expect(p["count"].as_u64().unwrap_or(0) >= 1 && done, p)));
        let c = &t["cancel"];
        let cancelled =
            c["aborted"] == "aborted" && c["status"] == "cancelled" && c["progress_before"].as_u64() >= Some(1);
        cells.push(cell(&f("cancel"), expect(cancelled, c)));
        let uri = format!("era://{}/info", name);
        let uris: Vec<String> = e.targets.iter().map(|(n, _)| format!("era://{}/info", n)).collect();
        cells.push(cell(&f("resources/list"), expect(strings(&t["resources"]) == uris, &t["resources"])));
        let text = if *name == "leg" { "legacy resource" } else { "modern resource" };
        cells.push(cell(&f("resources/read"), expect(t["read"] == text, &json!({"uri": uri, "read": t["read"]}))));
        let prompts: Vec<String> = e.targets.iter().map(|(_, p)| format!("{}greet", p)).collect();
        cells.push(cell(&f("prompts/list"), expect(strings(&t["prompts"]) == prompts, &t["prompts"])));
        cells.push(cell(&f("prompts/get"), expect(t["prompt"] == format!("Hello Ada from {}", name), &t["prompt"])));
        let asked = strings(&t["asked"]) == ["Who confirms deploy?"];
        cells.push(cell(
            &f("elicitation"),
            expect(
                t["elicit"] == "deploy confirmed by Ada" && asked,
                &json!({"elicit": t["elicit"], "asked": t["asked"]}),
            ),
        ));
    }
    cells
}

/// The cells of a driver whose client declared no elicitation: the question is refused
/// with an error that says so, and the client is never asked.
fn no_elicit_cells(client: &'static str, era: &'static str, e: &Endpoint, r: Result<Value, String>) -> Vec<Cell> {
    let cell = |feature: String, outcome| Cell { client, era, endpoint: e.path.to_string(), feature, outcome };
    let r = match r {
        Ok(r) => r,
        Err(why) => return vec![cell("connect (no elicitation)".into(), Err(why))],
    };
    let mut cells = Vec::new();
    for (name, _) in e.targets {
        let v = &r["targets"][name]["elicit"];
        // A tool error (the legacy child got an error to its request and says so) or a
        // JSON-RPC error of the call: either way naming the missing capability.
        let said = v["isError"].as_str().or(v["error"]["message"].as_str()).unwrap_or("");
        let ok = said.contains("elicitation") && (said.contains("declare") || said.contains("capabilit"));
        cells.push(cell(format!("elicitation refused (none declared) [{}]", name), expect(ok, v)));
    }
    cells
}

/// `mcp-inspector --cli URL --transport http --protocol-era ERA --format json ARGS`: its
/// exit code and its JSON (the result on stdout, or the error envelope on stderr).
fn inspector(url: &str, era: &str, home: &std::path::Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut c = Command::new(support::npm_bin().join("mcp-inspector"));
    c.env_clear().env("PATH", support::path_with_deps()).env("HOME", home);
    c.arg("--cli").arg(url).args(["--transport", "http", "--protocol-era", era, "--format", "json"]).args(args);
    let (code, out, err) = run(c, "mcp-inspector --cli");
    let json_in = |text: &str| -> Option<Value> {
        serde_json::from_str(text.trim()).ok().or_else(|| text.lines().rev().find_map(|l| serde_json::from_str(l).ok()))
    };
    let v = json_in(&out).or_else(|| json_in(&err)).unwrap_or(Value::Null);
    (code, v, format!("--- stdout\n{}\n--- stderr\n{}", out, err))
}

fn tool_names(e: &Endpoint) -> Vec<String> {
    let mut want: Vec<String> =
        e.targets.iter().flat_map(|(_, p)| ["ask", "echo", "slow", "status"].map(|t| format!("{}{}", p, t))).collect();
    want.sort();
    want
}

/// One inspector run: the cell of (era, endpoint, feature). `child` is the child the
/// feature reaches (for calls, reads and prompts).
fn inspector_cell(
    era: &'static str,
    e: &Endpoint,
    feature: &str,
    child: &str,
    args: &[&str],
    home: &std::path::Path,
    port: u16,
) -> Cell {
    let url = format!("http://127.0.0.1:{}{}", port, e.path);
    let (code, v, dump) = inspector(&url, era, home, args);
    let feature_name =
        if e.targets.len() > 1 && !child.is_empty() { format!("{} [{}]", feature, child) } else { feature.to_string() };
    let cell = |outcome| Cell {
        client: "inspector",
        era,
        endpoint: e.path.to_string(),
        feature: feature_name.clone(),
        outcome,
    };
    let r = &v["result"];
    let names = |key: &str, field: &str| -> Vec<String> {
        let mut n: Vec<String> =
            r[key].as_array().into_iter().flatten().filter_map(|x| x[field].as_str().map(str::to_string)).collect();
        n.sort();
        n
    };
    let first_text = r["content"][0]["text"].as_str().unwrap_or("");
    let ok = |good: bool, seen: &Value| {
        if good {
            cell(Ok(seen.to_string()))
        } else {
            cell(Err(format!("unexpected (exit {:?}): {}\n{}", code, v, dump)))
        }
    };
    match feature {
        "tools/list" => ok(code == Some(0) && names("tools", "name") == tool_names(e), &json!(names("tools", "name"))),
        "resources/list" => {
            let want: Vec<String> = e.targets.iter().map(|(n, _)| format!("era://{}/info", n)).collect();
            ok(code == Some(0) && names("resources", "uri") == want, &json!(names("resources", "uri")))
        }
        "prompts/list" => {
            let want: Vec<String> = e.targets.iter().map(|(_, p)| format!("{}greet", p)).collect();
            ok(code == Some(0) && names("prompts", "name") == want, &json!(names("prompts", "name")))
        }
        "tools/call" => ok(code == Some(0) && first_text == format!("{}: hi", child), &json!(first_text)),
        "resources/read" => {
            let text = r["contents"][0]["text"].as_str().unwrap_or("");
            let want = if child == "leg" { "legacy resource" } else { "modern resource" };
            ok(code == Some(0) && text == want, &json!(text))
        }
        "prompts/get" => {
            let text = r["messages"][0]["content"]["text"].as_str().unwrap_or("");
            ok(code == Some(0) && text == format!("Hello Ada from {}", child), &json!(text))
        }
        "elicitation" if child == "leg" => {
            // The inspector CLI declares no elicitation (in `initialize` or in a 2026-07-28
            // request's clientCapabilities): the gateway answers the legacy child's
            // elicitation/create with an error naming the reason, never asks the client;
            // the child reports it as a tool error.
            let said = first_text.contains("did not declare the `elicitation` capability");
            ok(r["isError"] == true && said, &json!(first_text))
        }
        "elicitation" => {
            // The modern child reads the client's capabilities (for a session client, the
            // gateway passes on what its `initialize` declared) and refuses to ask: -32021.
            let msg = v["error"]["message"].as_str().unwrap_or("");
            ok(code != Some(0) && msg.contains("elicitation/create") && msg.contains("capabilit"), &json!(msg))
        }
        _ => cell(Err(format!("no such feature: {}", feature))),
    }
}

/// `mcpctl --url URL --json-output ARGS` from `home`: exit code, JSON, stderr.
fn mcpctl(url: &str, home: &std::path::Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut c = Command::new(support::mcpctl_bin());
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("HOME", home).env("NO_COLOR", "1");
    c.current_dir(home).args(["--url", url, "--json-output"]).args(args);
    let (code, out, err) = run(c, "mcpctl --url");
    (code, serde_json::from_str(out.trim()).unwrap_or(Value::Null), err)
}

/// mcpctl as a client of the gateway (`--url`; it probes `server/discover`, so it speaks
/// 2026-07-28): every feature but elicitation on one endpoint.
fn mcpctl_cells(port: u16, e: &Endpoint, home: &std::path::Path) -> Vec<Cell> {
    let url = format!("http://127.0.0.1:{}{}", port, e.path);
    let m = |args: &[&str]| mcpctl(&url, home, args);
    let mut cells = Vec::new();
    let mut push = |feature: String, outcome| {
        cells.push(Cell { client: "mcpctl", era: "modern", endpoint: e.path.to_string(), feature, outcome })
    };
    let run_id = format!("{}", std::process::id());
    let (code, v, err) = m(&["tools"]);
    let mut names: Vec<String> =
        v["tools"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(str::to_string)).collect();
    names.sort();
    push(
        "tools/list".into(),
        expect(code == Some(0) && names == tool_names(e), &json!({"tools": names, "stderr": err})),
    );
    let (code, v, _) = m(&["resources"]);
    let uris: Vec<String> =
        v["resources"].as_array().into_iter().flatten().filter_map(|r| r["uri"].as_str().map(str::to_string)).collect();
    let want: Vec<String> = e.targets.iter().map(|(n, _)| format!("era://{}/info", n)).collect();
    push("resources/list".into(), expect(code == Some(0) && uris == want, &json!(uris)));
    let (code, v, _) = m(&["prompts"]);
    let got: Vec<String> =
        v["prompts"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str().map(str::to_string)).collect();
    let want: Vec<String> = e.targets.iter().map(|(_, p)| format!("{}greet", p)).collect();
    push("prompts/list".into(), expect(code == Some(0) && got == want, &json!(got)));
    for (name, p) in e.targets {
        let f = |what: &str| format!("{} [{}]", what, name);
        let (code, v, _) = m(&["call", &format!("{}echo", p), "--text", "hi"]);
        // `resultType` is only in answers of 2026-07-28: the era mcpctl negotiated.
        let ok = code == Some(0) && v["result"]["content"][0]["text"] == format!("{}: hi", name);
        push(f("tools/call"), expect(ok && v["result"]["resultType"] == "complete", &v["result"]));
        let tag = format!("progress-{}", run_id);
        let (code, v, err) = m(&["--progress", "call", &format!("{}slow", p), "--ms", "300", "--tag", &tag]);
        let lines = err.lines().filter(|l| l.starts_with("[progress]")).count();
        let ok = code == Some(0) && lines >= 1 && v["result"]["content"][0]["text"] == format!("slow {} done", tag);
        push(f("progress"), expect(ok, &json!({"progress lines": lines, "stderr": err})));
        // Cancel: a call that outlives --timeout is given up (exit 2), and the child is told.
        let tag = format!("cancel-mcpctl-{}-{}", run_id, name);
        let (code, v, _) = m(&["--timeout", "3", "call", &format!("{}slow", p), "--ms", "20000", "--tag", &tag]);
        let mut status = Value::Null;
        for _ in 0..50 {
            status = m(&["call", &format!("{}status", p), "--tag", &tag]).1["result"]["content"][0]["text"].clone();
            if status != "running" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let ok = code == Some(2) && status == "cancelled";
        push(f("cancel"), expect(ok, &json!({"call": v["status"], "child saw": status})));
        let (code, v, _) = m(&["read", &format!("era://{}/info", name)]);
        let text = if *name == "leg" { "legacy resource" } else { "modern resource" };
        push(f("resources/read"), expect(code == Some(0) && v["result"]["contents"][0]["text"] == text, &v["result"]));
        let (code, v, _) = m(&["prompt", &format!("{}greet", p), "--name", "Ada"]);
        let ok = code == Some(0) && v["result"]["messages"][0]["content"]["text"] == format!("Hello Ada from {}", name);
        push(f("prompts/get"), expect(ok, &v["result"]));
    }
    cells
}

/// mcpctl's elicitation cell: refused by design. It answers questions only on a terminal;
/// a modern child's question is refused by mcpctl itself (it declares elicitation only on a
/// terminal), a legacy child's by the gateway (the request did not declare it).
fn mcpctl_elicit_cell(port: u16, e: &Endpoint, child: &str, prefix: &str, home: &std::path::Path) -> Cell {
    let url = format!("http://127.0.0.1:{}{}", port, e.path);
    let (code, v, _) = mcpctl(&url, home, &["call", &format!("{}ask", prefix), "--what", "deploy"]);
    let said = v["error"].as_str().unwrap_or("").to_string() + v["result"]["content"][0]["text"].as_str().unwrap_or("");
    let why = if child == "leg" { "did not declare the `elicitation` capability" } else { "can only do on a terminal" };
    Cell {
        client: "mcpctl",
        era: "modern",
        endpoint: e.path.to_string(),
        feature: format!("elicitation refused (not a terminal) [{}]", child),
        outcome: expect(code == Some(1) && said.contains(why), &json!(said)),
    }
}

/// A session-era client sees session-era answers: what a 2026-07-28 child adds to its
/// results (`resultType`, cache hints, its identity in `_meta`) is the gateway's to
/// translate, not to pass on to a 2025-11-25 client (on `/mcp` it would even name the
/// child where the session's `initialize` named the gateway).
fn translation_cells(port: u16) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (path, prefix) in [("/mcp", "mod__"), ("/mcp/mod", "")] {
        let c = McpClient::open(format!("http://127.0.0.1:{}{}", port, path));
        let answers = [
            (
                "tools/call",
                c.request("tools/call", json!({"name": format!("{}echo", prefix), "arguments": {"text": "x"}})),
            ),
            ("resources/read", c.request("resources/read", json!({"uri": "era://mod/info"}))),
            (
                "prompts/get",
                c.request("prompts/get", json!({"name": format!("{}greet", prefix), "arguments": {"name": "A"}})),
            ),
            ("resources/list", c.request("resources/list", json!({}))),
            ("prompts/list", c.request("prompts/list", json!({}))),
        ];
        for (method, a) in answers {
            let r = &a["result"];
            let leaked: Vec<&str> =
                ["resultType", "ttlMs", "cacheScope"].into_iter().filter(|k| r.get(*k).is_some()).collect();
            let identity = r["_meta"].get("io.modelcontextprotocol/serverInfo").is_some();
            let ok = r.is_object() && leaked.is_empty() && !identity;
            cells.push(Cell {
                client: "raw session",
                era: "legacy",
                endpoint: path.to_string(),
                feature: format!("{} [mod]: no 2026-07-28 fields", method),
                outcome: expect(ok, r),
            });
        }
    }
    cells
}

type Job<'a> = (String, Box<dyn FnOnce() -> Vec<Cell> + Send + 'a>);

/// Run `jobs`, `workers` at a time; all their cells.
fn pool(jobs: Vec<Job>, workers: usize) -> Vec<Cell> {
    let queue = Mutex::new(jobs);
    let cells = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let job = queue.lock().unwrap().pop();
                let Some((label, job)) = job else { break };
                let t = Instant::now();
                let out = job();
                eprintln!("job {:<40} {:.1} s", label, t.elapsed().as_secs_f64());
                cells.lock().unwrap().extend(out);
            });
        }
    });
    cells.into_inner().unwrap()
}

#[test]
fn every_client_of_both_eras_on_every_endpoint_in_front_of_children_of_both_eras() {
    if !support::peers_available() {
        return;
    }
    let started = Instant::now();
    let p = project();
    let home = p.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let d = Daemon::start(&p, &[]);
    d.wait_ready(&[]);
    let port = d.port;
    let home = home.as_path();
    let url = |e: &Endpoint| format!("http://127.0.0.1:{}{}", port, e.path);

    // The SDK drivers: one per (client, era, endpoint), all at once; each holds its
    // question to `leg` back until phase 2.
    type ToCells = Box<dyn FnOnce(Result<Value, String>) -> Vec<Cell>>;
    let mut drivers: Vec<(Gated, ToCells)> = Vec::new();
    for e in &ENDPOINTS {
        for (client, sdk, era) in [("ts-v2", "v2", "modern"), ("ts-v2", "v2", "legacy"), ("sdk-1.32", "v1", "legacy")] {
            let what = format!("era_client.mjs {} {} {}", sdk, era, e.path);
            let g = Gated::spawn(js(sdk, &url(e), era, &targets_arg(e), true), what);
            drivers.push((g, Box::new(move |r| sdk_cells(client, era, e, r))));
        }
        for era in ["modern", "legacy"] {
            let g = Gated::spawn(py(&url(e), era, &targets_arg(e)), format!("era_client.py {} {}", era, e.path));
            drivers.push((g, Box::new(move |r| sdk_cells("py-2.3", era, e, r))));
        }
    }
    // Clients that declare no elicitation, on /mcp (both children): refused, and why.
    let all = &ENDPOINTS[0];
    for (client, sdk, era) in [("ts-v2", "v2", "modern"), ("ts-v2", "v2", "legacy"), ("sdk-1.32", "v1", "legacy")] {
        let what = format!("era_client.mjs {} {} /mcp (no elicitation)", sdk, era);
        let g = Gated::spawn(js(sdk, &url(all), era, &targets_arg(all), false), what);
        drivers.push((g, Box::new(move |r| no_elicit_cells(client, era, all, r))));
    }

    // Meanwhile: mcpctl, the inspector (one method per run) and a raw session client.
    let mut jobs: Vec<Job> = Vec::new();
    for e in &ENDPOINTS {
        jobs.push((format!("mcpctl {}", e.path), Box::new(move || mcpctl_cells(port, e, home))));
    }
    let [all, leg, modn] = &ENDPOINTS;
    let inspector_runs: Vec<(&str, &Endpoint, &str, &str, Vec<&str>)> = vec![
        ("modern", all, "tools/list", "", vec!["--method", "tools/list"]),
        ("modern", all, "resources/list", "", vec!["--method", "resources/list"]),
        (
            "modern",
            leg,
            "tools/call",
            "leg",
            vec!["--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=hi"],
        ),
        (
            "modern",
            all,
            "prompts/get",
            "leg",
            vec!["--method", "prompts/get", "--prompt-name", "leg__greet", "--prompt-args", "name=Ada"],
        ),
        ("modern", modn, "resources/read", "mod", vec!["--method", "resources/read", "--uri", "era://mod/info"]),
        (
            "modern",
            all,
            "elicitation",
            "mod",
            vec!["--method", "tools/call", "--tool-name", "mod__ask", "--tool-arg", "what=deploy"],
        ),
        ("legacy", all, "tools/list", "", vec!["--method", "tools/list"]),
        (
            "legacy",
            all,
            "tools/call",
            "mod",
            vec!["--method", "tools/call", "--tool-name", "mod__echo", "--tool-arg", "text=hi"],
        ),
        ("legacy", leg, "resources/read", "leg", vec!["--method", "resources/read", "--uri", "era://leg/info"]),
        (
            "legacy",
            modn,
            "elicitation",
            "mod",
            vec!["--method", "tools/call", "--tool-name", "ask", "--tool-arg", "what=deploy"],
        ),
    ];
    for (era, e, feature, child, args) in inspector_runs {
        let label = format!("inspector {} {} {}", era, e.path, feature);
        jobs.push((label, Box::new(move || vec![inspector_cell(era, e, feature, child, &args, home, port)])));
    }
    jobs.push(("raw session".into(), Box::new(move || translation_cells(port))));
    let mut cells = pool(jobs, 3);
    eprintln!("pool done at {:.1} s", started.elapsed().as_secs_f64());

    // Phase 2: every driver has run all else; the questions to `leg`, one at a time.
    let until = Instant::now() + Duration::from_secs(90);
    for (g, _) in drivers.iter_mut() {
        g.until_ready(until);
    }
    let phase1 = started.elapsed();
    for (mut g, to_cells) in drivers {
        let r = g.finish(Instant::now() + Duration::from_secs(30));
        cells.extend(to_cells(r));
    }
    for (era, e, args) in [
        ("modern", leg, vec!["--method", "tools/call", "--tool-name", "ask", "--tool-arg", "what=deploy"]),
        ("legacy", all, vec!["--method", "tools/call", "--tool-name", "leg__ask", "--tool-arg", "what=deploy"]),
    ] {
        cells.push(inspector_cell(era, e, "elicitation", "leg", &args, home, port));
    }
    for e in &ENDPOINTS {
        for (child, prefix) in e.targets {
            cells.push(mcpctl_elicit_cell(port, e, child, prefix, home));
        }
    }

    cells.sort_by(|a, b| (a.client, a.era, &a.endpoint, &a.feature).cmp(&(b.client, b.era, &b.endpoint, &b.feature)));
    let mut failed = Vec::new();
    for c in &cells {
        let (mark, seen) = match &c.outcome {
            Ok(s) => ("ok  ", s.as_str()),
            Err(s) => ("FAIL", s.as_str()),
        };
        let line = format!("{} {:<11} {:<6} {:<8} {:<42} {}", mark, c.client, c.era, c.endpoint, c.feature, seen);
        eprintln!("{}", line.chars().take(300).collect::<String>());
        if c.outcome.is_err() {
            failed.push(format!("{} {} {} {}: {}", c.client, c.era, c.endpoint, c.feature, seen));
        }
    }
    eprintln!(
        "era matrix: {} cells, {} failed; {:.1} s (phase 1 {:.1} s)",
        cells.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        phase1.as_secs_f64()
    );
    assert!(cells.len() >= 180, "too few cells: {}", cells.len());
    assert!(failed.is_empty(), "{} of {} cells failed:\n{}", failed.len(), cells.len(), failed.join("\n"));
}
