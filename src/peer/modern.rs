//! The 2026-07-28 per-request `_meta` envelope: what a peer stamps on every request to a
//! modern server (`Modern`), and what it strips from one forwarded to a legacy server.

use crate::jsonrpc;
use serde_json::{json, Value};

/// What a peer stamps on every request to a server of the 2026-07-28 (modern) era: the
/// negotiated version, who we are, and the client capabilities declared by default.
#[derive(Debug, Clone)]
pub struct Modern {
    pub version: String,
    pub client_info: Value,
    /// Declared on a request that does not declare its own (`{}`: nothing on a plain
    /// request's path answers an input request).
    pub capabilities: Value,
}

impl Modern {
    /// `params` with the envelope merged into its `_meta`: the protocol version is always
    /// ours; client info and capabilities the caller already set are kept, as is every
    /// other key (a progress token, trace context).
    pub fn stamp(&self, params: Option<Value>) -> Value {
        let mut params = match params {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let m = meta.as_object_mut().expect("an object");
        m.insert(jsonrpc::META_PROTOCOL_VERSION.into(), Value::String(self.version.clone()));
        m.entry(jsonrpc::META_CLIENT_INFO).or_insert_with(|| self.client_info.clone());
        m.entry(jsonrpc::META_CLIENT_CAPABILITIES).or_insert_with(|| self.capabilities.clone());
        Value::Object(params)
    }
}

/// `params` without what only 2026-07-28 servers read (a request forwarded from a
/// 2026-07-28 client to a legacy server): the envelope in `_meta` (version, client info and
/// capabilities, log level; a legacy session carries none of them per request) and the
/// input-required round's `inputResponses`/`requestState`. Other `_meta` keys (a
/// `progressToken`) stay.
pub(super) fn unstamp(mut params: Option<Value>) -> Option<Value> {
    let Some(p) = params.as_mut().and_then(Value::as_object_mut) else { return params };
    p.remove("inputResponses");
    p.remove("requestState");
    if let Some(m) = p.get_mut("_meta").and_then(Value::as_object_mut) {
        for k in [
            jsonrpc::META_PROTOCOL_VERSION,
            jsonrpc::META_CLIENT_INFO,
            jsonrpc::META_CLIENT_CAPABILITIES,
            jsonrpc::META_LOG_LEVEL,
        ] {
            m.remove(k);
        }
        if m.is_empty() {
            p.remove("_meta");
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_server_gets_no_2026_fields() {
        let p = json!({"name": "x", "requestState": "s", "inputResponses": {"a": {}},
                       "_meta": {jsonrpc::META_PROTOCOL_VERSION: "2026-07-28", jsonrpc::META_CLIENT_CAPABILITIES: {},
                                 jsonrpc::META_LOG_LEVEL: "info", "progressToken": 3}});
        assert_eq!(unstamp(Some(p)), Some(json!({"name": "x", "_meta": {"progressToken": 3}})));
        let p = json!({"name": "x", "_meta": {jsonrpc::META_PROTOCOL_VERSION: "2026-07-28"}});
        assert_eq!(unstamp(Some(p)), Some(json!({"name": "x"})));
        assert_eq!(unstamp(None), None);
    }
}
