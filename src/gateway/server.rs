//! The gateway's HTTP/1.1 server: an accept loop and one thread per connection, which
//! reads each request (headers, then the body when the handler asks for it), calls the
//! handler on that same thread, and writes the answer in one piece. Bounded: a cap on live
//! connections (503 past it), limits on header and body sizes, and a deadline for reading
//! a request (`io_timeout`, which also ends idle keep-alive connections and stalled writes).
//! What the bytes mean (request heads, chunked framing) is `http1.rs`, without I/O.
//!
//! A handler may also [`Request::defer`] its answer: another thread (the one reading the
//! child that answers) writes it later, without blocking (`deferred.rs`), while the
//! connection thread goes back to waiting for the client's next request. That saves a
//! thread hand-off per proxied call.
//!
//! Why not a crate: the hand-offs between an HTTP library's connection threads and its
//! request queue cost more CPU than the rest of a proxied call, and the library we tried
//! (tiny_http 0.12) had no read timeouts at all. See docs/benchmarks.md.

use super::deferred::Slot;
pub use super::deferred::{Budget, Deferred, DeferredStream};
pub use crate::http1::BodyError;
use crate::http1::{Body, Chunked, Head, HeadError, HeadReader};
use crate::sync::Locked;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What bounds the server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_body: usize,
    /// Longest wait for a request (from its first byte to its last, and for the next one
    /// on a kept-alive connection) and for a client to take what we write.
    pub io_timeout: Duration,
    /// Longest wait for a complete request head: from the connection's start for its first
    /// request, from the first byte for later ones (never more than `io_timeout`).
    pub head_timeout: Duration,
    /// Bytes all slow readers together may leave unread (see [`Deferred`]).
    pub buffered: Arc<Budget>,
}

/// Connections past the cap that wait (briefly, off the accept thread) for a slot or get a
/// 503; beyond that they are closed at once.
const REFUSING_AT_MOST: usize = 64;
/// How long a connection past the cap waits for a slot before its 503: a client that just
/// closed a connection and opened another (common) would otherwise be refused because its
/// old connection's thread has not yet seen the close.
const CAP_GRACE: Duration = Duration::from_millis(200);

pub type Handler = dyn Fn(Request<'_>) + Send + Sync;

/// Where a connection is, for choosing which one to close when the cap is reached.
const FRESH: u8 = 0; // no complete request head yet
const IDLE: u8 = 1; // between requests (kept alive)
const BUSY: u8 = 2; // reading a body, running a handler, or an answer is due
const EVICTED: u8 = 3; // closed to make room

/// One live connection as the registry sees it.
struct Conn {
    stream: Arc<TcpStream>,
    phase: AtomicU8,
    /// When it entered FRESH or IDLE (ms since the registry's epoch).
    since: AtomicU64,
}

/// The live connections: counted against the cap, and the ones a new connection may
/// displace (the oldest that has not presented a complete head, then the oldest idle one).
struct Registry {
    conns: Mutex<Vec<(u64, Arc<Conn>)>>,
    next: AtomicU64,
    epoch: Instant,
    max: usize,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A slot for `stream` if there is one (making room if need be); the guard frees it.
    fn admit(self: &Arc<Self>, stream: &Arc<TcpStream>, make_room: bool) -> Option<SlotGuard> {
        let mut victim = None;
        let guard = {
            let mut conns = self.conns.locked();
            let live = conns.iter().filter(|(_, c)| c.phase.load(Ordering::SeqCst) != EVICTED).count();
            if live >= self.max {
                if !make_room {
                    return None;
                }
                victim = self.evict(&conns);
                victim.as_ref()?;
            }
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            let conn = Arc::new(Conn {
                stream: stream.clone(),
                phase: AtomicU8::new(FRESH),
                since: AtomicU64::new(self.now_ms()),
            });
            conns.push((id, conn.clone()));
            SlotGuard { registry: self.clone(), id, conn }
        };
        if let Some(v) = victim {
            // Outside the lock: wakes the victim's thread, which frees its slot.
            log::debug!("connection cap reached: closed a connection that was not sending a request");
            let _ = v.shutdown(Shutdown::Both);
        }
        Some(guard)
    }

    /// Mark the connection to close to make room: the oldest FRESH one, else the oldest IDLE.
    fn evict(&self, conns: &[(u64, Arc<Conn>)]) -> Option<Arc<TcpStream>> {
        for phase in [FRESH, IDLE] {
            let mut cands: Vec<&Arc<Conn>> =
                conns.iter().map(|(_, c)| c).filter(|c| c.phase.load(Ordering::SeqCst) == phase).collect();
            cands.sort_by_key(|c| c.since.load(Ordering::SeqCst));
            for c in cands {
                if c.phase.compare_exchange(phase, EVICTED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    return Some(c.stream.clone());
                }
            }
        }
        None
    }
}

/// A connection's slot; dropping it (also when its thread panics) frees the slot.
struct SlotGuard {
    registry: Arc<Registry>,
    id: u64,
    conn: Arc<Conn>,
}

impl SlotGuard {
    /// Enter BUSY; false when the connection was closed to make room.
    fn busy(&self) -> bool {
        let p = self.conn.phase.load(Ordering::SeqCst);
        p != EVICTED && self.conn.phase.compare_exchange(p, BUSY, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Between requests: may be closed to make room.
    fn idle(&self) {
        if self.conn.phase.load(Ordering::SeqCst) == BUSY {
            self.conn.since.store(self.registry.now_ms(), Ordering::SeqCst);
            let _ = self.conn.phase.compare_exchange(BUSY, IDLE, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.registry.conns.locked().retain(|(id, _)| *id != self.id);
    }
}

/// Accept connections until `accept` fails for good (the listener was shut down).
/// The accept thread never waits: a connection past the cap waits for a slot on its own
/// thread.
pub fn run(listener: TcpListener, limits: Limits, handler: Arc<Handler>) {
    let registry = Arc::new(Registry {
        conns: Mutex::new(Vec::new()),
        next: AtomicU64::new(0),
        epoch: Instant::now(),
        max: limits.max_connections,
    });
    let refusing = Arc::new(AtomicUsize::new(0));
    let head_timeout = limits.head_timeout.min(limits.io_timeout);
    loop {
        let (stream, _) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                if crate::signals::stopping() || e.raw_os_error() == Some(libc::EINVAL) {
                    return; // shut down
                }
                // Out of file descriptors and the like: a pause, not a busy loop, and go on.
                log::error!("accepting a connection failed: {}", e);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let accepted = Instant::now();
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(limits.io_timeout));
        let _ = stream.set_read_timeout(Some(head_timeout));
        let stream = Arc::new(stream);
        let guard = registry.admit(&stream, true);
        if guard.is_none() && refusing.fetch_add(1, Ordering::SeqCst) >= REFUSING_AT_MOST {
            refusing.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped
        }
        let (registry2, refusing2, limits2, handler2) =
            (registry.clone(), refusing.clone(), limits.clone(), handler.clone());
        let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
            let guard = guard.or_else(|| {
                let g = wait_for_slot(&registry2, &stream);
                refusing2.fetch_sub(1, Ordering::SeqCst);
                g
            });
            let Some(guard) = guard else { return refuse(&stream) };
            connection(stream, &guard, accepted, &limits2, &*handler2);
        });
        if spawned.is_err() {
            log::error!("cannot start a thread for a connection");
        }
    }
}

/// Past the cap: wait up to [`CAP_GRACE`] for a slot to free.
fn wait_for_slot(registry: &Arc<Registry>, stream: &Arc<TcpStream>) -> Option<SlotGuard> {
    let until = Instant::now() + CAP_GRACE;
    loop {
        if let Some(g) = registry.admit(stream, false) {
            return Some(g);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Past the connection cap: read the request head (briefly), answer 503 and close.
fn refuse(stream: &TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut r = BufReader::new(stream);
    let deadline = Instant::now() + Duration::from_secs(1);
    let _ = read_head(&mut r, deadline);
    let body = "mcpctl gateway: too many connections; try again shortly (the cap is MCPCTL_MAX_CONNECTIONS)";
    answer_and_close(stream, 503, "text/plain; charset=utf-8", "Retry-After: 1\r\n", body);
}

/// Answer with a text `body` (after the `extra` header lines) and close the connection.
fn answer_and_close(stream: &TcpStream, status: u16, content_type: &str, extra: &str, body: &str) {
    let _ = (&*stream).write_all(
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
            status,
            reason(status),
            content_type,
            body.len(),
            extra,
            body
        )
        .as_bytes(),
    );
    linger_close(stream);
}

/// Close after a response without losing it: stop sending, and read what the client still
/// sends for a moment (closing with unread data would reset the connection, and the
/// client could lose the answer it has not read yet).
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    while let Ok(n) = (&*stream).read(&mut sink) {
        if n == 0 || Instant::now() > until {
            break;
        }
    }
}

fn connection(stream: Arc<TcpStream>, guard: &SlotGuard, accepted: Instant, limits: &Limits, handler: &Handler) {
    let head_timeout = limits.head_timeout.min(limits.io_timeout);
    let source = Source {
        stream: stream.clone(),
        deadline: Some(accepted + head_timeout),
        timeout: head_timeout,
        base: limits.io_timeout,
    };
    let mut reader = BufReader::with_capacity(16 * 1024, source);
    // The previous request's deferred answer, while it may still be in the making.
    let mut pending: Option<Arc<Slot>> = None;
    let mut first_request = true;
    loop {
        if pending.is_none() {
            guard.idle();
        }
        // Wait for the next request. Idle keep-alive connections end after io_timeout
        // without a word (the read timeout), but not while an answer is still due; a new
        // connection must present its first request head within the head timeout.
        let more = loop {
            match reader.fill_buf() {
                Ok([]) => break false,
                Ok(_) => break true,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if first_request {
                        break true; // read_head answers 408
                    }
                    if pending.as_ref().map(|s| !s.is_done()).unwrap_or(false) {
                        continue;
                    }
                    break false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break false,
            }
        };
        if !more {
            if let Some(slot) = &pending {
                slot.hang_up();
            }
        }
        // Answers go out in order: the previous one first.
        if let Some(slot) = pending.take() {
            if slot.wait_done() {
                linger_close(&stream);
                return;
            }
        }
        if !more {
            break;
        }
        let first = Instant::now();
        let deadline = first + limits.io_timeout;
        let head_deadline = if first_request { accepted + head_timeout } else { first + head_timeout };
        first_request = false;
        reader.get_mut().deadline = Some(head_deadline);
        let head = read_head(&mut reader, head_deadline.min(deadline));
        reader.get_mut().clear_deadline();
        let head = match head {
            Ok(h) => h,
            Err(HeadError::Closed) => break,
            Err(e) => {
                let (status, why) = e.status();
                return answer_and_close(&stream, status, "text/plain", "", &why);
            }
        };
        if !guard.busy() {
            break; // closed to make room meanwhile
        }
        let mut state = Exchange { answered: false, close: head.close, body_left: head.body, deadline, deferred: None };
        let req = Request { head, reader: &mut reader, stream: &stream, state: &mut state, limits };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(req)));
        if ran.is_err() {
            log::error!("a request handler panicked; its connection was closed");
            break;
        }
        if !state.answered {
            log::error!("a request was not answered; its connection was closed");
            break;
        }
        let close = state.close || state.body_left != Body::None;
        if let Some(slot) = state.deferred.take() {
            if !close {
                pending = Some(slot);
                continue;
            }
            slot.wait_done();
        }
        if close {
            linger_close(&stream);
            return;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reading side of a connection (the writing side is the same socket, shared). While a
/// `deadline` is set, no read waits past it.
struct Source {
    stream: Arc<TcpStream>,
    deadline: Option<Instant>,
    /// The socket's read timeout now, and the one it has without a deadline.
    timeout: Duration,
    base: Duration,
}

impl Source {
    fn clear_deadline(&mut self) {
        self.deadline = None;
        if self.timeout != self.base {
            let _ = self.stream.set_read_timeout(Some(self.base));
            self.timeout = self.base;
        }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if left < self.timeout {
                let left = left.max(Duration::from_millis(1));
                let _ = self.stream.set_read_timeout(Some(left));
                self.timeout = left;
            }
        }
        (&*self.stream).read(buf)
    }
}

type Reader = BufReader<Source>;

/// Read one request head, all before `deadline`.
fn read_head<R: BufRead>(r: &mut R, deadline: Instant) -> Result<Head, HeadError> {
    let mut head = HeadReader::new();
    loop {
        if Instant::now() > deadline {
            return Err(HeadError::TimedOut);
        }
        let buf = match r.fill_buf() {
            Ok([]) => return Err(head.end_of_input()),
            Ok(buf) => buf,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(HeadError::TimedOut)
            }
            Err(_) => return Err(HeadError::Closed),
        };
        let (used, done) = head.feed(buf)?;
        r.consume(used);
        if done {
            return head.finish();
        }
    }
}

/// What the connection loop needs to know after the handler ran.
struct Exchange {
    answered: bool,
    close: bool,
    body_left: Body,
    deadline: Instant,
    deferred: Option<Arc<Slot>>,
}

/// One request on its connection; answer it with [`Request::respond`] or take the
/// connection over for a stream with [`Request::into_stream`].
pub struct Request<'a> {
    head: Head,
    reader: &'a mut Reader,
    stream: &'a Arc<TcpStream>,
    state: &'a mut Exchange,
    limits: &'a Limits,
}

impl Request<'_> {
    pub fn method(&self) -> &str {
        self.head.method()
    }

    pub fn url(&self) -> &str {
        self.head.url()
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// How many headers of that name the request has.
    pub fn header_count(&self, name: &str) -> usize {
        self.head.headers(name).count()
    }

    /// Read the whole body, at most `max_body` bytes.
    pub fn body(&mut self) -> Result<Vec<u8>, BodyError> {
        let limit = self.limits.max_body;
        let kind = self.state.body_left;
        if let Body::Length(n) = kind {
            if n > limit {
                return Err(BodyError::TooLarge);
            }
        }
        if kind != Body::None && self.head.expect_continue {
            (&**self.stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| BodyError::Unreadable)?;
        }
        let deadline = self.state.deadline;
        let body = match kind {
            Body::None => Vec::new(),
            Body::Length(n) => read_exact(self.reader, n, deadline)?,
            Body::Chunked => read_chunked(self.reader, limit, deadline)?,
        };
        self.state.body_left = Body::None;
        Ok(body)
    }

    /// Write a whole response in one piece (one write: no Nagle stall between head and body).
    pub fn respond(self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let close = self.state.close || self.state.body_left != Body::None;
        let mut out = response(status, headers, body, close);
        if self.method() == "HEAD" {
            out.truncate(out.len() - body.len()); // the head only, its Content-Length kept
        }
        if (&**self.stream).write_all(&out).is_err() {
            self.state.close = true;
        }
        self.state.answered = true;
    }

    /// Answer later, from any thread, with the returned [`Deferred`]. The connection reads
    /// the client's next request meanwhile but answers it only after this one.
    pub fn defer(self) -> Deferred {
        let close = self.state.close || self.state.body_left != Body::None;
        let slot = Slot::new(self.limits.buffered.clone());
        self.state.answered = true;
        self.state.deferred = Some(slot.clone());
        Deferred::new(self.stream.clone(), slot, close)
    }

    /// Take the connection over for a response of unknown length (an event stream): the
    /// head is written, the connection closes when the stream is dropped.
    pub fn into_stream(self, head: &[u8]) -> Stream {
        self.state.answered = true;
        self.state.close = true;
        let stream = self.stream.clone();
        let _ = (&*stream).write_all(head);
        Stream(stream)
    }
}

/// The writing side of a connection taken over by [`Request::into_stream`].
pub struct Stream(Arc<TcpStream>);

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A whole response: head and body in one buffer (one write: no Nagle stall between them).
pub(super) fn response(status: u16, headers: &[(&str, &str)], body: &[u8], close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    let _ = write!(out, "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n", status, reason(status), body.len());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    for (k, v) in headers {
        let _ = write!(out, "{}: {}\r\n", k, v);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The next bytes of a body, before `deadline`.
fn fill(r: &mut Reader, deadline: Instant) -> Result<&[u8], BodyError> {
    if Instant::now() > deadline {
        return Err(BodyError::Unreadable);
    }
    match r.fill_buf() {
        Ok([]) | Err(_) => Err(BodyError::Unreadable),
        Ok(buf) => Ok(buf),
    }
}

fn read_exact(r: &mut Reader, n: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(n.min(1 << 20));
    while body.len() < n {
        let buf = fill(r, deadline)?;
        let take = buf.len().min(n - body.len());
        body.extend_from_slice(&buf[..take]);
        r.consume(take);
    }
    Ok(body)
}

fn read_chunked(r: &mut Reader, limit: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut chunked = Chunked::new(limit);
    let mut body = Vec::new();
    loop {
        let (used, done) = chunked.feed(fill(r, deadline)?, &mut body)?;
        r.consume(used);
        if done {
            return Ok(body);
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
