//! Running the gateway: bind the port, start every server, serve until SIGINT/SIGTERM,
//! then stop accepting, end the sessions and stop the children within a grace period.

use super::session::Session;
use super::{http, names, owner, server, Hub, Options, Upstream};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::signals;
use crate::sync::Locked;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long stopping the gateway waits for its children (staged: stdin close, 2 s,
/// SIGTERM, 2 s, SIGKILL); `mcpctl stop` kills the daemon after 10 s.
const STOP_GRACE: Duration = Duration::from_secs(7);

/// Bind the listening socket, with a clear error when the port is taken.
fn listen(host: &str, port: u16) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind((host, port)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::usage(format!("port {} on {} is already in use", port, host))
                .hint("stop what uses it, or pick another with --port N")
        } else {
            Error::usage(format!("cannot listen on {}:{}: {}", host, port, e))
        }
    })
}

/// Bind, start every server in the background, call `on_ready` with the bound address,
/// and serve until SIGINT/SIGTERM. Then stop accepting, end sessions and stop children.
pub fn serve(
    cfg: &Config,
    opts: Options,
    lazy: &dyn Fn(&crate::config::ServerConfig) -> bool,
    on_ready: &mut dyn FnMut(SocketAddr) -> Result<()>,
) -> Result<()> {
    let tokens = crate::tokens::resolve(&cfg.tokens, &cfg.project_root)?;
    let listener = listen(&opts.host, opts.port)?;
    let addr =
        listener.local_addr().map_err(|e| Error::internal(format!("the listening socket has no address: {}", e)))?;
    let hub = Arc::new_cyclic(|weak| Hub {
        upstreams: cfg
            .servers
            .iter()
            .map(|s| Upstream::new(s.clone(), cfg.project_root.clone(), Some(owner(weak)), lazy(s)))
            .collect(),
        sessions: Mutex::new(HashMap::new()),
        opts: Options { port: addr.port(), tokens, ..opts },
        project_root: cfg.project_root.clone(),
        started: SystemTime::now(),
        tools: Mutex::new(names::Table::default()),
        resource_owner: Mutex::new(HashMap::new()),
        listeners: Mutex::new(Vec::new()),
        own_children: Mutex::new(HashMap::new()),
        twins: Mutex::new(HashMap::new()),
        last_sweep: Mutex::new(Instant::now()),
    });
    if std::process::id() == 1 {
        // PID 1 of a container: orphans are ours to reap.
        signals::start_reaper();
    }
    for u in &hub.upstreams {
        u.spawn();
    }
    on_ready(addr)?;
    log::info!("mcpctl gateway listening on http://{}/mcp ({} servers)", addr, hub.upstreams.len());
    if let Some(n) = &hub.opts.node_id {
        log::info!("node id `{}`: session ids start with `{}.`", n, n);
    }

    let limits = server::Limits {
        max_connections: hub.opts.max_connections,
        max_body: hub.opts.max_body,
        io_timeout: hub.opts.io_timeout,
        head_timeout: hub.opts.head_timeout,
        buffered: Arc::new(server::Budget::new(hub.opts.max_buffered)),
    };
    let accepting = listener.try_clone().map_err(|e| Error::internal(format!("cannot serve: {}", e)))?;
    let h = hub.clone();
    let handler: Arc<server::Handler> = Arc::new(move |req| http::handle(&h, req));
    let acceptor = std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || server::run(accepting, limits, handler))
        .map_err(|e| Error::internal(format!("cannot start the accept thread: {}", e)))?;
    while !signals::stopping() {
        std::thread::sleep(Duration::from_millis(200));
        hub.expire_sessions_every(Duration::from_secs(5));
    }
    // Stop accepting: shutting the listening socket down wakes `accept` with an error.
    let _ = crate::sys::shutdown_listener(&listener);
    let _ = acceptor.join();
    log::info!("stopping: ending sessions and shutting servers down");
    // Every child is asked to stop at once (each supervisor shuts its own down in
    // stages), then we wait for all of them within one grace period, shorter than the
    // 10 s `mcpctl stop` waits before it kills the daemon.
    let deadline = Instant::now() + STOP_GRACE;
    let mut all: Vec<Arc<Upstream>> = hub.upstreams.clone();
    let sessions: Vec<Arc<Session>> = hub.sessions.locked().drain().map(|(_, s)| s).collect();
    for s in &sessions {
        s.close();
    }
    let own: Vec<_> = hub.own_children.locked().drain().flat_map(|(_, own)| own.into_values()).collect();
    all.extend(own.iter().map(|(u, _)| u.clone()));
    all.extend(hub.twins.locked().drain().map(|(_, (u, _))| u));
    for u in &all {
        u.stop();
    }
    for u in &all {
        if !u.wait_stopped(deadline) {
            log::warn!("server `{}` did not stop within {}s; killing it", u.name(), STOP_GRACE.as_secs());
        }
    }
    // What is left (a child that outlived the grace, a grandchild in its group) is killed.
    crate::transport::stdio::kill_all_groups();
    log::info!("stopped");
    Ok(())
}
