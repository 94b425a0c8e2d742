//! Phase 3: one virtual environment per component (`.venv`), then its requirements, with
//! uv when available or `python -m venv` + pip. Output goes to the job log line by line;
//! progress moves only when a step really finishes (pip reports no totals to scale by).

use super::error::{StepError, StepResult};
use super::process::Cmd;
use super::runner::Runner;
use super::sink::LogLevel;
use super::validate::{ComponentKind, Installer};
use std::path::{Path, PathBuf};

/// Name of the environment directory inside a component.
pub const VENV_DIR: &str = ".venv";

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
        self.current = Some(kind);
        self.component(kind, "installing", 35, "creating virtual environment");

        let py = self.python.path.clone();
        let venv_cmd = match &self.plan.installer {
            Installer::Uv(uv) => Cmd::new(uv)
                .cwd(&dir)
                .arg("venv")
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

        let req = dir.join("requirements.txt");
        if !req.is_file() {
            self.log(
                LogLevel::Warning,
                format!("[{name}] no requirements.txt; nothing to install"),
            );
        } else {
            self.component(kind, "installing", 50, "installing requirements");
            let cmd = self.install_cmd(&dir, &vpy, &req);
            self.tool(
                &format!("[{name}] installing requirements"),
                &cmd,
                self.cfg.timeouts.install(),
                &mut |_| true,
            )
            .await?;
        }
        self.log(
            LogLevel::Success,
            format!("[{name}] environment ready ({})", vpy.display()),
        );
        self.component(kind, "installing", 80, "environment ready");
        self.at(done_at);
        Ok(vpy)
    }

    fn install_cmd(&self, dir: &Path, vpy: &Path, req: &Path) -> Cmd {
        let mut index_args: Vec<String> = Vec::new();
        if let Some(u) = &self.cfg.index_url {
            index_args.extend(["--index-url".to_string(), u.clone()]);
        }
        if let Some(u) = &self.cfg.extra_index_url {
            index_args.extend(["--extra-index-url".to_string(), u.clone()]);
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
            Installer::Uv(uv) => Cmd::new(uv)
                .cwd(dir)
                .args(["pip", "install", "-r"])
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
