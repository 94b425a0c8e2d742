//! The error type of `launcher-core`, mapped once at the API boundary.

use crate::supervisor::SupervisorError;

/// Everything a core operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The named thing does not exist (in this tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The request clashes with existing state (a taken name, a used port, a running job).
    #[error("{0}")]
    Conflict(String),
    /// A request refused with a specific machine code (deploy validation).
    #[error("{detail}")]
    Rejected {
        /// Stable code, e.g. `path_not_empty`.
        code: &'static str,
        /// Human explanation.
        detail: String,
    },
    /// The request is malformed or not allowed in the current state.
    #[error("{0}")]
    Invalid(String),
    /// The data plane failed.
    #[error(transparent)]
    Db(#[from] maim_db::DbError),
    /// A power action failed.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// A file or process operation failed.
    #[error("{0}")]
    Io(String),
    /// A trash operation failed (restore refused, entry missing, …).
    #[error(transparent)]
    Trash(#[from] crate::trash::TrashError),
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Io(e.to_string())
    }
}
