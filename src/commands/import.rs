//! `mcpctl import <client> [FILE]`: another MCP client's servers as an mcpctl config —
//! printed on stdout, or written to the project's `.mcpctl/config.json` with `--write`.
//! `${VAR}` references stay references: no secret is expanded into the file.

use super::Ctx;
use crate::clients;
use crate::error::{Error, Status};
use crate::output::Report;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

type Outcome = std::result::Result<Report, crate::output::Failure>;

pub fn import(ctx: &Ctx, client: &str, file: Option<&Path>, write: bool, force: bool) -> Outcome {
    let project = ctx.g.project_root.as_ref().map(|p| ctx.cwd.join(p)).unwrap_or_else(|| ctx.cwd.clone());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    let candidates = match file {
        Some(f) => {
            clients::files_of(client, &project, &home, &env)?;
            vec![ctx.cwd.join(f)]
        }
        None => clients::files_of(client, &project, &home, &env)?,
    };
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::config(format!("no {} config found (looked in {})", client, looked.join(", ")))
            .hint(format!("name the file: mcpctl import {} PATH", client))
            .into());
    };
    let raw =
        std::fs::read_to_string(path).map_err(|e| Error::failure(format!("cannot read {}: {}", path.display(), e)))?;
    let root = project.canonicalize().unwrap_or(project.clone());
    let (text, warnings) = clients::as_mcp_servers(&raw, path, &root)?;
    // Checked as mcpctl would load it (a variable's value does not matter here).
    let servers = crate::config::parse(&text, path, &|_| Some("x".into()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| Error::config(e.to_string()))?;
    let doc = json!({"mcpServers": doc.get("mcpServers").cloned().unwrap_or_else(|| json!({}))});
    for w in &warnings {
        log::warn!("{}: {}", path.display(), w);
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    let pretty = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    let base = |r: Report| {
        r.field("client", json!(client))
            .field("from", json!(path))
            .field("servers", json!(names))
            .field("warnings", json!(warnings))
    };
    if !write {
        if ctx.g.json_output {
            return Ok(base(Report::new(Status::Success, format!("{} servers from {}", names.len(), client)))
                .field("config", doc));
        }
        return Ok(Report { raw: Some(pretty), ..Report::new(Status::Success, "import") });
    }
    let target = root.join(".mcpctl/config.json");
    if ctx.g.dry_run {
        return Ok(base(Report::new(
            Status::DryRun,
            format!("Dry run: would write {} servers from {} to {}", names.len(), client, target.display()),
        ))
        .field("config", doc));
    }
    if target.exists() && !force {
        return Err(Error::failure(format!("{} exists already", target.display()))
            .hint("pass --force to replace it, or run without --write and merge the printed servers by hand")
            .into());
    }
    crate::daemon::ensure_dirs(&root)?;
    let mut f = crate::daemon::open_private(&target, false)?;
    f.write_all(pretty.as_bytes()).map_err(|e| Error::failure(format!("cannot write {}: {}", target.display(), e)))?;
    let mut r = base(Report::new(
        Status::Success,
        format!("Wrote {} servers from {} ({}) to {}", names.len(), client, path.display(), target.display()),
    ));
    r.body = "  Each server asks before every tool in the shell and allows none through the gateway\n  \
              until you list tools in its \"alwaysAllow\" (see `mcpctl help call`).\n"
        .to_string();
    Ok(r)
}
