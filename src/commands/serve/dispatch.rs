//! What each line from the client becomes: `initialize` (on the reading thread: what
//! follows needs its session), a 2025-11-25 request or a 2026-07-28 one (each on a thread
//! of its own, bounded by `MAX_IN_FLIGHT`), a notification (`notifications/cancelled` too)
//! or an answer to a server→client request (POSTed in order), or an error for what is none.

use super::bridge::{Bridge, Flight, MAX_IN_FLIGHT};
use super::modern::is_modern;
use crate::jsonrpc;
use crate::sync::Locked;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Cancelled ids remembered (so that no made-up error answers them).
const MAX_CANCELLED: usize = 1024;

impl Bridge {
    /// One line from the client.
    pub(super) fn take_line(self: &Arc<Self>, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            self.emit(&jsonrpc::error_response(
                Value::Null,
                jsonrpc::PARSE_ERROR,
                "Parse error: the line is not UTF-8",
            ));
            return;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.emit(&jsonrpc::error_response(Value::Null, jsonrpc::PARSE_ERROR, &format!("Parse error: {}", e)));
                return;
            }
        };
        let Some(obj) = v.as_object() else {
            let why = if v.is_array() { "batches are not supported" } else { "not a JSON-RPC message" };
            self.emit(&jsonrpc::error_response(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                &format!("Invalid Request: {}", why),
            ));
            return;
        };
        let id = obj.get("id").cloned();
        match (obj.get("method").and_then(Value::as_str), id) {
            (Some("initialize"), Some(id)) => {
                // On this thread: what follows needs the session it opens.
                *self.init.locked() = Some(text.to_string());
                let old = self.session.locked().take();
                if let Some(old) = old {
                    // A second `initialize`: the first session is ended, not left behind.
                    self.end_session(&old);
                }
                *self.protocol.locked() = None;
                self.exchange(&id, text, true, None);
            }
            (Some(method), Some(id)) if is_modern(method, &v) => {
                // A 2026-07-28 request: no session; forwarded with the routing headers the
                // HTTP hop needs (stdio has none).
                let headers = self.modern_headers(method, &v);
                if method == "tools/list" {
                    self.listing.locked().insert(id.to_string());
                }
                self.spawn_request(id, text.to_string(), Some(headers));
            }
            (Some(_), Some(id)) => self.spawn_request(id, text.to_string(), None),
            (Some(method), None) => {
                if method == "notifications/cancelled" {
                    // Remembered while that request is in flight (an id may be used again later).
                    let rid = obj.get("params").and_then(|p| p.get("requestId")).map(Value::to_string);
                    if let Some(rid) = rid.filter(|r| self.flying.locked().contains(r)) {
                        let modern = self.modern.locked().contains(&rid);
                        {
                            let mut c = self.cancelled.locked();
                            if c.len() < MAX_CANCELLED {
                                c.insert(rid.clone());
                            }
                        }
                        if modern {
                            // Over HTTP, a 2026-07-28 client cancels by closing the request's
                            // connection (the gateway cancels it upstream); nothing is POSTed.
                            self.close_modern(&rid);
                            return;
                        }
                    }
                }
                self.post_side(text);
            }
            // The client's answer to a server→client request.
            (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => self.post_side(text),
            (None, id) => self.emit(&jsonrpc::error_response(
                id.unwrap_or(Value::Null),
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: no method, result or error",
            )),
        }
    }

    /// A request on a thread of its own; `modern`: the 2026-07-28 routing headers (no session).
    fn spawn_request(self: &Arc<Self>, id: Value, text: String, modern: Option<Vec<(String, String)>>) {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.listing.locked().remove(&id.to_string());
            self.emit(&jsonrpc::error_response(
                id,
                jsonrpc::SERVER_UNAVAILABLE,
                &format!(
                    "mcpctl serve: {} requests are in flight already; try again when one has finished",
                    MAX_IN_FLIGHT
                ),
            ));
            return;
        }
        let key = id.to_string();
        self.flying.locked().insert(key.clone());
        if modern.is_some() {
            self.modern.locked().insert(key.clone());
        }
        let me = self.clone();
        let id2 = id.clone();
        let spawned = std::thread::Builder::new().name("serve-request".into()).spawn(move || {
            // Counted out however the exchange ends (a panic too).
            let _flight = Flight { bridge: me.clone(), key };
            me.exchange(&id2, &text, false, modern.as_deref());
        });
        if let Err(e) = spawned {
            self.flying.locked().remove(&id.to_string());
            self.modern.locked().remove(&id.to_string());
            self.listing.locked().remove(&id.to_string());
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.emit(&jsonrpc::error_response(
                id,
                jsonrpc::INTERNAL_ERROR,
                &format!("mcpctl serve: cannot start a thread: {}", e),
            ));
        }
    }
}
