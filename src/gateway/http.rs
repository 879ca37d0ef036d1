//! The gateway's router and its checks: every request passes the security checks here
//! (Host, Origin, bearer token) and is sent to the endpoint that serves it (`/health`,
//! `/status`, `/cli/call`, `/mcp`, `/mcp/<server>`); also the session lookup of a request
//! (its token, its version) and the small helpers that write whole responses.

use super::cli_call::cli_call;
use super::mcp::{delete, post};
use super::modern;
use super::server::{BodyError, Request};
use super::session::{Session, Target};
use super::streams::get_stream;
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::jsonrpc;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::Arc;

/// A whole response, written by [`send`].
pub struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Resp {
    pub(super) fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Resp {
        Resp { status, headers: vec![("Content-Type", content_type.to_string())], body }
    }
    pub(super) fn empty(status: u16) -> Resp {
        Resp { status, headers: Vec::new(), body: Vec::new() }
    }
    pub(super) fn with_header(mut self, name: &'static str, value: &str) -> Resp {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// Write a response in one piece.
pub fn send(req: Request<'_>, r: Resp) {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    req.respond(r.status, &headers, &r.body);
}

pub fn text(status: u16, body: &str) -> Resp {
    Resp::new(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

pub(super) fn json_resp(status: u16, body: &Value) -> Resp {
    Resp::new(status, "application/json", body.to_string().into_bytes())
}

pub(super) fn rpc_error(status: u16, id: Value, code: i64, msg: &str) -> Resp {
    json_resp(status, &jsonrpc::error_response(id, code, msg))
}

/// An Invalid Request error (-32600) of no request id, with `status`.
pub(super) fn invalid(status: u16, msg: &str) -> Resp {
    rpc_error(status, Value::Null, jsonrpc::INVALID_REQUEST, msg)
}

/// The whole request body, or the answer to give: 413 past the limit, 400 when unreadable.
pub(super) fn read_body(hub: &Hub, req: &mut Request<'_>) -> Result<Vec<u8>, Resp> {
    req.body().map_err(|e| match e {
        BodyError::TooLarge => too_large(hub.opts.max_body),
        BodyError::Unreadable => {
            rpc_error(400, Value::Null, jsonrpc::PARSE_ERROR, "Parse error: the body could not be read")
        }
    })
}

fn too_large(limit: usize) -> Resp {
    invalid(413, &format!("Payload Too Large: the limit is {} bytes", limit))
}

/// Constant-time comparison: the time taken does not depend on where the inputs differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// Which token the request bears: `Ok(None)` the daemon's own (or none needed),
/// `Ok(Some(t))` a named one, `Err` none that we accept. Every configured token is compared
/// (in constant time each), whichever matches.
pub(super) fn identify<'a>(hub: &'a Hub, req: &Request<'_>) -> Result<Option<&'a crate::tokens::NamedToken>, ()> {
    if hub.opts.token.is_none() && hub.opts.tokens.is_empty() {
        return Ok(None);
    }
    let given = req
        .header("Authorization")
        .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
        .map(|g| g.trim().as_bytes())
        .ok_or(())?;
    let mut found = hub.opts.token.as_ref().filter(|t| same_secret(given, t.as_bytes())).map(|_| None);
    for t in &hub.opts.tokens {
        if same_secret(given, t.value.as_bytes()) && found.is_none() {
            found = Some(Some(t));
        }
    }
    found.ok_or(())
}

/// The host name of a Host header, without the port. A bracketed name must be an IPv6
/// literal followed by nothing or a port (else "", which no check accepts).
fn host_name(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else { return "" };
        let port_ok = after.is_empty()
            || after.strip_prefix(':').map(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).unwrap_or(false);
        return if port_ok && ip.parse::<std::net::Ipv6Addr>().is_ok() { ip } else { "" };
    }
    h.rsplit_once(':').map(|(n, p)| if p.chars().all(|c| c.is_ascii_digit()) { n } else { h }).unwrap_or(h)
}

fn host_allowed(hub: &Hub, host: &str) -> bool {
    let name = host_name(host);
    super::is_loopback(name)
        || name.eq_ignore_ascii_case(&hub.opts.host)
        || hub.opts.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
}

/// A browser Origin we accept: one listed with --allowed-origin, or a loopback origin
/// (a page served from this machine; a DNS-rebinding page carries its attacker's name).
fn origin_allowed(hub: &Hub, origin: &str) -> bool {
    if hub.opts.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.map(|r| super::is_loopback(host_name(r.trim_end_matches('/')))).unwrap_or(false)
}

/// A read-only endpoint (`/health`, `/status`): its JSON to GET and HEAD, 405 to the rest.
fn read_only(req: Request<'_>, body: impl FnOnce() -> Value) {
    let r = match req.method() {
        "GET" | "HEAD" => json_resp(200, &body()),
        _ => text(405, "method not allowed").with_header("Allow", "GET, HEAD"),
    };
    send(req, r)
}

pub fn handle(hub: &Arc<Hub>, req: Request<'_>) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    if path == "/health" {
        return read_only(req, || json!({"status": "ok"}));
    }
    // DNS rebinding: the Host must be ours, and a browser's Origin must be allowed.
    match req.header("Host") {
        Some(h) if host_allowed(hub, h) => {}
        Some(h) => {
            log::warn!("refused a request with Host `{}`", crate::logsafe::safe(h));
            let why = "mcpctl gateway: Host not allowed (start the daemon with --allowed-host to allow it)";
            return send(req, text(403, why));
        }
        None => return send(req, text(403, "mcpctl gateway: a Host header is required")),
    }
    if let Some(o) = req.header("Origin") {
        if !origin_allowed(hub, o) {
            log::warn!("refused a request with Origin `{}`", crate::logsafe::safe(o));
            let why = "mcpctl gateway: Origin not allowed (start the daemon with --allowed-origin to allow it)";
            return send(req, text(403, why));
        }
    }
    let Ok(who) = identify(hub, &req) else {
        let r = text(401, "mcpctl gateway: a valid bearer token is required")
            .with_header("WWW-Authenticate", "Bearer realm=\"mcpctl\"");
        return send(req, r);
    };
    if path == "/status" {
        return read_only(req, || hub.status());
    }
    if path == "/cli/call" && req.method() == "POST" {
        return cli_call(hub, req, who);
    }
    let Some(target) = super::target_of(&path) else {
        return send(req, text(404, "mcpctl gateway: not found; MCP is served at /mcp and /mcp/<server>"));
    };
    if let Target::One(name) = &target {
        if hub.upstream(name).is_none() {
            let names: Vec<&str> = hub.upstreams.iter().map(|u| u.name()).collect();
            let why = format!("mcpctl gateway: no server `{}` (servers: {})", name, names.join(", "));
            return send(req, text(404, &why));
        }
    }
    match req.method() {
        "POST" => post(hub, req, target),
        "GET" | "DELETE" if req.header("Mcp-Session-Id").is_none() && modern::header_claims_modern(&req) => {
            let why = format!(
                "Method Not Allowed: MCP {} has no GET stream and no session to end; POST subscriptions/listen for change notifications",
                modern::MODERN
            );
            send(req, invalid(405, &why).with_header("Allow", "POST"));
        }
        "GET" => get_stream(hub, req, &target),
        "DELETE" => delete(hub, req, &target),
        _ => send(req, text(405, "method not allowed").with_header("Allow", "GET, POST, DELETE")),
    }
}

pub(super) fn accepts(req: &Request<'_>, mime: &str) -> bool {
    req.header("Accept")
        .map(|a| {
            a.split(',').any(|p| {
                let p = p.split(';').next().unwrap_or("").trim();
                p.eq_ignore_ascii_case(mime) || p == "*/*"
            })
        })
        .unwrap_or(false)
}

/// The session named by the request, or the error response to send.
pub(super) fn session_of(hub: &Hub, req: &Request<'_>, target: &Target) -> Result<Arc<Session>, Resp> {
    let Some(id) = req.header("Mcp-Session-Id") else {
        return Err(invalid(400, "Bad Request: Mcp-Session-Id header is required"));
    };
    let s = hub.sessions.locked().get(id).cloned();
    let who = identify(hub, req).ok().flatten().map(|t| t.name.as_str());
    match s {
        Some(s) if s.target() == target && s.token() != who => Err(invalid(
            403,
            "Forbidden: this session was created with another token; initialize a session of your own",
        )),
        Some(s) if s.target() == target => {
            if let Some(v) = req.header("MCP-Protocol-Version").filter(|v| !PROTOCOL_VERSIONS.contains(v)) {
                let supported = PROTOCOL_VERSIONS.join(", ");
                let why = format!("Bad Request: unsupported MCP-Protocol-Version `{}` (supported: {})", v, supported);
                return Err(invalid(400, &why));
            }
            s.touch();
            Ok(s)
        }
        _ => Err(rpc_error(404, Value::Null, -32001, "Session not found; initialize a new session")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_fully() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn host_names_without_ports() {
        assert_eq!(host_name("localhost:7878"), "localhost");
        assert_eq!(host_name("[::1]:7878"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example"), "evil.example");
        // Brackets hold an IPv6 literal and nothing else.
        for h in ["[localhost]", "[evil]", "[127.0.0.1]", "[::1]x", "[::1]:", "[::1"] {
            assert_eq!(host_name(h), "", "{h}");
        }
    }

    #[test]
    fn loopback_origins_only() {
        let hub = crate::gateway::tests::hub(vec!["https://app.example".into()]);
        assert!(origin_allowed(&hub, "http://localhost:6274"));
        assert!(origin_allowed(&hub, "http://127.0.0.1:7878"));
        assert!(origin_allowed(&hub, "http://[::1]:7878"));
        assert!(origin_allowed(&hub, "https://app.example"));
        assert!(!origin_allowed(&hub, "http://evil.example"));
        assert!(!origin_allowed(&hub, "http://localhost.evil.example"));
        assert!(!origin_allowed(&hub, "null"));
    }
}
