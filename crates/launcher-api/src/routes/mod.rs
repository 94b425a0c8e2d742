//! Route table.

mod system;

use actix_web::web;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/system/health", web::get().to(system::health))
        .route("/version/current", web::get().to(system::version_current));
}
