//! The client commands: `list`, `status [server]`, `tools <server>`, `call <server> <tool>`.

use super::Ctx;
use crate::cli::ToolArg;
use crate::config::{self, ServerConfig, Transport};
use crate::error::{Error, Result, Status};
use crate::output::{is_tty, Failure, Report};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::io::{BufRead, Write};

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
                for k in ["status", "tools_count", "calls", "restarts", "error", "stderr", "next_retry"] {
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

/// The width text output is laid out for.
const WIDTH: usize = 80;

/// Text wrapped to `width` columns, at most `max_lines` lines; what is cut ends with `…`.
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cut = false;
    for word in text.split_whitespace() {
        let wlen = word.chars().count();
        let clen = cur.chars().count();
        if clen > 0 && clen + 1 + wlen > width {
            lines.push(std::mem::take(&mut cur));
            if lines.len() == max_lines {
                cut = true;
                break;
            }
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        if wlen > width {
            // One word longer than the line: its start.
            cur.extend(word.chars().take(width - 1));
            cur.push('…');
        } else {
            cur.push_str(word);
        }
    }
    if !cut && !cur.is_empty() {
        lines.push(cur);
    }
    if cut {
        if let Some(last) = lines.last_mut() {
            while last.chars().count() + 1 > width {
                last.pop();
            }
            last.push('…');
        }
    }
    lines
}

/// `s` cut to `max` characters, ending with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A schema's type in brief: `string`, `"fast" | "deep"`, `integer | null`,
/// `array of string`, `object {lang, since}`, `1..10` ranges.
fn brief_type(p: &Value, depth: usize) -> String {
    let join = |parts: Vec<String>| {
        let mut seen: Vec<String> = Vec::new();
        for s in parts {
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen.join(" | ")
    };
    if let Some(c) = p.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = p.get("enum") {
        return cut(&join(values.iter().map(Value::to_string).collect()), 60);
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = p.get(k) {
            if !alts.is_empty() {
                return join(alts.iter().map(|a| brief_type(a, depth)).collect());
            }
        }
    }
    if let Some(Value::Array(all)) = p.get("allOf") {
        if all.len() == 1 {
            return brief_type(&all[0], depth);
        }
    }
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    let one = |ty: &str| -> String {
        match ty {
            "array" => match p.get("items") {
                Some(items) if items.is_object() && depth < 2 => {
                    let inner = brief_type(items, depth + 1);
                    if inner.contains(" | ") {
                        format!("array of ({})", inner)
                    } else {
                        format!("array of {}", inner)
                    }
                }
                _ => "array".into(),
            },
            "object" => match p.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() && depth == 0 => {
                    let required = strings(p.get("required"));
                    let fields: Vec<String> = props
                        .iter()
                        .map(|(k, v)| {
                            let opt = if required.contains(&k.as_str()) { "" } else { "?" };
                            format!("{}{}: {}", k, opt, brief_type(v, depth + 1))
                        })
                        .collect();
                    cut(&format!("object {{{}}}", fields.join(", ")), 60)
                }
                _ => "object".into(),
            },
            "integer" | "number" => {
                let (lo, hi) = (p.get("minimum"), p.get("maximum"));
                match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{} {}..{}", ty, lo, hi),
                    (Some(lo), None) => format!("{} ≥ {}", ty, lo),
                    (None, Some(hi)) => format!("{} ≤ {}", ty, hi),
                    _ => ty.to_string(),
                }
            }
            other => other.to_string(),
        }
    };
    match p.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(a)) => join(a.iter().filter_map(Value::as_str).map(one).collect()),
        _ if p.get("properties").is_some() => one("object"),
        _ => "any".into(),
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The lines of a tool's parameters, aligned for [`WIDTH`] columns:
/// `      --mode   "fast" | "deep", required   How to search (default: "fast")`.
fn param_lines(schema: &Value) -> Vec<String> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    let required = strings(schema.get("required"));
    let rows: Vec<(String, String, String)> = props
        .iter()
        .map(|(k, p)| {
            let mut ty = brief_type(p, 0);
            if required.contains(&k.as_str()) {
                ty.push_str(", required");
            }
            // A title that only repeats the name (Pydantic's "Value" for `value`) says nothing.
            let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
            let title = p.get("title").and_then(Value::as_str).filter(|t| norm(t) != norm(k));
            let mut desc = p
                .get("description")
                .and_then(Value::as_str)
                .or(title)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            // The default first: a long description is cut, the default never.
            if let Some(d) = p.get("default") {
                let d = format!("(default: {})", cut(&d.to_string(), 40));
                desc = if desc.is_empty() { d } else { format!("{} {}", d, desc) };
            }
            (format!("--{}", k), ty, desc)
        })
        .collect();
    const INDENT: usize = 6;
    // Columns as wide as their longest cell that fits; a longer one overflows its row.
    let (max_n, max_t) = (22, 30);
    let nw = rows.iter().map(|r| r.0.chars().count()).filter(|n| *n <= max_n).max().unwrap_or(0);
    let tw = rows.iter().map(|r| r.1.chars().count()).filter(|n| *n <= max_t).max().unwrap_or(0);
    let start = INDENT + nw + 2 + tw + 2;
    // Too little room beside the columns: descriptions go under their parameter.
    let (dstart, beside) = if WIDTH.saturating_sub(start) >= 24 { (start, true) } else { (INDENT + 4, false) };
    let mut out = Vec::new();
    for (name, ty, desc) in rows {
        let fits = name.chars().count() <= nw && ty.chars().count() <= tw;
        let fits = fits && (!beside || INDENT + nw + 2 + ty.chars().count() + 2 <= dstart);
        let head = if fits {
            format!("{:indent$}{:nw$}  {}", "", name, ty, indent = INDENT, nw = nw)
        } else {
            format!("{:indent$}{}  {}", "", name, ty, indent = INDENT)
        };
        let wrapped = wrap(&desc, WIDTH - dstart, 3);
        if wrapped.is_empty() {
            out.push(head);
            continue;
        }
        let mut rest = wrapped.iter();
        if beside && fits {
            let first = rest.next().map(String::as_str).unwrap_or("");
            let pad = (dstart).saturating_sub(head.chars().count());
            out.push(format!("{}{:pad$}{}", head, "", first, pad = pad));
        } else {
            out.push(head);
        }
        for l in rest {
            out.push(format!("{:dstart$}{}", "", l, dstart = dstart));
        }
    }
    out
}

pub fn call(ctx: &Ctx, name: &str, tool: &str, typed: &[ToolArg]) -> Outcome {
    let (s, root) = ctx.target(name).map_err(|e| {
        // `call s t --config x`: it may have been meant for the tool.
        match ctx.g.late.iter().find(|n| *n == "config" || *n == "project-root") {
            Some(n) => {
                e.hint(format!("--{} came after the tool's name: if it is the tool's parameter, put it after `--`", n))
            }
            None => e,
        }
    })?;
    let base = |e: Error| Failure::from(e).with("server", json!(s.name)).with("tool", json!(tool));
    let blocked_all = matches!(&s.always_allow, Some(list) if list.is_empty());
    let can_ask = is_tty(0) && is_tty(2);
    // Approval is settled before the call, except the question itself on a terminal.
    let verdict = |yes: bool| crate::policy::decide(&s, tool, crate::policy::Caller::Shell { yes, can_ask });
    if let crate::policy::Decision::Refuse(e) = verdict(ctx.g.yes) {
        if s.disabled || blocked_all {
            return Err(base(e));
        }
    }
    // Options of ours after the tool's name wait for its schema (they may be its parameters).
    let late = typed.iter().any(|a| matches!(a, ToolArg::Late(..)));
    // Through a running daemon, a call that needs no question takes one round trip (on the
    // shared child: a server isolated per session gets a child of its own the MCP way).
    // The daemon applies the gateway's policy: a tool approved here (--yes, the terminal)
    // that the gateway would refuse runs on a child of this process instead.
    let gateway_runs = crate::policy::gateway(&s, tool).is_ok();
    let settled = matches!(verdict(ctx.g.yes), crate::policy::Decision::Run);
    // Progress: asked for, or stderr is a terminal (and the output is not JSON). The daemon's
    // one-request path does not relay it; its MCP session does.
    let mut progress = ctx.g.progress || (is_tty(2) && !ctx.g.json_output);
    if !late
        && !progress
        && settled
        && gateway_runs
        && !ctx.g.dry_run
        && s.isolation == crate::config::Isolation::Shared
    {
        if let Some(answer) = ctx.call_via_daemon(&s, &root, tool, typed).map_err(base)? {
            let arguments = answer.arguments.filter(|a| a.is_object());
            if let Some(e) = &answer.error {
                let f = base(Error::from_json(e));
                return Err(match arguments {
                    Some(a) => f.with("arguments", a),
                    None => f,
                });
            }
            let arguments = match arguments {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            return finish(&s.name, tool, arguments, answer.result.unwrap_or(Value::Null));
        }
    }
    let session = if gateway_runs { ctx.open(&s, &root) } else { ctx.open_own(&s, &root) }.map_err(base)?;
    let mut timeout = ctx.request_timeout(&s);
    let tools = session.tools(timeout).map_err(base)?;
    // An unknown tool is that (with close names), whatever the allowlist says.
    let def = crate::call::find_tool(&s.name, &tools, tool).map_err(base)?;
    log::debug!("found tool `{}` among {} tools", tool, tools.len());
    let (typed, ours) = crate::call::resolve_late(def, typed);
    let (mut yes, mut dry_run) = (ctx.g.yes, ctx.g.dry_run);
    for name in &ctx.g.late {
        if crate::call::declares(def, name) {
            if name == "verbose" {
                // The tool's `--verbose`: our debug output stops here.
                log::set_max_level(log::LevelFilter::Warn);
                continue;
            }
            return Err(base(
                Error::usage(format!(
                    "--{} after the tool's name is both mcpctl's option and a parameter of `{}`",
                    name, tool
                ))
                .hint(format!(
                    "put mcpctl's --{} before `call`, or the tool's after `--` (`mcpctl call {} {} -- --{} …`)",
                    name, s.name, tool, name
                )),
            ));
        }
    }
    for (name, value) in &ours {
        let flag = |set: &mut bool| match value {
            None => {
                *set = true;
                Ok(())
            }
            Some(v) => Err(Error::usage(format!("--{} takes no value (got `{}`)", name, v))
                .hint(format!("`{}` has no parameter `{}`; see `mcpctl tools {}`", tool, name, s.name))),
        };
        match name.as_str() {
            "yes" => flag(&mut yes).map_err(base)?,
            "dry-run" => flag(&mut dry_run).map_err(base)?,
            "progress" => flag(&mut progress).map_err(base)?,
            "timeout" => {
                let secs = value.as_deref().and_then(|v| v.parse::<f64>().ok()).filter(|s| *s > 0.0 && *s <= 86_400.0);
                timeout = std::time::Duration::from_secs_f64(secs.ok_or_else(|| {
                    base(Error::usage(format!(
                        "--timeout takes seconds (a number above 0), not `{}`",
                        value.as_deref().unwrap_or("")
                    )))
                })?);
            }
            "url" => {
                return Err(base(
                    Error::usage(format!("`{}` has no parameter `url`, and a server is named already", tool))
                        .hint("to call a server by its URL, put --url before the tool: mcpctl call --url URL TOOL"),
                ))
            }
            // Already in effect (see `cli::provisional`).
            _ => {}
        }
    }
    let ask = match verdict(yes) {
        crate::policy::Decision::Run => false,
        crate::policy::Decision::Ask => !dry_run,
        crate::policy::Decision::Refuse(e) if !dry_run => {
            // A typo of an allowed tool reads as "needs approval"; say which allowed name is close.
            let allowed_names: Vec<&str> =
                s.always_allow.iter().flatten().map(String::as_str).filter(|p| !p.contains('*')).collect();
            let e = match crate::cli::closest(tool, &allowed_names) {
                Some(close) => e.hint(format!(
                    "did you mean `{}` (allowed)? Otherwise pass --yes, or add it to the server's alwaysAllow list",
                    close
                )),
                None => e,
            };
            return Err(base(e));
        }
        crate::policy::Decision::Refuse(_) => false,
    };
    let allowed = s.allows(tool);
    let arguments = match crate::call::arguments(def, &typed, &mut std::io::stdin().lock()) {
        Ok(a) => a,
        Err(bad) => {
            let f = base(bad.error);
            return Err(match bad.arguments {
                Some(a) => f.with("arguments", Value::Object(a)),
                None => f,
            });
        }
    };
    for w in crate::call::undeclared(def, &arguments) {
        log::warn!("{}", w);
    }
    let with_args = |f: Failure| f.with("arguments", Value::Object(arguments.clone()));
    let request = json!({"name": tool, "arguments": arguments});
    if dry_run {
        let mut r = Report::new(Status::DryRun, format!("Dry run: would call '{}' on server '{}'", tool, s.name))
            .field("server", json!(s.name))
            .field("tool", json!(tool))
            .field("arguments", Value::Object(arguments.clone()))
            .field("request", json!({"jsonrpc": "2.0", "method": "tools/call", "params": request}))
            .field(
                "approval",
                json!(if allowed {
                    "allowed"
                } else if blocked_all {
                    "blocked"
                } else {
                    "required"
                }),
            );
        r.body = format!(
            "  Server: {}\n  Tool: {}\n  Arguments: {}\n  Approval: {}\n  (nothing was run)\n",
            s.name,
            tool,
            Value::Object(arguments),
            r.fields["approval"].as_str().unwrap_or("")
        );
        return Ok(r);
    }
    if ask && !confirm(&format!("Allow tool `{}` on server `{}` to run with {}?", tool, s.name, request["arguments"]))?
    {
        return Err(with_args(base(Error::forbidden(format!(
            "tool `{}` on server `{}` was not approved",
            tool, s.name
        )))));
    }
    log::debug!("calling `{}`", tool);
    let mut request = request;
    if progress {
        request["_meta"] = json!({"progressToken": crate::client::PROGRESS_TOKEN});
        crate::client::progress(true);
    }
    let result = session.call("tools/call", Some(request), timeout);
    crate::client::progress(false);
    // The result is printed before the server is stopped (see `client::defer_shutdown`).
    crate::client::defer_shutdown(session);
    let result = result.map_err(|e| with_args(base(e)))?;
    finish(&s.name, tool, arguments, result)
}

/// A tool's result: its text to stdout, or a failure when it is an error (`isError`).
fn finish(server: &str, tool: &str, arguments: Map<String, Value>, result: Value) -> Outcome {
    let text = render_content(&result);
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let mut f = Failure::from(Error::tool(format!("tool `{}` on server `{}` returned an error", tool, server)))
            .with("server", json!(server))
            .with("tool", json!(tool))
            .with("arguments", Value::Object(arguments))
            .with("result", result);
        f.body = text;
        return Err(f);
    }
    let mut r = Report::new(Status::Success, format!("Tool '{}' executed successfully", tool))
        .field("server", json!(server))
        .field("tool", json!(tool))
        .field("arguments", Value::Object(arguments))
        .field("result", result);
    r.raw = Some(text);
    Ok(r)
}

/// A tool result as plain text: text content as is, other content as one-line summaries,
/// `structuredContent` as JSON when there is no text.
pub fn render_content(result: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut has_text = false;
    for c in result.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let mime = c["mimeType"].as_str().unwrap_or("?");
        match c["type"].as_str().unwrap_or("") {
            "text" => {
                has_text = true;
                parts.push(c["text"].as_str().unwrap_or("").to_string());
            }
            "image" | "audio" => parts.push(format!(
                "[{}: {}, {} bytes]",
                c["type"].as_str().unwrap_or(""),
                mime,
                base64_len(c["data"].as_str().unwrap_or(""))
            )),
            "resource" => {
                let r = &c["resource"];
                let size = r["text"].as_str().map(str::len).or_else(|| r["blob"].as_str().map(base64_len)).unwrap_or(0);
                parts.push(format!(
                    "[resource: {} ({}, {} bytes)]",
                    r["uri"].as_str().unwrap_or("?"),
                    r["mimeType"].as_str().unwrap_or("?"),
                    size
                ));
            }
            "resource_link" => parts.push(format!("[resource link: {}]", c["uri"].as_str().unwrap_or("?"))),
            other => parts.push(format!("[{} content]", other)),
        }
    }
    if !has_text {
        if let Some(sc) = result.get("structuredContent") {
            parts.push(serde_json::to_string_pretty(sc).unwrap_or_default());
        }
    }
    parts.join("\n")
}

fn base64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count();
    (s.len() / 4) * 3 - pad.min(2)
}

/// Ask on the terminal; only a typed y/yes approves.
fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{} [y/N] ", question);
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::failure(format!("cannot read the answer: {}", e)))?;
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_types() {
        let t = |v: Value| brief_type(&v, 0);
        assert_eq!(t(json!({"type": "string"})), "string");
        assert_eq!(t(json!({"type": ["string", "null"]})), "string | null");
        assert_eq!(t(json!({"oneOf": [{"type": "integer"}, {"const": "auto"}]})), "integer | \"auto\"");
        assert_eq!(t(json!({"enum": ["a", 1, null]})), "\"a\" | 1 | null");
        assert_eq!(t(json!({"type": "array", "items": {"type": ["string", "null"]}})), "array of (string | null)");
        assert_eq!(
            t(json!({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}})),
            "array of array of integer"
        );
        assert_eq!(t(json!({"$ref": "#/$defs/Point"})), "Point");
        assert_eq!(t(json!({"properties": {"x": {"type": "number"}}, "required": ["x"]})), "object {x: number}");
        assert_eq!(t(json!({})), "any");
        assert_eq!(t(json!({"type": "integer", "minimum": 0})), "integer ≥ 0");
    }

    #[test]
    fn wrapping_cuts_with_an_ellipsis() {
        assert_eq!(wrap("one two three four", 13, 3), vec!["one two three", "four"]);
        assert_eq!(wrap("one two three four", 13, 1), vec!["one two thre…"]);
        assert_eq!(wrap("", 10, 3), Vec::<String>::new());
        assert_eq!(wrap("abcdefghijklmnop", 10, 2), vec!["abcdefghi…"]);
    }
}
