//! The small HTTP/1.1 client of the 2026-07-28 requests: it owns its `TcpStream`, so that
//! another thread can shut the connection down (that is how such a request is cancelled);
//! reads have a deadline for the whole answer, and the answer's head and body are bounded.
//!
//! The syntax is not ours: the answer's head is parsed by `httparse::Response` (at most
//! `http1::MAX_HEAD` bytes and `http1::MAX_HEADERS` headers), a chunked body is decoded by
//! our own `http1::Chunked` (the gateway's too) (bounded chunk-size lines and total size).

use crate::http1::{self, BodyError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long connecting to the gateway may take.
const CONNECT: Duration = Duration::from_secs(5);

/// A connection to the gateway for one request.
pub(super) struct Conn {
    stream: TcpStream,
    authority: String,
    path: String,
}

impl Conn {
    /// Connect to the host of `url` (`http://` only).
    pub(super) fn open(url: &str) -> Result<Conn, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("not an http URL: {}", url))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let addr = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("cannot resolve {}", authority))?;
        let stream = TcpStream::connect_timeout(&addr, CONNECT)
            .map_err(|e| format!("cannot reach the gateway at {}: {}", url, e))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn { stream, authority: authority.to_string(), path: path.to_string() })
    }

    /// A handle on the connection: shutting it down ends the exchange.
    pub(super) fn closer(&self) -> Result<TcpStream, String> {
        self.stream.try_clone().map_err(|e| format!("cannot use the connection: {}", e))
    }

    /// POST `body` (JSON) with `headers`; the answer is read from what this returns, each
    /// read waiting at most until `until`.
    pub(super) fn post(
        self,
        headers: &[(String, String)],
        body: &str,
        until: Instant,
    ) -> Result<BufReader<Deadlined>, String> {
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.path,
            self.authority,
            body.len()
        );
        for (k, v) in headers {
            if [k, v].iter().any(|s| s.contains(['\r', '\n'])) {
                return Err(format!("the header {} cannot be sent", k));
            }
            req.push_str(&format!("{}: {}\r\n", k, v));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let mut w = self.closer()?;
        w.write_all(req.as_bytes()).and_then(|_| w.flush()).map_err(|e| format!("cannot send: {}", e))?;
        Ok(BufReader::new(Deadlined { stream: self.stream, until }))
    }
}

/// `Read` with a deadline for the whole of it (each read waits at most what is left).
pub(super) struct Deadlined {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// The status line and headers of an answer.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    /// Lowercase.
    pub(super) content_type: String,
    pub(super) length: Option<usize>,
    pub(super) chunked: bool,
}

impl Head {
    /// Whether the answer is an SSE stream (of a request that was taken).
    pub(super) fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream") && (200..300).contains(&self.status)
    }
}

fn bad(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.into())
}

/// Read an answer's head from `r`, however its bytes arrive; what follows it (the body)
/// stays in `r`. At most `http1::MAX_HEAD` bytes and `http1::MAX_HEADERS` headers.
pub(super) fn read_head(r: &mut impl BufRead) -> std::io::Result<Head> {
    let mut raw: Vec<u8> = Vec::new();
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let before = raw.len();
        let take = avail.len().min(http1::MAX_HEAD - before);
        raw.extend_from_slice(&avail[..take]);
        // Parsed only once the bytes hold a blank line (an end of the head).
        let from = before.saturating_sub(3);
        let ended = raw[from..].windows(2).any(|w| w == b"\n\n") || raw[from..].windows(3).any(|w| w == b"\n\r\n");
        let parsed = if ended { parse_head(&raw)? } else { None };
        if let Some((len, head)) = parsed {
            r.consume(len - before);
            return Ok(head);
        }
        r.consume(take);
        if raw.len() >= http1::MAX_HEAD {
            return Err(bad("an over-long head"));
        }
    }
}

/// The head at the start of `raw` and its length, or `None` when it is not complete yet.
fn parse_head(raw: &[u8]) -> std::io::Result<Option<(usize, Head)>> {
    let mut headers = [httparse::EMPTY_HEADER; http1::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("a bad answer head: {}", e))),
    };
    let status = resp.code.ok_or_else(|| bad("no status"))?;
    let mut head = Head { status, content_type: String::new(), length: None, chunked: false };
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-type") {
            head.content_type = value.to_ascii_lowercase();
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| bad("a bad Content-Length"))?;
            if head.length.is_some_and(|m| m != n) {
                return Err(bad("two Content-Lengths"));
            }
            head.length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked |= value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(Some((len, head)))
}

/// The body of an answer with `head` as the bytes it carries: chunked (at most `limit`
/// bytes), `Content-Length` bytes, or up to the end of the connection.
pub(super) fn body<'r>(r: impl BufRead + 'r, head: &Head, limit: usize) -> Box<dyn BufRead + 'r> {
    if head.chunked {
        Box::new(BufReader::new(Chunked::new(r, limit)))
    } else if let Some(n) = head.length {
        Box::new(r.take(n as u64))
    } else {
        Box::new(r)
    }
}

/// A chunked body (`Transfer-Encoding: chunked`) as the bytes it carries, decoded by
/// `http1::Chunked`.
pub(super) struct Chunked<R: BufRead> {
    inner: R,
    decoder: http1::Chunked,
    limit: usize,
    /// Decoded bytes not read yet, from `at`.
    out: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    pub(super) fn new(inner: R, limit: usize) -> Chunked<R> {
        Chunked { inner, decoder: http1::Chunked::new(limit), limit, out: Vec::new(), at: 0, done: false }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.at < self.out.len() {
                let n = buf.len().min(self.out.len() - self.at);
                buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
                self.at += n;
                if self.at == self.out.len() {
                    self.out.clear();
                    self.at = 0;
                }
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let avail = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "a cut chunked body"));
            }
            let limit = self.limit;
            let (used, done) = self.decoder.feed(avail, &mut self.out).map_err(|e| match e {
                BodyError::TooLarge => bad(format!("a chunked body longer than {} bytes", limit)),
                BodyError::Unreadable => bad("a bad chunked body"),
            })?;
            self.inner.consume(used);
            self.done = done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes `step` at a time.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn trickle(bytes: &[u8], step: usize) -> BufReader<Trickle<'_>> {
        BufReader::with_capacity(step, Trickle { bytes, step })
    }

    #[test]
    fn heads_give_status_type_and_length() {
        let wire = b"HTTP/1.1 400 Bad Request\r\nContent-Type: Application/JSON\r\nContent-Length: 12\r\n\r\n";
        let h = read_head(&mut BufReader::new(&wire[..])).unwrap();
        assert_eq!(
            (h.status, h.content_type.as_str(), h.length, h.chunked),
            (400, "application/json", Some(12), false)
        );
    }

    #[test]
    fn a_head_split_anywhere_is_read_and_the_body_stays() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            let mut r = trickle(wire, step);
            let h = read_head(&mut r).unwrap();
            assert_eq!((h.status, h.chunked, h.length, h.is_stream()), (200, true, None, true), "step {}", step);
            let mut s = String::new();
            body(&mut r, &h, 100).read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello", "step {}", step);
        }
        // Bare LF line ends, as httparse takes them.
        let h = read_head(&mut trickle(b"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n", 2)).unwrap();
        assert_eq!((h.status, h.length), (404, Some(0)));
    }

    #[test]
    fn heads_too_big_or_bad_are_errors() {
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "v".repeat(http1::MAX_HEAD));
        let e = read_head(&mut trickle(big.as_bytes(), 4096)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        // Never more than the bound is held, even without a line end.
        let endless = vec![b'x'; 3 * http1::MAX_HEAD];
        assert!(read_head(&mut trickle(&endless, 1000)).is_err());
        let many: String = (0..=http1::MAX_HEADERS).map(|i| format!("X-{}: y\r\n", i)).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", many);
        assert!(read_head(&mut trickle(many.as_bytes(), 64)).is_err());
        for wire in [
            &b"HTTP/1.1 2x0 OK\r\n\r\n"[..],
            b"SPDY/3 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n",
        ] {
            assert!(read_head(&mut trickle(wire, 3)).is_err(), "{}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn chunked_bodies_in_pieces_are_read_whole_and_bounded() {
        let wire = b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\nTrailer: t\r\n\r\nnext";
        for step in 1..wire.len() {
            let mut r = trickle(wire, step);
            let mut s = String::new();
            Chunked::new(&mut r, 12).read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello, world", "step {}", step);
            // Nothing past the body was taken.
            let mut rest = String::new();
            r.read_to_string(&mut rest).unwrap();
            assert_eq!(rest, "next", "step {}", step);
        }
        let too_big = Chunked::new(trickle(wire, 4), 11).read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(too_big.kind(), std::io::ErrorKind::InvalidData);
        let huge = Chunked::new(&b"fffffffffffffffff\r\n"[..], usize::MAX).read_to_string(&mut String::new());
        assert!(huge.is_err());
        let cut = Chunked::new(&b"5\r\nhel"[..], 100).read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(cut.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(Chunked::new(&b"5\r\nhelloXY\r\n0\r\n\r\n"[..], 100).read_to_string(&mut String::new()).is_err());
    }
}
