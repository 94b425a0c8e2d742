//! Read-only look at a directory: is it MaiBot, the adapter, or neither; which version,
//! environment and config files it has; whether the launcher owns it. Used by "add an
//! existing instance" and before deletes. Never writes.

use super::cleanup::read_marker;
use super::process::{self, Cmd};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Subdirectories of a MaiBot tree where an adapter is looked for.
pub const ADAPTER_SUBDIRS: &[&str] = &["napcat-ada", "MaiBot-Napcat-Adapter", "adapter"];
/// Environment directory names recognised (`.venv` is what this launcher creates; the
/// legacy launcher made `venv`).
pub const VENV_DIRS: &[&str] = &[".venv", "venv"];

/// What a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallKind {
    /// Has `bot.py`.
    MaiBot,
    /// Has `main.py` and an adapter config or template, no `bot.py`.
    Adapter,
    /// Neither.
    Unknown,
}

/// Known config files that exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigFiles {
    /// `config/bot_config.toml`.
    pub bot_config: bool,
    /// `config/lpmm_config.toml`.
    pub lpmm_config: bool,
    /// `config/model_config.toml`.
    pub model_config: bool,
    /// `.env`.
    pub env: bool,
    /// The adapter's `config.toml`.
    pub adapter_config: bool,
}

/// Result of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The inspected path.
    pub path: PathBuf,
    /// Something exists there.
    pub exists: bool,
    /// It is a directory.
    pub is_dir: bool,
    /// MaiBot, adapter or unknown.
    pub kind: InstallKind,
    /// `bot.py` exists.
    pub has_bot_py: bool,
    /// `main.py` exists.
    pub has_main_py: bool,
    /// Best-effort version.
    pub version: Option<String>,
    /// Where `version` came from: `pyproject.toml`, `src/config/config.py` or
    /// `git describe`.
    pub version_source: Option<String>,
    /// Checked-out branch, else a tag at HEAD, else the short commit.
    pub git_ref: Option<String>,
    /// A virtual environment exists.
    pub has_venv: bool,
    /// Which one.
    pub venv_dir: Option<PathBuf>,
    /// Config files present.
    pub config_files: ConfigFiles,
    /// An adapter inside a MaiBot tree.
    pub adapter_dir: Option<PathBuf>,
    /// Carries a launcher ownership marker.
    pub owned: bool,
}

/// Inspects `path`. Filesystem reads run on a blocking thread; `git describe` (only when
/// no version file says more) gets a few seconds.
pub async fn inspect(path: &Path) -> Inspection {
    let p = path.to_path_buf();
    let fallback = empty(path);
    let mut ins = tokio::task::spawn_blocking(move || inspect_blocking(&p))
        .await
        .unwrap_or(fallback);
    if ins.version.is_none() && ins.is_dir && path.join(".git").exists() {
        let cmd = Cmd::new("git")
            .cwd(path)
            .args(["describe", "--tags"])
            .env("LC_ALL", "C");
        if let Ok((fin, out)) = process::capture(&cmd, Duration::from_secs(5), None).await
            && fin.status.success()
            && let Some(v) = out.first().filter(|v| !v.is_empty())
        {
            ins.version = Some(v.clone());
            ins.version_source = Some("git describe".to_string());
        }
    }
    ins
}

fn empty(path: &Path) -> Inspection {
    Inspection {
        path: path.to_path_buf(),
        exists: false,
        is_dir: false,
        kind: InstallKind::Unknown,
        has_bot_py: false,
        has_main_py: false,
        version: None,
        version_source: None,
        git_ref: None,
        has_venv: false,
        venv_dir: None,
        config_files: ConfigFiles::default(),
        adapter_dir: None,
        owned: false,
    }
}

fn inspect_blocking(path: &Path) -> Inspection {
    let mut ins = empty(path);
    let Ok(meta) = fs::metadata(path) else {
        return ins;
    };
    ins.exists = true;
    ins.is_dir = meta.is_dir();
    if !ins.is_dir {
        return ins;
    }
    ins.has_bot_py = path.join("bot.py").is_file();
    ins.has_main_py = path.join("main.py").is_file();
    ins.config_files = ConfigFiles {
        bot_config: path.join("config/bot_config.toml").is_file(),
        lpmm_config: path.join("config/lpmm_config.toml").is_file(),
        model_config: path.join("config/model_config.toml").is_file(),
        env: path.join(".env").is_file(),
        adapter_config: path.join("config.toml").is_file(),
    };
    let adapterish =
        path.join("template/template_config.toml").is_file() || ins.config_files.adapter_config;
    ins.kind = if ins.has_bot_py {
        InstallKind::MaiBot
    } else if ins.has_main_py && adapterish {
        InstallKind::Adapter
    } else {
        InstallKind::Unknown
    };
    ins.venv_dir = VENV_DIRS
        .iter()
        .map(|d| path.join(d))
        .find(|d| d.join("pyvenv.cfg").is_file());
    ins.has_venv = ins.venv_dir.is_some();
    if ins.kind == InstallKind::MaiBot {
        ins.adapter_dir = ADAPTER_SUBDIRS
            .iter()
            .map(|d| path.join(d))
            .find(|d| d.join("main.py").is_file());
    }
    if let Some(v) = pyproject_version(path) {
        ins.version = Some(v);
        ins.version_source = Some("pyproject.toml".to_string());
    } else if let Some(v) = mmc_version(path) {
        ins.version = Some(v);
        ins.version_source = Some("src/config/config.py".to_string());
    }
    ins.git_ref = git_ref(path);
    ins.owned = read_marker(path).is_some();
    ins
}

fn read_small(p: &Path) -> Option<String> {
    let meta = fs::metadata(p).ok()?;
    if !meta.is_file() || meta.len() > 1024 * 1024 {
        return None;
    }
    fs::read_to_string(p).ok()
}

fn pyproject_version(root: &Path) -> Option<String> {
    let doc: toml_edit::DocumentMut = read_small(&root.join("pyproject.toml"))?.parse().ok()?;
    doc.get("project")?
        .get("version")?
        .as_str()
        .map(str::to_string)
}

fn mmc_version(root: &Path) -> Option<String> {
    let text = read_small(&root.join("src/config/config.py"))?;
    text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("MMC_VERSION")?;
        let rest = rest.trim_start().strip_prefix('=')?.trim();
        let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &rest[1..];
        inner.find(q).map(|end| inner[..end].to_string())
    })
}

/// Branch name, else a tag pointing at HEAD, else the 12-character commit.
fn git_ref(root: &Path) -> Option<String> {
    let git = root.join(".git");
    let head = read_small(&git.join("HEAD"))?;
    let head = head.trim();
    if let Some(r) = head.strip_prefix("ref: ") {
        return Some(r.strip_prefix("refs/heads/").unwrap_or(r).to_string());
    }
    let sha = head;
    if let Ok(entries) = fs::read_dir(git.join("refs/tags")) {
        for e in entries.flatten() {
            if read_small(&e.path()).is_some_and(|s| s.trim() == sha) {
                return Some(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    if let Some(packed) = read_small(&git.join("packed-refs")) {
        let mut last_tag: Option<&str> = None;
        for line in packed.lines() {
            if let Some(peeled) = line.strip_prefix('^') {
                if peeled.trim() == sha && last_tag.is_some() {
                    return last_tag.map(str::to_string);
                }
                continue;
            }
            last_tag = None;
            if let Some((s, name)) = line.split_once(' ')
                && let Some(t) = name.strip_prefix("refs/tags/")
            {
                if s == sha {
                    return Some(t.to_string());
                }
                last_tag = Some(t);
            }
        }
    }
    Some(sha.chars().take(12).collect())
}
