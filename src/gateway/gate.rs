//! The policy at the gateway: which tools a session's client sees listed, and whether a
//! tool call runs, asks its user first, or is refused (with the JSON-RPC refusal).

use super::call_log::{log_call, session_word, token_name};
use super::modern;
use super::session::Session;
use super::upstream::Upstream;
use super::Hub;
use crate::jsonrpc;
use crate::policy;
use serde_json::Value;
use std::time::Instant;

/// The named token a session was created with.
fn token_of<'a>(hub: &'a Hub, session: &Session) -> Option<&'a crate::tokens::NamedToken> {
    let name = session.token()?;
    hub.opts.tokens.iter().find(|t| t.name == name)
}

/// The policy's word on a tool call from a gateway client: run it, ask the user first (a
/// client that declared elicitation), or `Err`: the JSON-RPC refusal.
pub(super) fn permit(
    hub: &Hub,
    session: &Session,
    u: &Upstream,
    tool: &str,
    id: &Value,
) -> Result<policy::Gate, Value> {
    let token = token_of(hub, session);
    let gate = policy::gateway_for(u.cfg(), tool, token).and_then(|g| match g {
        policy::Gate::Ask if !session.elicits() => Err(policy::cannot_ask(
            u.cfg(),
            tool,
            if session.protocol() == modern::MODERN {
                "this client cannot be asked (its request did not declare the elicitation capability, form mode, in `_meta` clientCapabilities)"
            } else {
                "this client cannot be asked (it did not declare the elicitation capability, form mode, in `initialize`)"
            },
        )),
        g => Ok(g),
    });
    gate.map_err(|e| {
        log_call(session_word(session), token_name(token), u.name(), tool, Instant::now(), "refused");
        refusal(id, &e.one_line())
    })
}

/// The JSON-RPC error of a call the gateway does not run.
pub(super) fn refusal(id: &Value, why: &str) -> Value {
    jsonrpc::error_response(id.clone(), policy::REFUSED, &format!("mcpctl gateway: {}", why))
}

/// Whether the session's client sees `tool` of server `cfg` listed: what it may call, with
/// the tools that need its user's approval only for a client that can be asked.
pub(super) fn listed(hub: &Hub, session: &Session, cfg: &crate::config::ServerConfig, tool: &str) -> bool {
    match policy::gateway_for(cfg, tool, token_of(hub, session)) {
        Ok(policy::Gate::Run) => true,
        Ok(policy::Gate::Ask) => session.elicits(),
        Err(_) => false,
    }
}
