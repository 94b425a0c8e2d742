//! Error type shared by every MaiBot database operation.

use std::path::PathBuf;

/// Result alias used across the `maibot_db` module.
pub type Result<T, E = MaibotDbError> = std::result::Result<T, E>;

/// Everything that can go wrong while touching a MaiBot instance database.
///
/// Each variant has a stable machine-readable [`code`](Self::code) and an
/// [`http_status`](Self::http_status) so the HTTP layer never has to match on
/// message text (the legacy backend mixed Chinese messages into status fields).
#[derive(Debug, thiserror::Error)]
pub enum MaibotDbError {
    /// The instance directory itself does not exist.
    #[error("instance directory does not exist: {path}")]
    InstanceDirMissing {
        /// Directory that was looked up.
        path: PathBuf,
    },
    /// The database file does not exist; it is never created on demand.
    #[error("MaiBot database does not exist: {path}")]
    Missing {
        /// Resolved database path.
        path: PathBuf,
    },
    /// `bot_config.toml` selects a backend other than SQLite.
    #[error("MaiBot is configured for the `{backend}` database backend; only SQLite is supported")]
    UnsupportedBackend {
        /// Backend name as written in the config.
        backend: String,
    },
    /// The file exists but SQLite says it is not a database.
    #[error("file is not an SQLite database: {path}")]
    NotADatabase {
        /// Resolved database path.
        path: PathBuf,
    },
    /// The file exists but could not be opened (permissions, I/O error, …).
    #[error("cannot open MaiBot database {path}: {reason}")]
    Unreadable {
        /// Resolved database path.
        path: PathBuf,
        /// Human-readable cause.
        reason: String,
    },
    /// A table this module needs is absent (not a MaiBot database, or too old).
    #[error("table `{table}` is missing from the MaiBot database")]
    TableMissing {
        /// Table name.
        table: &'static str,
    },
    /// The addressed row (or emoji image file) does not exist.
    #[error("{entity} not found: {key}")]
    NotFound {
        /// What was looked up, e.g. `emoji` or `person`.
        entity: &'static str,
        /// The key used for the lookup.
        key: String,
    },
    /// Request input was rejected; `field` names the offending field.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// Request field (or `body` for whole-body problems).
        field: String,
        /// Why it was rejected.
        message: String,
    },
    /// A unique column already holds this value.
    #[error("`{field}` already exists: {value}")]
    Conflict {
        /// Unique column.
        field: String,
        /// Conflicting value.
        value: String,
    },
    /// A path taken from config or from a row resolves outside the instance directory.
    #[error("path resolves outside the instance directory: {path}")]
    PathEscape {
        /// The offending path as configured or stored.
        path: PathBuf,
    },
    /// The emoji file exists but its content is not a recognised image.
    #[error("emoji file is not a supported image: {path}")]
    NotAnImage {
        /// Resolved file path.
        path: PathBuf,
    },
    /// The file is larger than the configured read cap (`server.max_file_bytes`).
    #[error("{path} is {size} bytes, over the {limit}-byte limit (server.max_file_bytes)")]
    TooLarge {
        /// Resolved file path.
        path: PathBuf,
        /// Its size, as far as it was read.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// SQLite stayed locked past the busy timeout (MaiBot is writing).
    #[error("MaiBot database is busy, try again")]
    Busy,
    /// Filesystem error outside SQLite.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// Path being accessed.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other SQLite error.
    #[error("sqlite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the operation panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

impl MaibotDbError {
    /// Stable machine-readable code, safe to send to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InstanceDirMissing { .. } => "maibot_instance_dir_missing",
            Self::Missing { .. } => "maibot_db_missing",
            Self::UnsupportedBackend { .. } => "maibot_db_unsupported_backend",
            Self::NotADatabase { .. } => "maibot_db_not_a_database",
            Self::Unreadable { .. } => "maibot_db_unreadable",
            Self::TableMissing { .. } => "maibot_db_table_missing",
            Self::NotFound { .. } => "maibot_db_not_found",
            Self::Invalid { .. } => "maibot_db_invalid_input",
            Self::Conflict { .. } => "maibot_db_conflict",
            Self::PathEscape { .. } => "maibot_db_path_escape",
            Self::NotAnImage { .. } => "maibot_emoji_not_image",
            Self::TooLarge { .. } => "file_too_large",
            Self::Busy => "maibot_db_busy",
            Self::Io { .. } => "maibot_db_io",
            Self::Sqlite(_) => "maibot_db_sqlite",
            Self::Task(_) => "maibot_db_task_failed",
        }
    }

    /// Suggested HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InstanceDirMissing { .. } | Self::Missing { .. } | Self::NotFound { .. } => 404,
            Self::Invalid { .. } => 400,
            Self::PathEscape { .. } => 403,
            Self::Conflict { .. } => 409,
            Self::NotAnImage { .. } => 415,
            Self::TooLarge { .. } => 413,
            Self::UnsupportedBackend { .. }
            | Self::NotADatabase { .. }
            | Self::TableMissing { .. } => 422,
            Self::Busy => 503,
            Self::Unreadable { .. } | Self::Io { .. } | Self::Sqlite(_) | Self::Task(_) => 500,
        }
    }

    /// Shorthand for [`MaibotDbError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
