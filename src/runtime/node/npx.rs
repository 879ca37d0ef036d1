//! Launching a server with `npx` on the managed Node: which servers use it, the process-wide
//! install gate, the command prepared for it, and the package an `npx` line names.

use std::path::Path;

use super::{ensure_node, Node, NodeSettings};
use crate::error::Result;
use crate::runtime::install::InstallPlan;
use crate::runtime::Prepared;

/// Does a server with this `command` and `"runtime"` field run on the managed Node?
/// True for the bare name `npx`, or when `runtime` is `"node"`.
pub fn uses_node(command: &str, runtime_field: Option<&str>) -> bool {
    match runtime_field {
        Some(r) => r.eq_ignore_ascii_case("node"),
        None => command == "npx",
    }
}

/// The process-wide gate in front of [`ensure_node`] used by [`prepare_node_command`].
pub static NODE_GLOBAL: crate::runtime::install::InstallGate<Node> = crate::runtime::install::InstallGate::new();

impl crate::runtime::install::InstallGate<Node> {
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
        assert!(!crate::runtime::uses_runtime("npx", Some("node")));
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
}
