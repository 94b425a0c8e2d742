//! The launcher's trash: where a deleted instance's folders go instead of being removed, so
//! a delete can be undone until the entry expires (`deploy.trash_days`).
//!
//! Layout under `<data_dir>/trash/`:
//!
//! ```text
//! <entry-id>/entry.json      the manifest (TrashEntry): records, original paths, size
//! <entry-id>/files/<n>-<name>/  one moved folder each
//! ```
//!
//! Only directories that carry the launcher's ownership marker are moved (the rule
//! `deploy::remove_owned` follows): a `root` directory moves whole; an `adopted` one (it
//! existed, empty, before the deploy) moves its contents and stays in place. A folder nested
//! in one that moves (the adapter inside MaiBot's folder) moves with it, once.
//!
//! A move is a `rename` on one filesystem. Across filesystems (`EXDEV`) the tree is copied,
//! every file and directory fsynced, and only then is the original removed; a copy that
//! fails midway is removed and the original stays as it was.
//!
//! The manifest is written before anything moves, so a crash mid-delete leaves an entry
//! that says where each folder belongs (`complete: false`); every file is then either in
//! its place or in the trash.

use crate::deploy::cleanup::{MarkerRole, owned_marker};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The manifest's file name inside an entry directory.
pub const MANIFEST_FILE: &str = "entry.json";
/// The directory of an entry that holds the moved folders.
const FILES_DIR: &str = "files";

/// What a trash operation can fail with; mapped to stable codes at the API boundary.
#[derive(Debug, thiserror::Error)]
pub enum TrashError {
    /// No entry with that id.
    #[error("trash entry {0} not found")]
    NotFound(String),
    /// An original path exists again; restoring would overwrite it.
    #[error("{} exists again; restoring would overwrite it", .path.display())]
    RestoreTargetTaken {
        /// The path that is taken.
        path: PathBuf,
    },
    /// The trashed copy of a folder is no longer in the trash.
    #[error("the trashed copy of {} is gone from the trash", .path.display())]
    RestoreSourceGone {
        /// The folder's original path.
        path: PathBuf,
    },
    /// Another instance has the name since; the entry is kept.
    #[error("an instance named {name:?} exists; rename or delete it before restoring")]
    NameTaken {
        /// The instance's name.
        name: String,
    },
    /// Another instance uses one of the instance's ports since; the entry is kept.
    #[error("port {port} is now used by another instance; free it before restoring")]
    PortTaken {
        /// The port.
        port: u16,
    },
    /// The entry's manifest is missing or unreadable.
    #[error("trash entry {entry} is unreadable: {detail}")]
    Corrupt {
        /// The entry id.
        entry: String,
        /// What is wrong.
        detail: String,
    },
    /// A file operation failed; nothing was left half-moved.
    #[error("{0}")]
    Io(String),
}

/// One folder in an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashedFolder {
    /// Where it was (and goes back to).
    pub original: PathBuf,
    /// Its name under the entry's `files/`.
    pub stored: String,
    /// The folder itself stayed in place (it existed before the deploy claimed it); only
    /// its contents are here.
    pub contents_only: bool,
}

/// An entry's manifest (`entry.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashEntry {
    /// The entry id (16 lowercase alphanumerics).
    pub id: String,
    /// The deleted instance's id.
    pub instance_id: String,
    /// Its name.
    pub instance_name: String,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
    /// Bytes of the moved folders (file lengths).
    pub size_bytes: u64,
    /// Every folder was moved as recorded (false only after a crash mid-delete).
    pub complete: bool,
    /// The moved folders.
    pub folders: Vec<TrashedFolder>,
    /// The instance record as stored (restore registers it again).
    pub instance: serde_json::Value,
    /// Its component records.
    pub components: Vec<serde_json::Value>,
}

/// What moving an instance's folders into the trash did.
#[derive(Debug, Clone, Default)]
pub(crate) struct PutReport {
    /// The entry, when at least one folder moved.
    pub entry: Option<TrashEntry>,
    /// Paths taken from their place (nested ones included).
    pub moved: Vec<PathBuf>,
    /// Paths left in place, with the reason.
    pub kept: Vec<(PathBuf, String)>,
}

/// The trash under a data directory.
#[derive(Debug, Clone)]
pub struct Trash {
    root: PathBuf,
    days: u32,
    /// Serializes moves into, out of and purges of entries.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Trash {
    /// The trash at `<data_dir>/trash`, keeping entries `days` days (0: deletes remove
    /// folders at once, as before the trash existed).
    pub fn new(data_dir: &Path, days: u32) -> Self {
        Self {
            root: data_dir.join("trash"),
            days,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// `<data_dir>/trash`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Days an entry is kept (`deploy.trash_days`).
    pub fn days(&self) -> u32 {
        self.days
    }

    /// When `entry` is purged by [`Trash::purge_expired`] with the configured days.
    pub fn expires_at(&self, entry: &TrashEntry) -> DateTime<Utc> {
        entry.deleted_at + chrono::Duration::days(i64::from(self.days))
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Every readable entry, newest first. Unreadable ones are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<TrashEntry>, TrashError> {
        let root = self.root.clone();
        blocking(move || list_blocking(&root)).await
    }

    /// One entry.
    pub async fn get(&self, id: &str) -> Result<TrashEntry, TrashError> {
        let dir = self.entry_dir(id)?;
        let id = id.to_owned();
        blocking(move || read_manifest(&dir, &id)).await
    }

    /// Deletes one entry for good (an unreadable one too: it is still the launcher's).
    pub async fn purge(&self, id: &str) -> Result<(), TrashError> {
        let _g = self.lock().await;
        let dir = self.entry_dir(id)?;
        let id = id.to_owned();
        blocking(move || {
            if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                return Err(TrashError::NotFound(id));
            }
            remove_entry(&dir)
        })
        .await
    }

    /// Deletes every entry deleted more than `max_age` before `now`; returns their ids.
    /// An entry that cannot be removed is logged and left for the next run.
    pub async fn purge_expired(
        &self,
        max_age: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, TrashError> {
        let _g = self.lock().await;
        let root = self.root.clone();
        blocking(move || {
            let mut purged = Vec::new();
            for e in list_blocking(&root)? {
                if now - e.deleted_at < max_age {
                    continue;
                }
                match remove_entry(&root.join(&e.id)) {
                    Ok(()) => purged.push(e.id),
                    Err(err) => {
                        tracing::warn!(entry = %e.id, error = %err, "could not purge a trash entry")
                    }
                }
            }
            Ok(purged)
        })
        .await
    }

    /// [`Trash::purge_expired`] with the configured days, now.
    pub async fn purge_due(&self) -> Result<Vec<String>, TrashError> {
        self.purge_expired(chrono::Duration::days(i64::from(self.days)), Utc::now())
            .await
    }

    /// The entry's directory, for an id that can only name a child of the root.
    fn entry_dir(&self, id: &str) -> Result<PathBuf, TrashError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(self.root.join(id))
        } else {
            Err(TrashError::NotFound(id.to_owned()))
        }
    }

    /// Moves the launcher-owned folders among `dirs` into a new entry described by `head`
    /// (its `folders`, `size_bytes` and `complete` are filled in here). The caller holds
    /// the lock.
    pub(crate) async fn put(&self, head: TrashEntry, dirs: Vec<PathBuf>) -> PutReport {
        let root = self.root.clone();
        let fallback = dirs.clone();
        match tokio::task::spawn_blocking(move || put_blocking(&root, head, dirs)).await {
            Ok(r) => r,
            Err(e) => PutReport {
                kept: fallback
                    .into_iter()
                    .map(|d| (d, format!("trash task failed: {e}")))
                    .collect(),
                ..Default::default()
            },
        }
    }

    /// Reads an entry and checks it can go back: every trashed folder present, every
    /// original path free. Nothing moves. The caller holds the lock.
    pub(crate) async fn check_restorable(&self, id: &str) -> Result<TrashEntry, TrashError> {
        let dir = self.entry_dir(id)?;
        let id = id.to_owned();
        blocking(move || {
            let entry = read_manifest(&dir, &id)?;
            check_restorable(&dir, &entry)?;
            Ok(entry)
        })
        .await
    }

    /// Moves an entry's folders back to their original paths: all of them or, on a
    /// failure, none (the ones already moved go back into the trash). The caller holds the
    /// lock.
    pub(crate) async fn move_out(&self, entry: &TrashEntry) -> Result<(), TrashError> {
        let dir = self.entry_dir(&entry.id)?;
        let entry = entry.clone();
        blocking(move || {
            check_restorable(&dir, &entry)?;
            let pairs: Vec<(PathBuf, PathBuf, bool)> = entry
                .folders
                .iter()
                .map(|f| {
                    (
                        dir.join(FILES_DIR).join(&f.stored),
                        f.original.clone(),
                        f.contents_only,
                    )
                })
                .collect();
            transfer_all(&pairs).map_err(|e| TrashError::Io(format!("restore failed: {e}")))
        })
        .await
    }

    /// Undoes [`Trash::move_out`] (the registration after it failed). The caller holds the
    /// lock.
    pub(crate) async fn move_back_in(&self, entry: &TrashEntry) -> Result<(), TrashError> {
        let dir = self.entry_dir(&entry.id)?;
        let entry = entry.clone();
        blocking(move || {
            let pairs: Vec<(PathBuf, PathBuf, bool)> = entry
                .folders
                .iter()
                .map(|f| {
                    (
                        f.original.clone(),
                        dir.join(FILES_DIR).join(&f.stored),
                        f.contents_only,
                    )
                })
                .collect();
            transfer_all(&pairs).map_err(|e| TrashError::Io(e.to_string()))
        })
        .await
    }

    /// Removes a restored entry (its folders are back in place). The caller holds the lock.
    pub(crate) async fn finish_restore(&self, id: &str) -> Result<(), TrashError> {
        let dir = self.entry_dir(id)?;
        blocking(move || remove_entry(&dir)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TrashError> + Send + 'static,
) -> Result<T, TrashError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TrashError::Io(format!("trash task failed: {e}")))?
}

fn io_err(what: &str, path: &Path, e: io::Error) -> TrashError {
    TrashError::Io(format!("{what} {}: {e}", path.display()))
}

fn list_blocking(root: &Path) -> Result<Vec<TrashEntry>, TrashError> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", root, e)),
    };
    let mut out = Vec::new();
    for item in rd {
        let item = item.map_err(|e| io_err("read", root, e))?;
        if !item.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let id = item.file_name().to_string_lossy().into_owned();
        match read_manifest(&item.path(), &id) {
            Ok(e) => out.push(e),
            Err(e) => tracing::warn!(entry = %id, error = %e, "skipping an unreadable trash entry"),
        }
    }
    out.sort_by(|a, b| b.deleted_at.cmp(&a.deleted_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

fn read_manifest(dir: &Path, id: &str) -> Result<TrashEntry, TrashError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(TrashError::NotFound(id.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TrashError::NotFound(id.to_owned()));
        }
        Err(e) => return Err(io_err("stat", dir, e)),
    }
    let corrupt = |detail: String| TrashError::Corrupt {
        entry: id.to_owned(),
        detail,
    };
    let bytes = fs::read(dir.join(MANIFEST_FILE)).map_err(|e| corrupt(e.to_string()))?;
    let entry: TrashEntry = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if entry.id != id {
        return Err(corrupt(format!("the manifest names entry {}", entry.id)));
    }
    // A manifest is ours only when each stored name is a plain child of `files/`.
    if let Some(f) = entry.folders.iter().find(|f| !plain_name(&f.stored)) {
        return Err(corrupt(format!("bad stored folder name {:?}", f.stored)));
    }
    Ok(entry)
}

fn plain_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

fn write_manifest(dir: &Path, entry: &TrashEntry) -> Result<(), TrashError> {
    let body = serde_json::to_vec_pretty(entry).map_err(|e| TrashError::Io(e.to_string()))?;
    crate::files::write_atomic(&dir.join(MANIFEST_FILE), &body, false)
        .map_err(|e| TrashError::Io(e.to_string()))
}

/// Removes an entry directory: the manifest first, so a removal cut short leaves no
/// entry that claims files it no longer has.
fn remove_entry(dir: &Path) -> Result<(), TrashError> {
    match fs::remove_file(dir.join(MANIFEST_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", &dir.join(MANIFEST_FILE), e)),
    }
    fs::remove_dir_all(dir).map_err(|e| io_err("remove", dir, e))
}

fn put_blocking(root: &Path, mut head: TrashEntry, mut dirs: Vec<PathBuf>) -> PutReport {
    let mut report = PutReport::default();
    dirs.sort_by_key(|d| d.components().count());
    dirs.dedup();
    let entry_dir = root.join(&head.id);
    let files = entry_dir.join(FILES_DIR);
    if let Err(e) = fs::create_dir_all(root)
        .and_then(|()| fs::create_dir(&entry_dir))
        .and_then(|()| fs::create_dir(&files))
    {
        report.kept = dirs
            .into_iter()
            .map(|d| (d, format!("cannot create the trash entry: {e}")))
            .collect();
        return report;
    }
    let canon_root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());

    // Plan: shallowest first; a folder inside one that moves goes with it.
    let mut planned: Vec<TrashedFolder> = Vec::new();
    let mut nested: Vec<(PathBuf, PathBuf)> = Vec::new();
    for d in dirs {
        if let Some(p) = planned.iter().find(|p| d.starts_with(&p.original)) {
            nested.push((d, p.original.clone()));
            continue;
        }
        let marker = match owned_marker(&d) {
            Ok(m) => m,
            Err(reason) => {
                report.kept.push((d, reason));
                continue;
            }
        };
        let canon = fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
        if canon.starts_with(&canon_root) || canon_root.starts_with(&canon) {
            report
                .kept
                .push((d, "holds or is inside the launcher's trash".to_owned()));
            continue;
        }
        let contents_only = match marker.role {
            MarkerRole::Root => false,
            MarkerRole::Adopted => true,
            MarkerRole::Parent => {
                report.kept.push((
                    d,
                    "a parent directory created on the way, not an instance folder".to_owned(),
                ));
                continue;
            }
        };
        let base = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        planned.push(TrashedFolder {
            stored: format!("{}-{base}", planned.len()),
            original: d,
            contents_only,
        });
    }
    if planned.is_empty() {
        let _ = remove_entry(&entry_dir);
        report
            .kept
            .extend(nested.into_iter().map(|(d, _)| (d, "not moved".to_owned())));
        return report;
    }

    // The manifest goes first: whatever happens next, the entry says where things belong.
    head.folders = planned.clone();
    head.complete = false;
    if let Err(e) = write_manifest(&entry_dir, &head) {
        let _ = remove_entry(&entry_dir);
        report.kept.extend(
            planned
                .into_iter()
                .map(|f| f.original)
                .chain(nested.into_iter().map(|(d, _)| d))
                .map(|d| (d, format!("cannot write the trash manifest: {e}"))),
        );
        return report;
    }

    let mut moved: Vec<TrashedFolder> = Vec::new();
    for f in planned {
        let to = files.join(&f.stored);
        match transfer(&f.original, &to, f.contents_only) {
            Ok(()) => {
                report.moved.push(f.original.clone());
                moved.push(f);
            }
            Err(e) => report.kept.push((
                f.original.clone(),
                format!("could not move to the trash: {e}"),
            )),
        }
    }
    for (d, parent) in nested {
        if moved.iter().any(|m| m.original == parent) {
            report.moved.push(d);
        } else {
            report
                .kept
                .push((d, "inside a folder that could not be moved".to_owned()));
        }
    }
    if moved.is_empty() {
        let _ = remove_entry(&entry_dir);
        return report;
    }
    head.size_bytes = tree_size(&files);
    head.folders = moved;
    head.complete = true;
    if let Err(e) = write_manifest(&entry_dir, &head) {
        // The first manifest stays: it lists every planned folder, so nothing is lost.
        tracing::warn!(entry = %head.id, error = %e, "could not finish the trash manifest");
    }
    report.entry = Some(head);
    report
}

fn check_restorable(dir: &Path, entry: &TrashEntry) -> Result<(), TrashError> {
    for f in &entry.folders {
        let src = dir.join(FILES_DIR).join(&f.stored);
        if !fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir()) {
            return Err(TrashError::RestoreSourceGone {
                path: f.original.clone(),
            });
        }
    }
    for f in &entry.folders {
        match fs::symlink_metadata(&f.original) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("stat", &f.original, e)),
            // An adopted folder stays behind, empty: filling it again overwrites nothing.
            Ok(m) if f.contents_only && m.is_dir() && is_empty_dir(&f.original) => {}
            Ok(_) => {
                return Err(TrashError::RestoreTargetTaken {
                    path: f.original.clone(),
                });
            }
        }
    }
    Ok(())
}

fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p).is_ok_and(|mut rd| rd.next().is_none())
}

/// Moves each `(from, to, contents_only)`; on a failure the ones already moved go back and
/// the error is returned.
fn transfer_all(pairs: &[(PathBuf, PathBuf, bool)]) -> io::Result<()> {
    for (i, (from, to, contents_only)) in pairs.iter().enumerate() {
        if let Err(e) = transfer(from, to, *contents_only) {
            for (from, to, contents_only) in pairs[..i].iter().rev() {
                if let Err(back) = transfer(to, from, *contents_only) {
                    tracing::error!(from = %to.display(), to = %from.display(), error = %back,
                        "could not undo a partial restore; the folder is at the first path");
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Moves a folder (`contents_only`: its entries, into `to`, created when missing). A
/// folder move never replaces an existing `to`.
fn transfer(from: &Path, to: &Path, contents_only: bool) -> io::Result<()> {
    if !contents_only {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        return move_path(from, to);
    }
    fs::create_dir_all(to)?;
    let names: Vec<_> = fs::read_dir(from)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    for (i, name) in names.iter().enumerate() {
        if let Err(e) = move_path(&from.join(name), &to.join(name)) {
            for name in names[..i].iter().rev() {
                let _ = move_path(&to.join(name), &from.join(name));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// `rename`, or across filesystems a complete, fsynced copy and only then the removal of
/// the original. A failed copy is removed again; the original is untouched.
fn move_path(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    match fs::rename(from, to) {
        Ok(()) => {
            sync_parent(to);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => copy_then_remove(from, to),
        Err(e) => Err(e),
    }
}

fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    if let Err(e) = copy_tree(from, to) {
        let _ = remove_any(to);
        return Err(io::Error::new(
            e.kind(),
            format!("copy to {} failed (original kept): {e}", to.display()),
        ));
    }
    sync_parent(to);
    // The copy is complete and durable; a removal cut short leaves extra files at the
    // original place, never missing ones.
    if let Err(e) = remove_any(from) {
        tracing::warn!(path = %from.display(), error = %e,
            "copied to the trash but could not remove every original file");
    }
    Ok(())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Copies a tree without following symlinks: files (content, permissions, modification
/// time) and directories are fsynced; sockets, FIFOs and devices refuse the copy.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if ft.is_dir() {
        fs::create_dir(to)?;
        for item in fs::read_dir(from)? {
            let item = item?;
            copy_tree(&item.path(), &to.join(item.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions())?;
        File::open(to)?.sync_all()
    } else if ft.is_file() {
        fs::copy(from, to)?;
        let f = fs::OpenOptions::new().write(true).open(to)?;
        if let Ok(mtime) = meta.modified() {
            f.set_modified(mtime)?;
        }
        f.sync_all()
    } else {
        Err(io::Error::other(format!(
            "{} is not a file, directory or symlink",
            from.display()
        )))
    }
}

fn sync_parent(p: &Path) {
    // Makes the rename or copy durable; best effort, as in `files::atomic`.
    if let Some(d) = p.parent()
        && let Ok(f) = File::open(d)
    {
        let _ = f.sync_all();
    }
}

fn tree_size(p: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/MaiBot.db"), b"SQLite format 3\0rows").unwrap();
        fs::write(root.join("notes.txt"), "用户的文件").unwrap();
        std::os::unix::fs::symlink("data/MaiBot.db", root.join("link")).unwrap();
    }

    #[test]
    fn the_copy_path_is_complete_and_removes_the_original_last() {
        let t = tempfile::tempdir().unwrap();
        let from = t.path().join("bot");
        tree(&from);
        let to = t.path().join("trash/bot");
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        copy_then_remove(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(
            fs::read(to.join("data/MaiBot.db")).unwrap(),
            b"SQLite format 3\0rows"
        );
        assert_eq!(
            fs::read_to_string(to.join("notes.txt")).unwrap(),
            "用户的文件"
        );
        assert_eq!(
            fs::read_link(to.join("link")).unwrap(),
            Path::new("data/MaiBot.db")
        );
    }

    #[test]
    fn a_copy_failing_midway_leaves_the_original_and_no_partial_copy() {
        let t = tempfile::tempdir().unwrap();
        let from = t.path().join("bot");
        tree(&from);
        // A FIFO cannot be copied: the copy fails after the files before it were written.
        let fifo = from.join("zz.fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let to = t.path().join("copy");
        assert!(copy_then_remove(&from, &to).is_err());
        assert!(!to.exists(), "the partial copy is removed");
        assert_eq!(
            fs::read(from.join("data/MaiBot.db")).unwrap(),
            b"SQLite format 3\0rows"
        );
        assert!(from.join("notes.txt").exists() && from.join("zz.fifo").exists());
    }

    #[test]
    fn a_failed_move_puts_back_the_folders_already_moved() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        tree(&a);
        tree(&b);
        let before = fs::read(a.join("data/MaiBot.db")).unwrap();
        // The second destination's parent is a file: its move fails after the first's.
        fs::write(t.path().join("blocker"), "").unwrap();
        let pairs = vec![
            (a.clone(), t.path().join("out/a"), false),
            (b.clone(), t.path().join("blocker/b"), false),
        ];
        assert!(transfer_all(&pairs).is_err());
        assert_eq!(fs::read(a.join("data/MaiBot.db")).unwrap(), before);
        assert!(b.join("notes.txt").exists());
        assert!(!t.path().join("out/a").exists());
    }

    #[test]
    fn a_folder_move_never_replaces_what_is_there() {
        let t = tempfile::tempdir().unwrap();
        let from = t.path().join("a");
        tree(&from);
        let to = t.path().join("b");
        fs::create_dir(&to).unwrap();
        assert!(transfer(&from, &to, false).is_err());
        assert!(from.join("notes.txt").exists());
        assert!(is_empty_dir(&to));
    }
}
