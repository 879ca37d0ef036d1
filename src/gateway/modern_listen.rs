//! `subscriptions/listen` of MCP 2026-07-28 (in place of the GET stream): the open listen
//! streams ([`Listener`]), what each opted in to, and delivering the servers' list changes
//! and resource updates to them.

use super::http::{rpc_error, send};
use super::modern::stateless_session;
use super::server::Request;
use super::session::{Session, Target};
use super::Hub;
use crate::jsonrpc;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// The head of a listen stream (no buffering by proxies: its messages are due at once).
const LISTEN_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/// One open `subscriptions/listen` stream: what it opted in to, and where it is written.
pub struct Listener {
    target: Target,
    /// The request's id (the `subscriptionId` of what it is sent).
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
    /// Resources whose `notifications/resources/updated` it gets (subscribed at their server).
    uris: Vec<String>,
    /// What it is subscribed as at a 2026-07-28 child (which the gateway subscribes for it).
    pub(super) sid: String,
    tx: SyncSender<Vec<u8>>,
}

impl Listener {
    fn wants(&self, msg: &Value) -> bool {
        match msg["method"].as_str().unwrap_or("") {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => {
                msg["params"]["uri"].as_str().is_some_and(|u| self.uris.iter().any(|x| x == u))
            }
            _ => false,
        }
    }
}

/// A message of server `server` that belongs to no request: to every listen stream that
/// sees the server and opted in to it (never blocking: a stream that is full misses it).
pub fn deliver(hub: &Hub, server: &str, msg: &Value) {
    let listeners = hub.listeners.locked().clone();
    for l in listeners.iter().filter(|l| l.target.covers(server) && l.wants(msg)) {
        let mut m = msg.clone();
        if !m["params"].is_object() {
            m["params"] = json!({});
        }
        m["params"]["_meta"][META_SUBSCRIPTION] = l.id.clone();
        let _ = l.tx.try_send(crate::sse::frame(None, &m.to_string()).into_bytes());
    }
}

/// At most this many resources per listen stream.
const MAX_URIS: usize = 64;

/// Subscribe at their servers to the resources a listen stream asks for (as `sid`); the
/// ones subscribed (a server that refuses, or a resource no server owns, is left out). At
/// a session-era server the subscription stays with the server's connection (shared, as
/// for sessions); a 2026-07-28 child has no `resources/subscribe`: the gateway names the
/// resource in its own listen stream at the child until this stream ends.
fn subscribe(hub: &Arc<Hub>, session: &Arc<Session>, uris: Vec<String>) -> Vec<String> {
    uris.into_iter()
        .filter(|uri| {
            let owner = match session.target() {
                Target::One(name) => hub.upstream_for(session, name),
                Target::All => super::aggregate::owner_of(hub, session, uri),
            };
            let Some(u) = owner else { return false };
            if u.translates_subscriptions() {
                return u.subscribe(session.id(), uri).is_ok();
            }
            let Ok(peer) = u.peer(Duration::from_secs(2)) else { return false };
            let timeout = u.cfg().timeout.min(Duration::from_secs(5));
            matches!(peer.request("resources/subscribe", Some(json!({"uri": uri})), timeout), Ok(Ok(_)))
        })
        .collect()
}

/// `subscriptions/listen`: a stream that stays open and carries the change notifications
/// the client opted in to (tool, prompt and resource lists; not resource updates), then,
/// when the daemon stops, the empty result that ends it. At most `MCPCTL_MAX_SESSIONS`
/// streams are open at once.
pub(super) fn listen(hub: &Arc<Hub>, req: Request<'_>, target: Target, id: Value, params: Option<&Value>) {
    let want = |k: &str| params.and_then(|p| p["notifications"].get(k)).and_then(Value::as_bool).unwrap_or(false);
    let asked: Vec<String> = params
        .and_then(|p| p["notifications"]["resourceSubscriptions"].as_array())
        .map(|a| {
            a.iter().filter_map(Value::as_str).filter(|u| u.len() <= 4096).take(MAX_URIS).map(str::to_string).collect()
        })
        .unwrap_or_default();
    let session = Arc::new(stateless_session(target.clone()));
    let uris = subscribe(hub, &session, asked);
    let (tx, rx) = sync_channel(64);
    let me = Arc::new(Listener {
        target,
        id: id.clone(),
        tools: want("toolsListChanged"),
        prompts: want("promptsListChanged"),
        resources: want("resourcesListChanged"),
        uris,
        sid: session.id().to_string(),
        tx,
    });
    if let Err(max) = hub.add_listener(me.clone()) {
        hub.remove_listener(&me);
        let why = format!(
            "the gateway already has {} subscriptions/listen streams open, the limit (MCPCTL_MAX_SESSIONS); close one or retry later",
            max
        );
        return send(req, rpc_error(503, id, jsonrpc::INTERNAL_ERROR, &why));
    }
    let flags =
        [("toolsListChanged", me.tools), ("promptsListChanged", me.prompts), ("resourcesListChanged", me.resources)];
    let mut honored: serde_json::Map<String, Value> =
        flags.into_iter().filter(|(_, on)| *on).map(|(k, _)| (k.to_string(), json!(true))).collect();
    if !me.uris.is_empty() {
        honored.insert("resourceSubscriptions".to_string(), json!(me.uris));
    }
    let ack = jsonrpc::notification(
        "notifications/subscriptions/acknowledged",
        Some(json!({"notifications": honored, "_meta": {META_SUBSCRIPTION: id}})),
    );
    let mut w = req.into_stream(LISTEN_HEAD);
    let first = Some(crate::sse::frame(None, &ack.to_string()).into_bytes());
    let graceful = super::streams::pump(&mut w, first, &rx, b":\n\n", crate::signals::stopping);
    hub.remove_listener(&me);
    if graceful {
        let end = jsonrpc::response(id, json!({"resultType": "complete", "_meta": {META_SUBSCRIPTION: me.id.clone()}}));
        let _ = w.write_all(&super::streams::event_chunk(&end));
    }
    let _ = w.write_all(b"0\r\n\r\n");
}
