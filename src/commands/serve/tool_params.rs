//! The `Mcp-Param-*` headers of a 2026-07-28 tool call: the arguments the tool's input
//! schema marks `x-mcp-header`, mirrored into headers the gateway checks against the body.
//! The marks of each tool are learned from the `tools/list` answers the client gets through
//! the bridge; a tool called before any listing named it is looked up here first (a
//! `tools/list` of our own, page by page, with the client's envelope), so that a client
//! need not list tools before calling one.

use super::bridge::{Bridge, SIDE};
use super::http_client::{body, read_head, Conn};
use crate::jsonrpc;
use crate::sync::Locked;
use crate::transport::http::{param_headers, param_values};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::time::Instant;

/// Tools whose `x-mcp-header` parameters are remembered.
const MAX_TOOLS: usize = 10_000;
/// Pages of `tools/list` read to find one tool.
const MAX_PAGES: usize = 100;
/// The id of our own `tools/list` requests.
const LOOKUP_ID: &str = "mcpctl-serve-tools";

impl Bridge {
    /// The `Mcp-Param-*` headers of tool call `msg`, from what is known of its tool.
    pub(super) fn param_headers_of(&self, msg: &Value) -> Vec<(String, String)> {
        let tool = msg["params"]["name"].as_str().unwrap_or("");
        let Some(decls) = self.params.locked().get(tool).cloned() else { return Vec::new() };
        param_values(&decls, &msg["params"]["arguments"])
            .into_iter()
            .map(|(n, v)| (format!("Mcp-Param-{}", n), v))
            .collect()
    }

    /// Remember the `x-mcp-header` parameters of the tools in a `tools/list` answer. A tool
    /// whose marks break the rules is remembered with none (it gets no `Mcp-Param-*`).
    pub(super) fn learn_params(&self, m: &Value) {
        let Some(tools) = m["result"]["tools"].as_array() else { return };
        let mut params = self.params.locked();
        for t in tools {
            let Some(name) = t["name"].as_str() else { continue };
            let decls = param_headers(&t["inputSchema"]).unwrap_or_default();
            if params.len() >= MAX_TOOLS && !params.contains_key(name) {
                break;
            }
            params.insert(name.to_string(), decls);
        }
    }

    /// Whether `msg` calls a tool no listing has named yet.
    pub(super) fn calls_an_unlisted_tool(&self, msg: &Value) -> bool {
        msg["method"] == "tools/call"
            && msg["params"]["name"].as_str().is_some_and(|tool| !self.params.locked().contains_key(tool))
    }

    /// Look up the tool that `call` calls: `tools/list` page by page (with the envelope of
    /// `call`), learning each page, until the tool is known, the pages end, or SIDE is up.
    pub(super) fn look_up_tool(&self, call: &Value) {
        let Some(tool) = call["params"]["name"].as_str() else { return };
        let envelope: Map<String, Value> = call["params"]["_meta"]
            .as_object()
            .map(|meta| {
                let keys =
                    [jsonrpc::META_PROTOCOL_VERSION, jsonrpc::META_CLIENT_INFO, jsonrpc::META_CLIENT_CAPABILITIES];
                meta.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .unwrap_or_default();
        let until = Instant::now() + SIDE;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = json!({"_meta": envelope});
            if let Some(c) = cursor.take() {
                params["cursor"] = json!(c);
            }
            let list = json!({"jsonrpc": "2.0", "id": LOOKUP_ID, "method": "tools/list", "params": params});
            let answer = match self.fetch(&list, until) {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("looking up the tool {} failed: {}", crate::logsafe::safe(tool), e);
                    return;
                }
            };
            self.learn_params(&answer);
            if self.params.locked().contains_key(tool) {
                return;
            }
            match answer["result"]["nextCursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => {
                    log::debug!("no tool {} in the gateway's list", crate::logsafe::safe(tool));
                    return;
                }
            }
        }
    }

    /// POST 2026-07-28 request `msg` of our own and read its answer (a JSON body, or the
    /// events of an SSE one), at most `max_line` bytes.
    fn fetch(&self, msg: &Value, until: Instant) -> Result<Value, String> {
        let method = msg["method"].as_str().unwrap_or("");
        let headers: Vec<(String, String)> =
            self.headers.iter().cloned().chain(self.modern_headers(method, msg)).collect();
        let mut r = Conn::open(&self.url)?.post(&headers, &msg.to_string(), until)?;
        let failed = |e: std::io::Error| format!("reading the gateway's answer failed: {}", e);
        let head = read_head(&mut r).map_err(failed)?;
        let mut text = String::new();
        body(r, &head, self.max_line + 1).take(self.max_line as u64 + 1).read_to_string(&mut text).map_err(failed)?;
        if text.len() > self.max_line {
            return Err(format!("the gateway's answer is longer than {} bytes", self.max_line));
        }
        let messages: Vec<Value> = if head.is_stream() {
            events(&text).filter_map(|e| serde_json::from_str(&e).ok()).collect()
        } else {
            serde_json::from_str(&text).ok().into_iter().collect()
        };
        messages
            .into_iter()
            .find(|m| m["id"] == msg["id"] && m.get("method").is_none())
            .ok_or_else(|| format!("no answer (HTTP {})", head.status))
    }
}

/// The data of each event of an SSE body.
fn events(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("\n\n").flat_map(|e| e.split("\r\n\r\n")).map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        data.join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_give_their_data() {
        let text = "event: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: comment\n\ndata:{\"b\":2}\n\n";
        let got: Vec<String> = events(text).filter(|e| !e.is_empty()).collect();
        assert_eq!(got, vec!["{\"a\":\n1}".to_string(), "{\"b\":2}".to_string()]);
    }

    #[test]
    fn calls_of_unlisted_tools_are_told_apart() {
        let b = Bridge::new("http://127.0.0.1:9/mcp".into(), Vec::new(), std::time::Duration::from_secs(5)).unwrap();
        b.learn_params(&json!({"result": {"tools": [
            {"name": "plain", "inputSchema": {"type": "object"}},
            {"name": "bad", "inputSchema": {"type": "object", "properties": {"x": {"type": "number", "x-mcp-header": "X"}}}},
        ]}}));
        let call = |name: &str| json!({"method": "tools/call", "params": {"name": name, "arguments": {"x": 1.5}}});
        assert!(!b.calls_an_unlisted_tool(&call("plain")));
        assert!(!b.calls_an_unlisted_tool(&call("bad")), "a tool whose marks break the rules is not looked up again");
        assert!(b.calls_an_unlisted_tool(&call("other")));
        assert!(!b.calls_an_unlisted_tool(&json!({"method": "prompts/get", "params": {"name": "other"}})));
        assert!(b.param_headers_of(&call("bad")).is_empty());
    }
}
