//! Project discovery and the `mcpServers` config file: finding it, parsing it with
//! errors that name file, server and field, and `${VAR}` / `${VAR:-default}` substitution.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the config came from and what it holds, servers in file order.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub project_root: PathBuf,
    pub servers: Vec<ServerConfig>,
    /// Named gateway tokens (`"tokens"`), values not read yet.
    pub tokens: Vec<TokenConfig>,
    /// What was left out of another client's file (an entry of a kind we do not speak).
    pub warnings: Vec<String>,
}

/// One entry of `"tokens"`: where its value is, and what it may call.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    pub name: String,
    pub env: Option<String>,
    pub file: Option<PathBuf>,
    /// `<server>__<tool>` names and `*` patterns; `None`: no limit of its own.
    pub allow: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Stdio { command: String, args: Vec<String>, env: Vec<(String, String)>, cwd: Option<PathBuf> },
    Http { url: String, headers: Vec<(String, String)>, auth: HttpAuth },
}

/// Credentials of a `url` server obtained without a browser: headers printed by a command
/// (`headersHelper`, run with `sh -c` in the project root) and a bearer token read from a
/// file only its owner can read (`bearerTokenFile`). Read when connecting, and again after
/// a `401` (once per request). Their values are never logged or shown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpAuth {
    pub headers_helper: Option<String>,
    /// Relative to the project root.
    pub bearer_token_file: Option<PathBuf>,
}

impl HttpAuth {
    pub fn is_empty(&self) -> bool {
        self.headers_helper.is_none() && self.bearer_token_file.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// One child shared by every client session (default).
    Shared,
    /// A child per client session, for stateful servers.
    Session,
}

/// Which MCP era the child is spoken to in (`"protocol"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The newest revision both speak: `server/discover` first, else `initialize` (default).
    Auto,
    /// The session era only (`initialize`; 2025-11-25 or older), never probing.
    Legacy,
    /// 2026-07-28 only: a server that does not speak it fails to start.
    Modern,
    /// Gateway: a child per era. Spoken to in the newest revision, plus a second child in
    /// the session era for session-based clients (a dual-era server's session-only
    /// features: its own elicitation, sampling and logging requests). Elsewhere `Auto`.
    PerEra,
}

impl Protocol {
    /// The word in the config.
    pub fn word(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Legacy => "2025-11-25",
            Protocol::Modern => "2026-07-28",
            Protocol::PerEra => "per-era",
        }
    }
}

/// What the gateway does with a tool that is not in `alwaysAllow` (`gatewayApproval`):
/// a gateway has no terminal to ask on, but it can ask the client's user (`Ask`, by MCP
/// elicitation) when the client can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Allow,
    Deny,
    Ask,
}

impl Approval {
    /// The word in the config.
    pub fn word(self) -> &'static str {
        match self {
            Approval::Allow => "allow",
            Approval::Deny => "deny",
            Approval::Ask => "ask",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    pub transport: Transport,
    /// `None`: every tool needs approval. `Some([])`: every tool is blocked.
    pub always_allow: Option<Vec<String>>,
    /// Unlisted tools through the gateway: the server's `gatewayApproval`, else the
    /// top-level one, else deny.
    pub gateway_approval: Approval,
    pub disabled: bool,
    pub timeout: Duration,
    pub isolation: Isolation,
    /// `"protocol"`: the era the child is spoken to in.
    pub protocol: Protocol,
    /// `"runtime": "uv"` forces the managed uv runtime.
    pub runtime: Option<String>,
    /// `"envPolicy"`: what the child inherits from mcpctl's environment.
    pub env_policy: crate::childenv::EnvPolicy,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerConfig {
    /// The command (stdio) or URL (http), for listings.
    pub fn target(&self) -> &str {
        match &self.transport {
            Transport::Stdio { command, .. } => command,
            Transport::Http { url, .. } => url,
        }
    }

    /// Whether `tool` may run without asking.
    pub fn allows(&self, tool: &str) -> bool {
        match &self.always_allow {
            None => false,
            Some(list) => list.iter().any(|p| glob_match(p, tool)),
        }
    }

    /// A server built from a bare URL (`--url`), with default settings.
    pub fn from_url(url: &str) -> ServerConfig {
        ServerConfig {
            name: "url".into(),
            transport: Transport::Http { url: url.into(), headers: Vec::new(), auth: HttpAuth::default() },
            always_allow: Some(vec!["*".into()]),
            gateway_approval: Approval::Allow,
            disabled: false,
            timeout: DEFAULT_TIMEOUT,
            isolation: Isolation::Shared,
            protocol: Protocol::Auto,
            runtime: None,
            env_policy: Default::default(),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What the command line and environment said about where the project is.
#[derive(Debug, Default, Clone)]
pub struct Locate {
    pub project_root: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

impl Locate {
    /// Fill unset fields from `MCPCTL_PROJECT_DIR` and `MCPCTL_CONFIG`.
    pub fn with_env(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Locate> {
        if self.project_root.is_none() {
            if let Some(v) = get("MCPCTL_PROJECT_DIR") {
                if v.is_empty() {
                    return Err(Error::config("MCPCTL_PROJECT_DIR is set but empty")
                        .hint("set it to the project folder, or unset it"));
                }
                self.project_root = Some(PathBuf::from(v));
            }
        }
        if self.config.is_none() {
            if let Some(v) = get("MCPCTL_CONFIG").filter(|v| !v.is_empty()) {
                self.config = Some(PathBuf::from(v));
            }
        }
        Ok(self)
    }
}

/// The files a project's servers are found in, in this order: ours, then Claude Code's,
/// Cursor's and VS Code's project files (read through `clients`).
const CANDIDATES: [&str; 4] = [".mcpctl/config.json", ".mcp.json", ".cursor/mcp.json", ".vscode/mcp.json"];

/// Find the project root and config file, in the documented order.
pub fn locate(loc: &Locate, cwd: &Path) -> Result<(PathBuf, PathBuf)> {
    if let Some(file) = &loc.config {
        let file = cwd.join(file);
        if !file.is_file() {
            return Err(Error::config(format!("Config file {} not found", file.display()))
                .hint("check --config / MCPCTL_CONFIG"));
        }
        let root = match &loc.project_root {
            Some(r) => cwd.join(r),
            None => default_root_for(&file, cwd),
        };
        return Ok((root, file));
    }
    if let Some(root) = &loc.project_root {
        let root = cwd.join(root);
        if !root.is_dir() {
            return Err(Error::config(format!("Project root {} is not a directory", root.display())));
        }
        for c in CANDIDATES {
            if root.join(c).is_file() {
                return Ok((root.clone(), root.join(c)));
            }
        }
        return Err(Error::config(format!("No mcpctl project found in {}", root.display()))
            .hint("create .mcpctl/config.json with {\"mcpServers\": {...}} there"));
    }
    for dir in cwd.ancestors() {
        for c in CANDIDATES {
            if dir.join(c).is_file() {
                return Ok((dir.to_path_buf(), dir.join(c)));
            }
        }
    }
    Err(Error::config(format!("No mcpctl project found in {}", cwd.display()))
        .hint("create .mcpctl/config.json with {\"mcpServers\": {...}}, or pass --project-root DIR"))
}

/// The project of a config file named by `--config`: the folder holding `.mcpctl/`,
/// `.cursor/` or `.vscode/` for a file in one of those; the current folder for another
/// application's own file (Claude Desktop's, `~/.claude.json`, Codex's `config.toml`), so
/// that mcpctl's state never lands in that application's folder; else the file's folder.
fn default_root_for(file: &Path, cwd: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if dir.file_name().map(|n| n == ".mcpctl" || n == ".cursor" || n == ".vscode").unwrap_or(false) {
        dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else if name == "claude_desktop_config.json" || name == ".claude.json" || name.ends_with(".toml") {
        cwd.to_path_buf()
    } else {
        dir
    }
}

/// Locate and load the project config.
pub fn load(loc: &Locate, cwd: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let (root, path) = locate(loc, cwd)?;
    let raw =
        std::fs::read_to_string(&path).map_err(|e| Error::config(format!("Cannot read {}: {}", path.display(), e)))?;
    let project_root = root.canonicalize().unwrap_or(root);
    let (text, warnings) = crate::clients::as_mcp_servers(&raw, &path, &project_root)?;
    let servers = parse(&text, &path, env)?;
    let tokens = parse_tokens(&text, &path)?;
    Ok(Config { path, project_root, servers, tokens, warnings })
}

/// Parse and validate a config file's text.
pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<ServerConfig>> {
    let file = path.display().to_string();
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        Error::config(format!("{}: invalid JSON at line {} column {}: {}", file, e.line(), e.column(), e))
            .hint("fix the syntax (a trailing comma or a missing quote is the usual cause)")
    })?;
    let servers = match doc.get("mcpServers") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::config(format!("{}: `mcpServers` must be an object of servers", file))),
        None => {
            return Err(Error::config(format!("{}: no `mcpServers` object at the top level", file))
                .hint("the file must look like {\"mcpServers\": {\"name\": {\"command\": \"...\"}}}"))
        }
    };
    let default = match doc.get("gatewayApproval") {
        None | Some(Value::Null) => Approval::Deny,
        Some(v) => approval(v).ok_or_else(|| {
            Error::config(format!("{}: top-level `gatewayApproval` must be \"allow\", \"deny\" or \"ask\"", file))
        })?,
    };
    servers.iter().map(|(name, v)| parse_server(&file, name, v, env, default)).collect()
}

/// The `"tokens"` object: `{"ci": {"env": "VAR"} | {"file": "path"}, "allow": [...]}`.
/// A `value` (the secret itself) is refused: secrets do not belong in the config.
pub fn parse_tokens(text: &str, path: &Path) -> Result<Vec<TokenConfig>> {
    let file = path.display().to_string();
    let doc: Value = serde_json::from_str(text).map_err(|e| Error::config(format!("{}: {}", file, e)))?;
    let Some(tokens) = doc.get("tokens").filter(|t| !t.is_null()) else { return Ok(Vec::new()) };
    let Some(tokens) = tokens.as_object() else {
        return Err(Error::config(format!("{}: `tokens` must be an object of named tokens", file)));
    };
    let mut out = Vec::new();
    for (name, t) in tokens {
        let at = |what: &str| Error::config(format!("{}: token `{}`: {}", file, name, what));
        if !valid_name(name) {
            return Err(at("the name must use 1-64 characters from A-Z a-z 0-9 _ -"));
        }
        let obj = t.as_object().ok_or_else(|| at("must be an object"))?;
        if obj.contains_key("value") || obj.contains_key("token") {
            return Err(at("the token's value must not be written in the config")
                .hint("give `env` (a variable that holds it) or `file` (a file of mode 0600)"));
        }
        let string = |k: &str| -> Result<Option<String>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(at(&format!("`{}` must be a non-empty string", k))),
            }
        };
        let env = string("env")?;
        let path = string("file")?.map(PathBuf::from);
        if env.is_some() == path.is_some() {
            return Err(at("needs one of `env` (a variable name) or `file` (a path)"));
        }
        let allow = match obj.get("allow") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(|| at("`allow` must be an array of strings")))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => return Err(at("`allow` must be an array of strings")),
        };
        out.push(TokenConfig { name: name.clone(), env, file: path, allow });
    }
    Ok(out)
}

fn approval(v: &Value) -> Option<Approval> {
    match v.as_str() {
        Some("allow") => Some(Approval::Allow),
        Some("deny") => Some(Approval::Deny),
        Some("ask") => Some(Approval::Ask),
        _ => None,
    }
}

fn parse_server(
    file: &str,
    name: &str,
    v: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    default_approval: Approval,
) -> Result<ServerConfig> {
    let at = |field: &str, what: &str| Error::config(format!("{}: server `{}`: `{}` {}", file, name, field, what));
    if !valid_name(name) {
        return Err(Error::config(format!(
            "{}: server name `{}` is not allowed; use 1-64 characters from A-Z a-z 0-9 _ -",
            file, name
        )));
    }
    let obj = v.as_object().ok_or_else(|| at("(server)", "must be an object"))?;
    let sub = |field: &str, s: &str| {
        substitute(s, env).map_err(|var| {
            at(field, &format!("uses ${{{}}}, which is not set (give it a value, or write ${{{}:-default}})", var, var))
        })
    };
    let string = |field: &str| -> Result<Option<String>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(sub(field, s)?)),
            Some(_) => Err(at(field, "must be a string")),
        }
    };
    let strings = |field: &str, subst: bool| -> Result<Option<Vec<String>>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) if subst => sub(field, s),
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(at(field, "must be an array of strings")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(at(field, "must be an array of strings")),
        }
    };
    let map = |field: &str| -> Result<Vec<(String, String)>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, x)| match x {
                    Value::String(s) => Ok((k.clone(), sub(field, s)?)),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    _ => Err(at(field, &format!("value of `{}` must be a string", k))),
                })
                .collect(),
            Some(_) => Err(at(field, "must be an object of strings")),
        }
    };
    let command = string("command")?;
    let url = string("url")?;
    // The helper is a shell command: `$VAR` and `${VAR}` are the shell's to expand.
    let headers_helper = match obj.get("headersHelper") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => return Err(at("headersHelper", "is empty")),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(at("headersHelper", "must be a string (a shell command)")),
    };
    let bearer_token_file = string("bearerTokenFile")?.map(PathBuf::from);
    if command.is_some() {
        for (field, set) in
            [("headersHelper", headers_helper.is_some()), ("bearerTokenFile", bearer_token_file.is_some())]
        {
            if set {
                return Err(at(field, "is for `url` servers; a stdio server takes its credentials in `env`"));
            }
        }
    }
    let kind = string("type")?;
    let transport = match (command, url) {
        (Some(_), Some(_)) => return Err(at("command", "and `url` are both set; a server has one or the other")),
        (None, None) => return Err(at("command", "is missing; give `command` (stdio server) or `url` (HTTP server)")),
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(at("command", "is empty"));
            }
            if let Some(k) = kind.as_deref().filter(|k| *k != "stdio") {
                return Err(at(
                    "type",
                    &format!("is `{}` but the server has a `command`; use \"stdio\" or drop `type`", k),
                ));
            }
            Transport::Stdio {
                command,
                args: strings("args", true)?.unwrap_or_default(),
                env: map("env")?,
                cwd: string("cwd")?.map(PathBuf::from),
            }
        }
        (None, Some(url)) => {
            if let Some(k) = kind.as_deref().filter(|k| !matches!(*k, "http" | "streamable-http" | "streamableHttp")) {
                return Err(at("type", &format!("`{}` is not supported; use \"http\" (Streamable HTTP)", k)));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at("url", "must start with http:// or https://"));
            }
            Transport::Http { url, headers: map("headers")?, auth: HttpAuth { headers_helper, bearer_token_file } }
        }
    };
    let always_allow = strings("alwaysAllow", false)?;
    let gateway_approval = match obj.get("gatewayApproval") {
        None | Some(Value::Null) => default_approval,
        Some(v) => approval(v).ok_or_else(|| at("gatewayApproval", "must be \"allow\", \"deny\" or \"ask\""))?,
    };
    let disabled = match obj.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(at("disabled", "must be true or false")),
    };
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s <= 86_400.0 => Duration::from_secs_f64(s),
            _ => return Err(at("timeout", "must be a number of seconds between 0 and 86400")),
        },
        Some(_) => return Err(at("timeout", "must be a number of seconds")),
    };
    let isolation = match string("isolation")?.as_deref() {
        None | Some("shared") => Isolation::Shared,
        Some("session") => Isolation::Session,
        Some(o) => return Err(at("isolation", &format!("`{}` is not one of \"shared\", \"session\"", o))),
    };
    let protocol = match string("protocol")?.as_deref() {
        None | Some("auto") => Protocol::Auto,
        Some("2025-11-25") => Protocol::Legacy,
        Some("2026-07-28") => Protocol::Modern,
        Some("per-era") => Protocol::PerEra,
        Some(o) => {
            let why = format!("`{}` is not one of \"auto\", \"2025-11-25\", \"2026-07-28\", \"per-era\"", o);
            return Err(at("protocol", &why));
        }
    };
    let runtime = string("runtime")?;
    let env_policy = match string("envPolicy")?.as_deref() {
        None | Some("inherit") => crate::childenv::EnvPolicy::Inherit,
        Some("minimal") => crate::childenv::EnvPolicy::Minimal,
        Some(o) => return Err(at("envPolicy", &format!("`{}` is not one of \"inherit\", \"minimal\"", o))),
    };
    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        always_allow,
        gateway_approval,
        disabled,
        timeout,
        isolation,
        protocol,
        runtime,
        env_policy,
    })
}

/// Server (and tool) names: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Replace `${VAR}` and `${VAR:-default}`; the error carries the first unset name.
pub fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    map_vars(s, |inner| {
        let (var, default) = match inner.find(":-") {
            Some(i) => (&inner[..i], Some(&inner[i + 2..])),
            None => (inner, None),
        };
        match (env(var).filter(|v| !v.is_empty() || default.is_none()), default) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(d)) => Ok(Some(d.to_string())),
            (None, None) => Err(var.to_string()),
        }
    })
}

/// `s` with each `${…}` replaced by what `f` makes of its inside (`None`: kept as it is);
/// an unclosed `${` is kept as text.
pub fn map_vars<E>(
    s: &str,
    mut f: impl FnMut(&str) -> std::result::Result<Option<String>, E>,
) -> std::result::Result<String, E> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        match f(&after[..end])? {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + end + 3]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Mask every value of an env map, for display.
pub fn masked_env(env: &[(String, String)]) -> Map<String, Value> {
    env.iter().map(|(k, _)| (k.clone(), Value::String("****".into()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/u".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn p(text: &str) -> Result<Vec<ServerConfig>> {
        parse(text, Path::new("cfg.json"), &env)
    }

    #[test]
    fn substitution_forms() {
        assert_eq!(substitute("${HOME}/x", &env).unwrap(), "/home/u/x");
        assert_eq!(substitute("${NOPE:-d}", &env).unwrap(), "d");
        assert_eq!(substitute("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(substitute("a${NOPE}b", &env).unwrap_err(), "NOPE");
        assert_eq!(substitute("plain $HOME", &env).unwrap(), "plain $HOME");
    }

    #[test]
    fn parses_stdio_and_http_and_keeps_unknown_fields_out_of_the_way() {
        let s = p(r#"{"mcpServers":{"a":{"command":"x","args":["${HOME}"],"autoApprove":["t"]},
            "b":{"url":"http://127.0.0.1:1/mcp","type":"http","headers":{"Authorization":"Bearer ${NOPE:-t}"}}}}"#)
        .unwrap();
        assert_eq!(s[0].name, "a");
        assert_eq!(
            s[0].transport,
            Transport::Stdio { command: "x".into(), args: vec!["/home/u".into()], env: vec![], cwd: None }
        );
        assert_eq!(s[0].timeout, DEFAULT_TIMEOUT);
        assert!(matches!(&s[1].transport, Transport::Http { headers, .. } if headers[0].1 == "Bearer t"));
    }

    #[test]
    fn errors_name_file_server_and_field() {
        let e = p(r#"{"mcpServers":{"a":{"command":"x","url":"http://h"}}}"#).unwrap_err();
        assert!(e.message.contains("cfg.json: server `a`: `command` and `url` are both set"), "{}", e.message);
        let e = p(r#"{"mcpServers":{"a":{"args":[]}}}"#).unwrap_err();
        assert!(e.message.contains("`command` is missing"), "{}", e.message);
        let e = p(r#"{"mcpServers":{"a":{"command":"x","timeout":"5"}}}"#).unwrap_err();
        assert!(e.message.contains("`timeout` must be a number"), "{}", e.message);
        let e = p(r#"{"mcpServers":{"a b":{"command":"x"}}}"#).unwrap_err();
        assert!(e.message.contains("server name `a b` is not allowed"), "{}", e.message);
        let e = p(r#"{"servers":{}}"#).unwrap_err();
        assert!(e.message.contains("no `mcpServers`"), "{}", e.message);
        let e = p(r#"{"mcpServers":{"a":{"command":"${NOPE}"}}}"#).unwrap_err();
        assert!(e.message.contains("${NOPE}"), "{}", e.message);
        let e = p("{\"mcpServers\": {,}}").unwrap_err();
        assert!(e.message.contains("invalid JSON at line 1"), "{}", e.message);
        for bad in [
            r#"{"mcpServers":{"a":{"args":[]}}}"#,
            r#"{"servers":{}}"#,
            r#"{"mcpServers":{"a":{"command":"${NOPE}"}}}"#,
            "[1",
        ] {
            assert!(p(bad).unwrap_err().is_config(), "{}", bad);
        }
    }

    #[test]
    fn allowlist_globs() {
        assert!(glob_match("read_*", "read_file"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("read_*", "write_file"));
        assert!(!glob_match("echo", "echo2"));
        let mut s = p(r#"{"mcpServers":{"a":{"command":"x","alwaysAllow":[]}}}"#).unwrap().remove(0);
        assert!(!s.allows("t"));
        s.always_allow = None;
        assert!(!s.allows("t"));
    }
}
