//! Finding an instance's MaiBot database and probing it for `/resource/{id}/info`.
//!
//! MaiBot (0.7+) hard-codes `data/MaiBot.db` under its root, but forks and
//! future versions may make it configurable, and the legacy launcher silently
//! used a stale file when they did. So `config/bot_config.toml` is consulted
//! first, tolerantly:
//!
//! * the first of the tables `[database]`, `[data_base]`, `[db]` that exists is used;
//! * a backend key (`type`, `backend`, `db_type`, `engine`, `driver`) whose value is
//!   not `sqlite`/`sqlite3` yields [`MaibotDbError::UnsupportedBackend`] instead of
//!   operating on a file MaiBot no longer uses;
//! * the first non-empty string among `sqlite_path`, `database_path`, `db_path`,
//!   `sqlite_file`, `file`, `path` is the database location, relative to the
//!   instance directory unless absolute; `sqlite:///rel` and `sqlite:////abs`
//!   URL forms are accepted too.
//!
//! A missing or unparsable config falls back to the default, because an invalid
//! `bot_config.toml` is MaiBot's problem and must not hide the database from the UI.
//! Whatever the source, the result must stay inside the instance directory.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::error::{MaibotDbError, Result};

/// Default database location relative to the instance directory.
pub const DEFAULT_DB_RELATIVE: &str = "data/MaiBot.db";

const CONFIG_RELATIVE: &str = "config/bot_config.toml";
const DB_TABLES: [&str; 3] = ["database", "data_base", "db"];
const BACKEND_KEYS: [&str; 5] = ["type", "backend", "db_type", "engine", "driver"];
const PATH_KEYS: [&str; 6] = [
    "sqlite_path",
    "database_path",
    "db_path",
    "sqlite_file",
    "file",
    "path",
];

/// Probe result for the resource-info endpoint (`data.database`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbInfo {
    /// Resolved database path (lossy UTF-8 so it always serialises).
    pub path: String,
    /// Whether the file exists.
    pub exists: bool,
    /// Whether it opens as SQLite and holds both `emoji` and `person_info`.
    pub valid: bool,
    /// File size in bytes, 0 when missing.
    pub size: u64,
}

/// Canonical instance directory, or [`MaibotDbError::InstanceDirMissing`].
pub(crate) fn canonical_root(instance_dir: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(instance_dir) {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(_) => Err(MaibotDbError::InstanceDirMissing {
            path: instance_dir.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(MaibotDbError::InstanceDirMissing {
                path: instance_dir.to_path_buf(),
            })
        }
        Err(e) => Err(MaibotDbError::io(instance_dir, e)),
    }
}

/// Resolves the database path of the instance at `instance_dir`.
///
/// The file need not exist (callers decide whether that is an error), but the
/// path must resolve inside the instance directory, symlinks included.
pub fn locate_db(instance_dir: &Path) -> Result<PathBuf> {
    let root = canonical_root(instance_dir)?;
    let configured = configured_db_path(&root)?;
    let relative = configured.unwrap_or_else(|| PathBuf::from(DEFAULT_DB_RELATIVE));
    resolve_inside(&root, &relative)
}

/// Probes the database for the info endpoint without ever modifying it.
pub fn db_info(instance_dir: &Path) -> Result<DbInfo> {
    let path = locate_db(instance_dir)?;
    let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file());
    let exists = meta.is_some();
    let size = meta.map_or(0, |m| m.len());
    let valid = exists && super::conn::probe_valid(&path);
    Ok(DbInfo {
        path: path.to_string_lossy().into_owned(),
        exists,
        valid,
        size,
    })
}

/// Reads the configured location, if any; `Ok(None)` means "use the default".
fn configured_db_path(root: &Path) -> Result<Option<PathBuf>> {
    let Ok(text) = std::fs::read_to_string(root.join(CONFIG_RELATIVE)) else {
        return Ok(None);
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Ok(None);
    };
    let Some(table) = DB_TABLES
        .iter()
        .find_map(|name| doc.get(name).and_then(toml_edit::Item::as_table_like))
    else {
        return Ok(None);
    };
    let string_value = |key: &str| {
        table
            .get(key)
            .and_then(toml_edit::Item::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(backend) = BACKEND_KEYS.iter().find_map(|k| string_value(k)) {
        let lower = backend.to_ascii_lowercase();
        if lower != "sqlite" && lower != "sqlite3" {
            return Err(MaibotDbError::UnsupportedBackend {
                backend: backend.to_owned(),
            });
        }
    }
    Ok(PATH_KEYS
        .iter()
        .find_map(|k| string_value(k))
        .map(strip_sqlite_url))
}

/// Accepts SQLAlchemy-style `sqlite:///relative` and `sqlite:////absolute`.
fn strip_sqlite_url(raw: &str) -> PathBuf {
    match raw.strip_prefix("sqlite:///") {
        Some(rest) => PathBuf::from(rest),
        None => PathBuf::from(raw),
    }
}

/// Joins `candidate` onto `root` (unless absolute) and proves the result stays
/// inside `root` (which must already be canonical).
///
/// Existing paths are canonicalised so symlinks are followed; for a path that
/// does not exist yet, the deepest existing ancestor is canonicalised and the
/// remaining components must be plain names.
pub(crate) fn resolve_inside(root: &Path, candidate: &Path) -> Result<PathBuf> {
    let escape = || MaibotDbError::PathEscape {
        path: candidate.to_path_buf(),
    };
    let joined = root.join(candidate);
    // Lexically outside is only accepted if the complete path exists and
    // canonicalises inside (symlinked roots, Windows `\\?\` prefixes or letter
    // case); answering "escape" for every other such path keeps callers from
    // probing which files exist outside the instance.
    let lexically_inside = lexically_normalized(&joined)
        .is_some_and(|p| strip_verbatim(&p).starts_with(strip_verbatim(root)));
    let mut existing = joined.as_path();
    let mut tail = Vec::new();
    let canonical = loop {
        match std::fs::canonicalize(existing) {
            Ok(p) => break p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && lexically_inside => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(escape());
                };
                tail.push(name.to_os_string());
                existing = parent;
            }
            Err(_) if !lexically_inside => return Err(escape()),
            Err(e) => return Err(MaibotDbError::io(existing, e)),
        }
    };
    let mut resolved = canonical;
    for name in tail.into_iter().rev() {
        resolved.push(name);
    }
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(escape())
    }
}

/// Drops a Windows verbatim prefix (`\\?\C:\` → `C:\`) so canonical and
/// user-written paths compare; a no-op elsewhere.
fn strip_verbatim(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    if let Some(rest) = text.strip_prefix(r"\\?\UNC\") {
        PathBuf::from(format!(r"\\{rest}"))
    } else if let Some(rest) = text.strip_prefix(r"\\?\") {
        PathBuf::from(rest)
    } else {
        path.to_path_buf()
    }
}

/// Removes `.` and resolves `..` without touching the filesystem; `None` if
/// `..` climbs above the filesystem root.
fn lexically_normalized(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn verbatim_prefix_is_stripped() {
        assert_eq!(
            strip_verbatim(Path::new(r"\\?\C:\a")),
            PathBuf::from(r"C:\a")
        );
        assert_eq!(
            strip_verbatim(Path::new(r"\\?\UNC\srv\share")),
            PathBuf::from(r"\\srv\share")
        );
        assert_eq!(strip_verbatim(Path::new("/a/b")), PathBuf::from("/a/b"));
    }

    #[test]
    fn lexical_normalization() {
        assert_eq!(
            lexically_normalized(Path::new("/a/./b/../c")),
            Some(PathBuf::from("/a/c"))
        );
        assert_eq!(lexically_normalized(Path::new("/..")), None);
    }

    #[test]
    fn sqlite_url_forms() {
        assert_eq!(
            strip_sqlite_url("sqlite:///data/x.db"),
            PathBuf::from("data/x.db")
        );
        assert_eq!(
            strip_sqlite_url("sqlite:////abs/x.db"),
            PathBuf::from("/abs/x.db")
        );
        assert_eq!(strip_sqlite_url("data/x.db"), PathBuf::from("data/x.db"));
    }
}
