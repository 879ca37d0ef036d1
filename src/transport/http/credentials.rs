//! The credentials of a Streamable HTTP server: a `bearerTokenFile` only its owner can read,
//! and a `headersHelper` command run with a deadline; no value ever reaches a log or an error.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// The largest output of a `headersHelper` and the largest `bearerTokenFile` read.
const MAX_CREDENTIALS: usize = 64 * 1024;

/// The headers a server's credentials give: `Authorization: Bearer <token>` from its
/// `bearerTokenFile`, then what its `headersHelper` prints (which wins). No value is ever
/// put in a log line or an error.
pub(super) fn auth_headers(
    server: &str,
    auth: &crate::config::HttpAuth,
    root: &std::path::Path,
    deadline: Duration,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(file) = &auth.bearer_token_file {
        let token = read_token_file(server, &root.join(file))?;
        out.push(("Authorization".into(), format!("Bearer {}", token)));
    }
    if let Some(cmd) = &auth.headers_helper {
        let text = run_helper(server, cmd, root, deadline)?;
        let helper = parse_helper_output(&text).map_err(|why| {
            Error::config(format!("server `{}`: the output of `headersHelper` {}", server, why))
                .hint("print a JSON object of headers, or `Name: value` lines, on stdout")
        })?;
        out.retain(|(k, _)| !helper.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)));
        out.extend(helper);
    }
    if !out.is_empty() {
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        log::debug!("server `{}`: credentials give the headers {}", server, names.join(", "));
    }
    Ok(out)
}

/// A bearer token from a file only its owner can read (as the gateway's token files).
fn read_token_file(server: &str, path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let at = |what: String| Error::config(format!("server `{}`: `bearerTokenFile` {}", server, what));
    let meta = std::fs::metadata(path).map_err(|e| at(format!("{}: {}", path.display(), e)))?;
    if meta.mode() & 0o077 != 0 {
        return Err(at(format!("{} can be read by others (mode {:o})", path.display(), meta.mode() & 0o777))
            .hint(format!("chmod 600 {}", path.display())));
    }
    if meta.len() > MAX_CREDENTIALS as u64 {
        return Err(at(format!("{} is larger than {} bytes", path.display(), MAX_CREDENTIALS)));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("{}: {}", path.display(), e)))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(at(format!("{} is empty", path.display())));
    }
    if token.chars().any(|c| c.is_control()) {
        return Err(at(format!("{} holds more than one line; it must hold the token alone", path.display())));
    }
    Ok(token.to_string())
}

/// Run a `headersHelper` with `sh -c` in the project root, in a process group of its own,
/// within `deadline` (killed, group and all, at the deadline): its stdout, or an error with
/// its last stderr lines.
fn run_helper(server: &str, cmd: &str, root: &std::path::Path, deadline: Duration) -> Result<String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let started = std::time::Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::config(format!("server `{}`: cannot run `headersHelper`: {}", server, e)))?;
    let pid = child.id();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_CREDENTIALS as u64 + 1).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= deadline || crate::signals::stopping() => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    if status.is_none() {
        // The helper leads its own process group.
        let _ = crate::sys::signal_group(pid, libc::SIGKILL);
        let _ = child.wait();
    }
    // A process the helper left in the background may hold the pipes open: it gets a
    // second, then its group (still alive, so still the helper's) is killed.
    let collect = |rx: &std::sync::mpsc::Receiver<Vec<u8>>| match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(b) => b,
        Err(_) => {
            // A member of the helper's group holds the pipe, so the group is the helper's.
            let _ = crate::sys::signal_group(pid, libc::SIGKILL);
            rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default()
        }
    };
    let stdout = collect(&out);
    let stderr = String::from_utf8_lossy(&collect(&err)).into_owned();
    let tail: Vec<String> = {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].iter().map(|l| format!("headersHelper: {}", l)).collect()
    };
    let fail = |what: String| {
        let e = Error::config(format!("server `{}`: `headersHelper` {}", server, what))
            .hint("run the command in the project root to see what it does");
        if tail.is_empty() {
            e
        } else {
            e.details(tail.clone())
        }
    };
    match status {
        None => return Err(fail(format!("did not finish within {}", crate::peer::human_duration(deadline)))),
        Some(st) if !st.success() => {
            return Err(fail(match st.code() {
                Some(c) => format!("failed (exit status {})", c),
                None => "was killed by a signal".into(),
            }))
        }
        Some(_) => {}
    }
    if stdout.len() > MAX_CREDENTIALS {
        return Err(fail(format!("printed more than {} bytes", MAX_CREDENTIALS)));
    }
    String::from_utf8(stdout).map_err(|_| fail("printed something that is not UTF-8".into()))
}

/// A helper's stdout as headers: a JSON object of strings, or `Name: value` lines. The
/// error never quotes the output (it holds secrets).
fn parse_helper_output(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|_| "is not a valid JSON object".to_string())?;
        for (k, v) in v.as_object().into_iter().flatten() {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("gives `{}` a value that is not a string", k)),
            };
            out.push((k.clone(), v));
        }
    } else {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (k, v) =
                line.split_once(':').ok_or_else(|| format!("has a line {} that is not `Name: value`", i + 1))?;
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if out.is_empty() {
        return Err("is empty".into());
    }
    for (k, v) in &out {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if k.is_empty() || !k.chars().all(token) {
            return Err(format!("names a header `{}` that is not a valid header name", k.escape_default()));
        }
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("gives `{}` a value with control characters", k));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_output_is_json_or_lines_and_errors_never_quote_it() {
        assert_eq!(
            parse_helper_output("{\"Authorization\": \"Bearer x\", \"X-N\": 1}\n").unwrap(),
            vec![("Authorization".to_string(), "Bearer x".to_string()), ("X-N".to_string(), "1".to_string())]
        );
        assert_eq!(
            parse_helper_output("Authorization: Bearer a:b\n\nX-Team: t\n").unwrap(),
            vec![("Authorization".to_string(), "Bearer a:b".to_string()), ("X-Team".to_string(), "t".to_string())]
        );
        for bad in ["", "sekrit-no-colon", "{\"a\": [1]}", "Bad Name: sekrit", "{oops sekrit"] {
            let e = parse_helper_output(bad).unwrap_err();
            assert!(!e.contains("sekrit"), "{}", e);
        }
    }
}
