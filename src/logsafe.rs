//! Strings from outside (a client's Host, Origin, tool name, session id; a child's output)
//! made safe for a log line: control characters (CR, LF, ESC, BEL, …) and the Unicode ones
//! that move or reorder text become visible escapes (`\n`, `\x1b`, `\u{202e}`), and the
//! length is bounded (`…` marks a cut). A forged log line or a terminal escape cannot reach
//! `mcpctl logs`.

use std::fmt;

/// How many characters of one value a log line shows by default.
pub const MAX_CHARS: usize = 200;

/// A value shown escaped and bounded: `log::warn!("Host `{}`", safe(h))`.
pub struct Safe<'a> {
    text: &'a str,
    max: usize,
}

/// `text` escaped, at most [`MAX_CHARS`] characters of it.
pub fn safe(text: &str) -> Safe<'_> {
    Safe { text, max: MAX_CHARS }
}

/// `text` escaped, without a length bound (a whole log message).
pub fn unbounded(text: &str) -> Safe<'_> {
    Safe { text, max: usize::MAX }
}

/// Characters that must not reach a log line as they are.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Safe<'_> {
    /// Runs of plain characters go out in one write each (every daemon log line passes
    /// here, the per-call line included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain = 0; // start of the run not yet written
        for (n, (i, c)) in self.text.char_indices().enumerate() {
            if n == self.max {
                f.write_str(&self.text[plain..i])?;
                return f.write_str("…");
            }
            if !needs_escape(c) {
                continue;
            }
            f.write_str(&self.text[plain..i])?;
            plain = i + c.len_utf8();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
        }
        f.write_str(&self.text[plain..])
    }
}

/// Log text as `mcpctl logs` prints it: lines kept, every other control character escaped
/// (a log written by an older version, or by hand, cannot drive the terminal either).
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(l) => format!("{}\n", unbounded(l.strip_suffix('\r').unwrap_or(l))),
            None => unbounded(l).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bounds_length() {
        assert_eq!(safe("evil\x1b]0;pwn\x07").to_string(), "evil\\x1b]0;pwn\\x07");
        assert_eq!(safe("a\r\nINFO fake").to_string(), "a\\r\\nINFO fake");
        assert_eq!(safe("x\u{202e}y\u{85}").to_string(), "x\\u{202e}y\\x85");
        assert_eq!(safe("héllo `ok`").to_string(), "héllo `ok`");
        let long = "é".repeat(500);
        let s = safe(&long).to_string();
        assert_eq!(s.chars().count(), MAX_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(printable(b"a\x1b[2J\r\nb\n"), "a\\x1b[2J\nb\n");
    }
}
