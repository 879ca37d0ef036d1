//! A child per era (`"protocol": "per-era"`): a server spoken to in 2026-07-28 gets a
//! second child, spoken to in the session era (`initialize`), for the session-based
//! (2025-11-25) clients — so that what exists only in that era (the server's own
//! `elicitation/create`, `sampling/createMessage` and log requests, `resources/subscribe`)
//! reaches them, while 2026-07-28 clients keep the first child. The twin starts with the
//! first session request that needs it, is supervised like any child, and what it says of
//! its own accord goes to session clients only (the first child's, then, to 2026-07-28
//! listen streams only), so no client hears a change twice.

use super::session::Session;
use super::upstream::{Owner, Upstream};
use super::{modern, Hub};
use crate::config::Protocol;
use crate::sync::Locked;
use serde_json::Value;
use std::sync::{Arc, Weak};

/// A twin, and what it reports to (kept alive beside it: the twin holds it weakly).
pub(super) type Twin = (Arc<Upstream>, Arc<TwinOwner>);

/// What a twin reports, sent on to session clients only.
pub(super) struct TwinOwner(Weak<Hub>);

impl Owner for TwinOwner {
    fn tools_changed(&self, server: &str) {
        if let Some(hub) = self.0.upgrade() {
            hub.rebuild_table();
            let msg = crate::jsonrpc::notification("notifications/tools/list_changed", None);
            hub.deliver(server, &msg, None, Audience::Sessions);
        }
    }
    fn tell(&self, server: &str, msg: &Value, ids: Option<&[String]>) {
        if let Some(hub) = self.0.upgrade() {
            hub.deliver(server, msg, ids, Audience::Sessions);
        }
    }
}

/// Who hears what a server's child says of its own accord.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Audience {
    /// Session clients and 2026-07-28 listen streams.
    All,
    /// Session clients (a twin's news).
    Sessions,
    /// 2026-07-28 listen streams (the first child's news, once a twin serves the sessions).
    Listeners,
}

impl Hub {
    /// The upstream that speaks `session`'s era for `shared`: its twin for a session client
    /// of a per-era server spoken to in 2026-07-28 (started now if it is not yet), else
    /// `shared` itself.
    pub fn era_upstream(self: &Arc<Self>, session: &Session, shared: &Arc<Upstream>) -> Arc<Upstream> {
        if session.id().starts_with(modern::STATELESS_PREFIX) {
            return shared.clone();
        }
        match self.twin_of(shared) {
            // A twin that failed to start (a server that speaks 2026-07-28 alone, or one that
            // crashed and waits for its restart) leaves its clients with the first child,
            // which bridges for them as for any 2026-07-28 child.
            Some(t) if !t.start_failed() => t,
            _ => shared.clone(),
        }
    }

    /// The session-era twin of `shared`, when it has (or now needs) one.
    pub(super) fn twin_of(self: &Arc<Self>, shared: &Arc<Upstream>) -> Option<Arc<Upstream>> {
        if shared.cfg().protocol != Protocol::PerEra || shared.cfg().disabled {
            return None;
        }
        let mut twins = self.twins.locked();
        if let Some((t, _)) = twins.get(shared.name()) {
            return Some(t.clone());
        }
        // A first child still starting (or of the session era itself) needs no twin yet.
        if !shared.speaks_modern() {
            return None;
        }
        let mut cfg = shared.cfg().clone();
        cfg.protocol = Protocol::Legacy;
        let reporter = Arc::new(TwinOwner(Arc::downgrade(self)));
        let weak: Weak<dyn Owner> = Arc::downgrade(&reporter) as Weak<dyn Owner>;
        let twin = Upstream::new(cfg, self.project_root.clone(), Some(weak), false);
        log::info!("server `{}`: starting its session-era child (\"protocol\": \"per-era\")", shared.name());
        twin.spawn();
        twins.insert(shared.name().to_string(), (twin.clone(), reporter));
        Some(twin)
    }

    /// The twin of server `name`, if one was started.
    pub fn twin(&self, name: &str) -> Option<Arc<Upstream>> {
        self.twins.locked().get(name).map(|(t, _)| t.clone())
    }
}
