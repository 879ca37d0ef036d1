//! HTTP/1.1 syntax (RFC 9112) without any I/O: bytes in, a parsed request head, a framing
//! decision or a typed error out. The gateway's server (`gateway/server.rs`) feeds these
//! from its sockets; `serve`'s small HTTP client reads chunked answers and the head limits
//! here too; the unit tests below and `http1/fuzz.rs` feed them from tables and a fuzzer.
//!
//! - [`HeadReader`]: finds the end of a request head in a byte stream (any split), bounded
//!   by line length, head size and header count (431 past them).
//! - [`parse_head`]: the complete head, parsed with `httparse` and checked against the
//!   rules `httparse` leaves to us: versions (505), request targets, ambiguous duplicates,
//!   Host, Content-Length and Transfer-Encoding, keep-alive or close.
//! - [`Chunked`]: a chunked body (size lines with extensions, data, trailers), bounded.

use std::ops::Range;

/// A head line (request line or header line, its line end included) longer than this: 431.
pub const MAX_LINE: usize = 16 * 1024;
/// A head longer than this (past the line that crosses it): 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// More header lines than this: 431. Also bounds a chunked body's trailer lines (413).
pub const MAX_HEADERS: usize = 100;
/// A chunk-size line (size and extensions) longer than this is refused.
pub const MAX_CHUNK_LINE: usize = 1024;

/// The request line and headers: one buffer, and where each part lies in it.
#[derive(Debug, Clone)]
pub struct Head {
    raw: String,
    method: Range<usize>,
    /// The request target as sent.
    target: Range<usize>,
    /// Path and query (an absolute-form target is reduced to this).
    url: Range<usize>,
    /// The authority of an absolute-form target: it stands for the Host header.
    authority: Option<Range<usize>>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub http10: bool,
    pub body: Body,
    /// The connection ends after this request (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    pub close: bool,
    pub expect_continue: bool,
}

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(usize),
    Chunked,
}

/// Why there is no request head. The connection ends on each; [`HeadError::status`] is
/// what the client is told first (nothing after `Closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The client closed the connection (before a request, or mid-line).
    Closed,
    TimedOut,
    Bad(&'static str),
    TooLarge,
    Version,
}

impl HeadError {
    pub fn status(&self) -> (u16, String) {
        match self {
            HeadError::TimedOut => (408, "request not received in time".into()),
            HeadError::Bad(why) => (400, format!("bad request: {}", why)),
            HeadError::TooLarge => (431, "request header fields too large".into()),
            HeadError::Version => (505, "only HTTP/1.0 and HTTP/1.1 are supported".into()),
            HeadError::Closed => (400, String::new()),
        }
    }
}

/// Why a body could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Unreadable,
}

impl Head {
    pub fn method(&self) -> &str {
        &self.raw[self.method.clone()]
    }

    /// Path and query.
    pub fn url(&self) -> &str {
        &self.raw[self.url.clone()]
    }

    /// The request target as sent (absolute-form included).
    pub fn target(&self) -> &str {
        &self.raw[self.target.clone()]
    }

    /// The first header of that name (case-insensitive); `Host` is an absolute-form
    /// target's authority when there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        if let (Some(a), true) = (&self.authority, name.eq_ignore_ascii_case("host")) {
            return Some(&self.raw[a.clone()]);
        }
        let (_, v) = self.headers.iter().find(|(k, _)| self.raw[k.clone()].eq_ignore_ascii_case(name))?;
        Some(&self.raw[v.clone()])
    }

    /// Every header of that name, in order.
    pub fn headers<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers
            .iter()
            .filter(move |(k, _)| self.raw[k.clone()].eq_ignore_ascii_case(name))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// Every header, in order.
    pub fn all_headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(|(k, v)| (&self.raw[k.clone()], &self.raw[v.clone()]))
    }

    /// The head in canonical form (CRLF line ends, `Name: value`): it parses back to an
    /// equal head.
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut out = format!("{} {} {}\r\n", self.method(), self.target(), version);
        for (k, v) in self.all_headers() {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Heads are equal when what they say is: the same request line and headers (not where
/// each lies in the buffer, nor how the lines ended).
impl PartialEq for Head {
    fn eq(&self, o: &Head) -> bool {
        self.method() == o.method()
            && self.target() == o.target()
            && self.url() == o.url()
            && self.header("host") == o.header("host")
            && self.all_headers().eq(o.all_headers())
            && (self.http10, self.body, self.close, self.expect_continue)
                == (o.http10, o.body, o.close, o.expect_continue)
    }
}

/// Collects one request head from a byte stream fed in pieces of any size: the request
/// line (empty lines before it are skipped, RFC 9112 2.2), the header lines and the empty
/// line that ends them (a line ends with LF or CRLF).
#[derive(Debug, Default)]
pub struct HeadReader {
    raw: Vec<u8>,
    /// Where the line being read starts in `raw`.
    line_start: usize,
    /// Complete non-empty lines so far.
    lines: usize,
}

impl HeadReader {
    pub fn new() -> HeadReader {
        HeadReader { raw: Vec::with_capacity(512), line_start: 0, lines: 0 }
    }

    /// Take what belongs to the head from `input`: how many bytes were taken (never past
    /// the head's end, so the rest is the body or the next request), and whether the head
    /// is complete. Err: a line, the head or the header count is past its limit.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), HeadError> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let (take, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            self.raw.extend_from_slice(&rest[..take]);
            used += take;
            if self.raw.len() - self.line_start > MAX_LINE {
                return Err(HeadError::TooLarge);
            }
            if !ended {
                break;
            }
            let empty = matches!(&self.raw[self.line_start..], b"\n" | b"\r\n");
            if empty && self.lines == 0 {
                self.raw.truncate(self.line_start);
                continue;
            }
            if empty {
                return Ok((used, true));
            }
            self.lines += 1;
            self.line_start = self.raw.len();
            if self.raw.len() > MAX_HEAD || self.lines > MAX_HEADERS + 1 {
                return Err(HeadError::TooLarge);
            }
        }
        Ok((used, false))
    }

    /// The input ended before the head did: `Closed` when nothing or a partial line came
    /// (a client going away), `Bad` when whole lines came but not the empty one.
    pub fn end_of_input(&self) -> HeadError {
        if self.lines == 0 || self.line_start < self.raw.len() {
            HeadError::Closed
        } else {
            HeadError::Bad("incomplete header")
        }
    }

    /// The head's bytes collected so far (empty lines before the request line left out).
    #[cfg(test)]
    pub fn collected(&self) -> &[u8] {
        &self.raw
    }

    /// Parse the complete head (after `feed` said so).
    pub fn finish(self) -> Result<Head, HeadError> {
        parse_head(self.raw)
    }
}

/// A token character (RFC 9110 5.6.2): what methods and header names are made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A line without its line end (one LF, and one CR before it): any other CR is a bare CR,
/// which the checks refuse (RFC 9112 2.2).
fn trim_line_end(l: &str) -> &str {
    let l = l.strip_suffix('\n').unwrap_or(l);
    l.strip_suffix('\r').unwrap_or(l)
}

/// Where `part` (a slice of `whole`) lies in `whole`.
fn range_in(whole: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// What the request line says, as ranges of the head.
struct RequestLine {
    method: Range<usize>,
    target: Range<usize>,
    http10: bool,
    url: Range<usize>,
    authority: Option<Range<usize>>,
}

/// The request line: method, target, version (RFC 9112 3), each part checked in this
/// order.
fn request_line(raw: &str) -> Result<RequestLine, HeadError> {
    let first_len = raw.find('\n').map(|i| i + 1).unwrap_or(raw.len());
    let line = trim_line_end(&raw[..first_len]);
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
    let at = range_in(raw, target).start;
    // An absolute-form target (RFC 9112 3.2.2): its authority is the Host, whatever the
    // Host header says.
    let mut authority = None;
    let url = if target.starts_with('/') || target == "*" {
        at..at + target.len()
    } else if let Some(rest) = target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        let scheme = target.len() - rest.len();
        match rest.find('/') {
            Some(i) => {
                let auth = &rest[..i];
                if auth.is_empty() || auth.contains('@') {
                    return Err(HeadError::Bad("malformed authority in the request target"));
                }
                authority = Some(at + scheme..at + scheme + i);
                at + scheme + i..at + target.len()
            }
            None => return Err(HeadError::Bad("an absolute request target needs a path")),
        }
    } else {
        return Err(HeadError::Bad("malformed request target"));
    };
    Ok(RequestLine { method: range_in(raw, method), target: at..at + target.len(), http10, url, authority })
}

/// Why a header line that `httparse` refused is refused, in the words the client gets.
fn header_line_fault(l: &str) -> Option<&'static str> {
    if l.starts_with([' ', '\t']) {
        return Some("folded header lines are not allowed");
    }
    let Some(colon) = l.find(':') else { return Some("header line without a colon") };
    let name = &l[..colon];
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Some("malformed header name");
    }
    // Field values (RFC 9110 5.5): no NUL, no bare CR, no other control but HTAB.
    if l[colon + 1..].bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Some("control character in a header value");
    }
    None
}

/// Parse a complete head (as [`HeadReader`] collects it: no empty lines before the
/// request line, ending with an empty line).
pub fn parse_head(raw: Vec<u8>) -> Result<Head, HeadError> {
    let raw = String::from_utf8(raw).map_err(|_| HeadError::Bad("not UTF-8"))?;
    let RequestLine { method, target, http10, url, authority } = request_line(&raw)?;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let headers = match req.parse(raw.as_bytes()) {
        Ok(httparse::Status::Complete(n)) if n == raw.len() => {
            req.headers.iter().map(|h| (range_in(&raw, h.name), range_in_bytes(&raw, h.value))).collect::<Vec<_>>()
        }
        Ok(_) => return Err(HeadError::Bad("incomplete header")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => {
            // The request line passed: the fault is in the first header line that has one.
            let first_len = raw.find('\n').map(|i| i + 1).unwrap_or(raw.len());
            let why = raw[first_len..]
                .split_inclusive('\n')
                .map(trim_line_end)
                .take_while(|l| !l.is_empty())
                .find_map(header_line_fault);
            return Err(HeadError::Bad(why.unwrap_or("malformed header line")));
        }
    };
    let mut head = Head {
        raw: String::new(),
        method,
        target,
        url,
        authority,
        headers,
        http10,
        body: Body::None,
        close: false,
        expect_continue: false,
    };
    head.raw = raw;
    // Headers a check depends on must not be ambiguous (the check and a later reader
    // could see different ones).
    if head.headers("Host").nth(1).is_some() {
        return Err(HeadError::Bad("more than one Host header"));
    }
    if !http10 && head.header("Host").is_none() {
        return Err(HeadError::Bad("an HTTP/1.1 request needs a Host header"));
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
    head.body = body_framing(&head)?;
    let expect_continue = head.headers("Expect").any(|v| v.eq_ignore_ascii_case("100-continue"));
    head.expect_continue = expect_continue;
    Ok(head)
}

/// A header value's range: `httparse` gives it as bytes of the (UTF-8) head.
fn range_in_bytes(whole: &str, part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// How the body is framed (RFC 9112 6): chunked (only, and only in HTTP/1.1), a
/// Content-Length (digits only; past `usize` it is simply too large), or none.
fn body_framing(head: &Head) -> Result<Body, HeadError> {
    let te: Vec<&str> = head.headers("Transfer-Encoding").collect();
    let lengths: Vec<&str> = head.headers("Content-Length").collect();
    if !te.is_empty() {
        if head.http10 {
            return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !lengths.is_empty() {
            return Err(HeadError::Bad("both Transfer-Encoding and Content-Length"));
        }
        if te.len() != 1 || !te[0].eq_ignore_ascii_case("chunked") {
            return Err(HeadError::Bad("unsupported Transfer-Encoding (only chunked)"));
        }
        return Ok(Body::Chunked);
    }
    let Some(first) = lengths.first() else { return Ok(Body::None) };
    if lengths.iter().any(|l| l != first) || first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeadError::Bad("malformed Content-Length"));
    }
    Ok(match first.parse::<usize>() {
        Ok(0) => Body::None,
        Ok(n) => Body::Length(n),
        Err(_) => Body::Length(usize::MAX),
    })
}

/// The size of a chunk from its size line (line end removed): hex digits only (no sign,
/// no `0x`), at most 16 significant ones, then optional whitespace and extensions
/// (ignored) after `;`. No NUL, no CR, UTF-8, at most [`MAX_CHUNK_LINE`] bytes.
pub fn chunk_size(line: &[u8]) -> Option<u64> {
    if line.len() > MAX_CHUNK_LINE || line.iter().any(|&b| b == 0 || b == b'\r') || std::str::from_utf8(line).is_err() {
        return None;
    }
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    // Leading zeros are not significant (httparse counts them against its 16 digits).
    let zeros = line.iter().take_while(|&&b| b == b'0').count();
    let from = if line.get(zeros).is_some_and(u8::is_ascii_hexdigit) { zeros } else { zeros - 1 };
    let mut framed = Vec::with_capacity(line.len() - from + 2);
    framed.extend_from_slice(&line[from..]);
    framed.extend_from_slice(b"\r\n");
    match httparse::parse_chunk_size(&framed) {
        Ok(httparse::Status::Complete((n, size))) if n == framed.len() => Some(size),
        _ => None,
    }
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    SizeLine,
    /// Bytes of the current chunk still to come.
    Data(usize),
    /// The line end after a chunk's data.
    DataEnd,
    Trailer,
    Done,
}

/// Decodes a chunked body (RFC 9112 7.1) fed in pieces of any size, up to `limit` bytes of
/// content. Trailers are read and ignored, bounded like a head (413 past that).
#[derive(Debug)]
pub struct Chunked {
    state: ChunkState,
    /// The framing line being read (size line, line end, trailer).
    line: Vec<u8>,
    limit: usize,
    total: usize,
    trailer_lines: usize,
    trailer_bytes: usize,
}

impl Chunked {
    pub fn new(limit: usize) -> Chunked {
        Chunked { state: ChunkState::SizeLine, line: Vec::new(), limit, total: 0, trailer_lines: 0, trailer_bytes: 0 }
    }

    /// Decode what `input` holds of the body into `out`: how many bytes were taken (never
    /// past the body's end) and whether the body is complete.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), BodyError> {
        let mut used = 0;
        loop {
            if self.state == ChunkState::Done {
                return Ok((used, true));
            }
            if used == input.len() {
                return Ok((used, false));
            }
            let rest = &input[used..];
            if let ChunkState::Data(left) = self.state {
                let take = left.min(rest.len());
                out.extend_from_slice(&rest[..take]);
                used += take;
                self.state = if take == left { ChunkState::DataEnd } else { ChunkState::Data(left - take) };
                continue;
            }
            // A framing line: LF or CRLF ends it.
            let (take, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            self.line.extend_from_slice(&rest[..take]);
            used += take;
            let cap = match self.state {
                ChunkState::SizeLine => MAX_CHUNK_LINE + 2,
                ChunkState::DataEnd => 2,
                _ => MAX_LINE,
            };
            if self.line.len() > cap {
                return Err(BodyError::Unreadable);
            }
            if !ended {
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&line)?;
        }
    }

    fn line_done(&mut self, line: &[u8]) -> Result<(), BodyError> {
        match self.state {
            ChunkState::SizeLine => {
                let size = chunk_size(line).ok_or(BodyError::Unreadable)?;
                if size == 0 {
                    self.state = ChunkState::Trailer;
                    return Ok(());
                }
                let total = usize::try_from(size).ok().and_then(|n| self.total.checked_add(n));
                match total {
                    Some(t) if t <= self.limit => {
                        self.state = ChunkState::Data(t - self.total);
                        self.total = t;
                    }
                    _ => return Err(BodyError::TooLarge),
                }
            }
            ChunkState::DataEnd if line.is_empty() => self.state = ChunkState::SizeLine,
            ChunkState::DataEnd => return Err(BodyError::Unreadable),
            ChunkState::Trailer => {
                if line.iter().any(|&b| b == 0 || b == b'\r') || std::str::from_utf8(line).is_err() {
                    return Err(BodyError::Unreadable);
                }
                if line.is_empty() {
                    self.state = ChunkState::Done;
                    return Ok(());
                }
                self.trailer_lines += 1;
                self.trailer_bytes += line.len() + 2;
                if self.trailer_lines > MAX_HEADERS || self.trailer_bytes > MAX_HEAD {
                    return Err(BodyError::TooLarge);
                }
            }
            ChunkState::Data(_) | ChunkState::Done => unreachable!("not a framing line"),
        }
        Ok(())
    }
}

/// One request head from `bytes` fed whole: the head and how many bytes it took.
#[cfg(test)]
pub fn head_of(bytes: &[u8]) -> Result<(Head, usize), HeadError> {
    let mut r = HeadReader::new();
    match r.feed(bytes)? {
        (n, true) => Ok((r.finish()?, n)),
        _ => Err(r.end_of_input()),
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    /// What a request's bytes come to: a head (its method, URL, framing, close) and the
    /// bytes it took, or the status it is refused with.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Parsed { method: &'static str, url: &'static str, body: Body, close: bool },
        Refused(u16),
        Closed,
    }
    use Outcome::*;

    fn outcome(raw: &[u8]) -> (Outcome, Option<Head>) {
        match head_of(raw) {
            Ok((h, _)) => {
                let o = Parsed {
                    method: h.method().to_string().leak(),
                    url: h.url().to_string().leak(),
                    body: h.body,
                    close: h.close,
                };
                (o, Some(h))
            }
            Err(HeadError::Closed) => (Closed, None),
            Err(e) => (Refused(e.status().0), None),
        }
    }

    const H: &str = "Host: a\r\n";

    fn get(close: bool) -> Outcome {
        Parsed { method: "GET", url: "/", body: Body::None, close }
    }

    fn post(body: Body) -> Outcome {
        Parsed { method: "POST", url: "/", body, close: false }
    }

    /// RFC 9112, one row per rule: request bytes → outcome.
    #[test]
    fn request_heads_follow_rfc_9112() {
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: y\r\n")).collect();
        let most: String = (0..MAX_HEADERS - 1).map(|i| format!("X-{i}: y\r\n")).collect();
        let long_value = "v".repeat(MAX_LINE);
        let big: String = (0..8).map(|i| format!("X-{i}: {}\r\n", "v".repeat(MAX_LINE - 10))).collect();
        let rows: Vec<(&str, String, Outcome)> = vec![
            // 2.2 message parsing
            ("CRLF line ends", format!("GET / HTTP/1.1\r\n{H}\r\n"), get(false)),
            ("bare LF line ends are accepted", "GET / HTTP/1.1\nHost: a\n\n".into(), get(false)),
            ("empty lines before the request line are skipped", format!("\r\n\nGET / HTTP/1.1\r\n{H}\r\n"), get(false)),
            ("a bare CR in a header value", format!("GET / HTTP/1.1\r\n{H}X: a\rb\r\n\r\n"), Refused(400)),
            ("a bare CR before a line end", format!("GET / HTTP/1.1\r\n{H}X: a\r\r\n\r\n"), Refused(400)),
            ("a bare CR ending the request line", format!("GET / HTTP/1.1\r\r\n{H}\r\n"), Refused(505)),
            ("UTF-8 in a value", format!("GET / HTTP/1.1\r\n{H}X: \u{e9}\r\n\r\n"), get(false)),
            ("nothing at all", "".into(), Closed),
            ("the client left mid-line", "GET / HT".into(), Closed),
            ("the client left after whole lines", format!("GET / HTTP/1.1\r\n{H}"), Refused(400)),
            // 3 request line
            ("one space between the parts", format!("GET  / HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            ("a fourth part", format!("GET / HTTP/1.1 x\r\n{H}\r\n"), Refused(400)),
            ("no version", "GET /\r\n\r\n".into(), Refused(400)),
            ("a method that is not a token", format!("G(T / HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            (
                "any token is a method",
                format!("PURGE / HTTP/1.1\r\n{H}\r\n"),
                Parsed { method: "PURGE", url: "/", body: Body::None, close: false },
            ),
            ("a target with a control character", format!("GET /a\u{1}b HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            ("a target that is no form we know", format!("GET a/b HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            (
                "asterisk-form",
                format!("OPTIONS * HTTP/1.1\r\n{H}\r\n"),
                Parsed { method: "OPTIONS", url: "*", body: Body::None, close: false },
            ),
            (
                "absolute-form is reduced to its path",
                "GET http://a:1/x?y HTTP/1.1\r\n\r\n".into(),
                Parsed { method: "GET", url: "/x?y", body: Body::None, close: false },
            ),
            ("absolute-form without a path", format!("GET http://a HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            ("absolute-form with userinfo", format!("GET http://u@a/ HTTP/1.1\r\n{H}\r\n"), Refused(400)),
            // 2.3 versions
            ("HTTP/1.0 closes by default", "GET / HTTP/1.0\r\n\r\n".into(), get(true)),
            ("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".into(), get(false)),
            ("HTTP/2.0", format!("GET / HTTP/2.0\r\n{H}\r\n"), Refused(505)),
            ("HTTP/1.2", format!("GET / HTTP/1.2\r\n{H}\r\n"), Refused(505)),
            ("a version that is not HTTP", format!("GET / FTP/1.1\r\n{H}\r\n"), Refused(400)),
            ("a lower-case version", format!("GET / http/1.1\r\n{H}\r\n"), Refused(400)),
            // 5 field syntax
            ("optional whitespace around a value", format!("GET / HTTP/1.1\r\n{H}X-A: \t b \t\r\n\r\n"), get(false)),
            ("a header line without a colon", format!("GET / HTTP/1.1\r\n{H}NoColon\r\n\r\n"), Refused(400)),
            ("whitespace before the colon", format!("GET / HTTP/1.1\r\n{H}X-A : b\r\n\r\n"), Refused(400)),
            ("an empty header name", format!("GET / HTTP/1.1\r\n{H}: b\r\n\r\n"), Refused(400)),
            ("a name that is not a token", format!("GET / HTTP/1.1\r\n{H}Bad Name: x\r\n\r\n"), Refused(400)),
            ("a NUL in a value", format!("GET / HTTP/1.1\r\n{H}X: a\0b\r\n\r\n"), Refused(400)),
            ("DEL in a value", format!("GET / HTTP/1.1\r\n{H}X: a\u{7f}b\r\n\r\n"), Refused(400)),
            ("an empty value", format!("GET / HTTP/1.1\r\n{H}X:\r\n\r\n"), get(false)),
            // 5.2 obs-fold
            ("obs-fold", format!("GET / HTTP/1.1\r\n{H}A: b\r\n c\r\n\r\n"), Refused(400)),
            ("obs-fold with a tab", format!("GET / HTTP/1.1\r\n{H}A: b\r\n\tc\r\n\r\n"), Refused(400)),
            // limits (431)
            ("100 headers", format!("GET / HTTP/1.1\r\n{H}{most}\r\n"), get(false)),
            ("101 headers", format!("GET / HTTP/1.1\r\n{H}{many}\r\n"), Refused(431)),
            ("a line longer than 16 KiB", format!("GET / HTTP/1.1\r\n{H}X: {long_value}\r\n\r\n"), Refused(431)),
            ("a head longer than 64 KiB", format!("GET / HTTP/1.1\r\n{H}{big}\r\n"), Refused(431)),
            // 3.2 Host
            ("no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n".into(), Refused(400)),
            ("no Host in HTTP/1.0", "GET / HTTP/1.0\r\n\r\n".into(), get(true)),
            ("two Host headers", format!("GET / HTTP/1.1\r\n{H}{H}\r\n"), Refused(400)),
            // ambiguous duplicates of what checks read
            (
                "the same Authorization twice",
                format!("GET / HTTP/1.1\r\n{H}Authorization: a\r\nAuthorization: a\r\n\r\n"),
                get(false),
            ),
            (
                "differing Authorization",
                format!("GET / HTTP/1.1\r\n{H}Authorization: a\r\nAuthorization: b\r\n\r\n"),
                Refused(400),
            ),
            ("differing Origin", format!("GET / HTTP/1.1\r\n{H}Origin: a\r\nOrigin: b\r\n\r\n"), Refused(400)),
            // 6.3 Content-Length
            ("Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\n"), post(Body::Length(5))),
            (
                "Content-Length 0 is no body",
                format!("POST / HTTP/1.1\r\n{H}Content-Length: 0\r\n\r\n"),
                post(Body::None),
            ),
            (
                "the same Content-Length twice",
                format!("POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
                post(Body::Length(5)),
            ),
            (
                "differing Content-Lengths",
                format!("POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                Refused(400),
            ),
            ("a Content-Length list", format!("POST / HTTP/1.1\r\n{H}Content-Length: 5, 5\r\n\r\n"), Refused(400)),
            ("a negative Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n"), Refused(400)),
            ("a signed Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length: +1\r\n\r\n"), Refused(400)),
            ("a hex Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length: 0x5\r\n\r\n"), Refused(400)),
            ("an empty Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length:\r\n\r\n"), Refused(400)),
            (
                "an overflowing Content-Length is too large, not wrapped",
                format!("POST / HTTP/1.1\r\n{H}Content-Length: 99999999999999999999999\r\n\r\n"),
                post(Body::Length(usize::MAX)),
            ),
            // 6.1 Transfer-Encoding
            ("chunked", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"), post(Body::Chunked)),
            (
                "Chunked in any case",
                format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: CHUNKED\r\n\r\n"),
                post(Body::Chunked),
            ),
            (
                "chunked not last",
                format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, gzip\r\n\r\n"),
                Refused(400),
            ),
            (
                "a coding before chunked (only chunked is supported)",
                format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n"),
                Refused(400),
            ),
            (
                "two Transfer-Encoding lines",
                format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
                Refused(400),
            ),
            (
                "Content-Length and Transfer-Encoding",
                format!("POST / HTTP/1.1\r\n{H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
                Refused(400),
            ),
            (
                "Transfer-Encoding in HTTP/1.0",
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                Refused(400),
            ),
            // 9.3 persistence
            ("Connection: close", format!("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n"), get(true)),
            (
                "close in a Connection list",
                format!("GET / HTTP/1.1\r\n{H}Connection: keep-alive, Close\r\n\r\n"),
                get(true),
            ),
            (
                "close on a second Connection line",
                format!("GET / HTTP/1.1\r\n{H}Connection: x\r\nConnection: close\r\n\r\n"),
                get(true),
            ),
        ];
        for (rule, raw, want) in rows {
            let (got, head) = outcome(raw.as_bytes());
            assert_eq!(got, want, "{rule}: {raw:?}");
            if let Some(h) = head {
                assert_eq!(head_of(&h.to_bytes()).map(|x| x.0).as_ref(), Ok(&h), "{rule}: re-serialised");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let why = |raw: &str| head_of(raw.as_bytes()).unwrap_err().status().1;
        assert!(why("GARBAGE\r\n\r\n").contains("malformed request line"));
        assert!(why("G(T / HTTP/1.1\r\n\r\n").contains("malformed method"));
        assert!(why("GET / HTTP/2.0\r\n\r\n").contains("HTTP/1.0 and HTTP/1.1"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n c\r\n\r\n").contains("folded"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n").contains("without a colon"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nB d: c\r\n\r\n").contains("malformed header name"));
        assert!(why("GET / HTTP/1.1\r\nHost: evil\x1b]0\r\n\r\n").contains("control character"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .contains("Content-Length"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n").contains("Transfer-Encoding"));
        assert!(why("GET / HTTP/1.1\r\n\r\n").contains("Host"));
        assert!(why("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").contains("more than one Host"));
        assert_eq!(head_of(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n").unwrap_err(), HeadError::Bad("not UTF-8"));
    }

    #[test]
    fn a_head_takes_only_its_own_bytes() {
        let raw = b"\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /";
        let (h, n) = head_of(raw).unwrap();
        assert_eq!(&raw[n..], b"abcGET /");
        assert_eq!((h.method(), h.url(), h.header("HOST"), h.body), ("POST", "/x", Some("a"), Body::Length(3)));
        // An absolute-form target's authority is the Host, whatever the header says.
        let (h, _) = head_of(b"GET http://b/y HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((h.url(), h.header("host"), h.target()), ("/y", Some("b"), "http://b/y"));
        assert!(head_of(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n").unwrap().0.expect_continue);
    }

    /// What a chunked body decodes to and how many bytes it took, or why not.
    type Decoded = Result<(String, usize), BodyError>;

    /// A chunked body's bytes → what they come to.
    fn chunked(raw: &str, limit: usize) -> Decoded {
        let mut c = Chunked::new(limit);
        let mut out = Vec::new();
        match c.feed(raw.as_bytes(), &mut out)? {
            (n, true) => Ok((String::from_utf8(out).unwrap(), n)),
            _ => Err(BodyError::Unreadable), // the input ended first
        }
    }

    /// RFC 9112 7.1, one row per rule.
    #[test]
    fn chunked_bodies_follow_rfc_9112() {
        // `ALL`: the body took every byte given.
        const ALL: usize = usize::MAX;
        let ok = |s: &str, n: usize| Ok((s.to_string(), n));
        let long_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        let longest_ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE - 2));
        let trailers: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: y\r\n")).collect();
        let rows: Vec<(&str, String, usize, Decoded)> = vec![
            ("chunks", "5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n".into(), 100, ok("hello!", ALL)),
            ("what follows the body is not taken", "1\r\na\r\n0\r\n\r\nGET".into(), 100, ok("a", 11)),
            (
                "hex sizes in any case",
                "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n".into(),
                100,
                ok("01234567890123456789", ALL),
            ),
            ("bare LF line ends", "5\nhello\n0\n\n".into(), 100, ok("hello", ALL)),
            ("extensions are ignored", "5;a=b;c=\"d\"\r\nhello\r\n0;x\r\n\r\n".into(), 100, ok("hello", ALL)),
            ("whitespace before an extension", "5 \t;a\r\nhello\r\n0\r\n\r\n".into(), 100, ok("hello", ALL)),
            ("a size line at its limit", longest_ext.clone(), 100, ok("hello", ALL)),
            ("a size line past its limit", long_ext, 100, Err(BodyError::Unreadable)),
            (
                "leading zeros are not significant",
                format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(30)),
                100,
                ok("hello", ALL),
            ),
            ("16 hex digits is the most", "10000000000000000\r\n".into(), usize::MAX, Err(BodyError::Unreadable)),
            ("no size", ";x\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a signed size", "+5\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("two numbers", "5 6\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a bare CR in a size line", "5\r\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a NUL in an extension", "5;\0\r\nhello\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("data longer than its size", "5\r\nhello!\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a bare CR after the data", "5\r\nhello\r\r\n0\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("past the limit", "5\r\nhello\r\n".into(), 4, Err(BodyError::TooLarge)),
            ("at the limit", "5\r\nhello\r\n0\r\n\r\n".into(), 5, ok("hello", ALL)),
            (
                "a size that wraps the total",
                "1\r\na\r\nffffffffffffffff\r\n".into(),
                usize::MAX,
                Err(BodyError::TooLarge),
            ),
            ("trailers are read and ignored", "1\r\na\r\n0\r\nX: y\r\nZ: w\r\n\r\n".into(), 100, ok("a", ALL)),
            ("a bare CR in a trailer", "0\r\nX: y\r\r\n\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("a bare CR ending the trailers", "0\r\n\r\r\n".into(), 100, Err(BodyError::Unreadable)),
            ("trailers are bounded like a head", format!("0\r\n{trailers}\r\n"), 100, Err(BodyError::TooLarge)),
            ("the input ends first", "5\r\nhel".into(), 100, Err(BodyError::Unreadable)),
        ];
        for (rule, raw, limit, want) in rows {
            let want = want.map(|(s, n)| (s, if n == ALL { raw.len() } else { n }));
            assert_eq!(chunked(&raw, limit), want, "{rule}: {raw:?}");
        }
    }
}
