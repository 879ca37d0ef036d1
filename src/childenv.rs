//! What a child process inherits from mcpctl's environment: everything except mcpctl's own
//! secrets (`MCPCTL_TOKEN`, `MCPCTL_TOKEN_MODE`, any `MCPCTL_TOKEN_*`), or with
//! `"envPolicy": "minimal"` only PATH, HOME, LANG, LC_*, TZ, TMPDIR and USER; then the
//! server's own `env` on top.

use std::process::Command;

/// A server's `envPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvPolicy {
    /// mcpctl's environment minus its secrets (default).
    #[default]
    Inherit,
    /// Only the basic variables a program needs to run.
    Minimal,
}

/// mcpctl's own secrets, never handed to a child.
pub fn is_secret(name: &str) -> bool {
    name.starts_with("MCPCTL_TOKEN")
}

/// Kept under the minimal policy.
fn is_basic(name: &str) -> bool {
    matches!(name, "PATH" | "HOME" | "LANG" | "TZ" | "TMPDIR" | "USER") || name.starts_with("LC_")
}

/// Set `cmd`'s environment: the policy applied to ours, then `own` (the server's `env`).
pub fn apply(cmd: &mut Command, policy: EnvPolicy, own: &[(String, String)]) {
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if is_secret(&name) || (policy == EnvPolicy::Minimal && !is_basic(&name)) {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(own.iter().map(|(k, v)| (k, v)));
}

/// Strip mcpctl's secrets from a helper process (installer, `uv`).
pub fn strip_secrets(cmd: &mut Command) {
    apply(cmd, EnvPolicy::Inherit, &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_basics() {
        assert!(is_secret("MCPCTL_TOKEN") && is_secret("MCPCTL_TOKEN_MODE") && is_secret("MCPCTL_TOKEN_CI"));
        assert!(!is_secret("MCPCTL_LOG") && !is_secret("TOKEN"));
        assert!(is_basic("LC_ALL") && is_basic("PATH") && !is_basic("AWS_SECRET_ACCESS_KEY"));
    }
}
