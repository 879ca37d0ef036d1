//! Installing the managed uv: download (hashing as it goes) into a temp file beside the
//! destination, verify the pinned sha256, extract only `uv` and `uvx`, and rename them
//! into place. A `flock` on `<root>/.lock` serialises installing processes; the
//! [`Installer`] serialises the threads of one process and remembers a success (never a failure).

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{human_bytes, Pin, Policy, Settings};
use crate::error::{Error, Result};

/// The executables taken from a release archive.
const BINARIES: [&str; 2] = ["uv", "uvx"];
/// Longest wait for another process's install before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(15 * 60);
/// Largest binary accepted from an archive.
const MAX_BINARY: u64 = 512 * 1024 * 1024;

/// An installed managed uv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uv {
    pub version: String,
    /// `<root>/uv/<version>`
    pub dir: PathBuf,
    pub uv: PathBuf,
    pub uvx: PathBuf,
    /// True when this call downloaded it.
    pub installed_now: bool,
}

/// What a download would do, for the consent question ([`super::consent_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    /// Which runtime: `uv` or `Node`.
    pub runtime: &'static str,
    pub version: String,
    pub url: String,
    pub folder: PathBuf,
    pub size: Option<u64>,
}

/// The managed uv under `settings.root`, if both executables are there.
pub fn installed(settings: &Settings) -> Option<Uv> {
    let dir = settings.uv_dir();
    let (uv, uvx) = (dir.join("uv"), dir.join("uvx"));
    if uv.is_file() && uvx.is_file() {
        Some(Uv { version: settings.version().to_string(), dir, uv, uvx, installed_now: false })
    } else {
        None
    }
}

/// The plan for installing uv with these settings.
pub fn plan(settings: &Settings) -> Result<InstallPlan> {
    let pin = settings.pin()?;
    Ok(InstallPlan {
        runtime: "uv",
        version: pin.version.clone(),
        url: settings.url()?,
        folder: settings.uv_dir(),
        size: pin.size,
    })
}

/// Make sure the managed uv is installed; with `force`, download and replace it even if it is.
/// Blocking. `consent` is asked before any download (pass `&|_| true` for `--yes`).
/// The existing copy stays in place until a new one is verified.
pub fn ensure_uv(settings: &Settings, force: bool, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Uv> {
    if !force {
        if let Some(uv) = installed(settings) {
            return Ok(uv);
        }
    }
    let pin = settings.pin()?.clone();
    if settings.policy == Policy::Never {
        return Err(Error::forbidden(format!(
            "the managed uv {} is not installed under {} and MCPCTL_RUNTIME_INSTALL=never forbids downloading it",
            pin.version,
            settings.root.display()
        ))
        .hint("unset MCPCTL_RUNTIME_INSTALL (or set it to `auto`), or copy a runtime root built with `mcpctl runtime install --yes` there"));
    }
    let plan = plan(settings)?;
    if !consent(&plan) {
        return Err(Error::forbidden(format!("downloading uv {} was declined", pin.version))
            .hint("run `mcpctl runtime install --yes` to install it without asking"));
    }

    let uv_parent = settings.root.join("uv");
    fs::create_dir_all(&uv_parent).map_err(|e| io_failure(&format!("cannot create {}", uv_parent.display()), e))?;
    let _lock = RootLock::acquire(&settings.root)?;
    // Another process may have finished while we waited.
    if !force {
        if let Some(uv) = installed(settings) {
            return Ok(uv);
        }
    }
    clean_stale_temps(&uv_parent);

    let mut temps = Temps(Vec::new());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{}-{}", pin.version, std::process::id(), n);
    let archive = uv_parent.join(format!(".download-{tag}.tar.gz"));
    let staging = uv_parent.join(format!(".staging-{tag}"));
    temps.0.push(archive.clone());
    temps.0.push(staging.clone());

    download_verified(settings, &pin, &plan.url, &archive)?;
    fs::create_dir(&staging).map_err(|e| io_failure(&format!("cannot create {}", staging.display()), e))?;
    extract(&archive, &staging, &pin)?;
    put_in_place(&staging, &settings.uv_dir())?;
    drop(temps);
    // The binaries' sha256, for `mcpctl runtime verify`.
    let sums = super::verify::uv_checksums_path(settings);
    super::verify::record(&settings.uv_dir(), &BINARIES, &sums)
        .map_err(|e| io_failure(&format!("cannot write {}", sums.display()), e))?;

    let mut uv = installed(settings).ok_or_else(|| {
        Error::internal(format!("internal error: uv vanished from {} after installing", settings.uv_dir().display()))
    })?;
    uv.installed_now = true;
    log::info!("installed uv {} into {}", uv.version, uv.dir.display());
    Ok(uv)
}

/// The once-per-process gate in front of an install: the first caller installs, concurrent
/// callers wait for that install, a success is remembered, a failure is not (the next call
/// tries again). One for uv ([`Installer`]), one for Node (`node::NODE_GLOBAL`).
pub struct InstallGate<T> {
    done: OnceLock<T>,
    gate: Mutex<()>,
}

impl<T: Clone> InstallGate<T> {
    pub const fn new() -> InstallGate<T> {
        InstallGate { done: OnceLock::new(), gate: Mutex::new(()) }
    }

    /// What was installed, installing it with `install` if this process has not got it yet.
    pub fn get_or(&self, install: impl FnOnce() -> Result<T>) -> Result<T> {
        if let Some(t) = self.done.get() {
            return Ok(t.clone());
        }
        let _g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = self.done.get() {
            return Ok(t.clone());
        }
        let t = install()?;
        let _ = self.done.set(t.clone());
        Ok(t)
    }

    /// What this gate has remembered, if anything.
    pub fn cached(&self) -> Option<&T> {
        self.done.get()
    }
}

impl<T: Clone> Default for InstallGate<T> {
    fn default() -> Self {
        InstallGate::new()
    }
}

/// The gate in front of [`ensure_uv`].
pub type Installer = InstallGate<Uv>;

/// The process-wide installer used by [`super::prepare_command`].
pub static GLOBAL: Installer = Installer::new();

impl InstallGate<Uv> {
    /// The managed uv, installing it if this process has not yet got it.
    pub fn get_or_install(&self, settings: &Settings, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Uv> {
        self.get_or(|| ensure_uv(settings, false, consent))
    }
}

pub(crate) static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Paths removed (files or folders) when dropped.
pub(crate) struct Temps(pub(crate) Vec<PathBuf>);

impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.is_dir() {
                let _ = fs::remove_dir_all(p);
            } else {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Leftovers of a process that died while installing (we hold the lock, so none is live).
fn clean_stale_temps(uv_parent: &Path) {
    if let Ok(rd) = fs::read_dir(uv_parent) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".download-") || name.starts_with(".staging-") || name.starts_with(".old-") {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
    }
}

/// An exclusive `flock` on `<root>/.lock`, released on drop.
pub(crate) struct RootLock(File);

impl RootLock {
    pub(crate) fn acquire(root: &Path) -> Result<RootLock> {
        let path = root.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|e| io_failure(&format!("cannot open the lock file {}", path.display()), e))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match crate::sys::try_lock_exclusive(&f) {
                Ok(true) => return Ok(RootLock(f)),
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(&format!("cannot lock {}", path.display()), e)),
            }
            if !told {
                log::info!("waiting for another mcpctl installing into {}", root.display());
                told = true;
            }
            if start.elapsed() > LOCK_WAIT {
                return Err(Error::timeout(format!(
                    "another mcpctl held {} for over {} s",
                    path.display(),
                    LOCK_WAIT.as_secs()
                ))
                .hint("check for a stuck `mcpctl runtime install`, then try again"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        // Closing the file would release the lock anyway.
        let _ = crate::sys::unlock(&self.0);
    }
}

pub(crate) fn io_failure(what: &str, e: io::Error) -> Error {
    Error::runtime(format!("{what}: {e}"))
}

/// The recovery hint shared by every download failure.
fn recovery_hint(settings: &Settings, pin: &Pin) -> String {
    format!(
        "check the network, or set MCPCTL_UV_DOWNLOAD_URL to a mirror holding {}, or run `mcpctl runtime install --yes` \
         on a connected machine and copy its runtime root to {}",
        pin.file,
        settings.root.display()
    )
}

/// Fetch `url` into `dest`, hashing as it goes, and check the pinned sha256.
fn download_verified(settings: &Settings, pin: &Pin, url: &str, dest: &Path) -> Result<()> {
    download_verified_as("uv", recovery_hint(settings, pin), pin, url, dest)
}

/// The same for any runtime (`label` is `uv` or `Node`), with its recovery hint.
pub(crate) fn download_verified_as(label: &str, hint: String, pin: &Pin, url: &str, dest: &Path) -> Result<()> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| io_failure(&format!("cannot create {}", dest.display()), e))?;

    let (mut reader, total): (Box<dyn Read>, Option<u64>) = if let Some(path) = url.strip_prefix("file://") {
        let f = File::open(path).map_err(|e| {
            Error::runtime(format!("cannot read {label} {} from {url}: {e}", pin.version)).hint(hint.clone())
        })?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    } else {
        let resp = agent(url)?.get(url).call().map_err(|e| request_error_as(label, url, &pin.version, e, &hint))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(Error::runtime(format!(
                "downloading {label} {} from {url} failed: HTTP {status}",
                pin.version
            ))
            .hint(hint));
        }
        let len = resp.body().content_length();
        (Box::new(resp.into_body().into_reader()), len)
    };

    let mut progress = Progress::start(label, &pin.version, url, total.or(pin.size));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.finish();
                let msg = format!("downloading {label} {} from {url} broke off: {e}", pin.version);
                return Err(if e.kind() == io::ErrorKind::TimedOut {
                    Error::timeout(msg)
                } else {
                    Error::runtime(msg)
                }
                .hint(hint));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| io_failure(&format!("cannot write {}", dest.display()), e))?;
        progress.advance(n as u64);
    }
    progress.finish();
    out.sync_all().map_err(|e| io_failure(&format!("cannot write {}", dest.display()), e))?;

    let got = hex(&hasher.finalize());
    if got != pin.sha256 {
        return Err(Error::runtime(format!(
            "checksum mismatch for {} from {url}: expected sha256 {}, got {got} (a proxy or captive portal may have answered instead)",
            pin.file, pin.sha256
        ))
        .hint(hint));
    }
    Ok(())
}

/// The download's agent: trust and proxy as for every outbound request (src/net.rs).
fn agent(url: &str) -> Result<ureq::Agent> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(Duration::from_secs(20)))
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .timeout_global(Some(Duration::from_secs(15 * 60)))
        .user_agent(format!("mcpctl/{}", env!("CARGO_PKG_VERSION")));
    crate::net::agent(url, config)
}

/// One line per kind of network failure, each with the recovery hint.
#[cfg(test)]
fn request_error(url: &str, version: &str, e: ureq::Error, hint: &str) -> Error {
    request_error_as("uv", url, version, e, hint)
}

fn request_error_as(label: &str, url: &str, version: &str, e: ureq::Error, hint: &str) -> Error {
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or(url);
    let dns = || format!("cannot download {label} {version}: the host `{host}` was not found (DNS; offline?)");
    let msg = match &e {
        ureq::Error::HostNotFound => dns(),
        ureq::Error::Io(io) if is_dns_failure(io) => dns(),
        ureq::Error::ConnectionFailed => {
            format!("cannot download {label} {version}: cannot connect to {host} (offline?)")
        }
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            format!("cannot download {label} {version}: connection to {host} refused (offline?)")
        }
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => {
            return Error::timeout(format!("cannot download {label} {version} from {url}: timed out")).hint(hint)
        }
        ureq::Error::Timeout(t) => {
            return Error::timeout(format!("cannot download {label} {version} from {url}: timed out ({t})")).hint(hint)
        }
        // src/net.rs words an untrusted certificate and a failed proxy (naming the host or
        // the proxy, and the fix); any other TLS failure keeps the old guess.
        ureq::Error::Tls(why) if crate::net::explained(&e) => {
            format!("cannot download {label} {version} from {url}: {why}")
        }
        ureq::Error::Tls(why) => {
            format!("cannot download {label} {version} from {url}: TLS failed ({why}; a proxy in the way?)")
        }
        other => format!("cannot download {label} {version} from {url}: {other}"),
    };
    Error::runtime(msg).hint(hint)
}

/// The resolver's failure, which std reports as an uncategorized I/O error.
fn is_dns_failure(e: &io::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    [
        "lookup address",
        "name or service not known",
        "nodename nor servname",
        "temporary failure in name resolution",
        "no address associated",
    ]
    .iter()
    .any(|n| text.contains(n))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bar on stderr when it is a terminal; one log line otherwise.
struct Progress {
    tty: bool,
    label: String,
    total: Option<u64>,
    done: u64,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn start(what: &str, version: &str, url: &str, total: Option<u64>) -> Progress {
        let tty = io::stderr().is_terminal();
        if !tty {
            match total {
                Some(t) => log::info!("downloading {what} {version} ({}) from {url}", human_bytes(t)),
                None => log::info!("downloading {what} {version} from {url}"),
            }
        }
        Progress {
            tty,
            label: format!("downloading {what} {version}"),
            total,
            done: 0,
            last: Instant::now(),
            drawn: false,
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.tty && (self.last.elapsed() >= Duration::from_millis(100) || !self.drawn) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let line = match self.total {
            Some(t) if t > 0 => {
                let frac = (self.done as f64 / t as f64).min(1.0);
                let width = 24;
                let filled = (frac * width as f64) as usize;
                format!(
                    "{} [{}{}] {} of {}",
                    self.label,
                    "#".repeat(filled),
                    "-".repeat(width - filled),
                    human_bytes(self.done),
                    human_bytes(t)
                )
            }
            _ => format!("{} {}", self.label, human_bytes(self.done)),
        };
        eprint!("\r\x1b[2K{line}");
        let _ = io::stderr().flush();
        self.last = Instant::now();
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.tty && self.drawn {
            self.draw();
            eprintln!();
            self.drawn = false;
        }
    }
}

/// Take `uv` and `uvx` out of the verified archive into `staging`, refusing anything unsafe.
/// The names of an archive entry's path, or `None` when it would leave the folder it is
/// unpacked in (`..`, an absolute path); `.` parts are dropped. Shared by the uv and Node
/// installs.
pub(crate) fn entry_parts(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts)
}

fn extract(archive: &Path, staging: &Path, pin: &Pin) -> Result<()> {
    let internal = |why: String| {
        Error::internal(format!("internal error: the uv {} release archive {} {why}", pin.version, pin.file))
            .hint("this is a bug in mcpctl's pinned manifest or the mirror's file; please report it")
    };
    let refuse = |why: String| {
        Error::runtime(format!("refusing the uv {} archive {}: {why}", pin.version, pin.file))
            .hint("the archive matched its checksum but is unsafe; check MCPCTL_UV_MANIFEST and the mirror")
    };
    let f = File::open(archive).map_err(|e| io_failure(&format!("cannot read {}", archive.display()), e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = ar.entries().map_err(|e| internal(format!("is not a readable .tar.gz ({e})")))?;
    let mut found: Vec<&str> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| internal(format!("is not a readable .tar.gz ({e})")))?;
        let path = entry.path().map_err(|e| refuse(format!("an entry has a bad name ({e})")))?.into_owned();
        let parts = entry_parts(&path)
            .ok_or_else(|| refuse(format!("entry `{}` points outside its folder", path.display())))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(refuse(format!("entry `{}` is a link", path.display())));
        }
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(format!("entry `{}` is not a regular file", path.display())));
        }
        // `uv` at the top, or under one top folder (`uv-<target>/uv`).
        let name = match parts.len() {
            1 => parts[0].as_str(),
            2 => parts[1].as_str(),
            _ => continue,
        };
        let Some(bin) = BINARIES.iter().find(|b| **b == name) else { continue };
        if found.contains(bin) {
            return Err(refuse(format!("it holds `{bin}` twice")));
        }
        if entry.header().size().unwrap_or(0) > MAX_BINARY {
            return Err(refuse(format!("`{bin}` is larger than {}", human_bytes(MAX_BINARY))));
        }
        let dest = staging.join(bin);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&dest)
            .map_err(|e| io_failure(&format!("cannot create {}", dest.display()), e))?;
        io::copy(&mut (&mut entry).take(MAX_BINARY), &mut out)
            .map_err(|e| internal(format!("could not be unpacked ({e})")))?;
        out.sync_all().map_err(|e| io_failure(&format!("cannot write {}", dest.display()), e))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
            .map_err(|e| io_failure(&format!("cannot chmod {}", dest.display()), e))?;
        found.push(bin);
    }
    for bin in BINARIES {
        if !found.contains(&bin) {
            return Err(internal(format!("lacks the `{bin}` binary")));
        }
    }
    Ok(())
}

/// Move the verified binaries into `dest`: the whole folder when it is new, else file by file
/// (each `rename` atomically replaces the old file, so there is always a working copy).
fn put_in_place(staging: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        match fs::rename(staging, dest) {
            Ok(()) => return Ok(()),
            Err(_) if dest.exists() => {} // appeared meanwhile: fall through to per-file
            Err(e) => return Err(io_failure(&format!("cannot move uv into {}", dest.display()), e)),
        }
    }
    fs::create_dir_all(dest).map_err(|e| io_failure(&format!("cannot create {}", dest.display()), e))?;
    for bin in ["uvx", "uv"] {
        let (from, to) = (staging.join(bin), dest.join(bin));
        fs::rename(&from, &to).map_err(|e| io_failure(&format!("cannot move {} into place", to.display()), e))?;
    }
    let _ = fs::remove_dir(staging);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_failures_get_one_line_each_with_the_recovery() {
        let url = "https://github.com/astral-sh/uv/releases/download/0.11.21/uv.tar.gz";
        let cases = [
            (ureq::Error::HostNotFound, "`github.com` was not found (DNS"),
            (
                ureq::Error::Io(io::Error::other("failed to lookup address information: Name or service not known")),
                "`github.com` was not found (DNS",
            ),
            (ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused)), "connection to github.com refused"),
            (ureq::Error::ConnectionFailed, "cannot connect to github.com"),
        ];
        for (e, want) in cases {
            let err = request_error(url, "0.11.21", e, "HINT");
            assert!(err.message.contains(want), "{err}");
            assert_eq!(err.hint.as_deref(), Some("HINT"));
            assert!(!err.one_line().contains('\n'));
        }
        let t = request_error(url, "0.11.21", ureq::Error::Io(io::Error::from(io::ErrorKind::TimedOut)), "HINT");
        assert_eq!(t.status(), crate::error::Status::Timeout);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
