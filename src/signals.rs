//! Process signals: SIGINT/SIGTERM set a flag that every blocking wait polls, so a
//! Ctrl-C during a call cleans its child up instead of leaving an orphan.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Route SIGINT and SIGTERM to the stop flag; ignore SIGPIPE (a closed pipe is an error, not a death).
pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Whether a stop was asked for.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Ask for a stop from inside the process (tests, shutdown paths).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}
