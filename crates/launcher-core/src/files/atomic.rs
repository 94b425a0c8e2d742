//! Crash-safe replacement of a file's contents.
//!
//! The legacy launcher opened configs with `"w"` and serialized afterwards, so a failed
//! serialization left an empty `bot_config.toml`. Here readers only ever see the complete old
//! file or the complete new one.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::FileError;

/// Replaces the contents of `path` with `bytes` atomically.
///
/// Steps: write a temp file in the same directory, fsync it, optionally copy the current file
/// to `<name>.bak` (one backup, replaced each time; written via its own temp file so it is
/// never half-written either), rename the temp file over `path`, then fsync the directory.
///
/// * The new file gets the old file's permission bits (a `.env` at `0600` stays `0600`); a new
///   file gets the usual `0666 & !umask`. Ownership is not changed.
/// * If `path` is a symlink, its target is replaced and the link is kept.
/// * On any error the original file is untouched and no temp file is left behind. The one
///   exception is the final directory fsync: it is best-effort, because once the rename has
///   happened, reporting failure would misdescribe what is on disk.
pub fn write_atomic(path: &Path, bytes: &[u8], keep_backup: bool) -> Result<(), FileError> {
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| FileError::io("resolve", path, e))?
        }
        _ => path.to_path_buf(),
    };
    let name = target
        .file_name()
        .ok_or_else(|| FileError::Invalid {
            what: path.display().to_string(),
            detail: "not a file path".to_owned(),
        })?
        .to_os_string();
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = match fs::metadata(&target) {
        Ok(meta) if meta.is_file() => Some(meta),
        Ok(_) => {
            return Err(FileError::Invalid {
                what: path.display().to_string(),
                detail: "not a regular file".to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(FileError::io("stat", &target, e)),
    };

    let mut tmp = temp_in(&dir, &name, existing.is_none())?;
    tmp.write_all(bytes)
        .map_err(|e| FileError::io("write", tmp.path(), e))?;
    if let Some(meta) = &existing {
        // Set after creation: the umask would narrow a mode passed at creation time, and a
        // wider temporary mode could expose a secret-bearing file while it is being written.
        fs::set_permissions(tmp.path(), meta.permissions())
            .map_err(|e| FileError::io("chmod", tmp.path(), e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| FileError::io("fsync", tmp.path(), e))?;

    if keep_backup && existing.is_some() {
        write_backup(&target, &dir, &name)?;
    }

    // On failure `PersistError` hands the temp file back; dropping it deletes it.
    tmp.persist(&target)
        .map_err(|e| FileError::io("rename", &target, e.error))?;
    sync_dir(&dir);
    Ok(())
}

/// The backup path [`write_atomic`] uses for `path`: `<file name>.bak` next to it.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".bak");
    path.with_file_name(name)
}

fn write_backup(target: &Path, dir: &Path, name: &OsString) -> Result<(), FileError> {
    let mut src = File::open(target).map_err(|e| FileError::io("open", target, e))?;
    let meta = src
        .metadata()
        .map_err(|e| FileError::io("stat", target, e))?;
    let mut tmp = temp_in(dir, name, false)?;
    io::copy(&mut src, &mut tmp).map_err(|e| FileError::io("copy", tmp.path(), e))?;
    fs::set_permissions(tmp.path(), meta.permissions())
        .map_err(|e| FileError::io("chmod", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| FileError::io("fsync", tmp.path(), e))?;
    let bak = backup_path(target);
    tmp.persist(&bak)
        .map_err(|e| FileError::io("rename", &bak, e.error))?;
    Ok(())
}

/// What marks a temp file of ours: `.<target name>.tmp-<writer pid>` (the deployer's
/// writer) or `.<target name>.tmp-<writer pid>-<6 random characters>` (this module). The pid
/// lets a boot sweep tell an interrupted write (its writer is gone) from one in progress.
const TEMP_MARK: &str = ".tmp-";
const TEMP_RANDOM_LEN: usize = 6;

/// The writer pid of a temp file named by the launcher's pattern, `None` for any other
/// name (a user's `.bot_config.toml.tmp`, an editor's swap file, …).
pub fn temp_writer_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let at = rest.rfind(TEMP_MARK)?;
    if at == 0 {
        return None; // no target name before the mark
    }
    let tail = &rest[at + TEMP_MARK.len()..];
    let (pid, random) = match tail.split_once('-') {
        Some((pid, random)) => (pid, Some(random)),
        None => (tail, None),
    };
    if let Some(r) = random
        && (r.len() != TEMP_RANDOM_LEN || !r.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return None;
    }
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn temp_in(dir: &Path, name: &OsString, new_file: bool) -> Result<NamedTempFile, FileError> {
    let prefix = format!(
        ".{}{TEMP_MARK}{}-",
        name.to_string_lossy(),
        std::process::id()
    );
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .rand_bytes(TEMP_RANDOM_LEN)
        .suffix("");
    #[cfg(unix)]
    if new_file {
        use std::os::unix::fs::PermissionsExt;
        // Same mode a plain `File::create` would give; tempfile's default is 0600.
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    #[cfg(not(unix))]
    let _ = new_file;
    builder
        .tempfile_in(dir)
        .map_err(|e| FileError::io("create temp file in", dir, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Makes the rename durable. Ignoring failure is deliberate; see `write_atomic`.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {
    // Windows cannot open a directory as a plain file; NTFS journals the rename itself.
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn backup_path_appends_suffix() {
        assert_eq!(
            backup_path(Path::new("/a/bot_config.toml")),
            PathBuf::from("/a/bot_config.toml.bak")
        );
    }

    #[test]
    fn temp_names_carry_the_writer_pid_and_nothing_else_matches() {
        let me = std::process::id();
        let name = OsString::from("bot_config.toml");
        let dir = tempfile::tempdir().unwrap();
        let t = temp_in(dir.path(), &name, true).unwrap();
        let file_name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(temp_writer_pid(&file_name), Some(me), "{file_name}");
        assert_eq!(temp_writer_pid(".bot_config.toml.tmp-4242"), Some(4242));
        for other in [
            "bot_config.toml",
            ".bot_config.toml.tmp",
            ".bot_config.toml.abc123.tmp",
            ".bot_config.toml.tmp-",
            ".bot_config.toml.tmp-12x",
            ".bot_config.toml.tmp-12-abc",
            ".bot_config.toml.tmp-12-abcdef.bak",
            "bot_config.toml.tmp-12",
            "..tmp-12",
        ] {
            assert_eq!(temp_writer_pid(other), None, "{other}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfg.toml");
        fs::write(&p, b"old\n").unwrap();
        // The backup's place is a non-empty directory: renaming the backup's temp file onto
        // it fails after both temp files were written.
        fs::create_dir(backup_path(&p)).unwrap();
        fs::write(backup_path(&p).join("keep"), b"").unwrap();
        assert!(write_atomic(&p, b"a = 1\n", true).is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![OsString::from("cfg.toml"), OsString::from("cfg.toml.bak")]
        );
        assert_eq!(fs::read(&p).unwrap(), b"old\n");
    }

    #[test]
    fn creates_new_file_without_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.toml");
        write_atomic(&p, b"a = 1\n", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a = 1\n");
        assert!(!backup_path(&p).exists());
    }
}
