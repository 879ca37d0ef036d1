//! Event streams, server side: the chunked `text/event-stream` answers (the head, one
//! event per chunk, the end) and the standalone GET stream of a session, which carries the
//! messages of its servers that belong to no request.

use super::http::{accepts, send, session_of, text};
use super::server::{DeferredStream, Request, Stream};
use super::session::Target;
use super::Hub;
use serde_json::Value;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// The head of an event-stream answer (the connection ends with the stream).
pub(super) const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/// The last event of an event-stream answer (its JSON text), and its end.
pub(super) fn end_stream(mut s: DeferredStream, answer: &str) {
    s.send(&chunk(crate::sse::frame(None, answer).as_bytes()));
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

/// Write `first`, then each message that comes on `rx` (a `keepalive` comment after 15 s
/// of none), each as a chunk, until the client or the sender is gone or `stop` says so
/// after a quiet 15 s; then the end of the chunks. Whether `stop` ended it (the caller may
/// write a last event before the end).
pub(super) fn pump(
    w: &mut Stream,
    first: Option<Vec<u8>>,
    rx: &Receiver<Vec<u8>>,
    keepalive: &[u8],
    stop: impl Fn() -> bool,
) -> bool {
    let mut next = first;
    loop {
        if let Some(bytes) = next.take() {
            if w.write_all(&chunk(&bytes)).is_err() {
                return false;
            }
        }
        next = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(b) => Some(b),
            Err(RecvTimeoutError::Timeout) if stop() => return true,
            Err(RecvTimeoutError::Timeout) => Some(keepalive.to_vec()),
            Err(RecvTimeoutError::Disconnected) => return false,
        };
    }
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
    let mut w = req.into_stream(SSE_HEAD);
    pump(&mut w, None, &rx, b": keep-alive\n\n", || session.is_closed() || crate::signals::stopping());
    session.close_stream(n);
    let _ = w.write_all(b"0\r\n\r\n");
}
