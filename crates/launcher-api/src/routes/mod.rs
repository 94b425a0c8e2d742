//! Route table: the legacy surface the frontend calls, and the modern one beside it.

mod configs;
mod deploy;
mod events;
mod instances;
mod resources;
mod system;
mod terminal;
mod trash;

use actix_web::{HttpResponse, web};

pub(crate) use instances::{
    AddReq as AddExistingRequest, ComponentView, ExitView, FailureView, InstanceList, InstanceView,
    PortView, ServiceReq as ServiceRequest,
};
pub(crate) use trash::{RestoreView, TrashEntryView, TrashFolderView, TrashList};

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // Legacy (frontend) surface.
    cfg.route("/system/health", web::get().to(system::health))
        .route("/system/metrics", web::get().to(system::metrics))
        .route("/version/current", web::get().to(system::version_current))
        .route("/version/check", web::get().to(system::version_check))
        .route("/version/history", web::get().to(system::version_history))
        .route("/instances", web::get().to(instances::list))
        .route("/instances/stats", web::get().to(instances::stats))
        .route("/instances/add", web::post().to(instances::add))
        .route(
            "/instance/{id}/start",
            web::get().to(instances::legacy_start),
        )
        .route("/instance/{id}/stop", web::get().to(instances::legacy_stop))
        .route(
            "/instance/{id}/restart",
            web::get().to(instances::legacy_restart),
        )
        .route(
            "/instance/{id}/delete",
            web::delete().to(instances::legacy_delete),
        )
        .route("/ws/{session}", web::get().to(terminal::terminal));
    // Modern surface.
    cfg.route("/instances/{id}", web::get().to(instances::detail))
        .route(
            "/instances/{id}",
            web::delete().to(instances::modern_delete),
        )
        .route("/instances/{id}/start", web::post().to(instances::start))
        .route("/instances/{id}/stop", web::post().to(instances::stop))
        .route(
            "/instances/{id}/restart",
            web::post().to(instances::restart),
        )
        .route("/instances/{id}/kill", web::post().to(instances::kill))
        .route(
            "/instances/{id}/metrics",
            web::get().to(instances::instance_metrics),
        )
        .route(
            "/instances/{id}/components/{component}/logs",
            web::get().to(instances::component_logs),
        )
        .route("/trash", web::get().to(trash::list))
        .route("/trash/{entry_id}/restore", web::post().to(trash::restore))
        .route("/trash/{entry_id}", web::delete().to(trash::purge))
        .route("/events", web::get().to(events::events));
    cfg.configure(resources::configure)
        .configure(configs::configure)
        .configure(deploy::configure);
}

/// `/`: a small page pointing at the API and its documentation.
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(concat!(
            "<!doctype html><meta charset=utf-8><title>MaiLauncher</title>",
            "<h1>MaiLauncher backend</h1>",
            "<p>This is the local MaiLauncher daemon. The API lives under <code>/api/v1</code>; ",
            "health: <a href=\"/api/v1/system/health\">/api/v1/system/health</a>.</p>",
            "<p>API documentation: <a href=\"/docs/\">/docs/</a> ",
            "(OpenAPI: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>).</p>"
        ))
}
