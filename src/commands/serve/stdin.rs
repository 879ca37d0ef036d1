//! Reading the client's messages from stdin: newline-delimited, each line bounded by
//! `MCPCTL_MAX_LINE` (a longer one is read to its end and answered with a parse error).

use super::Bridge;
use crate::jsonrpc;
use serde_json::Value;
use std::io::BufRead;
use std::sync::Arc;

impl Bridge {
    pub(super) fn read_stdin(self: &Arc<Self>) {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        loop {
            match read_line(&mut input, self.max_line, &mut line) {
                Ok(None) => {
                    log::debug!("stdin closed");
                    return;
                }
                Ok(Some(false)) => self.emit(&jsonrpc::error_response(
                    Value::Null,
                    jsonrpc::PARSE_ERROR,
                    &format!("Parse error: a line longer than {} bytes (MCPCTL_MAX_LINE)", self.max_line),
                )),
                Ok(Some(true)) => self.take_line(&line),
                Err(e) => {
                    log::warn!("reading stdin failed: {}", e);
                    return;
                }
            }
        }
    }
}

/// Read one line (without its `\n`) into `buf`, at most `max` bytes: `Ok(None)` at the end,
/// `Ok(Some(false))` for a longer line (read to its end and dropped), `Ok(Some(true))` else.
pub(super) fn read_line(r: &mut impl BufRead, max: usize, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any { Some(!too_long) } else { None });
        }
        any = true;
        let (chunk, used, end) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if end {
            return Ok(Some(!too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_the_rest_is_read() {
        let mut r = std::io::BufReader::with_capacity(4, &b"ab\nabcdefgh\n\nxyz"[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"ab");
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(false));
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert!(buf.is_empty());
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, b"xyz");
        assert_eq!(read_line(&mut r, 4, &mut buf).unwrap(), None);
    }
}
