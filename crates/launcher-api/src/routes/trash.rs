//! The trash: deleted instances' folders, listed, restored or purged.

use crate::{ApiError, AppState, ids};
use actix_web::{HttpResponse, web};
use launcher_core::trash::TrashEntry;
use serde::Serialize;
use std::path::PathBuf;

/// One folder of a trash entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TrashFolderView {
    /// Where it was and goes back to.
    #[schema(value_type = String)]
    original: PathBuf,
    /// The folder itself stayed (it existed before the deploy); only its contents moved.
    contents_only: bool,
}

/// A deleted instance in the trash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TrashEntryView {
    id: String,
    instance_id: String,
    instance_name: String,
    version: Option<String>,
    deleted_at: chrono::DateTime<chrono::Utc>,
    /// When the hourly purge removes it (`deploy.trash_days` after the delete).
    expires_at: chrono::DateTime<chrono::Utc>,
    size_bytes: u64,
    /// False only when the daemon stopped in the middle of the delete.
    complete: bool,
    folders: Vec<TrashFolderView>,
}

/// `GET /trash`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TrashList {
    entries: Vec<TrashEntryView>,
    trash_days: u32,
}

/// `POST /trash/{entry_id}/restore`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RestoreView {
    restored: String,
    instance_id: String,
    /// Whether the instance got its old id back (false: another instance has it now).
    same_id: bool,
    name: String,
    #[schema(value_type = Vec<String>)]
    folders: Vec<PathBuf>,
}

fn view(state: &AppState, e: TrashEntry) -> TrashEntryView {
    TrashEntryView {
        expires_at: state.catalog.trash().expires_at(&e),
        version: e.instance["version"].as_str().map(str::to_owned),
        id: e.id,
        instance_id: e.instance_id,
        instance_name: e.instance_name,
        deleted_at: e.deleted_at,
        size_bytes: e.size_bytes,
        complete: e.complete,
        folders: e
            .folders
            .into_iter()
            .map(|f| TrashFolderView {
                original: f.original,
                contents_only: f.contents_only,
            })
            .collect(),
    }
}

/// `GET /trash`: entries, newest first.
pub(crate) async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let trash = state.catalog.trash();
    let entries = trash.list().await?;
    Ok(HttpResponse::Ok().json(TrashList {
        trash_days: trash.days(),
        entries: entries.into_iter().map(|e| view(&state, e)).collect(),
    }))
}

/// `POST /trash/{entry_id}/restore`: folders back in place, instance registered again.
pub(crate) async fn restore(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::trash_entry(&path)?;
    let r = state.catalog.restore(id).await?;
    Ok(HttpResponse::Ok().json(RestoreView {
        restored: r.entry_id,
        instance_id: r.instance_id,
        same_id: r.same_id,
        name: r.name,
        folders: r.folders,
    }))
}

/// `DELETE /trash/{entry_id}`: the entry and its folders, for good.
pub(crate) async fn purge(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ids::trash_entry(&path)?;
    state.catalog.trash().purge(id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "purged": id })))
}
