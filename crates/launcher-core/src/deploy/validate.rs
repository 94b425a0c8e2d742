//! Phase 1: everything checkable before a job exists. A request that passes becomes a
//! [`DeployPlan`] with resolved paths, tools and recipe; the runner trusts nothing else.

use super::config::{DeployConfig, UseUv};
use super::error::ValidationError;
use super::process::{self, Cmd};
use super::python::{self, RequiresPython, SearchRoots};
use super::recipe::{self, Recipe};
use super::versions::{RefKind, VersionEntry, VersionList};
use crate::path_policy::{PathPolicy, canonical_prefix, normalize};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest accepted instance name, in characters.
pub const NAME_MAX_CHARS: usize = 64;
/// The adapter's directory under the install path when the request gives none.
pub const DEFAULT_ADAPTER_DIR: &str = "napcat-ada";
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// A component this launcher can deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ComponentKind {
    /// MaiBot core.
    #[serde(rename = "main")]
    Main,
    /// MaiBot-Napcat-Adapter.
    #[serde(rename = "napcat-ada")]
    NapcatAdapter,
}

impl ComponentKind {
    /// Wire name (`main`, `napcat-ada`), as the frontend uses it.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Main => "main",
            ComponentKind::NapcatAdapter => "napcat-ada",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "main" => Some(ComponentKind::Main),
            "napcat-ada" => Some(ComponentKind::NapcatAdapter),
            _ => None,
        }
    }
}

/// One requested component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentRequest {
    /// `main` or `napcat-ada`.
    pub kind: String,
    /// Adapter directory (`~` allowed); `<install_path>/napcat-ada` when absent. Ignored for
    /// `main`, which always lives at the install path.
    #[serde(default)]
    pub path: Option<String>,
    /// The NapCat-facing port: the standalone adapter's server (0.x) or NapCat's forward
    /// WebSocket the plugin adapter connects to (1.x); allocated from `deploy.port_range`
    /// when absent. Ignored for `main` (see [`DeployRequest::port`]).
    #[serde(default)]
    pub port: Option<u32>,
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

/// What a client asks to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeployRequest {
    /// Display name (letters, digits, space, `-_.`; at most 64 characters). Uniqueness is
    /// the caller's check against its database.
    pub instance_name: String,
    /// MaiBot directory; `~` means `$HOME`. Must be absent or empty.
    pub install_path: String,
    /// A tag or branch from the version list.
    pub version: String,
    /// MaiBot's listen address (`HOST`).
    #[serde(default = "default_host")]
    pub host: String,
    /// MaiBot's port (`PORT`, and the adapter's MaiBot-side port).
    pub port: u32,
    /// Extra components; `main` is always deployed and may be listed.
    #[serde(default)]
    pub components: Vec<ComponentRequest>,
    /// The user read and accepted MaiBot's EULA and privacy policy.
    #[serde(default)]
    pub eula_accepted: bool,
    /// The adapter to deploy (tag, branch or commit); chosen by compatibility when absent.
    /// Naming one implies the adapter.
    #[serde(default)]
    pub adapter_version: Option<String>,
    /// MaiBot's WebUI port; allocated from `deploy.port_range` when absent.
    #[serde(default)]
    pub webui_port: Option<u32>,
    /// Send MaiBot's anonymous usage statistics (off unless asked).
    #[serde(default)]
    pub telemetry: bool,
}

/// Facts about the host that only the caller knows.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// Directories that must neither contain nor be inside an install path (the launcher's
    /// data directory, its log directory).
    pub forbidden_roots: Vec<PathBuf>,
    /// Ports configured for other instances.
    pub ports_in_use: HashSet<u16>,
    /// The home directory `~` expands to; also refused as an install path.
    pub home: Option<PathBuf>,
    /// System directories and `deploy.allowed_roots` (the rule shared with add-existing
    /// and inspect).
    pub policy: PathPolicy,
}

impl ValidationContext {
    /// A context with `home` from `$HOME`.
    pub fn from_env(
        forbidden_roots: Vec<PathBuf>,
        ports_in_use: HashSet<u16>,
        policy: PathPolicy,
    ) -> Self {
        Self {
            forbidden_roots,
            ports_in_use,
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            policy,
        }
    }
}

/// A Python interpreter that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonInfo {
    /// `sys.executable`, absolute.
    pub path: PathBuf,
    /// `(major, minor, micro)`.
    pub version: (u32, u32, u32),
}

impl PythonInfo {
    /// `3.11.7`.
    pub fn version_string(&self) -> String {
        format!("{}.{}.{}", self.version.0, self.version.1, self.version.2)
    }
}

/// The interpreter a plan uses: one that is there, or one to install first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonChoice {
    /// An interpreter on this host satisfies the version.
    Found(PythonInfo),
    /// None does; the runner installs `request` with `uv python install` at the start of
    /// the environment phase.
    Provision {
        /// What to ask uv for (`3.12`).
        request: String,
        /// What the installed interpreter must satisfy.
        need: RequiresPython,
        /// The uv that installs it.
        uv: PathBuf,
    },
}

impl PythonChoice {
    /// The interpreter, when it is already there.
    pub fn found(&self) -> Option<&PythonInfo> {
        match self {
            PythonChoice::Found(p) => Some(p),
            PythonChoice::Provision { .. } => None,
        }
    }
}

/// How environments get made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Installer {
    /// `uv venv` + `uv pip install`, with this `uv`.
    Uv(PathBuf),
    /// `python -m venv` + `python -m pip install`.
    Pip,
}

/// The adapter part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterPlan {
    /// Adapter directory for the standalone adapter (resolved, absolute); the plugin
    /// adapter always goes to the recipe's plugin folder inside MaiBot's checkout.
    pub path: PathBuf,
    /// NapCat-facing port (the adapter's server, or NapCat's forward WebSocket).
    pub port: u16,
    /// The adapter ref the user named, if any.
    pub version: Option<String>,
}

/// Every port a deploy assigns, before the family maps the NapCat-facing one to its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedPorts {
    /// MaiBot's main server.
    pub main: u16,
    /// MaiBot's WebUI.
    pub webui: u16,
    /// The NapCat-facing port, with an adapter.
    pub napcat: Option<u16>,
}

/// A validated request: the only input the runner accepts. It cannot be built outside
/// the crate (`non_exhaustive`), so every plan a caller holds passed the checks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeployPlan {
    /// Instance display name.
    pub instance_name: String,
    /// MaiBot directory (resolved, absolute).
    pub install_path: PathBuf,
    /// The version to check out.
    pub version: VersionEntry,
    /// The recipe for a tag; `None` for a branch until its tree is seen.
    pub recipe: Option<&'static Recipe>,
    /// MaiBot host.
    pub host: String,
    /// MaiBot port.
    pub port: u16,
    /// Every port assigned to the instance.
    pub ports: PlannedPorts,
    /// Send telemetry.
    pub telemetry: bool,
    /// The adapter, when requested.
    pub adapter: Option<AdapterPlan>,
    /// The interpreter environments are created from, or the one to provision.
    pub python: PythonChoice,
    /// Git executable.
    pub git: PathBuf,
    /// uv or pip.
    pub installer: Installer,
    /// Write MaiBot's confirmation files.
    pub eula_accepted: bool,
}

/// Checks the request's own fields (name, host, paths, ports, components) — everything
/// that needs neither the network nor external tools. Blocking (filesystem and socket
/// probes); [`super::Deployer::validate`] runs it on a blocking thread.
pub fn check_request(
    req: &DeployRequest,
    ctx: &ValidationContext,
    range: (u16, u16),
) -> Result<(PathBuf, PlannedPorts, Option<AdapterPlan>), ValidationError> {
    check_name(&req.instance_name)?;
    check_host(&req.host)?;
    let home = ctx.home.as_deref();
    let install = resolve_path(&req.install_path, home)?;
    check_target_dir(&install, ctx)?;

    let port = check_port_range(req.port)?;
    let mut adapter_req: Option<&ComponentRequest> = None;
    let mut seen_main = false;
    for c in &req.components {
        match ComponentKind::parse(&c.kind) {
            Some(ComponentKind::Main) if seen_main => {
                return Err(ValidationError::DuplicateComponent(c.kind.clone()));
            }
            Some(ComponentKind::Main) => seen_main = true,
            Some(ComponentKind::NapcatAdapter) if adapter_req.is_some() => {
                return Err(ValidationError::DuplicateComponent(c.kind.clone()));
            }
            Some(ComponentKind::NapcatAdapter) => adapter_req = Some(c),
            None => return Err(ValidationError::UnknownComponent(c.kind.clone())),
        }
    }

    let named = req
        .adapter_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(v) = named {
        check_ref_name(v)?;
    }
    let implied = ComponentRequest {
        kind: ComponentKind::NapcatAdapter.as_str().to_string(),
        path: None,
        port: None,
    };
    let adapter_req = adapter_req.or(named.map(|_| &implied));
    let webui_req = req.webui_port.map(check_port_range).transpose()?;
    let mut adapter_port_req = None;
    let adapter = match adapter_req {
        None => None,
        Some(c) => {
            let path = match &c.path {
                Some(p) if !p.trim().is_empty() => {
                    let p = resolve_path(p, home)?;
                    if install.starts_with(&p) {
                        return Err(ValidationError::AdapterPathOverlap(p));
                    }
                    check_target_dir(&p, ctx)?;
                    p
                }
                _ => install.join(DEFAULT_ADAPTER_DIR),
            };
            adapter_port_req = c.port.map(check_port_range).transpose()?;
            Some(AdapterPlan {
                path,
                port: 0,
                version: named.map(str::to_string),
            })
        }
    };

    // Asked-for ports first (each checked), then the others allocated around them.
    let mut chosen: Vec<u16> = Vec::new();
    for p in std::iter::once(port)
        .chain(webui_req)
        .chain(adapter_port_req)
    {
        if chosen.contains(&p) {
            return Err(ValidationError::PortDuplicate(p));
        }
        if ctx.ports_in_use.contains(&p) {
            return Err(ValidationError::PortInUse(p));
        }
        if port_bound(p) {
            return Err(ValidationError::PortBound(p));
        }
        chosen.push(p);
    }
    let webui = match webui_req {
        Some(p) => p,
        None => allocate(range, ctx, &mut chosen)?,
    };
    let adapter = match adapter {
        None => None,
        Some(mut a) => {
            a.port = match adapter_port_req {
                Some(p) => p,
                None => allocate(range, ctx, &mut chosen)?,
            };
            Some(a)
        }
    };
    let ports = PlannedPorts {
        main: port,
        webui,
        napcat: adapter.as_ref().map(|a| a.port),
    };
    Ok((install, ports, adapter))
}

/// The first port of `range` that no instance has, nothing on the host holds and this
/// request has not taken yet.
fn allocate(
    range: (u16, u16),
    ctx: &ValidationContext,
    chosen: &mut Vec<u16>,
) -> Result<u16, ValidationError> {
    let (first, last) = range;
    for p in first.max(1024)..=last {
        if chosen.contains(&p) || ctx.ports_in_use.contains(&p) || port_bound(p) {
            continue;
        }
        chosen.push(p);
        return Ok(p);
    }
    Err(ValidationError::NoFreePort { first, last })
}

/// A git ref name or commit a user may name: no option-like or path-escaping text.
fn check_ref_name(v: &str) -> Result<(), ValidationError> {
    let ok = v.len() <= 100
        && !v.starts_with('-')
        && !v.contains("..")
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::UnknownAdapterVersion(v.to_string()))
    }
}

/// Name rules: non-empty after trimming, at most 64 characters, only letters and digits
/// (any script, so Chinese names work), space, `-`, `_`, `.`; not only dots.
pub fn check_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::NameEmpty);
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(ValidationError::NameTooLong {
            max: NAME_MAX_CHARS,
        });
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')))
    {
        return Err(ValidationError::NameInvalidChar(c));
    }
    if name.trim().chars().all(|c| c == '.') {
        return Err(ValidationError::NameInvalidChar('.'));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), ValidationError> {
    if host == "localhost" || host.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(ValidationError::InvalidHost(host.to_string()))
    }
}

fn check_port_range(p: u32) -> Result<u16, ValidationError> {
    match u16::try_from(p) {
        Ok(v) if v >= 1024 => Ok(v),
        _ => Err(ValidationError::PortOutOfRange(p)),
    }
}

/// True when binding the port on 127.0.0.1 or 0.0.0.0 fails (something holds it).
pub fn port_bound(port: u16) -> bool {
    [Ipv4Addr::LOCALHOST, Ipv4Addr::UNSPECIFIED]
        .into_iter()
        .any(|ip| TcpListener::bind((ip, port)).is_err())
}

/// Expands `~`/`~/…` with `home`, requires an absolute path, removes `.`/`..` lexically and
/// resolves symlinks in the part that exists, so later prefix checks compare real paths.
pub fn resolve_path(raw: &str, home: Option<&Path>) -> Result<PathBuf, ValidationError> {
    if raw.trim().is_empty() {
        return Err(ValidationError::PathEmpty);
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(ValidationError::PathInvalidChar(c));
    }
    let expanded = if raw == "~" || raw.starts_with("~/") {
        match home {
            Some(h) => h.join(raw.trim_start_matches('~').trim_start_matches('/')),
            None => return Err(ValidationError::PathTilde(raw.to_string())),
        }
    } else if raw.starts_with('~') {
        return Err(ValidationError::PathTilde(raw.to_string()));
    } else {
        PathBuf::from(raw)
    };
    if !expanded.is_absolute() {
        return Err(ValidationError::PathNotAbsolute(raw.to_string()));
    }
    Ok(canonical_prefix(&normalize(&expanded)))
}

/// Root, system-directory and `deploy.allowed_roots` ([`PathPolicy`]), home and
/// forbidden-root rules, then "absent or empty directory".
fn check_target_dir(p: &Path, ctx: &ValidationContext) -> Result<(), ValidationError> {
    if p.parent().is_none() {
        return Err(ValidationError::PathIsRoot(p.to_path_buf()));
    }
    ctx.policy.check(p)?;
    if let Some(home) = &ctx.home {
        let home = canonical_prefix(&normalize(home));
        if home.starts_with(p) {
            return Err(ValidationError::PathIsHome(p.to_path_buf()));
        }
    }
    // Other users' homes and root's.
    let parent = p.parent().unwrap_or(p);
    if parent == Path::new("/home") || parent == Path::new("/Users") || p == Path::new("/root") {
        return Err(ValidationError::PathIsHome(p.to_path_buf()));
    }
    for root in &ctx.forbidden_roots {
        let root = canonical_prefix(&normalize(root));
        if p.starts_with(&root) || root.starts_with(p) {
            return Err(ValidationError::PathForbidden {
                path: p.to_path_buf(),
                root,
            });
        }
    }
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ValidationError::PathUnreadable {
            path: p.to_path_buf(),
            message: e.to_string(),
        }),
        Ok(m) if !m.is_dir() => Err(ValidationError::PathNotDir(p.to_path_buf())),
        Ok(_) => match std::fs::read_dir(p) {
            Ok(mut it) => {
                if it.next().is_some() {
                    Err(ValidationError::PathNotEmpty(p.to_path_buf()))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(ValidationError::PathUnreadable {
                path: p.to_path_buf(),
                message: e.to_string(),
            }),
        },
    }
}

/// The version entry and the recipe for it (tags by range; branches later, from the tree).
pub fn check_version<'a>(
    list: &'a VersionList,
    version: &str,
) -> Result<(&'a VersionEntry, Option<&'static Recipe>), ValidationError> {
    // `latest` (the legacy wizard offers it) is the newest stable release of a known family.
    let entry = if version == "latest" {
        list.versions.iter().find(|v| {
            v.kind == RefKind::Tag && !v.prerelease && recipe::recipe_for_tag(&v.name).is_some()
        })
    } else {
        list.find(version)
    }
    .ok_or_else(|| ValidationError::UnknownVersion(version.to_string()))?;
    match entry.kind {
        RefKind::Branch => Ok((entry, None)),
        RefKind::Tag => match recipe::recipe_for_tag(&entry.name) {
            Some(r) => Ok((entry, Some(r))),
            None => Err(ValidationError::NoRecipe(entry.name.clone())),
        },
    }
}

/// `git --version` answers.
pub async fn check_git(git: &Path) -> Result<String, ValidationError> {
    let cmd = Cmd::new(git).arg("--version");
    let fail = |detail: String| ValidationError::ToolMissing {
        tool: "git".to_string(),
        detail,
        config_key: "deploy.git",
    };
    match process::capture(&cmd, PROBE_TIMEOUT, None).await {
        Ok((fin, out)) if fin.status.success() => Ok(out.join(" ")),
        Ok((fin, _)) => Err(fail(format!(
            "{} --version: {}",
            git.display(),
            fin.failure_summary()
        ))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Picks the interpreter for a version that needs `need` (`what` names the version in the
/// refusal: `MaiBot 1.2.1`): every interpreter [`python::discover`] finds is considered
/// and [`python::choose`] decides. When none satisfies, the plan says to provision one if
/// `deploy.provision_python` is on and uv is the installer; otherwise the refusal names
/// what was found and what to install. A configured `deploy.python` that does not run is
/// a refusal of its own: the operator pointed at it, so it is not silently passed over.
pub async fn find_python(
    cfg: &DeployConfig,
    need: &RequiresPython,
    what: &str,
    installer: &Installer,
) -> Result<PythonChoice, ValidationError> {
    let configured = cfg.python.as_deref();
    let roots = cfg
        .python_search
        .clone()
        .unwrap_or_else(SearchRoots::from_env);
    let found = python::discover(configured, &roots).await;
    if let Some(c) = configured
        && !found.iter().any(|i| i.source == python::Source::Configured)
    {
        let detail = match python::probe(c).await {
            Err(e) => e,
            Ok(_) => format!("{} did not answer consistently", c.display()),
        };
        return Err(ValidationError::ToolMissing {
            tool: format!("python {need}"),
            detail,
            config_key: "deploy.python",
        });
    }
    if let Some(i) = python::choose(&found, need) {
        return Ok(PythonChoice::Found(PythonInfo {
            path: i.path.clone(),
            version: i.version,
        }));
    }
    let request = need.install_request();
    let uv = match installer {
        Installer::Uv(uv) => Some(uv),
        Installer::Pip => None,
    };
    if let (true, Some(uv), Some(request)) = (cfg.provision_python, uv, &request) {
        return Ok(PythonChoice::Provision {
            request: request.clone(),
            need: need.clone(),
            uv: uv.clone(),
        });
    }
    let v = request.unwrap_or_else(|| need.to_string());
    let mut hint = format!(
        "Install Python {v} (e.g. `uv python install {v}` or `pyenv install {v}`) or set \
         deploy.python"
    );
    match (uv, cfg.provision_python) {
        (Some(_), false) => hint.push_str(
            "; or set deploy.provision_python = true to let the launcher install it with uv",
        ),
        (None, true) => hint.push_str("; with uv installed the launcher installs it itself"),
        _ => {}
    }
    Err(ValidationError::PythonUnavailable {
        need: format!("{what} needs Python {need}"),
        found: found.iter().map(python::Interpreter::describe).collect(),
        hint,
    })
}

/// uv or pip according to `deploy.use_uv`.
pub async fn choose_installer(cfg: &DeployConfig) -> Result<Installer, ValidationError> {
    if cfg.use_uv == UseUv::Never {
        return Ok(Installer::Pip);
    }
    let uv = cfg.uv.clone().unwrap_or_else(|| PathBuf::from("uv"));
    let probe = process::capture(&Cmd::new(&uv).arg("--version"), PROBE_TIMEOUT, None).await;
    let detail = match probe {
        Ok((fin, _)) if fin.status.success() => return Ok(Installer::Uv(uv)),
        Ok((fin, _)) => fin.failure_summary(),
        Err(e) => e.to_string(),
    };
    match cfg.use_uv {
        UseUv::Always => Err(ValidationError::ToolMissing {
            tool: "uv".to_string(),
            detail: format!("{}: {detail} (deploy.use_uv = always)", uv.display()),
            config_key: "deploy.uv",
        }),
        _ => Ok(Installer::Pip),
    }
}
