//! Health, metrics and versions.

use crate::AppState;
use actix_web::{HttpResponse, web};
use launcher_core::metrics::HostSample;
use serde_json::{Value, json};

/// `GET /system/health` — the frontend checks `status == "success"`.
pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "time": chrono::Utc::now().to_rfc3339(),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
        "version": state.version,
    }))
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round2(part as f64 * 100.0 / whole as f64)
    }
}

fn disk_json(h: &HostSample, path: &std::path::Path) -> Value {
    match h.disk_of(path) {
        Some(d) => {
            let used = d.total.saturating_sub(d.available);
            json!({
                "mount_point": d.mount_point,
                "total_gb": round2(d.total as f64 / GIB),
                "used_gb": round2(used as f64 / GIB),
                "free_gb": round2(d.available as f64 / GIB),
                "percent": percent(used, d.total),
            })
        }
        None => json!({"total_gb": 0.0, "used_gb": 0.0, "free_gb": 0.0, "percent": 0.0}),
    }
}

/// The legacy metrics document, from the latest background sample (never measured here).
pub(crate) fn host_metrics_json(state: &AppState, instance_paths: &[(String, String)]) -> Value {
    let h = state.metrics.host();
    let m = &h.memory;
    let instance_disks: serde_json::Map<String, Value> = instance_paths
        .iter()
        .map(|(id, p)| (id.clone(), disk_json(&h, std::path::Path::new(p))))
        .collect();
    let (mut sent, mut recv, mut psent, mut precv) = (0u64, 0u64, 0u64, 0u64);
    for i in &h.interfaces {
        sent += i.bytes_sent;
        recv += i.bytes_recv;
        psent += i.packets_sent;
        precv += i.packets_recv;
    }
    json!({
        "system_info": {
            "system": std::env::consts::OS,
            "release": h.kernel,
            "version": h.os,
            "machine": h.arch,
            "processor": h.cpu_model,
            "hostname": h.hostname,
        },
        "cpu_usage_percent": round2(f64::from(h.cpu_usage_percent)),
        "cpu_cores": h.physical_cores,
        "cpu_threads": h.logical_cpus,
        "memory_usage": {
            "total_mb": round2(m.total as f64 / MIB),
            "used_mb": round2(m.used as f64 / MIB),
            "available_mb": round2(m.available as f64 / MIB),
            "free_mb": round2(m.free as f64 / MIB),
            "percent": percent(m.total.saturating_sub(m.available), m.total),
        },
        "disk_usage_root": disk_json(&h, std::path::Path::new("/")),
        "disk_usage_data": disk_json(&h, &state.data_dir),
        "instance_disks": instance_disks,
        "network_up": round2(h.network_up),
        "network_down": round2(h.network_down),
        "network_stats": {
            "interfaces": h.interfaces,
            "total_bytes_sent": sent,
            "total_bytes_recv": recv,
            "total_packets_sent": psent,
            "total_packets_recv": precv,
        },
        "sampled_at": h.at,
        "sample_interval_ms": state.metrics.interval().as_millis() as u64,
    })
}

/// `GET /system/metrics`.
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, crate::ApiError> {
    let paths: Vec<(String, String)> = state
        .catalog
        .list()
        .await?
        .into_iter()
        .map(|i| (i.row.id.clone(), i.row.install_path.clone()))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "status": "success",
        "data": host_metrics_json(&state, &paths),
    })))
}

/// `major*1000 + minor*100 + patch*10`, the legacy "internal version".
fn internal_version(v: &str) -> u64 {
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    a * 1000 + b * 100 + c * 10
}

/// `GET /version/current` — read as `data.version` / `data.internal_version`.
pub(crate) async fn version_current(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "version": state.version,
        "data": {
            "version": state.version,
            "internal_version": internal_version(state.version),
            "release_notes": "current build",
        },
    }))
}

/// `GET /version/check`. There is no release feed for this build, so it reports honestly
/// that no newer version is known; the fields are given both flat (setup wizard) and under
/// `data` (settings drawer).
pub(crate) async fn version_check(state: web::Data<AppState>) -> HttpResponse {
    let v = state.version;
    let fields = json!({
        "current_version": v,
        "current_internal": internal_version(v),
        "latest_version": v,
        "latest_internal": internal_version(v),
        "has_update": false,
        "update_url": null,
        "update_description": "no update channel is configured for this build",
        "release_notes": "",
        "release_date": null,
        "update_type": "none",
        "last_check": chrono::Utc::now().to_rfc3339(),
    });
    let mut body = fields.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("status".into(), json!("success"));
        o.insert("data".into(), fields);
    }
    HttpResponse::Ok().json(body)
}

/// `GET /version/history` — the versions this build knows: itself.
pub(crate) async fn version_history(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "success",
        "data": [{
            "version": state.version,
            "internal_version": internal_version(state.version),
            "release_date": null,
            "release_notes": "current build",
        }],
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn internal_versions() {
        assert_eq!(super::internal_version("0.1.0"), 100);
        assert_eq!(super::internal_version("1.2.3"), 1230);
    }
}
