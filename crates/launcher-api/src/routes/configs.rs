//! Config files of an instance (`/resources/{id}/…`, plural as the frontend calls it):
//! full-document get/update as the legacy UI uses them, plus a modern merge `PATCH`.

use crate::{ApiError, AppState, ids};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use launcher_core::files::FileError;
use launcher_core::instance_files::{ConfigKind, InstanceFileError};
use serde_json::{Value, json};

impl From<InstanceFileError> for ApiError {
    fn from(e: InstanceFileError) -> Self {
        match e {
            InstanceFileError::NoComponent(d) => {
                ApiError::new(StatusCode::NOT_FOUND, "component_not_found", d)
            }
            InstanceFileError::Task(d) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", d)
            }
            InstanceFileError::File(f) => {
                let status = match &f {
                    FileError::NotFound { .. } => StatusCode::NOT_FOUND,
                    FileError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    FileError::Escape { .. } => StatusCode::FORBIDDEN,
                    FileError::Parse { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    FileError::Internal { .. } | FileError::Io { .. } => {
                        tracing::error!(error = %f, "config file failure");
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, f.code(), f.to_string())
            }
        }
    }
}

fn kind_of(segment: &str) -> Result<ConfigKind, ApiError> {
    ConfigKind::from_segment(segment).ok_or_else(|| {
        ApiError::not_found(
            "config",
            format!("unknown config file {segment:?}; known: config, lpmm, model, env, adapter"),
        )
    })
}

fn label(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::Bot => "bot config",
        ConfigKind::Lpmm => "LPMM config",
        ConfigKind::Model => "model config",
        ConfigKind::Env => ".env",
        ConfigKind::Adapter => "adapter config",
    }
}

async fn get_impl(state: &AppState, id: &str, kind: ConfigKind) -> Result<HttpResponse, ApiError> {
    let info = state.catalog.get(ids::instance_id(id)?).await?;
    let data = state.files.read(&info, kind).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "success",
        "message": format!("{} loaded", label(kind)),
        "data": data,
    })))
}

/// The document of an update body: `config_data` / `env_data` (legacy), or the body itself.
fn document(kind: ConfigKind, body: Value) -> Result<Value, ApiError> {
    let key = if kind == ConfigKind::Env {
        "env_data"
    } else {
        "config_data"
    };
    let doc = match body {
        Value::Object(mut m) if m.contains_key(key) => m.remove(key).unwrap_or(Value::Null),
        other => other,
    };
    if !doc.is_object() {
        return Err(ApiError::bad_request(format!(
            "{key} must be a JSON object (the whole document)"
        )));
    }
    Ok(doc)
}

async fn write_impl(
    state: &AppState,
    id: &str,
    kind: ConfigKind,
    body: Value,
    merge: bool,
) -> Result<HttpResponse, ApiError> {
    let info = state.catalog.get(ids::instance_id(id)?).await?;
    let doc = document(kind, body)?;
    let changed = if merge {
        state.files.patch(&info, kind, doc).await?
    } else {
        state.files.update(&info, kind, doc).await?
    };
    Ok(HttpResponse::Ok().json(json!({
        "status": "success",
        "message": format!("{} saved ({} change(s))", label(kind), changed.len()),
        "data": {"changed": changed},
    })))
}

/// `GET /resources/{id}/{kind}/get`.
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, seg) = path.into_inner();
    get_impl(&state, &id, kind_of(&seg)?).await
}

/// `POST /resources/{id}/{kind}/update`.
pub(crate) async fn update(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, seg) = path.into_inner();
    write_impl(&state, &id, kind_of(&seg)?, body.into_inner(), false).await
}

/// `GET /resources/{id}/adapter/napcat/get`.
pub(crate) async fn adapter_get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_impl(&state, &path, ConfigKind::Adapter).await
}

/// `POST /resources/{id}/adapter/napcat/update`.
pub(crate) async fn adapter_update(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    write_impl(&state, &path, ConfigKind::Adapter, body.into_inner(), false).await
}

/// `PATCH /resources/{id}/{kind}`: merges a partial document (`null` is refused, never a
/// delete).
pub(crate) async fn patch(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (id, seg) = path.into_inner();
    write_impl(&state, &id, kind_of(&seg)?, body.into_inner(), true).await
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/resources/{id}/adapter/napcat/get",
        web::get().to(adapter_get),
    )
    .route(
        "/resources/{id}/adapter/napcat/update",
        web::post().to(adapter_update),
    )
    .route("/resources/{id}/{kind}/get", web::get().to(get))
    .route("/resources/{id}/{kind}/update", web::post().to(update))
    .route("/resources/{id}/{kind}", web::patch().to(patch));
}
