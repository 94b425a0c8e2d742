//! Ownership markers: the launcher removes a directory only when it carries the marker it
//! wrote when it created that directory. Anything else (a user's folder, an added
//! installation, a parent that existed before) is never removed.

use crate::catalog::DeleteReport;
use std::path::{Path, PathBuf};

/// File name of the marker written into every directory the launcher creates.
pub const MARKER: &str = ".mailauncher-owned";

/// Writes the marker (JSON: who created the directory and when).
pub fn write_marker(dir: &Path, job_id: &str) -> std::io::Result<()> {
    let body = serde_json::json!({
        "created_by": "mailauncher",
        "job_id": job_id,
        "created_at": chrono::Utc::now().to_rfc3339(),
    });
    std::fs::write(dir.join(MARKER), body.to_string())
}

/// Whether `dir` carries a launcher marker (a real file, not a symlink).
pub fn is_owned(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(MARKER))
        .map(|m| m.is_file())
        .unwrap_or(false)
}

/// Removes each directory that carries the marker; reports what was kept and why.
/// Blocking: call it off the async runtime.
pub fn remove_owned(dirs: &[PathBuf]) -> DeleteReport {
    let mut report = DeleteReport::default();
    for d in dirs {
        let meta = match std::fs::symlink_metadata(d) {
            Ok(m) => m,
            Err(_) => {
                report.kept.push((d.clone(), "does not exist".into()));
                continue;
            }
        };
        if !meta.is_dir() {
            report.kept.push((
                d.clone(),
                "not a directory (a symlink is never followed)".into(),
            ));
            continue;
        }
        if !is_owned(d) {
            report
                .kept
                .push((d.clone(), "not created by the launcher (no marker)".into()));
            continue;
        }
        match std::fs::remove_dir_all(d) {
            Ok(()) => report.removed.push(d.clone()),
            Err(e) => report
                .kept
                .push((d.clone(), format!("removal failed: {e}"))),
        }
    }
    report
}
