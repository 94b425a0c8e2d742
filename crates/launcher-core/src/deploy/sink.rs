//! How a running deploy reports phases, progress, log lines and per-component status. The
//! runner only calls the sink; persisting and streaming are the caller's business.

use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};

/// The phases of a deploy, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Request checks, done before the job exists. Progress 0.
    Validate,
    /// Git fetch of MaiBot and the adapter. Progress 2–40.
    Fetch,
    /// Virtual environments and requirements. Progress 40–85.
    Environment,
    /// Config files from templates. Progress 85–93.
    Configure,
    /// EULA / privacy confirmation files. Progress 93–96.
    Eula,
    /// Recording the instance: the caller's phase (96–100), never reported by the runner.
    Register,
}

impl Phase {
    /// Machine name, as stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Validate => "validate",
            Phase::Fetch => "fetch",
            Phase::Environment => "environment",
            Phase::Configure => "configure",
            Phase::Eula => "eula",
            Phase::Register => "register",
        }
    }

    /// 1-based position, for "phase n/6" messages.
    pub fn number(self) -> u8 {
        match self {
            Phase::Validate => 1,
            Phase::Fetch => 2,
            Phase::Environment => 3,
            Phase::Configure => 4,
            Phase::Eula => 5,
            Phase::Register => 6,
        }
    }

    /// The progress span `(start, end)` this phase covers.
    pub fn span(self) -> (u8, u8) {
        match self {
            Phase::Validate => (0, 2),
            Phase::Fetch => (2, 40),
            Phase::Environment => (40, 85),
            Phase::Configure => (85, 93),
            Phase::Eula => (93, 96),
            Phase::Register => (96, 100),
        }
    }

    /// The overall progress `fraction` (0.0–1.0) of the way through this phase.
    pub fn at(self, fraction: f64) -> u8 {
        let (a, b) = self.span();
        let f = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // The span is at most 100 wide, so the rounded value fits in u8.
        a.saturating_add((f64::from(b - a) * f).round() as u8)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a job log line (the legacy frontend's four levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Progress narration and tool output.
    Info,
    /// Something went wrong but the deploy goes on (e.g. a mirror fallback).
    Warning,
    /// The deploy failed; the line says why.
    Error,
    /// A step completed.
    Success,
}

impl LogLevel {
    /// Machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Success => "success",
        }
    }
}

/// Receives everything a deploy reports. Calls come from the runner's task, in order; an
/// implementation must not block for long (queue, don't write synchronously to a slow
/// store).
pub trait DeploySink: Send + Sync {
    /// The job entered or advanced within `phase`; `progress` (0–100) never decreases
    /// across calls of one run.
    fn phase(&self, phase: Phase, progress: u8);
    /// One log line (never contains a newline).
    fn log(&self, level: LogLevel, line: &str);
    /// Status of one component (`main`, `napcat-ada`): `status` is one of `pending`,
    /// `fetching`, `installing`, `configuring`, `completed`, `failed`, `canceled`;
    /// `progress` is that component's own 0–100.
    fn component(&self, name: &str, status: &str, progress: u8, message: &str);
}

/// Wraps a sink so reported progress never goes backwards: a lower value is raised to the
/// highest already reported.
pub struct MonotonicProgress<'a> {
    sink: &'a dyn DeploySink,
    last: AtomicU8,
}

impl std::fmt::Debug for MonotonicProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonotonicProgress")
            .field("last", &self.last.load(Ordering::Relaxed))
            .finish()
    }
}

impl<'a> MonotonicProgress<'a> {
    /// Starts at `start`, without reporting anything.
    pub fn new(sink: &'a dyn DeploySink, start: u8) -> Self {
        Self {
            sink,
            last: AtomicU8::new(start.min(100)),
        }
    }

    /// Reports `phase` at `max(progress, highest so far)` and returns the value reported.
    pub fn set(&self, phase: Phase, progress: u8) -> u8 {
        let wanted = progress.min(100);
        let prev = self.last.fetch_max(wanted, Ordering::SeqCst);
        let value = prev.max(wanted);
        self.sink.phase(phase, value);
        value
    }

    /// The highest progress reported so far.
    pub fn current(&self) -> u8 {
        self.last.load(Ordering::SeqCst)
    }

    /// The wrapped sink.
    pub fn sink(&self) -> &'a dyn DeploySink {
        self.sink
    }
}
