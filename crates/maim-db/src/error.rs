//! The one error type of the crate.

use std::fmt;

/// Everything a maim-db call can fail with. Callers map the variants to their own
/// protocol (for HTTP: 404, 409, 403, 400/422 and 500).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row does not exist, or exists outside the caller's scope (the two are
    /// indistinguishable on purpose: a scope never learns what another scope holds).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for, e.g. `"agent"`.
        entity: &'static str,
    },
    /// A uniqueness, foreign-key or version constraint refused the write.
    #[error("conflict on {constraint}: {detail}")]
    Conflict {
        /// The constraint or rule that refused it, e.g. `"agents.name unique per tenant"`.
        constraint: String,
        /// Human-readable explanation.
        detail: String,
    },
    /// The write names a tenant or agent other than the scope it was made in.
    #[error("scope violation: {0}")]
    ScopeViolation(String),
    /// The input is malformed (bad id, bad URL, bad config document, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The credential is unknown, malformed, revoked, disabled or expired. Which one is
    /// deliberately not said.
    #[error("unauthorized")]
    Unauthorized,
    /// The database failed (connection, I/O, unexpected SQL error).
    #[error("database error: {0}")]
    Database(String),
}

/// Shorthand for results of this crate.
pub type DbResult<T> = Result<T, DbError>;

impl DbError {
    pub(crate) fn invalid(msg: impl fmt::Display) -> Self {
        DbError::InvalidInput(msg.to_string())
    }

    pub(crate) fn conflict(constraint: impl Into<String>, detail: impl Into<String>) -> Self {
        DbError::Conflict {
            constraint: constraint.into(),
            detail: detail.into(),
        }
    }
}

impl From<sea_orm::DbErr> for DbError {
    fn from(e: sea_orm::DbErr) -> Self {
        use sea_orm::SqlErr;
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => DbError::conflict(
                constraint_name(&msg),
                "a row with the same key already exists",
            ),
            Some(SqlErr::ForeignKeyConstraintViolation(msg)) => DbError::conflict(
                constraint_name(&msg),
                "the referenced row does not exist in this scope",
            ),
            _ => match e {
                sea_orm::DbErr::RecordNotFound(_) => DbError::NotFound { entity: "row" },
                other => DbError::Database(other.to_string()),
            },
        }
    }
}

impl From<sea_orm::TransactionError<DbError>> for DbError {
    fn from(e: sea_orm::TransactionError<DbError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

/// Pulls the constraint (PostgreSQL) or column list (SQLite) out of a driver message,
/// so a conflict says which key refused it.
pub(crate) fn constraint_name(msg: &str) -> String {
    if let Some(rest) = msg.split("constraint \"").nth(1)
        && let Some(name) = rest.split('"').next()
    {
        return name.to_string();
    }
    if let Some(rest) = msg.split("failed: ").nth(1) {
        return rest.trim().to_string();
    }
    msg.to_string()
}
