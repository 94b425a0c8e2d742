//! MaiLauncher's HTTP and WebSocket surface. Handlers parse, call the core and map errors —
//! nothing more.

mod error;
mod ids;
mod openapi;
pub mod peer;
mod routes;
pub mod security;
mod ws_limits;

pub use error::ApiError;
pub use ws_limits::WsLimits;

use actix_web::web;
use launcher_core::catalog::Catalog;
use launcher_core::metrics::Metrics;
use std::path::PathBuf;
use std::time::Instant;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The build's version (e.g. `0.1.0`).
    pub version: &'static str,
    /// When the server started.
    pub started_at: Instant,
    /// Registered instances and the supervisor that runs them.
    pub catalog: Catalog,
    /// Background-sampled host and instance metrics.
    pub metrics: Metrics,
    /// Job and instance-state events for the event WebSocket.
    pub events: launcher_core::events::EventBus,
    /// Deploy jobs.
    pub jobs: launcher_core::jobs::Jobs,
    /// Config-file editing (one write at a time).
    pub files: launcher_core::instance_files::InstanceFiles,
    /// The launcher's data directory (never a deploy target).
    pub data_dir: PathBuf,
    /// Flips to `true` when the server shuts down (WebSockets close with 1001).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The last rendered instance list (the frontend polls it).
    pub list_cache: RenderCache,
    /// Caps on open WebSockets (`server.ws_max_total`, `server.ws_max_per_instance`).
    pub ws: WsLimits,
    /// Largest file (emoji image) a route reads into memory (`server.max_file_bytes`).
    pub max_file_bytes: u64,
}

/// A rendered response body and what it was rendered from: the catalog generation, the
/// metrics generation and the wall-clock second (uptimes are shown in seconds). Equal keys
/// mean an equal body, so polling clients share one rendering per change or second.
#[derive(Debug, Clone, Default)]
pub struct RenderCache(std::sync::Arc<std::sync::Mutex<Option<(RenderKey, web::Bytes)>>>);

/// What a cached body was rendered from.
pub(crate) type RenderKey = (u64, u64, i64);

impl RenderCache {
    pub(crate) fn get(&self, key: RenderKey) -> Option<web::Bytes> {
        // A poisoned lock only means a renderer panicked; the entry is still a whole value.
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, b)| b.clone())
    }

    pub(crate) fn put(&self, key: RenderKey, body: web::Bytes) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, body));
    }
}

/// Largest JSON body accepted (config documents included).
pub const MAX_JSON_BODY: usize = 4 << 20;

/// Registers every route under `prefix` (normally `/api/v1`), plus `/` at the root.
pub fn configure(
    prefix: &str,
    state: AppState,
    security: security::Security,
) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let version = state.version;
        cfg.app_data(web::Data::new(state))
            .app_data(web::Data::new(security))
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_JSON_BODY)
                    .error_handler(error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .route("/", web::get().to(routes::index))
            // Swagger UI lives under `/docs/`; the bare path is what people type.
            .route(
                "/docs",
                web::get().to(|| async {
                    actix_web::HttpResponse::PermanentRedirect()
                        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
                        .finish()
                }),
            )
            // Before the API scope: a scope answers every path under it, so the spec's URL
            // must be claimed first.
            .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url(
                format!("{prefix}/openapi.json"),
                openapi::document(prefix, version),
            ))
            .service(web::scope(prefix).configure(routes::configure));
    }
}

/// The body of every unmatched route.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route", "no such route")
}
