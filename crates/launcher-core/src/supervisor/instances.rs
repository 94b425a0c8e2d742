//! Instances: their components in start order, persistence of state and statistics
//! through maim-db, and boot reconciliation.

use super::members::{self, COMPONENT_ENV};
use super::{
    Component, ComponentConfig, InstanceState, Readiness, RestartMode, RestartPolicy, State,
    Status, StopPolicy, procfs,
};
use crate::error::CoreError;
use crate::logs::LogConfig;
use crate::profile::profile_for;
use maim_db::entity::launcher::{
    instance_components as comps, instance_runs as runs, instances as insts,
};
use maim_db::prelude::*;
use maim_db::{Db, Filter, Query, TenantScope};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard, broadcast, mpsc, oneshot};

/// Supervisor-wide settings.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Where component log files go (`<instance>/<component>.log`).
    pub logs_dir: PathBuf,
    /// Component kinds in start order; stop runs in reverse. Unlisted kinds start last.
    pub start_order: Vec<String>,
    /// Stop signal and grace period of components whose profile has none of its own
    /// (MaiBot and the adapter are always stopped with SIGINT and their own grace).
    pub stop: StopPolicy,
    /// How long a component may take from spawn to ready (its profile's ready line and
    /// open ports) before it is ended as a failure for its restart policy. The next
    /// component in the start order waits for it, so this also bounds each attempt that
    /// wait lasts through.
    pub ready_timeout: Duration,
    /// Backoff and give-up; the mode comes from each instance's `restart_policy`.
    pub restart: RestartPolicy,
    /// Ring and file limits for each component.
    pub log: LogConfig,
    /// Quiet period before a partial line is published.
    pub flush_after: Duration,
}

impl SupervisorConfig {
    /// Defaults with logs under `logs_dir`.
    pub fn new(logs_dir: impl Into<PathBuf>) -> Self {
        Self {
            logs_dir: logs_dir.into(),
            start_order: vec!["main".into(), "napcat-ada".into(), "napcat".into()],
            stop: StopPolicy::default(),
            ready_timeout: Duration::from_secs(120),
            restart: RestartPolicy::default(),
            log: LogConfig::default(),
            flush_after: Duration::from_millis(50),
        }
    }
}

/// What boot reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Processes of a previous daemon that were still alive and were terminated.
    pub orphans_terminated: Vec<u32>,
    /// Recorded pids that were dead or now belong to another process (left alone).
    pub stale_pids: Vec<u32>,
    /// Instances whose recorded state claimed a live process and was corrected.
    pub states_corrected: Vec<String>,
    /// Instances started again because their desired state is `running`.
    pub autostarted: Vec<String>,
}

struct Instance {
    components: Vec<(String, Component)>,
    /// The recorder's queue: statuses come from the actors; a flush waits for what is queued.
    recorder: mpsc::UnboundedSender<Rec>,
    /// Moves with every power action on the instance. The task that starts the later
    /// components in order holds the value it was started under and starts nothing once
    /// it moved; a start it does runs under this lock, so a stop cannot slip between its
    /// check and its start.
    epoch: Mutex<u64>,
}

impl Instance {
    /// Returns once the recorder has written every status queued before the call (the
    /// actors queue theirs before they answer, so after a confirmed stop this includes its
    /// exit).
    async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.recorder.send(Rec::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Ends any start sequence in flight; returns the new epoch.
    async fn new_epoch(&self) -> u64 {
        let mut e = self.epoch.lock().await;
        *e += 1;
        *e
    }
}

/// A component changed state (or statistics), as live subscribers see it.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// Instance id.
    pub instance: String,
    /// Component kind.
    pub component: String,
    /// The component's new status.
    pub status: Status,
    /// The instance's summary state after the change.
    pub instance_state: InstanceState,
}

/// Counts writes to the instance and component rows and changes of live component status,
/// so readers can keep a snapshot (or a rendered view) and know when it went stale without
/// asking the database.
#[derive(Debug, Default)]
pub(crate) struct RowGeneration(AtomicU64);

impl RowGeneration {
    pub(crate) fn get(&self) -> u64 {
        // Acquire pairs with the Release in `bump`: a reader that sees the new number also
        // sees that the write it stands for has completed.
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Held while one power action (start, stop, restart, kill, delete) of one instance runs:
/// an instance has one order of operations, so a start cannot slip in after a delete
/// stopped it and bring back processes no record refers to. Get it with
/// [`Supervisor::lock`].
pub struct InstanceLock {
    id: String,
    _guard: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for InstanceLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceLock")
            .field("id", &self.id)
            .finish()
    }
}

/// Runs and records every instance of one tenant.
pub struct Supervisor {
    db: Db,
    tenant: TenantScope,
    cfg: SupervisorConfig,
    /// The runtime every actor, recorder and start sequence runs on: the one the
    /// supervisor was created on (the daemon's main runtime), whichever thread asks. An HTTP
    /// worker's runtime is torn down before instances are stopped at shutdown.
    rt: tokio::runtime::Handle,
    /// Names this launcher's components apart from another launcher's (another database)
    /// on the same machine, in [`COMPONENT_ENV`]; stable across restarts.
    launcher: String,
    /// One lock per instance id for its power actions (see [`InstanceLock`]).
    ops: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Set by [`Supervisor::shutdown`]: nothing is started any more.
    closing: AtomicBool,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
    rows: Arc<RowGeneration>,
    changes: broadcast::Sender<StateChange>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("tenant", &self.tenant)
            .finish()
    }
}

fn restart_mode(policy: &str) -> RestartMode {
    match policy {
        "never" => RestartMode::Never,
        "always" => RestartMode::Always,
        _ => RestartMode::OnFailure,
    }
}

/// The instance-level state over its components' statuses (components without a status
/// yet count as stopped). A transition in progress (stopping, starting, backoff) shows
/// first; then `degraded` when something runs while another component failed or stopped
/// without being asked to; `failed` when something failed and nothing runs.
pub fn summary<'a>(statuses: impl IntoIterator<Item = &'a Status>) -> InstanceState {
    let (mut stopping, mut starting, mut backoff, mut running, mut failed, mut broken) =
        (false, false, false, false, false, false);
    for s in statuses {
        match s.state {
            State::Stopped => {
                // Exited on its own without a restart (e.g. code 0 under on-failure).
                broken |= s.last_exit.as_ref().is_some_and(|e| !e.requested);
            }
            State::Stopping => stopping = true,
            State::Starting => starting = true,
            State::Backoff => backoff = true,
            State::Running => running = true,
            State::Failed => failed = true,
        }
    }
    if stopping {
        InstanceState::Stopping
    } else if starting {
        InstanceState::Starting
    } else if backoff {
        InstanceState::Backoff
    } else if running && (failed || broken) {
        InstanceState::Degraded
    } else if running {
        InstanceState::Running
    } else if failed {
        InstanceState::Failed
    } else {
        InstanceState::Stopped
    }
}

impl Supervisor {
    /// A supervisor for `tenant`'s instances. Call [`Supervisor::reconcile`] once at boot.
    /// Must be called on the runtime that lives until [`Supervisor::shutdown`] is done
    /// (the daemon's main runtime): every actor runs there.
    pub fn new(db: Db, tenant: TenantScope, cfg: SupervisorConfig) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        let launcher = format!("{:016x}", fnv1a(db.url().to_string().as_bytes()));
        Arc::new(Self {
            db,
            tenant,
            cfg,
            rt: tokio::runtime::Handle::current(),
            launcher,
            ops: std::sync::Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            instances: Mutex::new(HashMap::new()),
            rows: Arc::new(RowGeneration::default()),
            changes,
        })
    }

    /// State changes of every component, after they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.changes.subscribe()
    }

    pub(crate) fn rows(&self) -> &Arc<RowGeneration> {
        &self.rows
    }

    pub(crate) fn order_of(&self, kind: &str) -> usize {
        self.cfg
            .start_order
            .iter()
            .position(|k| k == kind)
            .unwrap_or(usize::MAX)
    }

    async fn instance(self: &Arc<Self>, id: &str) -> Result<Arc<Instance>, CoreError> {
        let mut map = self.instances.lock().await;
        if let Some(i) = map.get(id) {
            return Ok(i.clone());
        }
        let row = match self
            .db
            .table::<insts::Entity>()
            .get(&self.tenant, id.to_owned())
            .await
        {
            Ok(r) => r,
            Err(maim_db::DbError::NotFound { .. }) => {
                return Err(CoreError::NotFound(format!("instance {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let mut rows = self
            .db
            .table::<comps::Entity>()
            .find(
                &self.tenant,
                Query::new().filter(Filter::eq(comps::Column::InstanceId, id.to_owned())),
            )
            .await?;
        rows.sort_by_key(|c| self.order_of(&c.kind));
        let mut components = Vec::new();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        for c in rows {
            let mut argv: Vec<String> = serde_json::from_value(c.argv.clone()).map_err(|e| {
                CoreError::Invalid(format!("component {} has a bad argv: {e}", c.kind))
            })?;
            if argv.is_empty() {
                argv = derived_argv(&c.kind, std::path::Path::new(&c.path))?;
            }
            let env: Vec<(String, String)> = c
                .env
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let profile = profile_for(&c.kind, std::path::Path::new(&c.path));
            let mut spec = profile.spec(argv, &c.path, env);
            // Last, so no row can override it: how its processes are found wherever they go.
            spec.env
                .push((COMPONENT_ENV.to_owned(), self.marker(id, &c.kind)));
            let ports: Vec<u16> = c
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|_| profile.wait_ports)
                .into_iter()
                .collect();
            let mut log = self.cfg.log.clone();
            log.file = Some(self.cfg.logs_dir.join(id).join(format!("{}.log", c.kind)));
            let observer = {
                let (kind, tx, rows) = (c.kind.clone(), events_tx.clone(), self.rows.clone());
                Box::new(move |s: &Status| {
                    // Views built from live statuses go stale now, before the row is recorded.
                    rows.bump();
                    let _ = tx.send(Rec::Status(kind.clone(), s.clone()));
                }) as super::component::Observer
            };
            let component = Component::new_on(
                ComponentConfig {
                    name: format!("{id}-{}", c.kind),
                    spec,
                    restart: RestartPolicy {
                        mode: restart_mode(&row.restart_policy),
                        ..self.cfg.restart.clone()
                    },
                    stop: profile.stop.unwrap_or(self.cfg.stop),
                    ready: Readiness {
                        lines: profile
                            .ready_lines
                            .iter()
                            .map(|l| (*l).to_owned())
                            .collect(),
                        ports,
                        timeout: self.cfg.ready_timeout,
                    },
                    restart_exit_code: profile.restart_exit_code,
                    log,
                    flush_after: self.cfg.flush_after,
                },
                &self.rt,
                Some(observer),
            )?;
            tracing::debug!(instance = id, component = %c.kind, profile = profile.name, "component loaded");
            components.push((c.kind.clone(), component));
        }
        // The instance's start count and runtime follow its first component (MaiBot core);
        // crashes of any component count.
        let primary = components
            .first()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let inst = Arc::new(Instance {
            components,
            recorder: events_tx,
            epoch: Mutex::new(0),
        });
        self.rt.spawn(record(
            Recorder {
                db: self.db.clone(),
                tenant: self.tenant.clone(),
                rows: self.rows.clone(),
                changes: self.changes.clone(),
            },
            id.to_owned(),
            primary,
            events_rx,
        ));
        map.insert(id.to_owned(), inst.clone());
        Ok(inst)
    }

    async fn set_desired(&self, id: &str, desired: &str) -> Result<(), CoreError> {
        let am = insts::ActiveModel {
            desired_state: Set(desired.to_owned()),
            ..Default::default()
        };
        self.db
            .table::<insts::Entity>()
            .update(&self.tenant, id.to_owned(), am)
            .await?;
        self.rows.bump();
        Ok(())
    }

    /// Records the desired state `running` and starts the components in order: the first
    /// now (its spawn error is returned), each next one in the background once the one
    /// before it is ready (`running`). When one fails or stops instead, the later ones are
    /// not started and are marked `failed` with the reason. Returns after the first spawn:
    /// readiness can take minutes, which no request should wait for.
    pub async fn start(self: &Arc<Self>, id: &str) -> Result<(), CoreError> {
        let _lock = self.lock(id).await;
        self.refuse_when_closing()?;
        // Loaded under the lock: after a delete held it, the row is gone and this is a 404.
        let inst = self.instance(id).await?;
        self.set_desired(id, "running").await?;
        start_in_order(&inst, &self.rt).await
    }

    /// The marker value of a component's processes (see [`COMPONENT_ENV`]).
    fn marker(&self, id: &str, kind: &str) -> String {
        format!("{}/{id}_{kind}", self.launcher)
    }

    /// Waits for `id`'s turn: every power action of one instance runs under this lock, in
    /// arrival order. [`Supervisor::forget_locked`] and the caller's own record changes run
    /// under the same turn (the catalog's delete).
    pub async fn lock(&self, id: &str) -> InstanceLock {
        let m = {
            // A panic elsewhere under this lock leaves a map that is still valid.
            let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
            ops.entry(id.to_owned()).or_default().clone()
        };
        InstanceLock {
            id: id.to_owned(),
            _guard: m.lock_owned().await,
        }
    }

    fn refuse_when_closing(&self) -> Result<(), CoreError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(CoreError::Conflict("the launcher is shutting down".into()));
        }
        Ok(())
    }

    /// The loaded instance, or loaded now under its lock (so a delete in progress is
    /// waited for and a deleted instance is not loaded again).
    async fn loaded_or_load(self: &Arc<Self>, id: &str) -> Result<Arc<Instance>, CoreError> {
        if let Some(i) = self.instances.lock().await.get(id) {
            return Ok(i.clone());
        }
        let _lock = self.lock(id).await;
        self.instance(id).await
    }

    /// Stops every component in reverse order (each confirmed reaped) and records the
    /// desired state `stopped`; a start sequence in flight starts nothing more.
    pub async fn stop(self: &Arc<Self>, id: &str) -> Result<(), CoreError> {
        let _lock = self.lock(id).await;
        let inst = self.instance(id).await?;
        self.set_desired(id, "stopped").await?;
        inst.new_epoch().await;
        for (_, c) in inst.components.iter().rev() {
            c.stop().await?;
        }
        Ok(())
    }

    /// A confirmed stop of every component, then a start in order as [`Supervisor::start`].
    pub async fn restart(self: &Arc<Self>, id: &str) -> Result<(), CoreError> {
        let _lock = self.lock(id).await;
        self.refuse_when_closing()?;
        let inst = self.instance(id).await?;
        self.set_desired(id, "running").await?;
        inst.new_epoch().await;
        for (_, c) in inst.components.iter().rev() {
            c.stop().await?;
        }
        start_in_order(&inst, &self.rt).await
    }

    /// SIGKILL to every member of every component.
    pub async fn kill(self: &Arc<Self>, id: &str) -> Result<(), CoreError> {
        // A kill cannot start anything, so it goes to the loaded components at once, before
        // it waits for its turn: a stop in its grace period holds the turn, and a kill must
        // still get through. Then, in turn, it is recorded and repeated for anything a
        // start before it began.
        let loaded = self.instances.lock().await.get(id).cloned();
        if let Some(inst) = loaded {
            for (_, c) in &inst.components {
                let _ = c.kill().await;
            }
        }
        let _lock = self.lock(id).await;
        let inst = self.instance(id).await?;
        self.set_desired(id, "stopped").await?;
        inst.new_epoch().await;
        for (_, c) in &inst.components {
            c.kill().await?;
        }
        Ok(())
    }

    /// One component's handle (for terminals and logs).
    pub async fn component(self: &Arc<Self>, id: &str, kind: &str) -> Result<Component, CoreError> {
        let inst = self.loaded_or_load(id).await?;
        inst.components
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| CoreError::NotFound(format!("component {kind} of instance {id}")))
    }

    /// Live statuses of an instance's components if it was loaded this run (without
    /// loading it: listing must not create actors).
    pub async fn loaded_statuses(&self, id: &str) -> Vec<(String, Status)> {
        let map = self.instances.lock().await;
        map.get(id)
            .map(|i| {
                i.components
                    .iter()
                    .map(|(k, c)| (k.clone(), c.status()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Supervisor::loaded_statuses`] of every loaded instance, under one lock.
    pub async fn all_loaded_statuses(&self) -> HashMap<String, Vec<(String, Status)>> {
        let map = self.instances.lock().await;
        map.iter()
            .map(|(id, i)| {
                let s = i
                    .components
                    .iter()
                    .map(|(k, c)| (k.clone(), c.status()))
                    .collect();
                (id.clone(), s)
            })
            .collect()
    }

    /// Live status of each component of an instance, in start order.
    pub async fn statuses(self: &Arc<Self>, id: &str) -> Result<Vec<(String, Status)>, CoreError> {
        let inst = self.loaded_or_load(id).await?;
        Ok(inst
            .components
            .iter()
            .map(|(k, c)| (k.clone(), c.status()))
            .collect())
    }

    /// Every component with a live process: `(instance id, kind, pid)`, for the metrics
    /// sampler.
    pub async fn tracked(&self) -> Vec<crate::metrics::Tracked> {
        let map = self.instances.lock().await;
        map.iter()
            .flat_map(|(id, inst)| {
                inst.components
                    .iter()
                    .filter_map(|(k, c)| c.status().pid.map(|p| (id.clone(), k.clone(), p)))
            })
            .collect()
    }

    /// Stops an instance (confirmed) and drops its actors, so a deleted or re-registered
    /// instance is loaded afresh.
    pub async fn forget(self: &Arc<Self>, id: &str) -> Result<(), CoreError> {
        let lock = self.lock(id).await;
        self.forget_locked(&lock).await
    }

    /// [`Supervisor::forget`] in a turn the caller holds: it deletes the records before
    /// it lets the turn go, so no start can load the instance again in between.
    pub async fn forget_locked(self: &Arc<Self>, lock: &InstanceLock) -> Result<(), CoreError> {
        let inst = self.instances.lock().await.remove(&lock.id);
        if let Some(inst) = inst {
            inst.new_epoch().await;
            for (_, c) in inst.components.iter().rev() {
                c.stop().await?;
            }
            inst.flush().await;
        }
        Ok(())
    }

    /// Stops every instance (daemon shutdown), all at once, each component with its
    /// profile's signal and grace, and returns once every exit is recorded. Desired states
    /// are left as they are, so the next boot starts again what was running. Nothing is
    /// started after this begins.
    pub async fn shutdown(self: &Arc<Self>) {
        self.closing.store(true, Ordering::Release);
        let ids: Vec<String> = self.instances.lock().await.keys().cloned().collect();
        let mut stops = tokio::task::JoinSet::new();
        for id in ids {
            let me = self.clone();
            stops.spawn_on(
                async move {
                    // In turn: a restart in flight finishes its start first, then is stopped.
                    let _lock = me.lock(&id).await;
                    let inst = me.instances.lock().await.get(&id).cloned();
                    if let Some(inst) = inst {
                        inst.new_epoch().await;
                        for (kind, c) in inst.components.iter().rev() {
                            if let Err(e) = c.stop().await {
                                tracing::warn!(instance = %id, component = %kind, error = %e, "could not stop at shutdown");
                            }
                        }
                        inst.flush().await;
                    }
                },
                &self.rt,
            );
        }
        while stops.join_next().await.is_some() {}
    }

    /// Boot reconciliation: no record is left claiming a live process that is not ours.
    /// Processes recorded by a previous daemon that are still alive (same pid *and* start
    /// time) are terminated gracefully; dead or reused pids are only cleared; instances
    /// whose desired state is `running` are started again in the background.
    pub async fn reconcile(self: &Arc<Self>) -> Result<ReconcileReport, CoreError> {
        let mut report = ReconcileReport::default();
        let comps_table = self.db.table::<comps::Entity>();
        for c in comps_table
            .find(
                &self.tenant,
                Query::new().filter(Filter::is_not_null(comps::Column::Pid)),
            )
            .await?
        {
            let pid = u32::try_from(c.pid.unwrap_or_default()).unwrap_or_default();
            let ours = pid > 0
                && procfs::start_time(pid).is_some()
                && procfs::start_time(pid) == c.pid_start_time;
            if ours {
                // Stopped as its kind wants (MaiBot: SIGINT, its graceful shutdown).
                let stop = profile_for(&c.kind, std::path::Path::new(&c.path))
                    .stop
                    .unwrap_or(self.cfg.stop);
                terminate_orphan(pid, stop).await;
                report.orphans_terminated.push(pid);
            } else if pid > 0 {
                report.stale_pids.push(pid);
            }
            let am = comps::ActiveModel {
                pid: Set(None),
                pid_start_time: Set(None),
                observed_state: Set("stopped".into()),
                ..Default::default()
            };
            comps_table.update(&self.tenant, c.id, am).await?;
        }
        // Members the records do not name (a grandchild whose parent died, a process that
        // left the session) are found by their marker; a reused pid carries none, so an
        // unrelated process is never hit. Before any autostart, so no second copy runs
        // beside one left over.
        for c in comps_table.find(&self.tenant, Query::new()).await? {
            let stop = profile_for(&c.kind, std::path::Path::new(&c.path))
                .stop
                .unwrap_or(self.cfg.stop);
            for pid in members::terminate_marked(&self.marker(&c.instance_id, &c.kind), stop).await
            {
                if !report.orphans_terminated.contains(&pid) {
                    report.orphans_terminated.push(pid);
                }
            }
        }
        let now = chrono::Utc::now();
        let open = runs::ActiveModel {
            stopped_at: Set(Some(now)),
            reason: Set(Some("daemon restarted".into())),
            ..Default::default()
        };
        self.db
            .table::<runs::Entity>()
            .update_where(&self.tenant, Filter::is_null(runs::Column::StoppedAt), open)
            .await?;
        let table = self.db.table::<insts::Entity>();
        for inst in table.find(&self.tenant, Query::new()).await? {
            if inst.observed_state != "stopped" {
                let am = insts::ActiveModel {
                    observed_state: Set("stopped".into()),
                    ..Default::default()
                };
                table.update(&self.tenant, inst.id.clone(), am).await?;
                report.states_corrected.push(inst.id.clone());
            }
            if inst.desired_state == "running" {
                report.autostarted.push(inst.id.clone());
                let me = self.clone();
                let id = inst.id.clone();
                self.rt.spawn(async move {
                    if let Err(e) = me.start(&id).await {
                        tracing::error!(instance = %id, error = %e, "autostart failed");
                    }
                });
            }
        }
        self.rows.bump();
        Ok(report)
    }
}

/// The interpreter for a component directory: its own virtual environment (`venv/` or
/// `.venv/`) when present, else `python3`, else `python` on PATH.
pub fn python_for(dir: &std::path::Path) -> String {
    for venv in ["venv", ".venv"] {
        let p = dir.join(venv).join("bin").join("python");
        if p.is_file() {
            return p.display().to_string();
        }
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
    };
    if on_path("python3") || !on_path("python") {
        "python3".into()
    } else {
        "python".into()
    }
}

/// argv of a known component kind, derived by the server (never from a client).
pub fn derived_argv(kind: &str, dir: &std::path::Path) -> Result<Vec<String>, CoreError> {
    let entry = match kind {
        "main" => "bot.py",
        "napcat-ada" => "main.py",
        other => {
            return Err(CoreError::Invalid(format!(
                "no start command is known for component kind {other:?}"
            )));
        }
    };
    Ok(vec![python_for(dir), entry.to_owned()])
}

/// Starts the first component now and the others in order behind it (see
/// [`Supervisor::start`]).
async fn start_in_order(
    inst: &Arc<Instance>,
    rt: &tokio::runtime::Handle,
) -> Result<(), CoreError> {
    let epoch = inst.new_epoch().await;
    let Some(((first_kind, first), rest)) = inst.components.split_first() else {
        return Ok(());
    };
    if let Err(e) = first.start().await {
        let reason = format!("not started: {first_kind} could not start");
        for (_, c) in rest {
            let _ = c.not_started(reason.clone()).await;
        }
        return Err(e.into());
    }
    if !rest.is_empty() {
        // The later ones read `starting` while they wait, so the instance does not look
        // up and running in between.
        for (_, c) in rest {
            c.queue().await?;
        }
        rt.spawn(start_rest(inst.clone(), epoch));
    }
    Ok(())
}

/// The background part of the start order: each component after the first once the one
/// before it is ready. Ends quietly when another power action moved the epoch.
async fn start_rest(inst: Arc<Instance>, epoch: u64) {
    for i in 1..inst.components.len() {
        let (prev_kind, prev) = &inst.components[i - 1];
        let outcome = until_ready(prev).await;
        let current = inst.epoch.lock().await;
        if *current != epoch {
            return;
        }
        if let Err(why) = outcome {
            let reason = format!("not started: {prev_kind} did not become ready ({why})");
            for (kind, c) in &inst.components[i..] {
                tracing::warn!(component = %kind, "{reason}");
                let _ = c.not_started(reason.clone()).await;
            }
            return;
        }
        // Under the epoch lock: a stop arriving now waits until this start is queued, and
        // then stops it.
        let (kind, next) = &inst.components[i];
        if let Err(e) = next.start().await {
            tracing::warn!(component = %kind, error = %e, "could not start");
        }
    }
}

/// Waits until `c` is `running`; its failing or stopping instead is the error (with the
/// reason). Starting, stopping and backoff are passed through: the component's own ready
/// timeout and restart policy decide how those end.
async fn until_ready(c: &Component) -> Result<(), String> {
    let mut rx = c.watch();
    let seen = rx
        .wait_for(|s| matches!(s.state, State::Running | State::Failed | State::Stopped))
        .await
        .map_err(|_| "its supervisor has stopped".to_owned())?;
    match seen.state {
        State::Running => Ok(()),
        State::Failed => Err(seen
            .failure
            .as_ref()
            .map(|f| format!("failed: {}", f.reason))
            .unwrap_or_else(|| "failed".into())),
        _ => Err(seen
            .last_exit
            .as_ref()
            .map(|e| format!("stopped: {}", e.describe()))
            .unwrap_or_else(|| "stopped".into())),
    }
}

async fn terminate_orphan(pid: u32, stop: StopPolicy) {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, stop.signal);
    let deadline = tokio::time::Instant::now() + stop.grace;
    while procfs::alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if procfs::alive(pid) {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// What an instance's recorder is told.
enum Rec {
    /// A component's new status.
    Status(String, Status),
    /// Answer once everything before this is written.
    Flush(oneshot::Sender<()>),
}

/// FNV-1a: a hash that stays the same across builds (the standard library's does not
/// promise that), for names that must survive a daemon upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the recorder writes and whom it tells.
struct Recorder {
    db: Db,
    tenant: TenantScope,
    rows: Arc<RowGeneration>,
    changes: broadcast::Sender<StateChange>,
}

/// One writer per instance: runs, statistics and observed state, in event order; then the
/// row generation moves and subscribers hear of it (so a client reacting to the event reads
/// the recorded state).
async fn record(rec: Recorder, id: String, primary: String, mut rx: mpsc::UnboundedReceiver<Rec>) {
    let mut last: HashMap<String, Status> = HashMap::new();
    while let Some(rec_ev) = rx.recv().await {
        let (kind, s) = match rec_ev {
            Rec::Status(kind, s) => (kind, s),
            Rec::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let prev = last.insert(kind.clone(), s.clone()).unwrap_or_default();
        let ev = Change {
            id: &id,
            kind: &kind,
            primary: kind == primary,
            prev: &prev,
            now: &s,
        };
        match persist(&rec.db, &rec.tenant, ev, &last).await {
            Ok(()) => {}
            // The instance was deleted while its components were still reporting (delete
            // stops them, and their final states arrive after the rows are gone): there is
            // nothing left to record, which is not a failure.
            Err(maim_db::DbError::NotFound { .. }) => {
                tracing::debug!(instance = %id, component = %kind, "instance rows gone; component state not recorded");
            }
            Err(e) => {
                tracing::error!(instance = %id, component = %kind, error = %e, "could not record component state");
            }
        }
        rec.rows.bump();
        // No subscriber is not an error.
        let _ = rec.changes.send(StateChange {
            instance: id.clone(),
            component: kind,
            status: s,
            // Components without an event yet are stopped, as `summary` counts them.
            instance_state: summary(last.values()),
        });
    }
}

struct Change<'a> {
    id: &'a str,
    kind: &'a str,
    primary: bool,
    prev: &'a Status,
    now: &'a Status,
}

async fn persist(
    db: &Db,
    tenant: &TenantScope,
    ch: Change<'_>,
    all: &HashMap<String, Status>,
) -> Result<(), maim_db::DbError> {
    let (id, kind, prev, s) = (ch.id, ch.kind, ch.prev, ch.now);
    let insts_t = db.table::<insts::Entity>();
    let runs_t = db.table::<runs::Entity>();
    let comps_t = db.table::<comps::Entity>();
    let inst = insts_t.get(tenant, id.to_owned()).await?;
    let mut am = <insts::ActiveModel as Default>::default();
    let started = s.start_count > prev.start_count;
    let exited = s.last_exit.is_some() && s.last_exit != prev.last_exit;
    if exited {
        let exit = s
            .last_exit
            .clone()
            .unwrap_or_else(|| unreachable!("checked above"));
        if ch.primary {
            let ran = s.total_runtime.saturating_sub(prev.total_runtime);
            am.total_runtime_ms = Set(inst.total_runtime_ms + ran.as_millis() as i64);
        }
        am.last_exit_code = Set(exit.code);
        am.last_exit_signal = Set(exit.signal);
        am.last_exit_at = Set(Some(exit.at));
        am.last_exit_reason = Set(Some(exit_reason(&exit)));
        if !exit.requested {
            am.crash_count = Set(inst.crash_count + 1);
        }
        let close = runs::ActiveModel {
            stopped_at: Set(Some(exit.at)),
            exit_code: Set(exit.code),
            exit_signal: Set(exit.signal),
            reason: Set(Some(exit_reason(&exit))),
            ..Default::default()
        };
        let open = Filter::eq(runs::Column::InstanceId, id.to_owned())
            .and(Filter::eq(runs::Column::Component, kind.to_owned()))
            .and(Filter::is_null(runs::Column::StoppedAt));
        runs_t.update_where(tenant, open, close).await?;
    }
    if started && ch.primary {
        am.start_count = Set(inst.start_count + 1);
        am.last_start_at = Set(s.started_at);
    }
    if started {
        let run = runs::ActiveModel {
            instance_id: Set(id.to_owned()),
            component: Set(kind.to_owned()),
            pid: Set(s.pid.map(i64::from)),
            started_at: Set(s.started_at.unwrap_or_else(chrono::Utc::now)),
            ..Default::default()
        };
        runs_t.insert(tenant, run).await?;
    }
    am.observed_state = Set(summary(all.values()).as_str().to_owned());
    insts_t.update(tenant, id.to_owned(), am).await?;
    let comp = comps::ActiveModel {
        observed_state: Set(s.state.as_str().to_owned()),
        pid: Set(s.pid.map(i64::from)),
        pid_start_time: Set(s.pid.and_then(procfs::start_time)),
        ..Default::default()
    };
    let this = Filter::eq(comps::Column::InstanceId, id.to_owned())
        .and(Filter::eq(comps::Column::Kind, kind.to_owned()));
    comps_t.update_where(tenant, this, comp).await?;
    Ok(())
}

/// The recorded reason of an exit: "stopped" for a stop, the program's own restart request
/// as such, else what happened.
fn exit_reason(exit: &super::ExitInfo) -> String {
    match (&exit.reason, exit.requested) {
        (Some(r), true) => r.clone(),
        (None, true) => "stopped".into(),
        (_, false) => exit.describe(),
    }
}
