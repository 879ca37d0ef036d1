//! Event streams, server side: the chunked `text/event-stream` answers (the head, one
//! event per chunk, the end) and the standalone GET stream of a session, which carries the
//! messages of its servers that belong to no request.

use super::http::{accepts, send, session_of, text};
use super::server::{DeferredStream, Request, Stream};
use super::session::Target;
use super::Hub;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The head of an event-stream answer (the connection ends with the stream).
pub(super) const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/// The last event of an event-stream answer, and its end.
pub(super) fn end_stream(mut s: DeferredStream, answer: &Value) {
    s.send(&event_chunk(answer));
    s.send(b"0\r\n\r\n");
}

/// One SSE event as one chunk of a chunked response.
pub(super) fn event_chunk(msg: &Value) -> Vec<u8> {
    chunk(crate::sse::frame(None, &msg.to_string()).as_bytes())
}

/// One chunk of a chunked response, in one buffer (one write: with TCP_NODELAY, a packet).
pub(super) fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    let _ = write!(out, "{:x}\r\n", bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

/// Take over the connection and start a chunked `text/event-stream` response.
pub(super) fn start_sse(req: Request<'_>) -> Stream {
    req.into_stream(SSE_HEAD)
}

pub(super) fn write_chunk(w: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&chunk(bytes))
}

/// GET: a standalone stream for messages not tied to a request.
pub(super) fn get_stream(hub: &Arc<Hub>, req: Request<'_>, target: &Target) {
    if !accepts(&req, "text/event-stream") {
        return send(req, text(406, "Not Acceptable: Accept must list text/event-stream"));
    }
    let session = match session_of(hub, &req, target) {
        Ok(s) => s,
        Err(r) => return send(req, r),
    };
    let (n, rx) = session.open_stream();
    let mut w = start_sse(req);
    loop {
        let chunk = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(b) => b,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if session.is_closed() || crate::signals::stopping() {
                    break;
                }
                b": keep-alive\n\n".to_vec()
            }
            Err(_) => break,
        };
        if write_chunk(&mut w, &chunk).is_err() {
            break;
        }
    }
    session.close_stream(n);
    let _ = w.write_all(b"0\r\n\r\n").and_then(|_| w.flush());
}
