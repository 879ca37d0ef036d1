//! The aggregated endpoint `/mcp`: every server behind one name space — tools and prompts
//! named `<server>__<name>`, resources owned by the server that listed them — with each
//! request routed to its server or answered by merging all of them.

use super::forward::forward;
use super::gate::listed;
use super::mcp::{call_tool, reply, set_log_level, subscription};
use super::modern_shape::Shape;
use super::server::Request;
use super::session::Session;
use super::upstream::{State, Upstream};
use super::{names, Hub};
use crate::jsonrpc;
use crate::peer::Peer;
use crate::sync::Locked;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn aggregated(
    hub: &Arc<Hub>,
    req: Request<'_>,
    session: &Arc<Session>,
    id: Value,
    method: &str,
    params: Option<Value>,
    shape: Option<Arc<Shape>>,
) {
    let answer = |req: Request<'_>, outcome: Result<Value, (i64, String)>| {
        let body = match outcome {
            Ok(r) => jsonrpc::response(id.clone(), r),
            Err((code, msg)) => jsonrpc::error_response(id.clone(), code, &msg),
        };
        reply(req, shape.as_deref(), body);
    };
    match method {
        "tools/list" => {
            // A listing starts servers waiting for their runtime; their tools follow
            // with notifications/tools/list_changed.
            for u in &hub.upstreams {
                u.trigger();
            }
            // A server still starting (its child spawned, `tools/list` not yet answered) is
            // waited for briefly, so that a client listing right after `mcpctl start` sees
            // its tools; one slower than that announces them with list_changed. Twice: a
            // per-era server's first child, once ready, may start a twin for this client.
            let deadline = Instant::now() + LIST_WAIT;
            let mut waited = false;
            let mut ups = Vec::new();
            for _ in 0..2 {
                ups = hub.upstreams.iter().map(|u| hub.era_upstream(session, u)).collect::<Vec<_>>();
                for u in &ups {
                    if matches!(u.state(), State::Starting) {
                        waited = true;
                        let _ = u.peer(deadline.saturating_duration_since(Instant::now()).min(u.cfg().timeout));
                    }
                }
            }
            // The hub's table, unless a wait may have ended just before the hub rebuilt it.
            let table = if waited { hub.rebuild_table() } else { hub.tool_table() };
            let mut tools = Vec::new();
            for u in &ups {
                for mut t in u.tools().unwrap_or_default() {
                    let Some(name) = t["name"].as_str().filter(|n| listed(hub, session, u.cfg(), n)) else { continue };
                    if let Some((_, _, exposed)) = table.order.iter().find(|(s, n, _)| s == u.name() && n == name) {
                        t["name"] = json!(exposed);
                        tools.push(t);
                    }
                }
            }
            answer(req, Ok(json!({"tools": tools})))
        }
        "tools/call" => {
            let mut params = params.unwrap_or(json!({}));
            let exposed = params["name"].as_str().unwrap_or("").to_string();
            let mut table = hub.tool_table();
            if table.resolve(&exposed).is_none() {
                // Not known (yet): the server the name points at may still be starting.
                if let Err(e) = await_named(hub, session, &exposed) {
                    return answer(req, Err(e));
                }
                table = hub.rebuild_table();
            }
            let Some((server, tool)) = table.resolve(&exposed) else {
                return answer(req, Err((jsonrpc::INVALID_PARAMS, format!("Unknown tool: {}", exposed))));
            };
            params["name"] = json!(tool);
            let u = hub.upstream_for(session, server).expect("listed");
            call_tool(hub, req, session, &u, id, tool, Some(params), shape.clone())
        }
        "prompts/list" | "resources/list" | "resources/templates/list" => {
            answer(req, Ok(merge_list(hub, session, method)))
        }
        "prompts/get" => {
            let mut params = params.unwrap_or(json!({}));
            let name = params["name"].as_str().unwrap_or("").to_string();
            match split_prefixed(hub, session, &name) {
                Some((u, original)) => {
                    params["name"] = json!(original);
                    forward(req, session, &u, id, method, Some(params), shape.clone())
                }
                None => answer(req, Err((jsonrpc::INVALID_PARAMS, format!("Unknown prompt: {}", name)))),
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = params.as_ref().and_then(|p| p["uri"].as_str()).unwrap_or("").to_string();
            match owner_of(hub, session, &uri) {
                Some(u) if method != "resources/read" && u.translates_subscriptions() => {
                    reply(req, shape.as_deref(), subscription(session, &u, id, method, params.as_ref()))
                }
                Some(u) => forward(req, session, &u, id, method, params, shape.clone()),
                None => answer(req, Err((-32002, format!("Resource not found: {}", uri)))),
            }
        }
        "completion/complete" => {
            let mut params = params.unwrap_or(json!({}));
            let r = &params["ref"];
            let routed = match r["type"].as_str() {
                Some("ref/prompt") => split_prefixed(hub, session, r["name"].as_str().unwrap_or("")).map(|(u, n)| {
                    params["ref"]["name"] = json!(n);
                    u
                }),
                Some("ref/resource") => owner_of(hub, session, r["uri"].as_str().unwrap_or("")),
                _ => None,
            };
            match routed {
                Some(u) => forward(req, session, &u, id, method, Some(params), shape.clone()),
                None => answer(req, Ok(json!({"completion": {"values": [], "hasMore": false}}))),
            }
        }
        "logging/setLevel" => {
            set_log_level(session, params.as_ref());
            // Sent on, not waited for (a wedged child must not hold this answer); a
            // 2026-07-28 child gets the level with each request instead.
            let ups = hub.upstreams.iter().map(|u| hub.era_upstream(session, u));
            for u in ups.filter(|u| !u.speaks_modern()) {
                if let Ok(p) = u.peer(Duration::from_millis(10)) {
                    let _ = p.start_with("logging/setLevel", params.clone(), Box::new(|_| {}));
                }
            }
            answer(req, Ok(json!({})))
        }
        _ => answer(req, Err((jsonrpc::METHOD_NOT_FOUND, format!("Method not found: {}", method)))),
    }
}

/// How long a listing of `/mcp` waits for servers still starting.
const LIST_WAIT: Duration = Duration::from_secs(5);

/// A tool name of `/mcp` the table does not know: when it names a server (`<server>__…`)
/// that is starting, wait for it (up to its `timeout`); `Err` is why there is no tool list
/// to look in (still starting, its start failed, or it is down or disabled: at once).
fn await_named(hub: &Arc<Hub>, session: &Arc<Session>, exposed: &str) -> Result<(), (i64, String)> {
    let Some((u, _)) = split_prefixed(hub, session, exposed) else { return Ok(()) };
    match u.peer(u.cfg().timeout) {
        Ok(_) => Ok(()),
        // Disabled by the config: it offers no tools at all.
        Err(e) if u.cfg().disabled => {
            Err((jsonrpc::INVALID_PARAMS, format!("Unknown tool: {} ({})", exposed, e.one_line())))
        }
        Err(e) => Err((jsonrpc::SERVER_UNAVAILABLE, e.one_line())),
    }
}

/// `<server>__<name>` → (the server for `session`, name) for prompts.
fn split_prefixed(hub: &Arc<Hub>, session: &Arc<Session>, exposed: &str) -> Option<(Arc<Upstream>, String)> {
    // Longest server name first, so `a__b` wins over `a` where both exist.
    let mut ups: Vec<&Arc<Upstream>> = hub.upstreams.iter().collect();
    ups.sort_by_key(|u| std::cmp::Reverse(u.name().len()));
    let (shared, name) = ups.into_iter().find_map(|u| {
        exposed.strip_prefix(u.name()).and_then(|r| r.strip_prefix(names::SEP)).map(|n| (u, n.to_string()))
    })?;
    Some((hub.upstream_for(session, shared.name())?, name))
}

/// Every server of `session` connected within `wait` whose capabilities declare `cap`,
/// with its connection (in config order, as they are walked).
fn serving<'a>(
    hub: &'a Arc<Hub>,
    session: &'a Arc<Session>,
    cap: &'a str,
    wait: fn(&Upstream) -> Duration,
) -> impl Iterator<Item = (Arc<Upstream>, Arc<Peer>)> + 'a {
    hub.upstreams.iter().filter_map(move |shared| {
        let u = hub.upstream_for(session, shared.name())?;
        let peer = u.peer(wait(&u)).ok()?;
        u.info().is_some_and(|i| i.capabilities.get(cap).is_some()).then_some((u, peer))
    })
}

/// Call a list method on every ready server and merge the items (prompt names prefixed).
fn merge_list(hub: &Arc<Hub>, session: &Arc<Session>, method: &str) -> Value {
    let key = match method {
        "prompts/list" => "prompts",
        "resources/list" => "resources",
        _ => "resourceTemplates",
    };
    let cap = if key == "prompts" { "prompts" } else { "resources" };
    let wait = |u: &Upstream| Duration::from_millis(if u.cfg().disabled { 0 } else { 2000 });
    let mut items = Vec::new();
    for (u, peer) in serving(hub, session, cap, wait) {
        match crate::client::list_all(&peer, method, key, u.cfg().timeout) {
            Ok(list) => {
                for mut it in list {
                    if key == "prompts" {
                        if let Some(n) = it["name"].as_str() {
                            it["name"] = json!(format!("{}{}{}", u.name(), names::SEP, n));
                        }
                    } else if let Some(uri) = it["uri"].as_str() {
                        hub.resource_owner.locked().insert(uri.to_string(), u.name().to_string());
                    }
                    items.push(it);
                }
            }
            Err(e) => log::warn!("{}", crate::logsafe::unbounded(&e.one_line())),
        }
    }
    json!({ key: items })
}

/// The server a resource URI belongs to: learned from listings, else by template prefix.
pub(super) fn owner_of(hub: &Arc<Hub>, session: &Arc<Session>, uri: &str) -> Option<Arc<Upstream>> {
    let known = hub.resource_owner.locked().get(uri).cloned();
    if let Some(name) = known {
        return hub.upstream_for(session, &name);
    }
    // A server still starting may own it: waited for up to its `timeout`.
    let wait =
        |u: &Upstream| if matches!(u.state(), State::Starting) { u.cfg().timeout } else { Duration::from_millis(500) };
    for (u, peer) in serving(hub, session, "resources", wait) {
        let templates =
            crate::client::list_all(&peer, "resources/templates/list", "resourceTemplates", u.cfg().timeout)
                .unwrap_or_default();
        let fits = templates.iter().any(|t| {
            let tpl = t["uriTemplate"].as_str().unwrap_or("");
            let head = tpl.split('{').next().unwrap_or("");
            !head.is_empty() && uri.starts_with(head)
        });
        let listed = crate::client::list_all(&peer, "resources/list", "resources", u.cfg().timeout)
            .unwrap_or_default()
            .iter()
            .any(|r| r["uri"] == uri);
        if fits || listed {
            hub.resource_owner.locked().insert(uri.to_string(), u.name().to_string());
            return Some(u);
        }
    }
    None
}
