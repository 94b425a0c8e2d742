//! Ownership markers and the only deletions the deploy engine performs: a directory goes
//! only if it carries the launcher's marker, re-read right before removal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the ownership marker file written into every directory a deploy claims.
pub const MARKER_FILE: &str = ".mailauncher-owned";
const MARKER_LAUNCHER: &str = "mailauncher";
/// A marker larger than this is not ours.
const MARKER_MAX_BYTES: u64 = 4096;

/// How a deploy came to own a directory; decides what removing it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerRole {
    /// Created by the job as a component root: removed with everything in it.
    Root,
    /// Existed empty before the job: its contents are removed, the directory stays.
    Adopted,
    /// A missing ancestor created on the way: removed only while it holds nothing but the
    /// marker (someone may have put other things there since).
    Parent,
}

/// Contents of a marker file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Always `mailauncher`.
    pub launcher: String,
    /// The job that claimed the directory.
    pub job_id: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// How.
    pub role: MarkerRole,
}

/// Outcome of a removal request: each path lands in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemovalReport {
    /// Removed (for adopted directories: emptied).
    pub removed: Vec<PathBuf>,
    /// Left alone, with the reason.
    pub kept: Vec<(PathBuf, String)>,
}

/// Writes the marker into `dir`, failing if one is already there (another job got there
/// first).
pub(crate) fn write_marker(dir: &Path, job_id: &str, role: MarkerRole) -> std::io::Result<()> {
    let marker = Marker {
        launcher: MARKER_LAUNCHER.to_string(),
        job_id: job_id.to_string(),
        created_at: Utc::now(),
        role,
    };
    let body = serde_json::to_vec_pretty(&marker).map_err(std::io::Error::other)?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(MARKER_FILE))?;
    f.write_all(&body)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// The marker in `dir`, if there is a well-formed one in a regular file.
pub fn read_marker(dir: &Path) -> Option<Marker> {
    let p = dir.join(MARKER_FILE);
    let meta = fs::symlink_metadata(&p).ok()?;
    if !meta.file_type().is_file() || meta.len() > MARKER_MAX_BYTES {
        return None;
    }
    let m: Marker = serde_json::from_slice(&fs::read(&p).ok()?).ok()?;
    (m.launcher == MARKER_LAUNCHER).then_some(m)
}

/// Removes each directory that carries a launcher marker (any job), off the async runtime.
/// Deeper paths go first. Filesystem roots and the home directory are never removed.
pub async fn remove_owned(dirs: &[PathBuf]) -> RemovalReport {
    remove_blocking(dirs.to_vec(), None).await
}

/// Removes what job `job_id` created: each directory in `created_dirs` whose marker names
/// that job (re-checked now), deepest first, off the async runtime.
pub async fn cleanup(created_dirs: &[PathBuf], job_id: &str) -> RemovalReport {
    remove_blocking(created_dirs.to_vec(), Some(job_id.to_string())).await
}

async fn remove_blocking(dirs: Vec<PathBuf>, job: Option<String>) -> RemovalReport {
    let fallback = dirs.clone();
    match tokio::task::spawn_blocking(move || remove_all(&dirs, job.as_deref())).await {
        Ok(r) => r,
        Err(e) => RemovalReport {
            removed: Vec::new(),
            kept: fallback
                .into_iter()
                .map(|d| (d, format!("removal task failed: {e}")))
                .collect(),
        },
    }
}

fn remove_all(dirs: &[PathBuf], job: Option<&str>) -> RemovalReport {
    let mut order: Vec<&PathBuf> = dirs.iter().collect();
    order.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    order.dedup();
    let mut report = RemovalReport::default();
    for d in order {
        match remove_one(d, job) {
            Ok(()) => report.removed.push(d.clone()),
            Err(reason) => report.kept.push((d.clone(), reason)),
        }
    }
    report
}

/// The marker of `dir` when the launcher may take it away (remove it, or move it to the
/// trash): an absolute, non-root path that is not a home directory, a real directory (not
/// a symlink) carrying a well-formed marker. Otherwise the reason it must stay.
pub(crate) fn owned_marker(dir: &Path) -> Result<Marker, String> {
    if !dir.is_absolute() || dir.parent().is_none() {
        return Err("not an absolute, non-root path".to_string());
    }
    let parent = dir.parent().unwrap_or(dir);
    if parent == Path::new("/home") || parent == Path::new("/Users") || dir == Path::new("/root") {
        return Err("is a home directory".to_string());
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        let canon_home = fs::canonicalize(&home).unwrap_or(home);
        if fs::canonicalize(dir).is_ok_and(|c| c == canon_home) {
            return Err("is the home directory".to_string());
        }
    }
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("does not exist".to_string());
        }
        Err(e) => return Err(e.to_string()),
    };
    if !meta.file_type().is_dir() {
        return Err("not a directory (or a symlink)".to_string());
    }
    read_marker(dir).ok_or_else(|| format!("no {MARKER_FILE} marker; not created by the launcher"))
}

fn remove_one(dir: &Path, job: Option<&str>) -> Result<(), String> {
    let marker = owned_marker(dir)?;
    if let Some(j) = job
        && marker.job_id != j
    {
        return Err(format!("marker belongs to job {}", marker.job_id));
    }
    match marker.role {
        MarkerRole::Root => fs::remove_dir_all(dir).map_err(|e| e.to_string()),
        MarkerRole::Adopted => {
            let entries = fs::read_dir(dir).map_err(|e| e.to_string())?;
            // The marker goes last so an interrupted removal can be retried.
            for entry in entries {
                let entry = entry.map_err(|e| e.to_string())?;
                if entry.file_name() == MARKER_FILE {
                    continue;
                }
                let p = entry.path();
                let ft = entry.file_type().map_err(|e| e.to_string())?;
                if ft.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                }
                .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            fs::remove_file(dir.join(MARKER_FILE)).map_err(|e| e.to_string())
        }
        MarkerRole::Parent => {
            let others = fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .filter(|e| e.file_name() != MARKER_FILE)
                .count();
            if others > 0 {
                return Err(format!(
                    "created as a parent directory but now holds {others} other entries"
                ));
            }
            fs::remove_file(dir.join(MARKER_FILE)).map_err(|e| e.to_string())?;
            fs::remove_dir(dir).map_err(|e| e.to_string())
        }
    }
}
