//! One tool call, the parts shared by the shell client and the daemon's CLI endpoint:
//! finding the tool in a server's list (naming close ones when it is missing) and turning
//! what was typed into checked arguments by the tool's schema.

use crate::args;
use crate::cli::ToolArg;
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::io::Read;

/// The tool called `tool` in `tools`, or an error naming the close ones.
pub fn find_tool<'a>(server: &str, tools: &'a [Value], tool: &str) -> Result<&'a Value> {
    if let Some(def) = tools.iter().find(|t| t["name"] == tool) {
        return Ok(def);
    }
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    let close: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| crate::cli::edit_distance(n, tool) <= 2.max(tool.len() / 3) || n.contains(tool) || tool.contains(n))
        .take(5)
        .collect();
    let hint = if !close.is_empty() {
        format!("did you mean: {}?", close.join(", "))
    } else {
        format!("run `mcpctl tools {}` to see its {} tools", server, names.len())
    };
    Err(Error::failure(format!("unknown tool `{}` on server `{}`", tool, server)).hint(hint))
}

/// Arguments that did not fit the schema: the error, and the arguments when only the
/// validation failed (they were built).
pub struct BadArguments {
    pub error: Error,
    pub arguments: Option<Map<String, Value>>,
}

/// Typed and checked arguments for the tool `def`.
pub fn arguments(
    def: &Value,
    typed: &[ToolArg],
    stdin: &mut dyn Read,
) -> std::result::Result<Map<String, Value>, Box<BadArguments>> {
    let schema = def.get("inputSchema").cloned().unwrap_or(json!({}));
    let arguments =
        args::build(typed, &schema, stdin).map_err(|error| Box::new(BadArguments { error, arguments: None }))?;
    match args::validate(&arguments, &schema) {
        Ok(()) => Ok(arguments),
        Err(error) => Err(Box::new(BadArguments { error, arguments: Some(arguments) })),
    }
}

/// Refuse the argument forms that name a file or standard input (`--var k=@file`,
/// `--json -`): the daemon reads nothing on a caller's behalf (the shell client inlines
/// them with [`resolve_local`] before it sends).
pub fn only_values(typed: &[ToolArg]) -> Result<()> {
    for a in typed {
        let refused = match a {
            ToolArg::Var(kv) => kv.split_once('=').map(|(_, v)| v.starts_with('@')).unwrap_or(false),
            ToolArg::Json(t) => t.trim() == "-",
            ToolArg::Pair(..) => false,
        };
        if refused {
            let form = match a {
                ToolArg::Var(kv) => format!("--var {}=@…", kv.split_once('=').map(|(k, _)| k).unwrap_or("")),
                _ => "--json -".to_string(),
            };
            return Err(Error::forbidden(format!(
                "{}: the daemon does not read files or standard input for a caller",
                form
            ))
            .hint("send the contents instead (`mcpctl call` does this itself)"));
        }
    }
    Ok(())
}

/// Replace what only this process can read (`--var k=@file`, `--json -`) by its contents,
/// so the arguments can be typed elsewhere (by the daemon).
pub fn resolve_local(typed: &[ToolArg], stdin: &mut dyn Read) -> Result<Vec<ToolArg>> {
    let mut out = Vec::with_capacity(typed.len());
    for a in typed {
        out.push(match a {
            ToolArg::Var(kv) => match kv.split_once('=') {
                Some((k, v)) if v.starts_with('@') => {
                    let path = &v[1..];
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| Error::failure(format!("--var {}=@{}: cannot read the file: {}", k, path, e)))?;
                    ToolArg::Pair(k.to_string(), Some(text))
                }
                _ => a.clone(),
            },
            ToolArg::Json(t) if t == "-" => {
                let mut s = String::new();
                stdin
                    .read_to_string(&mut s)
                    .map_err(|e| Error::failure(format!("--json -: cannot read standard input: {}", e)))?;
                ToolArg::Json(s)
            }
            other => other.clone(),
        });
    }
    Ok(out)
}
