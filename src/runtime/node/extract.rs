//! Unpacking a verified Node tarball into a staging folder: which entries are kept (official
//! layout, `node-linux-*` and `npm` packages), size limits, links that must stay inside the
//! tree, and the `.mcpctl-sha256` list of every file written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::CHECKSUMS;
use crate::error::{Error, Result};
use crate::runtime::install::{hex, io_failure};
use crate::runtime::Pin;

/// Largest single file, and the whole tree, accepted from a Node archive.
const MAX_FILE: u64 = 512 * 1024 * 1024;
const MAX_TOTAL: u64 = 2 * 1024 * 1024 * 1024;

pub(super) fn clean_stale_temps(parent: &Path) {
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
pub(super) fn official_entry(rel: &[String]) -> Option<Vec<String>> {
    (!matches!(rel[0].as_str(), "include" | "share")).then(|| rel.to_vec())
}

/// Where an entry of a `node-linux-<arch>` registry package goes: `bin/node` and the
/// top-level notices, in place; not `include/`, `share/` or its `package.json`.
pub(super) fn node_package_entry(rel: &[String]) -> Option<Vec<String>> {
    match rel {
        [b, n] if b == "bin" && n == "node" => Some(rel.to_vec()),
        [f] if f != "package.json" => Some(rel.to_vec()),
        _ => None,
    }
}

/// Where an entry of the `npm` package goes: under `lib/node_modules/npm/`.
pub(super) fn npm_package_entry(rel: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = ["lib", "node_modules", "npm"].iter().map(|s| s.to_string()).collect();
    out.extend(rel.iter().cloned());
    Some(out)
}

pub(super) fn write_checksums(staging: &Path, sums: &[(String, String)]) -> Result<()> {
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
pub(super) fn extract_tree(
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
        let parts = crate::runtime::install::entry_parts(&path)
            .ok_or_else(|| refuse(format!("entry `{}` points outside its folder", path.display())))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn links_must_stay_in_the_tree() {
        let rel = s(&["bin", "npx"]);
        assert!(link_stays_inside(&rel, Path::new("../lib/node_modules/npm/bin/npx-cli.js")));
        assert!(!link_stays_inside(&rel, Path::new("../../etc/passwd")));
        assert!(!link_stays_inside(&rel, Path::new("/bin/sh")));
    }
}
