//! The job runner: phases 2–5 in order over a validated plan, with honest progress, every
//! tool line in the job log, and cleanup of exactly what the job created on failure or
//! cancel.

use super::cancel::CancelToken;
use super::cleanup::{self, RemovalReport};
use super::config::DeployConfig;
use super::error::{DeployError, StepError, StepResult};
use super::process::{self, Cmd, Finished, RunError, Stream};
use super::recipe::{PortRole, Recipe};
use super::sink::{DeploySink, LogLevel, MonotonicProgress, Phase};
use super::validate::{ComponentKind, DeployPlan, PythonChoice};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// One component as the caller should register and start it. The argv is derived here,
/// never taken from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentPlan {
    /// `main` or `napcat-ada`.
    pub kind: ComponentKind,
    /// Working directory.
    pub path: PathBuf,
    /// The port it listens on (MaiBot: `PORT`; adapter: napcat-side).
    pub port: u16,
    /// Every port registered for it (the ones it listens on, and the ones its peers
    /// listen on for it).
    pub ports: Vec<PortAssignment>,
    /// The environment's interpreter.
    pub python: PathBuf,
    /// `[python, "bot.py"]` / `[python, "main.py"]`.
    pub argv: Vec<String>,
}

/// One port of an instance and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortAssignment {
    /// What it is for.
    pub role: PortRole,
    /// The number.
    pub port: u16,
    /// Whether this component listens on it.
    pub listens: bool,
}

/// What a successful deploy produced, for the caller to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployOutcome {
    /// MaiBot directory.
    pub install_path: PathBuf,
    /// MaiBot first, then the adapter if deployed.
    pub components: Vec<ComponentPlan>,
    /// MaiBot version (tag or branch).
    pub version: String,
    /// The adapter ref used (tag or branch), if deployed.
    pub adapter_version: Option<String>,
    /// Directories carrying this job's marker (pass to [`cleanup::cleanup`] to undo, or to
    /// [`cleanup::remove_owned`] when the instance is deleted).
    pub created_dirs: Vec<PathBuf>,
    /// The layout that was deployed.
    pub layout: super::recipe::Layout,
    /// The release family (`0.x`, `1.0-1.1`, `1.2`).
    pub family: &'static str,
    /// Where the plugin adapter was installed (1.x), if it was.
    pub plugin_adapter: Option<PathBuf>,
    /// Whether the EULA/privacy confirmation files were written.
    pub eula_confirmed: bool,
}

/// State of one run.
pub(crate) struct Runner<'a> {
    pub(crate) cfg: &'a DeployConfig,
    pub(crate) plan: DeployPlan,
    pub(crate) job_id: &'a str,
    pub(crate) progress: MonotonicProgress<'a>,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) phase: Phase,
    /// Directories this job wrote a marker into, in creation order.
    pub(crate) created: Vec<PathBuf>,
    /// The recipe once known (tags: from validation; branches: after checkout).
    pub(crate) recipe: Option<&'static Recipe>,
    pub(crate) python: PythonChoice,
    pub(crate) adapter_ref: Option<String>,
    /// Where the adapter was checked out (standalone folder or plugin folder).
    pub(crate) adapter_dir: Option<PathBuf>,
    /// MaiBot's own version once its tree is seen (`pyproject.toml`, else the tag).
    pub(crate) maibot_version: Option<String>,
    /// Component currently being worked on, for the failure status.
    pub(crate) current: Option<ComponentKind>,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        cfg: &'a DeployConfig,
        plan: DeployPlan,
        job_id: &'a str,
        sink: &'a dyn DeploySink,
        cancel: &'a CancelToken,
    ) -> Self {
        Self {
            cfg,
            recipe: plan.recipe,
            python: plan.python.clone(),
            plan,
            job_id,
            progress: MonotonicProgress::new(sink, 0),
            cancel,
            phase: Phase::Validate,
            created: Vec::new(),
            adapter_ref: None,
            adapter_dir: None,
            maibot_version: None,
            current: None,
        }
    }

    pub(crate) fn sink(&self) -> &'a dyn DeploySink {
        self.progress.sink()
    }

    pub(crate) fn log(&self, level: LogLevel, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        match level {
            LogLevel::Error => tracing::warn!(job = self.job_id, "{msg}"),
            _ => tracing::debug!(job = self.job_id, "{msg}"),
        }
        for line in msg.lines() {
            self.sink().log(level, line);
        }
    }

    pub(crate) fn enter(&mut self, phase: Phase, message: &str) {
        self.phase = phase;
        self.progress.set(phase, phase.span().0);
        self.log(
            LogLevel::Info,
            format!("phase {}/6 {}: {message}", phase.number(), phase.as_str()),
        );
    }

    /// Advances to `fraction` of the current phase.
    pub(crate) fn at(&self, fraction: f64) {
        self.progress.set(self.phase, self.phase.at(fraction));
    }

    pub(crate) fn component(&self, kind: ComponentKind, status: &str, progress: u8, msg: &str) {
        self.sink().component(kind.as_str(), status, progress, msg);
    }

    pub(crate) fn check_cancel(&self) -> StepResult<()> {
        if self.cancel.is_canceled() {
            Err(StepError::Canceled)
        } else {
            Ok(())
        }
    }

    /// Runs a tool, logging each output line with `prefix` and passing it to `on_line`.
    /// A non-zero exit is a failure carrying the tool's last lines.
    pub(crate) async fn tool(
        &self,
        what: &str,
        cmd: &Cmd,
        timeout: Duration,
        on_line: &mut (dyn FnMut(&str) -> bool + Send),
    ) -> StepResult<Finished> {
        let prefix = match self.current {
            Some(k) => format!("[{}] ", k.as_str()),
            None => String::new(),
        };
        self.log(LogLevel::Info, format!("{prefix}$ {}", cmd.display()));
        let sink = self.sink();
        let mut cb = |_s: Stream, line: &str| {
            // The hook decides whether the line is worth a log entry (git progress is
            // throttled; everything else is logged).
            if on_line(line) {
                sink.log(LogLevel::Info, &format!("{prefix}{line}"));
            }
        };
        // Marked, so that a launcher restarted after a crash finds what this job left.
        let mut cmd = cmd.clone().env(super::leftovers::JOB_ENV, self.job_id);
        for (k, v) in &self.cfg.tool_env {
            cmd = cmd.env(k, v);
        }
        match process::run(&cmd, timeout, Some(self.cancel), &mut cb).await {
            Ok(fin) if fin.status.success() => Ok(fin),
            Ok(fin) => Err(StepError::Failed(format!(
                "{what} failed ({})",
                fin.failure_summary()
            ))),
            Err(RunError::Canceled) => Err(StepError::Canceled),
            Err(e) => Err(StepError::Failed(format!("{what}: {e}"))),
        }
    }

    /// Runs blocking filesystem work off the runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> StepResult<T> {
        match tokio::task::spawn_blocking(f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StepError::Failed(e)),
            Err(e) => Err(StepError::Failed(format!("worker thread failed: {e}"))),
        }
    }

    /// Phases 2–5.
    async fn steps(&mut self) -> StepResult<DeployOutcome> {
        let with_adapter = self.plan.adapter.is_some();
        self.component(ComponentKind::Main, "pending", 0, "waiting");
        if with_adapter {
            self.component(ComponentKind::NapcatAdapter, "pending", 0, "waiting");
        }

        self.enter(Phase::Fetch, "fetching sources");
        self.fetch_all().await?;
        self.check_cancel()?;

        self.enter(Phase::Environment, "creating Python environments");
        let main_py = self.environment(ComponentKind::Main).await?;
        let standalone = self
            .recipe
            .is_some_and(|r| r.adapter == super::recipe::AdapterStyle::Standalone);
        let adapter_py = if with_adapter && standalone {
            Some(self.environment(ComponentKind::NapcatAdapter).await?)
        } else {
            None
        };
        self.check_cancel()?;

        self.enter(Phase::Configure, "writing config files");
        self.configure().await?;
        self.check_cancel()?;

        self.enter(Phase::Eula, "EULA and privacy policy");
        let eula_confirmed = self.eula().await?;
        self.at(1.0);

        let install = self.plan.install_path.clone();
        let recipe = self
            .recipe
            .ok_or_else(|| StepError::Failed("no recipe was selected".to_string()))?;
        let assigned = self.assigned_ports(recipe);
        let for_component = |c: &str| -> Vec<PortAssignment> {
            assigned
                .iter()
                .filter(|(spec, _)| spec.component == c || (c == "main" && !spec.listens))
                .map(|(spec, port)| PortAssignment {
                    role: spec.role,
                    port: *port,
                    listens: spec.listens,
                })
                .collect()
        };
        let mut components = vec![ComponentPlan {
            kind: ComponentKind::Main,
            path: install.clone(),
            port: self.plan.port,
            ports: for_component("main"),
            argv: vec![main_py.display().to_string(), "bot.py".to_string()],
            python: main_py,
        }];
        self.component(ComponentKind::Main, "completed", 100, "deployed");
        if let (Some(a), Some(py)) = (&self.plan.adapter, adapter_py) {
            components.push(ComponentPlan {
                kind: ComponentKind::NapcatAdapter,
                path: a.path.clone(),
                port: a.port,
                ports: for_component("napcat-ada"),
                argv: vec![py.display().to_string(), "main.py".to_string()],
                python: py,
            });
            self.component(ComponentKind::NapcatAdapter, "completed", 100, "deployed");
        } else if with_adapter {
            self.component(
                ComponentKind::NapcatAdapter,
                "completed",
                100,
                "installed as a MaiBot plugin",
            );
        }
        for (spec, port) in &assigned {
            self.log(
                LogLevel::Info,
                format!(
                    "port {port}: {}{}",
                    spec.role.as_str(),
                    if spec.listens {
                        ""
                    } else {
                        " (NapCat listens; reserved for this instance)"
                    }
                ),
            );
        }
        let layout = match self.recipe {
            Some(r) => r.layout,
            None => return Err(StepError::Failed("no recipe was selected".to_string())),
        };
        self.log(
            LogLevel::Success,
            format!(
                "deploy of MaiBot {} into {} finished",
                self.plan.version.name,
                install.display()
            ),
        );
        Ok(DeployOutcome {
            install_path: install,
            components,
            version: self.plan.version.name.clone(),
            adapter_version: self.adapter_ref.clone(),
            created_dirs: self.created.clone(),
            layout,
            family: recipe.family,
            plugin_adapter: if standalone {
                None
            } else {
                self.adapter_dir.clone()
            },
            eula_confirmed,
        })
    }

    /// Every port spec of the recipe this deploy uses, with the number assigned to it.
    pub(crate) fn assigned_ports(&self, recipe: &Recipe) -> Vec<(super::recipe::PortSpec, u16)> {
        let p = self.plan.ports;
        recipe
            .ports
            .iter()
            .filter_map(|spec| {
                let n = match spec.role {
                    PortRole::Main => Some(p.main),
                    PortRole::Webui => Some(p.webui),
                    PortRole::AdapterNapcat | PortRole::NapcatWs => p.napcat,
                }?;
                Some((*spec, n))
            })
            .collect()
    }

    /// Runs the job; on failure or cancel removes what it created and says what stayed.
    pub(crate) async fn run(mut self) -> Result<DeployOutcome, DeployError> {
        let err = match self.steps().await {
            Ok(o) => return Ok(o),
            Err(e) => e,
        };
        let canceled = matches!(err, StepError::Canceled);
        let status = if canceled { "canceled" } else { "failed" };
        match &err {
            StepError::Canceled => self.log(
                LogLevel::Warning,
                format!("canceled during {}; cleaning up", self.phase),
            ),
            StepError::Failed(m) => self.log(
                LogLevel::Error,
                format!("{} failed: {m}; cleaning up", self.phase),
            ),
        }
        let mut kinds = vec![ComponentKind::Main];
        if self.plan.adapter.is_some() {
            kinds.push(ComponentKind::NapcatAdapter);
        }
        for k in kinds {
            let msg = if Some(k) == self.current {
                status
            } else {
                "not completed"
            };
            self.component(k, status, 0, msg);
        }
        let report = cleanup::cleanup(&self.created, self.job_id).await;
        self.report_cleanup(&report);
        Err(match err {
            StepError::Canceled => DeployError::Canceled {
                phase: self.phase,
                cleanup: report,
            },
            StepError::Failed(message) => DeployError::Failed {
                phase: self.phase,
                message,
                cleanup: report,
            },
        })
    }

    fn report_cleanup(&self, r: &RemovalReport) {
        for p in &r.removed {
            self.log(LogLevel::Info, format!("removed {}", p.display()));
        }
        for (p, why) in &r.kept {
            self.log(LogLevel::Warning, format!("kept {}: {why}", p.display()));
        }
        if r.removed.is_empty() && r.kept.is_empty() {
            self.log(LogLevel::Info, "nothing to clean up");
        }
    }
}
