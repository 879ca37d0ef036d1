//! What a child sends of its own accord, routed: progress to the request that asked for it
//! (by our rewritten token), logs and server→client requests to the one client session
//! with requests in flight, list changes and other notifications to every session that
//! sees the server.

use super::{Event, Sink, Upstream};
use crate::gateway::session::Session;
use crate::jsonrpc;
use crate::peer::{Handler, Inbound, Peer};
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::Arc;

impl Upstream {
    /// The one client session whose requests are in flight here, and its newest request's channel.
    fn attributed(&self) -> Option<(Arc<Session>, Sink)> {
        let flights = self.flights.locked();
        let live: Vec<(u64, Arc<Session>, &Sink)> =
            flights.iter().filter_map(|(id, f)| Some((*id, f.session.upgrade()?, &f.sink))).collect();
        let (_, s, sink) = live.iter().max_by_key(|(id, _, _)| *id)?;
        live.iter().all(|(_, o, _)| Arc::ptr_eq(o, s)).then(|| (s.clone(), (*sink).clone()))
    }

    pub(super) fn handler(self: &Arc<Self>) -> Handler {
        let me = Arc::downgrade(self);
        Arc::new(move |peer: &Arc<Peer>, msg: Inbound| {
            let Some(me) = me.upgrade() else { return };
            me.on_inbound(peer, msg);
        })
    }

    fn on_inbound(self: &Arc<Self>, peer: &Arc<Peer>, msg: Inbound) {
        match msg {
            Inbound::Notification { method, params } => match method.as_str() {
                "notifications/progress" => {
                    let mut p = params.unwrap_or(Value::Null);
                    let token = p.get("progressToken").and_then(Value::as_str).map(str::to_string);
                    let route = token.and_then(|t| self.progress.locked().get(&t).cloned());
                    if let Some((original, sink)) = route {
                        p["progressToken"] = original;
                        sink(Event::Message(jsonrpc::notification(&method, Some(p))));
                    }
                }
                "notifications/tools/list_changed" => self.refresh_tools(peer),
                "notifications/message" => {
                    let msg = jsonrpc::notification(&method, params);
                    match self.attributed() {
                        Some((_, sink)) => sink(Event::Message(msg)),
                        None => self.broadcast(&msg),
                    }
                }
                // Ours alone: the acknowledgement of the listen stream above.
                "notifications/cancelled" | "notifications/subscriptions/acknowledged" => {}
                // To the sessions that subscribed it, when the gateway keeps the subscriptions.
                "notifications/resources/updated" => {
                    let mut msg = jsonrpc::notification(&method, params);
                    let uri = msg["params"]["uri"].as_str().unwrap_or("").to_string();
                    if let Some(m) = msg["params"].as_object_mut() {
                        // The child's stream id means nothing to a session client.
                        super::drop_meta(m, "io.modelcontextprotocol/subscriptionId");
                    }
                    match (self.subscribers(&uri), self.owner()) {
                        (Some(ids), Some(hub)) => hub.tell(&self.cfg.name, &msg, Some(&ids)),
                        _ => self.broadcast(&msg),
                    }
                }
                _ => self.broadcast(&jsonrpc::notification(&method, params)),
            },
            Inbound::Request { id, method, params } => {
                if method == "ping" {
                    let _ = peer.respond(id, Ok(json!({})));
                    return;
                }
                let Some((session, sink)) = self.attributed() else {
                    let e = jsonrpc::error_object(
                        jsonrpc::INTERNAL_ERROR,
                        &format!("mcpctl gateway: cannot tell which client session `{}` is for (no single session has a request in flight)", method),
                    );
                    let _ = peer.respond(id, Err(e));
                    return;
                };
                // Never sent to a client that cannot answer it: the child is told why, at once.
                if let Some(missing) = refusal(&session, &method, params.as_ref()) {
                    let e = jsonrpc::error_object(
                        jsonrpc::METHOD_NOT_FOUND,
                        &format!(
                            "mcpctl gateway: the client cannot be sent `{}`: its session did not declare {} in `initialize`",
                            crate::logsafe::safe(&method),
                            missing
                        ),
                    );
                    log::info!(
                        "answered a child's `{}`: its session did not declare {}",
                        crate::logsafe::safe(&method),
                        missing
                    );
                    let _ = peer.respond(id, Err(e));
                    return;
                }
                let gid = session.expect_reply(peer, id);
                sink(Event::Message(jsonrpc::request(json!(gid), &method, params)));
            }
        }
    }

    fn broadcast(&self, msg: &Value) {
        if let Some(hub) = self.owner() {
            hub.tell(&self.cfg.name, msg, None);
        }
    }
}

/// What a session of the earlier revisions lacks to be sent a child's request: the
/// capability its `initialize` did not declare (`None`: it may be sent). A 2026-07-28
/// request's own capabilities are checked where its answer is built (`modern_shape.rs`).
fn refusal(session: &Session, method: &str, params: Option<&Value>) -> Option<String> {
    if !crate::client::PROTOCOL_VERSIONS.contains(&session.protocol()) {
        return None;
    }
    session.missing_capability(method, params)
}
