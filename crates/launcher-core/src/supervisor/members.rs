//! Membership, not groups: a component is every process it started, wherever they went.
//!
//! A process that calls `setsid()` or `setpgid()` leaves its component's process group, so
//! signalling the group misses it; a daemonising double fork also loses its parent link.
//! So the daemon is a child subreaper (orphans of its descendants re-parent to it instead
//! of to init), every component child carries [`COMPONENT_ENV`] naming its component, and
//! a component's members are its leader's descendants plus every process carrying its
//! marker ([`procfs::members`]). Orphans re-parented to the daemon are reaped here; the
//! leaders' exit statuses belong to their waiter threads and are never taken.

use super::procfs::{self, Member};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::{Mutex, Once};
use std::time::Duration;

/// The variable that names a component on every process it starts:
/// `<launcher>/<instance>_<kind>`, where `<launcher>` tells apart launchers with different
/// databases on one machine.
pub const COMPONENT_ENV: &str = "MAILAUNCHER_COMPONENT";

/// How often re-parented orphans are looked for and reaped.
const REAP_EVERY: Duration = Duration::from_millis(200);

/// Pids of component leaders still owned by their waiter threads. Held while a leader is
/// spawned and while the reaper looks, so the reaper never sees a leader it does not know.
static LEADERS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
static INIT: Once = Once::new();

fn leaders() -> std::sync::MutexGuard<'static, Option<HashSet<u32>>> {
    // A panic elsewhere under this lock leaves a set that is still valid.
    LEADERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process a child subreaper and starts the orphan reaper (once per process).
pub(crate) fn init() {
    INIT.call_once(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(error = %e, "could not become a child subreaper; orphans of components re-parent to init");
        }
        let spawned = std::thread::Builder::new()
            .name("mailauncher-reaper".into())
            .spawn(|| {
                let mut adopted = HashSet::new();
                loop {
                    std::thread::sleep(REAP_EVERY);
                    reap_orphans(&mut adopted);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the orphan reaper");
        }
    });
}

/// Runs `spawn` (which returns the new leader's pid) under the leaders lock and registers
/// the pid, so the reaper cannot mistake the fresh leader for an orphan.
pub(crate) fn spawn_leader<T>(
    spawn: impl FnOnce() -> std::io::Result<(T, u32)>,
) -> std::io::Result<T> {
    let mut set = leaders();
    let (out, pid) = spawn()?;
    set.get_or_insert_with(HashSet::new).insert(pid);
    Ok(out)
}

/// The waiter thread reaped its leader.
pub(crate) fn leader_reaped(pid: u32) {
    if let Some(set) = leaders().as_mut() {
        set.remove(&pid);
    }
}

/// One pass: remember live children of ours that carry a component marker and are not
/// leaders (orphans re-parented to us), and reap those of them that exited. A zombie's
/// environment reads as empty, so an orphan is recognised while alive and reaped by pid
/// and start time. Children without a marker (deploy tools, git, the leaders) are left to
/// whoever waits for them.
fn reap_orphans(adopted: &mut HashSet<Member>) {
    let me = std::process::id();
    let guard = leaders();
    let empty = HashSet::new();
    let known = guard.as_ref().unwrap_or(&empty);
    let children: Vec<procfs::Entry> = procfs::table()
        .into_iter()
        .filter(|e| e.ppid == me)
        .collect();
    for c in &children {
        let m = Member {
            pid: c.pid,
            start: c.start,
        };
        if c.zombie {
            if adopted.remove(&m) {
                // Only this pid, never -1: any other child's status stays with its waiter.
                let _ = waitpid(Pid::from_raw(c.pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        } else if !known.contains(&c.pid)
            && !adopted.contains(&m)
            && procfs::has_env_named(c.pid, COMPONENT_ENV)
        {
            adopted.insert(m);
        }
    }
    adopted.retain(|m| {
        children
            .iter()
            .any(|c| c.pid == m.pid && c.start == m.start)
    });
}

/// Sends `sig` to `leader`'s process group and to every member of the component (found
/// now, plus those in `known` that still run with the same start time), and adds the ones
/// found to `known`. Blocking `/proc` reads: a few milliseconds.
pub(crate) fn signal_all(leader: u32, marker: Option<&str>, sig: Signal, known: &mut Vec<Member>) {
    // ESRCH (already gone) is the expected race; nothing else can be done about others.
    let _ = killpg(Pid::from_raw(leader as i32), sig);
    for m in procfs::members(leader, marker) {
        if !known.contains(&m) {
            known.push(m);
        }
    }
    known.retain(|m| m.alive());
    for m in known.iter() {
        // The group signal reached those still in the group; a second SIGINT is a
        // "force quit" to many programs, so each process gets the signal once.
        if procfs::pgrp(m.pid) != Some(leader) {
            let _ = kill(Pid::from_raw(m.pid as i32), sig);
        }
    }
}

/// Terminates every process carrying `marker` (`NAME=value`): `stop.signal`, then SIGKILL
/// to whatever is left after the grace. Used at boot for what a crashed daemon left.
pub(crate) async fn terminate_marked(value: &str, stop: super::StopPolicy) -> Vec<u32> {
    let find = {
        let value = value.to_owned();
        move || procfs::marked(COMPONENT_ENV, &value)
    };
    let first = tokio::task::spawn_blocking(find.clone())
        .await
        .unwrap_or_default();
    if first.is_empty() {
        return first;
    }
    for &pid in &first {
        let _ = kill(Pid::from_raw(pid as i32), stop.signal);
    }
    let deadline = tokio::time::Instant::now() + stop.grace;
    loop {
        let left = tokio::task::spawn_blocking(find.clone())
            .await
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            for pid in left {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            if tokio::time::Instant::now() >= deadline + Duration::from_secs(10) {
                tracing::warn!(component = value, "processes survived SIGKILL");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first
}
