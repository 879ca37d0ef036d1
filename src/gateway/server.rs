//! The gateway's HTTP/1.1 server: an accept loop and one thread per connection, which
//! reads each request (headers, then the body when the handler asks for it), calls the
//! handler on that same thread, and writes the answer in one piece. Bounded: a cap on live
//! connections (503 past it), limits on header and body sizes, and a deadline for reading
//! a request (`io_timeout`, which also ends idle keep-alive connections and stalled writes).
//!
//! A handler may also [`Request::defer`] its answer: another thread (the one reading the
//! child that answers) writes it later, without blocking — whatever a slow client does not
//! take at once is written by a helper thread — while the connection thread goes back to
//! waiting for the client's next request. That saves a thread hand-off per proxied call.
//!
//! Why not a crate: the hand-offs between an HTTP library's connection threads and its
//! request queue cost more CPU than the rest of a proxied call, and the library we tried
//! (tiny_http 0.12) had no read timeouts at all. See docs/benchmarks.md.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
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

/// A daemon-wide bound on bytes held for clients that do not read their answers.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget { used: AtomicUsize::new(0), max }
    }

    /// Take `n` bytes of the budget; false (nothing taken) past its end.
    fn take(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Ordering::SeqCst);
        if before.checked_add(n).map(|t| t > self.max).unwrap_or(true) {
            self.used.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
    }
}

const MAX_LINE: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// A chunk-size line (size and extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 1024;
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
            let mut conns = self.conns.lock().unwrap();
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
        let mut conns = self.registry.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|(id, _)| *id != self.id);
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
            let guard = match guard {
                Some(g) => g,
                None => {
                    let g = wait_for_slot(&registry2, &stream);
                    refusing2.fetch_sub(1, Ordering::SeqCst);
                    match g {
                        Some(g) => g,
                        None => return refuse(&stream),
                    }
                }
            };
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
    let _ = (&*stream).write_all(
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{}",
            body.len(),
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
                let _ = (&*stream).write_all(
                    format!(
                        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        status,
                        reason(status),
                        why.len(),
                        why
                    )
                    .as_bytes(),
                );
                linger_close(&stream);
                return;
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
        if let Some(slot) = state.deferred.take() {
            if state.close || state.body_left != Body::None {
                slot.wait_done();
                linger_close(&stream);
                return;
            }
            pending = Some(slot);
            continue;
        }
        if state.close || state.body_left != Body::None {
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

/// The request line and headers: one buffer, and where each part lies in it.
pub struct Head {
    raw: String,
    method: Range<usize>,
    /// Path and query (an absolute-form target is reduced to this).
    url: Range<usize>,
    /// The authority of an absolute-form target: it stands for the Host header.
    authority: Option<Range<usize>>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    body: Body,
    close: bool,
    expect_continue: bool,
}

impl Head {
    /// The first header of that name (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        if let (Some(a), true) = (&self.authority, name.eq_ignore_ascii_case("host")) {
            return Some(&self.raw[a.clone()]);
        }
        let (_, v) = self.headers.iter().find(|(k, _)| self.raw[k.clone()].eq_ignore_ascii_case(name))?;
        Some(&self.raw[v.clone()])
    }

    fn headers<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers
            .iter()
            .filter(move |(k, _)| self.raw[k.clone()].eq_ignore_ascii_case(name))
            .map(|(_, v)| &self.raw[v.clone()])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Length(usize),
    Chunked,
}

#[derive(Debug)]
enum HeadError {
    Closed,
    TimedOut,
    Bad(&'static str),
    TooLarge,
    Version,
}

impl HeadError {
    fn status(&self) -> (u16, String) {
        match self {
            HeadError::TimedOut => (408, "request not received in time".into()),
            HeadError::Bad(why) => (400, format!("bad request: {}", why)),
            HeadError::TooLarge => (431, "request header fields too large".into()),
            HeadError::Version => (505, "only HTTP/1.0 and HTTP/1.1 are supported".into()),
            HeadError::Closed => (400, String::new()),
        }
    }
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> HeadError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HeadError::TimedOut,
            io::ErrorKind::InvalidData => HeadError::TooLarge,
            _ => HeadError::Closed,
        }
    }
}

/// A token character (RFC 9110 5.6.2): what methods and header names are made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Append one line (with its line end) to `raw`, at most `MAX_LINE` bytes, all before
/// `deadline`; false at the end of input before any byte of it.
fn read_line_into<R: BufRead>(r: &mut R, raw: &mut Vec<u8>, deadline: Instant) -> io::Result<bool> {
    let start = raw.len();
    loop {
        if Instant::now() > deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return if raw.len() == start { Ok(false) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        let (take, done) = match memchr_nl(buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        raw.extend_from_slice(&buf[..take]);
        r.consume(take);
        if raw.len() - start > MAX_LINE {
            return Err(io::ErrorKind::InvalidData.into());
        }
        if done {
            return Ok(true);
        }
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// One line of a chunked body's framing (size line, trailer), without its line end.
fn read_line<R: BufRead>(r: &mut R, deadline: Instant) -> io::Result<Option<String>> {
    let mut raw = Vec::new();
    if !read_line_into(r, &mut raw, deadline)? {
        return Ok(None);
    }
    // One line end (LF, or CRLF): a CR before it is the framing's; any other CR is a bare
    // CR, which the callers refuse (RFC 9112 2.2).
    if raw.last() == Some(&b'\n') {
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
    }
    String::from_utf8(raw).map(Some).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn read_head<R: BufRead>(r: &mut R, deadline: Instant) -> Result<Head, HeadError> {
    // The whole head into one buffer: the request line (empty lines before it are allowed,
    // RFC 9112 2.2), the header lines, and the empty line that ends them.
    let mut raw = Vec::with_capacity(512);
    let mut lines = 0;
    loop {
        let at = raw.len();
        if !read_line_into(r, &mut raw, deadline)? {
            return Err(if lines == 0 && at == 0 { HeadError::Closed } else { HeadError::Bad("incomplete header") });
        }
        let empty = matches!(&raw[at..], b"\n" | b"\r\n");
        if empty && lines == 0 {
            raw.truncate(at);
            continue;
        }
        if empty {
            break;
        }
        lines += 1;
        if raw.len() > MAX_HEAD || lines > MAX_HEADERS + 1 {
            return Err(HeadError::TooLarge);
        }
    }
    let raw = String::from_utf8(raw).map_err(|_| HeadError::Bad("not UTF-8"))?;
    // One line end (CRLF, or a bare LF): any other CR is a bare CR, refused below.
    let trim_end = |l: &str| {
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l).len()
    };
    let first_len = raw.find('\n').unwrap_or(raw.len()) + 1;
    let line = &raw[..trim_end(&raw[..first_len])];
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HeadError::Bad("malformed method"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => return Err(HeadError::Version),
        _ => return Err(HeadError::Bad("malformed request line")),
    };
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Bad("malformed request target"));
    }
    let target_at = method.len() + 1;
    // An absolute-form target (RFC 9112 3.2.2): its authority is the Host, whatever the
    // Host header says.
    let mut authority = None;
    let url = if target.starts_with('/') || target == "*" {
        target_at..target_at + target.len()
    } else if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        let scheme = target.len() - rest.len();
        match rest.find('/') {
            Some(i) => {
                let auth = &rest[..i];
                if auth.is_empty() || auth.contains('@') {
                    return Err(HeadError::Bad("malformed authority in the request target"));
                }
                authority = Some(target_at + scheme..target_at + scheme + i);
                target_at + scheme + i..target_at + target.len()
            }
            None => return Err(HeadError::Bad("an absolute request target needs a path")),
        }
    } else {
        return Err(HeadError::Bad("malformed request target"));
    };
    let mut headers = Vec::with_capacity(12);
    let mut at = first_len;
    while at < raw.len() {
        let end = raw[at..].find('\n').map(|i| at + i + 1).unwrap_or(raw.len());
        let l = &raw[at..at + trim_end(&raw[at..end])];
        if l.is_empty() {
            break;
        }
        if l.starts_with([' ', '\t']) {
            return Err(HeadError::Bad("folded header lines are not allowed"));
        }
        let Some(colon) = l.find(':') else { return Err(HeadError::Bad("header line without a colon")) };
        let name = &l[..colon];
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HeadError::Bad("malformed header name"));
        }
        let value = &l[colon + 1..];
        // Field values (RFC 9110 5.5): no NUL, no bare CR, no other control but HTAB.
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HeadError::Bad("control character in a header value"));
        }
        let v_start = at + colon + 1 + (value.len() - value.trim_start_matches([' ', '\t']).len());
        let v_end = at + colon + 1 + value.trim_end_matches([' ', '\t']).len();
        headers.push((at..at + colon, v_start..v_end.max(v_start)));
        at = end;
    }
    let mut head = Head {
        method: 0..method.len(),
        url,
        authority,
        headers,
        body: Body::None,
        close: false,
        expect_continue: false,
        raw: String::new(),
    };
    head.raw = raw;
    // Headers a check depends on must not be ambiguous (the check and a later reader
    // could see different ones).
    if head.headers("Host").nth(1).is_some() {
        return Err(HeadError::Bad("more than one Host header"));
    }
    for name in ["Authorization", "Origin", "Content-Length"] {
        let mut all = head.headers(name);
        if let Some(first) = all.next() {
            if all.any(|v| v != first) {
                return Err(HeadError::Bad(match name {
                    "Authorization" => "differing Authorization headers",
                    "Origin" => "differing Origin headers",
                    _ => "malformed Content-Length (differing values)",
                }));
            }
        }
    }
    let tokens = |v: &str, t: &str| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t));
    let conn_close = head.headers("Connection").any(|v| tokens(v, "close"));
    let keep_alive = head.headers("Connection").any(|v| tokens(v, "keep-alive"));
    head.close = conn_close || (http10 && !keep_alive);
    let te: Vec<&str> = head.headers("Transfer-Encoding").collect();
    let lengths: Vec<&str> = head.headers("Content-Length").collect();
    let body = if !te.is_empty() {
        if http10 {
            return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !lengths.is_empty() {
            return Err(HeadError::Bad("both Transfer-Encoding and Content-Length"));
        }
        if te.len() != 1 || !te[0].eq_ignore_ascii_case("chunked") {
            return Err(HeadError::Bad("unsupported Transfer-Encoding (only chunked)"));
        }
        Body::Chunked
    } else if let Some(first) = lengths.first() {
        if lengths.iter().any(|l| l != first) || !first.bytes().all(|b| b.is_ascii_digit()) || first.is_empty() {
            return Err(HeadError::Bad("malformed Content-Length"));
        }
        match first.parse::<usize>() {
            Ok(0) => Body::None,
            Ok(n) => Body::Length(n),
            Err(_) => Body::Length(usize::MAX),
        }
    } else {
        Body::None
    };
    let expect_continue = head.headers("Expect").any(|v| v.eq_ignore_ascii_case("100-continue"));
    head.expect_continue = expect_continue;
    head.body = body;
    Ok(head)
}

/// What the connection loop needs to know after the handler ran.
struct Exchange {
    answered: bool,
    close: bool,
    body_left: Body,
    deadline: Instant,
    deferred: Option<Arc<Slot>>,
}

/// Why a body could not be had.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Unreadable,
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
        &self.head.raw[self.head.method.clone()]
    }

    pub fn url(&self) -> &str {
        &self.head.raw[self.head.url.clone()]
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
        let slot = Arc::new(Slot {
            st: Mutex::new(SlotState::default()),
            cv: Condvar::new(),
            budget: self.limits.buffered.clone(),
            hangup: Mutex::new(None),
        });
        self.state.answered = true;
        self.state.deferred = Some(slot.clone());
        Deferred { stream: self.stream.clone(), slot, close, finished: false, timer: None }
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
fn response(status: u16, headers: &[(&str, &str)], body: &[u8], close: bool) -> Vec<u8> {
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

/// What a client may leave unread of a deferred answer before it is cut off.
const MAX_BACKLOG: usize = 64 * 1024 * 1024;

/// The state of one deferred answer, shared by its writer and its connection thread.
struct Slot {
    st: Mutex<SlotState>,
    cv: Condvar,
    /// What its backlog takes from (the daemon-wide bound).
    budget: Arc<Budget>,
    /// Run when the client closes the connection before the answer is out.
    hangup: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

#[derive(Default)]
struct SlotState {
    /// Bytes the client did not take at once; a helper thread is writing them.
    backlog: Vec<u8>,
    draining: bool,
    /// Nothing more will be written.
    finished: bool,
    /// The connection ends after this answer.
    close: bool,
    /// Writing failed: the client is gone.
    broken: bool,
    /// The connection thread waits for the answer to be out.
    waiting: bool,
}

impl SlotState {
    /// Everything is written (or nothing more can be).
    fn done(&self) -> bool {
        self.finished && !self.draining
    }
}

impl Slot {
    fn is_done(&self) -> bool {
        self.st.lock().unwrap().done()
    }

    /// The client is gone while the answer is due: run what was set for that (once).
    fn hang_up(&self) {
        if self.is_done() {
            return;
        }
        let f = self.hangup.lock().unwrap().take();
        if let Some(f) = f {
            f();
        }
    }

    /// Wait until the answer is out; whether the connection must end.
    fn wait_done(&self) -> bool {
        let mut st = self.st.lock().unwrap();
        while !st.done() {
            st.waiting = true;
            st = self.cv.wait(st).unwrap();
        }
        st.close || st.broken
    }
}

/// An answer written later by any thread (see [`Request::defer`]). Writes never block:
/// what the client does not take at once is written by a helper thread, in order.
/// Dropping it unanswered ends the connection.
pub struct Deferred {
    stream: Arc<TcpStream>,
    slot: Arc<Slot>,
    close: bool,
    finished: bool,
    timer: Option<TimerKey>,
}

impl Deferred {
    /// Run `on_timeout` (on the deadline thread) unless the answer is finished by `at`;
    /// it replaces a deadline set before.
    pub fn set_deadline(&mut self, at: Instant, on_timeout: Box<dyn FnOnce() + Send>) {
        if let Some(k) = self.timer.take() {
            timer().remove(k);
        }
        self.timer = Some(timer().add(at, on_timeout));
    }

    /// Run `f` (on the connection's thread) if the client closes the connection before the
    /// answer is finished.
    pub fn on_hangup(&mut self, f: Box<dyn FnOnce() + Send>) {
        *self.slot.hangup.lock().unwrap() = Some(f);
    }

    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.write(&response(status, headers, body, self.close));
        self.finish();
    }

    /// Start a response of unknown length (an event stream): `head` is written, and the
    /// connection closes after the stream.
    pub fn into_stream(mut self, head: &[u8]) -> DeferredStream {
        self.close = true;
        self.write(head);
        DeferredStream(self)
    }

    fn write(&self, bytes: &[u8]) {
        let mut st = self.slot.st.lock().unwrap();
        if st.broken {
            return;
        }
        if st.draining {
            if st.backlog.len() + bytes.len() > MAX_BACKLOG {
                log::warn!("a client stopped reading an answer; its connection was closed");
                self.cut_off(&mut st);
            } else if !self.slot.budget.take(bytes.len()) {
                self.over_budget(&mut st);
            } else {
                st.backlog.extend_from_slice(bytes);
            }
            return;
        }
        match send_now(&self.stream, bytes) {
            Ok(n) if n == bytes.len() => {}
            Ok(n) => {
                if !self.slot.budget.take(bytes.len() - n) {
                    self.over_budget(&mut st);
                    return;
                }
                st.backlog.extend_from_slice(&bytes[n..]);
                st.draining = true;
                let (stream, slot) = (self.stream.clone(), self.slot.clone());
                if std::thread::Builder::new().name("http-drain".into()).spawn(move || drain(&stream, &slot)).is_err() {
                    st.draining = false;
                    st.broken = true;
                }
            }
            Err(_) => st.broken = true,
        }
    }

    /// The daemon-wide bound on unread bytes is reached: this connection, the one that
    /// wants more, is cut off.
    fn over_budget(&self, st: &mut SlotState) {
        log::warn!(
            "clients left more than MCPCTL_MAX_BUFFERED={} bytes of answers unread; the connection that asked for more was closed",
            self.slot.budget.max
        );
        self.cut_off(st);
    }

    fn cut_off(&self, st: &mut SlotState) {
        st.broken = true;
        self.slot.budget.give(st.backlog.len());
        st.backlog = Vec::new();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(k) = self.timer.take() {
            timer().remove(k);
        }
        let mut st = self.slot.st.lock().unwrap();
        st.finished = true;
        st.close |= self.close;
        if !st.draining {
            finished(&self.stream, &self.slot, &st);
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if !self.finished {
            self.close = true;
            self.finish();
        }
    }
}

/// The answer is out: let the connection thread go on, and let the client see the end of
/// a connection that closes after it.
fn finished(stream: &TcpStream, slot: &Slot, st: &SlotState) {
    if st.close || st.broken {
        let _ = stream.shutdown(Shutdown::Write);
    }
    if st.waiting {
        slot.cv.notify_all();
    }
}

/// A deferred event stream; dropping it ends the stream and the connection.
pub struct DeferredStream(Deferred);

impl DeferredStream {
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// As [`Deferred::set_deadline`]: a stream that goes on to another wait gets a new one.
    pub fn set_deadline(&mut self, at: Instant, on_timeout: Box<dyn FnOnce() + Send>) {
        self.0.set_deadline(at, on_timeout);
    }
}

/// Write what the socket takes now, without waiting.
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        match crate::sys::send_dontwait(stream, rest) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(off),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

/// The helper thread of a slow client: write the backlog (blocking, with the send timeout).
fn drain(stream: &TcpStream, slot: &Slot) {
    loop {
        let chunk = {
            let mut st = slot.st.lock().unwrap();
            if st.backlog.is_empty() || st.broken {
                st.draining = false;
                slot.budget.give(st.backlog.len());
                st.backlog = Vec::new();
                if st.finished {
                    finished(stream, slot, &st);
                }
                return;
            }
            std::mem::take(&mut st.backlog)
        };
        let sent = (&*stream).write_all(&chunk);
        slot.budget.give(chunk.len());
        if sent.is_err() {
            let mut st = slot.st.lock().unwrap();
            st.broken = true;
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

type TimerKey = (Instant, u64);

/// Deadlines of deferred answers, on one thread that sleeps until the earliest.
struct Timer {
    st: Mutex<TimerState>,
    cv: Condvar,
}

#[derive(Default)]
struct TimerState {
    due: BTreeMap<TimerKey, Box<dyn FnOnce() + Send>>,
    seq: u64,
    /// When the thread wakes next (None: when told).
    wakes: Option<Instant>,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("deadlines".into()).spawn(|| timer().run());
        if spawned.is_err() {
            log::error!("cannot start the deadline thread; calls that hang will not time out");
        }
        Timer { st: Mutex::new(TimerState::default()), cv: Condvar::new() }
    })
}

impl Timer {
    fn add(&self, at: Instant, f: Box<dyn FnOnce() + Send>) -> TimerKey {
        let mut st = self.st.lock().unwrap();
        st.seq += 1;
        let key = (at, st.seq);
        st.due.insert(key, f);
        // Only a deadline earlier than the one the thread sleeps for needs to wake it.
        if st.wakes.map(|w| at < w).unwrap_or(true) {
            self.cv.notify_one();
        }
        key
    }

    fn remove(&self, key: TimerKey) {
        let f = self.st.lock().unwrap().due.remove(&key);
        drop(f); // outside the lock: it may own the last reference to an answer
    }

    fn run(&self) {
        let mut st = self.st.lock().unwrap();
        loop {
            let now = Instant::now();
            match st.due.keys().next().copied() {
                Some(k) if k.0 <= now => {
                    let f = st.due.remove(&k).expect("present");
                    drop(st);
                    f();
                    st = self.st.lock().unwrap();
                }
                Some(k) => {
                    st.wakes = Some(k.0);
                    st = self.cv.wait_timeout(st, k.0 - now).unwrap().0;
                    st.wakes = None;
                }
                None => {
                    st.wakes = None;
                    st = self.cv.wait(st).unwrap();
                }
            }
        }
    }
}

fn read_exact(r: &mut Reader, n: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(n.min(1 << 20));
    while body.len() < n {
        if Instant::now() > deadline {
            return Err(BodyError::Unreadable);
        }
        let buf = r.fill_buf().map_err(|_| BodyError::Unreadable)?;
        if buf.is_empty() {
            return Err(BodyError::Unreadable);
        }
        let take = buf.len().min(n - body.len());
        body.extend_from_slice(&buf[..take]);
        r.consume(take);
    }
    Ok(body)
}

/// The size of a chunk from its size line: hex digits only (no sign, no `0x`), at most 16
/// significant ones, then optional extensions (ignored) after `;`.
fn chunk_size(line: &str) -> Option<u64> {
    let size = line.split(';').next().unwrap_or("").trim_end_matches([' ', '\t']);
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits = size.trim_start_matches('0');
    if digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).ok()
}

fn read_chunked(r: &mut Reader, limit: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    let framing = |r: &mut Reader, max: usize| -> Result<String, BodyError> {
        let line = read_line(r, deadline).map_err(|_| BodyError::Unreadable)?.ok_or(BodyError::Unreadable)?;
        if line.len() > max || line.bytes().any(|b| b == 0 || b == b'\r') {
            return Err(BodyError::Unreadable);
        }
        Ok(line)
    };
    loop {
        let size = chunk_size(&framing(r, MAX_CHUNK_LINE)?).ok_or(BodyError::Unreadable)?;
        if size == 0 {
            // Trailers (ignored), up to the empty line: bounded like a head.
            let (mut lines, mut bytes) = (0, 0);
            loop {
                let l = framing(r, MAX_LINE)?;
                if l.is_empty() {
                    return Ok(body);
                }
                lines += 1;
                bytes += l.len() + 2;
                if lines > MAX_HEADERS || bytes > MAX_HEAD {
                    return Err(BodyError::TooLarge);
                }
            }
        }
        let total = usize::try_from(size).ok().and_then(|n| body.len().checked_add(n));
        let size = match total {
            Some(t) if t <= limit => t - body.len(),
            _ => return Err(BodyError::TooLarge),
        };
        body.extend(read_exact(r, size, deadline)?);
        if read_line(r, deadline).map_err(|_| BodyError::Unreadable)? != Some(String::new()) {
            return Err(BodyError::Unreadable);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Head, HeadError> {
        read_head(&mut io::Cursor::new(raw.as_bytes()), Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn parses_request_lines_and_headers() {
        let h = head("POST /mcp/fx?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello").unwrap();
        assert_eq!((&h.raw[h.method.clone()], &h.raw[h.url.clone()]), ("POST", "/mcp/fx?x=1"));
        assert_eq!(h.body, Body::Length(5));
        assert!(!h.close);
        assert_eq!(h.headers("x-a").collect::<Vec<_>>(), vec!["b"]);
        let h = head("GET http://localhost:7878/health HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(&h.raw[h.url.clone()], "/health");
        assert!(h.close, "HTTP/1.0 closes unless keep-alive is asked for");
        assert!(head("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").unwrap().close);
        assert_eq!(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap().body, Body::Chunked);
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        assert!(matches!(head("GET /\r\n\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(head("GET / HTTP/2.0\r\n\r\n"), Err(HeadError::Version)));
        assert!(matches!(head("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(head("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(
            head("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HeadError::Bad(_))
        ));
        assert!(matches!(
            head("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            Err(HeadError::Bad(_))
        ));
        assert!(matches!(head("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Err(HeadError::Bad(_))));
        let many: String = (0..200).map(|i| format!("X-{}: y\r\n", i)).collect();
        assert!(matches!(head(&format!("GET / HTTP/1.1\r\n{}\r\n", many)), Err(HeadError::TooLarge)));
        assert!(matches!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Err(HeadError::Bad(_))));
        assert!(matches!(head(""), Err(HeadError::Closed)));
    }
}
