//! The connect-time negotiation: the `server/discover` probe, its verdict (modern or legacy),
//! `initialize` for a legacy server, and version agreement.

use super::{
    Context, Session, HTTP_PROBE_DEADLINE, LATEST, LATEST_MODERN, MODERN_VERSIONS, PROBE_DEADLINE, PROTOCOL_VERSIONS,
};
use crate::config::Protocol;
use crate::error::{Error, Result};
use crate::peer::{Modern, Outcome, Peer, Pending, Poll};
use crate::{jsonrpc, signals};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one answer to `server/discover` says about the server.
enum Verdict {
    /// It speaks this modern version (the discover result).
    Modern(Value, String),
    /// It is modern and refused the version asked, naming one of ours (another, or — a
    /// server that changed its mind — the same): probe again with it, once.
    Retry(String),
    /// Anything that is not positive evidence of a modern server.
    Legacy,
    Fatal(Error),
}

/// The newest modern version of ours among `supported`.
fn mutual_modern(supported: &[&str]) -> Option<String> {
    MODERN_VERSIONS.iter().find(|v| supported.contains(v)).map(|v| v.to_string())
}

pub(super) fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// "2026-07-28, 2025-11-25, …": every version we speak.
fn all_versions() -> String {
    MODERN_VERSIONS.iter().chain(PROTOCOL_VERSIONS.iter()).copied().collect::<Vec<_>>().join(", ")
}

/// The one connect-time negotiation of a connection.
pub(super) struct Negotiation<'a> {
    pub(super) peer: &'a Arc<Peer>,
    pub(super) ctx: &'a Context<'a>,
    /// The time it may take, as said in a timeout error.
    pub(super) budget: Duration,
    pub(super) deadline: Instant,
    pub(super) over_http: bool,
    /// The server's `"protocol"`: an era it is pinned to, if any.
    pub(super) protocol: Protocol,
}

impl Negotiation<'_> {
    fn name(&self) -> &str {
        &self.peer.name
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub(super) fn run(&self) -> Result<Session> {
        if self.protocol == Protocol::Legacy {
            return self.initialize(None);
        }
        let pinned = self.protocol == Protocol::Modern;
        let mut version = LATEST_MODERN.to_string();
        let mut retried = false;
        loop {
            let probe = self.probe(&version)?;
            let deadline = if self.over_http { HTTP_PROBE_DEADLINE } else { PROBE_DEADLINE };
            let first = if pinned { self.left() } else { deadline.min(self.budget / 2).min(self.left()) };
            let outcome = self.wait(&probe, first)?;
            if pinned && outcome.is_none() {
                return Err(self.timed_out("server/discover"));
            }
            let Some(outcome) = outcome else {
                log::debug!(
                    "server `{}`: no answer to `server/discover` within {:?}; sending `initialize`",
                    self.name(),
                    first
                );
                return self.initialize(Some((probe, version)));
            };
            match self.judge(outcome) {
                Verdict::Modern(result, v) => return Ok(self.modern(result, v)),
                Verdict::Retry(v) if !retried => {
                    log::debug!("server `{}`: wants protocol version {}; probing again", self.name(), v);
                    retried = true;
                    version = v;
                }
                Verdict::Retry(v) if v == version => {
                    return Err(Error::protocol(format!(
                        "server `{}` refused MCP protocol version {} twice, though it names it among its versions",
                        self.name(),
                        v
                    )))
                }
                Verdict::Retry(_) | Verdict::Legacy if pinned => {
                    return Err(Error::protocol(format!(
                        "server `{}` does not speak MCP {} (\"protocol\": \"{}\" in the config)",
                        self.name(),
                        LATEST_MODERN,
                        self.protocol.word()
                    ))
                    .hint("set \"protocol\" to \"auto\" (or remove it) to speak the session era to it"))
                }
                Verdict::Retry(_) | Verdict::Legacy => return self.initialize(None),
                Verdict::Fatal(e) => return Err(e),
            }
        }
    }

    fn probe(&self, version: &str) -> Result<Pending> {
        let params = json!({"_meta": {
            jsonrpc::META_PROTOCOL_VERSION: version,
            jsonrpc::META_CLIENT_INFO: self.ctx.client_info,
            jsonrpc::META_CLIENT_CAPABILITIES: {},
        }});
        self.peer.start("server/discover", Some(params))
    }

    /// The outcome of `p` if it comes within `d` (Ctrl-C stops the wait).
    fn wait(&self, p: &Pending, d: Duration) -> Result<Option<Outcome>> {
        let until = Instant::now() + d;
        loop {
            let slice = until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match p.poll(slice) {
                Poll::Ready(o) => return Ok(Some(o)),
                Poll::Waiting => {}
                Poll::Closed => return Err(self.closed()),
            }
            if signals::stopping() {
                self.peer.cancel(p.id, "interrupted");
                return Err(Error::interrupted(format!("connecting to server `{}` interrupted", self.name()))
                    .hint("Ctrl-C was pressed"));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
        }
    }

    fn closed(&self) -> Error {
        Error::disconnected(self.peer.closed_reason().unwrap_or_else(|| format!("server `{}` closed", self.name())))
    }

    fn judge(&self, outcome: Outcome) -> Verdict {
        match outcome {
            Ok(result) => match mutual_modern(&strings(&result["supportedVersions"])) {
                Some(v) => Verdict::Modern(result, v),
                // A discover answer naming no modern version of ours advertises the legacy era.
                None => Verdict::Legacy,
            },
            Err(e) if jsonrpc::is_unavailable(&e) => match jsonrpc::refused_status(&e) {
                // An HTTP error without a JSON-RPC error body: a legacy server.
                Some(_) => Verdict::Legacy,
                None => Verdict::Fatal(jsonrpc::failed_during(&e, "`server/discover`")),
            },
            Err(e) if e["code"].as_i64() == Some(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION) => {
                let supported = strings(&e["data"]["supported"]);
                match mutual_modern(&supported) {
                    Some(v) => Verdict::Retry(v),
                    _ if supported.is_empty() || supported.iter().any(|v| PROTOCOL_VERSIONS.contains(v)) => {
                        Verdict::Legacy
                    }
                    _ => Verdict::Fatal(self.no_common_version(&supported)),
                }
            }
            Err(e) if jsonrpc::is_modern_error(&e) => Verdict::Fatal(Error::server(format!(
                "server `{}` refused `server/discover`: {}",
                self.name(),
                jsonrpc::error_text(&e)
            ))),
            Err(e) => {
                log::debug!(
                    "server `{}`: `server/discover` failed ({}): legacy era",
                    self.name(),
                    jsonrpc::error_text(&e)
                );
                Verdict::Legacy
            }
        }
    }

    fn no_common_version(&self, supported: &[&str]) -> Error {
        Error::protocol(format!(
            "server `{}` speaks MCP protocol version{} {}, which mcpctl does not support",
            self.name(),
            if supported.len() == 1 { "" } else { "s" },
            supported.join(", ")
        ))
        .hint(format!("mcpctl speaks {}", all_versions()))
    }

    fn timed_out(&self, what: &str) -> Error {
        Error::timeout(format!(
            "server `{}` did not answer `{}` within {}",
            self.name(),
            what,
            crate::peer::human_duration(self.budget)
        ))
        .hint(if self.over_http {
            "check that the URL is the server's MCP endpoint (often ending in /mcp), or raise its `timeout`"
        } else {
            "check that it is an MCP server speaking on stdio, or raise its `timeout`"
        })
    }

    /// The modern era, from the answer to `server/discover`.
    fn modern(&self, result: Value, version: String) -> Session {
        self.peer.set_modern(Modern {
            version: version.clone(),
            client_info: self.ctx.client_info.clone(),
            capabilities: json!({}),
        });
        let server_info = result
            .get("_meta")
            .and_then(|m| m.get(jsonrpc::META_SERVER_INFO))
            .or_else(|| result.get("serverInfo"))
            .cloned()
            .unwrap_or(Value::Null);
        Session {
            peer: self.peer.clone(),
            server_info,
            protocol: version,
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
            root: self.ctx.project_root.to_path_buf(),
        }
    }

    /// The legacy handshake. `late` is a probe still unanswered (stdio): its answer, if it
    /// comes first and says modern, wins over `initialize`.
    fn initialize(&self, late: Option<(Pending, String)>) -> Result<Session> {
        let params = json!({
            "protocolVersion": LATEST,
            "capabilities": self.ctx.capabilities,
            "clientInfo": self.ctx.client_info,
        });
        let init = self.peer.start("initialize", Some(params))?;
        let mut probe = late;
        // `initialize` failed while the probe may still say modern.
        let mut refused: Option<Value> = None;
        loop {
            if refused.is_none() {
                match init.poll(Duration::from_millis(10)) {
                    Poll::Ready(Ok(result)) => {
                        if let Some((p, _)) = probe.take() {
                            self.peer.forget(p.id);
                        }
                        return self.legacy(result);
                    }
                    Poll::Ready(Err(e)) => {
                        // The server named a modern version of ours: it is modern after all (a
                        // probe that timed out here may have made a slow server settle on it).
                        let supported = strings(&e["data"]["supported"]);
                        let code = e["code"].as_i64();
                        if let (Some(jsonrpc::UNSUPPORTED_PROTOCOL_VERSION), Some(v), None) =
                            (code, mutual_modern(&supported), &probe)
                        {
                            // Pinned to the session era: never upgraded behind the setting.
                            if self.protocol == Protocol::Legacy {
                                return Err(Error::protocol(format!(
                                    "server `{}` does not speak the session era: it refused `initialize`, naming MCP {}",
                                    self.name(),
                                    v
                                ))
                                .hint("a \"protocol\" of \"auto\" (the default) speaks MCP 2026-07-28 to it"));
                            }
                            return self.reprobe(v);
                        }
                        if probe.is_none() {
                            return Err(self.refused(&e));
                        }
                        refused = Some(e);
                    }
                    Poll::Waiting => {}
                    Poll::Closed => return Err(self.closed()),
                }
            }
            if let Some((p, _)) = &probe {
                let slice = if refused.is_some() { Duration::from_millis(50) } else { Duration::from_millis(10) };
                match p.poll(slice) {
                    Poll::Ready(outcome) => match self.judge(outcome) {
                        Verdict::Modern(result, v) => {
                            self.peer.forget(init.id);
                            return Ok(self.modern(result, v));
                        }
                        Verdict::Fatal(e) => {
                            self.peer.forget(init.id);
                            return Err(e);
                        }
                        Verdict::Retry(_) | Verdict::Legacy => {
                            probe = None;
                            if let Some(e) = &refused {
                                return Err(self.refused(e));
                            }
                        }
                    },
                    Poll::Waiting => {}
                    Poll::Closed => return Err(self.closed()),
                }
            }
            if signals::stopping() || Instant::now() >= self.deadline {
                let interrupted = signals::stopping();
                let why = if interrupted { "interrupted" } else { "timeout" };
                self.peer.cancel(init.id, why);
                if let Some((p, _)) = &probe {
                    self.peer.cancel(p.id, why);
                }
                if interrupted {
                    return Err(Error::interrupted(format!("connecting to server `{}` interrupted", self.name()))
                        .hint("Ctrl-C was pressed"));
                }
                if let Some(e) = &refused {
                    return Err(self.refused(e));
                }
                return Err(self.timed_out("initialize"));
            }
        }
    }

    /// `initialize` was refused with -32022 naming `version`: probe with it, for the rest of the time.
    fn reprobe(&self, version: String) -> Result<Session> {
        log::debug!("server `{}`: refused `initialize` naming {}; probing again", self.name(), version);
        let probe = self.probe(&version)?;
        let Some(outcome) = self.wait(&probe, self.left())? else {
            self.peer.cancel(probe.id, "timeout");
            return Err(self.timed_out("server/discover"));
        };
        match self.judge(outcome) {
            Verdict::Modern(result, v) => Ok(self.modern(result, v)),
            Verdict::Fatal(e) => Err(e),
            Verdict::Retry(_) | Verdict::Legacy => Err(Error::protocol(format!(
                "server `{}` refused `initialize` for a version it then did not accept in `server/discover`",
                self.name()
            ))),
        }
    }

    fn refused(&self, e: &Value) -> Error {
        if jsonrpc::is_unavailable(e) {
            return jsonrpc::failed_during(e, "initialize");
        }
        let err = Error::server(format!("server `{}` refused to initialize: {}", self.name(), jsonrpc::error_text(e)));
        let supported = strings(&e["data"]["supported"]);
        if supported.is_empty() {
            err
        } else {
            err.hint(format!("it speaks {}; mcpctl speaks {}", supported.join(", "), all_versions()))
        }
    }

    /// The legacy era, from the answer to `initialize`.
    fn legacy(&self, result: Value) -> Result<Session> {
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        if !PROTOCOL_VERSIONS.contains(&version) {
            return Err(Error::protocol(format!(
                "server `{}` speaks MCP protocol version `{}`, which mcpctl does not support",
                self.name(),
                version
            ))
            .hint(format!(
                "mcpctl speaks {} through `initialize`, and {} without it",
                PROTOCOL_VERSIONS.join(", "),
                MODERN_VERSIONS.join(", ")
            )));
        }
        self.peer.notify("notifications/initialized", None)?;
        Ok(Session {
            peer: self.peer.clone(),
            server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
            protocol: version.to_string(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
            root: self.ctx.project_root.to_path_buf(),
        })
    }
}
