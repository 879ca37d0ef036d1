//! Resource subscriptions at a 2026-07-28 child: such a child has no `resources/subscribe`,
//! so the gateway keeps session clients' subscriptions itself and names them in the filter
//! of the child's `subscriptions/listen` stream, reopened when the set changes. The old
//! stream is then cancelled: over stdio with `notifications/cancelled`, over HTTP by
//! closing that request's connection (the HTTP transport does so on the peer's cancel).

use super::Upstream;
use crate::jsonrpc;
use crate::peer::Peer;
use crate::sync::Locked;
use serde_json::json;
use std::sync::{Arc, Weak};

/// At most this many resources are subscribed at a 2026-07-28 child for session clients.
const MAX_SUBSCRIBED: usize = 256;

/// The resource subscriptions of session clients at a 2026-07-28 child, and its listen stream.
#[derive(Default)]
pub(super) struct Subs {
    /// URI → the ids of the sessions that subscribed it.
    uris: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// The listen request open at the child now (its connection, its id).
    listen: Option<(Weak<Peer>, u64)>,
    /// The set changed since the stream was opened; a worker reopens it while `running`.
    dirty: bool,
    running: bool,
}

impl Upstream {
    /// A 2026-07-28 child sends list changes only on a `subscriptions/listen` stream: open
    /// one for the life of the connection (it has no deadline: it ends with the child, or
    /// when the child ends it), so that the tool cache follows the child and clients hear of
    /// prompt and resource list changes as they would from a session-based child.
    ///
    /// The filter also names the resources session clients subscribed to (see
    /// [`Upstream::subscribe`]): when that set changes, a new stream is opened with the new
    /// filter and then the old one is cancelled (streams stand side by side until then, each
    /// with its own subscription id: a change in between may come twice, none is missed).
    pub(super) fn listen(self: &Arc<Self>, peer: &Arc<Peer>) {
        let uris: Vec<String> = self.subs.locked().uris.keys().cloned().collect();
        let mut filter = json!({"toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true});
        if !uris.is_empty() {
            filter["resourceSubscriptions"] = json!(uris);
        }
        let name = self.cfg.name.clone();
        let ended: crate::peer::RawReply = Box::new(move |outcome| match outcome {
            Ok(_) => log::debug!("server `{}` ended a subscriptions/listen stream", name),
            Err(e) => log::debug!(
                "server `{}`: subscriptions/listen: {}",
                name,
                crate::logsafe::safe(&jsonrpc::error_text(&e))
            ),
        });
        let id = peer.reserve_id();
        let old = self.subs.locked().listen.replace((Arc::downgrade(peer), id));
        if let Err(e) = peer.start_raw_as(id, "subscriptions/listen", Some(json!({"notifications": filter})), ended) {
            log::warn!("server `{}`: cannot listen for list changes: {}", self.cfg.name, e.one_line());
        }
        let why = "replaced by a stream with the gateway's current resource subscriptions";
        if let Some((old, oid)) = old {
            if old.upgrade().is_some_and(|o| Arc::ptr_eq(&o, peer)) {
                peer.cancel(oid, why);
            }
        }
        // Another stream was opened meanwhile (a reconnect and a change at once): this one
        // is not the current one, so it goes too.
        let current = self.subs.locked().listen.as_ref().map(|(_, i)| *i);
        if current != Some(id) {
            peer.cancel(id, why);
        }
    }

    /// Whether `resources/subscribe` from session clients is translated for this server (a
    /// 2026-07-28 child, over stdio or HTTP: on both a listen stream can be replaced, since
    /// cancelling the old one ends it — over HTTP by closing its connection).
    pub fn translates_subscriptions(&self) -> bool {
        self.speaks_modern()
    }

    /// Session `session` subscribes to `uri` (a 2026-07-28 child): `Err` says why not (the
    /// limit). The child's listen stream is reopened with the new set in the background.
    pub fn subscribe(self: &Arc<Self>, session: &str, uri: &str) -> std::result::Result<(), String> {
        {
            let mut s = self.subs.locked();
            if !s.uris.contains_key(uri) && s.uris.len() >= MAX_SUBSCRIBED {
                return Err(format!(
                    "server `{}` already has {} resources subscribed through the gateway, the limit",
                    self.cfg.name, MAX_SUBSCRIBED
                ));
            }
            let new = !s.uris.contains_key(uri);
            s.uris.entry(uri.to_string()).or_default().insert(session.to_string());
            if !new {
                return Ok(());
            }
        }
        self.relisten();
        Ok(())
    }

    /// Session `session` unsubscribes from `uri` (`None`: from everything, as it ends); the
    /// listen stream is reopened when no session wants a resource any more.
    pub fn unsubscribe(self: &Arc<Self>, session: &str, uri: Option<&str>) {
        let changed = {
            let mut s = self.subs.locked();
            let before = s.uris.len();
            s.uris.retain(|u, who| {
                if uri.is_none_or(|x| x == u) {
                    who.remove(session);
                }
                !who.is_empty()
            });
            s.uris.len() != before
        };
        if changed {
            self.relisten();
        }
    }

    /// The sessions subscribed to `uri`; `None` when this server's subscriptions are not
    /// the gateway's to route (the child's own, as a session-based child has them).
    pub(super) fn subscribers(&self, uri: &str) -> Option<Vec<String>> {
        if !self.translates_subscriptions() {
            return None;
        }
        Some(self.subs.locked().uris.get(uri).map(|w| w.iter().cloned().collect()).unwrap_or_default())
    }

    /// Reopen the child's listen stream with the current set, on a worker of this server
    /// (at most one runs; changes meanwhile are taken up by it), so that no client request
    /// waits for the child's transport.
    pub(super) fn relisten(self: &Arc<Self>) {
        {
            let mut s = self.subs.locked();
            s.dirty = true;
            if s.running {
                return;
            }
            s.running = true;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("relisten".into()).spawn(move || loop {
            {
                let mut s = me.subs.locked();
                if !std::mem::take(&mut s.dirty) {
                    s.running = false;
                    return;
                }
            }
            let peer = me.inner.locked().session.as_ref().filter(|s| s.is_modern()).map(|s| s.peer.clone());
            // Not connected: the next connection's listen stream carries the set.
            if let Some(peer) = peer {
                me.listen(&peer);
            }
        });
        if let Err(e) = spawned {
            self.subs.locked().running = false;
            log::warn!("server `{}`: cannot reopen its listen stream: {}", self.cfg.name, e);
        }
    }
}
