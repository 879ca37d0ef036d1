//! JSON-RPC 2.0 message shapes: classifying what arrives and building what we send.

use crate::error::{Error, Kind};
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP's "resource not found".
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// Server-defined: the upstream server is not available (crashed, restarting, failed).
pub const SERVER_UNAVAILABLE: i64 = -32000;
/// Server-defined: the request timed out upstream.
pub const REQUEST_TIMEOUT: i64 = -32001;
/// MCP 2026-07-28: the HTTP headers do not match the body (or a required one is missing).
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the request needs a client capability the client did not declare.
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the server does not speak the request's protocol version
/// (`data.supported` lists the versions it does).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// `_meta` keys of the 2026-07-28 per-request envelope.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// A 2026-07-28 request's own log level (`notifications/message` at it and above only).
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// Whether `e` is one of the errors only a 2026-07-28 (modern) server sends: it proves the
/// server's era, so a client corrects its request instead of falling back to `initialize`.
pub fn is_modern_error(e: &Value) -> bool {
    matches!(
        e.get("code").and_then(Value::as_i64),
        Some(HEADER_MISMATCH | MISSING_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION)
    )
}

/// The protocol version a modern request declares in `params._meta`, if it is one.
pub fn modern_version(params: Option<&Value>) -> Option<&str> {
    params?.get("_meta")?.get(META_PROTOCOL_VERSION)?.as_str()
}

/// One message, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request { id: Value, method: String, params: Option<Value> },
    Notification { method: String, params: Option<Value> },
    Response { id: Value, outcome: Result<Value, Value> },
}

impl Message {
    /// Classify a parsed JSON value; `Err` carries what is wrong with it.
    pub fn from_value(v: Value) -> Result<Message, &'static str> {
        let Value::Object(mut m) = v else { return Err("a JSON-RPC message must be an object") };
        if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err("missing \"jsonrpc\": \"2.0\"");
        }
        let params = m.remove("params");
        match (m.remove("method"), m.remove("id")) {
            (Some(Value::String(method)), Some(id)) => {
                if !valid_id(&id) {
                    return Err("the id must be a string or an integer");
                }
                Ok(Message::Request { id, method, params })
            }
            (Some(Value::String(method)), None) => Ok(Message::Notification { method, params }),
            (Some(_), _) => Err("the method must be a string"),
            (None, Some(id)) => {
                if let Some(r) = m.remove("result") {
                    Ok(Message::Response { id, outcome: Ok(r) })
                } else if let Some(e) = m.remove("error") {
                    Ok(Message::Response { id, outcome: Err(e) })
                } else {
                    Err("a response needs a result or an error")
                }
            }
            (None, None) => Err("neither a request, a notification nor a response"),
        }
    }

    pub fn parse(text: &str) -> Result<Message, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {}", e))?;
        Message::from_value(v).map_err(str::to_string)
    }

    pub fn to_value(&self) -> Value {
        match self {
            Message::Request { id, method, params } => request(id.clone(), method, params.clone()),
            Message::Notification { method, params } => notification(method, params.clone()),
            Message::Response { id, outcome: Ok(r) } => response(id.clone(), r.clone()),
            Message::Response { id, outcome: Err(e) } => json!({"jsonrpc": "2.0", "id": id, "error": e}),
        }
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

pub fn request(id: Value, method: &str, params: Option<Value>) -> Value {
    match params {
        Some(p) => json!({"jsonrpc": "2.0", "id": id, "method": method, "params": p}),
        None => json!({"jsonrpc": "2.0", "id": id, "method": method}),
    }
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    match params {
        Some(p) => json!({"jsonrpc": "2.0", "method": method, "params": p}),
        None => json!({"jsonrpc": "2.0", "method": method}),
    }
}

/// A request as one line of bytes, written straight from its parts (no tree built).
pub fn request_line(id: u64, method: &str, params: Option<&Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"method\":");
    let _ = serde_json::to_writer(&mut out, method);
    if let Some(p) = params {
        out.extend_from_slice(b",\"params\":");
        let _ = serde_json::to_writer(&mut out, p);
    }
    out.extend_from_slice(b"}\n");
    out
}

/// A response as bytes, written straight from its parts: `Ok(the result as JSON text)`
/// or `Err(error object)`.
pub fn response_bytes(id: &Value, outcome: Result<&str, &Value>) -> Vec<u8> {
    let raw_len = outcome.map(str::len).unwrap_or(64);
    let mut out = Vec::with_capacity(raw_len + 64);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    let _ = serde_json::to_writer(&mut out, id);
    match outcome {
        Ok(raw) => {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(raw.as_bytes());
        }
        Err(e) => {
            out.extend_from_slice(b",\"error\":");
            let _ = serde_json::to_writer(&mut out, e);
        }
    }
    out.push(b'}');
    out
}

pub fn response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error_object(code: i64, message: &str) -> Value {
    json!({"code": code, "message": message})
}

pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error_object(code, message)})
}

/// The message of a JSON-RPC error object, for humans.
/// The error a waiter gets when the connection failed before an answer came (the child
/// exited, the HTTP request could not be sent): made by us, not sent by the server.
pub fn unavailable(reason: &str) -> Value {
    json!({"code": SERVER_UNAVAILABLE, "message": reason, "data": {"mcpctl": "connection"}})
}

/// [`unavailable`] for a connection that closed, with the last lines the server wrote on
/// stderr kept apart in `data`, so that what was waiting can be named between the two.
pub fn closed(reason: &str, stderr: &str) -> Value {
    if stderr.is_empty() {
        return unavailable(reason);
    }
    let mut v = unavailable(&format!("{}; last stderr: {}", reason, stderr));
    v["data"]["reason"] = reason.into();
    v["data"]["stderr"] = stderr.into();
    v
}

/// The `message` of a JSON-RPC error object.
pub fn error_message(e: &Value) -> &str {
    e.get("message").and_then(Value::as_str).unwrap_or("the connection failed")
}

/// [`unavailable`] for an error whose kind is known (a connection that could not be made, a
/// refused credential): the kind, the message and its hint apart, and the HTTP status that
/// refused travel in `data`.
pub fn connection_failed(e: &Error) -> Value {
    let mut v = unavailable(&e.one_line());
    v["data"]["kind"] = e.kind.word().into();
    v["data"]["reason"] = e.message.as_str().into();
    if let Some(h) = &e.hint {
        v["data"]["hint"] = h.as_str().into();
    }
    if let Some(s) = e.http_status {
        v["data"]["http_status"] = s.into();
    }
    v
}

/// An HTTP status that refused a request, with no JSON-RPC error in its body: made by us,
/// a connection failure like [`unavailable`] that also says which status came.
pub fn http_refused(reason: &str, status: u16) -> Value {
    json!({
        "code": SERVER_UNAVAILABLE,
        "message": reason,
        "data": {"mcpctl": "connection", "status": status, "kind": Kind::Server.word()},
    })
}

/// The HTTP status of an error made by [`http_refused`].
pub fn refused_status(e: &Value) -> Option<u16> {
    if !is_unavailable(e) {
        return None;
    }
    e["data"]["status"].as_u64().and_then(|s| u16::try_from(s).ok())
}

/// Whether `e` was made by `unavailable` (no answer came from the server).
pub fn is_unavailable(e: &Value) -> bool {
    e.get("code").and_then(Value::as_i64) == Some(SERVER_UNAVAILABLE) && e["data"]["mcpctl"] == "connection"
}

/// A connection failure while waiting for `what` (an error made by [`unavailable`],
/// [`connection_failed`] or [`http_refused`]) as an `Error` of its kind, worded as one:
/// "server `x` exited (status 3) during `tools/call`; last stderr: ...". A connection that
/// was never made is not "during" anything.
pub fn failed_during(e: &Value, what: &str) -> Error {
    let data = &e["data"];
    let reason = data["reason"].as_str().unwrap_or_else(|| error_message(e));
    // Made by `unavailable` alone: the connection was lost (the child exited, the stream ended).
    let kind = data["kind"].as_str().and_then(Kind::from_word).unwrap_or(Kind::Disconnected);
    let mut message = match kind {
        Kind::Unreachable => reason.to_string(),
        _ => format!("{} during {}", reason, what),
    };
    if let Some(stderr) = data["stderr"].as_str() {
        message = format!("{}; last stderr: {}", message, stderr);
    }
    let mut err = Error::new(kind, message);
    if let Some(h) = data["hint"].as_str() {
        err = err.hint(h);
    }
    match data["http_status"].as_u64().or(data["status"].as_u64()).and_then(|s| u16::try_from(s).ok()) {
        Some(s) => err.with_http_status(s),
        None => err,
    }
}

/// The kind of error a server's error answer makes: a method or resource it does not know
/// is not found; anything else is the server's refusal.
pub fn answer_kind(e: &Value) -> Kind {
    match e.get("code").and_then(Value::as_i64) {
        Some(METHOD_NOT_FOUND | RESOURCE_NOT_FOUND) => Kind::NotFound,
        _ => Kind::Server,
    }
}

pub fn error_text(e: &Value) -> String {
    let msg = e.get("message").and_then(Value::as_str).unwrap_or("unknown error");
    match e.get("code").and_then(Value::as_i64) {
        Some(c) => format!("{} (JSON-RPC error {})", msg, c),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_failure_keeps_its_kind_across_the_waiter() {
        // Never connected: said as it is, and still unreachable (the daemon fallback asks).
        let e = failed_during(&connection_failed(&Error::unreachable("cannot reach server `s` at u")), "`x`");
        assert_eq!((e.kind, e.message.as_str()), (Kind::Unreachable, "cannot reach server `s` at u"));
        // A refused credential keeps its HTTP status, and its hint stays a hint.
        let auth = Error::auth("refused").hint("fix the token").with_http_status(403);
        let e = failed_during(&connection_failed(&auth), "initialize");
        assert_eq!((e.kind, e.http_status), (Kind::Auth, Some(403)));
        assert_eq!(e.one_line(), "refused during initialize; fix the token");
        assert_eq!(error_message(&connection_failed(&auth)), "refused; fix the token");
        // A closed connection (no kind given) is a lost one, with its stderr kept last.
        let closed = closed("server `s` exited (status 3)", "boom | bang");
        assert_eq!(error_message(&closed), "server `s` exited (status 3); last stderr: boom | bang");
        let e = failed_during(&closed, "`tools/call`");
        assert_eq!(e.kind, Kind::Disconnected);
        assert_eq!(e.message, "server `s` exited (status 3) during `tools/call`; last stderr: boom | bang");
        // The words of the reason decide nothing.
        let e = failed_during(&unavailable("server `s` said \"; last stderr: \" and left"), "`x`");
        assert_eq!(e.message, "server `s` said \"; last stderr: \" and left during `x`");
        // An HTTP status without a JSON-RPC error is the server's answer.
        let e = failed_during(&http_refused("server `s` answered HTTP 500", 500), "`x`");
        assert_eq!((e.kind, e.http_status), (Kind::Server, Some(500)));
        assert_eq!(refused_status(&http_refused("r", 500)), Some(500));
        assert_eq!(refused_status(&connection_failed(&Error::auth("r").with_http_status(401))), None);
    }

    #[test]
    fn an_unknown_method_or_resource_is_not_found() {
        assert_eq!(answer_kind(&error_object(METHOD_NOT_FOUND, "no")), Kind::NotFound);
        assert_eq!(answer_kind(&error_object(RESOURCE_NOT_FOUND, "no")), Kind::NotFound);
        assert_eq!(answer_kind(&error_object(INVALID_PARAMS, "no")), Kind::Server);
        assert_eq!(answer_kind(&json!({})), Kind::Server);
    }

    #[test]
    fn envelopes_written_as_bytes_parse_back() {
        let p = json!({"name": "echo", "arguments": {"text": "a\"b\n"}});
        let line = request_line(7, "tools/call", Some(&p));
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v, request(json!(7), "tools/call", Some(p)));
        let v: Value = serde_json::from_slice(&request_line(8, "ping", None)).unwrap();
        assert_eq!(v, request(json!(8), "ping", None));
        let v: Value = serde_json::from_slice(&response_bytes(&json!("s-1"), Ok(r#"{"x": 1}"#))).unwrap();
        assert_eq!(v, response(json!("s-1"), json!({"x": 1})));
        let v: Value = serde_json::from_slice(&response_bytes(&json!(3), Err(&error_object(-32601, "no")))).unwrap();
        assert_eq!(v, error_response(json!(3), -32601, "no"));
    }

    #[test]
    fn classifies_all_kinds() {
        assert!(matches!(Message::parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Ok(Message::Request { .. })));
        assert!(matches!(
            Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification { .. })
        ));
        assert!(matches!(
            Message::parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response { outcome: Ok(_), .. })
        ));
        assert!(matches!(
            Message::parse(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#),
            Ok(Message::Response { outcome: Err(_), .. })
        ));
    }

    #[test]
    fn rejects_junk() {
        assert!(Message::parse("hello").unwrap_err().starts_with("not JSON"));
        assert!(Message::parse("[1]").is_err());
        assert!(Message::parse(r#"{"id":1,"method":"x"}"#).is_err());
        assert!(Message::parse(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).is_err());
        assert!(Message::parse(r#"{"jsonrpc":"2.0","id":1}"#).is_err());
    }
}
