//! Deploy settings, loaded by the binary under `deploy.*`. Every field has a default, so an
//! empty `[deploy]` table (or none at all) is a working configuration.

use super::python::SearchRoots;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// A git repository and the mirrors to try, in order, when it cannot be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Source {
    /// The primary URL.
    pub url: String,
    /// Fallback URLs, tried in order after `url`.
    pub mirrors: Vec<String>,
}

impl Source {
    /// A source with the given primary URL and mirrors.
    pub fn new(
        url: impl Into<String>,
        mirrors: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            url: url.into(),
            mirrors: mirrors.into_iter().map(Into::into).collect(),
        }
    }

    /// Every URL to try, primary first; empty entries are skipped.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str())
            .chain(self.mirrors.iter().map(String::as_str))
            .filter(|u| !u.trim().is_empty())
    }
}

/// Where MaiBot and the napcat adapter come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// MaiBot core.
    pub maibot: Source,
    /// MaiBot-Napcat-Adapter.
    pub adapter: Source,
}

/// The public Python package index.
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";

/// Upstream MaiBot core repository.
pub const MAIBOT_URL: &str = "https://github.com/Mai-with-u/MaiBot.git";
/// Upstream napcat adapter repository.
pub const ADAPTER_URL: &str = "https://github.com/Mai-with-u/MaiBot-Napcat-Adapter.git";
/// Gitee mirror of MaiBot the legacy launcher fell back to (reachable from mainland China).
pub const MAIBOT_GITEE_MIRROR: &str = "https://gitee.com/DrSmooth/MaiBot.git";
/// Gitee mirror of the adapter the legacy launcher fell back to.
pub const ADAPTER_GITEE_MIRROR: &str = "https://gitee.com/DrSmooth/MaiBot-Napcat-Adapter.git";

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            maibot: Source::new(MAIBOT_URL, [MAIBOT_GITEE_MIRROR]),
            adapter: Source::new(ADAPTER_URL, [ADAPTER_GITEE_MIRROR]),
        }
    }
}

/// Whether Python environments are made with `uv`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UseUv {
    /// Use `uv` when it answers `--version`, else `python -m venv` + pip.
    #[default]
    Auto,
    /// Require `uv`; validation fails without it.
    Always,
    /// Never use `uv`.
    Never,
}

/// Time limits, in seconds, for the external commands of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// One `git ls-remote` attempt (per URL).
    pub ls_remote: u64,
    /// One fetch attempt (per URL).
    pub clone: u64,
    /// Creating one virtual environment.
    pub venv: u64,
    /// Installing one component's requirements.
    pub install: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            ls_remote: 30,
            clone: 600,
            venv: 300,
            install: 1800,
        }
    }
}

impl Timeouts {
    /// `ls_remote` as a duration.
    pub fn ls_remote(&self) -> Duration {
        Duration::from_secs(self.ls_remote)
    }
    /// `clone` as a duration.
    pub fn clone_attempt(&self) -> Duration {
        Duration::from_secs(self.clone)
    }
    /// `venv` as a duration.
    pub fn venv(&self) -> Duration {
        Duration::from_secs(self.venv)
    }
    /// `install` as a duration.
    pub fn install(&self) -> Duration {
        Duration::from_secs(self.install)
    }
}

/// Everything the deployer needs to know that is not part of a request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// Git sources for MaiBot and the adapter (`deploy.sources.*`).
    pub sources: SourcesConfig,
    /// Interpreter used to create environments (`deploy.python`), preferred when it
    /// satisfies the version's `requires-python`. Either way the interpreters on `PATH`,
    /// under pyenv, asdf and uv, and `/usr{,/local}/bin/python3.N` are considered too
    /// ([`super::python::discover`]); the newest that satisfies is used.
    pub python: Option<PathBuf>,
    /// When no interpreter satisfies a version, install one with `uv python install`
    /// at the start of the environment phase (`deploy.provision_python`). Needs uv as the
    /// installer (found, and `use_uv` not `never`); otherwise the deploy is refused.
    pub provision_python: bool,
    /// Where `uv python install` downloads Python builds from
    /// (`deploy.python_install_mirror`, passed as `UV_PYTHON_INSTALL_MIRROR`); uv's
    /// default when unset.
    pub python_install_mirror: Option<String>,
    /// Git executable (`deploy.git`), looked up on `PATH` when not a path.
    pub git: PathBuf,
    /// `uv` executable (`deploy.uv`); `uv` on `PATH` when unset.
    pub uv: Option<PathBuf>,
    /// Whether to use `uv` (`deploy.use_uv`: `auto` | `always` | `never`).
    pub use_uv: UseUv,
    /// Package index passed explicitly to every install as `--index-url`
    /// (`deploy.index_url`, default the public index). A repository's own installer
    /// configuration (`[tool.uv] index-url` in MaiBot's `pyproject.toml`) is never
    /// followed; set a mirror here.
    pub index_url: String,
    /// Extra index passed as `--extra-index-url` (`deploy.extra_index_url`).
    pub extra_index_url: Option<String>,
    /// Time limits (`deploy.timeouts.*`, seconds).
    pub timeouts: Timeouts,
    /// Ports the launcher allocates from when a request leaves one open
    /// (`deploy.port_range = [first, last]`).
    pub port_range: (u16, u16),
    /// How long a version list is served from cache, in seconds (`deploy.versions_cache_ttl`).
    pub versions_cache_ttl: u64,
    /// Test hook: replaces the requirements-install command with this argv. `{python}` is
    /// replaced by the environment's interpreter and `{requirements}` by the requirements
    /// file. Not deserialized, so no configuration file or environment variable can set
    /// it; only code that builds a `DeployConfig` by hand can.
    #[serde(skip)]
    pub install_command: Option<Vec<String>>,
    /// Where the deployer keeps caches (the adapter repository it pairs from); set by the
    /// binary to `<data_dir>/cache`. Unset: pairing is decided at deploy time only.
    #[serde(skip)]
    pub cache_dir: Option<PathBuf>,
    /// Extra environment for every deploy tool (the deploy benchmark points uv at a cold
    /// or a warm cache with it). Not deserialized: only code can set it.
    #[serde(skip)]
    pub tool_env: Vec<(String, String)>,
    /// Days a deleted instance's folders stay in the trash before they are purged
    /// (`deploy.trash_days`); 0 removes them at delete, as before the trash existed.
    pub trash_days: u32,
    /// Test hook: where interpreter discovery looks, instead of this process's
    /// environment (`PATH`, `PYENV_ROOT`, `HOME`, …). Not deserialized, like
    /// `install_command`.
    #[serde(skip)]
    pub python_search: Option<SearchRoots>,
    /// Directories instances may live in (`deploy.allowed_roots`); empty: anywhere outside
    /// the system directories ([`crate::path_policy`]).
    pub allowed_roots: Vec<PathBuf>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            sources: SourcesConfig::default(),
            python: None,
            provision_python: true,
            python_install_mirror: None,
            git: PathBuf::from("git"),
            uv: None,
            use_uv: UseUv::Auto,
            index_url: DEFAULT_INDEX_URL.to_string(),
            extra_index_url: None,
            timeouts: Timeouts::default(),
            port_range: (8100, 8999),
            versions_cache_ttl: 600,
            install_command: None,
            cache_dir: None,
            tool_env: Vec::new(),
            trash_days: 7,
            python_search: None,
            allowed_roots: Vec::new(),
        }
    }
}

impl DeployConfig {
    /// `versions_cache_ttl` as a duration.
    pub fn versions_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.versions_cache_ttl)
    }
}
