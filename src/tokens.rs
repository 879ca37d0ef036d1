//! Named bearer tokens of the gateway (`"tokens"` next to `mcpServers`): each one's value
//! comes from an environment variable or a 0600 file — never from the config — and carries
//! its own tool allowlist (`<server>__<tool>` names and `*` patterns), intersected with the
//! servers' policy.

use crate::config::{glob_match, TokenConfig};
use crate::error::{Error, Result};
use std::path::Path;

/// A token the daemon accepts. Its value is never printed (see the `Debug` impl).
#[derive(Clone)]
pub struct NamedToken {
    pub name: String,
    pub value: String,
    /// `None`: every tool the servers' policy allows.
    pub allow: Option<Vec<String>>,
}

impl std::fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NamedToken({}, ****)", self.name)
    }
}

impl NamedToken {
    /// Whether this token may reach `tool` of `server`.
    pub fn allows(&self, server: &str, tool: &str) -> bool {
        let full = format!("{}{}{}", server, crate::gateway::names::SEP, tool);
        match &self.allow {
            None => true,
            Some(list) => list.iter().any(|p| glob_match(p, &full)),
        }
    }
}

/// The largest token file read.
const MAX_FILE: u64 = 4096;

/// Read every configured token's value; a missing variable or a file others can read is an error.
pub fn resolve(tokens: &[TokenConfig], root: &Path) -> Result<Vec<NamedToken>> {
    let mut out = Vec::new();
    for t in tokens {
        let at = |what: String| Error::config(format!("token `{}`: {}", t.name, what));
        let value = match (&t.env, &t.file) {
            (Some(var), _) => std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                at(format!("the environment variable {} is not set", var))
                    .hint(format!("export {}=<a long random value> before `mcpctl start`", var))
            })?,
            (None, Some(file)) => {
                use std::os::unix::fs::MetadataExt;
                let path = root.join(file);
                let meta =
                    std::fs::metadata(&path).map_err(|e| at(format!("cannot read {}: {}", path.display(), e)))?;
                if meta.mode() & 0o077 != 0 {
                    return Err(at(format!(
                        "{} can be read by others (mode {:o})",
                        path.display(),
                        meta.mode() & 0o777
                    ))
                    .hint(format!("chmod 600 {}", path.display())));
                }
                if meta.len() > MAX_FILE {
                    return Err(at(format!("{} is larger than {} bytes", path.display(), MAX_FILE)));
                }
                let text =
                    std::fs::read_to_string(&path).map_err(|e| at(format!("cannot read {}: {}", path.display(), e)))?;
                let text = text.trim().to_string();
                if text.is_empty() {
                    return Err(at(format!("{} is empty", path.display())));
                }
                text
            }
            (None, None) => return Err(at("needs `env` or `file`".into())),
        };
        if value.len() < 16 {
            log::warn!("token `{}` is shorter than 16 characters; use a long random one", t.name);
        }
        out.push(NamedToken { name: t.name.clone(), value: value.trim().to_string(), allow: t.allow.clone() });
    }
    Ok(out)
}
