//! `mcpctl runtime install|status|verify`: the managed uv and Node runtimes for the
//! project's uv and npx servers.

use super::Ctx;
use crate::config::Transport;
use crate::error::Status;
use crate::output::{Failure, Report};
use crate::runtime::node::{self as node, NodeSettings};
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

/// The configured servers that run on the managed Node, with their env.
fn node_servers(ctx: &Ctx) -> crate::error::Result<Vec<runtime::tools::NodeEntry>> {
    let cfg = ctx.load_config()?;
    Ok(cfg
        .servers
        .iter()
        .filter_map(|s| match &s.transport {
            Transport::Stdio { command, args, env, .. } if node::uses_node(command, s.runtime.as_deref()) => {
                Some((s.name.clone(), command.clone(), args.clone(), env.clone()))
            }
            _ => None,
        })
        .collect())
}

pub fn install(ctx: &Ctx, force: bool) -> Outcome {
    if ctx.g.dry_run {
        return Err(crate::error::Error::usage("`runtime install` has no --dry-run")
            .hint("`mcpctl runtime status` shows what is installed without changing anything")
            .into());
    }
    let settings = Settings::from_env()?;
    let servers = uv_servers(ctx)?;
    let npx = node_servers(ctx)?;
    let consent = ctx.consent();
    let opts = InstallOptions { yes: ctx.g.yes, force };
    let mut r = Report::new(Status::Success, format!("Managed runtime ready in {}", settings.root.display()));
    // uv when a server needs it (or, as before, when no server needs Node); Node when one does.
    if !servers.is_empty() || npx.is_empty() {
        let report = runtime::install_runtime(&settings, &servers, opts, &|p| consent(p))?;
        if let Value::Object(m) = report {
            let _ = writeln!(r.body, "  uv: {}", m.get("uv").map(|v| v.to_string()).unwrap_or_default());
            for (k, v) in &m {
                r.fields.insert(k.clone(), v.clone());
            }
        }
    }
    if !npx.is_empty() {
        let ns = NodeSettings::from_env()?;
        let report = runtime::tools::install_node_runtime(&ns, &npx, opts, &|p| consent(p))?;
        let _ = writeln!(r.body, "  node: {}", report["path"]);
        r.fields.insert("node".into(), report);
        r.fields.insert("root".into(), serde_json::json!(settings.root));
    }
    let lines = servers.iter().map(|s| (&s.0, &s.1, &s.2)).chain(npx.iter().map(|s| (&s.0, &s.1, &s.2)));
    for (name, command, args) in lines {
        let _ = writeln!(r.body, "  • {}: {} {}", name, command, args.join(" "));
    }
    Ok(r)
}

pub fn status(ctx: &Ctx) -> Outcome {
    let settings = Settings::from_env()?;
    let servers = uv_servers(ctx)?;
    let npx = node_servers(ctx)?;
    let mut v = runtime::status(&settings, &servers);
    if !npx.is_empty() {
        let npx: Vec<ServerEntry> = npx.into_iter().map(|(n, c, a, _)| (n, c, a)).collect();
        let nv = runtime::tools::node_status(&NodeSettings::from_env()?, &npx);
        if let (Some(list), Some(more)) = (v["servers"].as_array_mut(), nv["servers"].as_array()) {
            list.extend(more.iter().cloned());
        }
        v["node"] = nv;
    }
    let mut r = Report::new(
        Status::Success,
        format!("Managed runtime (uv {}) in {}", settings.version(), settings.root.display()),
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

/// `runtime verify`: re-hash what mcpctl unpacked (uv, Node); exit 1 on any change.
pub fn verify(_ctx: &Ctx) -> Outcome {
    let settings = Settings::from_env()?;
    let ns = NodeSettings::from_env()?;
    let (v, problems) = runtime::verify::verify(&settings, &ns);
    if !problems.is_empty() {
        return Err(crate::error::Error::runtime(format!(
            "the managed runtime in {} does not match its checksums ({} problem{})",
            settings.root.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ))
        .hint("reinstall it with `mcpctl runtime install --yes --force`")
        .details(problems)
        .into());
    }
    let mut r =
        Report::new(Status::Success, format!("Managed runtime in {} matches its checksums", settings.root.display()));
    for k in ["uv", "node"] {
        let _ = writeln!(r.body, "  {k}: {}", v[k]);
    }
    if let Value::Object(m) = v {
        for (k, val) in m {
            r.fields.insert(k, val);
        }
    }
    Ok(r)
}
