//! Errors of the deploy engine: request refusals (before a job exists) and job failures
//! (carrying the phase and the tool's own message).

use super::cleanup::RemovalReport;
use super::sink::Phase;
use std::path::PathBuf;

/// Why a deploy request was refused. Every variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The instance name is empty or only whitespace.
    #[error("instance name is empty")]
    NameEmpty,
    /// The name has more than 64 characters.
    #[error("instance name is longer than {max} characters")]
    NameTooLong {
        /// The limit.
        max: usize,
    },
    /// The name contains a character outside letters, digits, space, `-`, `_`, `.`.
    #[error("instance name contains {0:?}; allowed are letters, digits, space, '-', '_' and '.'")]
    NameInvalidChar(char),
    /// The install path is empty.
    #[error("install path is empty")]
    PathEmpty,
    /// The path contains a control character.
    #[error("path contains the control character {0:?}")]
    PathInvalidChar(char),
    /// `~user/…` or `~` without a known home.
    #[error("cannot expand {0:?}: only '~' and '~/…' with a known HOME are supported")]
    PathTilde(String),
    /// The path is relative after expanding `~`.
    #[error("path {0:?} is not absolute")]
    PathNotAbsolute(String),
    /// The path is a filesystem root.
    #[error("refusing to deploy into the filesystem root {}", .0.display())]
    PathIsRoot(PathBuf),
    /// The path is a home directory (or contains one).
    #[error("refusing to deploy into the home directory {}", .0.display())]
    PathIsHome(PathBuf),
    /// The path is inside, or contains, a directory the launcher keeps for itself.
    #[error("{} overlaps the launcher's own directory {}", .path.display(), .root.display())]
    PathForbidden {
        /// The requested path.
        path: PathBuf,
        /// The protected directory.
        root: PathBuf,
    },
    /// A system directory, or outside `deploy.allowed_roots`.
    #[error(transparent)]
    PathPolicy(#[from] crate::path_policy::PathRefusal),
    /// The path exists and is not a directory.
    #[error("{} exists and is not a directory", .0.display())]
    PathNotDir(PathBuf),
    /// The directory exists and has entries.
    #[error("{} is not empty; choose an empty or new directory", .0.display())]
    PathNotEmpty(PathBuf),
    /// The path cannot be inspected.
    #[error("cannot inspect {}: {}", .path.display(), .message)]
    PathUnreadable {
        /// The path.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The adapter path equals or contains the install path.
    #[error("adapter path {} must not equal or contain the install path", .0.display())]
    AdapterPathOverlap(PathBuf),
    /// The host is not an IP address or `localhost`.
    #[error("host {0:?} is not an IP address or 'localhost'")]
    InvalidHost(String),
    /// A port outside 1024–65535.
    #[error("port {0} is outside 1024-65535")]
    PortOutOfRange(u32),
    /// Two components asked for the same port.
    #[error("port {0} is requested twice")]
    PortDuplicate(u16),
    /// Another instance is configured with this port.
    #[error("port {0} is already used by another instance")]
    PortInUse(u16),
    /// Something on this host listens on the port.
    #[error("port {0} is already bound on this host")]
    PortBound(u16),
    /// A component kind this launcher cannot deploy.
    #[error("unknown component {0:?}; known are 'main' and 'napcat-ada'")]
    UnknownComponent(String),
    /// A component listed twice.
    #[error("component {0:?} is listed twice")]
    DuplicateComponent(String),
    /// The version is not in the version list.
    #[error("version {0:?} does not exist upstream")]
    UnknownVersion(String),
    /// The version list could not be read and nothing is cached.
    #[error("cannot list versions: {0}")]
    VersionsUnavailable(String),
    /// A tag outside every recipe's version range.
    #[error(
        "no deploy recipe for MaiBot {0:?}: the launcher knows the release families 0.x (0.7-0.12), 1.0-1.1 and 1.2"
    )]
    NoRecipe(String),
    /// Every port of `deploy.port_range` is taken.
    #[error(
        "no free port left in deploy.port_range {first}-{last}; widen the range or free a port"
    )]
    NoFreePort {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The named adapter version is not a tag, branch or commit of the adapter repository.
    #[error("adapter version {0:?} does not exist in the adapter repository")]
    UnknownAdapterVersion(String),
    /// The named adapter cannot run with this MaiBot version.
    #[error("adapter {adapter} does not pair with MaiBot {maibot}: {reason}")]
    AdapterIncompatible {
        /// The adapter ref.
        adapter: String,
        /// The MaiBot version.
        maibot: String,
        /// Why.
        reason: String,
    },
    /// A required tool is missing or unusable.
    #[error("{tool} not found ({detail}); install it or set {config_key} to its path")]
    ToolMissing {
        /// `git`, `python >= 3.10`, `uv`.
        tool: String,
        /// What was tried and how it failed.
        detail: String,
        /// The config key that points the launcher at it (`deploy.git`).
        config_key: &'static str,
    },
    /// No interpreter satisfies the version and none can be provisioned.
    #[error("{need}; found {}. {hint}", found_list(.found))]
    PythonUnavailable {
        /// What is needed: `MaiBot 1.2.1 needs Python >=3.12`.
        need: String,
        /// Every interpreter found, as `3.11.2 (/usr/bin/python3)`.
        found: Vec<String>,
        /// What to install or set.
        hint: String,
    },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "no Python interpreter".to_string()
    } else {
        found.join(", ")
    }
}

impl ValidationError {
    /// Stable machine code for the API's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NameEmpty | Self::NameTooLong { .. } | Self::NameInvalidChar(_) => "invalid_name",
            Self::PathEmpty
            | Self::PathInvalidChar(_)
            | Self::PathTilde(_)
            | Self::PathNotAbsolute(_) => "invalid_path",
            Self::PathIsRoot(_) | Self::PathIsHome(_) | Self::PathForbidden { .. } => {
                "forbidden_path"
            }
            Self::PathPolicy(r) => r.code(),
            Self::PathNotDir(_) | Self::PathNotEmpty(_) => "path_not_empty",
            Self::PathUnreadable { .. } => "path_unreadable",
            Self::AdapterPathOverlap(_) => "invalid_path",
            Self::InvalidHost(_) => "invalid_host",
            Self::PortOutOfRange(_) => "invalid_port",
            Self::PortDuplicate(_) | Self::PortInUse(_) | Self::PortBound(_) => "port_unavailable",
            Self::UnknownComponent(_) | Self::DuplicateComponent(_) => "invalid_component",
            Self::UnknownVersion(_) | Self::NoRecipe(_) => "unknown_version",
            Self::VersionsUnavailable(_) => "versions_unavailable",
            Self::ToolMissing { .. } => "tool_missing",
            Self::NoFreePort { .. } => "port_unavailable",
            Self::UnknownAdapterVersion(_) => "unknown_adapter_version",
            Self::AdapterIncompatible { .. } => "adapter_incompatible",
            Self::PythonUnavailable { .. } => "python_unavailable",
        }
    }
}

/// Why a deploy job did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request was refused.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A phase failed; `message` is the real cause (tool output included).
    #[error("{phase} failed: {message}")]
    Failed {
        /// Where it failed.
        phase: Phase,
        /// What failed.
        message: String,
        /// What the cleanup removed and kept.
        cleanup: RemovalReport,
    },
    /// The job was canceled; the running step's process group was killed.
    #[error("canceled during {phase}")]
    Canceled {
        /// The phase that was running.
        phase: Phase,
        /// What the cleanup removed and kept.
        cleanup: RemovalReport,
    },
}

impl DeployError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(v) => v.code(),
            Self::Failed { .. } => "deploy_failed",
            Self::Canceled { .. } => "canceled",
        }
    }

    /// The phase the job was in (validation errors: `Validate`).
    pub fn phase(&self) -> Phase {
        match self {
            Self::Invalid(_) => Phase::Validate,
            Self::Failed { phase, .. } | Self::Canceled { phase, .. } => *phase,
        }
    }
}

/// Failure inside a phase before it is tagged with the phase and cleaned up.
#[derive(Debug)]
pub(crate) enum StepError {
    Failed(String),
    Canceled,
}

impl From<std::io::Error> for StepError {
    fn from(e: std::io::Error) -> Self {
        StepError::Failed(e.to_string())
    }
}

pub(crate) type StepResult<T> = Result<T, StepError>;
