//! MaiLauncher's HTTP surface. Handlers parse, call the core and map errors — nothing more.

mod error;
mod routes;

pub use error::ApiError;

use actix_web::web;
use std::time::Instant;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The build's version (e.g. `0.1.0`).
    pub version: &'static str,
    /// When the server started.
    pub started_at: Instant,
}

/// Registers every route under `prefix` (normally `/api/v1`).
pub fn configure(prefix: &str, state: AppState) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .app_data(
                web::JsonConfig::default()
                    .limit(1 << 20)
                    .error_handler(error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .service(web::scope(prefix).configure(routes::configure));
    }
}

/// The body of every unmatched route.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route", "no such route")
}
