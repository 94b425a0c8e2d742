//! Confining file access to an instance directory.
//!
//! The legacy launcher wrote into whatever path it was handed. Every path the API touches
//! should go through one of these functions first, with the instance directory as `root`.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::FileError;

/// Resolves `path` (relative to `root`, or absolute) to the canonical path of an **existing**
/// file or directory inside `root`.
///
/// Symlinks are followed, so a link pointing outside `root` is refused with
/// [`FileError::Escape`], as are `..` escapes and absolute paths elsewhere. A path that stays
/// inside `root` but does not exist gives [`FileError::NotFound`]; one that would be outside
/// gives `Escape` whether or not it exists, so callers cannot probe the rest of the disk.
pub fn resolve_inside(root: &Path, path: &Path) -> Result<PathBuf, FileError> {
    let root_c = canonical_root(root)?;
    resolve_with_root(root, &root_c, path)
}

/// Resolves a path for a file that is about to be created (or replaced) inside `root`.
///
/// The parent directory must exist and resolve inside `root`; the last component must be a
/// plain file name (not `..`, not a root). If the file already exists as a symlink, its
/// target must be inside `root` too, and the canonical target is returned, because
/// [`write_atomic`](super::atomic::write_atomic) writes through links.
pub fn resolve_inside_for_create(root: &Path, path: &Path) -> Result<PathBuf, FileError> {
    let root_c = canonical_root(root)?;
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => name,
        _ => {
            return Err(FileError::Invalid {
                what: path.display().to_string(),
                detail: "must end in a file name".to_owned(),
            });
        }
    };
    let parent = path.parent().unwrap_or(Path::new(""));
    let parent_c = resolve_with_root(root, &root_c, parent)?;
    if !parent_c.is_dir() {
        return Err(FileError::Invalid {
            what: path.display().to_string(),
            detail: "parent is not a directory".to_owned(),
        });
    }
    let target = parent_c.join(name);
    match fs::symlink_metadata(&target) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::canonicalize(&target) {
            Ok(real) if real.starts_with(&root_c) => Ok(real),
            // A dangling link is refused too: where it would lead is outside our control.
            _ => Err(escape(root, path)),
        },
        _ => Ok(target),
    }
}

fn resolve_with_root(root: &Path, root_c: &Path, path: &Path) -> Result<PathBuf, FileError> {
    let candidate = root_c.join(path);
    match fs::canonicalize(&candidate) {
        Ok(real) if real.starts_with(root_c) => Ok(real),
        Ok(_) => Err(escape(root, path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let normalized = normalize(&candidate);
            // Absolute inputs may spell the root without resolving its symlinks.
            if normalized.starts_with(root_c) || normalized.starts_with(normalize(root)) {
                Err(FileError::NotFound { path: candidate })
            } else {
                Err(escape(root, path))
            }
        }
        Err(e) => Err(FileError::io("resolve", candidate, e)),
    }
}

fn canonical_root(root: &Path) -> Result<PathBuf, FileError> {
    fs::canonicalize(root).map_err(|e| FileError::io("resolve", root, e))
}

fn escape(root: &Path, path: &Path) -> FileError {
    FileError::Escape {
        root: root.to_path_buf(),
        path: path.to_path_buf(),
    }
}

/// Removes `.` and applies `..` textually, never climbing above the path's root.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(
                    out.components().next_back(),
                    None | Some(Component::RootDir | Component::Prefix(_))
                ) {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn normalize_handles_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn missing_inside_is_not_found_missing_outside_is_escape() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_inside(dir.path(), Path::new("nope.toml")).unwrap_err();
        assert_eq!(e.code(), "file_not_found");
        let e = resolve_inside(dir.path(), Path::new("../nope-outside")).unwrap_err();
        assert_eq!(e.code(), "path_escape");
    }
}
