//! Health and version.

use crate::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /system/health` — the frontend checks `status == "success"`.
pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "time": chrono::Utc::now().to_rfc3339(),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
    }))
}

/// `GET /version/current` — read as `data.version` / `data.internal_version`.
pub(crate) async fn version_current(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "data": {"version": state.version, "internal_version": state.version},
    }))
}
