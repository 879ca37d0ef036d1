//! `call <server> <tool>`: the tool found and its arguments typed, the approval asked,
//! the call made, and its result rendered as text.

use super::Outcome;
use crate::cli::ToolArg;
use crate::commands::Ctx;
use crate::error::{Error, Result, Status};
use crate::output::{is_tty, Failure, Report};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};

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
