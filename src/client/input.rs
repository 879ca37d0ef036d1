//! A request to a modern server answered through input-required rounds: roots given,
//! elicitation asked on the terminal (refused without one), sampling refused.

use super::handler::roots;
use super::negotiate::strings;
use super::{Session, MAX_INPUT_ROUNDS};
use crate::error::{Error, Result};
use crate::jsonrpc;
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::time::Duration;

impl Session {
    /// Send a request and return its final result; a JSON-RPC error becomes an `Error`.
    /// A modern server may answer `input_required` (multi round-trip requests): its input
    /// requests are answered here — `roots/list` with the project root, `elicitation/create`
    /// by asking on the terminal (refused without one), `sampling/createMessage` refused —
    /// and the request is sent again with the answers and the server's `requestState`, at
    /// most [`MAX_INPUT_ROUNDS`] times, each round within `timeout`.
    pub fn call(&self, method: &str, params: Option<Value>, timeout: Duration) -> Result<Value> {
        if !self.is_modern() {
            return self.peer.call(method, params, timeout);
        }
        let interactive = crate::output::is_tty(0) && crate::output::is_tty(2);
        let mut params = match params {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        // What this loop can answer, declared on this request (the peer's default is none).
        let mut caps = json!({"roots": {}});
        if interactive {
            caps["elicitation"] = json!({"form": {}});
        }
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry(jsonrpc::META_CLIENT_CAPABILITIES).or_insert(caps);
        }
        let mut idle = Duration::from_millis(50);
        for round in 0..=MAX_INPUT_ROUNDS {
            let result = match self.peer.request(method, Some(Value::Object(params.clone())), timeout)? {
                Ok(r) => r,
                Err(e) => return Err(self.refusal(method, &e)),
            };
            match result.get("resultType").and_then(Value::as_str) {
                None | Some("complete") => return Ok(result),
                Some("input_required") => {}
                Some(other) => {
                    return Err(Error::protocol(format!(
                        "server `{}` answered `{}` with a result of unknown type `{}`",
                        self.peer.name, method, other
                    )))
                }
            }
            if round == MAX_INPUT_ROUNDS {
                break;
            }
            params.remove("inputResponses");
            params.remove("requestState");
            match result.get("inputRequests").and_then(Value::as_object).filter(|m| !m.is_empty()) {
                Some(requests) => {
                    idle = Duration::from_millis(50);
                    let answers = self.answer(method, requests, interactive)?;
                    params.insert("inputResponses".into(), Value::Object(answers));
                }
                None => {
                    // Only state to echo: the server is not done yet; back off a little.
                    std::thread::sleep(idle);
                    idle = (idle * 2).min(Duration::from_millis(250));
                }
            }
            if let Some(state) = result.get("requestState") {
                params.insert("requestState".into(), state.clone());
            }
            log::debug!("server `{}`: `{}` needs input; round {} answered", self.peer.name, method, round + 1);
        }
        Err(Error::protocol(format!(
            "server `{}` still asked for input after {} rounds of `{}`",
            self.peer.name, MAX_INPUT_ROUNDS, method
        )))
    }

    /// A modern server's error answer to `method`, worded for the shell: a capability it
    /// needs and we did not declare says what mcpctl cannot do here.
    fn refusal(&self, method: &str, e: &Value) -> Error {
        let needed = e["data"]["requiredCapabilities"].as_object();
        if e["code"].as_i64() != Some(jsonrpc::MISSING_CLIENT_CAPABILITY) || needed.is_none() {
            return crate::peer::call_error(&self.peer.name, method, e);
        }
        let needed = needed.map(|m| m.keys().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
        if needed.contains(&"sampling") {
            return Error::failure(format!(
                "server `{}` needs a language model from the client for `{}` (sampling), which the shell client does not have",
                self.peer.name, method
            ))
            .hint("use a client with a model for this tool");
        }
        if needed.contains(&"elicitation") {
            return Error::failure(format!(
                "server `{}` needs to ask for input during `{}` (elicitation), which mcpctl can only do on a terminal",
                self.peer.name, method
            ))
            .hint("run the command in a terminal to answer it");
        }
        Error::failure(format!(
            "server `{}` needs client capabilities mcpctl does not have for `{}`: {}",
            self.peer.name,
            method,
            needed.join(", ")
        ))
    }

    /// The answers to one round of input requests, by their keys.
    fn answer(&self, method: &str, requests: &Map<String, Value>, interactive: bool) -> Result<Map<String, Value>> {
        let mut answers = Map::new();
        for (key, req) in requests {
            let params = req.get("params").unwrap_or(&Value::Null);
            let answer = match req["method"].as_str().unwrap_or("") {
                "roots/list" => roots(&self.root),
                "elicitation/create" if interactive => elicit(&self.peer.name, params)?,
                "elicitation/create" => {
                    let message = params["message"].as_str().unwrap_or("");
                    return Err(Error::failure(format!(
                        "server `{}` asked for input during `{}` (elicitation: \"{}\"), which mcpctl can only ask for on a terminal",
                        self.peer.name,
                        method,
                        message.trim()
                    ))
                    .hint("run the command in a terminal to answer it"));
                }
                "sampling/createMessage" => {
                    return Err(Error::failure(format!(
                        "server `{}` asked mcpctl to sample a language model during `{}` (sampling/createMessage), which the shell client does not do",
                        self.peer.name, method
                    ))
                    .hint("use a client with a model (through the gateway: `mcpctl start`) for this tool"))
                }
                other => {
                    return Err(Error::protocol(format!(
                        "server `{}` asked for input of a kind mcpctl does not know (`{}`) during `{}`",
                        self.peer.name, other, method
                    )))
                }
            };
            answers.insert(key.clone(), answer);
        }
        Ok(answers)
    }
}

/// Ask the user on the terminal what an `elicitation/create` request wants: an
/// `ElicitResult` (`accept` with the typed values, `decline`, or `cancel` at end of input).
fn elicit(server: &str, params: &Value) -> Result<Value> {
    let mut err = std::io::stderr().lock();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut read = |prompt: &str| -> Option<String> {
        let _ = write!(err, "{}", prompt);
        let _ = err.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    };
    let message = params["message"].as_str().unwrap_or("").trim();
    if params["mode"] == "url" {
        let url = params["url"].as_str().unwrap_or("");
        let q = format!("Server `{}` asks: {}\n  Open {} and finish there. Done? [y/N] ", server, message, url);
        return Ok(match read(&q) {
            None => json!({"action": "cancel"}),
            Some(a) if matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => json!({"action": "accept"}),
            Some(_) => json!({"action": "decline"}),
        });
    }
    match read(&format!("Server `{}` asks: {}\n  Answer? [y/N] ", server, message)) {
        None => return Ok(json!({"action": "cancel"})),
        Some(a) if !matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes") => {
            return Ok(json!({"action": "decline"}))
        }
        Some(_) => {}
    }
    let schema = &params["requestedSchema"];
    let required = strings(&schema["required"]);
    let mut content = Map::new();
    let empty = Map::new();
    for (name, field) in schema["properties"].as_object().unwrap_or(&empty) {
        let ty = field["type"].as_str().unwrap_or("string");
        let choices = strings(&field["enum"]);
        let mut prompt = format!("  {}", field["title"].as_str().unwrap_or(name));
        if let Some(d) = field["description"].as_str() {
            prompt.push_str(&format!(" — {}", d));
        }
        if !choices.is_empty() {
            prompt.push_str(&format!(" ({})", choices.join("|")));
        } else if ty != "string" {
            prompt.push_str(&format!(" ({})", ty));
        }
        if let Some(d) = field.get("default") {
            prompt.push_str(&format!(" [{}]", d));
        }
        prompt.push_str(": ");
        let mut tries = 0;
        loop {
            let Some(text) = read(&prompt) else { return Ok(json!({"action": "cancel"})) };
            let text = text.trim();
            if text.is_empty() {
                if let Some(d) = field.get("default") {
                    content.insert(name.clone(), d.clone());
                    break;
                }
                if !required.contains(&name.as_str()) {
                    break;
                }
            } else if let Some(v) = typed_answer(ty, &choices, text) {
                content.insert(name.clone(), v);
                break;
            }
            tries += 1;
            if tries == 3 {
                return Ok(json!({"action": "decline"}));
            }
            let _ = writeln!(
                std::io::stderr(),
                "  (a {} is needed{})",
                ty,
                if choices.is_empty() { "" } else { " from the list" }
            );
        }
    }
    Ok(json!({"action": "accept", "content": content}))
}

/// What was typed, as a value of the field's primitive type (`None`: it is not one).
fn typed_answer(ty: &str, choices: &[&str], text: &str) -> Option<Value> {
    match ty {
        "integer" => text.parse::<i64>().ok().map(Value::from),
        "number" => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        "boolean" => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" => Some(Value::Bool(true)),
            "n" | "no" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ if !choices.is_empty() && !choices.contains(&text) => None,
        _ => Some(Value::String(text.to_string())),
    }
}
