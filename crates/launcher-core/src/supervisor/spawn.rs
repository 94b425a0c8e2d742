//! The one place a process is started. Commands are argv arrays built by the launcher,
//! never a shell string; every child gets its own session and process group (its pid)
//! inside a PTY.

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Environment variables never passed to a child: the launcher's own secrets and settings.
/// Profiles add their own names to this (MaiBot: `HOST`, `PORT`, …).
pub const ENV_DENY_LIST: &[&str] = &["MAILAUNCHER_", "MAIM_API_KEY_PEPPER", "DATABASE_URL"];

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Program and arguments (`argv[0]` is looked up on `PATH`).
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Variables to add or override, applied in order after `env_remove` (a later entry
    /// wins; see `profile::Profile::spec` for how a component's list is built).
    pub env: Vec<(String, String)>,
    /// Inherited variables to drop (exact names, or prefixes ending in `_`).
    pub env_remove: Vec<String>,
    /// Terminal rows and columns.
    pub size: (u16, u16),
}

impl ProcessSpec {
    /// A spec with the default terminal size and environment policy.
    pub fn new(argv: Vec<String>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            argv,
            cwd: cwd.into(),
            env: Vec::new(),
            env_remove: ENV_DENY_LIST.iter().map(|s| s.to_string()).collect(),
            size: (30, 120),
        }
    }
}

/// A started process with its PTY ends.
pub struct Spawned {
    /// The child's pid, which is also its process-group id.
    pub pid: u32,
    /// The child, as the standard library sees it (for exact exit codes and signals).
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    /// The PTY master (for resizing).
    pub master: Box<dyn MasterPty + Send>,
    /// Everything the child writes.
    pub reader: Box<dyn Read + Send>,
    /// The child's terminal input.
    pub writer: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned").field("pid", &self.pid).finish()
    }
}

/// Starts `spec` in a fresh PTY.
pub fn spawn(spec: &ProcessSpec) -> std::io::Result<Spawned> {
    let Some(program) = spec.argv.first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    if !spec.cwd.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("working directory {} does not exist", spec.cwd.display()),
        ));
    }
    let (rows, cols) = spec.size;
    let pair = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(pty_err)?;
    let mut cmd = CommandBuilder::new(program);
    cmd.args(&spec.argv[1..]);
    cmd.cwd(&spec.cwd);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        let denied = spec.env_remove.iter().any(|d| {
            if d.ends_with('_') {
                name.starts_with(d.as_str())
            } else {
                name == d.as_str()
            }
        });
        if denied {
            cmd.env_remove(&k);
        }
    }
    cmd.env("TERM", "xterm-256color");
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let child = pair.slave.spawn_command(cmd).map_err(pty_err)?;
    // Our copy of the child's side must close, or the master never sees end of file.
    drop(pair.slave);
    let pid = child
        .process_id()
        .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
    let reader = pair.master.try_clone_reader().map_err(pty_err)?;
    let writer = pair.master.take_writer().map_err(pty_err)?;
    Ok(Spawned {
        pid,
        child,
        master: pair.master,
        reader,
        writer,
    })
}

/// portable-pty reports errors as `anyhow::Error`; keep only their text so this crate does
/// not depend on anyhow.
fn pty_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
