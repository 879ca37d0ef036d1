//! Reading an SSE answer of the Streamable HTTP client: messages handed to the peer as they
//! come, and a stream that ends before our answer resumed with GET + `Last-Event-ID`.

use super::{snippet, Inner};
use crate::error::{Error, Result};
use crate::peer::Peer;
use crate::sse;
use crate::sync::Locked;
use serde_json::Value;
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::time::Duration;

const MAX_RESUMES: usize = 5;

impl Inner {
    /// Read an SSE stream; when it ends before our answer, resume it with GET + `Last-Event-ID`.
    pub(super) fn read_stream(
        &self,
        agent: &ureq::Agent,
        peer: &Arc<Peer>,
        reader: impl Read + Send + 'static,
        want: Option<&Value>,
        resume: bool,
        answered: &dyn Fn(),
    ) -> Result<bool> {
        let mut r = sse::Reader::new(BufReader::new(Box::new(reader) as Box<dyn Read + Send>));
        let mut resumes = 0;
        loop {
            while let Some(ev) = r.next_event() {
                if ev.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&ev.data) {
                    Ok(v) => {
                        if self.take(peer, v, want, answered) {
                            return Ok(true);
                        }
                    }
                    Err(_) => {
                        log::warn!("server `{}` sent an SSE event that is not JSON: {}", self.name, snippet(&ev.data))
                    }
                }
            }
            // The stream ended without our answer (a modern stream is not resumable).
            let (Some(_), Some(last), true) = (want, r.last_id.clone(), resume) else { return Ok(false) };
            if resumes == MAX_RESUMES {
                return Ok(false);
            }
            resumes += 1;
            let wait = Duration::from_millis(r.retry.unwrap_or(1000).min(30_000));
            log::debug!("server `{}`: SSE stream ended; resuming after {:?} from event {}", self.name, wait, last);
            std::thread::sleep(wait);
            let retry = r.retry;
            let resp = self.get_stream(agent, Some(&last))?;
            r = sse::Reader::new(BufReader::new(
                Box::new(resp.into_body().into_with_config().limit(u64::MAX).reader()) as Box<dyn Read + Send>,
            ));
            r.retry = retry;
            r.last_id = Some(last);
        }
    }

    fn get_stream(&self, agent: &ureq::Agent, last_event_id: Option<&str>) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = agent.get(&self.url).header("Accept", "text/event-stream");
        for (k, v) in &self.all_headers() {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(s) = self.session.locked().as_deref() {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(p) = self.protocol.locked().as_deref() {
            req = req.header("MCP-Protocol-Version", p);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.call().map_err(|e| self.net_error(e))?;
        if !resp.status().is_success() {
            return Err(Error::server(format!(
                "server `{}`: resuming the stream failed with HTTP {}",
                self.name,
                resp.status().as_u16()
            ))
            .with_http_status(resp.status().as_u16()));
        }
        Ok(resp)
    }
}
