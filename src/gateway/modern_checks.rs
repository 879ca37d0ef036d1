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
use crate::transport::http::{decode_header, param_headers};
use serde_json::{json, Value};

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
    // A tool whose marks break the rules mirrors nothing (clients leave it out of their lists).
    for (h, path) in param_headers(&def["inputSchema"]).unwrap_or_default() {
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
