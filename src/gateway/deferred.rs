//! Answers written later, from any thread (see [`Request::defer`](super::server::Request::defer)):
//! a deferred answer or event stream writes without blocking — whatever a slow client does
//! not take at once goes to a backlog that a helper thread writes — bounded per connection
//! and daemon-wide ([`Budget`]), with a deadline thread for answers that must not wait
//! forever. The connection thread waits on its [`Slot`] before the next answer goes out.

use crate::sync::Locked;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// A daemon-wide bound on bytes held for clients that do not read their answers.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget { used: AtomicUsize::new(0), max }
    }

    /// Take `n` bytes of the budget; false (nothing taken) past its end.
    fn take(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Ordering::SeqCst);
        if before.checked_add(n).map(|t| t > self.max).unwrap_or(true) {
            self.used.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
    }
}

/// What a client may leave unread of a deferred answer before it is cut off.
const MAX_BACKLOG: usize = 64 * 1024 * 1024;

/// The state of one deferred answer, shared by its writer and its connection thread.
pub(super) struct Slot {
    st: Mutex<SlotState>,
    cv: Condvar,
    /// What its backlog takes from (the daemon-wide bound).
    budget: Arc<Budget>,
    /// Run when the client closes the connection before the answer is out.
    hangup: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

#[derive(Default)]
struct SlotState {
    /// Bytes the client did not take at once; a helper thread is writing them.
    backlog: Vec<u8>,
    draining: bool,
    /// Nothing more will be written.
    finished: bool,
    /// The connection ends after this answer.
    close: bool,
    /// Writing failed: the client is gone.
    broken: bool,
    /// The connection thread waits for the answer to be out.
    waiting: bool,
}

impl SlotState {
    /// Everything is written (or nothing more can be).
    fn done(&self) -> bool {
        self.finished && !self.draining
    }
}

impl Slot {
    pub(super) fn new(budget: Arc<Budget>) -> Arc<Slot> {
        Arc::new(Slot { st: Mutex::new(SlotState::default()), cv: Condvar::new(), budget, hangup: Mutex::new(None) })
    }

    pub(super) fn is_done(&self) -> bool {
        self.st.locked().done()
    }

    /// The client is gone while the answer is due: run what was set for that (once).
    pub(super) fn hang_up(&self) {
        if self.is_done() {
            return;
        }
        let f = self.hangup.locked().take();
        if let Some(f) = f {
            f();
        }
    }

    /// Wait until the answer is out; whether the connection must end.
    pub(super) fn wait_done(&self) -> bool {
        let mut st = self.st.locked();
        while !st.done() {
            st.waiting = true;
            st = crate::sync::wait(&self.cv, st);
        }
        st.close || st.broken
    }
}

/// An answer written later by any thread (see [`Request::defer`](super::server::Request::defer)). Writes never block:
/// what the client does not take at once is written by a helper thread, in order.
/// Dropping it unanswered ends the connection.
pub struct Deferred {
    stream: Arc<TcpStream>,
    slot: Arc<Slot>,
    close: bool,
    finished: bool,
    timer: Option<TimerKey>,
}

impl Deferred {
    pub(super) fn new(stream: Arc<TcpStream>, slot: Arc<Slot>, close: bool) -> Deferred {
        Deferred { stream, slot, close, finished: false, timer: None }
    }

    /// Run `on_timeout` (on the deadline thread) unless the answer is finished by `at`;
    /// it replaces a deadline set before.
    pub fn set_deadline(&mut self, at: Instant, on_timeout: Box<dyn FnOnce() + Send>) {
        if let Some(k) = self.timer.take() {
            timer().remove(k);
        }
        self.timer = Some(timer().add(at, on_timeout));
    }

    /// Run `f` (on the connection's thread) if the client closes the connection before the
    /// answer is finished.
    pub fn on_hangup(&mut self, f: Box<dyn FnOnce() + Send>) {
        *self.slot.hangup.locked() = Some(f);
    }

    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.write(&super::server::response(status, headers, body, self.close));
        self.finish();
    }

    /// Start a response of unknown length (an event stream): `head` is written, and the
    /// connection closes after the stream.
    pub fn into_stream(mut self, head: &[u8]) -> DeferredStream {
        self.close = true;
        self.write(head);
        DeferredStream(self)
    }

    fn write(&self, bytes: &[u8]) {
        let mut st = self.slot.st.locked();
        if st.broken {
            return;
        }
        if st.draining {
            if st.backlog.len() + bytes.len() > MAX_BACKLOG {
                log::warn!("a client stopped reading an answer; its connection was closed");
                self.cut_off(&mut st);
            } else if !self.slot.budget.take(bytes.len()) {
                self.over_budget(&mut st);
            } else {
                st.backlog.extend_from_slice(bytes);
            }
            return;
        }
        match send_now(&self.stream, bytes) {
            Ok(n) if n == bytes.len() => {}
            Ok(n) => {
                if !self.slot.budget.take(bytes.len() - n) {
                    self.over_budget(&mut st);
                    return;
                }
                st.backlog.extend_from_slice(&bytes[n..]);
                st.draining = true;
                let (stream, slot) = (self.stream.clone(), self.slot.clone());
                if std::thread::Builder::new().name("http-drain".into()).spawn(move || drain(&stream, &slot)).is_err() {
                    st.draining = false;
                    st.broken = true;
                }
            }
            Err(_) => st.broken = true,
        }
    }

    /// The daemon-wide bound on unread bytes is reached: this connection, the one that
    /// wants more, is cut off.
    fn over_budget(&self, st: &mut SlotState) {
        log::warn!(
            "clients left more than MCPCTL_MAX_BUFFERED={} bytes of answers unread; the connection that asked for more was closed",
            self.slot.budget.max
        );
        self.cut_off(st);
    }

    fn cut_off(&self, st: &mut SlotState) {
        st.broken = true;
        self.slot.budget.give(st.backlog.len());
        st.backlog = Vec::new();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(k) = self.timer.take() {
            timer().remove(k);
        }
        let mut st = self.slot.st.locked();
        st.finished = true;
        st.close |= self.close;
        if !st.draining {
            finished(&self.stream, &self.slot, &st);
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if !self.finished {
            self.close = true;
            self.finish();
        }
    }
}

/// The answer is out: let the connection thread go on, and let the client see the end of
/// a connection that closes after it.
fn finished(stream: &TcpStream, slot: &Slot, st: &SlotState) {
    if st.close || st.broken {
        let _ = stream.shutdown(Shutdown::Write);
    }
    if st.waiting {
        slot.cv.notify_all();
    }
}

/// A deferred event stream; dropping it ends the stream and the connection.
pub struct DeferredStream(Deferred);

impl DeferredStream {
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// As [`Deferred::set_deadline`]: a stream that goes on to another wait gets a new one.
    pub fn set_deadline(&mut self, at: Instant, on_timeout: Box<dyn FnOnce() + Send>) {
        self.0.set_deadline(at, on_timeout);
    }
}

/// Write what the socket takes now, without waiting.
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        match crate::sys::send_dontwait(stream, rest) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(off),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(off)
}

/// The helper thread of a slow client: write the backlog (blocking, with the send timeout).
fn drain(stream: &TcpStream, slot: &Slot) {
    loop {
        let chunk = {
            let mut st = slot.st.locked();
            if st.backlog.is_empty() || st.broken {
                st.draining = false;
                slot.budget.give(st.backlog.len());
                st.backlog = Vec::new();
                if st.finished {
                    finished(stream, slot, &st);
                }
                return;
            }
            std::mem::take(&mut st.backlog)
        };
        let sent = (&*stream).write_all(&chunk);
        slot.budget.give(chunk.len());
        if sent.is_err() {
            let mut st = slot.st.locked();
            st.broken = true;
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

type TimerKey = (Instant, u64);

/// Deadlines of deferred answers, on one thread that sleeps until the earliest.
struct Timer {
    st: Mutex<TimerState>,
    cv: Condvar,
}

#[derive(Default)]
struct TimerState {
    due: BTreeMap<TimerKey, Box<dyn FnOnce() + Send>>,
    seq: u64,
    /// When the thread wakes next (None: when told).
    wakes: Option<Instant>,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("deadlines".into()).spawn(|| timer().run());
        if spawned.is_err() {
            log::error!("cannot start the deadline thread; calls that hang will not time out");
        }
        Timer { st: Mutex::new(TimerState::default()), cv: Condvar::new() }
    })
}

impl Timer {
    fn add(&self, at: Instant, f: Box<dyn FnOnce() + Send>) -> TimerKey {
        let mut st = self.st.locked();
        st.seq += 1;
        let key = (at, st.seq);
        st.due.insert(key, f);
        // Only a deadline earlier than the one the thread sleeps for needs to wake it.
        if st.wakes.map(|w| at < w).unwrap_or(true) {
            self.cv.notify_one();
        }
        key
    }

    fn remove(&self, key: TimerKey) {
        let f = self.st.locked().due.remove(&key);
        drop(f); // outside the lock: it may own the last reference to an answer
    }

    fn run(&self) {
        let mut st = self.st.locked();
        loop {
            let now = Instant::now();
            match st.due.keys().next().copied() {
                Some(k) if k.0 <= now => {
                    let f = st.due.remove(&k).expect("present");
                    drop(st);
                    // A deadline that panics must not take the deadline thread (and every
                    // later deadline) with it.
                    crate::sync::contained("a request's deadline handler", f);
                    st = self.st.locked();
                }
                Some(k) => {
                    st.wakes = Some(k.0);
                    st = crate::sync::wait_timeout(&self.cv, st, k.0 - now);
                    st.wakes = None;
                }
                None => {
                    st.wakes = None;
                    st = crate::sync::wait(&self.cv, st);
                }
            }
        }
    }
}
