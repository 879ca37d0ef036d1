//! What a server offers besides tools: `resources <server>`, `read <server> <uri>`,
//! `prompts <server>`, `prompt <server> <name> [arguments]` and `complete <server> ...`.
//!
//! Each opens its session the way `tools` does (`Ctx::open`: the running daemon's
//! `/mcp/<server>`, else a child of this process) and first checks that the server declared
//! the capability (`resources`, `prompts`, `completions`): without it the answer is "server
//! `x` has no resources", not a JSON-RPC method-not-found. The tool allowlist
//! (`alwaysAllow`) concerns tools only: nothing here is refused by it, through the daemon or
//! not. Output follows `tools`/`call`: text by default, exactly one JSON object with
//! `--json-output`; `read`, `prompt` and `complete` honour `--dry-run` (the request is shown,
//! not sent).

use super::Ctx;
use crate::cli::{CompleteRef, ToolArg};
use crate::client::{self, Session};
use crate::config::ServerConfig;
use crate::error::{Error, Result, Status};
use crate::jsonrpc;
use crate::output::{is_tty, Failure, Report};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

type Outcome = std::result::Result<Report, Failure>;

/// Connect (through the daemon when it runs) and check that the server declared `capability`.
fn open(ctx: &Ctx, s: &ServerConfig, root: &Path, capability: &str) -> Result<Session> {
    let session = ctx.open(s, root)?;
    if session.capabilities.get(capability).map(Value::is_null).unwrap_or(true) {
        return Err(Error::not_found(format!("server `{}` has no {}", s.name, capability)).hint(format!(
            "it does not declare the `{}` capability; `mcpctl status {}` shows what it offers",
            capability, s.name
        )));
    }
    Ok(session)
}

/// One request, within the request timeout. The server's JSON-RPC error is worded by `what`
/// ("cannot read `x` from server `y`"), with `hint` when there is one.
fn request(
    session: &Session,
    method: &str,
    params: Value,
    (ctx, s): (&Ctx, &ServerConfig),
    what: &str,
    hint: Option<String>,
) -> Result<Value> {
    match session.peer.request(method, Some(params), ctx.request_timeout(s))? {
        Ok(result) => Ok(result),
        Err(e) if jsonrpc::is_unavailable(&e) => Err(jsonrpc::failed_during(&e, &format!("`{}`", method))),
        Err(e) => {
            let e = Error::new(jsonrpc::answer_kind(&e), format!("{}: {}", what, jsonrpc::error_text(&e)));
            Err(match hint {
                Some(h) => e.hint(h),
                None => e,
            })
        }
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Up to three non-empty lines of a description, indented.
fn description(body: &mut String, v: &Value, indent: &str) {
    if let Some(d) = str_of(v, "description") {
        for line in d.lines().filter(|l| !l.trim().is_empty()).take(3) {
            let _ = writeln!(body, "{}{}", indent, line.trim());
        }
    }
}

/// "architecture.md (text/markdown, 1200 bytes)", with the title when it says more.
fn name_line(v: &Value) -> String {
    let mut s = match (str_of(v, "name"), str_of(v, "title")) {
        (Some(n), Some(t)) if t != n => format!("{} — {}", n, t),
        (Some(n), _) => n.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "(no name)".to_string(),
    };
    let mut extra = Vec::new();
    if let Some(m) = str_of(v, "mimeType") {
        extra.push(m.to_string());
    }
    if let Some(n) = v.get("size").and_then(Value::as_u64) {
        extra.push(format!("{} bytes", n));
    }
    if !extra.is_empty() {
        let _ = write!(s, " ({})", extra.join(", "));
    }
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", n, if n == 1 { one } else { many })
}

/// `mcpctl resources <server>`: every resource (all pages) and resource template.
pub fn resources(ctx: &Ctx, name: &str) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let fail = |e: Error| Failure::from(e).with("server", json!(s.name));
    let session = open(ctx, &s, &root, "resources").map_err(fail)?;
    let timeout = ctx.request_timeout(&s);
    let resources = client::list_all(&session.peer, "resources/list", "resources", timeout).map_err(fail)?;
    let templates = match client::list_all(&session.peer, "resources/templates/list", "resourceTemplates", timeout) {
        Ok(t) => t,
        // Templates are optional: a server with resources may not know the method.
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(fail(e)),
    };
    let mut body = String::new();
    if resources.is_empty() {
        let _ = writeln!(body, "Resources on {}: none", s.name);
    } else {
        let _ = writeln!(body, "Resources on {}:", s.name);
    }
    for r in &resources {
        let _ = writeln!(body, "  • {}", str_of(r, "uri").unwrap_or("?"));
        let _ = writeln!(body, "    {}", name_line(r));
        description(&mut body, r, "    ");
    }
    if !templates.is_empty() {
        let _ = writeln!(body, "\nResource templates on {} (read them with the variables filled in):", s.name);
    }
    for t in &templates {
        let _ = writeln!(body, "  • {}", str_of(t, "uriTemplate").unwrap_or("?"));
        let _ = writeln!(body, "    {}", name_line(t));
        description(&mut body, t, "    ");
    }
    let message = format!(
        "Found {} and {} on server '{}'",
        plural(resources.len(), "resource", "resources"),
        plural(templates.len(), "resource template", "resource templates"),
        s.name
    );
    let mut r = Report::new(Status::Success, message)
        .field("server", json!(s.name))
        .field("resources", Value::Array(resources))
        .field("resource_templates", Value::Array(templates));
    r.body = body;
    Ok(r)
}

/// `mcpctl read <server> <uri>`: text to stdout; blobs as raw bytes when stdout is not a
/// terminal, else a one-line note.
pub fn read(ctx: &Ctx, name: &str, uri: &str) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let fail = |e: Error| Failure::from(e).with("server", json!(s.name)).with("uri", json!(uri));
    let session = open(ctx, &s, &root, "resources").map_err(fail)?;
    let params = json!({"uri": uri});
    if ctx.g.dry_run {
        let mut r = Report::new(Status::DryRun, format!("Dry run: would read '{}' from server '{}'", uri, s.name))
            .field("server", json!(s.name))
            .field("uri", json!(uri))
            .field("request", json!({"jsonrpc": "2.0", "method": "resources/read", "params": params}));
        r.body = format!("  Server: {}\n  URI: {}\n  (nothing was read)\n", s.name, uri);
        return Ok(r);
    }
    let what = format!("cannot read `{}` from server `{}`", uri, s.name);
    let hint = format!("`mcpctl resources {}` lists its resources and templates", s.name);
    let result = request(&session, "resources/read", params, (ctx, &s), &what, Some(hint)).map_err(fail)?;
    let contents: Vec<Value> = result.get("contents").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut r = Report::new(Status::Success, format!("Read resource '{}' from server '{}'", uri, s.name))
        .field("server", json!(s.name))
        .field("uri", json!(uri))
        .field("result", result);
    if ctx.g.json_output {
        return Ok(r);
    }
    let has_blob = contents.iter().any(|c| c.get("blob").is_some());
    let to_terminal = is_tty(1);
    if has_blob && !to_terminal {
        // Raw bytes, exactly as sent (no newline added): `> file` saves them.
        let mut bytes = Vec::new();
        for c in &contents {
            if let Some(b64) = c.get("blob").and_then(Value::as_str) {
                let data = base64_decode(b64).ok_or_else(|| {
                    fail(Error::protocol(format!("server `{}` sent a blob for `{}` that is not base64", s.name, uri)))
                })?;
                bytes.extend_from_slice(&data);
            } else if let Some(t) = c.get("text").and_then(Value::as_str) {
                bytes.extend_from_slice(t.as_bytes());
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&bytes);
        let _ = out.flush();
        r.raw = Some(String::new());
        return Ok(r);
    }
    let mut text = String::new();
    for c in &contents {
        if let Some(t) = c.get("text").and_then(Value::as_str) {
            text.push_str(t);
            if !t.ends_with('\n') && contents.len() > 1 {
                text.push('\n');
            }
        } else if let Some(b64) = c.get("blob").and_then(Value::as_str) {
            let size = base64_decode(b64).map(|d| d.len().to_string()).unwrap_or_else(|| "?".into());
            let _ = writeln!(
                text,
                "[binary content: {} bytes, {}; not printed on a terminal: save it with `mcpctl read {} '{}' > FILE`]",
                size,
                str_of(c, "mimeType").unwrap_or("no MIME type"),
                s.name,
                str_of(c, "uri").unwrap_or(uri)
            );
        }
    }
    r.raw = Some(text);
    Ok(r)
}

/// `mcpctl prompts <server>`: every prompt (all pages) with its arguments.
pub fn prompts(ctx: &Ctx, name: &str) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let fail = |e: Error| Failure::from(e).with("server", json!(s.name));
    let session = open(ctx, &s, &root, "prompts").map_err(fail)?;
    let prompts = client::list_all(&session.peer, "prompts/list", "prompts", ctx.request_timeout(&s)).map_err(fail)?;
    let mut body = format!("Available Prompts on {}:\n", s.name);
    for p in &prompts {
        let _ = writeln!(body, "  • {}", name_line(p));
        description(&mut body, p, "    ");
        let args = arguments_of(p);
        if !args.is_empty() {
            let _ = writeln!(body, "    Arguments:");
            let lines: Vec<(String, Option<&str>)> = args
                .iter()
                .map(|a| {
                    let mut line = format!("--{}", str_of(a, "name").unwrap_or("?"));
                    if a.get("required").and_then(Value::as_bool) == Some(true) {
                        line.push_str(" (required)");
                    }
                    (line, str_of(a, "description").and_then(|d| d.lines().next()).map(str::trim))
                })
                .collect();
            let width = lines.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
            for (line, d) in lines {
                let _ = match d {
                    Some(d) => writeln!(body, "      {:<width$}  {}", line, d, width = width),
                    None => writeln!(body, "      {}", line),
                };
            }
        }
    }
    let n = prompts.len();
    let mut r =
        Report::new(Status::Success, format!("Found {} on server '{}'", plural(n, "prompt", "prompts"), s.name))
            .field("server", json!(s.name))
            .field("prompts", Value::Array(prompts));
    r.body = body;
    Ok(r)
}

fn arguments_of(prompt: &Value) -> &[Value] {
    prompt.get("arguments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A prompt's arguments as a JSON schema of strings, so that `args` types and checks them
/// like tool arguments (undeclared arguments are refused: they are typos).
fn prompt_schema(prompt: &Value) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for a in arguments_of(prompt) {
        let Some(n) = str_of(a, "name") else { continue };
        props.insert(n.to_string(), json!({"type": "string"}));
        if a.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(json!(n));
        }
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// "--city (required), --state", or that it takes none.
fn takes(prompt: &Value, name: &str) -> String {
    let args: Vec<String> = arguments_of(prompt)
        .iter()
        .filter_map(|a| {
            let n = str_of(a, "name")?;
            Some(if a.get("required").and_then(Value::as_bool) == Some(true) {
                format!("--{} (required)", n)
            } else {
                format!("--{}", n)
            })
        })
        .collect();
    if args.is_empty() {
        format!("prompt `{}` takes no arguments", name)
    } else {
        format!("prompt `{}` takes {}", name, args.join(", "))
    }
}

/// `mcpctl prompt <server> <name> [arguments]`: the prompt's messages, `role: text` each.
pub fn prompt(ctx: &Ctx, name: &str, prompt: &str, typed: &[ToolArg]) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let base = |e: Error| Failure::from(e).with("server", json!(s.name)).with("prompt", json!(prompt));
    let session = open(ctx, &s, &root, "prompts").map_err(base)?;
    let prompts = client::list_all(&session.peer, "prompts/list", "prompts", ctx.request_timeout(&s)).map_err(base)?;
    let Some(def) = prompts.iter().find(|p| p["name"] == prompt) else {
        let names: Vec<&str> = prompts.iter().filter_map(|p| p["name"].as_str()).collect();
        let e = Error::not_found(format!("unknown prompt `{}` on server `{}`", prompt, s.name));
        let e = match crate::cli::closest(prompt, &names) {
            Some(c) => e.hint(format!("did you mean `{}`?", c)),
            None if names.is_empty() => e.hint("it has no prompts"),
            None if names.len() <= 10 => e.hint(format!("its prompts: {}", names.join(", "))),
            None => e.hint(format!("`mcpctl prompts {}` lists its {} prompts", s.name, names.len())),
        };
        return Err(base(e));
    };
    let schema = prompt_schema(def);
    let arguments = crate::args::build(typed, &schema, &mut std::io::stdin().lock())
        .map_err(|e| base(Error { hint: e.hint.or_else(|| Some(takes(def, prompt))), ..e }))?;
    let with_args = |f: Failure| f.with("arguments", Value::Object(arguments.clone()));
    crate::args::validate(&arguments, &schema).map_err(|e| {
        with_args(base(
            Error::new(e.kind, format!("prompt `{}` on server `{}`: {}", prompt, s.name, e.message))
                .hint(takes(def, prompt)),
        ))
    })?;
    let params = json!({"name": prompt, "arguments": arguments});
    if ctx.g.dry_run {
        let mut r =
            Report::new(Status::DryRun, format!("Dry run: would get prompt '{}' from server '{}'", prompt, s.name))
                .field("server", json!(s.name))
                .field("prompt", json!(prompt))
                .field("arguments", Value::Object(arguments.clone()))
                .field("request", json!({"jsonrpc": "2.0", "method": "prompts/get", "params": params}));
        r.body = format!(
            "  Server: {}\n  Prompt: {}\n  Arguments: {}\n  (nothing was sent)\n",
            s.name,
            prompt,
            Value::Object(arguments)
        );
        return Ok(r);
    }
    let what = format!("server `{}` could not give prompt `{}`", s.name, prompt);
    let result = request(&session, "prompts/get", params, (ctx, &s), &what, None).map_err(|e| with_args(base(e)))?;
    let text = render_messages(&result);
    let mut r = Report::new(Status::Success, format!("Prompt '{}' from server '{}'", prompt, s.name))
        .field("server", json!(s.name))
        .field("prompt", json!(prompt))
        .field("arguments", Value::Object(arguments))
        .field("result", result);
    r.raw = Some(text);
    Ok(r)
}

/// Each message as `role: text`; content other than text described in brackets.
fn render_messages(result: &Value) -> String {
    let mut out = String::new();
    for m in result.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let role = m["role"].as_str().unwrap_or("?");
        let blocks = match &m["content"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let text = super::servers::render_content(&json!({ "content": blocks }));
        let _ = writeln!(out, "{}: {}", role, text);
    }
    out
}

/// `mcpctl complete <server> (--prompt NAME | --resource URI_TEMPLATE) --arg NAME ...`:
/// the server's suggestions, one a line.
pub fn complete(ctx: &Ctx, name: &str, target: &CompleteRef, arg: &str, value: &str, context: &[String]) -> Outcome {
    let (s, root) = ctx.target(name)?;
    let (reference, of) = match target {
        CompleteRef::Prompt(p) => (json!({"type": "ref/prompt", "name": p}), format!("prompt `{}`", p)),
        CompleteRef::Resource(u) => (json!({"type": "ref/resource", "uri": u}), format!("resource template `{}`", u)),
    };
    let fail = |e: Error| Failure::from(e).with("server", json!(s.name)).with("ref", reference.clone());
    let session = open(ctx, &s, &root, "completions").map_err(fail)?;
    let mut params = json!({"ref": reference, "argument": {"name": arg, "value": value}});
    if !context.is_empty() {
        let chosen: Map<String, Value> =
            context.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), json!(v))).collect();
        params["context"] = json!({ "arguments": chosen });
    }
    if ctx.g.dry_run {
        let mut r = Report::new(Status::DryRun, format!("Dry run: would complete `{}` of {}", arg, of))
            .field("server", json!(s.name))
            .field("ref", reference.clone())
            .field("request", json!({"jsonrpc": "2.0", "method": "completion/complete", "params": params}));
        r.body = format!("  Server: {}\n  Request: {}\n  (nothing was sent)\n", s.name, params);
        return Ok(r);
    }
    let what = format!("server `{}` could not complete `{}` of {}", s.name, arg, of);
    let result = request(&session, "completion/complete", params, (ctx, &s), &what, None).map_err(fail)?;
    let completion = result.get("completion").cloned().unwrap_or(json!({"values": []}));
    let values: Vec<&str> = completion
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let text: String = values.iter().map(|v| format!("{}\n", v)).collect();
    let n = values.len();
    let mut r = Report::new(Status::Success, format!("{} for `{}` of {}", plural(n, "value", "values"), arg, of))
        .field("server", json!(s.name))
        .field("ref", reference.clone())
        .field("argument", json!({"name": arg, "value": value}))
        .field("completion", completion.clone());
    r.raw = Some(text);
    Ok(r)
}

/// Standard base64 (the URL-safe letters too), whitespace ignored, padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut buf, mut bits, mut padded) = (0u32, 0u32, false);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padded = true;
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        if padded {
            return None;
        }
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    // One character left over (6 bits) is no byte: not base64.
    if bits >= 6 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64_decode("AP8A\n/w==").unwrap(), [0u8, 255, 0, 255]);
        assert!(base64_decode("Zm9vY").is_none());
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Zg==Zg").is_none());
    }

    #[test]
    fn prompt_arguments_become_a_schema_of_strings() {
        let p = json!({"name": "p", "arguments": [{"name": "city", "required": true}, {"name": "state"}]});
        let schema = prompt_schema(&p);
        let typed = vec![ToolArg::Pair("city".into(), Some("007".into()))];
        let m = crate::args::build(&typed, &schema, &mut "".as_bytes()).unwrap();
        assert_eq!(Value::Object(m.clone()), json!({"city": "007"}));
        assert!(crate::args::validate(&m, &schema).is_ok());
        let e = crate::args::validate(&Map::new(), &schema).unwrap_err();
        assert!(e.message.contains("missing required argument(s) --city"), "{}", e.message);
        assert_eq!(takes(&p, "p"), "prompt `p` takes --city (required), --state");
    }

    #[test]
    fn messages_render_role_and_text() {
        let r = json!({"messages": [
            {"role": "user", "content": {"type": "text", "text": "hi"}},
            {"role": "assistant", "content": {"type": "image", "mimeType": "image/png", "data": "AAAA"}}
        ]});
        assert_eq!(render_messages(&r), "user: hi\nassistant: [image: image/png, 3 bytes]\n");
    }
}
