//! Running components: one actor task per component owns its process; every power action
//! goes through the actor's channel, so concurrent requests are serialized.

mod component;
mod instances;
mod members;
pub mod procfs;
pub mod spawn;

pub use component::{Component, ComponentConfig};
pub use instances::{
    InstanceLock, ReconcileReport, StateChange, Supervisor, SupervisorConfig, derived_argv,
    python_for, summary,
};
pub use members::COMPONENT_ENV;
/// Re-exported so configuration can name stop signals.
pub use nix::sys::signal::Signal;
pub use spawn::{ProcessSpec, spawn};

use chrono::{DateTime, Utc};
use std::time::Duration;

/// Observed state of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No process, none wanted.
    Stopped,
    /// A process was spawned and is not ready yet (its ready line and ports, see
    /// [`Readiness`]), or, without a pid, it waits for the component before it in the
    /// start order to be ready.
    Starting,
    /// The process is alive and ready.
    Running,
    /// Asked to stop; waiting for it to exit (then SIGKILL after the grace period).
    Stopping,
    /// Crashed; waiting before the next start.
    Backoff,
    /// Crashed too often (or could not start); needs a user's start.
    Failed,
}

impl State {
    /// The machine word used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Backoff => "backoff",
            State::Failed => "failed",
        }
    }
}

/// The state of an instance, summarised over its components' statuses by [`summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Nothing runs.
    Stopped,
    /// A component is starting (or waiting for the one before it).
    Starting,
    /// Every component that should run is running.
    Running,
    /// Some components run while others failed or stopped on their own, e.g. MaiBot runs
    /// but its adapter gave up.
    Degraded,
    /// A component is stopping.
    Stopping,
    /// A component crashed and waits for its restart.
    Backoff,
    /// Components failed and none runs.
    Failed,
}

impl InstanceState {
    /// The machine word used by the modern API, on the event bus and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Stopped => "stopped",
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Degraded => "degraded",
            InstanceState::Stopping => "stopping",
            InstanceState::Backoff => "backoff",
            InstanceState::Failed => "failed",
        }
    }

    /// The word in the legacy frontend's vocabulary, which has no `degraded`: an instance
    /// whose MaiBot answers is closest to `running` there.
    pub fn legacy_str(self) -> &'static str {
        match self {
            InstanceState::Degraded => "running",
            other => other.as_str(),
        }
    }
}

/// When a spawned component counts as ready (state `running`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// An output line containing one of these (ANSI escapes removed) must be seen; empty:
    /// none is needed.
    pub lines: Vec<String>,
    /// Each of these ports must accept a TCP connection on 127.0.0.1 (probed every
    /// [`Readiness::PROBE_EVERY`] once the line was seen, only while starting).
    pub ports: Vec<u16>,
    /// Not ready by then: a warning goes into its log and the process is ended as a
    /// failure ("not ready after N s"), which the restart policy handles like a crash.
    pub timeout: Duration,
}

impl Readiness {
    /// Interval of the port probe.
    pub const PROBE_EVERY: Duration = Duration::from_millis(250);

    /// Whether there is nothing to wait for (ready when spawned).
    pub fn immediate(&self) -> bool {
        self.lines.is_empty() && self.ports.is_empty()
    }
}

impl Default for Readiness {
    /// Ready when spawned.
    fn default() -> Self {
        Self {
            lines: Vec::new(),
            ports: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }
}

/// When a component is started again after it exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    /// Never.
    Never,
    /// When it exits unsuccessfully (non-zero code or a signal).
    OnFailure,
    /// Whenever it exits without being asked to.
    Always,
}

/// Crash handling: exponential backoff and an optional give-up.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// When to restart.
    pub mode: RestartMode,
    /// First delay.
    pub backoff_initial: Duration,
    /// Largest delay.
    pub backoff_max: Duration,
    /// A run at least this long resets the delay to `backoff_initial`.
    pub reset_after: Duration,
    /// Give up (state `failed`) after this many crashes within this window.
    pub give_up: Option<(u32, Duration)>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            mode: RestartMode::OnFailure,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
            give_up: Some((5, Duration::from_secs(600))),
        }
    }
}

/// How a component is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPolicy {
    /// Signal sent to the whole process group first (default SIGINT, as Ctrl-C).
    pub signal: nix::sys::signal::Signal,
    /// Time allowed before SIGKILL to the group.
    pub grace: Duration,
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self {
            signal: nix::sys::signal::Signal::SIGINT,
            grace: Duration::from_secs(10),
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// When it was reaped.
    pub at: DateTime<Utc>,
    /// Whether the exit was asked for (stop, restart, kill) rather than a crash.
    pub requested: bool,
    /// Why the launcher ended the process on its own, e.g. "not ready after 120 s".
    pub reason: Option<String>,
}

impl ExitInfo {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none()
    }

    /// "exited with code 3", "killed by signal 9 (SIGKILL)", "not ready after 120 s
    /// (killed by signal 2 (SIGINT))".
    pub fn describe(&self) -> String {
        let how = self.how();
        match &self.reason {
            Some(r) => format!("{r} ({how})"),
            None => how,
        }
    }

    fn how(&self) -> String {
        match (self.code, self.signal) {
            (_, Some(s)) => {
                let name = nix::sys::signal::Signal::try_from(s)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                format!("killed by signal {s} ({name})")
            }
            (Some(c), None) => format!("exited with code {c}"),
            (None, None) => "exited".into(),
        }
    }
}

/// Why a component is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What happened, e.g. "crashed 5 times within 600 s; last: exited with code 1".
    pub reason: String,
    /// The last lines of its output as plain text (no ANSI escapes, carriage returns
    /// applied); the terminal keeps the raw bytes.
    pub last_lines: Vec<String>,
}

/// A component's observable state and statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Observed state.
    pub state: State,
    /// Pid (= process group) of the live process.
    pub pid: Option<u32>,
    /// Processes started.
    pub start_count: u64,
    /// Exits that were not asked for.
    pub crash_count: u64,
    /// Automatic restarts: after a crash, or asked for by the program's restart exit code.
    pub restart_count: u64,
    /// When the live process started.
    pub started_at: Option<DateTime<Utc>>,
    /// Runtime of every finished run.
    pub total_runtime: Duration,
    /// How the last process ended.
    pub last_exit: Option<ExitInfo>,
    /// Why it is `failed` (or not started).
    pub failure: Option<Failure>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            state: State::Stopped,
            pid: None,
            start_count: 0,
            crash_count: 0,
            restart_count: 0,
            started_at: None,
            total_runtime: Duration::ZERO,
            last_exit: None,
            failure: None,
        }
    }
}

impl Status {
    /// How long the live process has been running.
    pub fn uptime(&self) -> Option<Duration> {
        self.started_at.and_then(|s| (Utc::now() - s).to_std().ok())
    }
}

/// What a power action can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// Input or resize for a component with no process.
    #[error("the component is not running")]
    NotRunning,
    /// The process could not be started.
    #[error("could not start: {0}")]
    Spawn(String),
    /// The actor is gone (the supervisor is shutting down).
    #[error("the component's supervisor has stopped")]
    Gone,
}
