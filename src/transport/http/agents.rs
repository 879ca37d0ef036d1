//! The agents of the Streamable HTTP client: every exchange borrows one from a small pool
//! of idle agents (each keeps its connections alive for the next exchange) or builds one,
//! and gives it back when the exchange is over; a 2026-07-28 request's agent is recorded
//! under its id, so that cancelling it (`close_request`) shuts that agent down, which
//! closes that request's connection, and no other.

use super::Inner;
use crate::error::Result;
use crate::sync::Locked;
use std::time::Duration;

/// Idle agents kept (each keeps its connections alive for the next exchange).
const IDLE_AGENTS: usize = 8;
/// Modern requests in flight that a cancel can close; a request past it still runs, but a
/// cancel only stops waiting for it.
const MAX_CLOSEABLE: usize = 1024;

/// An agent for `url`: the timeouts of a server connection, the trust and proxy of `net`.
pub(super) fn new_agent(url: &str, connect_timeout: Duration) -> Result<ureq::Agent> {
    // Trust (SSL_CERT_FILE, SSL_CERT_DIR, system store) and proxy (HTTPS_PROXY, NO_PROXY): src/net.rs.
    crate::net::agent(
        url,
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(connect_timeout))
            .timeout_recv_response(None)
            .max_idle_connections_per_host(8),
    )
}

impl Inner {
    /// An idle agent, or a new one.
    pub(super) fn lend(&self) -> Result<ureq::Agent> {
        let idle = self.idle.locked().pop();
        match idle {
            Some(a) => Ok(a),
            None => new_agent(&self.url, self.connect_timeout),
        }
    }

    /// Keep `agent` (whose exchange is over) for the next one, while fewer than
    /// [`IDLE_AGENTS`] are kept.
    pub(super) fn keep(&self, agent: ureq::Agent) {
        let mut idle = self.idle.locked();
        if idle.len() < IDLE_AGENTS {
            idle.push(agent);
        }
    }

    /// An agent for the modern request `key`, recorded so that a cancel can close it;
    /// whether it was recorded.
    pub(super) fn check_out(&self, key: &str) -> Result<(ureq::Agent, bool)> {
        let agent = self.lend()?;
        let mut inflight = self.inflight.locked();
        if inflight.len() >= MAX_CLOSEABLE {
            log::debug!(
                "server `{}`: {} requests in flight; request {} cannot be closed",
                self.name,
                MAX_CLOSEABLE,
                key
            );
            return Ok((agent, false));
        }
        inflight.insert(key.to_string(), agent.clone());
        Ok((agent, true))
    }

    /// The exchange of request `key` is over: its agent goes back to the idle ones, unless
    /// the request was cancelled (then the agent was shut down).
    pub(super) fn check_in(&self, key: &str, agent: ureq::Agent, recorded: bool) {
        let cancelled = recorded && self.inflight.locked().remove(key).is_none();
        if !cancelled {
            self.keep(agent);
        }
    }

    /// Cancel the modern request `key`: close its connection (its server sees the client
    /// hang up; the request's thread ends with an error nobody waits for).
    pub(super) fn close_request(&self, key: &str) {
        let agent = self.inflight.locked().remove(key);
        match agent {
            Some(a) => {
                log::debug!("server `{}`: request {} cancelled: closing its connection", self.name, key);
                a.shutdown();
            }
            None => log::debug!("server `{}`: request {} to cancel is not in flight", self.name, key),
        }
    }
}
