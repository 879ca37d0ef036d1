//! Stdout belongs to one writer thread (a message a line, flushed each time, never
//! interleaved), fed by a queue bounded in messages and in bytes.

use crate::error::{Error, Result};
use crate::sync::Locked;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages waiting for stdout.
const OUT_QUEUE: usize = 64;
/// Bytes of messages waiting for stdout (one message is always let in, however large).
const MAX_QUEUED: usize = 256 * 1024 * 1024;
/// How long a message waits for room in the stdout queue (a client that stops reading).
const OUT_WAIT: Duration = Duration::from_secs(60);
/// How long `flush` waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// The queue to the writer thread.
pub(super) struct Stdout {
    out: SyncSender<Vec<u8>>,
    /// Bytes in `out`.
    queued: Arc<AtomicUsize>,
    /// The writer has written everything queued before the marker.
    flushed: Mutex<Option<Receiver<()>>>,
    /// Writing failed: the client is gone.
    gone: Arc<AtomicBool>,
}

impl Stdout {
    /// Start the writer thread.
    pub(super) fn start() -> Result<Stdout> {
        let (out, rx) = sync_channel::<Vec<u8>>(OUT_QUEUE);
        let (flushed_tx, flushed_rx) = sync_channel::<()>(1);
        let gone = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let (g, q) = (gone.clone(), queued.clone());
        std::thread::Builder::new()
            .name("serve-stdout".into())
            .spawn(move || writer(rx, flushed_tx, g, q))
            .map_err(|e| Error::internal(format!("cannot start a thread: {}", e)))?;
        Ok(Stdout { out, queued, flushed: Mutex::new(Some(flushed_rx)), gone })
    }

    /// Whether the client stopped reading stdout (writing failed).
    pub(super) fn gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// Queue one message (waiting at most OUT_WAIT for room: OUT_QUEUE messages, MAX_QUEUED
    /// bytes).
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
            if Instant::now() > until || self.gone() {
                log::warn!("the client does not read what we write; a message to it was dropped");
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait (at most FLUSH_WAIT, once) until what is queued has been written.
    pub(super) fn flush(&self) {
        // An empty message is the writer's flush marker.
        let _ = self.out.try_send(Vec::new());
        if let Some(rx) = self.flushed.locked().take() {
            let _ = rx.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// The one thread that writes stdout: a message a line, flushed each time.
fn writer(rx: Receiver<Vec<u8>>, flushed: SyncSender<()>, gone: Arc<AtomicBool>, queued: Arc<AtomicUsize>) {
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
