//! `POST /cli/call`, the daemon's endpoint for `mcpctl call`: one tool call in one round
//! trip, under the same checks (token, Host, Origin) and the same policy as every MCP path.
//! The request and the answer are the versioned shape of `cli_wire`.

use super::call_log::{log_call, token_name};
use super::cli_wire::{self, CallAnswer, CallRequest};
use super::http::{json_resp, read_body, send};
use super::server::Request;
use super::session::{Session, Target};
use super::upstream::Event;
use super::Hub;
use crate::client::LATEST;
use crate::error::Error;
use crate::jsonrpc;
use crate::peer;
use crate::policy;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `POST /cli/call`: one tool call for the shell client in a single round trip (the
/// five MCP exchanges of a session cost more than the call itself). The client has settled
/// approval already and sends the arguments as typed; they are typed here by the cached
/// schema, exactly as `mcpctl call` types them, and the answer (200) carries the result or
/// the error (status word, message, hint) for the client to print as it would its own. A
/// request of another version, or not of the shape, is refused with 400 and the reason:
/// nothing ran, and a client of another version connects the usual way.
pub(super) fn cli_call(hub: &Arc<Hub>, mut req: Request<'_>, who: Option<&crate::tokens::NamedToken>) {
    let body = match read_body(hub, &mut req) {
        Ok(b) => b,
        Err(r) => return send(req, r),
    };
    let (status, answer) = match cli_wire::parse_request(&body) {
        Ok(call) => (200, run_cli_call(hub, &call, who).unwrap_or_else(|refused| *refused)),
        Err(e) => (400, CallAnswer::error(&e, None)),
    };
    send(req, json_resp(status, &answer.to_json()));
}

/// The call's answer; `Err`: the answer of a call that did not run (or did not get through).
fn run_cli_call(
    hub: &Arc<Hub>,
    call: &CallRequest,
    who: Option<&crate::tokens::NamedToken>,
) -> Result<CallAnswer, Box<CallAnswer>> {
    let fail = |e: Error| Box::new(CallAnswer::error(&e, None));
    let (server, tool) = (call.server.as_str(), call.tool.as_str());
    let typed: Vec<crate::cli::ToolArg> = call.args.iter().cloned().map(cli_wire::Arg::into_typed).collect();
    let Some(u) = hub.upstream(server).filter(|u| u.cfg().isolation == crate::config::Isolation::Shared) else {
        let e = Error::not_found(format!("the daemon has no shared server `{}`", crate::logsafe::safe(server)))
            .hint("restart it with `mcpctl stop && mcpctl start` after changing the config");
        return Err(fail(e));
    };
    // The same policy as every other path: the shell client asks for nothing more here, and
    // settles "ask" on its own terminal (running such a tool on a child of its own).
    let gate = policy::gateway_for(u.cfg(), tool, who).and_then(|g| match g {
        policy::Gate::Run => Ok(()),
        policy::Gate::Ask => Err(policy::cannot_ask(u.cfg(), tool, "/cli/call cannot ask the user")),
    });
    if let Err(e) = gate {
        log_call("cli", token_name(who), server, tool, Instant::now(), "refused");
        return Err(fail(e));
    }
    // The daemon reads no file and no standard input for a caller.
    crate::call::only_values(&typed).map_err(fail)?;
    let timeout = call.timeout_ms.map(Duration::from_millis).unwrap_or(u.cfg().timeout);
    // Start a lazy server and wait for a starting one: its tool list comes with it.
    u.peer(u.cfg().timeout).map_err(fail)?;
    let def = u.tool(tool).map_err(fail)?;
    let arguments = crate::call::arguments(&def, &typed, &mut std::io::empty())
        .map_err(|bad| Box::new(CallAnswer::error(&bad.error, Some(json!(bad.arguments)))))?;
    // A session of its own (not listed in the hub), so that what the child asks while the
    // call runs is attributed correctly: to this call when it is the only one in flight.
    let session =
        Arc::new(Session::new("cli".into(), Target::One(server.to_string()), LATEST.to_string()).answering_itself());
    let started = std::time::Instant::now();
    let params = json!({"name": tool, "arguments": arguments});
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    let mut uid = 0;
    u.forward(&session, "tools/call", Some(params), sink, &mut |id| uid = id)
        .map_err(|e| Box::new(CallAnswer::error(&e, Some(json!(arguments)))))?;
    // Wait for the answer. The shell client answers no server→client requests (as when it
    // runs the server itself); past `timeout` the child is told to cancel the call.
    let outcome = loop {
        match rx.recv_timeout(timeout) {
            Ok(Event::Done(Ok(r))) => break Ok(serde_json::from_str(r.get()).unwrap_or(Value::Null)),
            Ok(Event::Done(Err(e))) => break Err(peer::call_error(server, "tools/call", &e)),
            Ok(Event::Message(m)) => {
                if let (Some(id), Some(method)) = (m.get("id"), m["method"].as_str()) {
                    let why = format!("mcpctl's shell client does not support {}", method);
                    session.take_reply(id, Err(jsonrpc::error_object(jsonrpc::METHOD_NOT_FOUND, &why)));
                }
            }
            Err(_) => {
                u.cancel(uid, "timeout");
                break Err(peer::timeout_error(server, "`tools/call`", timeout));
            }
        }
    };
    let word = match &outcome {
        Ok(r) if r["isError"] == json!(true) => "tool error",
        Ok(_) => "ok",
        Err(_) => "error",
    };
    log_call("cli", token_name(who), server, tool, started, word);
    Ok(match outcome {
        Ok(r) => CallAnswer::result(r, json!(arguments)),
        Err(e) => CallAnswer::error(&e, Some(json!(arguments))),
    })
}
