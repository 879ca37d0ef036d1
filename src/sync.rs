//! Locks that outlive a panic. A request thread that panics (the release profile checks
//! arithmetic on sizes from the wire, and the HTTP server catches the panic per connection)
//! must not poison the hub's maps, a session or a child's queues for every later request:
//! the data behind these locks is kept consistent by each critical section (no invariant
//! spans an unwind), so the guard is taken back from the poison and used as it is.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// `lock()` without the poison: see the module comment.
pub trait Locked<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `read()`/`write()` without the poison.
pub trait RwLocked<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLocked<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Condvar::wait` without the poison.
pub fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// `Condvar::wait_timeout` without the poison (the guard only: callers look at their own
/// state and clock rather than at the timeout flag).
pub fn wait_timeout<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>, d: Duration) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, d).unwrap_or_else(PoisonError::into_inner).0
}

/// Run `f`, a callback from another part of the program, on a thread that others rely on
/// (a child's reader, the deadline thread): a panic in it is logged and goes no further, so
/// the thread keeps serving everyone else.
pub fn contained(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        log::error!("{} panicked; the thread that ran it goes on", what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panic_under_the_lock_leaves_it_usable() {
        let m = Arc::new(Mutex::new(vec![1]));
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.push(2);
            panic!("a request thread panics while holding the lock");
        })
        .join();
        assert!(r.is_err() && m.is_poisoned());
        m.locked().push(3);
        assert_eq!(*m.locked(), vec![1, 2, 3]);

        let rw = Arc::new(RwLock::new(0));
        let rw2 = rw.clone();
        let _ = std::thread::spawn(move || {
            let _g = rw2.write().unwrap();
            panic!("again");
        })
        .join();
        *rw.write_locked() += 1;
        assert_eq!(*rw.read_locked(), 1);
    }
}
