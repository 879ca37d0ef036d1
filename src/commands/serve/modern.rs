//! The 2026-07-28 side of `mcpctl serve --stdio`: a stdio client of that revision sends no
//! `initialize`; it sends `server/discover` and requests that each carry the envelope
//! (protocol version, client info and capabilities) in `params._meta`, and it is asked
//! questions by `input_required` results, never by requests of the server's own.
//!
//! Such a request is told apart as the stdio transport says (`server/discover`, or `_meta`
//! naming a revision without sessions) and POSTed statelessly: no session id, and the routing
//! headers the HTTP hop needs and stdio lacks (`MCP-Protocol-Version`, `Mcp-Method`,
//! `Mcp-Name`, and for a tool call the `Mcp-Param-*` of the arguments its schema marks
//! `x-mcp-header`, see [`super::tool_params`]; values that are not plain ASCII in the
//! `=?base64?…?=` form). What comes back is relayed as it is: a result (`input_required`
//! too; the client's retry is one more request), an error (an HTTP 4xx whose body is a
//! JSON-RPC error), or the messages of an SSE answer, such as those of a
//! `subscriptions/listen` stream, which stays open as long as the client wants.
//!
//! Each such request has a connection of its own (HTTP/1.1, closed after its answer; not
//! `Connection: close`, with which the gateway stops watching for the client hanging up), so
//! that the client's `notifications/cancelled` can be mapped to what cancelling is over HTTP
//! in this revision: the connection is closed, and the gateway cancels the request upstream.

use super::bridge::{Answer, Bridge, UNAVAILABLE};
use super::exchange::snippet;
use super::http_client::{body, read_head, Conn};
use crate::jsonrpc;
use crate::sync::Locked;
use crate::transport::http::{header_value, name_of};
use serde_json::Value;
use std::io::Read;
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// Deadline of a `subscriptions/listen` stream (it lasts as long as the client wants it).
const LISTEN: Duration = Duration::from_secs(7 * 86_400);
/// The revisions with sessions (`initialize`); a request naming another one in its `_meta`
/// (or `server/discover`) is of the 2026-07-28 era and is forwarded statelessly.
const SESSION_REVISIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The revision a request names in `params._meta` (2026-07-28 requests do).
fn stateless_version(msg: &Value) -> Option<String> {
    jsonrpc::modern_version(msg.get("params")).map(str::to_string)
}

/// Whether a request is of the 2026-07-28 era, as its stdio transport tells them apart:
/// `server/discover`, or a request whose `_meta` names a revision without sessions.
pub(super) fn is_modern(method: &str, msg: &Value) -> bool {
    method == "server/discover" || stateless_version(msg).is_some_and(|v| !SESSION_REVISIONS.contains(&v.as_str()))
}

impl Bridge {
    /// The headers of a 2026-07-28 request on the HTTP hop (stdio has none): the revision
    /// its `_meta` names, `Mcp-Method`, `Mcp-Name` and, for a tool call, the `Mcp-Param-*`
    /// of the arguments its schema marks `x-mcp-header` (base64 when not plain ASCII).
    pub(super) fn modern_headers(&self, method: &str, msg: &Value) -> Vec<(String, String)> {
        let version = stateless_version(msg).unwrap_or_else(|| crate::client::LATEST_MODERN.to_string());
        let mut h = vec![
            ("MCP-Protocol-Version".to_string(), header_value(&version)),
            ("Mcp-Method".to_string(), header_value(method)),
        ];
        if let Some(name) = name_of(method, msg.get("params")) {
            h.push(("Mcp-Name".to_string(), header_value(name)));
        }
        if method == "tools/call" {
            h.extend(self.param_headers_of(msg));
        }
        h
    }

    /// The client cancelled 2026-07-28 request `key`: close its connection.
    pub(super) fn close_modern(&self, key: &str) {
        if let Some(c) = self.conns.locked().remove(key) {
            log::debug!("request {} cancelled: its connection to the gateway is closed", key);
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// POST a 2026-07-28 request on a connection of its own and relay what comes back.
    /// A call of a tool no listing named yet has its tool looked up first (its `Mcp-Param-*`
    /// headers come from the tool's schema).
    pub(super) fn modern_request(&self, id: &Value, text: &str, headers: &[(String, String)]) -> Answer {
        let looked_up;
        let call = headers.iter().any(|(k, v)| k == "Mcp-Method" && v == "tools/call");
        let headers = match serde_json::from_str::<Value>(text) {
            Ok(msg) if call && self.calls_an_unlisted_tool(&msg) => {
                self.look_up_tool(&msg);
                looked_up = self.modern_headers("tools/call", &msg);
                &looked_up[..]
            }
            _ => headers,
        };
        let listen = headers.iter().any(|(k, v)| k == "Mcp-Method" && v == "subscriptions/listen");
        let timeout = if listen { LISTEN } else { self.deadline };
        let started = Instant::now();
        let key = id.to_string();
        let answer = self.modern_exchange(id, &key, text, headers, started + timeout);
        self.conns.locked().remove(&key);
        match answer {
            Ok((answered, status)) => self.outcome(answered, started, timeout, status),
            Err(a) => a,
        }
    }

    fn modern_exchange(
        &self,
        id: &Value,
        key: &str,
        text: &str,
        headers: &[(String, String)],
        until: Instant,
    ) -> std::result::Result<(bool, u16), Answer> {
        let unavailable = |why: String| Answer::Missing(UNAVAILABLE, why);
        let conn = Conn::open(&self.url).map_err(unavailable)?;
        self.conns.locked().insert(key.to_string(), conn.closer().map_err(unavailable)?);
        if self.cancelled.locked().contains(key) {
            return Err(unavailable("cancelled".into()));
        }
        let all: Vec<(String, String)> = self.headers.iter().chain(headers).cloned().collect();
        let mut r = conn.post(&all, text, until).map_err(unavailable)?;
        let lost = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock {
                Answer::Missing(jsonrpc::REQUEST_TIMEOUT, "no answer from the gateway in time".into())
            } else {
                unavailable(format!("reading the gateway's answer failed: {}", e))
            }
        };
        let head = read_head(&mut r).map_err(lost)?;
        if head.is_stream() {
            // Events are bounded one by one (`relay_events`); the stream is as long as it lasts.
            let mut events = body(r, &head, usize::MAX);
            return Ok((self.relay_events(&mut events, Some(id), None), head.status));
        }
        if head.status == 202 {
            return Err(unavailable("the gateway accepted the request but sent no answer".into()));
        }
        let mut text = String::new();
        body(r, &head, self.max_line + 1).take(self.max_line as u64 + 1).read_to_string(&mut text).map_err(lost)?;
        if text.len() > self.max_line {
            return Err(unavailable(format!("the gateway's answer is longer than {} bytes", self.max_line)));
        }
        log::debug!("2026-07-28 request {}: HTTP {} {}", key, head.status, snippet(&text));
        Ok((self.relay_body(head.status, &text, id)?, head.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_era_is_told_by_discover_or_the_meta_version() {
        let with = |v: &str| json!({"params": {"_meta": {jsonrpc::META_PROTOCOL_VERSION: v}}});
        assert!(is_modern("server/discover", &json!({})));
        assert!(is_modern("tools/list", &with("2026-07-28")));
        assert!(!is_modern("tools/list", &with("2025-11-25")));
        assert!(!is_modern("tools/list", &json!({"params": {}})));
    }

    #[test]
    fn routing_headers_mirror_the_body_and_the_learned_marks() {
        let b = Bridge::new("http://127.0.0.1:9/mcp".into(), Vec::new(), Duration::from_secs(5)).unwrap();
        b.learn_params(&json!({"id": 1, "result": {"tools": [
            {"name": "wö", "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"}, "n": {"type": "integer", "x-mcp-header": "N"}}}},
            {"name": "bad", "inputSchema": {"type": "object", "properties": {"x": {"type": "number", "x-mcp-header": "X"}}}},
        ]}}));
        let meta = json!({jsonrpc::META_PROTOCOL_VERSION: "2026-07-28"});
        let call = |name: &str| json!({"params": {"name": name, "arguments": {"region": "Zürich", "n": 3, "x": 1.5}, "_meta": meta}});
        let h = b.modern_headers("tools/call", &call("wö"));
        let get = |h: &[(String, String)], k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&h, "MCP-Protocol-Version").as_deref(), Some("2026-07-28"));
        assert_eq!(get(&h, "Mcp-Method").as_deref(), Some("tools/call"));
        assert_eq!(get(&h, "Mcp-Name").as_deref(), Some("=?base64?d8O2?="));
        assert_eq!(get(&h, "Mcp-Param-Region").as_deref(), Some("=?base64?WsO8cmljaA==?="));
        assert_eq!(get(&h, "Mcp-Param-N").as_deref(), Some("3"));
        // Marks that break the rules teach nothing; a tool never listed has no Mcp-Param-*.
        for name in ["bad", "unlisted"] {
            let h = b.modern_headers("tools/call", &call(name));
            assert!(!h.iter().any(|(k, _)| k.starts_with("Mcp-Param-")), "{:?}", h);
        }
        let h = b.modern_headers("resources/read", &json!({"params": {"uri": "file:///a", "_meta": meta}}));
        assert_eq!(get(&h, "Mcp-Name").as_deref(), Some("file:///a"));
        let h = b.modern_headers("server/discover", &json!({}));
        assert_eq!(get(&h, "MCP-Protocol-Version").as_deref(), Some(crate::client::LATEST_MODERN));
        assert_eq!(get(&h, "Mcp-Name"), None);
    }
}
