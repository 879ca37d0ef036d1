//! How a configured stdio server is started: its program (relative paths resolve against
//! the project root), arguments, environment and working folder.

use crate::client::server_cwd;
use crate::config::ServerConfig;
use crate::error::Result;
use crate::transport::stdio::Launch;
use std::path::{Path, PathBuf};

pub fn launch_for(
    _server: &ServerConfig,
    command: &str,
    args: &[String],
    env: &[(String, String)],
    cwd: Option<&Path>,
    project_root: &Path,
) -> Result<Launch> {
    let program = if command.contains('/') && !Path::new(command).is_absolute() {
        project_root.join(command)
    } else {
        PathBuf::from(command)
    };
    Ok(Launch {
        program,
        args: args.to_vec(),
        env: env.to_vec(),
        cwd: Some(server_cwd(cwd, project_root)),
        display: command.to_string(),
    })
}
