//! Process signals: SIGINT/SIGTERM set a flag that every blocking wait polls, so a
//! Ctrl-C during a call cleans its child up instead of leaving an orphan. As PID 1 (a
//! container's entrypoint) the daemon also reaps orphans re-parented to it.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Route SIGINT and SIGTERM to the stop flag; ignore SIGPIPE (a closed pipe is an error, not a death).
pub fn install() {
    crate::sys::catch_stop_signals();
}

/// Whether a stop was asked for (by a signal or by [`request_stop`]).
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst) || crate::sys::stop_signalled()
}

/// Ask for a stop from inside the process (tests, shutdown paths).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// As PID 1 (a container's entrypoint), orphaned processes are re-parented to us and
/// stay zombies unless we reap them. A thread scans /proc every 500 ms for zombie
/// children of ours and reaps those no transport waits for (a child a transport started
/// is reaped by its own waiter, which needs its exit status); a zombie is reaped only
/// when seen twice, so a child just spawned is registered before it could be taken.
pub fn start_reaper() {
    let started = std::thread::Builder::new().name("reaper".into()).spawn(|| {
        let mut seen: Vec<u32> = Vec::new();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let zombies = zombie_children();
            for pid in &zombies {
                if seen.contains(pid) && !crate::transport::stdio::is_ours(*pid) {
                    crate::sys::reap_if_exited(*pid);
                    log::debug!("reaped orphan pid {}", pid);
                }
            }
            seen = zombies;
        }
    });
    if let Err(e) = started {
        log::error!("cannot start the thread that reaps orphaned processes: {}", e);
    }
}

/// Zombie processes whose parent is us (bounded by the number of processes in /proc).
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid)) else { continue };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}
