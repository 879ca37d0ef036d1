//! The 2026-07-28 request headers of the Streamable HTTP client: `Mcp-Name`, and the
//! `Mcp-Param-*` headers mirrored from tool parameters marked `x-mcp-header` (plain or
//! `=?base64?…?=` values, and their decoding, which the gateway checks).

use serde_json::Value;

/// The name a modern request's `Mcp-Name` header mirrors: the tool or prompt name, the
/// resource URI.
pub(crate) fn name_of<'a>(method: &str, params: Option<&'a Value>) -> Option<&'a str> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params?.get(key)?.as_str()
}

/// One `x-mcp-header` parameter of a tool: the header's name part and the property path.
pub(crate) type ParamHeader = (String, Vec<String>);

/// The `x-mcp-header` parameters of a tool's input schema, or why the marks break the
/// rules (a mark must be a token, unique regardless of case, on a string, integer or
/// boolean property reached from the root through `properties` only).
pub(crate) fn param_headers(schema: &Value) -> std::result::Result<Vec<ParamHeader>, String> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) -> std::result::Result<(), String> {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
        for (key, prop) in props {
            path.push(key.clone());
            if let Some(mark) = prop.get("x-mcp-header") {
                let name = mark.as_str().unwrap_or("");
                let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
                if name.is_empty() || !name.bytes().all(token) {
                    return Err(format!("`{}` is not a header name", name));
                }
                if !matches!(prop["type"].as_str(), Some("string" | "integer" | "boolean")) {
                    return Err(format!("`{}` is on a property that is not a string, integer or boolean", name));
                }
                if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    return Err(format!("`{}` is given twice", name));
                }
                out.push((name.to_string(), path.clone()));
            }
            walk(prop, path, out)?;
            path.pop();
        }
        Ok(())
    }
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => usize::from(m.contains_key("x-mcp-header")) + m.values().map(count).sum::<usize>(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    if count(schema) != out.len() {
        return Err("is on a property not reached through `properties` alone".into());
    }
    Ok(out)
}

/// The `Mcp-Param-*` headers of a call: each marked argument that has a value.
pub(crate) fn param_values(decls: &[ParamHeader], arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, path) in decls {
        let mut v = arguments;
        for key in path {
            v = &v[key.as_str()];
        }
        let text = match v {
            Value::String(s) => header_value(s),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => continue,
        };
        out.push((name.clone(), text));
    }
    out
}

/// A header value as sent: plain when it is visible ASCII (inner spaces allowed), else in
/// the `=?base64?…?=` form the 2026-07-28 transport defines (also for a plain value that
/// looks like that form).
pub(crate) fn header_value(v: &str) -> String {
    let sentinel = v.starts_with("=?base64?") && v.ends_with("?=");
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !sentinel;
    if plain {
        v.to_string()
    } else {
        format!("=?base64?{}?=", base64(v.as_bytes()))
    }
}

/// `=?base64?…?=` header values decoded; others as they are. `None`: not valid base64/UTF-8.
pub(crate) fn decode_header(v: &str) -> Option<String> {
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

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn header_values_are_plain_or_base64_as_the_spec_shows() {
        assert_eq!(header_value("us-west1"), "us-west1");
        assert_eq!(header_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(header_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn marked_parameters_become_headers_and_bad_marks_are_refused() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "query": {"type": "string"},
        }});
        let decls = param_headers(&schema).unwrap();
        let args = json!({"region": "Hello, 世界", "opts": {"dry": true}, "n": 42, "query": "q"});
        let mut got = param_values(&decls, &args);
        got.sort();
        assert_eq!(
            got,
            [
                ("Dry".into(), "true".into()),
                ("N".into(), "42".into()),
                ("Region".into(), "=?base64?SGVsbG8sIOS4lueVjA==?=".into())
            ]
        );
        // Absent or null values send no header.
        assert_eq!(param_values(&decls, &json!({"n": null})), []);
        let bad = [
            json!({"properties": {"x": {"type": "number", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "a b"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "A"}, "y": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"x": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}}}),
            json!({"properties": {"x": {"anyOf": [{"type": "string", "x-mcp-header": "X"}]}}}),
        ];
        for b in bad {
            assert!(param_headers(&b).is_err(), "{}", b);
        }
    }

    #[test]
    fn the_name_header_mirrors_name_or_uri() {
        let p = json!({"name": "echo", "uri": "file:///a"});
        assert_eq!(name_of("tools/call", Some(&p)), Some("echo"));
        assert_eq!(name_of("prompts/get", Some(&p)), Some("echo"));
        assert_eq!(name_of("resources/read", Some(&p)), Some("file:///a"));
        assert_eq!(name_of("tools/list", Some(&p)), None);
    }
}
