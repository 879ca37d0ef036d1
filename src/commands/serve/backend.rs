//! Which gateway `serve --stdio` bridges to: the project's running daemon when it serves
//! what we need and takes our token, else an in-process gateway on a loopback port whose
//! token never leaves this process; and waiting until the bridge is done.

use super::exchange::read_body;
use super::Bridge;
use crate::commands::Ctx;
use crate::config::Config;
use crate::daemon::{self, Found};
use crate::error::{Error, Result};
use crate::gateway;
use crate::signals;
use serde_json::Value;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A gateway endpoint's base URL and the headers it needs.
pub(super) type Endpoint = (String, Vec<(String, String)>);

/// The running daemon's base URL and headers, if one runs for the project, serves what we
/// need and takes our token. A daemon that refuses `MCPCTL_TOKEN` is an error; one that does
/// not answer is passed over (an in-process gateway serves instead).
pub(super) fn running_daemon(ctx: &Ctx, cfg: &Config, server: Option<&str>) -> Result<Option<Endpoint>> {
    let found = match server {
        Some(name) => ctx.daemon(ctx.server(cfg, name)?, &cfg.project_root),
        None => {
            if ctx.g.no_daemon {
                return Ok(None);
            }
            let Found::Running(st) = daemon::find(&cfg.project_root) else { return Ok(None) };
            let missing: Vec<&str> = cfg
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .filter(|n| !st.servers.is_empty() && !st.servers.iter().any(|d| d == n))
                .collect();
            if !missing.is_empty() {
                log::warn!(
                    "the daemon does not serve {} (it was started before the config named it); serving in this \
                     process; run `mcpctl stop && mcpctl start` to use the daemon",
                    missing.join(", ")
                );
                return Ok(None);
            }
            let token = daemon::env_token();
            if (st.token_mode != "none" || !cfg.tokens.is_empty()) && token.is_none() {
                log::warn!("the daemon needs a token and MCPCTL_TOKEN is not set; serving in this process");
                return Ok(None);
            }
            let headers = token.map(|t| vec![("Authorization".to_string(), format!("Bearer {}", t))]);
            Some((daemon::base_url(&st), headers.unwrap_or_default()))
        }
    };
    let Some((base, headers)) = found else { return Ok(None) };
    // One look before the client's first message: is it there, and does it take our token?
    let agent = crate::net::loopback_agent(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(5))),
    );
    let mut req = agent.get(&format!("{}/status", base));
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.call().map(|r| r.status().as_u16()) {
        Ok(200) => Ok(Some((base, headers))),
        Ok(status @ (401 | 403)) => Err(crate::commands::token_refused(status)),
        Ok(status) => {
            log::warn!("the daemon answered HTTP {} for its status; serving in this process", status);
            Ok(None)
        }
        Err(e) => {
            log::warn!("the daemon at {} does not answer ({}); serving in this process", base, e);
            Ok(None)
        }
    }
}

/// Serve the config in this process on a loopback port, bridged to stdio, until stdin closes
/// or SIGTERM/SIGINT.
pub(super) fn own_gateway(cfg: &Config, path: &str, deadline: Duration) -> Result<()> {
    let token = random_token()?;
    let opts = gateway::Options {
        host: "127.0.0.1".into(),
        port: 0,
        token: Some(token.clone()),
        token_mode: "bridge",
        // The one session is the stdio client's: it lives as long as stdin is open.
        session_idle: Duration::from_secs(365 * 86_400),
        ..gateway::Options::default()
    };
    // As for the daemon, servers on the managed runtime start on first use while it is not
    // installed; with `--server NAME` the others are never used, so never started.
    let installed = crate::gateway::runtime_installed();
    let only = path.strip_prefix("/mcp/").map(str::to_string);
    let lazy = |s: &crate::config::ServerConfig| {
        only.as_deref().is_some_and(|n| n != s.name)
            || (!installed
                && matches!(&s.transport, crate::config::Transport::Stdio { command, .. }
                    if crate::runtime::uses_runtime(command, s.runtime.as_deref())))
    };
    // Named tokens are for clients of a daemon; the one client here holds the gateway's own
    // token, so their variables and files need not be there.
    let cfg = Config { tokens: Vec::new(), ..cfg.clone() };
    let mut watcher: Option<std::thread::JoinHandle<()>> = None;
    let served = gateway::serve(&cfg, opts, &lazy, &mut |addr| {
        let url = format!("http://{}{}", addr, path);
        log::info!("bridging stdio to an in-process gateway at {}", url);
        let headers = vec![("Authorization".to_string(), format!("Bearer {}", token))];
        let bridge = Bridge::new(url, headers, deadline)?;
        // Its servers are starting: the client is served once they have (bounded).
        let done = bridge.clone().start(Some(format!("http://{}/status", addr)))?;
        let w = std::thread::Builder::new()
            .name("serve-watch".into())
            .spawn(move || {
                wait_done(&bridge, &done);
                bridge.finish();
                // Ends `gateway::serve`: it stops the children.
                signals::request_stop();
            })
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        watcher = Some(w);
        Ok(())
    });
    if let Some(w) = watcher {
        // Bounded: `finish` waits at most DRAIN + SIDE + a flush.
        let _ = w.join();
    }
    served
}

/// 32 random bytes as hex, from the kernel (getrandom).
fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    crate::sys::fill_random(&mut b)
        .map_err(|e| Error::internal(format!("no random bytes for the gateway's token: {}", e)))?;
    Ok(b.iter().map(|x| format!("{:02x}", x)).collect())
}

/// Until stdin has closed (and its requests are handled), stdout is gone, or a signal came.
pub(super) fn wait_done(bridge: &Bridge, done: &Receiver<()>) {
    loop {
        if signals::stopping() || bridge.stdout.gone() {
            return;
        }
        match done.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// How long the in-process gateway's servers may take to start before the client is served.
const STARTUP: Duration = Duration::from_secs(10);

impl Bridge {
    /// Until no server of the in-process gateway is `starting` (at most STARTUP): a client
    /// that calls a tool right after `initialize` finds it, as it would at a warm daemon.
    pub(super) fn wait_started(&self, status: &str) {
        let until = Instant::now() + STARTUP;
        while Instant::now() < until && !signals::stopping() {
            let mut req = self.agent.get(status).config().timeout_global(Some(Duration::from_secs(2))).build();
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let starting = match req.call() {
                Ok(r) if r.status().is_success() => read_body(r, 16 * 1024 * 1024)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v["servers"].as_array().map(|a| a.iter().any(|s| s["status"] == "starting")))
                    .unwrap_or(false),
                _ => false,
            };
            if !starting {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log::info!("serving while some servers are still starting (their tools come with tools/list_changed)");
    }
}
