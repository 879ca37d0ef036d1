//! How `tools <server>` lays out a tool in text: wrapped descriptions and one line per
//! parameter with a brief type drawn from its JSON Schema.

use serde_json::Value;

/// The width text output is laid out for.
pub(super) const WIDTH: usize = 80;

/// Text wrapped to `width` columns, at most `max_lines` lines; what is cut ends with `…`.
pub(super) fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cut = false;
    for word in text.split_whitespace() {
        let wlen = word.chars().count();
        let clen = cur.chars().count();
        if clen > 0 && clen + 1 + wlen > width {
            lines.push(std::mem::take(&mut cur));
            if lines.len() == max_lines {
                cut = true;
                break;
            }
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        if wlen > width {
            // One word longer than the line: its start.
            cur.extend(word.chars().take(width - 1));
            cur.push('…');
        } else {
            cur.push_str(word);
        }
    }
    if !cut && !cur.is_empty() {
        lines.push(cur);
    }
    if cut {
        if let Some(last) = lines.last_mut() {
            while last.chars().count() + 1 > width {
                last.pop();
            }
            last.push('…');
        }
    }
    lines
}

/// `s` cut to `max` characters, ending with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A schema's type in brief: `string`, `"fast" | "deep"`, `integer | null`,
/// `array of string`, `object {lang, since}`, `1..10` ranges.
fn brief_type(p: &Value, depth: usize) -> String {
    let join = |parts: Vec<String>| {
        let mut seen: Vec<String> = Vec::new();
        for s in parts {
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen.join(" | ")
    };
    if let Some(c) = p.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = p.get("enum") {
        return cut(&join(values.iter().map(Value::to_string).collect()), 60);
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = p.get(k) {
            if !alts.is_empty() {
                return join(alts.iter().map(|a| brief_type(a, depth)).collect());
            }
        }
    }
    if let Some(Value::Array(all)) = p.get("allOf") {
        if all.len() == 1 {
            return brief_type(&all[0], depth);
        }
    }
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    let one = |ty: &str| -> String {
        match ty {
            "array" => match p.get("items") {
                Some(items) if items.is_object() && depth < 2 => {
                    let inner = brief_type(items, depth + 1);
                    if inner.contains(" | ") {
                        format!("array of ({})", inner)
                    } else {
                        format!("array of {}", inner)
                    }
                }
                _ => "array".into(),
            },
            "object" => match p.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() && depth == 0 => {
                    let required = strings(p.get("required"));
                    let fields: Vec<String> = props
                        .iter()
                        .map(|(k, v)| {
                            let opt = if required.contains(&k.as_str()) { "" } else { "?" };
                            format!("{}{}: {}", k, opt, brief_type(v, depth + 1))
                        })
                        .collect();
                    cut(&format!("object {{{}}}", fields.join(", ")), 60)
                }
                _ => "object".into(),
            },
            "integer" | "number" => {
                let (lo, hi) = (p.get("minimum"), p.get("maximum"));
                match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("{} {}..{}", ty, lo, hi),
                    (Some(lo), None) => format!("{} ≥ {}", ty, lo),
                    (None, Some(hi)) => format!("{} ≤ {}", ty, hi),
                    _ => ty.to_string(),
                }
            }
            other => other.to_string(),
        }
    };
    match p.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(a)) => join(a.iter().filter_map(Value::as_str).map(one).collect()),
        _ if p.get("properties").is_some() => one("object"),
        _ => "any".into(),
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The lines of a tool's parameters, aligned for [`WIDTH`] columns:
/// `      --mode   "fast" | "deep", required   How to search (default: "fast")`.
pub(super) fn param_lines(schema: &Value) -> Vec<String> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    let required = strings(schema.get("required"));
    let rows: Vec<(String, String, String)> = props
        .iter()
        .map(|(k, p)| {
            let mut ty = brief_type(p, 0);
            if required.contains(&k.as_str()) {
                ty.push_str(", required");
            }
            // A title that only repeats the name (Pydantic's "Value" for `value`) says nothing.
            let norm = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
            let title = p.get("title").and_then(Value::as_str).filter(|t| norm(t) != norm(k));
            let mut desc = p
                .get("description")
                .and_then(Value::as_str)
                .or(title)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            // The default first: a long description is cut, the default never.
            if let Some(d) = p.get("default") {
                let d = format!("(default: {})", cut(&d.to_string(), 40));
                desc = if desc.is_empty() { d } else { format!("{} {}", d, desc) };
            }
            (format!("--{}", k), ty, desc)
        })
        .collect();
    const INDENT: usize = 6;
    // Columns as wide as their longest cell that fits; a longer one overflows its row.
    let (max_n, max_t) = (22, 30);
    let nw = rows.iter().map(|r| r.0.chars().count()).filter(|n| *n <= max_n).max().unwrap_or(0);
    let tw = rows.iter().map(|r| r.1.chars().count()).filter(|n| *n <= max_t).max().unwrap_or(0);
    let start = INDENT + nw + 2 + tw + 2;
    // Too little room beside the columns: descriptions go under their parameter.
    let (dstart, beside) = if WIDTH.saturating_sub(start) >= 24 { (start, true) } else { (INDENT + 4, false) };
    let mut out = Vec::new();
    for (name, ty, desc) in rows {
        let fits = name.chars().count() <= nw && ty.chars().count() <= tw;
        let fits = fits && (!beside || INDENT + nw + 2 + ty.chars().count() + 2 <= dstart);
        let head = if fits {
            format!("{:indent$}{:nw$}  {}", "", name, ty, indent = INDENT, nw = nw)
        } else {
            format!("{:indent$}{}  {}", "", name, ty, indent = INDENT)
        };
        let wrapped = wrap(&desc, WIDTH - dstart, 3);
        if wrapped.is_empty() {
            out.push(head);
            continue;
        }
        let mut rest = wrapped.iter();
        if beside && fits {
            let first = rest.next().map(String::as_str).unwrap_or("");
            let pad = (dstart).saturating_sub(head.chars().count());
            out.push(format!("{}{:pad$}{}", head, "", first, pad = pad));
        } else {
            out.push(head);
        }
        for l in rest {
            out.push(format!("{:dstart$}{}", "", l, dstart = dstart));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brief_types() {
        let t = |v: Value| brief_type(&v, 0);
        assert_eq!(t(json!({"type": "string"})), "string");
        assert_eq!(t(json!({"type": ["string", "null"]})), "string | null");
        assert_eq!(t(json!({"oneOf": [{"type": "integer"}, {"const": "auto"}]})), "integer | \"auto\"");
        assert_eq!(t(json!({"enum": ["a", 1, null]})), "\"a\" | 1 | null");
        assert_eq!(t(json!({"type": "array", "items": {"type": ["string", "null"]}})), "array of (string | null)");
        assert_eq!(
            t(json!({"type": "array", "items": {"type": "array", "items": {"type": "integer"}}})),
            "array of array of integer"
        );
        assert_eq!(t(json!({"$ref": "#/$defs/Point"})), "Point");
        assert_eq!(t(json!({"properties": {"x": {"type": "number"}}, "required": ["x"]})), "object {x: number}");
        assert_eq!(t(json!({})), "any");
        assert_eq!(t(json!({"type": "integer", "minimum": 0})), "integer ≥ 0");
    }

    #[test]
    fn wrapping_cuts_with_an_ellipsis() {
        assert_eq!(wrap("one two three four", 13, 3), vec!["one two three", "four"]);
        assert_eq!(wrap("one two three four", 13, 1), vec!["one two thre…"]);
        assert_eq!(wrap("", 10, 3), Vec::<String>::new());
        assert_eq!(wrap("abcdefghijklmnop", 10, 2), vec!["abcdefghi…"]);
    }
}
