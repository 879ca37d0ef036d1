//! How the answers to one MCP 2026-07-28 request are made ([`Shape`]): `resultType`,
//! `_meta` serverInfo and cache hints on results, this revision's error codes, and what
//! becomes of each message a child sends while the request runs ([`Step`]).

use super::modern::{name_field, LIST_TTL_MS, META_CAPS, MODERN};
use super::modern_held::{capability_for, hold};
use super::session::{missing_capability, Session, Target};
use super::Hub;
use crate::jsonrpc;
use crate::peer::{self, RawOutcome};
use crate::sync::Locked;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

const META_LOG: &str = jsonrpc::META_LOG_LEVEL;
const META_SERVER_INFO: &str = jsonrpc::META_SERVER_INFO;

const LEVELS: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// How the answers to one 2026-07-28 request are made.
pub struct Shape {
    server_info: Value,
    method: String,
    /// The least severity of log messages passed on (`None`: none, the request set no level).
    log_floor: Option<usize>,
    /// What the request may be asked back (see [`Binding`]); `None`: nothing (the method
    /// takes no input-required result).
    binding: Option<Binding>,
    /// The id the answer goes out under, once a retry has taken the request over.
    reply_id: Mutex<Option<Value>>,
}

/// What a held request is bound to: a retry must come from the same token, for the same
/// method and name; the capabilities say what the client can be asked.
#[derive(Clone, PartialEq)]
pub(super) struct Binding {
    token: Option<String>,
    method: String,
    name: Option<String>,
    target: String,
    caps: Value,
}

/// What becomes of a message from the child while the request runs.
pub enum Step {
    /// Sent to the client (on the request's stream).
    Pass(Value),
    /// Not for this client.
    Drop,
    /// A question for the client: answer the request with this input-required result.
    Ask(Value),
}

impl Binding {
    /// Whether a retry (its token, method, name and endpoint) is the request held.
    pub(super) fn fits(&self, token: Option<&str>, method: &str, name: Option<&str>, target: &Target) -> bool {
        self.token.as_deref() == token
            && self.method == method
            && self.name.as_deref() == name
            && self.target == format!("{:?}", target)
    }
}

impl Shape {
    pub(super) fn new(hub: &Hub, target: &Target, method: &str, params: Option<&Value>, token: Option<&str>) -> Shape {
        let server_info = match target {
            Target::One(name) => hub.upstream(name).and_then(|u| u.info()).map(|i| i.server_info),
            Target::All => None,
        }
        .unwrap_or_else(super::mcp::gateway_info);
        let meta = params.and_then(|p| p.get("_meta"));
        let level = meta.and_then(|m| m.get(META_LOG)).and_then(Value::as_str);
        let binding = name_field(method).map(|field| Binding {
            token: token.map(str::to_string),
            method: method.to_string(),
            name: params.and_then(|p| p.get(field)).and_then(Value::as_str).map(str::to_string),
            target: format!("{:?}", target),
            caps: meta.and_then(|m| m.get(META_CAPS)).cloned().unwrap_or(json!({})),
        });
        Shape {
            server_info,
            method: method.to_string(),
            log_floor: level.and_then(|l| LEVELS.iter().position(|x| *x == l)),
            binding,
            reply_id: Mutex::new(None),
        }
    }

    /// The method of the request.
    pub(super) fn method(&self) -> &str {
        &self.method
    }

    /// What the request may be asked back (`None`: the method takes no input-required result).
    pub(super) fn binding(&self) -> Option<&Binding> {
        self.binding.as_ref()
    }

    /// A retry (with its own id) takes the request over.
    pub fn answer_as(&self, id: Value) {
        *self.reply_id.locked() = Some(id);
    }

    pub fn answer_id(&self) -> Option<Value> {
        self.reply_id.locked().clone()
    }

    /// A result as 2026-07-28 has it.
    fn result(&self, r: &mut Value) {
        let Some(o) = r.as_object_mut() else { return };
        o.entry("resultType").or_insert(json!("complete"));
        let meta = o.entry("_meta").or_insert(json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert(META_SERVER_INFO.to_string(), self.server_info.clone());
        }
        let scope = match self.method.as_str() {
            // The same for every caller of this endpoint.
            "server/discover" => Some("public"),
            // What a list holds depends on the token's policy.
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" | "resources/read" => {
                Some("private")
            }
            _ => None,
        };
        if let Some(scope) = scope {
            o.entry("ttlMs").or_insert(json!(if self.method == "resources/read" { 0 } else { LIST_TTL_MS }));
            o.entry("cacheScope").or_insert(json!(scope));
        }
    }

    /// [`Shape::result`] on a child's result as it came, without building its tree: the
    /// usual result (an object with neither `resultType` nor `_meta`) gets the fields
    /// appended to its text; only one that has either is parsed (its top level only when
    /// it can be).
    fn raw_result(&self, raw: Box<RawValue>) -> Box<RawValue> {
        let text = raw.get().trim_end();
        let top: Option<HashMap<&str, &RawValue>> = serde_json::from_str(text).ok();
        let Some(top) = top else { return raw };
        if top.contains_key("resultType") || top.contains_key("_meta") {
            let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            self.result(&mut v);
            return peer::to_raw(&v);
        }
        let mut shaped = json!({});
        self.result(&mut shaped);
        let Value::Object(extra) = shaped else { return raw };
        // `{...}` → `{..., "resultType": …, "_meta": …}` (no comma after an empty object).
        let inner = text.strip_suffix('}').unwrap_or(text).trim_end();
        let mut out = String::with_capacity(text.len() + 128);
        out.push_str(inner);
        for (k, v) in extra {
            if !top.is_empty() || !out.ends_with('{') {
                out.push(',');
            }
            out.push_str(&Value::String(k).to_string());
            out.push(':');
            out.push_str(&v.to_string());
        }
        out.push('}');
        RawValue::from_string(out).unwrap_or(raw)
    }

    /// A whole JSON-RPC response: its result shaped, its error in this revision's codes.
    pub fn response(&self, mut body: Value) -> Value {
        if let Some(r) = body.get_mut("result") {
            self.result(r);
        } else if body["error"]["code"] == json!(-32002) {
            // Resource not found is -32602 in 2026-07-28.
            body["error"]["code"] = json!(jsonrpc::INVALID_PARAMS);
        }
        body
    }

    /// A forwarded request's outcome.
    pub fn outcome(&self, o: RawOutcome) -> RawOutcome {
        match o {
            Ok(raw) => Ok(self.raw_result(raw)),
            Err(mut e) => {
                if e["code"] == json!(-32002) {
                    e["code"] = json!(jsonrpc::INVALID_PARAMS);
                }
                Err(e)
            }
        }
    }

    /// A message from the child while the request runs: what becomes of it. A request of
    /// the child (sampling, elicitation, roots) becomes an input-required result when the
    /// client can be asked it (`resume` holds the call for the retry); else the child gets
    /// an error saying why.
    pub fn message(&self, session: &Session, m: Value, resume: &dyn Fn() -> super::forward::Resume) -> Step {
        let method = m["method"].as_str().unwrap_or("");
        if let Some(gid) = m.get("id") {
            let refusal = match (&self.binding, capability_for(method)) {
                (None, _) => format!("`{}` takes no input-required result", self.method),
                (Some(_), None) => format!("`{}` is not a request a client can be asked", crate::logsafe::safe(method)),
                (Some(b), Some(_)) => match missing_capability(&b.caps, method, m.get("params")) {
                    Some(missing) => format!("the client did not declare {}", missing),
                    None => match hold(resume(), gid.clone(), b.clone(), &m) {
                        Ok(result) => return Step::Ask(result),
                        Err(why) => why,
                    },
                },
            };
            let e = jsonrpc::error_object(
                jsonrpc::METHOD_NOT_FOUND,
                &format!(
                    "mcpctl gateway: the calling client speaks MCP {} and cannot be sent `{}` during this call: {}",
                    MODERN,
                    crate::logsafe::safe(method),
                    refusal
                ),
            );
            log::info!("answered a child's `{}` for a {} client: {}", crate::logsafe::safe(method), MODERN, refusal);
            session.take_reply(gid, Err(e));
            return Step::Drop;
        }
        if method == "notifications/message" {
            let Some(floor) = self.log_floor else { return Step::Drop };
            let level = m["params"]["level"].as_str().and_then(|l| LEVELS.iter().position(|x| *x == l)).unwrap_or(0);
            if level < floor {
                return Step::Drop;
            }
        }
        Step::Pass(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_shaped() {
        let s = Shape::new(&crate::gateway::tests::hub(vec![]), &Target::All, "tools/list", None, None);
        let v = s.response(jsonrpc::response(json!(1), json!({"tools": []})));
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["cacheScope"], "private");
        assert_eq!(v["result"]["ttlMs"], LIST_TTL_MS);
        assert_eq!(v["result"]["_meta"][META_SERVER_INFO]["name"], "mcpctl");
        let e = s.response(jsonrpc::error_response(json!(1), -32002, "gone"));
        assert_eq!(e["error"]["code"], -32602);
    }

    /// A forwarded result is shaped on its text; the same as shaping its tree.
    #[test]
    fn raw_results_are_shaped_as_trees_are() {
        let hub = crate::gateway::tests::hub(vec![]);
        for method in ["tools/call", "tools/list"] {
            let s = Shape::new(&hub, &Target::All, method, None, None);
            for text in [
                r#"{"content":[{"type":"text","text":"}"}],"isError":false}"#,
                "{}",
                "{ }\n",
                r#"{"resultType":"input_required","inputRequests":{}}"#,
                r#"{"_meta":{"x":1},"content":[]}"#,
            ] {
                let shaped = s.outcome(Ok(peer::to_raw(&serde_json::from_str::<Value>(text).unwrap())));
                let raw = s.outcome(Ok(RawValue::from_string(text.to_string()).unwrap()));
                let mut want: Value = serde_json::from_str(text).unwrap();
                s.result(&mut want);
                for got in [shaped, raw] {
                    let got: Value = serde_json::from_str(got.unwrap().get()).unwrap();
                    assert_eq!(got, want, "{} {}", method, text);
                }
            }
        }
    }
}
