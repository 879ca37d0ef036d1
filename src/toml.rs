//! A small TOML reader, enough for other clients' config files (Codex's `config.toml`):
//! tables and arrays of tables, dotted and quoted keys, basic and literal strings (also
//! multi-line), integers, floats, booleans, date-times (kept as text), arrays and inline
//! tables. It reads into `serde_json::Value`; errors name the line. It never writes TOML.

use serde_json::{Map, Value};

/// Parse a whole document into an object.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0, line: 1 };
    let mut root = Map::new();
    // The path of the table that `key = value` lines go into.
    let mut current: Vec<String> = Vec::new();
    loop {
        p.skip_ws_comments_newlines();
        if p.at_end() {
            break;
        }
        if p.peek() == Some(b'[') {
            let array = p.s.get(p.i + 1) == Some(&b'[');
            p.i += if array { 2 } else { 1 };
            p.skip_ws();
            let path = p.key_path()?;
            p.skip_ws();
            p.expect(b']')?;
            if array {
                p.expect(b']')?;
            }
            p.end_of_line()?;
            let line = p.line;
            let err = |m: &str| format!("line {}: {}", line, m);
            if array {
                let (last, parents) = path.split_last().expect("a key path is never empty");
                let parent = table_at(&mut root, parents, true).map_err(|m| err(&m))?;
                let slot = parent.entry(last.clone()).or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = slot else {
                    return Err(err(&format!("`{}` is not an array of tables", last)));
                };
                items.push(Value::Object(Map::new()));
            } else {
                table_at(&mut root, &path, true).map_err(|m| err(&m))?;
            }
            current = path;
            continue;
        }
        let path = p.key_path()?;
        p.skip_ws();
        p.expect(b'=')?;
        p.skip_ws();
        let value = p.value()?;
        p.end_of_line()?;
        let line = p.line;
        let table = table_at(&mut root, &current, false).map_err(|m| format!("line {}: {}", line, m))?;
        let (last, parents) = path.split_last().expect("a key path is never empty");
        let table = table_at(table, parents, true).map_err(|m| format!("line {}: {}", line, m))?;
        if table.insert(last.clone(), value).is_some() {
            return Err(format!("line {}: `{}` is defined twice", line, last));
        }
    }
    Ok(Value::Object(root))
}

/// The table at `path` below `root` (created when missing); the last element of an array
/// of tables when the path passes through one.
fn table_at<'a>(
    root: &'a mut Map<String, Value>,
    path: &[String],
    create: bool,
) -> Result<&'a mut Map<String, Value>, String> {
    let mut t = root;
    for k in path {
        if !t.contains_key(k) {
            if !create {
                return Err(format!("no table `{}`", k));
            }
            t.insert(k.clone(), Value::Object(Map::new()));
        }
        t = match t.get_mut(k) {
            Some(Value::Object(m)) => m,
            Some(Value::Array(a)) => match a.last_mut() {
                Some(Value::Object(m)) => m,
                _ => return Err(format!("`{}` is not a table", k)),
            },
            _ => return Err(format!("`{}` is not a table", k)),
        };
    }
    Ok(t)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err<T>(&self, m: &str) -> Result<T, String> {
        Err(format!("line {}: {}", self.line, m))
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected `{}`", b as char))
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.i += 1;
            }
        }
    }

    fn newline(&mut self) -> bool {
        match self.peek() {
            Some(b'\n') => {
                self.i += 1;
                self.line += 1;
                true
            }
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                self.i += 2;
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    fn skip_ws_comments_newlines(&mut self) {
        loop {
            self.skip_ws();
            self.skip_comment();
            if !self.newline() {
                break;
            }
        }
    }

    /// After a value or a header: spaces, a comment, then a line end (or the end).
    fn end_of_line(&mut self) -> Result<(), String> {
        self.skip_ws();
        self.skip_comment();
        if self.at_end() || self.newline() {
            Ok(())
        } else {
            self.err("expected the end of the line")
        }
    }

    /// `a.b."c d"`
    fn key_path(&mut self) -> Result<Vec<String>, String> {
        let mut path = vec![self.key()?];
        loop {
            self.skip_ws();
            if self.peek() != Some(b'.') {
                return Ok(path);
            }
            self.i += 1;
            self.skip_ws();
            path.push(self.key()?);
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(b'"') => self.basic_string(),
            Some(b'\'') => self.literal_string(),
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                    self.i += 1;
                }
                if self.i == start {
                    return self.err("expected a key");
                }
                Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'"') => self.basic_string().map(Value::String),
            Some(b'\'') => self.literal_string().map(Value::String),
            Some(b'[') => self.array(),
            Some(b'{') => self.inline_table(),
            Some(_) => self.scalar(),
            None => self.err("expected a value"),
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws_comments_newlines();
            if self.peek() == Some(b']') {
                self.i += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_ws_comments_newlines();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {}
                _ => return self.err("expected `,` or `]` in an array"),
            }
        }
    }

    fn inline_table(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut t = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(t));
        }
        loop {
            self.skip_ws();
            let path = self.key_path()?;
            self.skip_ws();
            self.expect(b'=')?;
            self.skip_ws();
            let v = self.value()?;
            let (last, parents) = path.split_last().expect("a key path is never empty");
            let inner = table_at(&mut t, parents, true).map_err(|m| format!("line {}: {}", self.line, m))?;
            inner.insert(last.clone(), v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(t));
                }
                _ => return self.err("expected `,` or `}` in an inline table"),
            }
        }
    }

    /// A bare value: a boolean, a number, or a date-time (kept as its text).
    fn scalar(&mut self) -> Result<Value, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            // A date-time may hold one space between its date and time.
            let spaced_time =
                c == b' ' && self.i - start == 10 && self.s.get(self.i + 1).map(u8::is_ascii_digit).unwrap_or(false);
            if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_' | b':') || spaced_time {
                self.i += 1;
            } else {
                break;
            }
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        match word.as_str() {
            "" => return self.err("expected a value"),
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "inf" | "+inf" | "-inf" | "nan" | "+nan" | "-nan" => return Ok(Value::String(word)),
            _ => {}
        }
        let digits = word.replace('_', "");
        if let Some(hex) = digits.strip_prefix("0x") {
            if let Ok(n) = i64::from_str_radix(hex, 16) {
                return Ok(Value::from(n));
            }
        }
        if let Ok(n) = digits.parse::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(f) = digits.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Ok(Value::Number(n));
            }
        }
        if word.as_bytes()[0].is_ascii_digit() && word.contains('-') || word.contains(':') {
            return Ok(Value::String(word));
        }
        self.err(&format!("`{}` is not a value (strings need quotes)", word))
    }

    fn basic_string(&mut self) -> Result<String, String> {
        let multi = self.s[self.i..].starts_with(b"\"\"\"");
        self.i += if multi { 3 } else { 1 };
        if multi {
            self.newline();
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None => return self.err("a string is not closed"),
                Some(b'"') if !multi => {
                    self.i += 1;
                    break;
                }
                Some(b'"') if self.s[self.i..].starts_with(b"\"\"\"") => {
                    self.i += 3;
                    // Up to two quotes right before the closing ones belong to the string.
                    for _ in 0..2 {
                        if self.peek() == Some(b'"') {
                            out.push(b'"');
                            self.i += 1;
                        }
                    }
                    break;
                }
                Some(b'\n') if !multi => return self.err("a string is not closed on its line"),
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| format!("line {}: a string is not closed", self.line))?;
                    self.i += 1;
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'u' | b'U' => {
                            let n = if c == b'u' { 4 } else { 8 };
                            let hex = self.s.get(self.i..self.i + n).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(&String::from_utf8_lossy(hex), 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("line {}: bad \\u escape", self.line))?;
                            self.i += n;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                        }
                        b' ' | b'\t' | b'\r' | b'\n' if multi => {
                            // A line-ending backslash: the line break and the white space after it go.
                            self.i -= 1;
                            loop {
                                match self.peek() {
                                    Some(b' ' | b'\t' | b'\r') => self.i += 1,
                                    Some(b'\n') => {
                                        self.i += 1;
                                        self.line += 1;
                                    }
                                    _ => break,
                                }
                            }
                        }
                        other => return self.err(&format!("unknown escape `\\{}`", other as char)),
                    }
                }
                Some(c) => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| format!("line {}: a string is not UTF-8", self.line))
    }

    fn literal_string(&mut self) -> Result<String, String> {
        let multi = self.s[self.i..].starts_with(b"'''");
        self.i += if multi { 3 } else { 1 };
        if multi {
            self.newline();
        }
        let start = self.i;
        let end = loop {
            match self.peek() {
                None => return self.err("a string is not closed"),
                Some(b'\'') if !multi => {
                    let end = self.i;
                    self.i += 1;
                    break end;
                }
                Some(b'\'') if self.s[self.i..].starts_with(b"'''") => {
                    let mut end = self.i;
                    self.i += 3;
                    for _ in 0..2 {
                        if self.peek() == Some(b'\'') {
                            self.i += 1;
                            end += 1;
                        }
                    }
                    break end;
                }
                Some(b'\n') if !multi => return self.err("a string is not closed on its line"),
                Some(c) => {
                    if c == b'\n' {
                        self.line += 1;
                    }
                    self.i += 1;
                }
            }
        };
        String::from_utf8(self.s[start..end].to_vec()).map_err(|_| format!("line {}: a string is not UTF-8", self.line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codex_style_config() {
        let text = r#"
# Codex
model = "o3"
approval_policy = 'on-request'
notify = ["notify-send", "done"]   # a comment

[mcp_servers.fs]
command = "npx"
args = [
  "-y",
  "@modelcontextprotocol/server-filesystem", # trailing comma next
  "/tmp",
]
env = { "API_KEY" = "${KEY}", DEBUG = "1" }
startup_timeout_sec = 20
tool_timeout_sec = 60.5
enabled = true

[mcp_servers."my server".env]
A = """
multi
line"""
B = 'C:\path'
when = 1979-05-27T07:32:00Z
big = 1_000
hex = 0xff

[[profiles]]
name = "a"
[[profiles]]
name = "b"
"#;
        let v = parse(text).unwrap();
        assert_eq!(v["model"], "o3");
        assert_eq!(v["notify"], json!(["notify-send", "done"]));
        let fs = &v["mcp_servers"]["fs"];
        assert_eq!(fs["args"], json!(["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]));
        assert_eq!(fs["env"], json!({"API_KEY": "${KEY}", "DEBUG": "1"}));
        assert_eq!(fs["tool_timeout_sec"], json!(60.5));
        assert_eq!(fs["enabled"], json!(true));
        let env = &v["mcp_servers"]["my server"]["env"];
        assert_eq!(env["A"], "multi\nline");
        assert_eq!(env["B"], "C:\\path");
        assert_eq!(env["when"], "1979-05-27T07:32:00Z");
        assert_eq!(env["big"], 1000);
        assert_eq!(env["hex"], 255);
        assert_eq!(v["profiles"], json!([{"name": "a"}, {"name": "b"}]));
    }

    #[test]
    fn errors_name_the_line() {
        assert!(parse("a = 1\nb = unquoted\n").unwrap_err().starts_with("line 2:"));
        assert!(parse("a = \"open\nb = 1").unwrap_err().contains("not closed"));
        assert!(parse("a = 1\na = 2\n").unwrap_err().contains("defined twice"));
        assert!(parse("[t]\nx = 1 y\n").unwrap_err().contains("end of the line"));
        assert!(parse("x = [1, 2").is_err());
    }
}
