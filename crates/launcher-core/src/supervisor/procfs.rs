//! Facts about processes from `/proc`, for recognising our own children across daemon
//! restarts.

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

#[cfg(test)]
mod tests {
    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 3 0 12345 0 0";
        let p = super::parse_stat(42, line).unwrap();
        assert_eq!((p.session, p.threads), (42, 3));
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
