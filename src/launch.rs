//! How a configured stdio server is started: its program (relative paths resolve against
//! the project root; `uv`/`uvx` resolve to the managed runtime, never PATH), arguments,
//! environment (see `childenv`: mcpctl's secrets never reach a child) and working folder.

use crate::client::server_cwd;
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
    if crate::runtime::uses_runtime(command, server.runtime.as_deref()) {
        let prepared = crate::runtime::prepare_command(command, &|plan| consent(plan)).map_err(|e| {
            let mut e = e;
            e.message = format!("server `{}` needs the managed uv runtime: {}", server.name, e.message);
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
            display: format!("{} (managed uv)", command),
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
