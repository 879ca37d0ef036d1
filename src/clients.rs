//! Other MCP clients' config files, read as ours: Claude Desktop and Cursor (`mcpServers`),
//! Claude Code (`.mcp.json`; `~/.claude.json` with its per-project servers), VS Code
//! (`.vscode/mcp.json`: `servers`, `inputs`, `${input:…}`, `${env:…}`, `${workspaceFolder}`)
//! and Codex (`config.toml`, `[mcp_servers.*]`). Each becomes the `{"mcpServers": …}`
//! document that `config` parses; `${VAR}` references are kept as they are (never expanded
//! here), so that `mcpctl import` can write the result without writing a secret. Entries of
//! a kind we do not speak are left out with a warning, so the rest still work.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The clients `mcpctl import` reads, and where each keeps its servers.
pub const CLIENTS: [&str; 5] = ["claude-desktop", "claude-code", "cursor", "vscode", "codex"];

/// The files `client` keeps MCP servers in, most specific first (`project` first, then the
/// user's own); `home` and `env` come from the caller (tests give their own).
pub fn files_of(
    client: &str,
    project: &Path,
    home: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>> {
    Ok(match client {
        "claude-desktop" => {
            let xdg = env("XDG_CONFIG_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".config"));
            vec![
                xdg.join("Claude/claude_desktop_config.json"),
                home.join("Library/Application Support/Claude/claude_desktop_config.json"),
            ]
        }
        "claude-code" => vec![project.join(".mcp.json"), home.join(".claude.json")],
        "cursor" => vec![project.join(".cursor/mcp.json"), home.join(".cursor/mcp.json")],
        "vscode" => vec![project.join(".vscode/mcp.json")],
        "codex" => {
            let dir = env("CODEX_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".codex"));
            vec![dir.join("config.toml")]
        }
        other => {
            let e = Error::usage(format!("no client `{}` to import from", other));
            return Err(match crate::cli::closest(other, &CLIENTS) {
                Some(c) => e.hint(format!("did you mean `{}`?", c)),
                None => e.hint(format!("clients: {}", CLIENTS.join(", "))),
            });
        }
    })
}

/// A config file's text as our `mcpServers` JSON, and warnings for what was left out.
/// Our own format (and Claude Desktop's, Cursor's, `.mcp.json`) comes back unchanged.
pub fn as_mcp_servers<'a>(text: &'a str, path: &Path, project: &Path) -> Result<(Cow<'a, str>, Vec<String>)> {
    let file = path.display().to_string();
    if path.extension().map(|e| e == "toml").unwrap_or(false) {
        let doc = crate::toml::parse(text).map_err(|e| Error::config(format!("{}: invalid TOML: {}", file, e)))?;
        let mut warnings = Vec::new();
        let servers = from_codex(&doc, &file, &mut warnings)?;
        return Ok((Cow::Owned(json!({ "mcpServers": servers }).to_string()), warnings));
    }
    // A file that is not JSON is left to `config::parse`, whose error names line and column.
    let Ok(doc) = serde_json::from_str::<Value>(text) else { return Ok((Cow::Borrowed(text), Vec::new())) };
    let mut warnings = Vec::new();
    let converted = if doc.get("mcpServers").is_none() && doc.get("servers").map(Value::is_object).unwrap_or(false) {
        Some(from_vscode(&doc, project, &mut warnings))
    } else if path.file_name().map(|n| n == ".claude.json").unwrap_or(false) {
        Some(from_claude_json(&doc, project))
    } else {
        None
    };
    let was_ours = converted.is_none();
    let mut doc = match converted {
        Some(servers) => json!({ "mcpServers": servers }),
        None => doc,
    };
    let changed = drop_unsupported(&mut doc, &mut warnings);
    if was_ours && !changed {
        return Ok((Cow::Borrowed(text), warnings));
    }
    Ok((Cow::Owned(doc.to_string()), warnings))
}

/// Leave out the servers of a transport we do not speak (`"type": "sse"`, the deprecated
/// HTTP+SSE transport): one such entry must not make every command fail.
fn drop_unsupported(doc: &mut Value, warnings: &mut Vec<String>) -> bool {
    let Some(Value::Object(servers)) = doc.get_mut("mcpServers") else { return false };
    let before = servers.len();
    servers.retain(|name, s| match s.get("type").and_then(Value::as_str) {
        Some(t @ ("sse" | "ws" | "websocket")) => {
            warnings.push(format!(
                "server `{}` left out: its type `{}` ({}) is not supported; use its Streamable HTTP URL with \"type\": \"http\" if it has one",
                name,
                t,
                if t == "sse" { "the deprecated HTTP+SSE transport" } else { "WebSocket" }
            ));
            false
        }
        _ => true,
    });
    servers.len() != before
}

/// Claude Code's `~/.claude.json`: the user's servers, then this project's (which win).
fn from_claude_json(doc: &Value, project: &Path) -> Value {
    let mut out = doc.get("mcpServers").and_then(Value::as_object).cloned().unwrap_or_default();
    let key = project.display().to_string();
    if let Some(Value::Object(p)) = doc.get("projects").and_then(|p| p.get(&key)).and_then(|p| p.get("mcpServers")) {
        for (k, v) in p {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// VS Code's `.vscode/mcp.json`: `servers` with `type` stdio/http/sse; its variables become
/// ours: `${env:NAME}` → `${NAME}`, `${input:id}` → `${MCPCTL_INPUT_ID}` (a prompt VS Code
/// would show; here the variable holds the answer), `${workspaceFolder}` → the project.
fn from_vscode(doc: &Value, project: &Path, warnings: &mut Vec<String>) -> Value {
    let mut out = Map::new();
    let servers = doc["servers"].as_object().cloned().unwrap_or_default();
    for (name, s) in servers {
        let Value::Object(mut s) = s else {
            out.insert(name, s);
            continue;
        };
        if s.remove("envFile").is_some() {
            warnings.push(format!(
                "server `{}`: `envFile` is not read by mcpctl; copy its variables into `env` (as ${{VAR}} references)",
                name
            ));
        }
        if s.get("type").and_then(Value::as_str) == Some("stdio") && s.contains_key("command") {
            s.remove("type");
        }
        let mut v = Value::Object(s);
        rewrite_strings(&mut v, &|text| vscode_vars(text, project));
        out.insert(name, v);
    }
    Value::Object(out)
}

fn rewrite_strings(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_strings(x, f)),
        Value::Object(m) => m.values_mut().for_each(|x| rewrite_strings(x, f)),
        _ => {}
    }
}

fn vscode_vars(text: &str, project: &Path) -> String {
    let mapped = crate::config::map_vars(text, |inner| {
        Ok::<_, ()>(match inner.split_once(':') {
            Some(("env", var)) => Some(format!("${{{}}}", var)),
            Some(("input", id)) => Some(format!("${{{}}}", input_var(id))),
            _ if inner == "workspaceFolder" => Some(project.display().to_string()),
            _ if inner == "userHome" => Some("${HOME}".to_string()),
            _ => None,
        })
    });
    mapped.unwrap_or_else(|()| text.to_string())
}

/// The variable that answers VS Code's input `id`: `MCPCTL_INPUT_` and the id in capitals,
/// other characters as `_` (`api-key` → `MCPCTL_INPUT_API_KEY`).
pub fn input_var(id: &str) -> String {
    let tail: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("MCPCTL_INPUT_{}", tail)
}

/// Codex's `[mcp_servers.NAME]` tables.
fn from_codex(doc: &Value, file: &str, warnings: &mut Vec<String>) -> Result<Value> {
    let mut out = Map::new();
    let Some(servers) = doc.get("mcp_servers") else { return Ok(Value::Object(out)) };
    let servers = servers
        .as_object()
        .ok_or_else(|| Error::config(format!("{}: `mcp_servers` must be a table of servers", file)))?;
    for (name, s) in servers {
        let at = |what: &str| Error::config(format!("{}: [mcp_servers.{}]: {}", file, name, what));
        let s = s.as_object().ok_or_else(|| at("must be a table"))?;
        let mut e = Map::new();
        for k in ["command", "args", "env", "cwd", "url"] {
            if let Some(v) = s.get(k) {
                e.insert(k.into(), v.clone());
            }
        }
        let mut headers = s.get("http_headers").and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(Value::Object(h)) = s.get("env_http_headers") {
            for (header, var) in h {
                let var = var.as_str().ok_or_else(|| at("`env_http_headers` values must be variable names"))?;
                headers.insert(header.clone(), json!(format!("${{{}}}", var)));
            }
        }
        if let Some(var) = s.get("bearer_token_env_var") {
            let var = var.as_str().ok_or_else(|| at("`bearer_token_env_var` must be a variable name"))?;
            headers.insert("Authorization".into(), json!(format!("Bearer ${{{}}}", var)));
        }
        if !headers.is_empty() {
            e.insert("headers".into(), Value::Object(headers));
        }
        if let Some(t) = s.get("tool_timeout_sec") {
            e.insert("timeout".into(), t.clone());
        }
        if s.get("enabled") == Some(&Value::Bool(false)) {
            e.insert("disabled".into(), json!(true));
        }
        for k in ["enabled_tools", "disabled_tools"] {
            if s.contains_key(k) {
                warnings.push(format!(
                    "server `{}`: Codex's `{}` is not carried over (it filters tools; mcpctl's `alwaysAllow` approves them): set `alwaysAllow` yourself",
                    name, k
                ));
            }
        }
        out.insert(name.clone(), Value::Object(e));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(text: &str, file: &str) -> (Value, Vec<String>) {
        let (t, w) = as_mcp_servers(text, Path::new(file), Path::new("/proj")).unwrap();
        (serde_json::from_str(&t).unwrap(), w)
    }

    #[test]
    fn our_format_is_passed_through_untouched() {
        let text = "{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}";
        let (t, w) = as_mcp_servers(text, Path::new("/p/.mcp.json"), Path::new("/p")).unwrap();
        assert!(matches!(t, Cow::Borrowed(_)) && w.is_empty());
    }

    #[test]
    fn sse_entries_are_left_out_with_a_warning() {
        let (v, w) = convert(
            r#"{"mcpServers": {"old": {"type": "sse", "url": "http://h/sse"}, "ok": {"command": "x"}}}"#,
            "/p/.mcp.json",
        );
        assert_eq!(v["mcpServers"].as_object().unwrap().keys().collect::<Vec<_>>(), ["ok"]);
        assert!(w[0].contains("`old`") && w[0].contains("HTTP+SSE"), "{:?}", w);
    }

    #[test]
    fn vscode_servers_and_variables() {
        let (v, w) = convert(
            r#"{"inputs": [{"type": "promptString", "id": "api-key", "password": true}],
                "servers": {
                  "gh": {"type": "http", "url": "https://api.example/mcp", "headers": {"Authorization": "Bearer ${input:api-key}"}},
                  "fs": {"type": "stdio", "command": "npx", "args": ["-y", "fs", "${workspaceFolder}/data"], "env": {"T": "${env:TOKEN}"}, "envFile": "${workspaceFolder}/.env"}
                }}"#,
            "/proj/.vscode/mcp.json",
        );
        let s = &v["mcpServers"];
        assert_eq!(s["gh"]["headers"]["Authorization"], "Bearer ${MCPCTL_INPUT_API_KEY}");
        assert_eq!(s["gh"]["type"], "http");
        assert_eq!(s["fs"]["args"][2], "/proj/data");
        assert_eq!(s["fs"]["env"]["T"], "${TOKEN}");
        assert!(s["fs"].get("type").is_none() && s["fs"].get("envFile").is_none());
        assert!(w[0].contains("envFile"), "{:?}", w);
    }

    #[test]
    fn codex_toml() {
        let (v, w) = convert(
            r#"
model = "o3"
[mcp_servers.docs]
command = "uvx"
args = ["mcp-server-fetch"]
env = { "LOG" = "1" }
tool_timeout_sec = 90
enabled_tools = ["fetch"]

[mcp_servers.remote]
url = "https://mcp.example/mcp"
bearer_token_env_var = "REMOTE_TOKEN"
enabled = false
"#,
            "/home/u/.codex/config.toml",
        );
        let s = &v["mcpServers"];
        assert_eq!(
            s["docs"],
            json!({"command": "uvx", "args": ["mcp-server-fetch"], "env": {"LOG": "1"}, "timeout": 90})
        );
        assert_eq!(s["remote"]["headers"]["Authorization"], "Bearer ${REMOTE_TOKEN}");
        assert_eq!(s["remote"]["disabled"], true);
        assert!(w.iter().any(|x| x.contains("enabled_tools")), "{:?}", w);
    }

    #[test]
    fn claude_json_project_servers_win() {
        let (v, _) = convert(
            r#"{"mcpServers": {"a": {"command": "user-a"}, "b": {"command": "user-b"}},
                "projects": {"/proj": {"mcpServers": {"b": {"command": "proj-b"}}}, "/other": {"mcpServers": {"c": {"command": "c"}}}}}"#,
            "/home/u/.claude.json",
        );
        assert_eq!(v["mcpServers"], json!({"a": {"command": "user-a"}, "b": {"command": "proj-b"}}));
    }
}
