//! `mcpctl serve --stdio [--server NAME]`: the gateway over stdio, for clients that only
//! launch stdio servers (Claude Desktop and others).
//!
//! There is one implementation of the gateway's semantics (naming, policy, supervision,
//! routing): the HTTP gateway. This front end is a bridge to one:
//!
//! - the project's running daemon, at `/mcp` (or `/mcp/NAME`), when one runs and we may use
//!   it (`MCPCTL_TOKEN` when it needs a token; the same rules as the shell client);
//! - else an in-process gateway (`gateway::serve`) on `127.0.0.1:0` whose bearer token is
//!   fresh random bytes that never leave this process (not in argv, the environment, logs or
//!   a state file; no `.mcpctl/daemon.json` is written: other commands do not find it). Its
//!   children stop when stdin closes or on SIGTERM/SIGINT.
//!
//! The bridge is a Streamable HTTP client of its own (ureq), so it owns the session:
//!
//! - one thread reads newline-delimited JSON-RPC from stdin, lines bounded by
//!   `MCPCTL_MAX_LINE`; a line that is not JSON gets a `-32700` error with id null;
//! - the client's `initialize` is POSTed as it is (its protocol version and capabilities
//!   reach the gateway unchanged) on the reading thread; its answer gives the session, and a
//!   GET stream is opened for messages that belong to no request (`list_changed`, …);
//! - every other request is POSTed on a thread of its own (at most `MAX_IN_FLIGHT` at once,
//!   each with a deadline); a JSON answer is relayed, an SSE answer message by message in
//!   order (progress, server→client requests, then the answer);
//! - notifications (`notifications/cancelled` too) and the client's answers to
//!   server→client requests are POSTed in order on the reading thread, with a short deadline;
//! - ids are never rewritten: the client's own ids go to the gateway, which keeps them
//!   apart per session, and the gateway's ids of server→client requests come back as they are;
//! - the gateway forgetting the session (404: idle expiry, a daemon restart) re-initializes
//!   once with the client's own `initialize`, then the request is sent again;
//! - one writer thread owns stdout (one message a line, never interleaved), fed by a bounded
//!   queue. Logs go to stderr only.
//!
//! A 2026-07-28 stdio client (no `initialize`; `server/discover`, and the revision in each
//! request's `_meta`) is served beside that, statelessly: see [`modern`].
//!
//! Where things are: [`bridge`] (the state, its start), [`stdin`] and [`stdout`] (the
//! client's side), [`dispatch`] (what each line becomes), [`exchange`], [`sse`] and
//! [`session`] (the session's side), [`modern`], [`tool_params`] and [`http_client`]
//! (2026-07-28 requests), [`backend`] (which gateway, and the in-process one).

use super::Ctx;
use crate::config::Config;
use crate::error::{Error, Status};
use crate::output::{Failure, Report};
use std::time::Duration;

mod backend;
mod bridge;
mod dispatch;
mod exchange;
mod http_client;
mod modern;
mod session;
mod sse;
mod stdin;
mod stdout;
mod tool_params;
use backend::{own_gateway, running_daemon, wait_done};
use bridge::Bridge;

type Outcome = std::result::Result<Report, Failure>;

pub fn serve(ctx: &Ctx, stdio: bool, server: Option<&str>) -> Outcome {
    if !stdio {
        return Err(Error::usage("mcpctl serve needs --stdio (the only front end it has)")
            .hint("usage: mcpctl serve --stdio [--server NAME]")
            .into());
    }
    if ctx.g.json_output {
        return Err(
            Error::usage("--json-output does not apply to `mcpctl serve --stdio` (stdout carries JSON-RPC)").into()
        );
    }
    let cfg = ctx.load_config()?;
    let path = match server {
        Some(name) => {
            ctx.server(&cfg, name)?;
            format!("/mcp/{}", name)
        }
        None => "/mcp".to_string(),
    };
    let deadline = request_deadline(&cfg);
    if let Some((base, headers)) = running_daemon(ctx, &cfg, server)? {
        log::info!("bridging stdio to the daemon at {}{}", base, path);
        let bridge = Bridge::new(format!("{}{}", base, path), headers, deadline)?;
        let done = bridge.clone().start(None)?;
        wait_done(&bridge, &done);
        bridge.finish();
        return Ok(quiet());
    }
    own_gateway(&cfg, &path, deadline)?;
    Ok(quiet())
}

/// Nothing on stdout when the session ends.
fn quiet() -> Report {
    Report { raw: Some(String::new()), ..Report::new(Status::Success, "serve") }
}

/// A request's deadline: longer than any server's `timeout` (the gateway answers by then),
/// with room for a question to the client's user.
fn request_deadline(cfg: &Config) -> Duration {
    let longest = cfg.servers.iter().map(|s| s.timeout).max().unwrap_or(Duration::from_secs(30));
    (longest + Duration::from_secs(60)).max(Duration::from_secs(120))
}
