//! The log line every tool call through the gateway leaves (`call session=… token=…
//! server=… tool=… duration_ms=… outcome=…`), and the short names it uses.

use super::session::Session;

pub(super) fn token_name(t: Option<&crate::tokens::NamedToken>) -> &str {
    t.map(|t| t.name.as_str()).unwrap_or("-")
}

/// The first 8 characters of a session id's random part (after a node id's `<node>.`), for logs.
pub(super) fn session_word(session: &Session) -> &str {
    let random = session.id().rsplit('.').next().unwrap_or(session.id());
    &random[..8.min(random.len())]
}
/// The log line every tool call leaves (never the argument values): `outcome` is ok,
/// tool error, error or refused; a call that needed the user's approval ("ask") leaves
/// approved (then the line of the call itself), declined or unanswered.
pub(super) fn log_call(
    session: &str,
    token: &str,
    server: &str,
    tool: &str,
    started: std::time::Instant,
    outcome: &str,
) {
    log::info!(
        "call session={} token={} server={} tool={} duration_ms={:.1} outcome={}",
        crate::logsafe::safe(session),
        token,
        crate::logsafe::safe(server),
        crate::logsafe::safe(tool),
        started.elapsed().as_secs_f64() * 1000.0,
        outcome
    );
}
