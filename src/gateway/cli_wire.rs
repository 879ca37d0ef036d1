//! The wire shape of `POST /cli/call`, the daemon's endpoint for `mcpctl call`: the request
//! and the answer, both sides of it (the shell client builds and reads them with these
//! types; the daemon reads and writes them). Versioned by `"v"`: this is version 1, and a
//! request of any other version (or none) is refused with HTTP 400 and the reason, so that
//! a client of another version falls back to MCP. See docs/gateway.md, "The CLI endpoint".

use crate::cli::ToolArg;
use crate::error::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of the shape defined here.
pub const VERSION: u64 = 1;

/// One tool call: `{"v": 1, "server": …, "tool": …, "args": [...], "timeout_ms": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    pub v: u64,
    pub server: String,
    pub tool: String,
    /// The arguments as typed, typed by the daemon with the tool's cached schema exactly
    /// as `mcpctl call` types them itself.
    #[serde(default)]
    pub args: Vec<Arg>,
    /// How long the daemon waits for the answer (default: the server's timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// One argument as typed on the command line (values only: the shell client reads any
/// `@file` or `-` itself, and the daemon refuses them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Arg {
    /// `--name value`, or `--name` alone (`value` null or absent).
    Pair {
        name: String,
        #[serde(default)]
        value: Option<String>,
    },
    /// `--var key=value`.
    Var { text: String },
    /// `--json '{...}'`.
    Json { text: String },
}

impl Arg {
    /// The wire form of an argument; `None` for one of our options given after the tool's
    /// name (settled by the tool's schema on the client, never sent).
    pub fn from_typed(a: &ToolArg) -> Option<Arg> {
        Some(match a {
            ToolArg::Pair(name, value) => Arg::Pair { name: name.clone(), value: value.clone() },
            ToolArg::Var(text) => Arg::Var { text: text.clone() },
            ToolArg::Json(text) => Arg::Json { text: text.clone() },
            ToolArg::Late(..) => return None,
        })
    }

    pub fn into_typed(self) -> ToolArg {
        match self {
            Arg::Pair { name, value } => ToolArg::Pair(name, value),
            Arg::Var { text } => ToolArg::Var(text),
            Arg::Json { text } => ToolArg::Json(text),
        }
    }
}

/// The answer (HTTP 200): `{"v": 1, "result": …}` or `{"v": 1, "error": …}`, with the
/// `arguments` sent to the tool once they were made. `error` is an error as
/// [`Error::to_json`] writes it (status word, message, hint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallAnswer {
    /// Absent (0) in the answers of a daemon older than the versioned shape.
    #[serde(default)]
    pub v: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
}

impl CallAnswer {
    pub fn result(result: Value, arguments: Value) -> CallAnswer {
        CallAnswer { v: VERSION, result: Some(result), error: None, arguments: Some(arguments) }
    }

    pub fn error(e: &Error, arguments: Option<Value>) -> CallAnswer {
        CallAnswer { v: VERSION, result: None, error: Some(e.to_json()), arguments }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Read a request body: the version first (so that a request of another version is
/// refused as that, whatever its shape), then the fields. `Err`: why, in one line.
pub fn parse_request(body: &[u8]) -> Result<CallRequest, Error> {
    let bad = |why: String| {
        Error::protocol(format!("bad /cli/call request: {}", why))
            .hint("send it with the mcpctl binary of the daemon (see docs/gateway.md, \"The CLI endpoint\")")
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON ({})", e)))?;
    match v.get("v") {
        Some(n) if n.as_u64() == Some(VERSION) => {}
        Some(n) => {
            return Err(bad(format!(
                "version {} is not spoken here (this daemon speaks version {})",
                crate::logsafe::safe(&n.to_string()),
                VERSION
            )))
        }
        None => return Err(bad(format!("`v` is missing (this daemon speaks version {})", VERSION))),
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_round_trip_in_the_documented_shape() {
        let r = CallRequest {
            v: VERSION,
            server: "fx".into(),
            tool: "echo".into(),
            args: vec![
                Arg::Pair { name: "text".into(), value: Some("x".into()) },
                Arg::Pair { name: "loud".into(), value: None },
                Arg::Var { text: "n=1".into() },
                Arg::Json { text: "{}".into() },
            ],
            timeout_ms: Some(5000),
        };
        let text = serde_json::to_value(&r).unwrap();
        assert_eq!(
            text,
            json!({"v": 1, "server": "fx", "tool": "echo", "timeout_ms": 5000, "args": [
                {"kind": "pair", "name": "text", "value": "x"},
                {"kind": "pair", "name": "loud", "value": null},
                {"kind": "var", "text": "n=1"},
                {"kind": "json", "text": "{}"},
            ]})
        );
        assert_eq!(parse_request(text.to_string().as_bytes()).unwrap(), r);
        let typed: Vec<ToolArg> = r.args.iter().cloned().map(Arg::into_typed).collect();
        let back: Vec<Arg> = typed.iter().filter_map(Arg::from_typed).collect();
        assert_eq!(back, r.args);
        assert_eq!(Arg::from_typed(&ToolArg::Late("timeout".into(), None)), None);
    }

    #[test]
    fn other_versions_and_shapes_are_refused_with_the_reason() {
        let e = |body: &str| parse_request(body.as_bytes()).unwrap_err().message;
        assert!(e(r#"{"server": "fx", "tool": "echo"}"#).contains("`v` is missing"));
        assert!(e(r#"{"v": 2, "server": "fx", "tool": "echo"}"#).contains("version 2 is not spoken here"));
        assert!(e(r#"{"v": "1", "server": "fx", "tool": "echo"}"#).contains("version \"1\""));
        assert!(e(r#"{"v": 1, "tool": "echo"}"#).contains("server"));
        assert!(e(r#"{"v": 1, "server": "fx", "tool": "echo", "args": [{"Pair": ["text", "x"]}]}"#)
            .contains("bad /cli/call request"));
        assert!(
            e(r#"{"v": 1, "server": "fx", "tool": "echo", "args": [{"kind": "late", "name": "x"}]}"#).contains("late")
        );
        assert!(e("{").contains("not JSON"));
        let ok = parse_request(br#"{"v": 1, "server": "fx", "tool": "echo"}"#).unwrap();
        assert!(ok.args.is_empty() && ok.timeout_ms.is_none());
    }
}
