//! The operating-system calls std does not offer, as safe functions: signals to processes
//! and process groups, signal handlers, waiting on and reaping children, file locks, the
//! kernel's random bytes, non-blocking sends, and what a child does between fork and exec
//! (a new session, death with its parent). Every `unsafe` block of the crate lives here
//! (lib.rs denies `unsafe_code` everywhere else), each with the reason it is sound.
//!
//! The wrappers refuse arguments that would make a call reach further than its caller
//! meant: `kill(0, …)` signals our own process group and `kill(-1, …)` every process we
//! may signal, so a pid of 0 or 1 (or one that does not fit a `pid_t`) is an error here.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

pub use libc::{SIGINT, SIGKILL, SIGTERM};

/// A process id as `pid_t`, refusing 0 (the caller's own group) and values that do not fit
/// (negative ones would name groups). Pid 1 is a process like another: a daemon that is
/// the PID 1 of a container is signalled and checked for by pid.
fn target(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to signal pid {}", pid))),
    }
}

/// A process group id as `pid_t`: as [`target`], and refusing 1 too (`kill(-1)` signals
/// every process).
fn group_target(pgid: u32) -> io::Result<libc::pid_t> {
    match target(pgid)? {
        1 => Err(io::Error::new(io::ErrorKind::InvalidInput, "refusing to signal process group 1")),
        p => Ok(p),
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Send `sig` to the process `pid`.
pub fn signal_process(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let p = target(pid)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `p` > 0.
    check(unsafe { libc::kill(p, sig) })
}

/// Send `sig` to every process of the group led by `pgid` (a child started with
/// `process_group(0)` leads its own group, whose id is its pid).
pub fn signal_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    let p = group_target(pgid)?;
    // SAFETY: kill(2) with a negative pid signals that group; `p` > 1, so `-p` is never
    // 0 (our own group) or -1 (every process).
    check(unsafe { libc::kill(-p, sig) })
}

/// Whether a process `pid` exists and we may signal it (signal 0 checks without
/// sending; a zombie still counts).
pub fn process_exists(pid: u32) -> bool {
    signal_process(pid, 0).is_ok()
}

/// Our effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

static STOP_SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_SIGNALLED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM (they set the flag [`stop_signalled`] reads, instead of
/// ending the process) and ignore SIGPIPE (a closed pipe becomes an error, not a death).
pub fn catch_stop_signals() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe; SIG_IGN
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Whether SIGINT or SIGTERM arrived since [`catch_stop_signals`].
pub fn stop_signalled() -> bool {
    STOP_SIGNALLED.load(Ordering::SeqCst)
}

/// Reap the child `pid` if it has exited, without blocking; whether it was reaped.
pub fn reap_if_exited(pid: u32) -> bool {
    let Ok(p) = target(pid) else { return false };
    let mut status = 0;
    // SAFETY: `status` is a valid place for waitpid(2) to write; WNOHANG never blocks.
    unsafe { libc::waitpid(p, &mut status, libc::WNOHANG) == p }
}

/// Block until the child `pid` has exited, leaving it a zombie (WNOWAIT) so that whoever
/// owns its `std::process::Child` still reaps it and reads its status. Retries on EINTR.
pub fn wait_exited_keep_zombie(pid: u32) -> io::Result<()> {
    let p = libc::id_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: all-zero bytes are a valid siginfo_t (a plain C struct of integers).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for waitid(2) to fill.
        let r = unsafe { libc::waitid(libc::P_PID, p, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Take an exclusive flock(2) on `f` without waiting: `Ok(false)` when another open file
/// holds it. Released by [`unlock`] or when the file is closed.
pub fn try_lock_exclusive(f: &File) -> io::Result<bool> {
    // SAFETY: flock(2) on a descriptor `f` keeps open for the duration of the call.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Release a lock [`try_lock_exclusive`] took on `f`.
pub fn unlock(f: &File) -> io::Result<()> {
    // SAFETY: flock(2) on a descriptor `f` keeps open for the duration of the call.
    check(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) })
}

/// Fill `buf` from getrandom(2) (the kernel's CSPRNG; blocks only until it is seeded at
/// boot). Retries on EINTR and short reads.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &mut buf[at..];
        // SAFETY: the pointer and length describe `rest`, writable and alive for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "getrandom returned no bytes"));
        }
        at += n as usize;
    }
    Ok(())
}

/// One send(2) of what the socket takes now (MSG_DONTWAIT: never blocks; MSG_NOSIGNAL:
/// a closed peer is an error, not SIGPIPE). `WouldBlock` when it takes nothing.
pub fn send_dontwait(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: a descriptor `stream` keeps open, and a pointer and length describing `bytes`.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast::<libc::c_void>(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Shut a listening socket down, which wakes a thread blocked in `accept` with an error
/// (std has no `TcpListener::shutdown`).
pub fn shutdown_listener(listener: &TcpListener) -> io::Result<()> {
    // SAFETY: shutdown(2) on a descriptor `listener` keeps open for the duration of the call.
    check(unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) })
}

/// Make the child `cmd` starts leave our session and terminal (setsid(2) between fork
/// and exec), as a daemon does.
pub fn spawn_in_new_session(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only setsid(2),
    // which is async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            // Fails only when the child already leads a group, which a fresh fork does not.
            libc::setsid();
            Ok(())
        });
    }
}

/// Make the child `cmd` starts die (SIGKILL) when the thread that spawns it ends
/// (PR_SET_PDEATHSIG); a child whose parent is already gone by then exits at once.
pub fn spawn_dying_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
    // getppid(2) and _exit(2), all async-signal-safe; reading errno for the error
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died before the prctl: no signal will come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_that_reach_too_far_are_refused() {
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert_eq!(signal_process(pid, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput, "pid {pid}");
        }
        for pgid in [0, 1, u32::MAX, i32::MAX as u32 + 1] {
            assert_eq!(signal_group(pgid, 0).unwrap_err().kind(), io::ErrorKind::InvalidInput, "pgid {pgid}");
        }
        assert!(!process_exists(0));
        // Pid 1 is a process: a daemon that is a container's PID 1 is found by its pid.
        assert!(signal_process(1, 0).map_or_else(|e| e.kind() != io::ErrorKind::InvalidInput, |_| true));
        assert!(process_exists(std::process::id()));
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_released() {
        let dir = std::env::temp_dir().join(format!("mcpctl-sys-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        unlock(&a).unwrap();
        assert!(try_lock_exclusive(&b).unwrap());
        drop((a, b));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn random_bytes_fill_the_whole_buffer() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 64]);
    }

    #[test]
    fn a_child_is_waited_for_then_reaped() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        wait_exited_keep_zombie(pid).unwrap();
        // Still a zombie, so its status is still there for `Child`.
        assert!(child.wait().unwrap().success());
    }
}
