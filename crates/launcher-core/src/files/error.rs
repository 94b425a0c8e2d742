//! The error type shared by every part of the config-file module.

use std::io;
use std::path::PathBuf;

/// Everything a config-file operation can fail with.
///
/// Each variant has a stable machine-readable [`FileError::code`]; the HTTP layer maps codes to
/// statuses (suggested mapping in each variant's docs) and shows the `Display` text to humans.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file (or a path component) does not exist. Suggested status: 404.
    #[error("file not found: {}", path.display())]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The submitted JSON contains `null`, which TOML cannot store. Suggested status: 400.
    #[error("{key}: null is not allowed (TOML has no null; send a value or omit the key)")]
    NullValue {
        /// Dotted key path of the offending value (`<root>` for the document itself).
        key: String,
    },
    /// The submitted value's type does not fit the value already in the file. Suggested status:
    /// 400.
    #[error("{key}: expected {expected}, got {actual}")]
    TypeMismatch {
        /// Dotted key path of the offending value.
        key: String,
        /// The type the file holds (for example `integer`, `offset datetime`, `table`).
        expected: &'static str,
        /// The JSON type that was submitted.
        actual: &'static str,
    },
    /// A submitted value is structurally fine but not acceptable (for example an integer that
    /// does not fit in 64 bits). Suggested status: 400.
    #[error("{what}: {detail}")]
    Invalid {
        /// What was rejected: a dotted key path or a short description.
        what: String,
        /// Why it was rejected.
        detail: String,
    },
    /// A `.env` key that would be added is not a plain identifier. Suggested status: 400.
    #[error("invalid .env key {key:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidEnvKey {
        /// The rejected key, verbatim.
        key: String,
    },
    /// A `.env` value has no encoding that python-dotenv (MaiBot's reader) reads back
    /// unchanged. Suggested status: 400.
    #[error(".env value for {key} cannot be written safely: {detail}")]
    EnvUnrepresentable {
        /// The key whose value was rejected.
        key: String,
        /// Why no encoding works.
        detail: String,
    },
    /// The file on disk is larger than the configured read limit. Suggested status: 413.
    #[error("{} is {size} bytes, over the {limit}-byte limit", path.display())]
    TooLarge {
        /// The file that was refused.
        path: PathBuf,
        /// Its size in bytes (at least this large).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A path resolved outside the directory it must stay in. Suggested status: 403.
    #[error("path {} is outside {}", path.display(), root.display())]
    Escape {
        /// The root the path had to stay inside.
        root: PathBuf,
        /// The requested path, as given.
        path: PathBuf,
    },
    /// The existing file is not valid TOML (or not UTF-8), so it cannot be edited in place.
    /// Suggested status: 422.
    #[error("{} is not a valid config file: {detail}", file.display())]
    Parse {
        /// The file that failed to parse (`<input>` for in-memory text).
        file: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The edited document failed its own consistency check; nothing was written. This is a
    /// bug in this module, never the caller's fault. Suggested status: 500.
    #[error("internal consistency check failed: {detail}")]
    Internal {
        /// What did not match.
        detail: String,
    },
    /// An I/O operation failed. Suggested status: 500.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation, for example `read` or `rename`.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl FileError {
    /// A stable machine-readable code for API responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::NotFound { .. } => "file_not_found",
            FileError::NullValue { .. } => "config_null_value",
            FileError::TypeMismatch { .. } => "config_type_mismatch",
            FileError::Invalid { .. } => "config_invalid_value",
            FileError::InvalidEnvKey { .. } => "env_invalid_key",
            FileError::EnvUnrepresentable { .. } => "env_invalid_value",
            FileError::TooLarge { .. } => "file_too_large",
            FileError::Escape { .. } => "path_escape",
            FileError::Parse { .. } => "config_parse_error",
            FileError::Internal { .. } => "internal_error",
            FileError::Io { .. } => "io_error",
        }
    }

    /// Wraps an I/O error, turning "not found" into [`FileError::NotFound`] so callers can
    /// answer 404 instead of 500.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::NotFound {
            FileError::NotFound { path }
        } else {
            FileError::Io { op, path, source }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn not_found_io_errors_become_not_found() {
        let e = FileError::io("read", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.code(), "file_not_found");
        let e = FileError::io(
            "read",
            "/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.code(), "io_error");
    }
}
