//! The small HTTP/1.1 client of the 2026-07-28 requests: it owns its `TcpStream`, so that
//! another thread can shut the connection down (that is how such a request is cancelled);
//! reads have a deadline for the whole answer, and the answer's head and body are bounded.

use super::stdin::read_line;
use std::io::{BufRead, Read};
use std::net::TcpStream;
use std::time::Instant;

/// Bytes of an answer's head.
const MAX_HEAD: usize = 64 * 1024;

/// `Read` with a deadline for the whole of it (each read waits at most what is left).
pub(super) struct Deadlined {
    pub(super) stream: TcpStream,
    pub(super) until: Instant,
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

/// A chunked body (`Transfer-Encoding: chunked`) as the bytes it carries.
pub(super) struct Chunked<R: BufRead> {
    pub(super) inner: R,
    pub(super) left: usize,
    pub(super) done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut size = Vec::new();
            if read_line(&mut self.inner, 1024, &mut size)? != Some(true) {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a cut or bad chunk size"));
            }
            let text = String::from_utf8_lossy(&size);
            let hex = text.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(hex, 16)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "a bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let n = avail.len().min(buf.len()).min(self.left);
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.inner.consume(n);
        self.left -= n;
        if self.left == 0 {
            // The CRLF after the chunk.
            let mut crlf = Vec::new();
            read_line(&mut self.inner, 2, &mut crlf)?;
        }
        Ok(n)
    }
}

/// The status line and headers of an answer.
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) length: Option<usize>,
    pub(super) chunked: bool,
}

pub(super) fn read_head(r: &mut impl BufRead) -> std::io::Result<Head> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut line = Vec::new();
    let mut total = 0;
    let mut head = Head { status: 0, content_type: String::new(), length: None, chunked: false };
    let mut first = true;
    loop {
        match read_line(r, MAX_HEAD, &mut line)? {
            None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Some(false) => return Err(bad("an over-long header")),
            Some(true) => {}
        }
        total += line.len();
        if total > MAX_HEAD {
            return Err(bad("an over-long head"));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        if first {
            first = false;
            head.status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
            continue;
        }
        if text.is_empty() {
            return Ok(head);
        }
        let Some((k, v)) = text.split_once(':') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "content-type" => head.content_type = v.to_ascii_lowercase(),
            "content-length" => head.length = v.parse().ok(),
            "transfer-encoding" => head.chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn chunked_bodies_are_read_whole() {
        let wire = b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n";
        let mut c = Chunked { inner: BufReader::with_capacity(3, &wire[..]), left: 0, done: false };
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world");
        let mut cut = Chunked { inner: BufReader::new(&b"5\r\nhel"[..]), left: 0, done: false };
        assert!(cut.read_to_string(&mut String::new()).is_err());
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
}
