//! Read → edit in memory → verify → atomic write, for whole config files.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde_json::Value as Json;
use toml_edit::DocumentMut;

use super::atomic::write_atomic;
use super::env_file::EnvFile;
use super::error::FileError;
use super::toml_doc::{self, ChangeSummary};

/// The default cap on the size of a config file this module will read (4 MiB). MaiBot's
/// configs are a few KiB; anything near this is not a config file.
pub const DEFAULT_MAX_SIZE: u64 = 4 * 1024 * 1024;

/// High-level operations on one config file at a time.
///
/// Paths are used as given: resolve them with
/// [`resolve_inside`](super::safe_path::resolve_inside) first. Every update either writes the
/// complete new file (keeping the previous one as `<name>.bak` unless disabled) or leaves the
/// file byte-for-byte unchanged; an update that changes nothing does not write at all. Updates
/// need the file to exist ([`FileError::NotFound`] otherwise): seeding from a template is the
/// caller's decision.
///
/// Concurrent updates of the same file are last-writer-wins; callers that care should hold a
/// per-file lock around each call. All methods do blocking I/O (use `spawn_blocking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigFile {
    max_size: u64,
    keep_backup: bool,
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile::new()
    }
}

impl ConfigFile {
    /// [`DEFAULT_MAX_SIZE`] and backups on.
    pub fn new() -> Self {
        ConfigFile {
            max_size: DEFAULT_MAX_SIZE,
            keep_backup: true,
        }
    }

    /// Sets the largest file size, in bytes, that will be read.
    pub fn with_max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Turns the `<name>.bak` copy of the previous contents on or off.
    pub fn with_backup(mut self, keep: bool) -> Self {
        self.keep_backup = keep;
        self
    }

    /// Reads a whole file as UTF-8, refusing files over the size limit.
    pub fn read_text(&self, path: &Path) -> Result<String, FileError> {
        // Check the type before opening: opening a FIFO for reading would block.
        let meta = fs::metadata(path).map_err(|e| FileError::io("stat", path, e))?;
        if !meta.is_file() {
            return Err(FileError::Invalid {
                what: path.display().to_string(),
                detail: "not a regular file".to_owned(),
            });
        }
        let too_large = |size: u64| FileError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: self.max_size,
        };
        if meta.len() > self.max_size {
            return Err(too_large(meta.len()));
        }
        let file = File::open(path).map_err(|e| FileError::io("open", path, e))?;
        let mut bytes = Vec::new();
        // Bounded read: the file may have grown since the metadata call.
        file.take(self.max_size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FileError::io("read", path, e))?;
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > self.max_size {
            return Err(too_large(len));
        }
        String::from_utf8(bytes).map_err(|e| FileError::Parse {
            file: path.to_path_buf(),
            detail: format!("not UTF-8: {e}"),
        })
    }

    /// Reads and parses a TOML file for editing.
    pub fn read_toml(&self, path: &Path) -> Result<DocumentMut, FileError> {
        let text = self.read_text(path)?;
        parse_toml(path, &text)
    }

    /// The JSON view of a TOML file (see [`toml_doc`] for datetimes and non-finite floats).
    pub fn read_toml_as_json(&self, path: &Path) -> Result<Json, FileError> {
        self.read_toml(path).map(|doc| toml_doc::toml_to_json(&doc))
    }

    /// Replaces the whole TOML tree with `json` ([`toml_doc::apply_full`]: keys missing from
    /// `json` are removed), keeping comments and formatting.
    pub fn update_toml_full(&self, path: &Path, json: &Json) -> Result<ChangeSummary, FileError> {
        self.edit_toml(path, |doc| toml_doc::apply_full(doc, json))
    }

    /// Merges `json` into the TOML file ([`toml_doc::apply_patch`]: nothing is removed).
    pub fn patch_toml(&self, path: &Path, json: &Json) -> Result<ChangeSummary, FileError> {
        self.edit_toml(path, |doc| toml_doc::apply_patch(doc, json))
    }

    /// Key → value of a `.env` file as MaiBot reads it.
    pub fn read_env(&self, path: &Path) -> Result<BTreeMap<String, String>, FileError> {
        Ok(EnvFile::parse(&self.read_text(path)?).to_map())
    }

    /// Sets keys in a `.env` file ([`EnvFile::update`]: keys not given are kept); returns the
    /// keys whose value changed.
    pub fn update_env<I, K, V>(&self, path: &Path, changes: I) -> Result<Vec<String>, FileError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.edit_env(path, |env| env.update(changes))
    }

    /// Deletes keys from a `.env` file; returns the keys that were present.
    pub fn remove_env_keys<K: AsRef<str>>(
        &self,
        path: &Path,
        keys: &[K],
    ) -> Result<Vec<String>, FileError> {
        self.edit_env(path, |env| {
            Ok(keys
                .iter()
                .filter(|k| env.remove(k.as_ref()))
                .map(|k| k.as_ref().to_owned())
                .collect())
        })
    }

    fn edit_toml(
        &self,
        path: &Path,
        edit: impl FnOnce(&mut DocumentMut) -> Result<ChangeSummary, FileError>,
    ) -> Result<ChangeSummary, FileError> {
        let old = self.read_text(path)?;
        let mut doc = parse_toml(path, &old)?;
        let summary = edit(&mut doc)?;
        let new = toml_doc::render(&doc, &old);
        if new == old {
            return Ok(summary);
        }
        // Guard against formatting bugs: the bytes we write must mean what we edited.
        let reparsed = new
            .parse::<DocumentMut>()
            .map_err(|e| FileError::Internal {
                detail: format!("edited TOML does not parse: {e}"),
            })?;
        if toml_doc::toml_to_json(&reparsed) != toml_doc::toml_to_json(&doc) {
            return Err(FileError::Internal {
                detail: "edited TOML reads back differently".to_owned(),
            });
        }
        write_atomic(path, new.as_bytes(), self.keep_backup)?;
        Ok(summary)
    }

    fn edit_env<T>(
        &self,
        path: &Path,
        edit: impl FnOnce(&mut EnvFile) -> Result<T, FileError>,
    ) -> Result<T, FileError> {
        let old = self.read_text(path)?;
        let mut env = EnvFile::parse(&old);
        let result = edit(&mut env).map_err(|e| match e {
            FileError::Parse { detail, .. } => FileError::Parse {
                file: path.to_path_buf(),
                detail,
            },
            other => other,
        })?;
        let new = env.render();
        if new != old {
            write_atomic(path, new.as_bytes(), self.keep_backup)?;
        }
        Ok(result)
    }
}

fn parse_toml(path: &Path, text: &str) -> Result<DocumentMut, FileError> {
    text.parse::<DocumentMut>().map_err(|e| FileError::Parse {
        file: path.to_path_buf(),
        detail: e.to_string(),
    })
}
