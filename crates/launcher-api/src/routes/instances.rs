//! Instances: the legacy routes the frontend calls and their modern counterparts.

use crate::{ApiError, AppState, ids};
use actix_web::{HttpResponse, web};
use launcher_core::catalog::{self, InstanceInfo, NewComponent, NewInstance};
use launcher_core::logs::Replay;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the last process of an instance ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExitView {
    code: Option<i32>,
    signal: Option<i32>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    reason: Option<String>,
}

/// Why a component is `failed`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FailureView {
    reason: String,
    last_lines: Vec<String>,
}

/// One registered port of a component.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PortView {
    /// `main`, `webui`, `adapter_napcat`, `napcat_ws`.
    role: String,
    port: u16,
    /// Whether the component itself listens on it (NapCat's port is only reserved).
    listens: bool,
}

/// One component of an instance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ComponentView {
    name: String,
    path: String,
    port: Option<u16>,
    /// Every port the launcher registered for it (empty for instances added from disk).
    ports: Vec<PortView>,
    status: &'static str,
    pid: Option<u32>,
    uptime: Option<u64>,
    restart_count: u64,
    failure: Option<FailureView>,
    cpu_percent: Option<f32>,
    memory_mb: Option<f64>,
    threads: Option<u64>,
}

/// The instance as the legacy list shows it, plus the new statistics. Typed rather than a
/// `json!` tree: the list is the frontend's polling target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InstanceView {
    id: String,
    instance_id: String,
    name: String,
    /// The legacy vocabulary (no `degraded`: it reads `running` here).
    status: &'static str,
    /// The full instance state, `degraded` included.
    state: &'static str,
    desired_state: String,
    #[serde(rename = "installedAt")]
    installed_at: String,
    created_at: String,
    path: String,
    port: Option<i32>,
    version: String,
    owned: bool,
    /// The components other than MaiBot core (the legacy frontend's `services`).
    services: Vec<ComponentView>,
    components: Vec<ComponentView>,
    total_runtime: u64,
    start_count: i64,
    crash_count: i64,
    restart_count: u64,
    last_start_time: Option<String>,
    uptime: Option<u64>,
    cpu_percent: Option<f32>,
    memory_mb: Option<f64>,
    threads: Option<u64>,
    last_exit: Option<ExitView>,
}

fn mib(bytes: u64) -> f64 {
    (bytes as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0
}

fn component_view(
    c: &catalog::ComponentInfo,
    sample: Option<&launcher_core::metrics::InstanceSample>,
) -> ComponentView {
    let usage = sample.and_then(|s| s.components.get(&c.kind).copied());
    ComponentView {
        name: c.kind.clone(),
        path: c.path.clone(),
        port: c.port,
        ports: c
            .ports
            .iter()
            .map(|p| PortView {
                role: p.role.clone(),
                port: p.port,
                listens: p.listens,
            })
            .collect(),
        status: c.status.state.as_str(),
        pid: c.status.pid,
        uptime: c.status.uptime().map(|d| d.as_secs()),
        restart_count: c.status.restart_count,
        failure: c.status.failure.as_ref().map(|f| FailureView {
            reason: f.reason.clone(),
            last_lines: f.last_lines.clone(),
        }),
        cpu_percent: usage.map(|u| u.cpu_percent),
        memory_mb: usage.map(|u| mib(u.rss_bytes)),
        threads: usage.map(|u| u.threads),
    }
}

/// The instance as the legacy list shows it, plus the new statistics.
pub(crate) fn instance_json(info: &InstanceInfo, state: &AppState) -> InstanceView {
    let r = &info.row;
    let sample = state.metrics.instance(&r.id);
    let running = info.uptime_secs().is_some();
    let usage = sample.as_ref().map(|s| s.total).filter(|_| running);
    let components: Vec<ComponentView> = info
        .components
        .iter()
        .map(|c| component_view(c, sample.as_deref()))
        .collect();
    let services = info
        .components
        .iter()
        .filter(|c| c.kind != "main")
        .map(|c| component_view(c, sample.as_deref()))
        .collect();
    InstanceView {
        id: r.id.clone(),
        instance_id: r.id.clone(),
        name: r.name.clone(),
        status: info.state.legacy_str(),
        state: info.state.as_str(),
        desired_state: r.desired_state.clone(),
        installed_at: r.created_at.to_rfc3339(),
        created_at: r.created_at.to_rfc3339(),
        path: r.install_path.clone(),
        port: r.maibot_port,
        version: r.version.clone(),
        owned: r.owned,
        services,
        components,
        total_runtime: info.total_runtime_secs(),
        start_count: r.start_count,
        crash_count: r.crash_count,
        restart_count: info.restart_count(),
        last_start_time: r.last_start_at.map(|t| t.to_rfc3339()),
        uptime: info.uptime_secs(),
        cpu_percent: usage.map(|u| u.cpu_percent),
        memory_mb: usage.map(|u| mib(u.rss_bytes)),
        threads: usage.map(|u| u.threads),
        last_exit: r.last_exit_at.map(|at| ExitView {
            code: r.last_exit_code,
            signal: r.last_exit_signal,
            at: Some(at),
            reason: r.last_exit_reason.clone(),
        }),
    }
}

/// The list body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InstanceList {
    success: bool,
    instances: Vec<InstanceView>,
}

/// `GET /instances`: rendered at most once per change or second, however many poll it.
pub(crate) async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Read the key before the data: a change during rendering leaves an older key behind,
    // so the next request renders again.
    let key = (
        state.catalog.generation(),
        state.metrics.generation(),
        chrono::Utc::now().timestamp(),
    );
    let body = match state.list_cache.get(key) {
        Some(b) => b,
        None => {
            let all = state.catalog.list().await?;
            let instances = all.iter().map(|i| instance_json(i, &state)).collect();
            let body = serde_json::to_vec(&InstanceList {
                success: true,
                instances,
            })
            .map_err(|e| {
                ApiError::new(
                    actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("could not render the list: {e}"),
                )
            })?;
            let body = web::Bytes::from(body);
            state.list_cache.put(key, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// `GET /instances/stats`.
pub(crate) async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.catalog.list().await?;
    // Counted in the legacy vocabulary (a degraded instance is running there), plus how
    // many of the running ones are degraded.
    let count = |s: &str| all.iter().filter(|i| i.state.legacy_str() == s).count();
    let degraded = all
        .iter()
        .filter(|i| i.state == launcher_core::supervisor::InstanceState::Degraded)
        .count();
    Ok(HttpResponse::Ok().json(json!({
        "total": all.len(),
        "running": count("running"),
        "stopped": count("stopped"),
        "starting": count("starting"),
        "stopping": count("stopping"),
        "backoff": count("backoff"),
        "failed": count("failed"),
        "degraded": degraded,
    })))
}

/// `GET /instances/{id}` (modern detail).
pub(crate) async fn detail(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    let info = state.catalog.get(id).await?;
    Ok(HttpResponse::Ok().json(instance_json(&info, &state)))
}

#[derive(Debug, Clone, Copy)]
enum Power {
    Start,
    Stop,
    Restart,
    Kill,
}

async fn power(state: &AppState, id: &str, action: Power) -> Result<InstanceInfo, ApiError> {
    let sup = state.catalog.supervisor();
    match action {
        Power::Start => sup.start(id).await?,
        Power::Stop => sup.stop(id).await?,
        Power::Restart => sup.restart(id).await?,
        Power::Kill => sup.kill(id).await?,
    }
    Ok(state.catalog.get(id).await?)
}

fn verb(action: Power) -> &'static str {
    match action {
        Power::Start => "started",
        Power::Stop => "stopped",
        Power::Restart => "restarted",
        Power::Kill => "killed",
    }
}

/// Legacy `GET /instance/{id}/start|stop|restart`: `{success, message}`. An unknown id is a
/// 404; a failure to start is an HTTP error with a `detail` the UI can show.
async fn legacy_power(
    state: web::Data<AppState>,
    path: web::Path<String>,
    action: Power,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?.to_owned();
    let info = power(&state, &id, action).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": format!("instance {} {}", info.row.name, verb(action)),
        "status": info.state.legacy_str(),
        "instance": instance_json(&info, &state),
    })))
}

/// Modern `POST /instances/{id}/start|stop|restart|kill`: the instance after the action.
async fn modern_power(
    state: web::Data<AppState>,
    path: web::Path<String>,
    action: Power,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?.to_owned();
    let info = power(&state, &id, action).await?;
    Ok(HttpResponse::Ok().json(instance_json(&info, &state)))
}

macro_rules! power_handlers {
    ($($name:ident => $via:ident($action:expr)),* $(,)?) => {$(
        pub(crate) async fn $name(
            state: web::Data<AppState>,
            path: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            $via(state, path, $action).await
        }
    )*};
}

power_handlers!(
    legacy_start => legacy_power(Power::Start),
    legacy_stop => legacy_power(Power::Stop),
    legacy_restart => legacy_power(Power::Restart),
    start => modern_power(Power::Start),
    stop => modern_power(Power::Stop),
    restart => modern_power(Power::Restart),
    kill => modern_power(Power::Kill),
);

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteQuery {
    /// Remove the directories the launcher created (default: legacy route yes, modern no).
    remove_files: Option<bool>,
}

async fn delete_impl(
    state: &AppState,
    id: &str,
    remove_files: bool,
) -> Result<(String, catalog::DeleteReport), ApiError> {
    let info = state.catalog.get(id).await?;
    let report = state.catalog.delete(id, remove_files).await?;
    state.metrics.forget(id);
    Ok((info.row.name, report))
}

fn report_json(r: &catalog::DeleteReport) -> Value {
    json!({
        "removed": r.removed,
        "kept": r.kept.iter().map(|(p, why)| json!({"path": p, "reason": why})).collect::<Vec<_>>(),
    })
}

/// Legacy `DELETE /instance/{id}/delete`: stops the instance, removes its records and moves
/// the folders the launcher created for it to the trash (never an added instance's files).
/// The frontend reads `success` and `message`; `files` and `trash_entry` are extra.
pub(crate) async fn legacy_delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    let (name, report) = delete_impl(&state, id, q.remove_files.unwrap_or(true)).await?;
    let message = match &report.trash_entry {
        Some(entry) => format!(
            "instance {name} deleted; {} folder(s) moved to the trash (entry {entry}, kept {} days), {} kept in place",
            report.removed.len(),
            state.catalog.trash().days(),
            report.kept.len()
        ),
        None => format!(
            "instance {name} deleted; {} folder(s) removed, {} kept",
            report.removed.len(),
            report.kept.len()
        ),
    };
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": message,
        "files": report_json(&report),
        "trash_entry": report.trash_entry,
    })))
}

/// Modern `DELETE /instances/{id}?remove_files=`.
pub(crate) async fn modern_delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    let (_, report) = delete_impl(&state, id, q.remove_files.unwrap_or(false)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "deleted": id,
        "files": report_json(&report),
        "trash_entry": report.trash_entry,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ServiceRequest)]
pub(crate) struct ServiceReq {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    /// Sent by the frontend; never executed (commands are derived by the server).
    #[serde(default, rename = "run_cmd")]
    _run_cmd: Option<String>,
}

/// The frontend's "add existing instance" body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = AddExistingRequest)]
pub(crate) struct AddReq {
    instance_name: String,
    #[serde(default)]
    install_path: Option<String>,
    #[serde(default)]
    maibot_path: Option<String>,
    #[serde(default)]
    adapter_path: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    install_services: Vec<ServiceReq>,
    // Accepted for compatibility, not used: the launcher derives everything else.
    #[serde(default, rename = "host")]
    _host: Option<String>,
    #[serde(default, rename = "token")]
    _token: Option<String>,
    #[serde(default, rename = "qq_number")]
    _qq: Option<Value>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The version the user typed, or what the directory says when that is a placeholder.
fn version_of(given: Option<&str>, dir: &std::path::Path) -> String {
    match given {
        Some(v) if v.is_ascii() && !v.eq_ignore_ascii_case("unknown") => v.to_owned(),
        _ => launcher_core::catalog::detect_version(dir).unwrap_or_else(|| "unknown".into()),
    }
}

/// `POST /instances/add`.
pub(crate) async fn add(
    state: web::Data<AppState>,
    body: web::Json<AddReq>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let main_raw = nonempty(&b.maibot_path)
        .or(nonempty(&b.install_path))
        .ok_or_else(|| ApiError::bad_request("maibot_path (or install_path) is required"))?;
    let main_path = catalog::expand_path(main_raw)?;
    let main_port = b
        .port
        .map(|p| catalog::validate_port("MaiBot", p))
        .transpose()?;
    let mut components = vec![NewComponent {
        kind: "main".into(),
        path: main_path.clone(),
        port: main_port,
        argv: Vec::new(),
        ports: Vec::new(),
    }];
    for s in &b.install_services {
        let kind = s.name.trim();
        if kind == "main" {
            continue;
        }
        let raw = nonempty(&s.path)
            .or(if kind == "napcat-ada" {
                nonempty(&b.adapter_path)
            } else {
                None
            })
            .ok_or_else(|| ApiError::bad_request(format!("service {kind} needs a path")))?;
        components.push(NewComponent {
            kind: kind.to_owned(),
            path: catalog::expand_path(raw)?,
            port: s
                .port
                .map(|p| catalog::validate_port(kind, p))
                .transpose()?,
            argv: Vec::new(),
            ports: Vec::new(),
        });
    }
    if let Some(adapter) = nonempty(&b.adapter_path)
        && !components.iter().any(|c| c.kind == "napcat-ada")
    {
        components.push(NewComponent {
            kind: "napcat-ada".into(),
            path: catalog::expand_path(adapter)?,
            port: None,
            argv: Vec::new(),
            ports: Vec::new(),
        });
    }
    let new = NewInstance {
        name: b.instance_name.trim().to_owned(),
        version: version_of(b.version.as_deref(), &main_path),
        install_path: main_path,
        components,
        owned: false,
    };
    let name = new.name.clone();
    let id = state.catalog.add_existing(new).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": format!("existing instance {name} added"),
        "instance_id": id,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    since: Option<u64>,
    tail: Option<usize>,
}

/// `GET /instances/{id}/components/{c}/logs?since=&tail=`: buffered output records.
pub(crate) async fn component_logs(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, comp) = path.into_inner();
    let id = ids::instance_id(&id)?;
    let comp = ids::component(&comp)?;
    let c = state.catalog.supervisor().component(id, comp).await?;
    let replay = match (q.since, q.tail) {
        (Some(s), _) => Replay::FromSeq(s),
        (None, Some(t)) => Replay::Tail(t.min(10_000)),
        (None, None) => Replay::Tail(1000),
    };
    let sub = c.logs().subscribe(replay);
    let records: Vec<Value> = sub
        .replay
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "ts": r.ts,
                "data": String::from_utf8_lossy(&r.data),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "records": records,
        "evicted": sub.evicted,
        "next_seq": c.logs().next_seq(),
    })))
}

/// `GET /instances/{id}/metrics`: the latest sample and the kept history.
pub(crate) async fn instance_metrics(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::instance_id(&path)?;
    state.catalog.get(id).await?;
    let history = state.metrics.history(id);
    Ok(HttpResponse::Ok().json(json!({
        "interval_ms": state.metrics.interval().as_millis() as u64,
        "latest": history.last(),
        "history": history,
    })))
}
