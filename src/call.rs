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
    Err(Error::not_found(format!("unknown tool `{}` on server `{}`", tool, server)).hint(hint))
}

/// Arguments that did not fit the schema: the error, and the arguments when only the
/// validation failed (they were built).
pub struct BadArguments {
    pub error: Error,
    pub arguments: Option<Map<String, Value>>,
}

/// Whether the tool `def` declares a parameter `name`.
pub fn declares(def: &Value, name: &str) -> bool {
    def["inputSchema"]["properties"].get(name).is_some()
}

/// Settle the options of ours given after the tool's name ([`ToolArg::Late`]): a name the
/// tool's schema declares is the tool's argument; any other is ours, returned apart (name,
/// value) for the caller to apply.
pub fn resolve_late(def: &Value, typed: &[ToolArg]) -> (Vec<ToolArg>, Vec<(String, Option<String>)>) {
    let mut args = Vec::with_capacity(typed.len());
    let mut ours = Vec::new();
    for a in typed {
        match a {
            ToolArg::Late(k, v) if declares(def, k) => args.push(ToolArg::Pair(k.clone(), v.clone())),
            ToolArg::Late(k, v) => ours.push((k.clone(), v.clone())),
            other => args.push(other.clone()),
        }
    }
    (args, ours)
}

/// Typed and checked arguments for the tool `def`. A tool with a parameter called `json`
/// or `var` gets `--json X` / `--var X` as that parameter's value.
pub fn arguments(
    def: &Value,
    typed: &[ToolArg],
    stdin: &mut dyn Read,
) -> std::result::Result<Map<String, Value>, Box<BadArguments>> {
    let schema = def.get("inputSchema").cloned().unwrap_or(json!({}));
    let typed: Vec<ToolArg> = typed
        .iter()
        .map(|a| match a {
            ToolArg::Json(t) if declares(def, "json") => ToolArg::Pair("json".into(), Some(t.clone())),
            ToolArg::Var(t) if declares(def, "var") => ToolArg::Pair("var".into(), Some(t.clone())),
            other => other.clone(),
        })
        .collect();
    let arguments =
        args::build(&typed, &schema, stdin).map_err(|error| Box::new(BadArguments { error, arguments: None }))?;
    match args::validate(&arguments, &schema) {
        Ok(()) => Ok(arguments),
        Err(error) => Err(Box::new(BadArguments { error, arguments: Some(arguments) })),
    }
}

/// A line for each argument the tool `def` does not declare (a schema that forbids them
/// fails validation instead): "`--x` is not a parameter of `t`; did you mean `--y`?".
pub fn undeclared(def: &Value, arguments: &Map<String, Value>) -> Vec<String> {
    let Some(props) = def["inputSchema"]["properties"].as_object() else { return Vec::new() };
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    let tool = def["name"].as_str().unwrap_or("");
    arguments
        .keys()
        .filter(|k| !props.contains_key(*k))
        .map(|k| match crate::cli::closest(k, &names) {
            Some(c) => format!("`--{}` is not a parameter of `{}`; did you mean `--{}`?", k, tool, c),
            None => format!("`--{}` is not a parameter of `{}` (it has: {})", k, tool, names.join(", ")),
        })
        .collect()
}

/// Refuse the argument forms that name a file or standard input (`--var k=@file`,
/// `--json -`): the daemon reads nothing on a caller's behalf (the shell client inlines
/// them with [`resolve_local`] before it sends).
pub fn only_values(typed: &[ToolArg]) -> Result<()> {
    for a in typed {
        let refused = match a {
            ToolArg::Var(kv) => kv.split_once('=').map(|(_, v)| v.starts_with('@')).unwrap_or(false),
            ToolArg::Json(t) => t.trim() == "-",
            ToolArg::Pair(..) | ToolArg::Late(..) => false,
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
                        .map_err(|e| Error::usage(format!("--var {}=@{}: cannot read the file: {}", k, path, e)))?;
                    ToolArg::Pair(k.to_string(), Some(text))
                }
                _ => a.clone(),
            },
            ToolArg::Json(t) if t == "-" => {
                let mut s = String::new();
                stdin
                    .read_to_string(&mut s)
                    .map_err(|e| Error::usage(format!("--json -: cannot read standard input: {}", e)))?;
                ToolArg::Json(s)
            }
            other => other.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_tool_is_not_found_on_both_sides_of_the_daemon() {
        let tools = [json!({"name": "echo"}), json!({"name": "add"})];
        assert_eq!(find_tool("s", &tools, "add").unwrap()["name"], "add");
        let e = find_tool("s", &tools, "ech").unwrap_err();
        assert!(e.is_not_found() && e.exit_code() == 1, "{:?}", e);
        assert_eq!(e.one_line(), "unknown tool `ech` on server `s`; did you mean: echo?");
        // What `/cli/call` sends the shell client reads back as the same kind.
        let back = Error::from_json(&e.to_json());
        assert!(back.is_not_found() && back.one_line() == e.one_line());
    }
}
