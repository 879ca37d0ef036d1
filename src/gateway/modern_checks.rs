//! The MCP 2026-07-28 wire checks of a stateless request, in the order of the spec's
//! server validation: the version, the routing headers (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`) against the body, and a tool call's `Mcp-Param-*` headers
//! against the arguments its cached schema mirrors (`x-mcp-header`).

use super::http::{json_resp, rpc_error, Resp};
use super::modern::{name_field, supported, HEADER_MISMATCH, META_CAPS, META_VERSION, MODERN, UNSUPPORTED_VERSION};
use super::server::Request;
use super::session::Target;
use super::Hub;
use crate::client::PROTOCOL_VERSIONS;
use crate::jsonrpc;
use serde_json::{json, Value};

/// `=?base64?…?=` header values decoded; others as they are. `None`: not valid base64/UTF-8.
fn decode_header(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) else {
        return Some(v.to_string());
    };
    // Strict: the standard alphabet, whole quanta, padding only at the end (SEP-2243).
    let body = inner.trim_end_matches('=');
    if inner.len() % 4 != 0 || inner.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A 400 "Header mismatch" (-32020) answer.
fn mismatch(id: &Value, what: &str) -> Resp {
    rpc_error(400, id.clone(), HEADER_MISMATCH, &format!("Header mismatch: {}", what))
}

/// A header whose value is not the body's: `<header> header value '…' does not match body value '…'`.
fn differs(id: &Value, header: &str, got: &str, body: &str) -> Resp {
    let (got, body) = (crate::logsafe::safe(got), crate::logsafe::safe(body));
    mismatch(id, &format!("{} header value '{}' does not match body value '{}'", header, got, body))
}

/// The transport's checks, in the order of the spec's server validation: `Err` is the
/// answer (a JSON-RPC error) to send.
pub(super) fn validate(req: &Request<'_>, id: &Value, method: &str, params: Option<&Value>) -> Result<(), Resp> {
    // One value each: a proxy that routes on one copy must not see another served.
    for h in ["MCP-Protocol-Version", "Mcp-Method", "Mcp-Name"] {
        if req.header_count(h) > 1 {
            return Err(mismatch(id, &format!("the {} header appears more than once", h)));
        }
    }
    let hv = req.header("MCP-Protocol-Version");
    let meta = params.and_then(|p| p.get("_meta")).filter(|m| m.is_object());
    let unsupported = |asked: &str| {
        let why = if PROTOCOL_VERSIONS.contains(&asked) {
            format!(
                "Unsupported protocol version: {} is served in a session only (send initialize first); requests without a session speak {}",
                asked, MODERN
            )
        } else {
            format!("Unsupported protocol version: {} (supported: {})", asked, supported().join(", "))
        };
        let mut e = jsonrpc::error_response(id.clone(), UNSUPPORTED_VERSION, &why);
        e["error"]["data"] = json!({"supported": supported(), "requested": asked});
        json_resp(400, &e)
    };
    let invalid_params = |why: String| rpc_error(400, id.clone(), jsonrpc::INVALID_PARAMS, &why);
    let Some(mv) = meta.and_then(|m| m.get(META_VERSION)) else {
        if let Some(h) = hv.filter(|h| *h != MODERN) {
            return Err(unsupported(h));
        }
        let why = format!("Invalid params: params._meta must carry `{}` and `{}`", META_VERSION, META_CAPS);
        return Err(invalid_params(why));
    };
    let Some(mv) = mv.as_str() else {
        return Err(invalid_params(format!("Invalid params: `{}` must be a string", META_VERSION)));
    };
    match hv {
        None => return Err(mismatch(id, "the MCP-Protocol-Version header is required")),
        Some(h) if h != mv => return Err(differs(id, "MCP-Protocol-Version", h, mv)),
        Some(_) => {}
    }
    match req.header("Mcp-Method") {
        None => return Err(mismatch(id, "the Mcp-Method header is required")),
        Some(h) if h != method => return Err(differs(id, "Mcp-Method", h, method)),
        Some(_) => {}
    }
    let body = name_field(method).and_then(|field| params.and_then(|p| p.get(field)).and_then(Value::as_str));
    if let Some(body) = body {
        match req.header("Mcp-Name").map(decode_header) {
            None => return Err(mismatch(id, &format!("the Mcp-Name header is required for {}", method))),
            Some(None) => return Err(mismatch(id, "the Mcp-Name header is not valid base64 UTF-8")),
            Some(Some(h)) if h != body => return Err(differs(id, "Mcp-Name", &h, body)),
            Some(Some(_)) => {}
        }
    }
    if mv != MODERN {
        return Err(unsupported(mv));
    }
    if !meta.map(|m| m.get(META_CAPS).is_some_and(Value::is_object)).unwrap_or(false) {
        return Err(invalid_params(format!("Invalid params: params._meta must carry `{}` (an object)", META_CAPS)));
    }
    Ok(())
}

/// The `x-mcp-header` annotations of an input schema: (header name, property path), found
/// through `properties` only (the only places the annotation is valid), at most 16 deep.
fn param_headers(schema: &Value) -> Vec<(String, Vec<String>)> {
    fn walk(s: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
        if path.len() >= 16 {
            return;
        }
        for (k, p) in props {
            path.push(k.clone());
            if let Some(h) = p.get("x-mcp-header").and_then(Value::as_str) {
                out.push((h.to_string(), path.clone()));
            }
            walk(p, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// A `tools/call`'s `Mcp-Param-*` headers against its arguments, for the parameters the
/// tool's schema mirrors into headers (as the gateway has the schema cached).
pub(super) fn check_param_headers(
    hub: &Hub,
    req: &Request<'_>,
    target: &Target,
    id: &Value,
    params: Option<&Value>,
) -> Result<(), Resp> {
    let name = params.and_then(|p| p["name"].as_str()).unwrap_or("");
    let (server, tool) = match target {
        Target::One(s) => (s.clone(), name.to_string()),
        Target::All => match hub.tool_table().resolve(name) {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => return Ok(()),
        },
    };
    let def = hub.upstream(&server).and_then(|u| u.tool(&tool).ok());
    let Some(def) = def else { return Ok(()) };
    let args = params.map(|p| &p["arguments"]).unwrap_or(&Value::Null);
    for (h, path) in param_headers(&def["inputSchema"]) {
        let value = path.iter().try_fold(args, |a, k| a.get(k));
        let Some(value) = value.filter(|v| !v.is_null()) else { continue };
        let header = format!("Mcp-Param-{}", h);
        let Some(raw) = req.header(&header) else {
            let what = format!("the {} header is required (argument `{}`)", header, path.join("."));
            return Err(mismatch(id, &what));
        };
        let Some(got) = decode_header(raw) else {
            return Err(mismatch(id, &format!("the {} header is not valid base64 UTF-8", header)));
        };
        let same = match value {
            Value::String(v) => got == *v,
            Value::Bool(b) => got == b.to_string(),
            Value::Number(n) => got.trim().parse::<f64>().ok() == n.as_f64(),
            _ => true,
        };
        if !same {
            return Err(differs(id, &header, &got, &value.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode() {
        assert_eq!(decode_header("plain").as_deref(), Some("plain"));
        assert_eq!(decode_header("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(decode_header("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(), Some("=?base64?literal?="));
        assert_eq!(decode_header("=?base64?!!?="), None);
        // Padding is required, and only the standard alphabet counts.
        assert_eq!(decode_header("=?base64?SGVsbG8?="), None);
        assert_eq!(decode_header("=?base64?SGVsbG8=?=").as_deref(), Some("Hello"));
        assert_eq!(decode_header("=?base64?SGVs!!!bG8=?="), None);
        assert_eq!(decode_header("=?base64?-_8=?="), None);
    }
}
