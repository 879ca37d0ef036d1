//! docs/runtime.md's air-gapped image recipe, tested without a container engine.
//!
//! The test reads the ```dockerfile block of docs/runtime.md and carries it out on folders:
//! the build stage's COPY and WORKDIR lines in one folder (its `RUN mcpctl runtime install`
//! needs the network, so `runtime status`, which reads the same config, runs instead), then
//! the final stage's `COPY --from=build` lines into an empty root. Only the static musl
//! binaries go in (`mcpctl` and, standing in for the user's server, a static
//! `mcpctl-fixture-server`): no /lib, no /usr/lib, no shell. The final stage's ENTRYPOINT
//! then runs in that root with its WORKDIR and ENV (plus Docker's default PATH and HOME),
//! in new network, mount and PID namespaces (`unshare --net --mount --pid --fork --root`):
//! `list`, `call fx echo --text hi`, and `start --foreground` as PID 1 with `status` and a
//! call through the daemon entered with `nsenter`, then SIGTERM as `docker stop` sends it.
//! The namespace has only `lo` (brought up, as a container runtime does): no network.
//!
//! Needs root (or the right to unshare), util-linux's `unshare`/`nsenter`, `ip`, and the
//! musl binaries in target/x86_64-unknown-linux-musl/debug (`make static-test`, part of
//! `make test`). Without them the test is skipped; under MCPCTL_REQUIRE_PEERS a missing musl
//! build or util-linux fails it, while no iproute2 or no right to make namespaces only skips.
//! Every process it starts is bounded and stopped by its pid.

use crate::support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MUSL: &str = "x86_64-unknown-linux-musl";
/// What `docker run` puts in the environment when the image sets no PATH.
const DOCKER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the test puts the stand-in server inside the image (not part of the recipe).
const SERVER_IN_IMAGE: &str = "/usr/local/bin/mcpctl-fixture-server";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Skip for want of what `make test` or every Debian system provides (the musl builds,
/// util-linux): a failure under MCPCTL_REQUIRE_PEERS.
fn missing<T>(what: &str) -> Option<T> {
    support::missing_peer(&format!("tests/it/image_recipe.rs: {what}"));
    None
}

/// Skip for want of what no make target provides (iproute2, root): never a failure.
fn missing_optional<T>(what: &str) -> Option<T> {
    support::missing_optional(&format!("tests/it/image_recipe.rs: {what}"));
    None
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut dirs: Vec<&str> = path.split(':').collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
    dirs.into_iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

struct Tools {
    mcpctl: PathBuf,
    server: PathBuf,
    unshare: PathBuf,
    nsenter: PathBuf,
    ip: PathBuf,
}

fn tools() -> Option<Tools> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let dir = target.join(MUSL).join("debug");
    let (mcpctl, server) = (dir.join("mcpctl"), dir.join("mcpctl-fixture-server"));
    for b in [&mcpctl, &server] {
        if !b.is_file() {
            return missing(&format!(
                "{} is missing: build it with `make static-test` \
                 (cargo build --target {MUSL} --bin mcpctl --bin mcpctl-fixture-server)",
                b.display()
            ));
        }
    }
    let mut found = Vec::new();
    for (name, package) in [("unshare", "util-linux"), ("nsenter", "util-linux"), ("ip", "iproute2")] {
        match which(name) {
            Some(p) => found.push(p),
            None if package == "util-linux" => return missing(&format!("`{name}` is not installed ({package})")),
            None => return missing_optional(&format!("`{name}` is not installed ({package})")),
        }
    }
    let ip = found.pop().unwrap();
    let nsenter = found.pop().unwrap();
    let unshare = found.pop().unwrap();
    // Can we make namespaces here (root, or a container that allows it)?
    let probe = Command::new(&unshare).args(["--net", "--mount", "--pid", "--fork", "true"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return missing_optional(&format!(
                "`unshare --net --mount --pid --fork` is not allowed here (run as root): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return missing(&format!("cannot run unshare: {e}")),
    }
    Some(Tools { mcpctl, server, unshare, nsenter, ip })
}

// ---- the recipe ----------------------------------------------------------------------

#[derive(Debug, Default)]
struct Stage {
    from: String,
    copies: Vec<(Option<String>, String, String)>, // (--from, source, destination)
    workdir: Option<String>,
    env: Vec<(String, String)>,
    runs: Vec<String>,
    entrypoint: Option<Vec<String>>,
}

/// The first ```dockerfile block of docs/runtime.md, stage by stage. Strict: anything this
/// test cannot carry out faithfully is an error rather than ignored.
fn recipe() -> Vec<Stage> {
    let doc = fs::read_to_string(repo().join("docs/runtime.md")).unwrap();
    let start = doc.find("```dockerfile\n").expect("docs/runtime.md has no ```dockerfile block") + 14;
    let block = &doc[start..start + doc[start..].find("```").expect("unterminated ```dockerfile block")];
    let mut stages: Vec<Stage> = Vec::new();
    for (n, line) in block.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("docs/runtime.md dockerfile line {}: `{line}`", n + 1);
        let (op, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let args: Vec<&str> = rest.split_whitespace().collect();
        if op == "FROM" {
            stages.push(Stage { from: rest.trim().to_string(), ..Default::default() });
            continue;
        }
        let st = stages.last_mut().unwrap_or_else(|| panic!("{}: before any FROM", at()));
        match op {
            "COPY" => {
                let (from, paths) = match args.first() {
                    Some(a) if a.starts_with("--from=") => (Some(a["--from=".len()..].to_string()), &args[1..]),
                    _ => (None, &args[..]),
                };
                assert!(
                    paths.len() == 2,
                    "{}: this test expects COPY SRC DST (a `#` after an instruction is not a comment in a Dockerfile)",
                    at()
                );
                assert!(paths[1].starts_with('/'), "{}: the destination should be absolute", at());
                st.copies.push((from, paths[0].to_string(), paths[1].to_string()));
            }
            "WORKDIR" => {
                assert!(args.len() == 1 && args[0].starts_with('/'), "{}: WORKDIR takes one absolute path", at());
                st.workdir = Some(args[0].to_string());
            }
            "ENV" => {
                for a in &args {
                    let (k, v) = a.split_once('=').unwrap_or_else(|| panic!("{}: this test expects ENV K=V ...", at()));
                    st.env.push((k.to_string(), v.to_string()));
                }
            }
            "RUN" => st.runs.push(rest.trim().to_string()),
            "ENTRYPOINT" => {
                st.entrypoint = Some(
                    serde_json::from_str(rest.trim())
                        .unwrap_or_else(|e| panic!("{}: ENTRYPOINT should be a JSON array: {e}", at())),
                )
            }
            _ => panic!("{}: this test does not know `{op}`; teach tests/it/image_recipe.rs", at()),
        }
    }
    assert_eq!(stages.len(), 2, "the recipe should have a build stage and a final stage");
    stages
}

/// A path inside the image, as a path under `root`.
fn inside(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn copy_tree(from: &Path, to: &Path) {
    let meta = fs::symlink_metadata(from).unwrap_or_else(|e| panic!("COPY source {} is missing: {e}", from.display()));
    if meta.is_dir() {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(from, to).unwrap();
    }
}

/// True when the ELF file has no PT_INTERP (static or static-pie: no loader, no libc).
fn elf_is_static(p: &Path) -> bool {
    let b = fs::read(p).unwrap();
    assert!(b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2, "{} is not a 64-bit ELF file", p.display());
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3 // PT_INTERP
    })
}

fn files_under(root: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

// ---- running in the namespace ----------------------------------------------------------

/// A process tree started by the test: SIGKILLed by pid if still there when dropped
/// (`unshare --kill-child` then takes the namespace's PID 1 with it).
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_bounded(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {secs}s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The collected output of a bounded run.
fn run_bounded(mut cmd: Command, secs: u64, what: &str) -> Output {
    let mut child = Started(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_bounded(&mut child.0, secs, what);
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

struct Image {
    root: PathBuf,
    workdir: String,
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
}

impl Image {
    /// The image's environment, and nothing of the test's.
    fn envs(&self, cmd: &mut Command) {
        cmd.env_clear().env("PATH", DOCKER_PATH).env("HOME", "/root");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// `docker run IMAGE args...`: new net/mount/pid namespaces, `lo` up, then
    /// chroot + chdir into the tree and exec the entrypoint (no shell inside).
    fn run_cmd(&self, t: &Tools, args: &[&str]) -> Command {
        let mut cmd = Command::new(&t.unshare);
        self.envs(&mut cmd);
        cmd.args(["--net", "--mount", "--pid", "--fork", "--kill-child", "/bin/sh", "-c"])
            .arg(r#"ip="$1"; unshare="$2"; root="$3"; wd="$4"; shift 4; "$ip" link set lo up && exec "$unshare" --root="$root" --wd="$wd" "$@""#)
            .arg("sh")
            .arg(&t.ip)
            .arg(&t.unshare)
            .arg(&self.root)
            .arg(&self.workdir)
            .args(&self.entrypoint)
            .args(args);
        cmd
    }

    /// `docker exec CONTAINER mcpctl args...`: the running namespace's root, folder,
    /// network and PIDs.
    fn exec_cmd(&self, t: &Tools, pid1: u32, args: &[&str]) -> Command {
        let mut cmd = Command::new(&t.nsenter);
        self.envs(&mut cmd);
        cmd.arg("--target")
            .arg(pid1.to_string())
            .args(["--net", "--mount", "--pid", "--root", "--wd"])
            .args(&self.entrypoint)
            .args(args);
        cmd
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn check(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr));
}

#[test]
fn the_documented_image_runs_offline_from_static_binaries_alone() {
    let Some(t) = tools() else { return };
    assert!(elf_is_static(&t.mcpctl), "{} is dynamically linked; expected the musl build", t.mcpctl.display());
    assert!(elf_is_static(&t.server), "{} is dynamically linked; expected the musl build", t.server.display());
    let stages = recipe();
    let (build, fin) = (&stages[0], &stages[1]);

    let tmp = std::env::temp_dir().join(format!("mcpctl-image-recipe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(tmp.clone());
    let context = tmp.join("context");
    let build_fs = tmp.join("build");
    let root = tmp.join("root");
    for d in [&context, &build_fs, &root] {
        fs::create_dir_all(d).unwrap();
    }

    // The build context: the static binary and a config naming a server inside the image.
    fs::copy(&t.mcpctl, context.join("mcpctl")).unwrap();
    let config = format!(r#"{{"mcpServers": {{"fx": {{"command": "{SERVER_IN_IMAGE}", "alwaysAllow": ["echo"]}}}}}}"#);

    // The build stage, on a folder.
    for (from, src, dst) in &build.copies {
        assert!(from.is_none(), "the build stage copies from the build context");
        let s = if src == "mcpctl" {
            context.join("mcpctl")
        } else if dst.ends_with(".json") {
            fs::write(context.join(src), &config).unwrap();
            context.join(src)
        } else {
            panic!("the build stage copies `{src}`: this test knows `mcpctl` and the config (*.json)")
        };
        copy_tree(&s, &inside(&build_fs, dst));
    }
    let build_wd = build.workdir.clone().unwrap_or_else(|| "/".into()); // Docker's default
    fs::create_dir_all(inside(&build_fs, &build_wd)).unwrap();
    assert_eq!(build.runs, ["mcpctl runtime install --yes"], "the build stage's RUN lines changed: update this test");
    let runtime_root = build
        .env
        .iter()
        .find(|(k, _)| k == "MCPCTL_RUNTIME_ROOT")
        .map(|(_, v)| v.clone())
        .expect("the build stage sets MCPCTL_RUNTIME_ROOT");
    // `runtime install` needs the network and this config has no uv server; what it would
    // leave is the root folder. `runtime status` reads the config just as install does.
    fs::create_dir_all(inside(&build_fs, &runtime_root)).unwrap();
    let build_image = Image {
        root: build_fs.clone(),
        workdir: build_wd,
        env: build.env.clone(),
        entrypoint: vec!["/usr/local/bin/mcpctl".into()],
    };
    let o = run_bounded(build_image.run_cmd(&t, &["runtime", "status"]), 30, "build stage: mcpctl runtime status");
    check(&o, "the build stage's `mcpctl runtime status` (its RUN line reads the same config) failed");

    // The final stage, into an empty root.
    for (from, src, dst) in &fin.copies {
        let alias = build.from.rsplit(' ').next().unwrap_or_default();
        assert_eq!(from.as_deref(), Some(alias), "the final stage copies only from the build stage");
        copy_tree(&inside(&build_fs, src), &inside(&root, dst));
    }
    // The user's server: here a static stdio server that needs nothing from the image.
    copy_tree(&t.server, &inside(&root, SERVER_IN_IMAGE));
    let workdir = fin.workdir.clone().unwrap_or_else(|| "/".into());
    fs::create_dir_all(inside(&root, &workdir)).unwrap();
    let image = Image {
        root: root.clone(),
        workdir,
        env: fin.env.clone(),
        entrypoint: fin.entrypoint.clone().expect("the final stage has no ENTRYPOINT"),
    };

    // Nothing but the tree: no C library, no loader, no shell.
    for d in ["lib", "lib64", "usr/lib", "usr/bin", "bin", "sbin"] {
        assert!(!root.join(d).exists(), "the test image has /{d}: it should hold only what the recipe copies");
    }
    let mut files = Vec::new();
    files_under(&root, &mut files);
    files.sort();
    let expected_files = 3; // mcpctl, the server, the config
    assert_eq!(files.len(), expected_files, "the image tree holds: {files:#?}");

    // `docker run IMAGE list`
    let o = run_bounded(image.run_cmd(&t, &["list"]), 30, "mcpctl list");
    check(&o, "`mcpctl list` in the image (is the config where mcpctl looks, from WORKDIR?)");
    assert!(text(&o.stdout).contains("fx"), "`list` does not show `fx`:\n{}", text(&o.stdout));

    // `docker run IMAGE call fx echo --text hi`
    let o = run_bounded(image.run_cmd(&t, &["call", "fx", "echo", "--text", "hi"]), 30, "mcpctl call");
    check(&o, "`mcpctl call fx echo --text hi` in the image");
    assert_eq!(text(&o.stdout), "hi\n");

    // `docker run IMAGE start --foreground`: the gateway as PID 1.
    let log = tmp.join("pid1.log");
    let mut cmd = image.run_cmd(&t, &["start", "--foreground"]);
    cmd.stdin(Stdio::null()).stdout(fs::File::create(&log).unwrap()).stderr(fs::File::create(&log).unwrap());
    let mut pid1 = Started(cmd.spawn().unwrap());
    let unshare_pid = pid1.0.id();
    // unshare --fork's child execs sh, which execs unshare --root, which execs mcpctl.
    let deadline = Instant::now() + Duration::from_secs(10);
    let inner = loop {
        let children =
            fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).unwrap_or_default();
        if let Some(c) = children.split_whitespace().next().and_then(|c| c.parse::<u32>().ok()) {
            if fs::read_link(format!("/proc/{c}/root")).map(|r| r == root).unwrap_or(false) {
                break c;
            }
        }
        assert!(
            pid1.0.try_wait().unwrap().is_none(),
            "`start --foreground` exited at once:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "the namespace's PID 1 never entered the image root");
        std::thread::sleep(Duration::from_millis(20));
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run_bounded(image.exec_cmd(&t, inner, &["--json-output", "status"]), 30, "mcpctl status");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["daemon"]["status"] == "running" && v["servers"][0]["status"] == "ready" {
            assert_eq!(v["daemon"]["pid"], 1, "the daemon should be the namespace's PID 1");
            assert_eq!(v["daemon"]["project_dir"], image.workdir.as_str());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never became ready; last status: {}\n{}\nits log:\n{}",
            text(&o.stdout),
            text(&o.stderr),
            fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A call through the daemon (`docker exec CONTAINER mcpctl call ...`).
    let o = run_bounded(image.exec_cmd(&t, inner, &["-v", "call", "fx", "echo", "--text", "via-daemon"]), 30, "call");
    check(&o, "`mcpctl call` through the daemon in the image");
    assert_eq!(text(&o.stdout), "via-daemon\n");
    let err = text(&o.stderr);
    assert!(
        err.contains("using the daemon") && !err.contains("connecting directly") && !err.contains("the usual way"),
        "the call did not go through the daemon:\n{err}"
    );
    // No network: the namespace has nothing but loopback.
    let mut cmd = Command::new(&t.nsenter);
    cmd.arg("--target").arg(inner.to_string()).arg("--net").arg(&t.ip).args(["-o", "link", "show"]);
    let o = run_bounded(cmd, 10, "ip link show");
    check(&o, "`ip link show` in the namespace");
    let links: Vec<String> =
        text(&o.stdout).lines().map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()).collect();
    assert_eq!(links, ["lo"], "the namespace should have no network but loopback");
    // State went where the recipe says: WORKDIR/.mcpctl.
    assert!(inside(&root, &image.workdir).join(".mcpctl/logs").is_dir(), "no .mcpctl/logs in WORKDIR");

    // `docker stop`: SIGTERM to PID 1, a clean exit (status 0).
    // SAFETY: a signal to the namespace's PID 1, a child of the unshare this test started.
    unsafe { libc::kill(inner as libc::pid_t, libc::SIGTERM) };
    let status = wait_bounded(&mut pid1.0, 15, "the gateway after SIGTERM");
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the gateway exited with {status} after SIGTERM:\n{log_text}");
    assert!(log_text.contains("call session=cli"), "the daemon's log shows no call:\n{log_text}");
}
