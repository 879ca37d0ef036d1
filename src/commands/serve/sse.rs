//! Relaying an SSE body (an answer's stream, or the GET stream) to the client event by
//! event, each event bounded by `MCPCTL_MAX_LINE`.

use super::bridge::Bridge;
use super::exchange::snippet;
use super::stdin::read_line;
use serde_json::Value;
use std::io::BufRead;
use std::sync::atomic::Ordering;

impl Bridge {
    /// Relay the events of an SSE body in order; with `want`, stop at its answer (true).
    /// With `generation`, stop once a newer GET stream has replaced this one.
    pub(super) fn relay_stream(
        &self,
        resp: ureq::http::Response<ureq::Body>,
        want: Option<&Value>,
        generation: Option<u64>,
    ) -> bool {
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        self.relay_events(&mut std::io::BufReader::new(body), want, generation)
    }

    /// Relay the events of an SSE body (see `relay_stream`).
    pub(super) fn relay_events(&self, r: &mut impl BufRead, want: Option<&Value>, generation: Option<u64>) -> bool {
        let mut line = Vec::new();
        let mut data = String::new();
        loop {
            if let Some(g) = generation {
                if g != self.stream_gen.load(Ordering::SeqCst) || self.closing.load(Ordering::SeqCst) {
                    return false;
                }
            }
            match read_line(r, self.max_line, &mut line) {
                Ok(None) | Err(_) => return false,
                Ok(Some(false)) => {
                    log::warn!("the gateway sent an SSE line longer than {} bytes; dropped", self.max_line);
                    data.clear();
                    continue;
                }
                Ok(Some(true)) => {}
            }
            let l = String::from_utf8_lossy(&line);
            let l = l.trim_end_matches('\r');
            if l.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let event = std::mem::take(&mut data);
                match serde_json::from_str::<Value>(&event) {
                    Ok(m) => {
                        if self.relay(m, want) {
                            return true;
                        }
                    }
                    Err(_) => log::warn!("the gateway sent an SSE event that is not JSON: {}", snippet(&event)),
                }
                continue;
            }
            if let Some(d) = l.strip_prefix("data:") {
                if data.len() + d.len() > self.max_line {
                    log::warn!("the gateway sent an SSE event longer than {} bytes; dropped", self.max_line);
                    data.clear();
                    continue;
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
    }
}
