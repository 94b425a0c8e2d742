//! Deploy jobs: persisted records (status, phase, monotonic progress, the real error) with an
//! append-only log of numbered lines, streamed live and never truncated while the job is
//! kept. A job that was running when the daemon died is marked failed at the next start and
//! what it created is removed (by its ownership markers only).

use crate::catalog::{Catalog, NewComponent, NewInstance};
use crate::deploy::{
    CancelToken, DeployError, DeployOutcome, DeployRequest, DeploySink, Deployer, LogLevel, Phase,
    ValidationContext,
};
use crate::error::CoreError;
use chrono::{DateTime, Utc};
use maim_db::entity::launcher::{deploy_job_logs as logs_t, deploy_jobs as jobs_t};
use maim_db::prelude::*;
use maim_db::{Db, Filter, Query, TenantScope};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// Job statuses as stored and served.
pub mod status {
    /// Waiting for a free slot.
    pub const QUEUED: &str = "queued";
    /// Working.
    pub const RUNNING: &str = "running";
    /// Done; the instance is registered.
    pub const SUCCEEDED: &str = "succeeded";
    /// Stopped by an error (kept with its phase and message).
    pub const FAILED: &str = "failed";
    /// Stopped by the user.
    pub const CANCELED: &str = "canceled";
}

/// One log line of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobLogLine {
    /// Position in the job's log, from 1.
    pub seq: i64,
    /// When it was written.
    pub ts: DateTime<Utc>,
    /// `info`, `warning`, `error` or `success`.
    pub level: String,
    /// The text.
    pub line: String,
}

/// Per-component progress (in memory while the job runs).
#[derive(Debug, Clone, Serialize)]
pub struct ComponentProgress {
    /// Component kind.
    pub name: String,
    /// pending, fetching, installing, configuring, completed, failed, canceled.
    pub status: String,
    /// 0–100.
    pub progress: u8,
    /// Latest message.
    pub message: String,
}

/// What live subscribers receive.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobEvent {
    /// A new log line.
    Log {
        /// Job id.
        job_id: String,
        /// The line.
        #[serde(flatten)]
        line: JobLogLine,
    },
    /// Phase/progress moved.
    Progress {
        /// Job id.
        job_id: String,
        /// Phase name.
        phase: String,
        /// 0–100.
        progress: u8,
    },
    /// The job reached a final status.
    Finished {
        /// Job id.
        job_id: String,
        /// Final status.
        status: String,
        /// The registered instance, on success.
        instance_id: Option<String>,
        /// Why it failed or was canceled (the phase and the tool's own message).
        error: Option<String>,
    },
}

/// A job as the API shows it.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The stored row.
    pub row: jobs_t::Model,
    /// Per-component progress (empty after a daemon restart).
    pub components: Vec<ComponentProgress>,
}

enum Write {
    Log(LogLevel, String),
    Progress(Phase, u8),
}

struct Live {
    cancel: CancelToken,
    install_path: PathBuf,
    components: Mutex<BTreeMap<String, ComponentProgress>>,
}

struct Inner {
    db: Db,
    tenant: TenantScope,
    catalog: Catalog,
    deployer: Deployer,
    forbidden_roots: Vec<PathBuf>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Component progress of jobs finished in this run (pollers read it after the end).
    finished: Mutex<HashMap<String, BTreeMap<String, ComponentProgress>>>,
    slots: Arc<Semaphore>,
    events: broadcast::Sender<JobEvent>,
}

/// The deploy job manager.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

struct Sink {
    tx: mpsc::UnboundedSender<Write>,
    live: Arc<Live>,
}

impl DeploySink for Sink {
    fn phase(&self, phase: Phase, progress: u8) {
        let _ = self.tx.send(Write::Progress(phase, progress));
    }
    fn log(&self, level: LogLevel, line: &str) {
        let _ = self.tx.send(Write::Log(level, line.to_owned()));
    }
    fn component(&self, name: &str, status: &str, progress: u8, message: &str) {
        if let Ok(mut m) = self.live.components.lock() {
            m.insert(
                name.to_owned(),
                ComponentProgress {
                    name: name.to_owned(),
                    status: status.to_owned(),
                    progress,
                    message: message.to_owned(),
                },
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-update of plain data.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Jobs {
    /// A manager running at most `parallel` jobs at once. `forbidden_roots` (the launcher's
    /// data directory) are never deploy targets.
    pub fn new(
        db: Db,
        tenant: TenantScope,
        catalog: Catalog,
        deployer: Deployer,
        forbidden_roots: Vec<PathBuf>,
        parallel: usize,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: Arc::new(Inner {
                db,
                tenant,
                catalog,
                deployer,
                forbidden_roots,
                live: Mutex::new(HashMap::new()),
                finished: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(parallel.max(1))),
                events,
            }),
        }
    }

    /// The deployer (versions, inspect).
    pub fn deployer(&self) -> &Deployer {
        &self.inner.deployer
    }

    /// Live job events.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// Boot recovery: jobs left `queued`/`running` by a previous daemon are marked failed
    /// and what they created is removed (only directories carrying their marker).
    pub async fn recover(&self) -> Result<Vec<String>, CoreError> {
        let t = self.inner.db.table::<jobs_t::Entity>();
        let open = Filter::is_in(jobs_t::Column::Status, [status::QUEUED, status::RUNNING]);
        let mut out = Vec::new();
        for j in t
            .find(&self.inner.tenant, Query::new().filter(open))
            .await?
        {
            let dirs: Vec<PathBuf> =
                serde_json::from_value(j.created_paths.clone()).unwrap_or_default();
            // Its tools may outlive the launcher that ran them; stop them before removing
            // the folders they write into.
            let killed = crate::deploy::kill_leftovers(&j.id).await;
            let report = crate::deploy::cleanup(&dirs, &j.id).await;
            let am = jobs_t::ActiveModel {
                status: Set(status::FAILED.into()),
                error: Set(Some(format!(
                    "the launcher stopped while this job was {} (phase {}); stopped {} leftover \
                     process(es), removed {} created folder(s)",
                    j.status,
                    j.phase,
                    killed,
                    report.removed.len()
                ))),
                finished_at: Set(Some(Utc::now())),
                ..Default::default()
            };
            t.update(&self.inner.tenant, j.id.clone(), am).await?;
            out.push(j.id);
        }
        Ok(out)
    }

    /// Validates a deploy request and starts its job; returns the job id. Invalid requests
    /// are refused here, before any job exists.
    pub async fn start_deploy(&self, req: DeployRequest) -> Result<String, CoreError> {
        self.start_deploy_ids(req).await.map(|(job, _)| job)
    }

    /// [`Jobs::start_deploy`], returning the job id and the id the instance will have once
    /// the job succeeds (the legacy frontend follows the instance id, as the original
    /// backend made them one).
    pub async fn start_deploy_ids(
        &self,
        req: DeployRequest,
    ) -> Result<(String, String), CoreError> {
        let inner = &self.inner;
        crate::catalog::validate_name(&req.instance_name)?;
        if inner.catalog.name_taken(&req.instance_name).await? {
            return Err(CoreError::Conflict(format!(
                "an instance named {:?} already exists",
                req.instance_name
            )));
        }
        let ports = inner
            .catalog
            .ports_in_use(None)
            .await?
            .into_iter()
            .collect();
        let ctx = ValidationContext::from_env(
            inner.forbidden_roots.clone(),
            ports,
            inner.catalog.path_policy().clone(),
        );
        let plan = inner
            .deployer
            .validate(&req, &ctx)
            .await
            .map_err(|e| CoreError::Rejected {
                code: e.code(),
                detail: e.to_string(),
            })?;
        {
            let live = lock(&inner.live);
            if live.values().any(|l| l.install_path == plan.install_path) {
                return Err(CoreError::Conflict(format!(
                    "a deploy to {} is already running",
                    plan.install_path.display()
                )));
            }
        }
        let id = crate::catalog::new_id();
        let instance_id = crate::catalog::new_id();
        let mut created: Vec<PathBuf> = vec![plan.install_path.clone()];
        if let Some(a) = &plan.adapter {
            created.push(a.path.clone());
        }
        let row = jobs_t::ActiveModel {
            id: Set(id.clone()),
            kind: Set("deploy".into()),
            status: Set(status::QUEUED.into()),
            phase: Set(Phase::Validate.as_str().into()),
            progress: Set(0.0),
            request: Set(serde_json::json!({
                "instance_name": req.instance_name,
                "install_path": plan.install_path,
                "version": req.version,
                "port": req.port,
                "components": req.components.iter().map(|c| serde_json::json!({
                    "kind": c.kind, "path": c.path, "port": c.port,
                })).collect::<Vec<_>>(),
                "eula_accepted": req.eula_accepted,
            })),
            created_paths: Set(serde_json::json!(created)),
            // The id the instance will be registered under (it exists only once the job
            // succeeds).
            instance_id: Set(Some(instance_id.clone())),
            ..Default::default()
        };
        inner
            .db
            .table::<jobs_t::Entity>()
            .insert(&inner.tenant, row)
            .await?;
        let live = Arc::new(Live {
            cancel: CancelToken::new(),
            install_path: plan.install_path.clone(),
            components: Mutex::new(BTreeMap::new()),
        });
        lock(&inner.live).insert(id.clone(), live.clone());
        let me = self.clone();
        let job_id = id.clone();
        let name = req.instance_name.clone();
        let iid = instance_id.clone();
        tokio::spawn(async move {
            me.run(job_id, name, iid, plan, live).await;
        });
        Ok((id, instance_id))
    }

    /// The newest job whose instance has (or will have) the id `instance_id`.
    pub async fn by_instance(&self, instance_id: &str) -> Result<JobView, CoreError> {
        let rows = self
            .inner
            .db
            .table::<jobs_t::Entity>()
            .find(
                &self.inner.tenant,
                Query::new()
                    .filter(Filter::eq(
                        jobs_t::Column::InstanceId,
                        instance_id.to_owned(),
                    ))
                    .desc(jobs_t::Column::CreatedAt)
                    .limit(1),
            )
            .await?;
        match rows.into_iter().next() {
            Some(r) => self.get(&r.id).await,
            None => Err(CoreError::NotFound(format!("job {instance_id}"))),
        }
    }

    async fn run(
        self,
        id: String,
        name: String,
        instance_id: String,
        plan: crate::deploy::DeployPlan,
        live: Arc<Live>,
    ) {
        let inner = self.inner.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(
            inner.db.clone(),
            inner.tenant.clone(),
            id.clone(),
            rx,
            inner.events.clone(),
        ));
        let sink = Sink {
            tx: tx.clone(),
            live: live.clone(),
        };
        let permit = tokio::select! {
            p = inner.slots.clone().acquire_owned() => p.ok(),
            _ = live.cancel.canceled() => None,
        };
        let result = if permit.is_none() {
            Err(DeployError::Canceled {
                phase: Phase::Validate,
                cleanup: Default::default(),
            })
        } else {
            self.set_status(&id, status::RUNNING).await;
            sink.log(
                LogLevel::Info,
                &format!("deploying {name}: MaiBot {}", plan.version.name),
            );
            inner.deployer.run(plan, &id, &sink, &live.cancel).await
        };
        let (final_status, error, registered) = match result {
            Ok(outcome) => match self.register(&name, &instance_id, &outcome, &sink).await {
                Ok(iid) => {
                    sink.phase(Phase::Register, 100);
                    sink.log(
                        LogLevel::Success,
                        &format!("instance {name} is ready ({iid})"),
                    );
                    (status::SUCCEEDED, None, Some(iid))
                }
                Err(e) => {
                    sink.log(LogLevel::Error, &format!("registration failed: {e}"));
                    let report = crate::deploy::cleanup(&outcome.created_dirs, &id).await;
                    sink.log(
                        LogLevel::Info,
                        &format!("removed {} created folder(s)", report.removed.len()),
                    );
                    (status::FAILED, Some(format!("register failed: {e}")), None)
                }
            },
            Err(DeployError::Canceled { phase, cleanup }) => {
                sink.log(
                    LogLevel::Warning,
                    &format!(
                        "canceled during {phase}; removed {} created folder(s)",
                        cleanup.removed.len()
                    ),
                );
                (
                    status::CANCELED,
                    Some(format!("canceled during {phase}")),
                    None,
                )
            }
            Err(e) => {
                sink.log(LogLevel::Error, &e.to_string());
                (status::FAILED, Some(e.to_string()), None)
            }
        };
        drop(permit);
        if let Ok(mut m) = live.components.lock() {
            for c in m.values_mut() {
                if c.status != "completed" {
                    c.status = if final_status == status::SUCCEEDED {
                        "completed".into()
                    } else {
                        final_status.to_owned()
                    };
                }
            }
        }
        drop(sink);
        drop(tx);
        let _ = writer.await;
        let am = jobs_t::ActiveModel {
            status: Set(final_status.to_owned()),
            error: Set(error.clone()),
            // `instance_id` keeps the announced id even on failure: the legacy wizard polls
            // install-status by it and must see the reason.
            finished_at: Set(Some(Utc::now())),
            ..Default::default()
        };
        if let Err(e) = inner
            .db
            .table::<jobs_t::Entity>()
            .update(&inner.tenant, id.clone(), am)
            .await
        {
            tracing::error!(job = %id, error = %e, "could not record the job's end");
        }
        let _ = inner.events.send(JobEvent::Finished {
            job_id: id.clone(),
            status: final_status.to_owned(),
            instance_id: registered,
            error,
        });
        // Keep the per-component view for pollers; only the cancel handle goes away.
        lock(&inner.live).remove(&id);
        lock(&inner.finished).insert(
            id,
            live.components
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
        );
    }

    async fn register(
        &self,
        name: &str,
        instance_id: &str,
        o: &DeployOutcome,
        sink: &Sink,
    ) -> Result<String, CoreError> {
        sink.phase(Phase::Register, 97);
        let new = NewInstance {
            name: name.to_owned(),
            version: o.version.clone(),
            install_path: o.install_path.clone(),
            components: o
                .components
                .iter()
                .map(|c| NewComponent {
                    kind: c.kind.as_str().to_owned(),
                    path: c.path.clone(),
                    port: Some(c.port),
                    argv: c.argv.clone(),
                    ports: c
                        .ports
                        .iter()
                        .map(|p| crate::catalog::ComponentPort {
                            role: p.role.as_str().to_owned(),
                            port: p.port,
                            listens: p.listens,
                        })
                        .collect(),
                })
                .collect(),
            owned: true,
        };
        self.inner.catalog.check_new(&new).await?;
        self.inner
            .catalog
            .register_with_id(instance_id.to_owned(), &new)
            .await
    }

    async fn set_status(&self, id: &str, s: &str) {
        let am = jobs_t::ActiveModel {
            status: Set(s.to_owned()),
            started_at: Set(Some(Utc::now())),
            ..Default::default()
        };
        if let Err(e) = self
            .inner
            .db
            .table::<jobs_t::Entity>()
            .update(&self.inner.tenant, id.to_owned(), am)
            .await
        {
            tracing::error!(job = %id, error = %e, "could not record the job's status");
        }
    }

    /// Asks a queued or running job to stop (its step's process group is killed and what
    /// it created is removed). Finished jobs are a conflict.
    pub async fn cancel(&self, id: &str) -> Result<(), CoreError> {
        let live = lock(&self.inner.live).get(id).cloned();
        match live {
            Some(l) => {
                l.cancel.cancel();
                Ok(())
            }
            None => {
                let j = self.get(id).await?;
                Err(CoreError::Conflict(format!(
                    "job {id} is already {}",
                    j.row.status
                )))
            }
        }
    }

    /// One job.
    pub async fn get(&self, id: &str) -> Result<JobView, CoreError> {
        let row = match self
            .inner
            .db
            .table::<jobs_t::Entity>()
            .get(&self.inner.tenant, id.to_owned())
            .await
        {
            Ok(r) => r,
            Err(maim_db::DbError::NotFound { .. }) => {
                return Err(CoreError::NotFound(format!("job {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let components = lock(&self.inner.live)
            .get(id)
            .map(|l| lock(&l.components).values().cloned().collect())
            .or_else(|| {
                lock(&self.inner.finished)
                    .get(id)
                    .map(|m| m.values().cloned().collect())
            })
            .unwrap_or_default();
        Ok(JobView { row, components })
    }

    /// Jobs, newest first.
    pub async fn list(&self, limit: u64) -> Result<Vec<jobs_t::Model>, CoreError> {
        Ok(self
            .inner
            .db
            .table::<jobs_t::Entity>()
            .find(
                &self.inner.tenant,
                Query::new().desc(jobs_t::Column::CreatedAt).limit(limit),
            )
            .await?)
    }

    /// Log lines with `seq > since`, in order.
    pub async fn logs(&self, id: &str, since: i64) -> Result<Vec<JobLogLine>, CoreError> {
        let rows = self
            .inner
            .db
            .table::<logs_t::Entity>()
            .find(
                &self.inner.tenant,
                Query::new()
                    .filter(
                        Filter::eq(logs_t::Column::JobId, id.to_owned())
                            .and(Filter::gt(logs_t::Column::Seq, since)),
                    )
                    .asc(logs_t::Column::Seq),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobLogLine {
                seq: r.seq,
                ts: r.ts,
                level: r.stream,
                line: r.line,
            })
            .collect())
    }
}

/// The one writer of a job's log and progress: lines keep their order and numbering, and
/// bursts (pip output) go to the database in batches.
async fn write_loop(
    db: Db,
    tenant: TenantScope,
    id: String,
    mut rx: mpsc::UnboundedReceiver<Write>,
    events: broadcast::Sender<JobEvent>,
) {
    let mut seq: i64 = 0;
    let mut last_progress: Option<(Phase, u8)> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 500 {
                break;
            }
        }
        let mut rows = Vec::new();
        let mut progress = None;
        for w in batch {
            match w {
                Write::Log(level, line) => {
                    seq += 1;
                    let l = JobLogLine {
                        seq,
                        ts: Utc::now(),
                        level: level.as_str().to_owned(),
                        line,
                    };
                    rows.push(logs_t::ActiveModel {
                        job_id: Set(id.clone()),
                        seq: Set(l.seq),
                        ts: Set(l.ts),
                        stream: Set(l.level.clone()),
                        line: Set(l.line.clone()),
                        ..Default::default()
                    });
                    let _ = events.send(JobEvent::Log {
                        job_id: id.clone(),
                        line: l,
                    });
                }
                Write::Progress(phase, p) => {
                    // Never backwards, whatever the caller sends.
                    let p = last_progress.map_or(p, |(_, lp)| p.max(lp));
                    // Only a change is news: repeats neither hit the database nor the bus.
                    if last_progress == Some((phase, p)) {
                        continue;
                    }
                    progress = Some((phase, p));
                    last_progress = Some((phase, p));
                    let _ = events.send(JobEvent::Progress {
                        job_id: id.clone(),
                        phase: phase.as_str().to_owned(),
                        progress: p,
                    });
                }
            }
        }
        if !rows.is_empty()
            && let Err(e) = db
                .table::<logs_t::Entity>()
                .insert_many(&tenant, rows)
                .await
        {
            tracing::error!(job = %id, error = %e, "could not store job log lines");
        }
        if let Some((phase, p)) = progress {
            let am = jobs_t::ActiveModel {
                phase: Set(phase.as_str().to_owned()),
                progress: Set(f64::from(p)),
                ..Default::default()
            };
            if let Err(e) = db
                .table::<jobs_t::Entity>()
                .update(&tenant, id.clone(), am)
                .await
            {
                tracing::error!(job = %id, error = %e, "could not store job progress");
            }
        }
    }
}
