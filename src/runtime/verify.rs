//! `mcpctl runtime verify`: re-hash every file mcpctl unpacked into the runtime root (the
//! managed uv's two binaries, the managed Node's whole tree) against the sha256 list written
//! when it was installed, and report any file changed or missing.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::install::hex;
use super::node::{NodeSettings, CHECKSUMS};
use super::Settings;

/// `<root>/uv/<version>.mcpctl-sha256`: the uv binaries' sha256, written by the installer
/// beside (not inside) the uv folder.
pub fn uv_checksums_path(settings: &Settings) -> std::path::PathBuf {
    settings.root.join("uv").join(format!("{}.mcpctl-sha256", settings.version()))
}

/// Write the sha256 list of `files` (relative to `dir`) into `out`.
pub fn record(dir: &Path, files: &[&str], out: &Path) -> std::io::Result<()> {
    let mut text = String::new();
    for f in files {
        text.push_str(&format!("{}  {}\n", hash_file(&dir.join(f))?, f));
    }
    std::fs::write(out, text)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Check the files of `dir` against the list at `sums`: (files checked, problems).
fn check(dir: &Path, sums: &Path) -> Result<(usize, Vec<String>), String> {
    let text = std::fs::read_to_string(sums).map_err(|e| format!("cannot read {}: {e}", sums.display()))?;
    let mut problems = Vec::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((want, rel)) = line.split_once("  ") else {
            problems.push(format!("{}: malformed line `{line}`", sums.display()));
            continue;
        };
        n += 1;
        let path = dir.join(rel);
        match hash_file(&path) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!("{}: sha256 {got}, expected {want}", path.display())),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((n, problems))
}

/// One runtime's verdict as JSON, and its problems.
fn runtime_report(name: &str, dir: &Path, sums: &Path, present: bool) -> (Value, Vec<String>) {
    if !present {
        return (json!({"runtime": name, "installed": false}), vec![]);
    }
    if !sums.is_file() {
        let why = format!("{name}: no checksum list at {} (installed by an older mcpctl?); reinstall with `mcpctl runtime install --force`", sums.display());
        return (json!({"runtime": name, "installed": true, "ok": false, "why": why}), vec![why]);
    }
    match check(dir, sums) {
        Ok((n, problems)) => (
            json!({"runtime": name, "installed": true, "files": n, "ok": problems.is_empty(), "problems": problems}),
            problems,
        ),
        Err(e) => (json!({"runtime": name, "installed": true, "ok": false, "why": e}), vec![e]),
    }
}

/// Verify uv and Node under the root: the JSON report and every problem found.
pub fn verify(uv: &Settings, node: &NodeSettings) -> (Value, Vec<String>) {
    // A folder that is there counts as installed, even with a file missing (that is a finding).
    let (u, mut problems) = runtime_report("uv", &uv.uv_dir(), &uv_checksums_path(uv), uv.uv_dir().is_dir());
    let dir = node.node_dir();
    let (n, p2) = runtime_report("node", &dir, &dir.join(CHECKSUMS), dir.is_dir());
    problems.extend(p2);
    (json!({"root": uv.root, "uv": u, "node": n, "ok": problems.is_empty()}), problems)
}
