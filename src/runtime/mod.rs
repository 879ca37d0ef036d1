//! The managed runtime: mcpctl's own pinned, checksum-verified copy of uv.
//!
//! A server whose `command` is `uv` or `uvx` (or whose config says `"runtime": "uv"`)
//! runs on this copy, never on whatever `uv` is on PATH, and uv keeps its Pythons,
//! cache and tools under the runtime root, so one folder holds everything the
//! server needs and can be copied to a machine with no network.
//!
//! Layout of the root (see docs/runtime.md):
//!
//! ```text
//! <root>/.lock               flock(2) taken while installing
//! <root>/uv/<version>/uv     the managed uv (and uvx)
//! <root>/python/             UV_PYTHON_INSTALL_DIR
//! <root>/cache/              UV_CACHE_DIR
//! <root>/tools/              UV_TOOL_DIR
//! <root>/bin/                UV_TOOL_BIN_DIR, UV_PYTHON_BIN_DIR
//! ```
//!
//! Everything here takes its settings explicitly ([`Settings`]); only
//! [`Settings::from_env`] reads the environment.

pub mod install;
pub mod manifest;
pub mod node;
pub mod node_manifest;
pub mod tools;
pub mod verify;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

pub use install::{ensure_uv, InstallPlan, Installer, Uv};
pub use tools::{install_runtime, status, InstallOptions, ServerEntry};

/// Which release file to fetch for this machine, and its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    /// Target triple, for messages (`x86_64-unknown-linux-musl`).
    pub target: String,
    /// File name under the base URL.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

impl Pin {
    /// The compiled-in pin for this machine, or `None` on a platform without a uv build.
    pub fn builtin() -> Option<Pin> {
        Pin::builtin_for(std::env::consts::ARCH, std::env::consts::OS)
    }

    /// The compiled-in pin for an `ARCH`/`OS` pair (as in `std::env::consts`).
    pub fn builtin_for(arch: &str, os: &str) -> Option<Pin> {
        manifest::ARTIFACTS.iter().find(|a| a.arch == arch && a.os == os).map(|a| Pin {
            version: manifest::UV_VERSION.to_string(),
            target: a.target.to_string(),
            file: a.file.to_string(),
            sha256: a.sha256.to_string(),
            size: a.size,
        })
    }

    /// Read a manifest override: `{"version": "...", "file": "...", "sha256": "...", "size": 123}`
    /// (`size` optional), for this machine. Used by `MCPCTL_UV_MANIFEST`.
    pub fn from_json_file(path: &Path) -> Result<Pin> {
        Pin::from_json_file_named(path, "MCPCTL_UV_MANIFEST", "{\"version\": \"0.11.21\", \"file\": \"uv-x86_64-unknown-linux-musl.tar.gz\", \"sha256\": \"<64 hex digits>\"}")
    }

    /// The same, for the variable `var` (messages name it) with `example` as the expected form.
    pub fn from_json_file_named(path: &Path, var: &str, example: &str) -> Result<Pin> {
        let bad = |why: String| {
            Error::config(format!("{var}={}: {why}", path.display()))
                .hint(format!("the file must be JSON like {example}"))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        Pin::from_json_value(&v, &bad)
    }

    /// A pin from a JSON object (`version`, `file`, `sha256`, optional `size`, `target`);
    /// `bad` words a refusal.
    pub fn from_json_value(v: &Value, bad: &dyn Fn(String) -> Error) -> Result<Pin> {
        let field = |k: &str| -> Result<String> {
            match v.get(k).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(bad(format!("missing string field `{k}`"))),
            }
        };
        let version = field("version")?;
        let file = field("file")?;
        let sha256 = field("sha256")?.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("`sha256` is not 64 hex digits".into()));
        }
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(bad("`file` must be a plain file name".into()));
        }
        if version.contains('/') || version.starts_with('.') {
            return Err(bad("`version` is not a version".into()));
        }
        let size = v.get("size").and_then(Value::as_u64);
        let target = field("target").unwrap_or_else(|_| current_platform());
        Ok(Pin { version, target, file, sha256, size })
    }
}

/// The runtime root: `MCPCTL_RUNTIME_ROOT`, else `$XDG_DATA_HOME/mcpctl/runtime`, else
/// `$HOME/.local/share/mcpctl/runtime` (shared by uv and Node).
pub fn root_from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(r) = get("MCPCTL_RUNTIME_ROOT") {
        Ok(PathBuf::from(r))
    } else if let Some(x) = get("XDG_DATA_HOME").filter(|x| Path::new(x).is_absolute()) {
        Ok(Path::new(&x).join("mcpctl").join("runtime"))
    } else if let Some(h) = get("HOME") {
        Ok(Path::new(&h).join(".local/share/mcpctl/runtime"))
    } else {
        Err(Error::config("cannot tell where the managed runtime lives: HOME is not set")
            .hint("set MCPCTL_RUNTIME_ROOT to a folder"))
    }
}

/// `ARCH-OS` of this machine, for messages.
pub fn current_platform() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// May mcpctl download uv? (`MCPCTL_RUNTIME_INSTALL`)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Download when missing (after consent where the caller asks for it). The default.
    Auto,
    /// Never download anything: uv must already be under the root, and uv itself runs offline.
    Never,
}

impl Policy {
    pub fn parse(s: &str) -> Result<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Policy::Auto),
            "never" => Ok(Policy::Never),
            other => Err(Error::config(format!("MCPCTL_RUNTIME_INSTALL=`{other}` is not understood"))
                .hint("set it to `auto` (the default) or `never`")),
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Policy::Auto => "auto",
            Policy::Never => "never",
        }
    }
}

/// Everything the runtime functions need to know, made explicit.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The runtime root.
    pub root: PathBuf,
    /// The pin for this machine; `None` on a platform without a uv build.
    pub pin: Option<Pin>,
    /// Mirror base URL (`MCPCTL_UV_DOWNLOAD_URL`); `None` means the GitHub release.
    pub download_url: Option<String>,
    pub policy: Policy,
}

impl Settings {
    /// Settings for `root` with the compiled-in pin, the release URL and policy `auto`.
    pub fn new(root: impl Into<PathBuf>) -> Settings {
        Settings { root: root.into(), pin: Pin::builtin(), download_url: None, policy: Policy::Auto }
    }

    /// The settings from the process environment (the only place that reads it).
    pub fn from_env() -> Result<Settings> {
        Settings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// The settings from any variable lookup, so they can be tested without touching the environment.
    ///
    /// `MCPCTL_RUNTIME_ROOT`, else `$XDG_DATA_HOME/mcpctl/runtime`, else `$HOME/.local/share/mcpctl/runtime`;
    /// `MCPCTL_UV_DOWNLOAD_URL`; `MCPCTL_UV_MANIFEST`; `MCPCTL_RUNTIME_INSTALL`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let root = root_from_lookup(&get)?;
        let pin = match get("MCPCTL_UV_MANIFEST") {
            Some(p) => Some(Pin::from_json_file(Path::new(&p))?),
            None => Pin::builtin(),
        };
        let policy = Policy::parse(&get("MCPCTL_RUNTIME_INSTALL").unwrap_or_default())?;
        Ok(Settings { root, pin, download_url: get("MCPCTL_UV_DOWNLOAD_URL"), policy })
    }

    /// The uv version in use (the pin's, or the compiled-in one on an unsupported platform).
    pub fn version(&self) -> &str {
        self.pin.as_ref().map(|p| p.version.as_str()).unwrap_or(manifest::UV_VERSION)
    }

    /// The pin, or the unsupported-platform error.
    pub fn pin(&self) -> Result<&Pin> {
        self.pin.as_ref().ok_or_else(|| {
            Error::runtime(format!("mcpctl has no managed uv build for this platform ({})", current_platform()))
                .hint("install uv yourself and use `\"command\": \"/path/to/uvx\"`, or point MCPCTL_UV_MANIFEST at a manifest for a build of your own")
        })
    }

    /// The base URL the release file is fetched from, ending in `/`.
    pub fn base_url(&self) -> String {
        let mut base = match &self.download_url {
            Some(u) => u.clone(),
            None if self.version() == manifest::UV_VERSION => manifest::RELEASE_BASE_URL.to_string(),
            None => format!("https://github.com/astral-sh/uv/releases/download/{}/", self.version()),
        };
        if !base.ends_with('/') {
            base.push('/');
        }
        base
    }

    /// The full URL of the release file.
    pub fn url(&self) -> Result<String> {
        Ok(format!("{}{}", self.base_url(), self.pin()?.file))
    }

    /// `<root>/uv/<version>`: where uv and uvx live.
    pub fn uv_dir(&self) -> PathBuf {
        self.root.join("uv").join(self.version())
    }
    pub fn python_dir(&self) -> PathBuf {
        self.root.join("python")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn tool_dir(&self) -> PathBuf {
        self.root.join("tools")
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    /// The variables a process running the managed uv gets: every uv folder under the root,
    /// only managed Pythons, and with policy `never` no network at all.
    pub fn uv_env(&self) -> Vec<(String, String)> {
        let p = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("UV_PYTHON_INSTALL_DIR".to_string(), p(self.python_dir())),
            ("UV_PYTHON_BIN_DIR".to_string(), p(self.bin_dir())),
            ("UV_CACHE_DIR".to_string(), p(self.cache_dir())),
            ("UV_TOOL_DIR".to_string(), p(self.tool_dir())),
            ("UV_TOOL_BIN_DIR".to_string(), p(self.bin_dir())),
            ("UV_PYTHON_PREFERENCE".to_string(), "only-managed".to_string()),
        ];
        if self.policy == Policy::Never {
            env.push(("UV_OFFLINE".to_string(), "1".to_string()));
            env.push(("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string()));
        }
        env
    }
}

/// Does a server with this `command` (and optional `"runtime"` field) run on the managed uv?
/// True for the bare names `uv` and `uvx`, or when `runtime` is `"uv"`. A path such as
/// `/usr/bin/uvx` is the user's explicit choice and is left alone.
pub fn uses_runtime(command: &str, runtime_field: Option<&str>) -> bool {
    if let Some(r) = runtime_field {
        return r.eq_ignore_ascii_case("uv");
    }
    matches!(command, "uv" | "uvx")
}

/// How to start a server on the managed runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The managed executable to run (`<root>/uv/<version>/uv` or `uvx`).
    pub program: PathBuf,
    /// Arguments to put before the server's own `args` (for `"runtime": "uv"` with a
    /// command other than uv/uvx: the command itself, run through `uvx`).
    pub args_prefix: Vec<String>,
    /// Variables to set on the child, on top of its inherited environment.
    pub env: Vec<(String, String)>,
}

/// The program and environment for a server, given where uv is installed (no install here).
pub fn prepared_for(settings: &Settings, uv: &Uv, command: &str) -> Prepared {
    let (program, args_prefix) = match command {
        "uv" => (uv.uv.clone(), vec![]),
        "uvx" => (uv.uvx.clone(), vec![]),
        other => (uv.uvx.clone(), vec![other.to_string()]),
    };
    let mut env = settings.uv_env();
    // Anything the server itself runs as `uv`/`uvx` finds the managed copy first.
    let mut path = std::env::join_paths([uv.dir.clone(), settings.bin_dir()]).unwrap_or_default();
    if let Some(old) = std::env::var_os("PATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    env.push(("PATH".to_string(), path.to_string_lossy().into_owned()));
    Prepared { program, args_prefix, env }
}

/// For the spawner: make sure the managed uv is there (installing it once per process,
/// with `consent` asked first) and say how to run `command` on it. Reads the environment.
pub fn prepare_command(command: &str, consent: &dyn Fn(&InstallPlan) -> bool) -> Result<Prepared> {
    let settings = Settings::from_env()?;
    let uv = install::GLOBAL.get_or_install(&settings, consent)?;
    Ok(prepared_for(&settings, &uv, command))
}

/// The same with explicit settings and installer (tests, or a daemon holding its own).
pub fn prepare_command_with(
    settings: &Settings,
    installer: &Installer,
    command: &str,
    consent: &dyn Fn(&InstallPlan) -> bool,
) -> Result<Prepared> {
    let uv = installer.get_or_install(settings, consent)?;
    Ok(prepared_for(settings, &uv, command))
}

/// The consent question a CLI on a TTY shows before the first download.
pub fn consent_text(plan: &InstallPlan) -> String {
    let size = match plan.size {
        Some(n) => format!(" ({})", human_bytes(n)),
        None => String::new(),
    };
    let then = if plan.runtime == "Node" {
        "and npm will then download the server's packages into that runtime root."
    } else {
        "and uv will then download Python and the server's packages into that runtime root."
    };
    format!(
        "mcpctl will download a pinned, checksum-verified {runtime} {version} build{size}\n  from {url}\n  into {folder},\n\
         {then}\nContinue? [y/N] ",
        runtime = plan.runtime,
        version = plan.version,
        url = plan.url,
        folder = plan.folder.display(),
    )
}

pub(crate) fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// What the runtime settings are, as JSON (part of `runtime status`).
pub fn settings_json(settings: &Settings) -> Value {
    json!({
        "version": settings.version(),
        "root": settings.root,
        "platform": settings.pin.as_ref().map(|p| p.target.clone()).unwrap_or_else(current_platform),
        "supported": settings.pin.is_some(),
        "download_url": settings.url().ok(),
        "policy": settings.policy.word(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn root_follows_the_variables_in_order() {
        let s = Settings::from_lookup(lookup(&[("MCPCTL_RUNTIME_ROOT", "/r"), ("HOME", "/h")])).unwrap();
        assert_eq!(s.root, PathBuf::from("/r"));
        let s = Settings::from_lookup(lookup(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])).unwrap();
        assert_eq!(s.root, PathBuf::from("/x/mcpctl/runtime"));
        let s = Settings::from_lookup(lookup(&[("HOME", "/h")])).unwrap();
        assert_eq!(s.root, PathBuf::from("/h/.local/share/mcpctl/runtime"));
        assert_eq!(s.uv_dir(), PathBuf::from(format!("/h/.local/share/mcpctl/runtime/uv/{}", manifest::UV_VERSION)));
        assert!(Settings::from_lookup(lookup(&[])).is_err());
    }

    #[test]
    fn policy_and_mirror() {
        let s = Settings::from_lookup(lookup(&[
            ("HOME", "/h"),
            ("MCPCTL_RUNTIME_INSTALL", "never"),
            ("MCPCTL_UV_DOWNLOAD_URL", "https://mirror.example/uv"),
        ]))
        .unwrap();
        assert_eq!(s.policy, Policy::Never);
        assert_eq!(s.base_url(), "https://mirror.example/uv/");
        assert!(s.uv_env().iter().any(|(k, v)| k == "UV_OFFLINE" && v == "1"));
        let e = Settings::from_lookup(lookup(&[("HOME", "/h"), ("MCPCTL_RUNTIME_INSTALL", "sometimes")])).unwrap_err();
        assert!(e.to_string().contains("MCPCTL_RUNTIME_INSTALL"));
    }

    #[test]
    fn builtin_pins_cover_the_four_platforms() {
        for (arch, os) in [("x86_64", "linux"), ("aarch64", "linux"), ("x86_64", "macos"), ("aarch64", "macos")] {
            let p = Pin::builtin_for(arch, os).unwrap();
            assert_eq!(p.sha256.len(), 64);
            assert!(p.file.starts_with("uv-") && p.file.ends_with(".tar.gz"));
        }
        assert!(Pin::builtin_for("x86_64", "linux").unwrap().file.contains("musl"));
        assert!(Pin::builtin_for("riscv64", "linux").is_none());
        let s = Settings { pin: None, ..Settings::new("/r") };
        assert!(s.pin().unwrap_err().to_string().contains("no managed uv build"));
    }

    #[test]
    fn which_servers_use_the_runtime() {
        assert!(uses_runtime("uvx", None));
        assert!(uses_runtime("uv", None));
        assert!(!uses_runtime("/usr/bin/uvx", None));
        assert!(!uses_runtime("npx", None));
        assert!(uses_runtime("mcp-server-fetch", Some("uv")));
        assert!(!uses_runtime("uvx", Some("system")));
    }

    #[test]
    fn consent_text_names_version_url_folder() {
        let plan = InstallPlan {
            runtime: "uv",
            version: "0.11.21".into(),
            url: "https://x/uv.tar.gz".into(),
            folder: PathBuf::from("/r/uv/0.11.21"),
            size: None,
        };
        let t = consent_text(&plan);
        assert!(t.contains("pinned, checksum-verified uv 0.11.21 build\n"));
        assert!(t.contains("https://x/uv.tar.gz") && t.contains("/r/uv/0.11.21") && t.contains("Python"));
        assert!(t.trim_end().ends_with("[y/N]"));
        let t = consent_text(&InstallPlan { size: Some(20 * 1024 * 1024), ..plan });
        assert!(t.contains("build (20.0 MiB)"));
    }
}
