//! Rendering results for people (✓/✗ headlines, bullets, colour only on a terminal)
//! and for scripts (exactly one JSON object per command, success or failure).

use crate::error::{Error, Status};
use serde_json::{Map, Value};
use std::io::Write;

/// A command's result, ready to print.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    pub message: String,
    /// The command's fields in the JSON envelope.
    pub fields: Map<String, Value>,
    /// Text mode body under the headline.
    pub body: String,
    /// Text mode: print this instead of headline and body (a tool's text output).
    pub raw: Option<String>,
}

impl Report {
    pub fn new(status: Status, message: impl Into<String>) -> Report {
        Report { status, message: message.into(), fields: Map::new(), body: String::new(), raw: None }
    }
    pub fn field(mut self, k: &str, v: Value) -> Report {
        self.fields.insert(k.to_string(), v);
        self
    }
}

/// A failed command: the error, plus the fields known when it failed (server, tool, ...).
#[derive(Debug)]
pub struct Failure {
    pub error: Error,
    pub fields: Map<String, Value>,
    /// Text mode: extra text shown under the error (e.g. the tool's own error text).
    pub body: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure { error, fields: Map::new(), body: String::new() }
    }
}

impl Failure {
    pub fn with(mut self, k: &str, v: Value) -> Failure {
        self.fields.entry(k.to_string()).or_insert(v);
        self
    }
}

pub struct Printer {
    pub json: bool,
    pub color: bool,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        let color = !json && is_tty(1) && std::env::var_os("NO_COLOR").map(|v| v.is_empty()).unwrap_or(true);
        Printer { json, color }
    }

    fn mark(&self, ok: bool) -> String {
        match (ok, self.color) {
            (true, true) => "\x1b[32m✓\x1b[0m".into(),
            (false, true) => "\x1b[31m✗\x1b[0m".into(),
            (true, false) => "✓".into(),
            (false, false) => "✗".into(),
        }
    }

    /// Print a report; returns the exit code.
    pub fn report(&self, r: &Report) -> i32 {
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut obj = Map::new();
            obj.insert("status".into(), Value::String(r.status.word().into()));
            obj.insert("message".into(), Value::String(r.message.clone()));
            for (k, v) in &r.fields {
                obj.insert(k.clone(), v.clone());
            }
            let _ = writeln!(out, "{}", Value::Object(obj));
        } else if let Some(raw) = &r.raw {
            let _ = out.write_all(raw.as_bytes());
            if !raw.ends_with('\n') && !raw.is_empty() {
                let _ = out.write_all(b"\n");
            }
        } else {
            let ok = r.status != Status::Failure;
            let _ = writeln!(out, "{} {}", self.mark(ok), r.message);
            if !r.body.is_empty() {
                let _ = writeln!(out, "\n{}", r.body.trim_end());
            }
        }
        let _ = out.flush();
        r.status.exit_code()
    }

    /// Print a failure (JSON on stdout, text on stderr); returns the exit code.
    pub fn failure(&self, f: &Failure) -> i32 {
        let e = &f.error;
        if self.json {
            let mut obj = Map::new();
            obj.insert("status".into(), Value::String(e.status().word().into()));
            obj.insert("message".into(), Value::String(e.message.clone()));
            obj.insert("error".into(), Value::String(e.one_line()));
            if let Some(h) = &e.hint {
                obj.insert("hint".into(), Value::String(h.clone()));
            }
            if !e.details.is_empty() {
                obj.insert("details".into(), Value::Array(e.details.iter().cloned().map(Value::String).collect()));
            }
            for (k, v) in &f.fields {
                obj.entry(k.clone()).or_insert(v.clone());
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", Value::Object(obj));
            let _ = out.flush();
        } else {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{} {}", self.mark(false), e.one_line());
            for d in &e.details {
                let _ = writeln!(err, "    {}", d);
            }
            if !f.body.is_empty() {
                let _ = writeln!(err, "{}", f.body.trim_end());
            }
        }
        e.exit_code()
    }
}

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}
