//! `mcpctl runtime install|status`: the managed uv runtime for the project's uv servers.

use super::Ctx;
use crate::config::Transport;
use crate::error::Status;
use crate::output::{Failure, Report};
use crate::runtime::{self, InstallOptions, ServerEntry, Settings};
use serde_json::Value;
use std::fmt::Write as _;

type Outcome = std::result::Result<Report, Failure>;

/// The configured servers that run on the managed uv, as (name, command, args); a config
/// that is missing or broken is an error (never "ready" for servers nobody could read).
fn uv_servers(ctx: &Ctx) -> crate::error::Result<Vec<ServerEntry>> {
    let cfg = ctx.load_config()?;
    Ok(cfg
        .servers
        .iter()
        .filter_map(|s| match &s.transport {
            Transport::Stdio { command, args, .. } if runtime::uses_runtime(command, s.runtime.as_deref()) => {
                Some((s.name.clone(), command.clone(), args.clone()))
            }
            _ => None,
        })
        .collect())
}

pub fn install(ctx: &Ctx, force: bool) -> Outcome {
    if ctx.g.dry_run {
        return Err(crate::error::Error::failure("`runtime install` has no --dry-run")
            .hint("`mcpctl runtime status` shows what is installed without changing anything")
            .into());
    }
    let settings = Settings::from_env()?;
    let servers = uv_servers(ctx)?;
    let consent = ctx.consent();
    let report =
        runtime::install_runtime(&settings, &servers, InstallOptions { yes: ctx.g.yes, force }, &|p| consent(p))?;
    let mut r = Report::new(Status::Success, format!("Managed runtime ready in {}", settings.root.display()));
    if let Value::Object(m) = report {
        let _ = writeln!(r.body, "  uv: {}", m.get("uv").map(|v| v.to_string()).unwrap_or_default());
        for (k, v) in &m {
            r.fields.insert(k.clone(), v.clone());
        }
    }
    for s in &servers {
        let _ = writeln!(r.body, "  • {}: {} {}", s.0, s.1, s.2.join(" "));
    }
    Ok(r)
}

pub fn status(ctx: &Ctx) -> Outcome {
    let settings = Settings::from_env()?;
    let servers = uv_servers(ctx)?;
    let v = runtime::status(&settings, &servers);
    let mut r = Report::new(
        Status::Success,
        format!("Managed uv runtime {} in {}", settings.version(), settings.root.display()),
    );
    if let Value::Object(m) = &v {
        for (k, val) in m {
            r.fields.insert(k.clone(), val.clone());
            if !val.is_object() && !val.is_array() {
                let _ = writeln!(r.body, "  {}: {}", k, val);
            }
        }
        if let Some(Value::Array(list)) = m.get("servers") {
            for s in list {
                let _ = writeln!(
                    r.body,
                    "  • {}: ready offline: {}",
                    s["name"].as_str().unwrap_or("?"),
                    s["ready_offline"]
                );
            }
        }
    }
    Ok(r)
}
