//! Deploy: versions, the legacy deploy/install-status pair the wizard polls, and the modern
//! job routes (list, detail, cancel, logs) plus path inspection for "add existing".

use crate::{ApiError, AppState, ids};
use actix_web::{HttpResponse, web};
use launcher_core::deploy::{ComponentRequest, DeployRequest};
use launcher_core::jobs::{JobView, status};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /deploy/versions`: `{versions: [...]}` (tags newest first, then `main`, `dev`).
pub(crate) async fn versions(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.jobs.deployer().versions().await.map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            e.to_string(),
        )
    })?;
    let names: Vec<&str> = list.versions.iter().map(|v| v.name.as_str()).collect();
    Ok(HttpResponse::Ok().json(json!({
        "versions": names,
        "source": list.source,
        "fetched_at": list.fetched_at,
        "stale": list.stale,
        "error": list.error,
    })))
}

/// `GET /versions` (modern): every version with its release family, the Python it needs,
/// whether this host can run it now or after provisioning, the adapter it pairs with,
/// and which one `latest` means.
pub(crate) async fn modern_versions(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (list, details) = state.jobs.deployer().version_details().await.map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            e.to_string(),
        )
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "versions": details,
        "source": list.source,
        "fetched_at": list.fetched_at,
        "stale": list.stale,
        "error": list.error,
    })))
}

/// `GET /deploy/services`: what can be deployed beside MaiBot.
pub(crate) async fn services() -> HttpResponse {
    HttpResponse::Ok().json(json!({"services": [
        {"name": "napcat-ada", "description": "MaiBot-Napcat-Adapter (QQ via NapCat)"},
    ]}))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LegacyService {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    port: Option<u32>,
    /// Sent by the frontend; never executed.
    #[serde(default, rename = "run_cmd")]
    _run_cmd: Option<String>,
}

/// The wizard's body.
#[derive(Debug, Deserialize)]
pub(crate) struct LegacyDeploy {
    instance_name: String,
    version: String,
    install_path: String,
    port: u32,
    #[serde(default)]
    install_services: Vec<LegacyService>,
    /// Optional: the adapter version to pair (chosen by compatibility when absent).
    #[serde(default)]
    adapter_version: Option<String>,
    #[serde(default, rename = "host")]
    _host: Option<String>,
    #[serde(default, rename = "token")]
    _token: Option<String>,
}

/// `POST /deploy/deploy`. The legacy wizard makes its user tick the EULA box before this
/// call, so its request counts as accepted. The job id is returned as `instance_id` (the
/// wizard polls install-status with it).
pub(crate) async fn legacy_deploy(
    state: web::Data<AppState>,
    body: web::Json<LegacyDeploy>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let req = DeployRequest {
        instance_name: b.instance_name.trim().to_owned(),
        install_path: b.install_path.replace('\\', "/"),
        version: b.version.clone(),
        host: "127.0.0.1".into(),
        port: b.port,
        components: b
            .install_services
            .into_iter()
            .map(|s| ComponentRequest {
                kind: s.name,
                path: s.path.map(|p| p.replace('\\', "/")),
                port: s.port,
            })
            .collect(),
        eula_accepted: true,
        adapter_version: b.adapter_version.clone(),
        webui_port: None,
        telemetry: false,
    };
    let name = req.instance_name.clone();
    let (job, instance) = state.jobs.start_deploy_ids(req).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": format!("MaiBot {} 的实例 {name} 部署任务已启动。(deploy job started)", b.version),
        // The id the instance will have in /instances (install-status accepts it too).
        "instance_id": instance,
        "job_id": job,
    })))
}

/// `POST /deploy` (modern): the request as [`DeployRequest`], `eula_accepted` explicit.
pub(crate) async fn modern_deploy(
    state: web::Data<AppState>,
    body: web::Json<DeployRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = state.jobs.start_deploy(body.into_inner()).await?;
    let job = state.jobs.get(&id).await?;
    Ok(HttpResponse::Accepted().json(job_json(&job)))
}

fn legacy_status(s: &str) -> &'static str {
    match s {
        status::QUEUED => "preparing",
        status::RUNNING => "installing",
        status::SUCCEEDED => "completed",
        _ => "failed",
    }
}

fn job_json(j: &JobView) -> Value {
    let r = &j.row;
    json!({
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "phase": r.phase,
        "progress": r.progress,
        "error": r.error,
        "instance_id": r.instance_id,
        "request": r.request,
        "components": j.components,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
    })
}

/// Most log lines one install-status answer carries.
const STATUS_PAGE: usize = 500;

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    /// Only lines after this sequence number (a client that keeps what it has seen).
    since: Option<i64>,
}

/// `GET /deploy/install-status/{id}?since=N`: the wizard's poll, by the instance id the
/// deploy announced or by the job id. Without `since`: the cumulative log the legacy UI
/// counts, capped to the last [`STATUS_PAGE`] lines (`logs_omitted` says how many came
/// before); with `since`: at most a page of the lines after it, and `next_since`.
pub(crate) async fn install_status(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    let job = match state.jobs.get(id).await {
        Ok(j) => j,
        Err(launcher_core::CoreError::NotFound(_)) => state.jobs.by_instance(id).await?,
        Err(e) => return Err(e.into()),
    };
    let job_id = job.row.id.clone();
    let since = q.since.unwrap_or(0).max(0);
    let mut lines = state.jobs.logs(&job_id, since).await?;
    let omitted = if q.since.is_some() {
        lines.truncate(STATUS_PAGE);
        0
    } else {
        let cut = lines.len().saturating_sub(STATUS_PAGE);
        lines.drain(..cut);
        cut
    };
    let next_since = lines.last().map_or(since, |l| l.seq);
    let r = &job.row;
    let message = match (&r.error, r.status.as_str()) {
        (Some(e), _) => e.clone(),
        (None, status::SUCCEEDED) => "deploy completed".to_owned(),
        (None, s) => format!("{s}: {}", r.phase),
    };
    let logs: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "timestamp": l.ts.with_timezone(&chrono::Local).format("%H:%M:%S").to_string(),
                "message": l.line,
                "level": l.level,
                "seq": l.seq,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": legacy_status(&r.status),
        "job_status": r.status,
        "progress": r.progress.round() as u64,
        "install_progress": r.progress.round() as u64,
        "phase": r.phase,
        "message": message,
        "detail": r.error,
        "instance_id": r.instance_id,
        "services_install_status": job.components,
        "logs": logs,
        "logs_omitted": omitted,
        "next_since": next_since,
        "job_id": job_id,
    })))
}

/// `GET /jobs`.
pub(crate) async fn jobs(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.jobs.list(200).await?;
    let out: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            job_json(&JobView {
                row,
                components: Vec::new(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"jobs": out})))
}

/// `GET /jobs/{id}`.
pub(crate) async fn job(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    Ok(HttpResponse::Ok().json(job_json(&state.jobs.get(id).await?)))
}

/// `POST /jobs/{id}/cancel`.
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    state.jobs.cancel(id).await?;
    Ok(HttpResponse::Accepted().json(json!({"id": id, "cancel_requested": true})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Since {
    since: Option<i64>,
}

/// `GET /jobs/{id}/logs?since=N`: lines with `seq > N`.
pub(crate) async fn job_logs(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<Since>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    state.jobs.get(id).await?;
    let lines = state.jobs.logs(id, q.since.unwrap_or(0).max(0)).await?;
    Ok(HttpResponse::Ok().json(json!({"lines": lines})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct InspectReq {
    path: String,
}

/// `POST /inspect`: what is at a path (pure read), for the add-existing wizard.
pub(crate) async fn inspect(
    state: web::Data<AppState>,
    body: web::Json<InspectReq>,
) -> Result<HttpResponse, ApiError> {
    let p = launcher_core::catalog::expand_path(&body.path)?;
    // The same rule as add-existing: no probing of system directories.
    state.catalog.check_path(&p).await?;
    let i = launcher_core::deploy::inspect(&p).await;
    Ok(HttpResponse::Ok().json(i))
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/deploy/versions", web::get().to(versions))
        .route("/versions", web::get().to(modern_versions))
        .route("/deploy/services", web::get().to(services))
        .route("/deploy/deploy", web::post().to(legacy_deploy))
        .route("/deploy/install-status/{id}", web::get().to(install_status))
        .route("/deploy", web::post().to(modern_deploy))
        .route("/jobs", web::get().to(jobs))
        .route("/jobs/{id}", web::get().to(job))
        .route("/jobs/{id}/cancel", web::post().to(cancel))
        .route("/jobs/{id}/logs", web::get().to(job_logs))
        .route("/inspect", web::post().to(inspect));
}
