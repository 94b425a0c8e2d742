//! The MaiBot deploy engine: version listing, request validation, and the deploy job
//! (fetch → environment → configure → EULA), reporting through a [`DeploySink`] and
//! returning a [`DeployOutcome`] for the caller to register.
//!
//! Flow for a caller (the job layer):
//! 1. [`Deployer::validate`] — synchronous refusal with a stable code, before a job exists.
//!    Name uniqueness is the caller's check (it owns the database).
//! 2. Create the job, then [`Deployer::run`] with its id, a sink and a [`CancelToken`].
//!    Cancel by tripping the token (not by aborting the task, which would skip cleanup —
//!    though running tools are still killed with their process group).
//! 3. On success, register [`DeployOutcome::components`] (argv included) and report
//!    [`Phase::Register`] progress 96–100 yourself.
//!
//! Safety rules kept here: every directory the job creates is marked
//! ([`cleanup::MARKER_FILE`]) before anything is put in it, and only marked directories are
//! ever removed; pre-existing directories are only used when empty; each external command
//! runs in its own process group and is killed as a group on cancel/timeout.

pub mod adapter;
pub mod cancel;
pub mod cleanup;
pub mod config;
pub mod configure;
mod env;
pub mod error;
pub mod eula;
mod fetch;
pub mod inspect;
mod leftovers;
mod md5;
mod process;
pub mod python;
pub mod reach;
pub mod recipe;
mod runner;
pub mod sink;
pub mod validate;
pub mod versions;

pub use cancel::CancelToken;
pub use cleanup::{
    MARKER_FILE, Marker, MarkerRole, RemovalReport, cleanup, read_marker, remove_owned,
};
pub use config::{DeployConfig, Source, SourcesConfig, Timeouts, UseUv};
pub use env::{VENV_DIR, venv_python};
pub use error::{DeployError, ValidationError};
pub use inspect::{ConfigFiles, Inspection, InstallKind, inspect};
pub use leftovers::kill_leftovers;
pub use recipe::{AdapterStyle, Layout, PortRole, Recipe};
pub use runner::{ComponentPlan, DeployOutcome, PortAssignment};
pub use sink::{DeploySink, LogLevel, MonotonicProgress, Phase};
pub use validate::{
    AdapterPlan, ComponentKind, ComponentRequest, DeployPlan, DeployRequest, Installer,
    PlannedPorts, PythonChoice, PythonInfo, ValidationContext,
};
pub use versions::{RefKind, VersionEntry, VersionList};

use versions::VersionCache;

/// The deploy engine: configuration plus the version and adapter caches. Share one per
/// process.
#[derive(Debug)]
pub struct Deployer {
    config: DeployConfig,
    versions: VersionCache,
    adapters: tokio::sync::Mutex<Option<(std::time::Instant, adapter::Catalog)>>,
}

/// One MaiBot version as the modern versions route shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionDetail {
    /// The version entry (name, kind, commit, prerelease).
    #[serde(flatten)]
    pub entry: VersionEntry,
    /// Release family, when known before checkout (tags); branches are detected after.
    pub family: Option<&'static str>,
    /// The Python the family needs (`>=3.12`).
    pub requires_python: Option<String>,
    /// `ready` (an interpreter on this host satisfies it), `after_provisioning` (uv can
    /// install one during the deploy) or `unavailable`.
    pub python: &'static str,
    /// The interpreter a deploy would use now.
    pub interpreter: Option<PythonInfo>,
    /// The adapter a deploy would pair today (null: unknown for branches, or the adapter
    /// repository could not be read).
    pub adapter: Option<adapter::Pairing>,
    /// The newest stable release (what `latest` means).
    pub latest: bool,
}

impl Deployer {
    /// An engine with `config`.
    pub fn new(config: DeployConfig) -> Self {
        let versions = VersionCache::new(config.versions_cache_ttl());
        Self {
            config,
            versions,
            adapters: tokio::sync::Mutex::new(None),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DeployConfig {
        &self.config
    }

    /// MaiBot's deployable versions: cached for `versions_cache_ttl`; when a refresh fails
    /// the last good list is returned with `stale: true` and the error. `Err`
    /// ([`ValidationError::VersionsUnavailable`]) only when nothing was ever fetched.
    pub async fn versions(&self) -> Result<VersionList, ValidationError> {
        self.versions_inner(false).await
    }

    /// Like [`versions`](Self::versions) but always asks the remote first.
    pub async fn refresh_versions(&self) -> Result<VersionList, ValidationError> {
        self.versions_inner(true).await
    }

    async fn versions_inner(&self, force: bool) -> Result<VersionList, ValidationError> {
        self.versions
            .get(
                force,
                &self.config.git,
                &self.config.sources.maibot,
                self.config.timeouts.ls_remote(),
            )
            .await
            .map_err(ValidationError::VersionsUnavailable)
    }

    /// The adapter catalog (cached for `versions_cache_ttl`), when a cache directory is
    /// configured and the adapter repository could be read at least once.
    pub async fn adapter_catalog(&self) -> Option<adapter::Catalog> {
        let cache = self.config.cache_dir.as_ref()?.join("adapter.git");
        let mut slot = self.adapters.lock().await;
        if let Some((at, c)) = slot.as_ref()
            && at.elapsed() < self.config.versions_cache_ttl()
        {
            return Some(c.clone());
        }
        match adapter::load_catalog(
            &self.config.git,
            &self.config.sources.adapter,
            &cache,
            self.config
                .timeouts
                .clone_attempt()
                .min(std::time::Duration::from_secs(120)),
        )
        .await
        {
            Ok(c) => {
                *slot = Some((std::time::Instant::now(), c.clone()));
                Some(c)
            }
            Err(e) => {
                tracing::warn!(error = %e, "adapter catalog unavailable");
                slot.as_ref().map(|(_, c)| c.clone())
            }
        }
    }

    /// Every version with its family, Python requirement, whether this host can run it
    /// (now or after provisioning) and the adapter it pairs with.
    pub async fn version_details(
        &self,
    ) -> Result<(VersionList, Vec<VersionDetail>), ValidationError> {
        let list = self.versions().await?;
        let catalog = self.adapter_catalog().await;
        let uv = validate::choose_installer(&self.config)
            .await
            .is_ok_and(|i| matches!(i, Installer::Uv(_)));
        // One discovery for the whole list; each family's floor is then a pure choice.
        let roots = self
            .config
            .python_search
            .clone()
            .unwrap_or_else(python::SearchRoots::from_env);
        let found = python::discover(self.config.python.as_deref(), &roots).await;
        let latest = list
            .versions
            .iter()
            .find(|v| {
                v.kind == RefKind::Tag && !v.prerelease && recipe::recipe_for_tag(&v.name).is_some()
            })
            .map(|v| v.name.clone());
        let mut out = Vec::new();
        for v in &list.versions {
            let recipe = match v.kind {
                RefKind::Tag => recipe::recipe_for_tag(&v.name),
                RefKind::Branch => None,
            };
            let min = recipe.map(|r| r.min_python);
            let interpreter = min.and_then(|m| {
                python::choose(&found, &python::RequiresPython::at_least(m)).map(|i| PythonInfo {
                    path: i.path.clone(),
                    version: i.version,
                })
            });
            let python = match (&interpreter, min) {
                (Some(_), _) => "ready",
                (None, Some(_)) if uv && self.config.provision_python => "after_provisioning",
                (None, Some(_)) => "unavailable",
                (None, None) => "unknown",
            };
            let adapter = match (recipe, &catalog) {
                (Some(r), Some(c)) => Some(c.pair(versions::parse_version(&v.name).as_ref(), r)),
                _ => None,
            };
            out.push(VersionDetail {
                entry: v.clone(),
                family: recipe.map(|r| r.family),
                requires_python: min.map(|(a, b)| format!(">={a}.{b}")),
                python,
                interpreter,
                adapter,
                latest: latest.as_deref() == Some(v.name.as_str()),
            });
        }
        Ok((list, out))
    }

    /// Phase 1: checks the request against the host and upstream and resolves it into a
    /// plan. Order: name, host, paths, ports, components (no I/O beyond stat/bind), then
    /// git, the version list, the recipe, Python and uv.
    pub async fn validate(
        &self,
        req: &DeployRequest,
        ctx: &ValidationContext,
    ) -> Result<DeployPlan, ValidationError> {
        let (r, c) = (req.clone(), ctx.clone());
        let range = self.config.port_range;
        let (install_path, ports, adapter) =
            tokio::task::spawn_blocking(move || validate::check_request(&r, &c, range))
                .await
                .map_err(|e| ValidationError::PathUnreadable {
                    path: req.install_path.clone().into(),
                    message: format!("validation thread failed: {e}"),
                })??;

        validate::check_git(&self.config.git).await?;
        let list = self.versions().await?;
        let (entry, recipe) = validate::check_version(&list, &req.version)?;
        if let Some(a) = &adapter
            && let Some(name) = &a.version
        {
            self.check_adapter_name(name, &entry.name, recipe).await?;
        }
        let min_py = recipe.map_or_else(recipe::min_python_any, |r| r.min_python);
        let installer = validate::choose_installer(&self.config).await?;
        let python = validate::find_python(
            &self.config,
            &python::RequiresPython::at_least(min_py),
            &format!("MaiBot {}", entry.name),
            &installer,
        )
        .await?;
        Ok(DeployPlan {
            instance_name: req.instance_name.trim().to_string(),
            install_path,
            version: entry.clone(),
            recipe,
            host: req.host.clone(),
            port: ports.main,
            ports,
            telemetry: req.telemetry,
            adapter,
            python,
            git: self.config.git.clone(),
            installer,
            eula_accepted: req.eula_accepted,
        })
    }

    /// A named adapter ref must exist upstream (a tag, a branch, or something shaped like a
    /// commit id) and be of the adapter line the MaiBot family runs: the standalone
    /// adapter for 0.x, the plugin adapter for 1.x. Its manifest range is checked after the
    /// fetch, where the job fails at that phase with the range it declares.
    async fn check_adapter_name(
        &self,
        name: &str,
        maibot: &str,
        recipe: Option<&'static Recipe>,
    ) -> Result<(), ValidationError> {
        let refs = versions::ls_remote(
            &self.config.git,
            &self.config.sources.adapter,
            self.config.timeouts.ls_remote(),
            None,
            |url, e| tracing::warn!(%url, error = %e, "adapter ls-remote failed"),
        )
        .await
        .map_err(|e| ValidationError::VersionsUnavailable(format!("adapter repository: {e}")))?
        .0;
        let is_commit = name.len() >= 7 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let exists = refs.tags.iter().any(|(t, _)| t == name)
            || refs.heads.iter().any(|(h, _)| h == name)
            || is_commit;
        if !exists {
            return Err(ValidationError::UnknownAdapterVersion(name.to_string()));
        }
        if let (Some(r), Some(standalone)) = (recipe, adapter::named_kind_is_standalone(name)) {
            let wants_standalone = r.adapter == AdapterStyle::Standalone;
            if standalone != wants_standalone {
                let (have, need) = if standalone {
                    (
                        "the standalone adapter",
                        "the plugin adapter (1.0 and later)",
                    )
                } else {
                    ("the plugin adapter", "the standalone adapter (0.x)")
                };
                return Err(ValidationError::AdapterIncompatible {
                    adapter: name.to_string(),
                    maibot: maibot.to_string(),
                    reason: format!("{name} is {have}; MaiBot {} runs {need}", r.family),
                });
            }
        }
        Ok(())
    }

    /// Phases 2–5 for a validated plan. On failure or cancel, removes exactly the
    /// directories this job marked and returns the phase, the real message and what was
    /// removed or kept.
    pub async fn run(
        &self,
        plan: DeployPlan,
        job_id: &str,
        sink: &dyn DeploySink,
        cancel: &CancelToken,
    ) -> Result<DeployOutcome, DeployError> {
        runner::Runner::new(&self.config, plan, job_id, sink, cancel)
            .run()
            .await
    }
}
