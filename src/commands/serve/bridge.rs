//! The bridge's state (one `Bridge` per stdio client: its session with the gateway, the
//! requests in flight, the stdout queue) and its start: the stdout writer, then the thread
//! that reads stdin.

use super::stdout::Stdout;
use crate::error::{Error, Result};
use crate::jsonrpc;
use crate::sync::Locked;
use crate::transport::http::ParamHeader;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests of the client in flight at once; past it a request gets an error at once.
pub(super) const MAX_IN_FLIGHT: usize = 64;
/// Deadline of a notification, an answer, `initialize` and the DELETE that ends the session.
pub(super) const SIDE: Duration = Duration::from_secs(10);
/// The error of a request that got no answer.
pub(super) const UNAVAILABLE: i64 = jsonrpc::SERVER_UNAVAILABLE;

/// The bridge between the stdio client and one gateway endpoint.
pub(super) struct Bridge {
    pub(super) url: String,
    /// `Authorization`, when the gateway needs it (never logged).
    pub(super) headers: Vec<(String, String)>,
    pub(super) agent: ureq::Agent,
    pub(super) deadline: Duration,
    pub(super) max_line: usize,
    pub(super) session: Mutex<Option<String>>,
    pub(super) protocol: Mutex<Option<String>>,
    /// The client's `initialize`, replayed when the gateway forgets the session.
    pub(super) init: Mutex<Option<String>>,
    pub(super) renewing: AtomicBool,
    /// Which GET stream is current (an older one stops relaying).
    pub(super) stream_gen: AtomicU64,
    pub(super) in_flight: AtomicUsize,
    /// Ids (as JSON text) of the client's requests in flight, and those of them it cancelled.
    pub(super) flying: Mutex<HashSet<String>>,
    pub(super) cancelled: Mutex<HashSet<String>>,
    /// Ids of the 2026-07-28 requests in flight (their cancellation is not POSTed).
    pub(super) modern: Mutex<HashSet<String>>,
    /// Ids of the 2026-07-28 `tools/list` requests in flight (their answers teach `params`).
    pub(super) listing: Mutex<HashSet<String>>,
    /// The `x-mcp-header` parameters of each tool listed to a 2026-07-28 client.
    pub(super) params: Mutex<HashMap<String, Vec<ParamHeader>>>,
    /// The connections of the 2026-07-28 requests in flight, by id (cancelling closes one).
    pub(super) conns: Mutex<HashMap<String, std::net::TcpStream>>,
    pub(super) stdout: Stdout,
    pub(super) closing: AtomicBool,
}

/// One request in flight; counted out when dropped.
pub(super) struct Flight {
    pub(super) bridge: Arc<Bridge>,
    pub(super) key: String,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.bridge.flying.locked().remove(&self.key);
        self.bridge.cancelled.locked().remove(&self.key);
        self.bridge.modern.locked().remove(&self.key);
        self.bridge.listing.locked().remove(&self.key);
        self.bridge.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a POST brought back.
pub(super) enum Answer {
    /// The request's answer was relayed.
    Answered,
    /// No answer: the JSON-RPC error code to give the client, and why.
    Missing(i64, String),
    /// The gateway does not know the session (404).
    SessionGone,
}

impl Bridge {
    pub(super) fn new(url: String, headers: Vec<(String, String)>, deadline: Duration) -> Result<Arc<Bridge>> {
        let agent = crate::net::loopback_agent(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(5)))
                .max_idle_connections_per_host(MAX_IN_FLIGHT + 2),
        );
        let stdout = Stdout::start()?;
        Ok(Arc::new(Bridge {
            url,
            headers,
            agent,
            deadline,
            max_line: crate::transport::stdio::max_line(),
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            init: Mutex::new(None),
            renewing: AtomicBool::new(false),
            stream_gen: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            flying: Mutex::new(HashSet::new()),
            cancelled: Mutex::new(HashSet::new()),
            modern: Mutex::new(HashSet::new()),
            listing: Mutex::new(HashSet::new()),
            params: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            stdout,
            closing: AtomicBool::new(false),
        }))
    }

    /// Queue one message for the client (see `Stdout::emit`).
    pub(super) fn emit(&self, m: &Value) {
        self.stdout.emit(m);
    }

    /// Start reading stdin (after the servers at `status` have started, when given); the
    /// receiver hears when stdin has closed.
    pub(super) fn start(self: Arc<Self>, status: Option<String>) -> Result<Receiver<()>> {
        let (tx, rx) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("serve-stdin".into())
            .spawn(move || {
                if let Some(url) = status {
                    self.wait_started(&url);
                }
                self.read_stdin();
                let _ = tx.send(());
            })
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        Ok(rx)
    }
}
