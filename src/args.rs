//! Tool arguments: merge what was typed (`--key value`, `--var`, `--json`) into one JSON
//! object, typed by the tool's `inputSchema` — a `string` parameter keeps its raw text
//! ("007" stays "007"), typed parameters must parse — and check it against the schema.

use crate::cli::ToolArg;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::io::Read;

/// Build the argument object for `tool` from what was typed.
pub fn build(typed: &[ToolArg], schema: &Value, stdin: &mut dyn Read) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut stdin_used = false;
    for a in typed {
        match a {
            ToolArg::Pair(k, v) => {
                let value = convert(k, v.as_deref(), schema)?;
                out.insert(k.clone(), value);
            }
            // Settled by the caller (`call::resolve_late`) before arguments are built.
            ToolArg::Late(k, _) => {
                return Err(Error::usage(format!("--{} after the tool's name was not settled by its schema", k))
                    .hint("put mcpctl's options before `call`"))
            }
            ToolArg::Var(kv) => {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(Error::usage(format!("--var `{}` needs the form key=value", kv)));
                };
                if k.is_empty() {
                    return Err(Error::usage(format!("--var `{}` has an empty key", kv)));
                }
                let raw = match v.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| Error::usage(format!("--var {}=@{}: cannot read the file: {}", k, path, e)))?,
                    None => v.to_string(),
                };
                out.insert(k.to_string(), convert(k, Some(&raw), schema)?);
            }
            ToolArg::Json(text) => {
                let text = if text == "-" {
                    if stdin_used {
                        return Err(Error::usage("--json - can read standard input only once"));
                    }
                    stdin_used = true;
                    let mut s = String::new();
                    stdin
                        .read_to_string(&mut s)
                        .map_err(|e| Error::usage(format!("--json -: cannot read standard input: {}", e)))?;
                    s
                } else {
                    text.clone()
                };
                let v: Value = serde_json::from_str(&text).map_err(|e| {
                    Error::usage(format!("--json is not valid JSON: {}", e))
                        .hint("quote it: --json '{\"key\": \"value\"}'")
                })?;
                match v {
                    Value::Object(m) => out.extend(m),
                    other => {
                        return Err(Error::usage(format!("--json must be a JSON object, not {}", kind(&other)))
                            .hint("wrap the values in an object: --json '{\"key\": ...}'"))
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The JSON types a property accepts (empty: no type given).
fn types_of(prop: Option<&Value>) -> Vec<String> {
    match prop.and_then(|p| p.get("type")) {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => {
            // `anyOf`/`oneOf` of simple types (what Optional[...] becomes in Python SDKs).
            let alts = prop.and_then(|p| p.get("anyOf").or_else(|| p.get("oneOf"))).and_then(Value::as_array);
            alts.map(|a| a.iter().filter_map(|x| x.get("type").and_then(Value::as_str)).map(str::to_string).collect())
                .unwrap_or_default()
        }
    }
}

fn convert(key: &str, raw: Option<&str>, schema: &Value) -> Result<Value> {
    let prop = schema.get("properties").and_then(|p| p.get(key));
    let types = types_of(prop);
    let Some(raw) = raw else {
        // A bare `--flag`.
        if types.is_empty() || types.iter().any(|t| t == "boolean") {
            return Ok(Value::Bool(true));
        }
        return Err(Error::usage(format!("--{} needs a value ({})", key, types.join(" or "))));
    };
    if types.is_empty() {
        return Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())));
    }
    let non_string: Vec<&String> = types.iter().filter(|t| *t != "string" && *t != "null").collect();
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        if non_string.iter().any(|t| fits(&v, t)) {
            return Ok(v);
        }
    }
    if types.iter().any(|t| t == "string") {
        return Ok(Value::String(raw.to_string()));
    }
    if types.iter().any(|t| t == "null") && raw == "null" {
        return Ok(Value::Null);
    }
    Err(Error::usage(format!("--{} must be {}, got `{}`", key, types.join(" or "), clip(raw))).hint(
        match types.first().map(String::as_str) {
            Some("array") => "give a JSON array, e.g. '[1, 2]'",
            Some("object") => "give a JSON object, e.g. '{\"a\": 1}'",
            Some("boolean") => "give true or false",
            _ => "give a JSON value of that type",
        },
    ))
}

fn fits(v: &Value, t: &str) -> bool {
    match t {
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().map(|f| f.fract() == 0.0).unwrap_or(false),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        "string" => v.is_string(),
        _ => true,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Check the merged arguments against the schema: required keys present, types right,
/// no unknown keys where the schema forbids them. Each problem is one line.
pub fn validate(args: &Map<String, Value>, schema: &Value) -> Result<()> {
    let props = schema.get("properties").and_then(Value::as_object);
    let mut problems = Vec::new();
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        let missing: Vec<String> = req
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| !args.contains_key(*k))
            .map(|k| format!("--{}", k))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("missing required argument(s) {}", missing.join(", ")));
        }
    }
    for (k, v) in args {
        let prop = props.and_then(|p| p.get(k));
        if prop.is_none() && props.is_some() && schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            let names: Vec<&str> = props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
            let mut p = format!("unknown argument --{}", k);
            if let Some(c) = crate::cli::closest(k, &names) {
                p.push_str(&format!(" (did you mean --{}?)", c));
            }
            problems.push(p);
            continue;
        }
        let types = types_of(prop);
        if !types.is_empty() && !types.iter().any(|t| fits(v, t)) {
            problems.push(format!("--{} must be {}, got {}", k, types.join(" or "), kind(v)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = props.map(|p| p.keys().map(|k| format!("--{}", k)).collect()).unwrap_or_default();
        Err(Error::usage(problems.join("; ")).hint(if names.is_empty() {
            "this tool takes no parameters".to_string()
        } else {
            format!("parameters: {}", names.join(", "))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "zip": {"type": "string"}, "n": {"type": "integer"}, "f": {"type": "number"},
            "on": {"type": "boolean"}, "xs": {"type": "array"}, "o": {"type": "object"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
        }, "required": ["zip"]})
    }

    fn pair(k: &str, v: Option<&str>) -> ToolArg {
        ToolArg::Pair(k.into(), v.map(str::to_string))
    }

    fn b(typed: &[ToolArg]) -> Result<Map<String, Value>> {
        build(typed, &schema(), &mut "".as_bytes())
    }

    #[test]
    fn strings_stay_raw_and_typed_values_parse() {
        let m = b(&[
            pair("zip", Some("007")),
            pair("n", Some("42")),
            pair("on", None),
            pair("xs", Some("[1,2]")),
            pair("f", Some("1.5")),
        ])
        .unwrap();
        assert_eq!(Value::Object(m), json!({"zip": "007", "n": 42, "on": true, "xs": [1, 2], "f": 1.5}));
        let m = b(&[pair("zip", Some("true"))]).unwrap();
        assert_eq!(m["zip"], json!("true"));
        let m = b(&[pair("maybe", Some("3"))]).unwrap();
        assert_eq!(m["maybe"], json!(3));
    }

    #[test]
    fn later_keys_win_and_json_merges() {
        let m = b(&[
            pair("zip", Some("1")),
            ToolArg::Json(r#"{"zip": "2", "extra": {"a": 1}}"#.into()),
            ToolArg::Var("zip=3".into()),
        ])
        .unwrap();
        assert_eq!(Value::Object(m), json!({"zip": "3", "extra": {"a": 1}}));
        let m = build(&[ToolArg::Json("-".into())], &schema(), &mut r#"{"zip":"s"}"#.as_bytes()).unwrap();
        assert_eq!(m["zip"], json!("s"));
    }

    #[test]
    fn bad_values_fail_clearly() {
        assert!(b(&[pair("n", Some("abc"))]).unwrap_err().message.contains("--n must be integer, got `abc`"));
        assert!(b(&[pair("n", Some("1.5"))]).is_err());
        assert!(b(&[pair("zip", None)]).unwrap_err().message.contains("--zip needs a value"));
        assert!(b(&[ToolArg::Json("[1]".into())]).unwrap_err().message.contains("must be a JSON object, not an array"));
        assert!(b(&[ToolArg::Json("{bad".into())]).unwrap_err().message.contains("--json is not valid JSON"));
        assert!(b(&[ToolArg::Var("novalue".into())]).unwrap_err().message.contains("key=value"));
    }

    #[test]
    fn stdin_is_read_once() {
        let e = build(&[ToolArg::Json("-".into()), ToolArg::Json("-".into())], &schema(), &mut "{}".as_bytes());
        assert!(e.unwrap_err().message.contains("--json - can read standard input only once"));
    }

    #[test]
    fn no_schema_type_parses_json_then_falls_back() {
        let m = build(&[pair("a", Some("5")), pair("b", Some("hello"))], &json!({}), &mut "".as_bytes()).unwrap();
        assert_eq!(Value::Object(m), json!({"a": 5, "b": "hello"}));
    }

    #[test]
    fn validation_names_missing_and_wrong() {
        let e = validate(&Map::new(), &schema()).unwrap_err();
        assert!(e.message.contains("missing required argument(s) --zip"), "{}", e.message);
        let mut m = Map::new();
        m.insert("zip".into(), json!(7));
        assert!(validate(&m, &schema()).unwrap_err().message.contains("--zip must be string, got a number"));
    }
}
