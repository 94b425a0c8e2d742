//! The instance catalog: what is registered, with live state; registering existing
//! installations; deleting instances without ever touching files the launcher did not create.

use crate::error::CoreError;
use crate::path_policy::PathPolicy;
use crate::supervisor::{InstanceState, Status, Supervisor};
use crate::trash::{Trash, TrashEntry, TrashError};
use maim_db::entity::launcher::{instance_components as comps, instances as insts};
use maim_db::prelude::*;
use maim_db::{Db, Filter, Query, TenantScope};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Component kinds the launcher knows how to run.
pub const KNOWN_KINDS: &[&str] = &["main", "napcat-ada"];

/// One component as the API shows it.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// `main`, `napcat-ada`, …
    pub kind: String,
    /// Its directory.
    pub path: String,
    /// The port it listens on, when known.
    pub port: Option<u16>,
    /// Every port registered for it (`instance_components.ports`), so a client can tell
    /// which listeners are the instance's own.
    pub ports: Vec<ComponentPort>,
    /// Live status (a stopped default when the instance was never loaded this run).
    pub status: Status,
}

/// One instance with its components and live state.
#[derive(Debug, Clone)]
pub struct InstanceInfo {
    /// The stored row (statistics included).
    pub row: insts::Model,
    /// Components in start order.
    pub components: Vec<ComponentInfo>,
    /// Summary state over the components (`degraded` when some run and others failed).
    pub state: InstanceState,
}

impl InstanceInfo {
    /// Seconds of runtime: the stored total plus the current run of the primary component.
    pub fn total_runtime_secs(&self) -> u64 {
        let stored = u64::try_from(self.row.total_runtime_ms).unwrap_or(0) / 1000;
        stored + self.uptime_secs().unwrap_or(0)
    }

    /// Seconds since the primary component started, while it runs.
    pub fn uptime_secs(&self) -> Option<u64> {
        self.components
            .first()
            .and_then(|c| c.status.uptime())
            .map(|d| d.as_secs())
    }

    /// Automatic restarts over all components since the daemon started.
    pub fn restart_count(&self) -> u64 {
        self.components.iter().map(|c| c.status.restart_count).sum()
    }
}

/// A component to register.
#[derive(Debug, Clone)]
pub struct NewComponent {
    /// A known kind.
    pub kind: String,
    /// Its directory (absolute).
    pub path: PathBuf,
    /// Its port.
    pub port: Option<u16>,
    /// argv; empty means "derive from the kind at start" (venv python + entry script).
    pub argv: Vec<String>,
    /// Every port registered for it besides `port` (WebUI, NapCat's), so no other
    /// instance is given one of them.
    pub ports: Vec<ComponentPort>,
}

/// One registered port of a component (stored in `instance_components.ports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ComponentPort {
    /// What it is for (`main`, `webui`, `adapter_napcat`, `napcat_ws`).
    pub role: String,
    /// The number.
    pub port: u16,
    /// Whether the component itself listens on it (NapCat's port is only reserved).
    pub listens: bool,
}

/// The ports stored in a component row's `ports` column (unreadable entries skipped).
pub fn row_ports(c: &comps::Model) -> Vec<ComponentPort> {
    serde_json::from_value::<Vec<ComponentPort>>(c.ports.clone()).unwrap_or_default()
}

/// An instance to register.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Display name, unique per tenant.
    pub name: String,
    /// MaiBot version (tag, branch or "unknown").
    pub version: String,
    /// The MaiBot directory.
    pub install_path: PathBuf,
    /// Components, `main` first.
    pub components: Vec<NewComponent>,
    /// Whether the launcher created the files (deploy) or only registered them (add).
    pub owned: bool,
}

/// What a delete did on disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteReport {
    /// Directories taken from their place: moved to the trash (nested ones with their
    /// parent), or removed when the trash is off (`deploy.trash_days = 0`).
    pub removed: Vec<PathBuf>,
    /// Directories left in place, with the reason.
    pub kept: Vec<(PathBuf, String)>,
    /// The trash entry that holds the moved directories, when any moved.
    pub trash_entry: Option<String>,
}

/// What a restore from the trash did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The trash entry (now gone).
    pub entry_id: String,
    /// The instance's id: the one it had, unless another instance took it meanwhile.
    pub instance_id: String,
    /// Whether `instance_id` is the id it had before the delete.
    pub same_id: bool,
    /// Its name (always the one it had).
    pub name: String,
    /// The folders put back at their original paths.
    pub folders: Vec<PathBuf>,
}

/// Statistics carried over when a trashed instance is registered again.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
struct StoredInstance {
    name: String,
    install_path: String,
    version: String,
    owned: bool,
    restart_policy: Option<String>,
    start_count: i64,
    crash_count: i64,
    total_runtime_ms: i64,
}

/// A component record as kept in a trash manifest.
#[derive(Debug, Clone, serde::Deserialize)]
struct StoredComponent {
    kind: String,
    path: String,
    #[serde(default)]
    port: Option<i32>,
    #[serde(default)]
    argv: serde_json::Value,
    #[serde(default)]
    ports: serde_json::Value,
}

/// Validates an instance name: non-empty, at most 64 characters, letters (any script),
/// digits, space, `-`, `_`, `.`; no leading/trailing space.
pub fn validate_name(name: &str) -> Result<(), CoreError> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.');
    if name.trim().is_empty() {
        return Err(CoreError::Invalid("instance name must not be empty".into()));
    }
    if name.chars().count() > 64 {
        return Err(CoreError::Invalid(
            "instance name must be at most 64 characters".into(),
        ));
    }
    if name.chars().all(|c| c == '.') {
        // `.` and `..` name the current and parent directory wherever a name becomes a
        // path segment; a name of dots only is never a folder name of its own.
        return Err(CoreError::Rejected {
            code: "invalid_name",
            detail: format!("instance name {name:?} is only dots; use letters or digits as well"),
        });
    }
    if name.trim() != name || !name.chars().all(ok_char) {
        return Err(CoreError::Invalid(format!(
            "instance name {name:?} may only contain letters, digits, spaces, '-', '_' and '.', \
             without leading or trailing spaces"
        )));
    }
    Ok(())
}

/// Validates a port a MaiBot component may listen on.
pub fn validate_port(what: &str, port: i64) -> Result<u16, CoreError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p >= 1024)
        .ok_or_else(|| {
            CoreError::Invalid(format!("{what} port {port} is out of range (1024–65535)"))
        })
}

/// Expands a leading `~` to the user's home directory and requires an absolute path.
pub fn expand_path(raw: &str) -> Result<PathBuf, CoreError> {
    let raw = raw.trim();
    let p = if raw == "~" || raw.starts_with("~/") {
        let home = std::env::var_os("HOME")
            .ok_or_else(|| CoreError::Invalid("cannot expand '~': HOME is not set".into()))?;
        PathBuf::from(home).join(raw.trim_start_matches('~').trim_start_matches('/'))
    } else {
        PathBuf::from(raw)
    };
    if !p.is_absolute() {
        return Err(CoreError::Invalid(format!(
            "path {raw:?} must be absolute (or start with '~/')"
        )));
    }
    Ok(p)
}

/// The instance catalog of one tenant.
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
    tenant: TenantScope,
    supervisor: Arc<Supervisor>,
    trash: Trash,
    snapshot: Arc<Mutex<Option<Arc<Snapshot>>>>,
    policy: PathPolicy,
}

/// The instance and component rows as of one row generation. The list route is the
/// frontend's polling target; serving it from memory keeps it off the database until a
/// row actually changes.
#[derive(Debug)]
struct Snapshot {
    generation: u64,
    rows: Vec<(insts::Model, Vec<comps::Model>)>,
}

/// A new instance or job id: 16 lowercase alphanumerics.
pub(crate) fn new_id() -> String {
    const ALPHABET: [char; 36] = [
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
        's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
    ];
    // No '_' in ids: the terminal session id is `<instance>_<component>`.
    nanoid::nanoid!(16, &ALPHABET)
}

impl Catalog {
    /// A catalog over `tenant`'s instances; deleted instances' folders go to `trash`.
    pub fn new(db: Db, tenant: TenantScope, supervisor: Arc<Supervisor>, trash: Trash) -> Self {
        Self {
            db,
            tenant,
            supervisor,
            trash,
            snapshot: Arc::new(Mutex::new(None)),
            policy: PathPolicy::from_env(Vec::new()),
        }
    }

    /// Uses `policy` for every path an instance may live at (added instances, deploy
    /// targets through [`crate::jobs::Jobs`], inspection).
    pub fn with_path_policy(mut self, policy: PathPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Where instances may live.
    pub fn path_policy(&self) -> &PathPolicy {
        &self.policy
    }

    /// Checks `path` against the [`PathPolicy`] (off the runtime: symlinks are resolved).
    pub async fn check_path(&self, path: &Path) -> Result<(), CoreError> {
        let policy = self.policy.clone();
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || policy.check(&p))
            .await
            .map_err(|e| CoreError::Io(format!("path check failed: {e}")))?
            .map_err(|r| CoreError::Rejected {
                code: r.code(),
                detail: r.to_string(),
            })
    }

    /// Where deleted instances' folders go.
    pub fn trash(&self) -> &Trash {
        &self.trash
    }

    /// The supervisor that runs the instances.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// Moves whenever a row or a live status of any instance changes: what
    /// [`Catalog::list`] returns can only differ when this did (or the clock moved).
    pub fn generation(&self) -> u64 {
        self.supervisor.rows().get()
    }

    fn info(
        &self,
        row: &insts::Model,
        rows: &[comps::Model],
        live: Option<&Vec<(String, Status)>>,
    ) -> InstanceInfo {
        let status_of = |kind: &str| {
            live.and_then(|l| l.iter().find(|(k, _)| k == kind))
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        let mut components: Vec<ComponentInfo> = rows
            .iter()
            .map(|c| ComponentInfo {
                status: status_of(&c.kind),
                port: c.port.and_then(|p| u16::try_from(p).ok()),
                ports: row_ports(c),
                kind: c.kind.clone(),
                path: c.path.clone(),
            })
            .collect();
        components.sort_by_key(|c| self.supervisor.order_of(&c.kind));
        InstanceInfo {
            row: row.clone(),
            state: crate::supervisor::summary(components.iter().map(|c| &c.status)),
            components,
        }
    }

    /// The rows, from memory unless a write happened since they were read.
    async fn snapshot(&self) -> Result<Arc<Snapshot>, CoreError> {
        // Read the generation before the rows: a write that lands while they load moves
        // it past the one stored, so the next call reloads.
        let generation = self.supervisor.rows().get();
        if let Some(s) = self.lock_snapshot().as_ref()
            && s.generation == generation
        {
            return Ok(s.clone());
        }
        let insts_rows = self
            .db
            .table::<insts::Entity>()
            .find(&self.tenant, Query::new())
            .await?;
        let mut by_instance: HashMap<String, Vec<comps::Model>> = HashMap::new();
        for c in self
            .db
            .table::<comps::Entity>()
            .find(&self.tenant, Query::new())
            .await?
        {
            by_instance
                .entry(c.instance_id.clone())
                .or_default()
                .push(c);
        }
        let mut rows: Vec<(insts::Model, Vec<comps::Model>)> = insts_rows
            .into_iter()
            .map(|r| {
                let cs = by_instance.remove(&r.id).unwrap_or_default();
                (r, cs)
            })
            .collect();
        rows.sort_by_key(|(r, _)| r.created_at);
        let snap = Arc::new(Snapshot { generation, rows });
        *self.lock_snapshot() = Some(snap.clone());
        Ok(snap)
    }

    fn lock_snapshot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Snapshot>>> {
        // A panic while holding the lock can only leave a stale snapshot behind, which the
        // generation check already handles.
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every instance, oldest first.
    pub async fn list(&self) -> Result<Vec<InstanceInfo>, CoreError> {
        let snap = self.snapshot().await?;
        let live = self.supervisor.all_loaded_statuses().await;
        Ok(snap
            .rows
            .iter()
            .map(|(r, cs)| self.info(r, cs, live.get(&r.id)))
            .collect())
    }

    /// One instance.
    pub async fn get(&self, id: &str) -> Result<InstanceInfo, CoreError> {
        let snap = self.snapshot().await?;
        let (row, cs) = snap
            .rows
            .iter()
            .find(|(r, _)| r.id == id)
            .ok_or_else(|| CoreError::NotFound(format!("instance {id}")))?;
        let live = self.supervisor.loaded_statuses(id).await;
        Ok(self.info(row, cs, Some(&live)))
    }

    /// Ports registered to any instance (optionally except one).
    pub async fn ports_in_use(&self, except: Option<&str>) -> Result<Vec<u16>, CoreError> {
        let rows = self
            .db
            .table::<comps::Entity>()
            .find(&self.tenant, Query::new())
            .await?;
        Ok(rows
            .into_iter()
            .filter(|c| Some(c.instance_id.as_str()) != except)
            .flat_map(|c| {
                let extra: Vec<u16> = row_ports(&c).into_iter().map(|p| p.port).collect();
                c.port
                    .and_then(|p| u16::try_from(p).ok())
                    .into_iter()
                    .chain(extra)
            })
            .collect())
    }

    /// Whether a name is taken.
    pub async fn name_taken(&self, name: &str) -> Result<bool, CoreError> {
        let n = self
            .db
            .table::<insts::Entity>()
            .count(
                &self.tenant,
                Filter::eq(insts::Column::Name, name.to_owned()),
            )
            .await?;
        Ok(n > 0)
    }

    /// Checks a registration against the catalog: known kinds, `main` present once, ports
    /// distinct and unused by other instances, the name free.
    pub async fn check_new(&self, new: &NewInstance) -> Result<(), CoreError> {
        validate_name(&new.name)?;
        if self.name_taken(&new.name).await? {
            return Err(CoreError::Conflict(format!(
                "an instance named {:?} already exists",
                new.name
            )));
        }
        let mut seen_kinds = Vec::new();
        for c in &new.components {
            if !KNOWN_KINDS.contains(&c.kind.as_str()) {
                return Err(CoreError::Invalid(format!(
                    "unknown component {:?}; known: {}",
                    c.kind,
                    KNOWN_KINDS.join(", ")
                )));
            }
            if seen_kinds.contains(&c.kind) {
                return Err(CoreError::Invalid(format!(
                    "component {:?} is listed twice",
                    c.kind
                )));
            }
            seen_kinds.push(c.kind.clone());
        }
        if new.components.first().map(|c| c.kind.as_str()) != Some("main") {
            return Err(CoreError::Invalid("the main component comes first".into()));
        }
        let mut ports: Vec<u16> = Vec::new();
        for c in &new.components {
            ports.extend(c.port);
            // A component's own main port is listed again among its roles.
            ports.extend(
                c.ports
                    .iter()
                    .map(|p| p.port)
                    .filter(|p| Some(*p) != c.port),
            );
        }
        for (i, p) in ports.iter().enumerate() {
            if ports[..i].contains(p) {
                return Err(CoreError::Invalid(format!(
                    "port {p} is given to two components"
                )));
            }
        }
        let used = self.ports_in_use(None).await?;
        if let Some(p) = ports.iter().find(|p| used.contains(p)) {
            return Err(CoreError::Conflict(format!(
                "port {p} is already used by another instance"
            )));
        }
        Ok(())
    }

    /// Stores an instance and its components (state `stopped`) and returns its id. The
    /// caller has validated it ([`Catalog::check_new`]); the database still enforces name
    /// and component uniqueness.
    pub async fn register(&self, new: &NewInstance) -> Result<String, CoreError> {
        self.register_as(new_id(), new, None).await
    }

    /// [`Catalog::register`] under an id chosen before (a deploy announces the id its
    /// instance will have). Fails with a conflict when the id is taken.
    pub async fn register_with_id(
        &self,
        id: String,
        new: &NewInstance,
    ) -> Result<String, CoreError> {
        self.register_as(id, new, None).await
    }

    /// [`Catalog::register`] under a given id, optionally carrying statistics over (a
    /// restore from the trash).
    async fn register_as(
        &self,
        id: String,
        new: &NewInstance,
        carried: Option<&StoredInstance>,
    ) -> Result<String, CoreError> {
        let main_port = new
            .components
            .iter()
            .find(|c| c.kind == "main")
            .and_then(|c| c.port);
        let row = insts::ActiveModel {
            id: Set(id.clone()),
            name: Set(new.name.clone()),
            install_path: Set(new.install_path.display().to_string()),
            version: Set(new.version.clone()),
            maibot_port: Set(main_port.map(i32::from)),
            owned: Set(new.owned),
            desired_state: Set("stopped".into()),
            observed_state: Set("stopped".into()),
            restart_policy: Set("on-failure".into()),
            ..Default::default()
        };
        let mut row = row;
        if let Some(c) = carried {
            if let Some(p) = &c.restart_policy {
                row.restart_policy = Set(p.clone());
            }
            row.start_count = Set(c.start_count);
            row.crash_count = Set(c.crash_count);
            row.total_runtime_ms = Set(c.total_runtime_ms);
        }
        self.db
            .table::<insts::Entity>()
            .insert(&self.tenant, row)
            .await
            .map_err(|e| match e {
                maim_db::DbError::Conflict { .. } => {
                    CoreError::Conflict(format!("an instance named {:?} already exists", new.name))
                }
                e => e.into(),
            })?;
        let comp_rows: Vec<comps::ActiveModel> = new
            .components
            .iter()
            .map(|c| comps::ActiveModel {
                instance_id: Set(id.clone()),
                kind: Set(c.kind.clone()),
                path: Set(c.path.display().to_string()),
                port: Set(c.port.map(i32::from)),
                argv: Set(serde_json::json!(c.argv)),
                env: Set(serde_json::json!({})),
                ports: Set(serde_json::json!(c.ports)),
                observed_state: Set("stopped".into()),
                ..Default::default()
            })
            .collect();
        if let Err(e) = self
            .db
            .table::<comps::Entity>()
            .insert_many(&self.tenant, comp_rows)
            .await
        {
            // Leave nothing half-registered.
            let _ = self
                .db
                .table::<insts::Entity>()
                .delete(&self.tenant, id.clone())
                .await;
            self.supervisor.rows().bump();
            return Err(e.into());
        }
        self.supervisor.rows().bump();
        Ok(id)
    }

    /// Registers an installation that already exists on disk (not owned: never deleted
    /// from disk). Requires `bot.py` in the MaiBot directory and `main.py` in the adapter's.
    pub async fn add_existing(&self, new: NewInstance) -> Result<String, CoreError> {
        for c in &new.components {
            // Before anything about the folder is revealed: a system directory is refused
            // whether or not it exists.
            self.check_path(&c.path).await?;
        }
        for c in &new.components {
            let entry = match c.kind.as_str() {
                "main" => "bot.py",
                "napcat-ada" => "main.py",
                _ => continue,
            };
            if !c.path.is_dir() {
                return Err(CoreError::Invalid(format!(
                    "{} directory {} does not exist or is not a directory",
                    c.kind,
                    c.path.display()
                )));
            }
            if !c.path.join(entry).is_file() {
                return Err(CoreError::Invalid(format!(
                    "{} has no {entry}: {} is not a {} directory",
                    c.path.display(),
                    c.path.display(),
                    if c.kind == "main" {
                        "MaiBot"
                    } else {
                        "napcat adapter"
                    }
                )));
            }
        }
        let new = NewInstance {
            owned: false,
            ..new
        };
        self.check_new(&new).await?;
        self.register(&new).await
    }

    /// Stops the instance (gracefully), removes its records and, when `remove_files`, moves
    /// the directories the launcher created for it (ownership marker present) into the
    /// trash, together with its records, so [`Catalog::restore`] can bring it back. With
    /// `deploy.trash_days = 0` they are removed instead. Files of added instances are never
    /// moved or removed.
    pub async fn delete(&self, id: &str, remove_files: bool) -> Result<DeleteReport, CoreError> {
        // One turn from the stop to the removed rows: a start or restart that arrives
        // meanwhile waits, then finds no instance (404) instead of starting a bot no record
        // refers to.
        let lock = self.supervisor.lock(id).await;
        let info = self.get(id).await?;
        self.supervisor.forget_locked(&lock).await?;
        // The records as they are after the stop, for the trash manifest.
        let row = self
            .db
            .table::<insts::Entity>()
            .get(&self.tenant, id.to_owned())
            .await?;
        let comp_rows = self
            .db
            .table::<comps::Entity>()
            .find(
                &self.tenant,
                Query::new().filter(Filter::eq(comps::Column::InstanceId, id.to_owned())),
            )
            .await?;
        self.db
            .table::<insts::Entity>()
            .delete(&self.tenant, id.to_owned())
            .await?;
        self.supervisor.rows().bump();
        drop(lock);
        let mut report = DeleteReport::default();
        if !remove_files {
            return Ok(report);
        }
        let mut dirs: Vec<PathBuf> = info
            .components
            .iter()
            .map(|c| PathBuf::from(&c.path))
            .collect();
        dirs.push(PathBuf::from(&info.row.install_path));
        dirs.sort();
        dirs.dedup();
        if !info.row.owned {
            report.kept = dirs
                .into_iter()
                .map(|d| (d, "added, not created by the launcher".to_owned()))
                .collect();
            return Ok(report);
        }
        if self.trash.days() == 0 {
            // Children before parents, so a nested component directory is judged on its
            // own marker before its parent is removed.
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            let r = crate::deploy::remove_owned(&dirs).await;
            return Ok(DeleteReport {
                removed: r.removed,
                kept: r.kept,
                trash_entry: None,
            });
        }
        let head = TrashEntry {
            id: new_id(),
            instance_id: id.to_owned(),
            instance_name: row.name.clone(),
            deleted_at: chrono::Utc::now(),
            size_bytes: 0,
            complete: false,
            folders: Vec::new(),
            instance: serde_json::to_value(&row).map_err(|e| CoreError::Io(e.to_string()))?,
            components: comp_rows
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()
                .map_err(|e| CoreError::Io(e.to_string()))?,
        };
        let _g = self.trash.lock().await;
        let r = self.trash.put(head, dirs).await;
        if let Some(e) = &r.entry {
            tracing::info!(instance = %id, entry = %e.id, bytes = e.size_bytes,
                "deleted instance's folders moved to the trash");
        }
        Ok(DeleteReport {
            removed: r.moved,
            kept: r.kept,
            trash_entry: r.entry.map(|e| e.id),
        })
    }

    /// Brings a trashed instance back: its folders to their original paths and its records
    /// into the catalog, under its old id when that is still free (else a new one) and
    /// always under its old name.
    ///
    /// Refused, with nothing moved or overwritten and the entry kept, when an original path
    /// exists again ([`TrashError::RestoreTargetTaken`]), a trashed folder is gone
    /// ([`TrashError::RestoreSourceGone`]), another instance has the name
    /// ([`TrashError::NameTaken`]) or one of its ports ([`TrashError::PortTaken`]). A
    /// failure while moving puts back what had moved; a failed registration moves the
    /// folders into the trash again.
    pub async fn restore(&self, entry_id: &str) -> Result<RestoreReport, CoreError> {
        let _g = self.trash.lock().await;
        let entry = self.trash.check_restorable(entry_id).await?;
        let corrupt = |detail: String| TrashError::Corrupt {
            entry: entry.id.clone(),
            detail,
        };
        let stored: StoredInstance =
            serde_json::from_value(entry.instance.clone()).map_err(|e| corrupt(e.to_string()))?;
        let mut components = entry
            .components
            .iter()
            .map(|c| serde_json::from_value::<StoredComponent>(c.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        components.sort_by_key(|c| c.kind != "main");
        if self.name_taken(&stored.name).await? {
            return Err(TrashError::NameTaken { name: stored.name }.into());
        }
        let used = self.ports_in_use(None).await?;
        let mut new_components = Vec::new();
        for c in components {
            let port = c.port.and_then(|p| u16::try_from(p).ok());
            let ports: Vec<ComponentPort> =
                serde_json::from_value(c.ports.clone()).unwrap_or_default();
            let taken = port
                .into_iter()
                .chain(ports.iter().map(|p| p.port))
                .find(|p| used.contains(p));
            if let Some(p) = taken {
                return Err(TrashError::PortTaken { port: p }.into());
            }
            new_components.push(NewComponent {
                kind: c.kind,
                path: PathBuf::from(c.path),
                port,
                argv: serde_json::from_value(c.argv).unwrap_or_default(),
                ports,
            });
        }
        let new = NewInstance {
            name: stored.name.clone(),
            version: stored.version.clone(),
            install_path: PathBuf::from(&stored.install_path),
            components: new_components,
            owned: stored.owned,
        };
        // Everything else `register` checks, before any folder moves.
        self.check_new(&new).await?;
        self.trash.move_out(&entry).await?;
        let same_id = match self
            .db
            .table::<insts::Entity>()
            .get(&self.tenant, entry.instance_id.clone())
            .await
        {
            Err(maim_db::DbError::NotFound { .. }) => true,
            Ok(_) => false,
            Err(e) => {
                self.undo_move_out(&entry).await;
                return Err(e.into());
            }
        };
        let id = if same_id {
            entry.instance_id.clone()
        } else {
            new_id()
        };
        let id = match self.register_as(id, &new, Some(&stored)).await {
            Ok(id) => id,
            Err(e) => {
                self.undo_move_out(&entry).await;
                return Err(e);
            }
        };
        if let Err(e) = self.trash.finish_restore(&entry.id).await {
            // The instance is back; only the emptied entry is left over.
            tracing::warn!(entry = %entry.id, error = %e, "could not remove a restored trash entry");
        }
        tracing::info!(entry = %entry.id, instance = %id, "instance restored from the trash");
        Ok(RestoreReport {
            entry_id: entry.id.clone(),
            instance_id: id,
            same_id,
            name: stored.name,
            folders: entry.folders.iter().map(|f| f.original.clone()).collect(),
        })
    }

    async fn undo_move_out(&self, entry: &TrashEntry) {
        if let Err(e) = self.trash.move_back_in(entry).await {
            tracing::error!(entry = %entry.id, error = %e,
                "restore failed and its folders could not all go back to the trash");
        }
    }
}

/// Best-effort MaiBot version of a directory: `pyproject.toml`'s `version`, else the
/// `MMC_VERSION` constant of `src/config/config.py`, else `None`.
pub fn detect_version(dir: &Path) -> Option<String> {
    let quoted = |line: &str| {
        let v = line.split_once('=')?.1.trim();
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty() && v.len() < 40).then(|| v.to_owned())
    };
    if let Ok(t) = std::fs::read_to_string(dir.join("pyproject.toml")) {
        let mut in_project = false;
        for line in t.lines().map(str::trim) {
            if line.starts_with('[') {
                in_project = line == "[project]" || line == "[tool.poetry]";
            } else if in_project && line.starts_with("version") {
                return quoted(line);
            }
        }
    }
    let cfg = std::fs::read_to_string(dir.join("src/config/config.py")).ok()?;
    cfg.lines()
        .map(str::trim)
        .find(|l| l.starts_with("MMC_VERSION"))
        .and_then(quoted)
}
