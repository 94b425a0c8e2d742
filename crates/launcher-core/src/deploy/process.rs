//! Running the deploy's external tools (git, python, uv): argv only, no shell, each in its
//! own process group so a cancel or timeout kills everything the tool started (pip builds,
//! git helpers), with output delivered line by line as it arrives.

use super::cancel::CancelToken;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Launcher variables a child must not inherit (kept in step with the supervisor's spawner).
const ENV_DENY_PREFIXES: &[&str] = &["MAILAUNCHER_"];
/// Installer settings from the launcher's own environment would override the index the
/// launcher passes (or add one silently), so tools never inherit them.
const ENV_DENY_EXACT: &[&str] = &[
    "MAIM_API_KEY_PEPPER",
    "DATABASE_URL",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    // The launcher's own log filter: uv reads it too, and `RUST_LOG=info` turns every
    // install into thousands of resolver trace lines in the job log.
    "RUST_LOG",
];

/// Lines longer than this are cut, so a tool printing without newlines cannot grow memory.
const MAX_LINE: usize = 8 * 1024;
/// Lines kept for the error message of a failed command.
const TAIL_LINES: usize = 25;
/// How long output may keep flowing after the tool itself exited (a grandchild holding the
/// pipe) before the group is killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One external command.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Cmd {
    pub(crate) fn new(program: impl AsRef<Path>) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    pub(crate) fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// `program arg arg…` for log lines.
    pub(crate) fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn build(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Never let git or pip stop to ask for credentials or confirmation.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHONUNBUFFERED", "1");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ENV_DENY_PREFIXES.iter().any(|p| k.starts_with(p))
                || ENV_DENY_EXACT.contains(&k.as_ref())
            {
                c.env_remove(k.as_ref());
            }
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }
}

/// Why a command did not run to completion.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} did not finish within {secs} s and was killed")]
    Timeout { program: String, secs: u64 },
    #[error("canceled")]
    Canceled,
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// A finished command.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// The last lines of output (both streams), for error messages.
    pub(crate) tail: Vec<String>,
}

impl Finished {
    /// `"exit status N: last lines"` for a failure message.
    pub(crate) fn failure_summary(&self) -> String {
        let mut s = match self.status.code() {
            Some(c) => format!("exit code {c}"),
            None => format!("{}", self.status),
        };
        let tail: Vec<&str> = self
            .tail
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(String::as_str)
            .collect();
        if !tail.is_empty() {
            s.push_str(": ");
            s.push_str(&tail.join(" | "));
        }
        s
    }
}

/// Kills the whole process group when dropped while armed, so a dropped future (the job
/// task aborted) does not leave a pip build running.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(p) = self.pgid.take() {
            // ESRCH just means everything already exited.
            let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` to completion, calling `on_line` for every line of output (split on `\n` and
/// `\r`, so git's in-place progress arrives as separate lines). On `timeout` or `cancel` the
/// process group is SIGKILLed and reaped before returning.
pub(crate) async fn run(
    cmd: &Cmd,
    timeout: Duration,
    cancel: Option<&CancelToken>,
    on_line: &mut (dyn FnMut(Stream, &str) + Send),
) -> Result<Finished, RunError> {
    let program = cmd.program.display().to_string();
    if cancel.is_some_and(CancelToken::is_canceled) {
        return Err(RunError::Canceled);
    }
    let mut child = cmd.build().spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let mut guard = GroupGuard {
        pgid: child.id().and_then(|p| i32::try_from(p).ok()),
    };

    let (tx, mut rx) = mpsc::channel::<(Stream, String)>(256);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, Stream::Stdout, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, Stream::Stderr, tx.clone()));
    }
    drop(tx);

    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut deliver = |stream: Stream, line: String| {
        on_line(stream, &line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };

    let deadline = tokio::time::Instant::now() + timeout;
    let never = CancelToken::new();
    let cancel = cancel.unwrap_or(&never);
    let mut status: Option<ExitStatus> = None;
    let mut pipes_open = true;
    let mut drain_deadline: Option<tokio::time::Instant> = None;

    loop {
        if status.is_some() && !pipes_open {
            break;
        }
        tokio::select! {
            biased;
            _ = cancel.canceled() => {
                guard.kill();
                let _ = child.wait().await;
                return Err(RunError::Canceled);
            }
            _ = tokio::time::sleep_until(deadline) => {
                guard.kill();
                let _ = child.wait().await;
                return Err(RunError::Timeout { program, secs: timeout.as_secs() });
            }
            msg = rx.recv(), if pipes_open => match msg {
                Some((s, l)) => deliver(s, l),
                None => pipes_open = false,
            },
            res = child.wait(), if status.is_none() => match res {
                Ok(s) => {
                    status = Some(s);
                    drain_deadline = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                Err(source) => {
                    guard.kill();
                    return Err(RunError::Wait { program, source });
                }
            },
            _ = sleep_until_opt(drain_deadline), if drain_deadline.is_some() && pipes_open => {
                // Something the tool started still holds the pipes; the tool is done, so
                // its leftovers go too. The group id cannot be reused while they live.
                guard.kill();
                while let Ok(m) = rx.try_recv() {
                    deliver(m.0, m.1);
                }
                pipes_open = false;
            }
        }
    }
    guard.disarm();
    match status {
        Some(status) => Ok(Finished {
            status,
            tail: tail.into_iter().collect(),
        }),
        None => Err(RunError::Wait {
            program,
            source: std::io::Error::other("no exit status"),
        }),
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}

async fn read_lines<R: AsyncRead + Unpin>(
    mut r: R,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    let mut buf = [0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                if !flush(&mut line, stream, &tx).await {
                    return;
                }
            } else {
                line.push(b);
                if line.len() >= MAX_LINE && !flush(&mut line, stream, &tx).await {
                    return;
                }
            }
        }
    }
    flush(&mut line, stream, &tx).await;
}

/// Sends the pending line if it has visible content; false when the receiver is gone.
async fn flush(line: &mut Vec<u8>, stream: Stream, tx: &mpsc::Sender<(Stream, String)>) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        line.clear();
        return true;
    }
    let text = String::from_utf8_lossy(line).trim_end().to_string();
    line.clear();
    tx.send((stream, text)).await.is_ok()
}

/// Runs `cmd` and collects its stdout (stderr goes to the tail only). For short queries
/// such as `--version` and `ls-remote`.
pub(crate) async fn capture(
    cmd: &Cmd,
    timeout: Duration,
    cancel: Option<&CancelToken>,
) -> Result<(Finished, Vec<String>), RunError> {
    let mut out = Vec::new();
    let fin = run(cmd, timeout, cancel, &mut |s, l| {
        if s == Stream::Stdout {
            out.push(l.to_string());
        }
    })
    .await?;
    Ok((fin, out))
}
