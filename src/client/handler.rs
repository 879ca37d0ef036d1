//! The shell client's handler of what a server sends: ping and `roots/list` answered,
//! sampling and elicitation refused, progress notifications shown on stderr.

use crate::jsonrpc;
use crate::peer::{Handler, Inbound, Peer};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The shell client's handler: answer ping and roots/list, refuse sampling and elicitation.
pub fn cli_handler(project_root: &Path) -> Handler {
    let root = project_root.to_path_buf();
    Arc::new(move |peer: &Arc<Peer>, msg: Inbound| match msg {
        Inbound::Request { id, method, .. } => {
            let outcome = match method.as_str() {
                "ping" => Ok(json!({})),
                "roots/list" => Ok(roots(&root)),
                "sampling/createMessage" | "elicitation/create" => Err(jsonrpc::error_object(
                    jsonrpc::METHOD_NOT_FOUND,
                    &format!("mcpctl's shell client does not support {}", method),
                )),
                _ => Err(jsonrpc::error_object(jsonrpc::METHOD_NOT_FOUND, &format!("{} is not supported", method))),
            };
            let _ = peer.respond(id, outcome);
        }
        Inbound::Notification { method, params } => match method.as_str() {
            "notifications/progress" if progress_shown() => show_progress(&params.unwrap_or(Value::Null)),
            "notifications/message" => {
                let p = params.unwrap_or(Value::Null);
                log::info!(
                    "[{}] {}: {}",
                    peer.name,
                    p["level"].as_str().unwrap_or("info"),
                    p.get("data").unwrap_or(&Value::Null)
                );
            }
            _ => log::debug!("[{}] notification {}", peer.name, method),
        },
    })
}

/// Whether `notifications/progress` are shown on stderr ([`progress`]).
static PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether a progress line is open on a terminal (overwritten by the next, ended by [`progress`]).
static PROGRESS_LINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The progress token `call` sends (one request at a time asks for progress).
pub const PROGRESS_TOKEN: &str = "mcpctl-progress";

/// Show (or stop showing) progress notifications on stderr; stopping ends an open
/// terminal line.
pub fn progress(on: bool) {
    use std::sync::atomic::Ordering;
    PROGRESS.store(on, Ordering::SeqCst);
    if !on && PROGRESS_LINE.swap(false, Ordering::SeqCst) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

fn progress_shown() -> bool {
    PROGRESS.load(std::sync::atomic::Ordering::SeqCst)
}

/// `[progress] 3/10 message`: one line, or on a terminal one line rewritten in place.
fn show_progress(p: &Value) {
    let line = progress_line(p);
    let mut err = std::io::stderr().lock();
    if crate::output::is_tty(2) {
        PROGRESS_LINE.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = write!(err, "\r\x1b[K{}", line);
    } else {
        let _ = writeln!(err, "{}", line);
    }
    let _ = err.flush();
}

/// The text of a `notifications/progress`: `[progress] 3/10 message` (`3` without a total,
/// `2.5/10` for fractions; control characters of the server's message are dropped).
pub fn progress_line(p: &Value) -> String {
    let num = |v: &Value| match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{}", (f * 100.0).round() / 100.0),
        None => "?".into(),
    };
    let mut line = format!("[progress] {}", num(&p["progress"]));
    if let Some(t) = p.get("total").filter(|t| t.is_number()) {
        line.push_str(&format!("/{}", num(t)));
    }
    if let Some(m) = p["message"].as_str().filter(|m| !m.trim().is_empty()) {
        let m: String = m.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        line.push(' ');
        line.push_str(m.trim());
    }
    line
}

/// The answer to `roots/list`: the project root.
pub(super) fn roots(root: &Path) -> Value {
    json!({"roots": [{"uri": file_uri(root), "name": root_name(root)}]})
}

pub fn file_uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn root_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn progress_lines() {
        let l = |v: Value| progress_line(&v);
        assert_eq!(l(json!({"progress": 3, "total": 10, "message": "copying"})), "[progress] 3/10 copying");
        assert_eq!(l(json!({"progress": 3})), "[progress] 3");
        assert_eq!(l(json!({"progress": 0.255, "total": 1.0})), "[progress] 0.26/1");
        assert_eq!(l(json!({"progress": 1, "message": "a\x1b[2Jb\n"})), "[progress] 1 a [2Jb");
    }
}
