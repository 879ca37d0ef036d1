//! Runs the shell examples of docs/client.md. A ```sh block whose first line is
//! `# run-in: fixtures/demo` is run in a copy of fixtures/demo (its config pointed at the
//! fixture server built with the tests), with `mcpctl` first on PATH. Each non-comment line
//! is one command run with `sh -c`; it must exit 0, or N when the line ends in `# exit N`.
//! The `# => TEXT` lines under a command must be lines of its stdout, in that order.

use crate::support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

struct Example {
    line_no: usize,
    command: String,
    exit: i32,
    expect: Vec<String>,
}

fn examples(doc: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut in_block = false;
    let mut run = false;
    let mut first = false;
    for (i, line) in doc.lines().enumerate() {
        if !in_block {
            if line.trim_end() == "```sh" {
                in_block = true;
                first = true;
                run = false;
            }
            continue;
        }
        if line.trim_end() == "```" {
            in_block = false;
            continue;
        }
        if first {
            first = false;
            run = line.trim() == "# run-in: fixtures/demo";
            continue;
        }
        if !run || line.trim().is_empty() {
            continue;
        }
        if let Some(e) = line.strip_prefix("# => ") {
            out.last_mut()
                .unwrap_or_else(|| panic!("docs/client.md:{}: `# =>` before any command", i + 1))
                .expect
                .push(e.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (command, exit) = match line.rsplit_once("# exit ") {
            Some((c, n)) => (c.trim_end().to_string(), n.trim().parse().expect("# exit N")),
            None => (line.to_string(), 0),
        };
        out.push(Example { line_no: i + 1, command, exit, expect: Vec::new() });
    }
    out
}

fn demo_copy() -> support::Project {
    let text = std::fs::read_to_string(support::repo().join("fixtures/demo/.mcpctl/config.json")).unwrap();
    let mut cfg: Value = serde_json::from_str(&text).unwrap();
    let fixture = json!(support::fixture_bin());
    for (_, s) in cfg["mcpServers"].as_object_mut().unwrap().iter_mut() {
        if s["command"] == "../../target/release/mcpctl-fixture-server" {
            s["command"] = fixture.clone();
        }
    }
    support::Project::new(&cfg)
}

#[test]
fn client_md_examples_run() {
    let doc = std::fs::read_to_string(support::repo().join("docs/client.md")).unwrap();
    let examples = examples(&doc);
    assert!(examples.len() >= 20, "only {} runnable examples found", examples.len());
    let project = demo_copy();
    let bin_dir = support::mcpctl_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut failures = Vec::new();
    for ex in &examples {
        if let Err(why) = run(ex, &project.root, &path) {
            failures.push(format!("docs/client.md:{}: `{}`: {}", ex.line_no, ex.command, why));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

fn run(ex: &Example, dir: &Path, path: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .args(["-c", &ex.command])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dump = || format!("\n--- stdout\n{}--- stderr\n{}", stdout, stderr);
    if out.status.code() != Some(ex.exit) {
        return Err(format!("exit {:?}, expected {}{}", out.status.code(), ex.exit, dump()));
    }
    let mut lines = stdout.lines().map(|l| l.trim_end());
    for want in &ex.expect {
        if !lines.any(|l| l == want.trim_end()) {
            return Err(format!("stdout lacks the line {:?} (in order){}", want, dump()));
        }
    }
    Ok(())
}

#[test]
fn the_convention_is_parsed() {
    let doc = "```sh\n# run-in: fixtures/demo\nmcpctl list\n# => a\n# a comment\nmcpctl x   # exit 2\n```\n```sh\nnot run\n```\n";
    let ex = examples(doc);
    assert_eq!(ex.len(), 2);
    assert_eq!((ex[0].command.as_str(), ex[0].exit, ex[0].expect.clone()), ("mcpctl list", 0, vec!["a".to_string()]));
    assert_eq!((ex[1].command.as_str(), ex[1].exit), ("mcpctl x", 2));
}
