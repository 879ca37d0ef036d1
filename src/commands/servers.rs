//! The client commands: `list`, `status [server]`, `tools <server>`, `call <server> <tool>`.

use super::Ctx;
use crate::config::{self, ServerConfig, Transport};
use crate::error::{Error, Status};
use crate::output::{Failure, Report};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

mod call;
mod describe;

pub use call::{call, render_content};
use describe::{param_lines, wrap, WIDTH};

type Outcome = std::result::Result<Report, Failure>;

fn server_summary(s: &ServerConfig) -> Value {
    json!({
        "name": s.name,
        "command": s.target(),
        "disabled": s.disabled,
        "operations_count": s.always_allow.as_ref().map(|a| a.len()).unwrap_or(0),
        "policy": crate::policy::describe(s),
        "status": if s.disabled { "disabled" } else { "disconnected" },
        "tools_count": Value::Null,
    })
}

pub fn list(ctx: &Ctx, names_only: bool) -> Outcome {
    let cfg = ctx.load_config()?;
    if names_only {
        let names: Vec<&str> = cfg.servers.iter().map(|s| s.name.as_str()).collect();
        let text: String = names.iter().map(|n| format!("{}\n", n)).collect();
        return Ok(Report { raw: Some(text), ..Report::new(Status::Success, format!("{} servers", names.len())) }
            .field("servers", json!(names)));
    }
    let (daemon, daemon_text, live) = super::daemon::daemon_view(&cfg.project_root);
    let mut servers: Vec<Value> = cfg.servers.iter().map(server_summary).collect();
    // With the daemon running, show real states and tool counts.
    if let Some(Value::Array(live)) = &live {
        for s in servers.iter_mut() {
            if let Some(l) = live.iter().find(|l| l["name"] == s["name"]) {
                for k in
                    ["status", "tools_count", "calls", "restarts", "error", "stderr", "next_retry", "session_era_child"]
                {
                    if let Some(v) = l.get(k) {
                        s[k] = v.clone();
                    }
                }
            }
        }
    }
    let n = servers.len();
    let mut body = String::from("Configured MCP Servers:\n");
    for s in &servers {
        let _ = writeln!(body, "  • {}: {}", s["name"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or(""));
        let _ = writeln!(body, "    Command: {}", s["command"].as_str().unwrap_or(""));
        let _ = writeln!(body, "    Operations: {}", s["operations_count"]);
        let _ = writeln!(body, "    Policy: {}", s["policy"].as_str().unwrap_or(""));
        if let Some(t) = s["tools_count"].as_u64() {
            let _ = writeln!(body, "    Tools: {}", t);
        }
        if let (Some(c), Some(r)) = (s.get("calls").and_then(Value::as_u64), s.get("restarts").and_then(Value::as_u64))
        {
            let _ = writeln!(body, "    Calls: {}, restarts: {}", c, r);
        }
        if let Some(e) = s.get("error").and_then(Value::as_str) {
            let _ = writeln!(body, "    Error: {}", e);
        }
        if let Some(t) = s.get("session_era_child") {
            let _ = write!(body, "    Session-era child: {}", t["status"].as_str().unwrap_or(""));
            let _ = writeln!(body, "{}", t["error"].as_str().map(|e| format!(" ({})", e)).unwrap_or_default());
        }
        if let Some(at) = s.get("next_retry").and_then(Value::as_u64) {
            let now = crate::gateway::unix(std::time::SystemTime::now());
            let _ = writeln!(body, "    Next retry: in {}s", at.saturating_sub(now));
        }
        for l in s.get("stderr").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            let _ = writeln!(body, "    | {}", l.as_str().unwrap_or(""));
        }
    }
    let mut r = Report::new(Status::Success, format!("Found {} configured MCP server{}", n, plural(n)))
        .field("servers", Value::Array(servers))
        .field("total_count", json!(n))
        .field("daemon", daemon);
    r.body = if n == 0 { daemon_text } else { format!("{}\n\n{}", daemon_text, body) };
    Ok(r)
}

pub fn status_all(ctx: &Ctx) -> Outcome {
    let mut r = match list(ctx, false) {
        Ok(r) => r,
        Err(f) => return super::daemon::status_without_config(ctx, f),
    };
    let n = r.fields["total_count"].as_u64().unwrap_or(0) as usize;
    r.message = format!("Status of the mcpctl daemon and {} configured MCP server{}", n, plural(n));
    Ok(r)
}

pub fn status_one(ctx: &Ctx, name: &str) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let mut info = json!({"name": s.name, "command": s.target(), "disabled": s.disabled});
    match &s.transport {
        Transport::Stdio { args, env, cwd, .. } => {
            info["args"] = json!(args);
            info["env"] = Value::Object(config::masked_env(env));
            info["cwd"] = json!(cwd);
        }
        Transport::Http { headers, auth, .. } => {
            info["args"] = json!([]);
            info["headers"] = Value::Object(config::masked_env(headers));
            if auth.headers_helper.is_some() {
                info["headersHelper"] = json!("****");
            }
            if let Some(f) = &auth.bearer_token_file {
                info["bearerTokenFile"] = json!(f);
            }
        }
    }
    info["alwaysAllow"] = json!(s.always_allow);
    info["gatewayApproval"] = json!(s.gateway_approval.word());
    info["policy"] = json!(crate::policy::describe(&s));
    info["timeout"] = json!(s.timeout.as_secs_f64());
    if s.disabled {
        info["status"] = json!("disabled");
        let mut r = Report::new(Status::Success, format!("Status for server '{}'", s.name)).field("server", info);
        r.body = format!("  • {}: disabled\n    Command: {}\n    Policy: disabled\n", s.name, s.target());
        return Ok(r);
    }
    // The daemon lists only what its policy lets clients run; the shell shows every tool.
    let session = if crate::policy::gateway_shows_all(&s) { ctx.open(&s, &root) } else { ctx.open_own(&s, &root) }
        .map_err(|e| Failure::from(e).with("server", info.clone()))?;
    let tools = session.tools(ctx.request_timeout(&s)).map_err(|e| Failure::from(e).with("server", info.clone()))?;
    info["status"] = json!("connected");
    info["server_info"] = session.server_info.clone();
    info["protocol_version"] = json!(session.protocol);
    info["protocol_era"] = json!(session.era());
    info["capabilities"] = session.capabilities.clone();
    info["tools"] = Value::Array(tools.clone());
    let mut body = String::new();
    let _ = writeln!(body, "  • {}: connected", s.name);
    let _ = writeln!(
        body,
        "    Server: {} {}",
        session.server_info["name"].as_str().unwrap_or("?"),
        session.server_info["version"].as_str().unwrap_or("")
    );
    let _ = writeln!(body, "    Protocol: {} ({} era)", session.protocol, session.era());
    let _ = writeln!(body, "    Policy: {}", info["policy"].as_str().unwrap_or(""));
    let caps: Vec<&String> = session.capabilities.as_object().map(|m| m.keys().collect()).unwrap_or_default();
    let _ = writeln!(body, "    Capabilities: {}", caps.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "));
    let _ = writeln!(
        body,
        "    Command: {} {}",
        s.target(),
        info["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    let _ = writeln!(
        body,
        "    Tools ({}): {}",
        tools.len(),
        tools.iter().filter_map(|t| t["name"].as_str()).collect::<Vec<_>>().join(", ")
    );
    let mut r = Report::new(Status::Success, format!("Status for server '{}'", s.name)).field("server", info);
    r.body = body;
    Ok(r)
}

pub fn tools(ctx: &Ctx, name: &str) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let fail = |e: Error| Failure::from(e).with("server", json!(s.name));
    let session = if crate::policy::gateway_shows_all(&s) { ctx.open(&s, &root) } else { ctx.open_own(&s, &root) }
        .map_err(fail)?;
    let tools = session.tools(ctx.request_timeout(&s)).map_err(fail)?;
    let mut body = format!("Available Tools on {}:\n", s.name);
    for t in &tools {
        let _ = writeln!(body, "  • {}", t["name"].as_str().unwrap_or("?"));
        if let Some(d) = t["description"].as_str().filter(|d| !d.is_empty()) {
            for line in wrap(d, WIDTH - 4, 3) {
                let _ = writeln!(body, "    {}", line);
            }
        }
        let params = param_lines(&t["inputSchema"]);
        if params.is_empty() {
            let _ = writeln!(body, "    Parameters: none");
        } else {
            let _ = writeln!(body, "    Parameters:");
            for l in params {
                let _ = writeln!(body, "{}", l);
            }
        }
    }
    let tools: Vec<Value> = tools
        .into_iter()
        .map(|t| {
            let mut m = Map::new();
            for k in ["name", "title", "description", "inputSchema", "outputSchema", "annotations"] {
                if let Some(v) = t.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            Value::Object(m)
        })
        .collect();
    let n = tools.len();
    let mut r = Report::new(Status::Success, format!("Found {} tool{} on server '{}'", n, plural(n), s.name))
        .field("server", json!(s.name))
        .field("tools", Value::Array(tools));
    r.body = body;
    Ok(r)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
