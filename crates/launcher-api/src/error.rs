//! The one error type of the API: an HTTP status, a stable machine `code` and a human
//! `detail` (which the legacy frontend shows).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, error};
use serde::Serialize;
use std::fmt;

/// An error as the client sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable machine-readable code, e.g. `instance_not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub detail: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
        }
    }

    /// 404 `{what}_not_found`.
    pub fn not_found(what: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what}_not_found"), detail)
    }

    /// 400 with a specific code.
    pub fn bad_request_code(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 400 `invalid_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self)
    }
}

impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

impl From<maim_db::DbError> for ApiError {
    fn from(e: maim_db::DbError) -> Self {
        use maim_db::DbError::*;
        match e {
            NotFound { entity } => {
                Self::not_found(&entity.replace(' ', "_"), format!("{entity} not found"))
            }
            Conflict { constraint, detail } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{detail} ({constraint})"),
            ),
            ScopeViolation(d) => Self::new(StatusCode::FORBIDDEN, "scope_violation", d),
            InvalidInput(d) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", d),
            Unauthorized => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid credentials",
            ),
            Database(d) => {
                tracing::error!(error = %d, "database error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database_error",
                    "the database failed; see the server log",
                )
            }
        }
    }
}

pub(crate) fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> error::Error {
    let (status, code) = match &err {
        error::JsonPayloadError::OverflowKnownLength { .. }
        | error::JsonPayloadError::Overflow { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        }
        error::JsonPayloadError::ContentType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        error::JsonPayloadError::Deserialize(e) if e.is_data() => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        }
        _ => (StatusCode::BAD_REQUEST, "malformed_json"),
    };
    ApiError::new(status, code, err.to_string()).into()
}

pub(crate) fn path_error(err: error::PathError, _req: &HttpRequest) -> error::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", err.to_string()).into()
}

pub(crate) fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> error::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", err.to_string()).into()
}

impl From<launcher_core::CoreError> for ApiError {
    fn from(e: launcher_core::CoreError) -> Self {
        use launcher_core::CoreError::*;
        use launcher_core::supervisor::SupervisorError as S;
        match e {
            NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{}_not_found",
                    what.split_whitespace().next().unwrap_or("resource")
                ),
                format!("{what} not found"),
            ),
            Invalid(d) => Self::new(StatusCode::BAD_REQUEST, "invalid_request", d),
            Conflict(d) => Self::new(StatusCode::CONFLICT, "conflict", d),
            Rejected { code, detail } => {
                let status = match code {
                    "port_unavailable" | "path_not_empty" => StatusCode::CONFLICT,
                    "versions_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                    "tool_missing" | "python_unavailable" => StatusCode::FAILED_DEPENDENCY,
                    _ => StatusCode::BAD_REQUEST,
                };
                Self::new(status, code, detail)
            }
            Db(e) => e.into(),
            Supervisor(S::NotRunning) => Self::new(
                StatusCode::CONFLICT,
                "component_not_running",
                "the component is not running",
            ),
            Supervisor(S::Spawn(d)) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "spawn_failed",
                format!("could not start the process: {d}"),
            ),
            Supervisor(S::Gone) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the launcher is shutting down",
            ),
            Io(d) => {
                tracing::error!(error = %d, "I/O failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "io_error", d)
            }
            Trash(t) => t.into(),
        }
    }
}

impl From<launcher_core::trash::TrashError> for ApiError {
    fn from(e: launcher_core::trash::TrashError) -> Self {
        use launcher_core::trash::TrashError::*;
        let detail = e.to_string();
        let (status, code) = match &e {
            NotFound(_) => (StatusCode::NOT_FOUND, "trash_entry_not_found"),
            RestoreTargetTaken { .. } => (StatusCode::CONFLICT, "restore_target_exists"),
            RestoreSourceGone { .. } => (StatusCode::CONFLICT, "restore_source_missing"),
            NameTaken { .. } => (StatusCode::CONFLICT, "restore_name_taken"),
            PortTaken { .. } => (StatusCode::CONFLICT, "restore_port_taken"),
            Corrupt { .. } => (StatusCode::CONFLICT, "trash_entry_corrupt"),
            Io(_) => {
                tracing::error!(error = %detail, "trash I/O failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "trash_io_error")
            }
        };
        Self::new(status, code, detail)
    }
}
