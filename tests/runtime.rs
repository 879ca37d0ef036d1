//! The managed runtime, offline: a local HTTP server on 127.0.0.1 serves release-shaped
//! archives built here, and a test pin points at them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpctl::error::Status;
use mcpctl::runtime::{
    self, consent_text, ensure_uv, install_runtime, prepare_command_with, status, InstallOptions, InstallPlan,
    Installer, Pin, Policy, Settings,
};
use support::archive::*;

const VERSION: &str = "0.11.21";
const FILE: &str = "uv-x86_64-unknown-linux-musl.tar.gz";
const STEM: &str = "uv-x86_64-unknown-linux-musl";

fn yes(_: &InstallPlan) -> bool {
    true
}

/// A server holding a good archive, and settings for a fresh root pointing at it.
struct Fixture {
    server: Server,
    dir: TempDir,
    settings: Settings,
    archive: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_archive(release_archive(STEM, VERSION))
    }

    fn with_archive(archive: Vec<u8>) -> Fixture {
        let server = Server::start();
        server.put(FILE, 200, archive.clone());
        let dir = TempDir::new("rt");
        let settings = Settings {
            root: dir.path().join("root"),
            pin: Some(Pin {
                version: VERSION.into(),
                target: "test".into(),
                file: FILE.into(),
                sha256: sha256_hex(&archive),
                size: Some(archive.len() as u64),
            }),
            download_url: Some(server.base_url()),
            policy: Policy::Auto,
        };
        Fixture { server, dir, settings, archive }
    }

    fn uv(&self) -> PathBuf {
        self.settings.root.join("uv").join(VERSION).join("uv")
    }
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{} failed", program.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Entries of `<root>/uv` whose name starts with a dot (temp files left behind).
fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("uv"))
        .map(|rd| {
            rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect()
        })
        .unwrap_or_default()
}

#[test]
fn good_install_places_executable_uv_and_uvx() {
    let f = Fixture::new();
    let uv = ensure_uv(&f.settings, false, &yes).unwrap();
    assert!(uv.installed_now);
    assert_eq!(uv.uv, f.uv());
    assert_eq!(uv.uvx, f.settings.root.join("uv").join(VERSION).join("uvx"));
    assert!(run(&uv.uv, &["--version"]).contains(&format!("uv {VERSION}")));
    assert!(run(&uv.uvx, &["x"]).contains("uvx"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&uv.uv).unwrap().permissions().mode() & 0o777, 0o755);
    // Only the two binaries were taken from the archive.
    let mut names: Vec<_> = std::fs::read_dir(&uv.dir).unwrap().flatten().map(|e| e.file_name()).collect();
    names.sort();
    assert_eq!(names, vec!["uv", "uvx"]);
    assert!(leftovers(&f.settings.root).is_empty());

    // Installed: no second download.
    let again = ensure_uv(&f.settings, false, &|_| panic!("must not ask")).unwrap();
    assert!(!again.installed_now);
    assert_eq!(f.server.hits(FILE), 1);
    // Forced: downloads again.
    assert!(ensure_uv(&f.settings, true, &yes).unwrap().installed_now);
    assert_eq!(f.server.hits(FILE), 2);
}

#[test]
fn checksum_mismatch_is_refused_and_the_existing_runtime_kept() {
    let f = Fixture::new();
    ensure_uv(&f.settings, false, &yes).unwrap();
    let before = std::fs::read(f.uv()).unwrap();

    // A captive portal answers with a page instead of the archive.
    f.server.put(FILE, 200, b"<html>please log in</html>".to_vec());
    let e = ensure_uv(&f.settings, true, &yes).unwrap_err();
    assert_eq!(e.status(), Status::Failure);
    assert!(e.message.contains("checksum mismatch"), "{e}");
    assert!(e.message.contains("captive portal"), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("MCPCTL_UV_DOWNLOAD_URL"), "{e}");
    assert!(!e.one_line().contains('\n'));
    assert_eq!(std::fs::read(f.uv()).unwrap(), before);
    assert!(leftovers(&f.settings.root).is_empty(), "{:?}", leftovers(&f.settings.root));

    // A mismatch on a first install leaves nothing half-made.
    let g = Fixture::new();
    g.server.put(FILE, 200, b"tampered".to_vec());
    assert!(ensure_uv(&g.settings, false, &yes).unwrap_err().message.contains("checksum mismatch"));
    assert!(runtime::install::installed(&g.settings).is_none());
    assert!(leftovers(&g.settings.root).is_empty());
}

#[test]
fn connection_refused_says_offline_and_how_to_recover() {
    let f = Fixture::new();
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings = Settings { download_url: Some(format!("http://127.0.0.1:{port}/mirror")), ..f.settings.clone() };
    let start = Instant::now();
    let e = ensure_uv(&settings, false, &yes).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(e.status(), Status::Failure);
    assert!(e.message.contains("refused") || e.message.contains("cannot connect"), "{e}");
    let hint = e.hint.clone().unwrap();
    for needle in
        ["check the network", "MCPCTL_UV_DOWNLOAD_URL", "mcpctl runtime install --yes", "copy its runtime root"]
    {
        assert!(hint.contains(needle), "hint lacks `{needle}`: {hint}");
    }
    assert!(leftovers(&settings.root).is_empty());
}

#[test]
fn http_error_status_is_reported() {
    let f = Fixture::new();
    f.server.put(FILE, 503, b"busy".to_vec());
    let e = ensure_uv(&f.settings, false, &yes).unwrap_err();
    assert!(e.message.contains("HTTP 503"), "{e}");
    assert!(e.hint.unwrap().contains("MCPCTL_UV_DOWNLOAD_URL"));
}

#[test]
fn mirror_url_with_file_scheme_works() {
    let f = Fixture::new();
    let mirror = f.dir.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    write_file(&mirror.join(FILE), &f.archive);
    let settings = Settings { download_url: Some(format!("file://{}", mirror.display())), ..f.settings.clone() };
    assert!(ensure_uv(&settings, false, &yes).unwrap().installed_now);
    assert_eq!(f.server.hits(FILE), 0);
}

fn refused(archive: Vec<u8>) -> mcpctl::error::Error {
    let f = Fixture::with_archive(archive);
    let e = ensure_uv(&f.settings, false, &yes).unwrap_err();
    assert!(runtime::install::installed(&f.settings).is_none());
    assert!(leftovers(&f.settings.root).is_empty());
    // Nothing escaped the root.
    assert!(!f.dir.path().join("evil").exists());
    e
}

#[test]
fn unsafe_archives_are_refused() {
    let uv = fake_uv(VERSION);
    let ok_uvx = format!("{STEM}/uvx");
    let ok_uv = format!("{STEM}/uv");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            targz(&[
                Entry::File(&ok_uv, &uv, 0o755),
                Entry::File(&ok_uvx, &uv, 0o755),
                Entry::File("../../evil", b"x", 0o644),
            ]),
        ),
        ("absolute", targz(&[Entry::File("/tmp/evil-uv", &uv, 0o755), Entry::File(&ok_uvx, &uv, 0o755)])),
        ("symlink", targz(&[Entry::Symlink(&ok_uv, "/bin/sh"), Entry::File(&ok_uvx, &uv, 0o755)])),
        ("hardlink", targz(&[Entry::File(&ok_uvx, &uv, 0o755), Entry::HardLink(&ok_uv, &ok_uvx)])),
    ];
    for (what, archive) in cases {
        let e = refused(archive);
        assert!(e.message.starts_with("refusing the uv"), "{what}: {e}");
        assert!(!e.message.contains("internal error"), "{what}: {e}");
    }
}

#[test]
fn archive_lacking_the_binary_is_an_internal_error() {
    let uvx = b"#!/bin/sh\n".to_vec();
    let e = refused(targz(&[Entry::File(&format!("{STEM}/uvx"), &uvx, 0o755)]));
    assert!(e.message.contains("internal error"), "{e}");
    assert!(e.message.contains("lacks the `uv` binary"), "{e}");
    // Not a gzip at all, but matching its checksum: internal too.
    let e = refused(b"not a tarball".to_vec());
    assert!(e.message.contains("internal error"), "{e}");
}

#[test]
fn flat_archive_layout_is_accepted() {
    let uv = fake_uv(VERSION);
    let f = Fixture::with_archive(targz(&[Entry::File("uv", &uv, 0o755), Entry::File("./uvx", &uv, 0o700)]));
    ensure_uv(&f.settings, false, &yes).unwrap();
    assert!(run(&f.uv(), &["--version"]).contains(VERSION));
}

#[test]
fn policy_never_and_declined_consent_download_nothing() {
    let f = Fixture::new();
    let never = Settings { policy: Policy::Never, ..f.settings.clone() };
    let e = ensure_uv(&never, false, &yes).unwrap_err();
    assert_eq!(e.status(), Status::Forbidden);
    assert!(e.message.contains("MCPCTL_RUNTIME_INSTALL=never"), "{e}");

    let asked = std::sync::atomic::AtomicBool::new(false);
    let e = ensure_uv(&f.settings, false, &|plan: &InstallPlan| {
        asked.store(true, std::sync::atomic::Ordering::Relaxed);
        let text = consent_text(plan);
        assert!(text.contains(&format!("uv {VERSION} build (")), "{text}");
        assert!(text.contains(&f.server.base_url()) && text.contains(&plan.folder.display().to_string()));
        false
    })
    .unwrap_err();
    assert!(asked.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(e.status(), Status::Forbidden);
    assert_eq!(f.server.hits(FILE), 0);

    // Once installed, `never` is fine and the runtime runs offline.
    ensure_uv(&f.settings, false, &yes).unwrap();
    let uv = ensure_uv(&never, false, &yes).unwrap();
    assert!(!uv.installed_now);
    assert!(never.uv_env().contains(&("UV_OFFLINE".to_string(), "1".to_string())));
}

#[test]
fn concurrent_threads_end_with_one_good_copy_and_one_download() {
    let f = Fixture::new();
    f.server.set_delay(Duration::from_millis(300));
    let settings = Arc::new(f.settings.clone());
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let s = settings.clone();
            std::thread::spawn(move || ensure_uv(&s, false, &yes).map(|u| u.uv))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), f.uv());
    }
    assert_eq!(f.server.hits(FILE), 1);
    assert!(run(&f.uv(), &["--version"]).contains(VERSION));
    assert!(leftovers(&f.settings.root).is_empty());
}

#[test]
fn installer_waits_together_remembers_success_and_retries_after_failure() {
    let f = Fixture::new();
    let installer = Installer::new();
    f.server.put(FILE, 404, vec![]);
    assert!(installer.get_or_install(&f.settings, &yes).is_err());
    assert!(installer.cached().is_none());

    // Failure not cached: the next call tries again and succeeds.
    f.server.put(FILE, 200, f.archive.clone());
    f.server.set_delay(Duration::from_millis(200));
    let installer = Arc::new(installer);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (i, s) = (installer.clone(), f.settings.clone());
            std::thread::spawn(move || i.get_or_install(&s, &yes).unwrap().uv)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), f.uv());
    }
    assert_eq!(f.server.hits(FILE), 2); // the failed try and one install

    // Success cached: no new install is attempted, nothing is asked.
    let p = prepare_command_with(&f.settings, &installer, "uvx", &|_| panic!("must not ask")).unwrap();
    assert_eq!(p.program, f.settings.root.join("uv").join(VERSION).join("uvx"));
    assert!(p.args_prefix.is_empty());
    let env: std::collections::HashMap<_, _> = p.env.into_iter().collect();
    for k in ["UV_PYTHON_INSTALL_DIR", "UV_CACHE_DIR", "UV_TOOL_DIR", "UV_TOOL_BIN_DIR"] {
        assert!(Path::new(&env[k]).starts_with(&f.settings.root), "{k}");
    }
    assert_eq!(env["UV_PYTHON_PREFERENCE"], "only-managed");
    assert!(env["PATH"].starts_with(&f.settings.root.join("uv").join(VERSION).display().to_string()));
    let p = prepare_command_with(&f.settings, &installer, "mcp-server-time", &yes).unwrap();
    assert_eq!(p.args_prefix, vec!["mcp-server-time".to_string()]);
    assert_eq!(f.server.hits(FILE), 2);
}

/// Child side of the two-process test; runs only when the parent sets the variables.
#[test]
#[ignore]
fn child_process_install() {
    let (Ok(root), Ok(url), Ok(sha)) = (
        std::env::var("MCPCTL_TEST_CHILD_ROOT"),
        std::env::var("MCPCTL_TEST_CHILD_URL"),
        std::env::var("MCPCTL_TEST_CHILD_SHA"),
    ) else {
        return;
    };
    let settings = Settings {
        root: root.into(),
        pin: Some(Pin { version: VERSION.into(), target: "test".into(), file: FILE.into(), sha256: sha, size: None }),
        download_url: Some(url),
        policy: Policy::Auto,
    };
    let uv = ensure_uv(&settings, false, &yes).unwrap();
    assert!(uv.uv.is_file());
}

#[test]
fn concurrent_processes_end_with_one_good_copy() {
    let f = Fixture::new();
    f.server.set_delay(Duration::from_millis(500));
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "child_process_install", "--test-threads", "1"])
                .env("MCPCTL_TEST_CHILD_ROOT", &f.settings.root)
                .env("MCPCTL_TEST_CHILD_URL", f.server.base_url())
                .env("MCPCTL_TEST_CHILD_SHA", sha256_hex(&f.archive))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in &mut children {
        let status = support::wait_until(c, deadline);
        match status {
            Some(s) => assert!(s.success(), "a child install failed"),
            None => {
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                panic!("child installs did not finish in time");
            }
        }
    }
    assert_eq!(f.server.hits(FILE), 1);
    assert!(run(&f.uv(), &["--version"]).contains(VERSION));
    assert!(leftovers(&f.settings.root).is_empty());
}

#[test]
fn install_runtime_prefetches_servers_and_status_reports_them() {
    let f = Fixture::new();
    let servers = vec![
        ("fetch".to_string(), "uvx".to_string(), vec!["mcp-server-fetch".to_string()]),
        (
            "time".to_string(),
            "uvx".to_string(),
            vec![
                "--python".into(),
                "3.12".into(),
                "--from".into(),
                "mcp-server-time==1.0".into(),
                "mcp-server-time".into(),
            ],
        ),
        ("script".to_string(), "uv".to_string(), vec!["run".into(), "server.py".into()]),
    ];
    let before = status(&f.settings, &servers);
    assert_eq!(before["installed"], false);
    assert_eq!(before["version"], VERSION);
    assert_eq!(before["servers"][0]["ready_offline"], false);

    let report =
        install_runtime(&f.settings, &servers, InstallOptions { yes: true, force: false }, &|_| false).unwrap();
    assert_eq!(report["uv"]["installed_now"], true);
    assert_eq!(report["servers"][0]["prefetched"], true);
    assert_eq!(report["servers"][1]["package"], "mcp-server-time==1.0");
    assert_eq!(report["servers"][2]["prefetched"], false);

    let log = std::fs::read_to_string(f.settings.cache_dir().join("fake-uv.log")).unwrap();
    assert!(log.contains("python install\n"), "{log}");
    assert!(log.contains("python install 3.12\n"), "{log}");
    assert!(log.contains("tool install mcp-server-fetch\n"), "{log}");
    assert!(log.contains("tool install --python 3.12 mcp-server-time==1.0\n"), "{log}");

    let after = status(&f.settings, &servers);
    assert_eq!(after["installed"], true);
    assert_eq!(after["python"], serde_json::json!(["cpython-3.13.0-fake"]));
    assert_eq!(after["servers"][0]["ready_offline"], true);
    assert_eq!(after["servers"][1]["ready_offline"], true);
    assert_eq!(after["servers"][2]["ready_offline"], serde_json::Value::Null);

    // A server whose package cannot be fetched fails the command, naming it.
    let bad = vec![("broken".to_string(), "uvx".to_string(), vec!["fail-pkg".to_string()])];
    let e = install_runtime(&f.settings, &bad, InstallOptions { yes: true, force: false }, &|_| false).unwrap_err();
    assert!(e.details.iter().any(|d| d.starts_with("broken:")), "{:?}", e.details);
}

// ---- scripts/refresh-uv-manifest ----

const PLATFORMS: [&str; 4] =
    ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl", "x86_64-apple-darwin", "aarch64-apple-darwin"];

fn python3() -> Option<&'static str> {
    Command::new("python3").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "python3")
}

fn refresh(base: &str, out: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/refresh-uv-manifest");
    let o = Command::new(python3().unwrap())
        .arg(script)
        .args(["0.11.21", "--base-url", base, "--output"])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn refresh_script_generates_the_manifest_and_refuses_bad_data() {
    if python3().is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let server = Server::start();
    let dir = TempDir::new("refresh");
    let digest = |i: usize| format!("{:064x}", i + 0xabc);
    let put_all = || {
        for (i, p) in PLATFORMS.iter().enumerate() {
            server.put(&format!("uv-{p}.tar.gz.sha256"), 200, format!("{}  uv-{p}.tar.gz\n", digest(i)).into_bytes());
        }
    };
    put_all();
    server.put("uv-x86_64-unknown-linux-musl.tar.gz", 200, vec![7u8; 1234]);
    let out = dir.path().join("manifest.rs");
    let (ok, err) = refresh(&server.base_url(), &out);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("GENERATED"));
    assert!(text.contains("pub const UV_VERSION: &str = \"0.11.21\";"));
    assert!(text.contains("https://github.com/astral-sh/uv/releases/download/0.11.21/"));
    for (i, p) in PLATFORMS.iter().enumerate() {
        assert!(text.contains(&format!("file: \"uv-{p}.tar.gz\"")), "{p}");
        assert!(text.contains(&format!("sha256: \"{}\"", digest(i))), "{p}");
    }
    assert!(text.contains("size: Some(1234)"));
    assert_eq!(text.matches("size: None").count(), 3);
    // The committed manifest is this script's output format.
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runtime/manifest.rs")).unwrap();
    assert_eq!(committed.lines().take(20).collect::<Vec<_>>(), text.lines().take(20).collect::<Vec<_>>());

    let bad_cases: Vec<(&str, String, &str)> = vec![
        ("uv-aarch64-apple-darwin.tar.gz.sha256", String::new(), "missing"),
        ("uv-x86_64-apple-darwin.tar.gz.sha256", "xyz  uv-x86_64-apple-darwin.tar.gz\n".into(), "not a sha256"),
        (
            "uv-x86_64-apple-darwin.tar.gz.sha256",
            format!("{}  uv-x86_64-apple-darwin.tar.gz\n", &digest(0)[..60]),
            "not a sha256",
        ),
        (
            "uv-x86_64-apple-darwin.tar.gz.sha256",
            format!("{}0  uv-x86_64-apple-darwin.tar.gz\n", digest(0)),
            "not a sha256",
        ),
        ("uv-x86_64-apple-darwin.tar.gz.sha256", format!("{}  uv-other.tar.gz\n", digest(0)), "expected"),
    ];
    for (path, body, why) in bad_cases {
        put_all();
        if body.is_empty() {
            server.put(path, 404, vec![]);
        } else {
            server.put(path, 200, body.into_bytes());
        }
        let out = dir.path().join("refused.rs");
        let (ok, err) = refresh(&server.base_url(), &out);
        assert!(!ok, "{path} {why}: accepted");
        assert!(err.contains("refused") && err.contains(why), "{why}: {err}");
        assert!(!out.exists(), "{why}: wrote output");
    }
}

// ---- real uv, from a mirror made by tests/support/make-uv-mirror.sh ----

/// Runs only with `MCPCTL_TEST_UV_MIRROR=<dir made by make-uv-mirror.sh>`: serves that folder on
/// 127.0.0.1, installs the real uv from it and checks `uv --version`. With
/// `MCPCTL_TEST_UV_PACKAGE=<pkg>` too (needs PyPI), it also installs that package as a tool
/// and runs `uvx <pkg> --help` with UV_OFFLINE=1 and an emptied cache.
#[test]
fn real_uv_from_mirror() {
    let Ok(mirror) = std::env::var("MCPCTL_TEST_UV_MIRROR") else {
        eprintln!("skipped: set MCPCTL_TEST_UV_MIRROR to a folder made by tests/support/make-uv-mirror.sh");
        return;
    };
    let mirror = PathBuf::from(mirror);
    let server = Server::start();
    let dir = TempDir::new("real");
    let manifest = mirror.join("manifest.json");
    let vars = [
        ("MCPCTL_RUNTIME_ROOT", dir.path().join("root").display().to_string()),
        ("MCPCTL_UV_MANIFEST", manifest.display().to_string()),
        ("MCPCTL_UV_DOWNLOAD_URL", server.base_url()),
    ];
    let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let pin = settings.pin().unwrap().clone();
    server.put(&pin.file, 200, std::fs::read(mirror.join(&pin.file)).unwrap());

    let uv = ensure_uv(&settings, false, &yes).unwrap();
    let version = run(&uv.uv, &["--version"]);
    eprintln!("{}", version.trim());
    assert!(version.starts_with(&format!("uv {}", pin.version)), "{version}");
    assert!(run(&uv.uvx, &["--version"]).contains(&pin.version));

    let Ok(package) = std::env::var("MCPCTL_TEST_UV_PACKAGE") else { return };
    // This machine may not reach Python's download host: let uv use the system Python here.
    let mut env = settings.uv_env();
    env.retain(|(k, _)| k != "UV_PYTHON_PREFERENCE");
    let ok = |program: &Path, args: &[&str], extra: &[(&str, &str)]| {
        let st = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .current_dir(&settings.root)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{} {:?} failed", program.display(), args);
    };
    ok(&uv.uv, &["tool", "install", &package], &[]);
    std::fs::remove_dir_all(settings.cache_dir()).unwrap();
    ok(&uv.uvx, &[&package, "--help"], &[("UV_OFFLINE", "1")]);
    assert_eq!(
        status(&settings, &[("p".into(), "uvx".into(), vec![package.clone()])])["servers"][0]["package"],
        serde_json::json!(package)
    );
}
