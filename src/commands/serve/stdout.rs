//! Stdout belongs to one writer thread (a message a line, flushed each time, never
//! interleaved), fed by a queue bounded in messages and in bytes.

use super::Bridge;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages waiting for stdout.
pub(super) const OUT_QUEUE: usize = 64;
/// Bytes of messages waiting for stdout (one message is always let in, however large).
const MAX_QUEUED: usize = 256 * 1024 * 1024;
/// How long a message waits for room in the stdout queue (a client that stops reading).
const OUT_WAIT: Duration = Duration::from_secs(60);

impl Bridge {
    /// Queue one message for stdout (waiting at most OUT_WAIT for room: OUT_QUEUE messages,
    /// MAX_QUEUED bytes).
    pub(super) fn emit(&self, m: &Value) {
        let mut line = serde_json::to_vec(m).expect("JSON serializes");
        line.push(b'\n');
        let len = line.len();
        let until = Instant::now() + OUT_WAIT;
        loop {
            let before = self.queued.fetch_add(len, Ordering::SeqCst);
            if before == 0 || before + len <= MAX_QUEUED {
                match self.out.try_send(line) {
                    Ok(()) => return,
                    Err(TrySendError::Disconnected(_)) => {
                        self.queued.fetch_sub(len, Ordering::SeqCst);
                        return;
                    }
                    Err(TrySendError::Full(l)) => line = l,
                }
            }
            self.queued.fetch_sub(len, Ordering::SeqCst);
            if Instant::now() > until || self.client_gone.load(Ordering::SeqCst) {
                log::warn!("the client does not read what we write; a message to it was dropped");
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The one thread that writes stdout: a message a line, flushed each time.
pub(super) fn writer(rx: Receiver<Vec<u8>>, flushed: SyncSender<()>, gone: Arc<AtomicBool>, queued: Arc<AtomicUsize>) {
    let stdout = std::io::stdout();
    for line in rx {
        if line.is_empty() {
            let _ = flushed.try_send(());
            continue;
        }
        if !gone.load(Ordering::SeqCst) {
            let mut out = stdout.lock();
            if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
                log::debug!("stdout is closed ({}); the client is gone", e);
                gone.store(true, Ordering::SeqCst);
            }
        }
        queued.fetch_sub(line.len(), Ordering::SeqCst);
    }
}
