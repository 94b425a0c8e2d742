//! Phase 3: one virtual environment per component (`.venv`), then its requirements, with
//! uv when available or `python -m venv` + pip, from the lock file when the version ships
//! one. The index is always passed explicitly. Output goes to the job log line by line.

use super::error::{StepError, StepResult};
use super::process::Cmd;
use super::python::{self, ProvisionError, ProvisionRequest, RequiresPython};
use super::recipe::Recipe;
use super::runner::Runner;
use super::sink::LogLevel;
use super::validate::{self, ComponentKind, Installer, PythonChoice, PythonInfo};
use std::path::{Path, PathBuf};

/// Name of the environment directory inside a component.
pub const VENV_DIR: &str = ".venv";
/// uv's lock file in a checkout.
pub const LOCK_FILE: &str = "uv.lock";
/// The pinned list exported from the lock, kept inside the venv (out of the checkout).
pub const PINNED_FILE: &str = "mailauncher-pinned-requirements.txt";
/// The recipe's constraints for the standalone adapter, kept inside its venv.
pub const CONSTRAINTS_FILE: &str = "mailauncher-constraints.txt";

/// The interpreter inside a venv directory.
pub fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

impl Runner<'_> {
    /// Creates the environment of `kind` and installs its requirements; returns the
    /// environment's interpreter.
    pub(crate) async fn environment(&mut self, kind: ComponentKind) -> StepResult<PathBuf> {
        let with_adapter = self.plan.adapter.is_some();
        // (after venv, after install) as fractions of the phase.
        let (venv_at, done_at) = match (kind, with_adapter) {
            (ComponentKind::Main, true) => (0.1, 0.6),
            (ComponentKind::Main, false) => (0.15, 1.0),
            (ComponentKind::NapcatAdapter, _) => (0.7, 1.0),
        };
        let dir = match kind {
            ComponentKind::Main => self.plan.install_path.clone(),
            ComponentKind::NapcatAdapter => match &self.plan.adapter {
                Some(a) => a.path.clone(),
                None => return Err(StepError::Failed("no adapter planned".to_string())),
            },
        };
        let name = kind.as_str();
        // Before the component is current, so the provisioning lines carry no prefix: the
        // interpreter serves every component.
        let py = self.ensure_python().await?;
        self.current = Some(kind);
        self.component(kind, "installing", 35, "creating virtual environment");

        let venv_cmd = match &self.plan.installer {
            Installer::Uv(uv) => Cmd::new(uv)
                .cwd(&dir)
                .args(["venv", "--no-config"])
                .arg("--python")
                .arg(&py)
                .arg(VENV_DIR),
            Installer::Pip => Cmd::new(&py).cwd(&dir).args(["-m", "venv", VENV_DIR]),
        };
        self.tool(
            &format!("[{name}] creating the virtual environment"),
            &venv_cmd,
            self.cfg.timeouts.venv(),
            &mut |_| true,
        )
        .await?;
        let vpy = venv_python(&dir.join(VENV_DIR));
        if !vpy.exists() {
            return Err(StepError::Failed(format!(
                "[{name}] the virtual environment has no interpreter at {}",
                vpy.display()
            )));
        }
        self.at(venv_at);
        self.check_cancel()?;

        match self.manifest(kind, &dir).await? {
            None => self.log(
                LogLevel::Warning,
                format!("[{name}] no uv.lock and no requirements.txt; nothing to install"),
            ),
            Some((req, what)) => {
                self.log(
                    LogLevel::Info,
                    format!(
                        "[{name}] installing {what} from the index {}{}",
                        self.cfg.index_url,
                        match &self.cfg.extra_index_url {
                            Some(x) => format!(" (extra index {x})"),
                            None => String::new(),
                        }
                    ),
                );
                self.component(kind, "installing", 50, "installing requirements");
                let constraints = self.constraints(kind, &dir)?;
                let cmd = self.install_cmd(&dir, &vpy, &req, constraints.as_deref());
                let total = count_requirements(&req);
                let mut meter = InstallMeter::new(total);
                let mut on_line = |line: &str| {
                    if let Some(f) = meter.line(line) {
                        self.at(venv_at + (done_at - venv_at) * f);
                    }
                    true
                };
                self.tool(
                    &format!("[{name}] installing requirements"),
                    &cmd,
                    self.cfg.timeouts.install(),
                    &mut on_line,
                )
                .await?;
            }
        }
        self.log(
            LogLevel::Success,
            format!("[{name}] environment ready ({})", vpy.display()),
        );
        self.component(kind, "installing", 80, "environment ready");
        self.at(done_at);
        Ok(vpy)
    }

    /// What to install from: the version's lock file when it ships one (exported by uv as
    /// a pinned, hashed requirements list, installed the same way by uv and by pip), else
    /// `requirements.txt`. Returns the file and a description for the job log.
    async fn manifest(
        &self,
        kind: ComponentKind,
        dir: &Path,
    ) -> StepResult<Option<(PathBuf, String)>> {
        let name = kind.as_str();
        let lock = dir.join(LOCK_FILE);
        let reqs = dir.join("requirements.txt");
        if lock.is_file() {
            let uv = match &self.plan.installer {
                Installer::Uv(uv) => Some(uv.clone()),
                Installer::Pip => self.cfg.uv.clone().or_else(|| Some(PathBuf::from("uv"))),
            };
            if let Some(uv) = uv {
                let out = dir.join(VENV_DIR).join(PINNED_FILE);
                let cmd = Cmd::new(&uv).cwd(dir).args([
                    "export",
                    "--frozen",
                    "--no-dev",
                    "--no-emit-project",
                    "--no-config",
                    "--format",
                    "requirements-txt",
                    "--quiet",
                    "--output-file",
                ]);
                let cmd = cmd.arg(&out);
                match self
                    .tool(
                        &format!("[{name}] exporting the pinned list from {LOCK_FILE}"),
                        &cmd,
                        self.cfg.timeouts.venv(),
                        &mut |_| true,
                    )
                    .await
                {
                    Ok(_) => {
                        let pins = std::fs::read_to_string(&out)
                            .map(|t| t.lines().filter(|l| l.contains("==")).count())
                            .unwrap_or(0);
                        return Ok(Some((
                            out,
                            format!("{pins} pinned packages from {LOCK_FILE}"),
                        )));
                    }
                    Err(StepError::Canceled) => return Err(StepError::Canceled),
                    Err(StepError::Failed(e)) if reqs.is_file() => self.log(
                        LogLevel::Warning,
                        format!(
                            "[{name}] {LOCK_FILE} could not be exported ({e}); installing the \
                             unpinned requirements.txt instead"
                        ),
                    ),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(reqs.is_file().then(|| {
            (
                reqs,
                "requirements.txt (unpinned: no lock file)".to_string(),
            )
        }))
    }

    /// The recipe's constraint lines for the standalone adapter, written into its venv;
    /// `None` when there are none (MaiBot itself installs from its lock).
    fn constraints(&self, kind: ComponentKind, dir: &Path) -> StepResult<Option<PathBuf>> {
        let lines = match (kind, self.recipe) {
            (ComponentKind::NapcatAdapter, Some(r)) => r.adapter_constraints,
            _ => &[],
        };
        if lines.is_empty() {
            return Ok(None);
        }
        let path = dir.join(VENV_DIR).join(CONSTRAINTS_FILE);
        let mut body = lines.join("\n");
        body.push('\n');
        std::fs::write(&path, body)
            .map_err(|e| StepError::Failed(format!("writing {}: {e}", path.display())))?;
        self.log(
            LogLevel::Info,
            format!(
                "[{}] constrained to {} (the versions this MaiBot family speaks to)",
                kind.as_str(),
                lines.join(", ")
            ),
        );
        Ok(Some(path))
    }

    /// The interpreter environments are made from; when the plan says to provision one,
    /// installs it first with `uv python install` as a logged step (once per job).
    async fn ensure_python(&mut self) -> StepResult<PathBuf> {
        let (request, need, uv) = match &self.python {
            PythonChoice::Found(p) => return Ok(p.path.clone()),
            PythonChoice::Provision { request, need, uv } => {
                (request.clone(), need.clone(), uv.clone())
            }
        };
        self.log(
            LogLevel::Info,
            format!("no Python on this host satisfies {need}; installing Python {request} with uv"),
        );
        let sink = self.sink();
        let mut on_line = |line: &str| sink.log(LogLevel::Info, line);
        let req = ProvisionRequest {
            uv: &uv,
            request: &request,
            need: &need,
            mirror: self.cfg.python_install_mirror.as_deref(),
            // A download plus unpack: bounded like a requirements install, not like a venv.
            timeout: self.cfg.timeouts.install(),
            env: vec![(super::leftovers::JOB_ENV, self.job_id)],
        };
        match python::provision(&req, Some(self.cancel), &mut on_line).await {
            Ok(i) => {
                self.log(
                    LogLevel::Success,
                    format!(
                        "Python {} installed: {}",
                        i.version_string(),
                        i.path.display()
                    ),
                );
                let path = i.path.clone();
                self.python = PythonChoice::Found(PythonInfo {
                    path: i.path,
                    version: i.version,
                });
                Ok(path)
            }
            Err(ProvisionError::Canceled) => Err(StepError::Canceled),
            Err(e) => Err(StepError::Failed(e.to_string())),
        }
    }

    /// After checkout: what this tree needs (the recipe's floor and the checkout's own
    /// `requires-python`), and a new choice when the planned interpreter does not fit.
    pub(crate) async fn recheck_python(
        &mut self,
        recipe: &'static Recipe,
        root: &Path,
    ) -> StepResult<()> {
        let mut need = RequiresPython::at_least(recipe.min_python);
        match RequiresPython::from_pyproject(root) {
            Ok(Some(spec)) => need = need.and(&spec),
            Ok(None) => {}
            Err(e) => self.log(
                LogLevel::Warning,
                format!("{e}; going by the {} layout's {need}", recipe.layout_name()),
            ),
        }
        match &self.python {
            PythonChoice::Found(p) if need.matches(p.version) => return Ok(()),
            PythonChoice::Provision { need: planned, .. } if *planned == need => return Ok(()),
            _ => {}
        }
        let what = format!("MaiBot {}", self.plan.version.name);
        let choice = validate::find_python(self.cfg, &need, &what, &self.plan.installer)
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        match &choice {
            PythonChoice::Found(p) => self.log(
                LogLevel::Info,
                format!(
                    "{what} needs Python {need}; using {} ({})",
                    p.path.display(),
                    p.version_string()
                ),
            ),
            PythonChoice::Provision { request, .. } => self.log(
                LogLevel::Info,
                format!("{what} needs Python {need}; Python {request} will be installed with uv"),
            ),
        }
        self.python = choice;
        Ok(())
    }

    fn install_cmd(&self, dir: &Path, vpy: &Path, req: &Path, constraints: Option<&Path>) -> Cmd {
        let mut index_args: Vec<String> =
            vec!["--index-url".to_string(), self.cfg.index_url.clone()];
        if let Some(u) = &self.cfg.extra_index_url {
            index_args.extend(["--extra-index-url".to_string(), u.clone()]);
        }
        // `-c` means the same to uv pip and pip: limits, not extra requirements.
        if let Some(c) = constraints {
            index_args.extend(["-c".to_string(), c.display().to_string()]);
        }
        // A lock export is the whole closure, pinned and hashed: nothing is left to
        // resolve. Without `--no-deps`, pip in hash-checking mode re-reads each package's
        // own requirements and refuses a dependency named with an extra
        // (`google-auth[requests]` from google-genai) as "not pinned" (measured on 0.12.3).
        if req.file_name().and_then(|n| n.to_str()) == Some(PINNED_FILE) {
            index_args.push("--no-deps".to_string());
        }
        if let Some(argv) = &self.cfg.install_command
            && let Some((prog, rest)) = argv.split_first()
        {
            let fill = |s: &str| {
                s.replace("{python}", &vpy.display().to_string())
                    .replace("{requirements}", &req.display().to_string())
            };
            return Cmd::new(fill(prog))
                .cwd(dir)
                .args(rest.iter().map(|a| fill(a)));
        }
        match &self.plan.installer {
            // `--no-config`: a repository's `[tool.uv]` settings (MaiBot's mirror) are not
            // ours to follow; the index is the one passed here.
            Installer::Uv(uv) => Cmd::new(uv)
                .cwd(dir)
                .args(["pip", "install", "--no-config", "-r"])
                .arg(req)
                .arg("--python")
                .arg(vpy)
                .args(index_args),
            Installer::Pip => Cmd::new(vpy)
                .cwd(dir)
                .args(["-m", "pip", "install", "--progress-bar", "off", "-r"])
                .arg(req)
                .args(index_args),
        }
    }
}

/// Requirement lines in a requirements file (pins, names, paths; not comments, options or
/// hash continuation lines): the installer's total when the file is a pinned export.
fn count_requirements(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
                .count()
        })
        .unwrap_or(0)
}

/// Turns an installer's output into a fraction of the install, never backwards:
/// pip names every package as it collects it (`Collecting x`, the first 80 %) and then
/// installs them all (`Installing collected packages`, `Successfully installed`); uv prints
/// `Resolved N`, `Prepared N` after its downloads, `Installed N`, then a `+ pkg` line each.
#[derive(Debug)]
struct InstallMeter {
    total: usize,
    collected: usize,
    last: f64,
}

impl InstallMeter {
    fn new(total: usize) -> Self {
        Self {
            total: total.max(1),
            collected: 0,
            last: 0.0,
        }
    }

    fn line(&mut self, line: &str) -> Option<f64> {
        let l = line.trim_start();
        let f = if l.starts_with("Collecting ") || l.starts_with("Requirement already satisfied") {
            self.collected += 1;
            // Transitive packages of an unpinned list can exceed its count: cap below the
            // install step.
            (0.8 * self.collected as f64 / self.total as f64).min(0.8)
        } else if l.starts_with("Resolved ") {
            0.1
        } else if l.starts_with("Prepared ") {
            0.8
        } else if l.starts_with("Installing collected packages") {
            0.85
        } else if l.starts_with("Installed ") || l.starts_with("Successfully installed") {
            1.0
        } else {
            return None;
        };
        if f > self.last {
            self.last = f;
            Some(f)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InstallMeter;

    #[test]
    fn install_progress_follows_output_and_never_goes_back() {
        let mut m = InstallMeter::new(4);
        assert_eq!(m.line("Collecting a==1.0"), Some(0.2));
        assert_eq!(m.line("  Downloading a-1.0.whl"), None);
        assert_eq!(m.line("Collecting b==1.0"), Some(0.4));
        assert_eq!(m.line("Resolved 4 packages in 1s"), None, "never backwards");
        assert_eq!(m.line("Installing collected packages: a, b"), Some(0.85));
        assert_eq!(m.line("Successfully installed a-1.0 b-1.0"), Some(1.0));
        let mut uv = InstallMeter::new(89);
        assert_eq!(uv.line("Resolved 89 packages in 12ms"), Some(0.1));
        assert_eq!(uv.line("Prepared 89 packages in 40s"), Some(0.8));
        assert_eq!(uv.line("Installed 89 packages in 2s"), Some(1.0));
        assert_eq!(uv.line(" + aiohttp==3.12.14"), None);
    }
}
