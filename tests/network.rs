//! Networks users have (src/net.rs): a TLS MCP server whose certificate comes from a CA
//! made here with the `openssl` CLI, an HTTP CONNECT proxy, and the uv download over https.
//! Everything listens on 127.0.0.1 only; every helper process has a lifetime of its own
//! and is killed by its pid when its test ends. The proxy tunnels to 127.0.0.1 whatever
//! the name asked for, so a name that resolves nowhere (`mcp.test`) reaches the local
//! server only through it: that is how a test proves the proxy was used.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::archive::{release_archive, sha256_hex, TempDir};
use support::*;

/// Helpers need python3 and openssl; under `make test` (MCPCTL_REQUIRE_PEERS) a missing one fails.
fn tools() -> Option<PathBuf> {
    let python = if venv_python().exists() { venv_python() } else { PathBuf::from("python3") };
    let have = |p: &Path, arg: &str| {
        Command::new(p).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let ok_py = have(&python, "--version");
    let ok_ssl = have(Path::new("openssl"), "version");
    if ok_py && ok_ssl {
        return Some(python);
    }
    let missing = if ok_py { "openssl" } else { "python3" };
    if std::env::var("MCPCTL_REQUIRE_PEERS").is_ok() {
        panic!(
            "tests/network.rs needs `{missing}` (MCPCTL_REQUIRE_PEERS is set): install it (apt-get install {missing})"
        );
    }
    eprintln!("skipping: `{missing}` not found");
    None
}

/// A CA, and a server certificate it signed for localhost, mcp.test and 127.0.0.1.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("pki");
        let d = dir.path();
        std::fs::create_dir(d.join("cadir")).unwrap();
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,DNS:mcp.test,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
                &[
                    "-subj",
                    "/CN=mcpctl network test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-days",
                "2",
                "-out",
                "server.pem",
                "-extfile",
                "ext.cnf",
            ],
        );
        std::fs::copy(d.join("ca.pem"), d.join("cadir/test-ca.pem")).unwrap();
        Pki { dir }
    }
    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
    fn cadir(&self) -> String {
        self.dir.path().join("cadir").display().to_string()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A helper process, killed by its pid on drop; its first stdout line is its port.
struct Helper {
    child: Child,
    port: u16,
}

impl Helper {
    fn start(python: &Path, script: &str, args: &[&str]) -> Helper {
        let mut child = Command::new(python)
            .arg(repo().join("tests/py").join(script))
            .args(args)
            .args(["--lifetime", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not report its port (got {line:?})");
        };
        Helper { child, port }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Everything a test needs: the PKI, the TLS server and a CONNECT proxy (with `auth` if given).
struct Net {
    pki: Pki,
    server: Helper,
    proxy: Helper,
    count: PathBuf,
    mirror: PathBuf,
    _work: TempDir,
}

impl Net {
    fn start(auth: Option<&str>) -> Option<Net> {
        let python = tools()?;
        let pki = Pki::new();
        let work = TempDir::new("net");
        let mirror = work.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        let d = pki.dir.path();
        let (cert, key) = (d.join("server.pem"), d.join("server.key"));
        let server = Helper::start(
            &python,
            "tls_server.py",
            &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), "--dir", mirror.to_str().unwrap()],
        );
        let count = work.path().join("tunnels");
        let mut pargs = vec!["--count", count.to_str().unwrap()];
        if let Some(a) = auth {
            pargs.extend(["--auth", a]);
        }
        let proxy = Helper::start(&python, "connect_proxy.py", &pargs);
        Some(Net { pki, server, proxy, count, mirror, _work: work })
    }
    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/mcp", self.server.port)
    }
    fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }
    fn tunnels(&self) -> usize {
        std::fs::read_to_string(&self.count).unwrap().trim().parse().unwrap()
    }
}

fn tools_cmd(url: &str, env: &[(&str, &str)]) -> Cmd {
    let mut c = Cmd::new().args(["--url", url, "tools", "--timeout", "20"]);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c
}

/// The error line of a failed run (the first stderr line that is not a `[time level]` log line).
fn error_line(r: &Run) -> String {
    let err = r.stderr();
    err.lines().find(|l| !l.trim().is_empty() && !l.starts_with('[')).unwrap_or_default().to_string()
}

#[test]
fn untrusted_certificate_is_a_clear_error_naming_the_host_and_the_fix() {
    let Some(n) = Net::start(None) else { return };
    let r = tools_cmd(&n.url("localhost"), &[]).status(1);
    let line = error_line(&r);
    let host = format!("localhost:{}", n.server.port);
    assert!(line.contains(&format!("the certificate of {host} is not trusted")), "{}", r.dump());
    assert!(line.contains("SSL_CERT_FILE") && line.contains("system store"), "{}", r.dump());
}

#[test]
fn ssl_cert_file_and_ssl_cert_dir_are_trusted() {
    let Some(n) = Net::start(None) else { return };
    let r = tools_cmd(&n.url("localhost"), &[("SSL_CERT_FILE", &n.pki.ca())]).success();
    r.stdout_has("echo");
    let r = tools_cmd(&n.url("127.0.0.1"), &[("SSL_CERT_DIR", &format!("/etc/ssl/certs:{}", n.pki.cadir()))]).success();
    r.stdout_has("echo");
    let r = Cmd::new()
        .args(["call", "--url", &n.url("localhost"), "echo", "--text", "hi", "--timeout", "20"])
        .env("SSL_CERT_FILE", n.pki.ca())
        .env("MCPCTL_CA_ONLY", "1")
        .success();
    r.stdout_has("echo:hi");
    assert_eq!(n.tunnels(), 0);
}

#[test]
fn a_bad_ssl_cert_file_or_dir_is_a_one_line_error() {
    let Some(n) = Net::start(None) else { return };
    let empty = n.pki.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        ("SSL_CERT_FILE", "/nonexistent/ca.pem".to_string(), "SSL_CERT_FILE=/nonexistent/ca.pem: no such file"),
        ("SSL_CERT_FILE", empty.display().to_string(), "the file is empty"),
        ("SSL_CERT_FILE", n.pki.dir.path().join("ext.cnf").display().to_string(), "no PEM certificate"),
        ("SSL_CERT_DIR", "/nonexistent/certs".to_string(), "SSL_CERT_DIR=/nonexistent/certs: no such file"),
    ];
    for (var, value, want) in cases {
        let r = tools_cmd(&n.url("localhost"), &[(var, &value)]).status(1);
        let line = error_line(&r);
        assert!(line.contains(want), "{var}={value}: {}", r.dump());
        let j = tools_cmd(&n.url("localhost"), &[(var, &value)]).args(["--json-output"]).status(1).json();
        assert!(!j["error"].as_str().unwrap_or_default().contains('\n'), "{j}");
    }
}

/// The run failed resolving the host (it went direct).
fn not_found(r: &Run) -> bool {
    let e = r.stderr();
    e.contains("lookup address") || e.contains("not found") || e.contains("Name or service not known")
}

#[test]
fn https_proxy_carries_the_tunnel_and_no_proxy_bypasses_it() {
    let Some(n) = Net::start(None) else { return };
    let ca = n.pki.ca();
    let proxy = n.proxy_url();
    // `mcp.test` resolves nowhere: only the proxy (which tunnels to 127.0.0.1) reaches it.
    let r = tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &proxy)]).success();
    r.stdout_has("echo");
    let seen = n.tunnels();
    assert!(seen >= 1, "the proxy saw no tunnel");
    // Lowercase and ALL_PROXY are read too.
    tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("all_proxy", &proxy)]).success();
    assert!(n.tunnels() > seen);
    let seen = n.tunnels();

    // NO_PROXY names the host: the command goes direct (and so cannot find `mcp.test`).
    for np in ["mcp.test", ".test", "*.test", "example.com, mcp.test:443", "*"] {
        let r = tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &proxy), ("NO_PROXY", np)])
            .status(1);
        assert!(not_found(&r) && !r.stderr().contains("proxy"), "NO_PROXY={np}: {}", r.dump());
    }
    let r = tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("https_proxy", &proxy), ("no_proxy", "mcp.test")])
        .status(1);
    assert!(not_found(&r), "{}", r.dump());
    // Loopback is never proxied.
    for host in ["localhost", "127.0.0.1"] {
        tools_cmd(&n.url(host), &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &proxy)]).success();
    }
    // An HTTP_PROXY alone is not used for https.
    tools_cmd(&n.url("localhost"), &[("SSL_CERT_FILE", &ca), ("HTTP_PROXY", &proxy)]).success();
    assert_eq!(n.tunnels(), seen, "a bypassed request went through the proxy");
}

#[test]
fn proxy_credentials_are_sent_and_never_shown() {
    let Some(n) = Net::start(Some("alice:s3cret")) else { return };
    let ca = n.pki.ca();
    let with = |user: &str| format!("http://{user}@127.0.0.1:{}", n.proxy.port);
    tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &with("alice:s3cret"))]).success();
    assert_eq!(n.tunnels(), 1);

    let r = tools_cmd(
        &n.url("mcp.test"),
        &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &with("alice:wr0ng")), ("MCPCTL_LOG", "debug")],
    )
    .status(1);
    let line = error_line(&r);
    assert!(
        line.contains(&format!("the proxy {} (from HTTPS_PROXY)", n.proxy_url())) && line.contains("407"),
        "{}",
        r.dump()
    );
    assert!(!r.stderr().contains("wr0ng") && !r.stdout().contains("wr0ng"), "{}", r.dump());

    // A proxy that is not there is named too.
    let dead = format!("http://alice:s3cret@127.0.0.1:{}", free_port());
    let r = tools_cmd(&n.url("mcp.test"), &[("SSL_CERT_FILE", &ca), ("HTTPS_PROXY", &dead)]).status(1);
    assert!(error_line(&r).contains("cannot connect to the proxy http://127.0.0.1:"), "{}", r.dump());
    assert!(!r.stderr().contains("s3cret"), "{}", r.dump());
    assert_eq!(n.tunnels(), 1);
}

#[test]
fn a_tls_inspecting_proxy_without_its_ca_is_named_in_the_error() {
    let Some(n) = Net::start(None) else { return };
    let r = tools_cmd(&n.url("mcp.test"), &[("HTTPS_PROXY", &n.proxy_url())]).status(1);
    let line = error_line(&r);
    assert!(line.contains(&format!("the certificate of mcp.test:{} is not trusted", n.server.port)), "{}", r.dump());
    assert!(line.contains(&format!("through the proxy {}", n.proxy_url())), "{}", r.dump());
}

const VERSION: &str = "0.11.21";
const FILE: &str = "uv-x86_64-unknown-linux-musl.tar.gz";

/// `mcpctl runtime install --yes` from the https mirror, with `env`; the project (kept
/// alive for the caller) and whether uv landed in its runtime root.
fn runtime_install(n: &Net, base: &str, env: &[(&str, &str)]) -> (Run, Project, bool) {
    let archive = release_archive("uv-x86_64-unknown-linux-musl", VERSION);
    std::fs::write(n.mirror.join(FILE), &archive).unwrap();
    let project = Project::new(&serde_json::json!({"mcpServers": {}}));
    let manifest = project.root.join("uv-manifest.json");
    let pin = serde_json::json!({"version": VERSION, "file": FILE, "sha256": sha256_hex(&archive)});
    std::fs::write(&manifest, pin.to_string()).unwrap();
    let root = project.root.join("runtime");
    let mut c = project
        .cmd()
        .args(["runtime", "install", "--yes"])
        .env("MCPCTL_UV_MANIFEST", &manifest)
        .env("MCPCTL_UV_DOWNLOAD_URL", base)
        .env("MCPCTL_RUNTIME_ROOT", &root);
    for (k, v) in env {
        c = c.env(k, v);
    }
    let r = c.output();
    let installed =
        root.join("uv").join(VERSION).join("uv").exists() && root.join("uv").join(VERSION).join("uvx").exists();
    assert_eq!(r.out.status.success(), installed, "{}", r.dump());
    (r, project, installed)
}

#[test]
fn the_uv_download_trusts_the_same_certificates_and_takes_the_same_proxy() {
    let Some(n) = Net::start(None) else { return };
    let ca = n.pki.ca();
    let base = |host: &str| format!("https://{host}:{}/", n.server.port);

    let (r, _, installed) = runtime_install(&n, &base("localhost"), &[]);
    assert!(!installed);
    let line = error_line(&r);
    assert!(line.contains(&format!("the certificate of localhost:{} is not trusted", n.server.port)), "{}", r.dump());
    assert!(!line.contains("a proxy in the way?"), "the error says what is wrong, not a guess: {}", r.dump());

    let (r, _, installed) = runtime_install(&n, &base("localhost"), &[("SSL_CERT_FILE", &ca)]);
    assert!(installed, "{}", r.dump());

    let (r, _, installed) =
        runtime_install(&n, &base("mcp.test"), &[("SSL_CERT_DIR", &n.pki.cadir()), ("HTTPS_PROXY", &n.proxy_url())]);
    assert!(installed, "{}", r.dump());
    assert_eq!(n.tunnels(), 1, "the download went through the proxy");

    let (r, _, _) = runtime_install(&n, &base("localhost"), &[("SSL_CERT_FILE", "/nonexistent/ca.pem")]);
    assert!(error_line(&r).contains("SSL_CERT_FILE=/nonexistent/ca.pem: no such file"), "{}", r.dump());
}

/// The daemon's own connections stay on loopback whatever the proxy variables say (ureq's
/// default agent reads them, and would send `mcpctl status` to the proxy).
#[test]
fn the_daemon_on_loopback_never_goes_through_a_proxy() {
    let p = Project::fixture(serde_json::json!({}));
    let dead = format!("http://127.0.0.1:{}", free_port());
    let env = [("HTTP_PROXY", dead.as_str()), ("HTTPS_PROXY", dead.as_str()), ("ALL_PROXY", dead.as_str())];
    let d = Daemon::start_env(&p, &[], &env);
    let v = d.wait_ready(&env);
    assert_eq!(v["servers"][0]["status"], "ready", "{v}");
}
