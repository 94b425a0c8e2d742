//! Whether the deploy's remote ends answer, for `mailauncher doctor`: each git source URL
//! (`git ls-remote --heads`, in its own process group, killed at the deadline).

use super::process::{self, Cmd};
use std::path::Path;
use std::time::Duration;

/// Longest error text kept: a failing remote should not fill the report.
const ERROR_MAX: usize = 200;

/// Asks `url` for its branches with `git ls-remote --heads` (never prompting for
/// credentials) and returns how many it listed. The error is one short line.
pub async fn git_source_answers(git: &Path, url: &str, timeout: Duration) -> Result<usize, String> {
    let cmd = Cmd::new(git)
        .args(["ls-remote", "--heads", url])
        .env("LC_ALL", "C");
    match process::capture(&cmd, timeout, None).await {
        Ok((fin, out)) if fin.status.success() => Ok(out.len()),
        Ok((fin, _)) => Err(short(&fin.failure_summary())),
        Err(e) => Err(short(&e.to_string())),
    }
}

fn short(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(ERROR_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_repository_answers_and_a_closed_port_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.git");
        let st = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo)
            .status()
            .unwrap();
        assert!(st.success());
        let git = Path::new("git");
        let t = Duration::from_secs(5);
        assert_eq!(
            git_source_answers(git, &repo.display().to_string(), t).await,
            Ok(0)
        );
        let e = git_source_answers(git, "http://127.0.0.1:9/x.git", t)
            .await
            .unwrap_err();
        assert!(e.len() <= ERROR_MAX + 4, "{e}");
    }
}
