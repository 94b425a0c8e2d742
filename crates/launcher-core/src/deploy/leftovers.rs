//! Processes a deploy job left behind when the launcher died under it.
//!
//! Every command a job runs carries `MAILAUNCHER_JOB_ID=<job id>` in its environment, and
//! whatever it starts (pip's build backends, git's helpers) inherits it. A launcher that was
//! killed never ran its process-group guards, so at the next start the job's tools may still
//! be writing into the folders recovery is about to remove. The marker finds them without
//! anything recorded before the crash, and a reused pid cannot match a job id.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

/// The environment variable that marks a job's processes.
pub(crate) const JOB_ENV: &str = "MAILAUNCHER_JOB_ID";

/// How long to wait for killed processes to disappear.
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Pids of live processes carrying `job_id`'s marker (none where `/proc` is absent; never
/// the launcher itself, whatever it inherited).
fn marked(job_id: &str) -> Vec<i32> {
    crate::supervisor::procfs::marked(JOB_ENV, job_id)
        .into_iter()
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// SIGKILLs every process marked with `job_id` and waits (up to ten seconds) until none is
/// left; returns how many were killed.
pub async fn kill_leftovers(job_id: &str) -> usize {
    let mut killed = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + GONE_WITHIN;
    loop {
        // Reading every process's environment is blocking file I/O.
        let id = job_id.to_owned();
        let pids = tokio::task::spawn_blocking(move || marked(&id))
            .await
            .unwrap_or_default();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed.insert(pid);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                job = job_id,
                "processes of an interrupted job survived SIGKILL"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !killed.is_empty() {
        tracing::warn!(
            job = job_id,
            count = killed.len(),
            "killed processes left running by an interrupted deploy job"
        );
    }
    killed.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[tokio::test]
    async fn kills_a_jobs_processes_and_their_children_and_nothing_else() {
        // A job's tool that started a grandchild, as pip does, then lost its launcher.
        let mut tool = std::process::Command::new("sh")
            .args(["-c", "sleep 300 & exec sleep 300"])
            .env(JOB_ENV, "job-under-test")
            .spawn()
            .unwrap();
        let mut bystander = std::process::Command::new("sleep")
            .arg("300")
            .env(JOB_ENV, "another-job")
            .spawn()
            .unwrap();
        // The grandchild exists once the shell has forked it.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while marked("job-under-test").len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        assert_eq!(kill_leftovers("job-under-test").await, 2);
        assert!(marked("job-under-test").is_empty());
        assert!(tool.wait().unwrap().signal().is_some());
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "another job's process was hit"
        );
        bystander.kill().unwrap();
        bystander.wait().unwrap();
        assert_eq!(kill_leftovers("job-under-test").await, 0);
    }
}
