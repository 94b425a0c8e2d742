//! Facts about processes from `/proc`, for recognising our own children across daemon
//! restarts and for finding every member of a component (its descendants, and processes
//! carrying its marker variable that left its session or were re-parented).

/// The process's start time (clock ticks since boot), or `None` when it does not exist or
/// is a zombie. A pid plus this value identifies a process; a reused pid has another.
pub fn start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    start_time(pid).is_some()
}

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// Session id: every process a component starts stays in the session its leader opened.
    pub session: u32,
    /// Number of threads.
    pub threads: u64,
}

fn parse_stat(pid: u32, stat: &str) -> Option<ProcStat> {
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    Some(ProcStat {
        pid,
        session: f.get(3)?.parse().ok()?,
        threads: f.get(17)?.parse().ok()?,
    })
}

/// Every live process whose session id is one of `sessions`. Components are session
/// leaders, so this is each component's whole process tree, grandchildren included, even
/// after an intermediate parent exited.
pub fn session_members(sessions: &[u32]) -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .filter(|p| sessions.contains(&p.session))
        .collect()
}

/// One entry of the process table, zombies included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: u32,
    /// Start time (clock ticks since boot); with the pid, the process's identity.
    pub start: i64,
    /// Whether it exited and waits to be reaped.
    pub zombie: bool,
}

fn parse_entry(pid: u32, stat: &str) -> Option<Entry> {
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Entry {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        zombie: f.first() == Some(&"Z"),
    })
}

fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The process group of `pid`, when it exists.
pub fn pgrp(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_entry(pid, &stat).map(|e| e.pgrp)
}

/// Every process in the table (an empty list where `/proc` is absent).
pub fn table() -> Vec<Entry> {
    pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_entry(pid, &stat)
        })
        .collect()
}

/// Whether `pid`'s environment holds exactly `var` (`NAME=value`). Unreadable (another
/// user's process) or gone reads as no; a zombie's environment reads as empty.
pub fn has_env(pid: u32, var: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == var.as_bytes()))
}

/// Whether `pid`'s environment holds a variable named `name` (any value).
pub fn has_env_named(pid: u32, name: &str) -> bool {
    let prefix = format!("{name}=");
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|b| *b == 0)
            .any(|v| v.starts_with(prefix.as_bytes()))
    })
}

/// Live processes (never this one) whose environment holds `name=value`. Whatever a
/// marked process starts inherits the marker unless it clears its environment, so this
/// finds a tree without anything recorded, and a reused pid cannot carry a marker it never
/// had.
pub fn marked(name: &str, value: &str) -> Vec<u32> {
    let var = format!("{name}={value}");
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != me && has_env(pid, &var))
        .collect()
}

/// A member of a component: pid plus start time, so a reused pid is never signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    /// Process id.
    pub pid: u32,
    /// Start time (clock ticks since boot).
    pub start: i64,
}

impl Member {
    /// Whether this very process still runs (same pid, same start time, not a zombie).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The live members of a component: `leader` and its descendants (following parent links,
/// so a child that called `setsid()` or `setpgid()` is still found while its parent
/// lives), plus every process whose environment holds `marker` (`NAME=value`), which finds
/// orphans re-parented away from the tree. Never this process.
pub fn members(leader: u32, marker: Option<&str>) -> Vec<Member> {
    let me = std::process::id();
    let table = table();
    let mut out: Vec<Member> = Vec::new();
    let push = |e: &Entry, out: &mut Vec<Member>| {
        if !e.zombie && e.pid != me && !out.iter().any(|m| m.pid == e.pid) {
            out.push(Member {
                pid: e.pid,
                start: e.start,
            });
        }
    };
    if let Some(l) = table.iter().find(|e| e.pid == leader) {
        push(l, &mut out);
    }
    let mut frontier = vec![leader];
    let mut seen = std::collections::HashSet::new();
    while let Some(parent) = frontier.pop() {
        if !seen.insert(parent) {
            continue;
        }
        for e in table.iter().filter(|e| e.ppid == parent) {
            push(e, &mut out);
            frontier.push(e.pid);
        }
    }
    if let Some(marker) = marker {
        for e in &table {
            if has_env(e.pid, marker) {
                push(e, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 3 0 12345 0 0";
        let p = super::parse_stat(42, line).unwrap();
        assert_eq!((p.session, p.threads), (42, 3));
    }

    #[test]
    fn table_entries_carry_parent_group_start_and_zombie_state() {
        let line = "42 (a) b (c) Z 1 40 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 3 0 12345 0 0";
        let e = super::parse_entry(42, line).unwrap();
        assert_eq!((e.ppid, e.pgrp, e.start, e.zombie), (1, 40, 12345, true));
    }

    #[test]
    fn our_own_children_are_members_and_a_missing_leader_has_none() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let members = super::members(me, None);
        assert!(members.iter().any(|m| m.pid == child.id()));
        assert!(members.iter().all(|m| m.pid != me), "never this process");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(super::members(u32::MAX - 1, None).is_empty());
    }

    #[test]
    fn our_own_start_time_is_stable_and_a_missing_pid_has_none() {
        let me = std::process::id();
        let a = super::start_time(me);
        assert!(a.is_some());
        assert_eq!(a, super::start_time(me));
        assert_eq!(super::start_time(u32::MAX - 1), None);
    }
}
