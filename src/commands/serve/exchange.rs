//! One exchange with the gateway over the session: a request POSTed (with the session id
//! and revision), what comes back relayed until its answer (a JSON body, a batch or an SSE
//! stream), a made-up error when none comes; the session renewed once when the gateway
//! forgot it. Notifications and the client's answers are POSTed with a short deadline.

use super::bridge::{Answer, Bridge, SIDE, UNAVAILABLE};
use crate::jsonrpc;
use crate::sync::Locked;
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deadline of the client's `initialize`.
const INIT: Duration = Duration::from_secs(60);

impl Bridge {
    /// POST a request and relay what comes back until its answer; a made-up error when none
    /// comes (unless the client cancelled it). With `modern` (2026-07-28 routing headers),
    /// statelessly: no session, and whatever the gateway answers is the answer.
    pub(super) fn exchange(self: &Arc<Self>, id: &Value, text: &str, init: bool, modern: Option<&[(String, String)]>) {
        let timeout = if init { INIT } else { self.deadline };
        let session = self.session.locked().clone();
        let mut answer = match modern {
            Some(headers) => self.modern_request(id, text, headers),
            None => self.request(id, text, timeout, session.as_deref(), init),
        };
        if let (Answer::SessionGone, Some(stale)) = (&answer, session.as_deref()) {
            answer = if self.renew(stale) {
                let again = self.session.locked().clone();
                self.request(id, text, timeout, again.as_deref(), false)
            } else {
                Answer::Missing(UNAVAILABLE, "the gateway ended the session and a new one could not be opened".into())
            };
        }
        let (code, why) = match answer {
            Answer::Answered => {
                if init && self.session.locked().is_some() {
                    self.open_stream();
                }
                return;
            }
            Answer::Missing(code, why) => (code, why),
            Answer::SessionGone => (UNAVAILABLE, "the gateway does not know the session (HTTP 404)".into()),
        };
        if self.cancelled.locked().remove(&id.to_string()) {
            return;
        }
        log::warn!("request {}: {}", id, why);
        self.emit(&jsonrpc::error_response(id.clone(), code, &format!("mcpctl serve: {}", why)));
    }

    /// One POST of a request with `session`; relays what comes back.
    fn request(&self, id: &Value, text: &str, timeout: Duration, session: Option<&str>, init: bool) -> Answer {
        let started = Instant::now();
        let resp = match self.post(text, timeout, session) {
            Ok(r) => r,
            Err((code, e)) => return Answer::Missing(code, e),
        };
        let status = resp.status().as_u16();
        if init && (200..300).contains(&status) {
            if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                *self.session.locked() = Some(s.to_string());
            }
        }
        if status == 404 && session.is_some() {
            return Answer::SessionGone;
        }
        let stream = content_type(&resp).starts_with("text/event-stream");
        let answered = if stream && (200..300).contains(&status) {
            self.relay_stream(resp, Some(id), None)
        } else if status == 202 {
            return Answer::Missing(UNAVAILABLE, "the gateway accepted the request but sent no answer".into());
        } else {
            let body = match read_body(resp, self.max_line) {
                Ok(b) => b,
                Err(e) => return Answer::Missing(UNAVAILABLE, e),
            };
            match self.relay_body(status, &body, id) {
                Ok(seen) => seen,
                Err(missing) => return missing,
            }
        };
        self.outcome(answered, started, timeout, status)
    }

    /// The messages of a JSON answer (one, or a batch) relayed; whether the answer to `id` was
    /// among them.
    pub(super) fn relay_body(&self, status: u16, body: &str, id: &Value) -> std::result::Result<bool, Answer> {
        Ok(match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(msgs)) => {
                // Every message is relayed, the answer wherever it is.
                let mut seen = false;
                for m in msgs {
                    seen |= self.relay(m, Some(id));
                }
                seen
            }
            Ok(m) if m.is_object() => self.relay(m, Some(id)),
            _ if (200..300).contains(&status) => false,
            _ => {
                return Err(Answer::Missing(
                    UNAVAILABLE,
                    format!("the gateway answered HTTP {}: {}", status, snippet(body)),
                ))
            }
        })
    }

    /// What an exchange that ended came to.
    pub(super) fn outcome(&self, answered: bool, started: Instant, timeout: Duration, status: u16) -> Answer {
        if answered {
            Answer::Answered
        } else if started.elapsed() >= timeout {
            Answer::Missing(
                jsonrpc::REQUEST_TIMEOUT,
                format!("no answer from the gateway within {}s", timeout.as_secs()),
            )
        } else {
            Answer::Missing(UNAVAILABLE, format!("the gateway ended the exchange without answering (HTTP {})", status))
        }
    }

    /// Hand a message from the gateway to the client; true when it answers `want`. The
    /// revision in the answer to `initialize` goes on every later request.
    pub(super) fn relay(&self, m: Value, want: Option<&Value>) -> bool {
        let is_answer = want.is_some()
            && m.get("method").is_none()
            && m.get("id") == want
            && (m.get("result").is_some() || m.get("error").is_some());
        if is_answer && self.cancelled.locked().remove(&m["id"].to_string()) {
            // The client cancelled it: no answer is due any more.
            log::debug!("dropped the answer to cancelled request {}", m["id"]);
            return true;
        }
        if is_answer && self.listing.locked().remove(&m["id"].to_string()) {
            self.learn_params(&m);
        }
        if is_answer {
            if let Some(p) = m.get("result").and_then(|r| r.get("protocolVersion")).and_then(Value::as_str) {
                let is_init = self.init.locked().is_some() && self.protocol.locked().is_none();
                if is_init {
                    *self.protocol.locked() = Some(p.to_string());
                }
            }
        }
        self.emit(&m);
        is_answer
    }

    pub(super) fn post(
        &self,
        text: &str,
        timeout: Duration,
        session: Option<&str>,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, (i64, String)> {
        let mut req = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(s) = session {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(p) = self.protocol.locked().clone() {
            req = req.header("MCP-Protocol-Version", p.as_str());
        }
        req.send(text).map_err(|e| self.net_error(e))
    }

    /// A failed POST: `-32001` when it ran out of time, `-32000` else; and why.
    fn net_error(&self, e: ureq::Error) -> (i64, String) {
        match e {
            ureq::Error::Timeout(t) => {
                (jsonrpc::REQUEST_TIMEOUT, format!("no answer from the gateway in time ({})", t))
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                (UNAVAILABLE, format!("cannot reach the gateway at {}: connection refused", self.url))
            }
            other => (UNAVAILABLE, format!("cannot reach the gateway at {}: {}", self.url, other)),
        }
    }

    /// A notification or an answer of the client: POSTed now, in order, with a short deadline.
    pub(super) fn post_side(&self, text: &str) {
        let session = self.session.locked().clone();
        match self.post(text, SIDE, session.as_deref()) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let body = read_body(resp, 64 * 1024).unwrap_or_default();
                    log::warn!("the gateway refused a message of the client: HTTP {} {}", status, snippet(&body));
                }
            }
            Err((_, e)) => log::warn!("a message of the client was not delivered: {}", e),
        }
    }
}

pub(super) fn content_type(resp: &ureq::http::Response<ureq::Body>) -> String {
    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

pub(super) fn read_body(resp: ureq::http::Response<ureq::Body>, max: usize) -> std::result::Result<String, String> {
    let mut s = String::new();
    resp.into_body()
        .into_with_config()
        .limit(max as u64)
        .reader()
        .read_to_string(&mut s)
        .map_err(|e| format!("reading the gateway's answer failed: {}", e))?;
    Ok(s)
}

/// A peer's text for a message: trimmed, escaped, at most `logsafe::MAX_CHARS` long.
pub(super) fn snippet(s: &str) -> String {
    crate::logsafe::safe(s.trim()).to_string()
}
