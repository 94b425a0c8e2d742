//! An instance's config files, located only inside its registered directories and edited
//! with [`crate::files`] (comments kept, atomic writes, one `.bak`). One lock serialises
//! writes so two saves never interleave; all file work runs off the async runtime.

use crate::catalog::InstanceInfo;
use crate::files::toml_doc::ChangeSummary;
use crate::files::{ConfigFile, FileError, safe_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Which file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// MaiBot's `config/bot_config.toml`.
    Bot,
    /// MaiBot 0.x's `config/lpmm_config.toml`.
    Lpmm,
    /// MaiBot's `config/model_config.toml` (newer versions).
    Model,
    /// MaiBot's `.env`.
    Env,
    /// The napcat adapter's `config.toml`, in the adapter component's directory.
    Adapter,
}

impl ConfigKind {
    /// From the route segment (`config`, `lpmm`, `model`, `env`, `adapter`).
    pub fn from_segment(s: &str) -> Option<Self> {
        Some(match s {
            "config" | "bot" => Self::Bot,
            "lpmm" => Self::Lpmm,
            "model" => Self::Model,
            "env" => Self::Env,
            "adapter" | "napcat" => Self::Adapter,
            _ => return None,
        })
    }
}

/// Why a file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum InstanceFileError {
    /// The instance has no component that holds this file.
    #[error("{0}")]
    NoComponent(String),
    /// From the file layer.
    #[error(transparent)]
    File(#[from] FileError),
    /// The blocking task failed.
    #[error("file task failed: {0}")]
    Task(String),
}

/// The default cap on a file read into memory (20 MiB), `server.max_file_bytes`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// Edits config files of instances.
#[derive(Debug, Clone)]
pub struct InstanceFiles {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Largest file read (config, template); never above the config module's own cap.
    max_bytes: u64,
}

impl Default for InstanceFiles {
    fn default() -> Self {
        Self {
            lock: Arc::default(),
            max_bytes: DEFAULT_MAX_FILE_BYTES.min(crate::files::config_file::DEFAULT_MAX_SIZE),
        }
    }
}

struct Located {
    root: PathBuf,
    rel: PathBuf,
    template: Option<PathBuf>,
}

fn locate(info: &InstanceInfo, kind: ConfigKind) -> Result<Located, InstanceFileError> {
    let main = PathBuf::from(&info.row.install_path);
    let in_main = |rel: &str| Located {
        root: main.clone(),
        rel: rel.into(),
        template: None,
    };
    Ok(match kind {
        ConfigKind::Bot => in_main("config/bot_config.toml"),
        ConfigKind::Lpmm => in_main("config/lpmm_config.toml"),
        ConfigKind::Model => in_main("config/model_config.toml"),
        ConfigKind::Env => in_main(".env"),
        ConfigKind::Adapter => {
            let c = info
                .components
                .iter()
                .find(|c| c.kind == "napcat-ada")
                .ok_or_else(|| {
                    InstanceFileError::NoComponent(format!(
                        "instance {} has no napcat adapter component",
                        info.row.name
                    ))
                })?;
            Located {
                root: PathBuf::from(&c.path),
                rel: "config.toml".into(),
                template: Some("template/template_config.toml".into()),
            }
        }
    })
}

fn existing(loc: &Located) -> Result<PathBuf, FileError> {
    safe_path::resolve_inside(&loc.root, &loc.root.join(&loc.rel))
}

/// The adapter's config is seeded from its template when missing (as MaiBot's adapter
/// itself would do on first start).
fn seed(loc: &Located, max_bytes: u64) -> Result<(), FileError> {
    let Some(t) = &loc.template else {
        return Ok(());
    };
    let target = safe_path::resolve_inside_for_create(&loc.root, &loc.root.join(&loc.rel))?;
    if target.exists() {
        return Ok(());
    }
    let template = safe_path::resolve_inside(&loc.root, &loc.root.join(t))?;
    // Bounded like every other read: a template is a config file too.
    let text = ConfigFile::new()
        .with_max_size(max_bytes)
        .read_text(&template)?;
    crate::files::atomic::write_atomic(&target, text.as_bytes(), false)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, InstanceFileError> + Send + 'static,
) -> Result<T, InstanceFileError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| InstanceFileError::Task(e.to_string()))?
}

impl InstanceFiles {
    /// Reads no file larger than `max_bytes` (a larger one is [`FileError::TooLarge`]); the
    /// config module's own cap ([`crate::files::config_file::DEFAULT_MAX_SIZE`]) still
    /// applies when it is lower.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes.min(crate::files::config_file::DEFAULT_MAX_SIZE);
        self
    }

    /// The file as JSON (TOML documents) or a string map (`.env`).
    pub async fn read(
        &self,
        info: &InstanceInfo,
        kind: ConfigKind,
    ) -> Result<Value, InstanceFileError> {
        let loc = locate(info, kind)?;
        let _guard = self.lock.lock().await;
        let max = self.max_bytes;
        blocking(move || {
            seed(&loc, max)?;
            let path = existing(&loc)?;
            let cf = ConfigFile::new().with_max_size(max);
            if kind == ConfigKind::Env {
                let map = cf.read_env(&path)?;
                Ok(serde_json::to_value(map).unwrap_or_default())
            } else {
                Ok(cf.read_toml_as_json(&path)?)
            }
        })
        .await
    }

    /// Replaces a TOML document with `doc` (keys missing from `doc` are removed; unchanged
    /// keys keep their text and comments). `.env`: sets the given keys, keeps the others.
    pub async fn update(
        &self,
        info: &InstanceInfo,
        kind: ConfigKind,
        doc: Value,
    ) -> Result<Vec<String>, InstanceFileError> {
        self.write(info, kind, doc, false).await
    }

    /// Merges a partial document into the file.
    pub async fn patch(
        &self,
        info: &InstanceInfo,
        kind: ConfigKind,
        doc: Value,
    ) -> Result<Vec<String>, InstanceFileError> {
        self.write(info, kind, doc, true).await
    }

    async fn write(
        &self,
        info: &InstanceInfo,
        kind: ConfigKind,
        doc: Value,
        merge: bool,
    ) -> Result<Vec<String>, InstanceFileError> {
        let loc = locate(info, kind)?;
        let _guard = self.lock.lock().await;
        let max = self.max_bytes;
        blocking(move || {
            seed(&loc, max)?;
            let path = existing(&loc)?;
            let cf = ConfigFile::new().with_max_size(max);
            if kind == ConfigKind::Env {
                let map = env_map(&doc)?;
                return Ok(cf.update_env(&path, map)?);
            }
            let summary: ChangeSummary = if merge {
                cf.patch_toml(&path, &doc)?
            } else {
                cf.update_toml_full(&path, &doc)?
            };
            Ok(summary.paths().map(str::to_owned).collect())
        })
        .await
    }
}

fn env_map(doc: &Value) -> Result<BTreeMap<String, String>, FileError> {
    let obj = doc.as_object().ok_or_else(|| FileError::Invalid {
        what: ".env".into(),
        detail: "expected an object of KEY: \"value\" strings".into(),
    })?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Null => Err(FileError::NullValue { key: k.clone() }),
            other => Err(FileError::TypeMismatch {
                key: k.clone(),
                expected: "string",
                actual: json_type(other),
            }),
        })
        .collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Age past which a temp file of ours is stale even if a process with its writer's pid is
/// alive: a write takes milliseconds, and after a restart that pid may belong to someone
/// else.
const TEMP_MAX_AGE: Duration = Duration::from_secs(60);

/// The directories an instance's config writes go to (the editor's and the deployer's):
/// its install directory and `config/`, and each component's directory and `config/`.
pub fn config_dirs(info: &InstanceInfo) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let roots = std::iter::once(PathBuf::from(&info.row.install_path))
        .chain(info.components.iter().map(|c| PathBuf::from(&c.path)));
    for root in roots {
        for d in [root.join("config"), root] {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// Removes the temp files that interrupted atomic writes left in `dirs` (not recursive):
/// only names of the launcher's own pattern ([`crate::files::atomic::temp_writer_pid`]),
/// only regular files, and only when the writer is gone or the file is older than a minute.
/// Returns how many were removed; a directory that cannot be read is skipped (a missing
/// component folder is not this sweep's business).
pub fn sweep_temp_files(dirs: &[PathBuf]) -> usize {
    let now = SystemTime::now();
    dirs.iter().map(|d| sweep_dir(d, now)).sum()
}

fn sweep_dir(dir: &Path, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(crate::files::atomic::temp_writer_pid)
        else {
            continue;
        };
        // `DirEntry::metadata` does not follow symlinks: a link is never ours.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > TEMP_MAX_AGE);
        if old || !crate::supervisor::procfs::alive(pid) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::debug!(path = %entry.path().display(), "removed the temp file of an interrupted write");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a stale temp file");
                }
            }
        }
    }
    removed
}
