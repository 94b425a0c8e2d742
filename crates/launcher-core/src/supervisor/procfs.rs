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

#[cfg(test)]
mod tests {
    #[test]
    fn our_own_start_time_is_stable_and_a_missing_pid_has_none() {
        let me = std::process::id();
        let a = super::start_time(me);
        assert!(a.is_some());
        assert_eq!(a, super::start_time(me));
        assert_eq!(super::start_time(u32::MAX - 1), None);
    }
}
