//! How a configured stdio server is started: its program (relative paths resolve against
//! the project root; `uv`/`uvx` resolve to the managed uv and `npx` to the managed Node,
//! never PATH, unless the server says `"runtime": "system"`), arguments,
//! environment (see `childenv`: mcpctl's secrets never reach a child) and working folder.

use crate::config::ServerConfig;
use crate::error::Result;
use crate::transport::stdio::Launch;
use std::path::{Path, PathBuf};

/// Whether to download the managed runtime when it is missing (asked at most once).
pub type Consent = std::sync::Arc<dyn Fn(&crate::runtime::InstallPlan) -> bool + Send + Sync>;

pub fn launch_for(
    server: &ServerConfig,
    command: &str,
    args: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    project_root: &Path,
    consent: &Consent,
) -> Result<Launch> {
    let node = crate::runtime::node::uses_node(command, server.runtime.as_deref());
    if node || crate::runtime::uses_runtime(command, server.runtime.as_deref()) {
        let (which, prepared) = if node {
            ("Node", crate::runtime::node::prepare_node_command(command, &|plan| consent(plan)))
        } else {
            ("uv", crate::runtime::prepare_command(command, &|plan| consent(plan)))
        };
        let prepared = prepared.map_err(|e| {
            let mut e = e;
            e.message = format!("server `{}` needs the managed {which} runtime: {}", server.name, e.message);
            e
        })?;
        let mut all_env = prepared.env;
        all_env.extend(env.iter().cloned());
        let mut all_args = prepared.args_prefix;
        all_args.extend(args.iter().cloned());
        return Ok(Launch {
            program: prepared.program,
            args: all_args,
            env: all_env,
            env_policy: server.env_policy,
            cwd: Some(server_cwd(cwd, project_root)),
            display: format!("{} (managed {which})", command),
        });
    }
    let program = if command.contains('/') && !Path::new(command).is_absolute() {
        project_root.join(command)
    } else {
        PathBuf::from(command)
    };
    Ok(Launch {
        program,
        args: args.to_vec(),
        env: env.to_vec(),
        env_policy: server.env_policy,
        cwd: Some(server_cwd(cwd, project_root)),
        display: command.to_string(),
    })
}

/// The working folder of a stdio server: its `cwd` (relative to the project root) or the root.
pub fn server_cwd(cwd: Option<&Path>, project_root: &Path) -> PathBuf {
    match cwd {
        Some(c) => project_root.join(c),
        None => project_root.to_path_buf(),
    }
}
