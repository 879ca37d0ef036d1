//! Connecting to one configured server as an MCP client: start its transport, run the
//! `initialize` handshake with version negotiation, list tools (all pages) and call them.

use crate::config::{ServerConfig, Transport as Kind};
use crate::error::{Error, Result};
use crate::peer::{Handler, Inbound, Peer};
use crate::transport::{http, stdio};
use crate::{jsonrpc, launch};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Protocol versions we speak, newest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
pub const LATEST: &str = PROTOCOL_VERSIONS[0];

/// A connected, initialized server.
pub struct Session {
    pub peer: Arc<Peer>,
    pub server_info: Value,
    pub protocol: String,
    pub capabilities: Value,
    pub instructions: Option<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.peer.shutdown();
    }
}

/// Everything `connect` needs besides the server's own config.
pub struct Context<'a> {
    pub project_root: &'a Path,
    pub handler: Handler,
    pub client_info: Value,
    pub capabilities: Value,
    pub consent: launch::Consent,
}

/// The shell client's handler: answer ping and roots/list, refuse sampling and elicitation.
pub fn cli_handler(project_root: &Path) -> Handler {
    let root = project_root.to_path_buf();
    Arc::new(move |peer: &Arc<Peer>, msg: Inbound| match msg {
        Inbound::Request { id, method, .. } => {
            let outcome = match method.as_str() {
                "ping" => Ok(json!({})),
                "roots/list" => Ok(json!({"roots": [{"uri": file_uri(&root), "name": root_name(&root)}]})),
                "sampling/createMessage" | "elicitation/create" => Err(jsonrpc::error_object(
                    jsonrpc::METHOD_NOT_FOUND,
                    &format!("mcpctl's shell client does not support {}", method),
                )),
                _ => Err(jsonrpc::error_object(jsonrpc::METHOD_NOT_FOUND, &format!("{} is not supported", method))),
            };
            let _ = peer.respond(id, outcome);
        }
        Inbound::Notification { method, params } => match method.as_str() {
            "notifications/message" => {
                let p = params.unwrap_or(Value::Null);
                log::info!(
                    "[{}] {}: {}",
                    peer.name,
                    p["level"].as_str().unwrap_or("info"),
                    p.get("data").unwrap_or(&Value::Null)
                );
            }
            _ => log::debug!("[{}] notification {}", peer.name, method),
        },
    })
}

pub fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn root_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into())
}

pub fn default_client_info() -> Value {
    json!({"name": "mcpctl", "version": env!("CARGO_PKG_VERSION")})
}

/// Start the server's transport and initialize it, all within the server's `timeout`.
pub fn connect(server: &ServerConfig, ctx: &Context) -> Result<Session> {
    if server.disabled {
        return Err(Error::failure(format!("server `{}` is disabled", server.name))
            .hint("set \"disabled\": false in the config to use it"));
    }
    let started = Instant::now();
    log::debug!("server `{}`: connecting", server.name);
    let peer = Peer::new(&server.name);
    peer.set_handler(ctx.handler.clone());
    match &server.transport {
        Kind::Stdio { command, args, env, cwd } => {
            let launch =
                launch::launch_for(server, command, args, env, cwd.as_deref(), ctx.project_root, &ctx.consent)?;
            stdio::spawn(&peer, &launch)?;
        }
        Kind::Http { url, headers } => http::connect(&peer, url, headers, server.timeout)?,
    }
    let left = server.timeout.saturating_sub(started.elapsed());
    log::debug!("server `{}`: transport up after {:?}; initializing", server.name, started.elapsed());
    let over_http = matches!(server.transport, crate::config::Transport::Http { .. });
    match initialize(&peer, ctx, left, over_http) {
        Ok(s) => Ok(s),
        Err(e) => {
            let tail = peer.stderr_tail(5);
            peer.shutdown();
            Err(if tail.is_empty() || !e.details.is_empty() { e } else { e.details(tail) })
        }
    }
}

fn initialize(peer: &Arc<Peer>, ctx: &Context, timeout: Duration, over_http: bool) -> Result<Session> {
    let params = json!({
        "protocolVersion": LATEST,
        "capabilities": ctx.capabilities,
        "clientInfo": ctx.client_info,
    });
    let p = peer.start("initialize", Some(params))?;
    let outcome = peer.wait(p, timeout, "initialize").map_err(|e| {
        if e.status == crate::error::Status::Timeout {
            Error::timeout(format!(
                "server `{}` did not answer `initialize` within {}",
                peer.name,
                crate::peer::human_duration(timeout)
            ))
            .hint(if over_http {
                "check that the URL is the server's MCP endpoint (often ending in /mcp), or raise its `timeout`"
            } else {
                "check that it is an MCP server speaking on stdio, or raise its `timeout`"
            })
        } else {
            e
        }
    })?;
    let result = outcome.map_err(|e| {
        let msg = if jsonrpc::is_unavailable(&e) {
            jsonrpc::failed_during(&e, "initialize")
        } else {
            format!("server `{}` refused to initialize: {}", peer.name, jsonrpc::error_text(&e))
        };
        Error::failure(msg)
    })?;
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    if !PROTOCOL_VERSIONS.contains(&version) {
        return Err(Error::failure(format!(
            "server `{}` speaks MCP protocol version `{}`, which mcpctl does not support",
            peer.name, version
        ))
        .hint(format!("mcpctl speaks {}", PROTOCOL_VERSIONS.join(", "))));
    }
    peer.notify("notifications/initialized", None)?;
    Ok(Session {
        peer: peer.clone(),
        server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
        protocol: version.to_string(),
        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
        instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
    })
}

const MAX_PAGES: usize = 1000;

/// Every item of a paginated list method (`tools/list`, `prompts/list`, ...), following `nextCursor`.
pub fn list_all(peer: &Peer, method: &str, key: &str, timeout: Duration) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}));
        let mut page = peer.call(method, params, timeout)?;
        if let Some(Value::Array(a)) = page.get_mut(key).map(Value::take) {
            items.extend(a);
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => {
                if cursor.as_deref() == Some(next) {
                    return Err(Error::failure(format!(
                        "server `{}` returned the same `{}` cursor twice",
                        peer.name, method
                    )));
                }
                cursor = Some(next.to_string());
            }
            _ => return Ok(items),
        }
    }
    Err(Error::failure(format!("server `{}`: `{}` has more than {} pages", peer.name, method, MAX_PAGES)))
}

impl Session {
    pub fn tools(&self, timeout: Duration) -> Result<Vec<Value>> {
        list_all(&self.peer, "tools/list", "tools", timeout)
    }
}

/// The working folder of a stdio server: its `cwd` (relative to the project root) or the root.
pub fn server_cwd(cwd: Option<&Path>, project_root: &Path) -> PathBuf {
    match cwd {
        Some(c) => project_root.join(c),
        None => project_root.to_path_buf(),
    }
}
