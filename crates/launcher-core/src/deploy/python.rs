//! Python interpreters: finding every one the host has (configured, `PATH`, pyenv, asdf,
//! uv-managed, system directories), reading what a MaiBot checkout asks for
//! (`requires-python`), choosing one, and provisioning one with `uv python install` when
//! none fits.
//!
//! Discovery probes each candidate binary once, in parallel, each with a short timeout, and
//! identifies interpreters by what they report as `sys.executable`, so a symlink farm
//! (`/usr/bin/python3` → `python3.11`) counts once.

use super::cancel::CancelToken;
use super::process::{self, Cmd, RunError, Stream};
use serde::Serialize;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one interpreter may take to report its version.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Minor versions of Python 3 looked up by name (`python3.N`).
const MINORS: std::ops::RangeInclusive<u32> = 8..=15;
/// Longest piece of a failing probe's output kept in a message: interpreters behind broken
/// shims can print kilobytes of noise.
const NOISE_MAX: usize = 160;

/// Where an interpreter was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `deploy.python`.
    Configured,
    /// A `python3`/`python`/`python3.N` on `PATH`.
    Path,
    /// `$PYENV_ROOT/versions/*` (or `~/.pyenv/versions/*`).
    Pyenv,
    /// `~/.asdf/installs/python/*` (or `$ASDF_DATA_DIR/…`).
    Asdf,
    /// uv's managed installations.
    Uv,
    /// `/usr/bin/python3.N`, `/usr/local/bin/python3.N`.
    System,
}

impl Source {
    /// Lower-case name for messages (`pyenv`, `path`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "configured",
            Source::Path => "path",
            Source::Pyenv => "pyenv",
            Source::Asdf => "asdf",
            Source::Uv => "uv",
            Source::System => "system",
        }
    }
}

/// One interpreter that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interpreter {
    /// What it reports as `sys.executable`.
    pub path: PathBuf,
    /// `(major, minor, micro)`.
    pub version: (u32, u32, u32),
    /// Where it was found (the first place, when several lead to it).
    pub source: Source,
}

impl Interpreter {
    /// `3.12.7`.
    pub fn version_string(&self) -> String {
        version_string(self.version)
    }

    /// `3.11.2 (/usr/bin/python3)`, as refusals list what was found.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.version_string(), self.path.display())
    }
}

fn version_string(v: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// The places discovery looks, taken from the environment by [`from_env`](Self::from_env);
/// tests build one by hand instead of changing the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRoots {
    /// `PATH` entries, in order.
    pub path: Vec<PathBuf>,
    /// pyenv's root (`$PYENV_ROOT`, else `~/.pyenv`).
    pub pyenv_root: Option<PathBuf>,
    /// asdf's data directory (`$ASDF_DATA_DIR`, else `~/.asdf`).
    pub asdf_dir: Option<PathBuf>,
    /// uv's Python directory (`$UV_PYTHON_INSTALL_DIR`, else `$XDG_DATA_HOME/uv/python`,
    /// else `~/.local/share/uv/python`).
    pub uv_python_dir: Option<PathBuf>,
    /// Directories searched for `python3.N` (`/usr/bin`, `/usr/local/bin`).
    pub system_dirs: Vec<PathBuf>,
}

impl SearchRoots {
    /// The roots this process's environment points at.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self::from_vars(std::env::var_os("PATH"), var("HOME"), |k| var(k))
    }

    /// The roots for a given `PATH`, home and variable lookup (`PYENV_ROOT`,
    /// `ASDF_DATA_DIR`, `UV_PYTHON_INSTALL_DIR`, `XDG_DATA_HOME`).
    pub fn from_vars(
        path: Option<OsString>,
        home: Option<PathBuf>,
        var: impl Fn(&str) -> Option<PathBuf>,
    ) -> Self {
        let under_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        Self {
            path: path
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            pyenv_root: var("PYENV_ROOT").or_else(|| under_home(".pyenv")),
            asdf_dir: var("ASDF_DATA_DIR").or_else(|| under_home(".asdf")),
            uv_python_dir: var("UV_PYTHON_INSTALL_DIR")
                .or_else(|| var("XDG_DATA_HOME").map(|x| x.join("uv").join("python")))
                .or_else(|| under_home(".local/share/uv/python")),
            system_dirs: vec![PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")],
        }
    }
}

/// Every interpreter found, configured first, then in the order of [`Source`]; each real
/// interpreter once. Candidates that do not run (or time out) are left out; ask
/// [`probe`] for the reason.
pub async fn discover(configured: Option<&Path>, roots: &SearchRoots) -> Vec<Interpreter> {
    let (configured, roots) = (configured.map(Path::to_path_buf), roots.clone());
    // Listing directories is blocking filesystem work; keep it off the runtime threads.
    let candidates = match tokio::task::spawn_blocking(move || {
        candidates(configured.as_deref(), &roots)
    })
    .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("listing python candidates failed: {e}");
            Vec::new()
        }
    };

    let mut set = tokio::task::JoinSet::new();
    for (i, (path, source)) in candidates.into_iter().enumerate() {
        set.spawn(async move { (i, source, probe(&path).await) });
    }
    let mut answered = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, source, Ok((path, version)))) => answered.push((
                i,
                Interpreter {
                    path,
                    version,
                    source,
                },
            )),
            Ok((_, _, Err(e))) => tracing::debug!("python candidate skipped: {e}"),
            Err(e) => tracing::debug!("python probe task failed: {e}"),
        }
    }
    answered.sort_by_key(|(i, _)| *i);
    let mut seen = HashSet::new();
    answered
        .into_iter()
        .map(|(_, it)| it)
        .filter(|it| seen.insert(real_path(&it.path)))
        .collect()
}

/// The candidate binaries in search order, each real file once.
fn candidates(configured: Option<&Path>, roots: &SearchRoots) -> Vec<(PathBuf, Source)> {
    let mut out: Vec<(PathBuf, Source)> = Vec::new();
    if let Some(c) = configured {
        out.push((c.to_path_buf(), Source::Configured));
    }
    let names: Vec<String> = ["python3".to_string(), "python".to_string()]
        .into_iter()
        .chain(MINORS.rev().map(|m| format!("python3.{m}")))
        .collect();
    for dir in roots.path.iter().filter(|d| !is_shim_dir(d)) {
        for n in &names {
            let p = dir.join(n);
            if is_executable(&p) {
                out.push((p, Source::Path));
            }
        }
    }
    let versioned = [
        (
            roots.pyenv_root.as_ref().map(|r| r.join("versions")),
            Source::Pyenv,
        ),
        (
            roots
                .asdf_dir
                .as_ref()
                .map(|r| r.join("installs").join("python")),
            Source::Asdf,
        ),
        (roots.uv_python_dir.clone(), Source::Uv),
    ];
    for (dir, source) in versioned {
        let Some(dir) = dir else { continue };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin").join("python3"))
            .filter(|p| is_executable(p))
            .collect();
        found.sort();
        out.extend(found.into_iter().map(|p| (p, source)));
    }
    for dir in &roots.system_dirs {
        for m in MINORS.rev() {
            let p = dir.join(format!("python3.{m}"));
            if is_executable(&p) {
                out.push((p, Source::System));
            }
        }
    }
    // The configured path is kept even when it does not exist, so its probe says why.
    let mut seen = HashSet::new();
    out.into_iter()
        .filter(|(p, s)| *s == Source::Configured || seen.insert(real_path(p)))
        .collect()
}

/// pyenv and asdf put shell-script shims on `PATH` that pick a version through the tool's
/// own configuration (and print noise when it names a missing one); the real binaries are
/// found under their version directories instead.
fn is_shim_dir(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == "shims")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn real_path(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Written for Python 2 as well, so a `python` that is 2.7 reports itself instead of failing.
const PY_PROBE: &str = "import sys; sys.stdout.write('%s\\n%d.%d.%d\\n' % (sys.executable, \
                        sys.version_info[0], sys.version_info[1], sys.version_info[2]))";

/// Runs `python -c …` and returns its `sys.executable` (absolute) and version. The error
/// is one short line; the interpreter's own stderr is cut to a few dozen characters.
pub async fn probe(python: &Path) -> Result<(PathBuf, (u32, u32, u32)), String> {
    let cmd = Cmd::new(python).args(["-c", PY_PROBE]);
    let shown = python.display();
    let (fin, out) = process::capture(&cmd, PROBE_TIMEOUT, None)
        .await
        .map_err(|e| format!("{shown}: {}", cut(&e.to_string())))?;
    if !fin.status.success() {
        let code = fin
            .status
            .code()
            .map_or_else(|| fin.status.to_string(), |c| format!("exit code {c}"));
        let last = fin.tail.last().map(|l| format!(": {}", cut(l)));
        return Err(format!("{shown}: {code}{}", last.unwrap_or_default()));
    }
    let (Some(exe), Some(ver)) = (out.first(), out.get(1)) else {
        return Err(format!("{shown}: unexpected output"));
    };
    let nums: Vec<u32> = ver.split('.').filter_map(|n| n.parse().ok()).collect();
    let exe = PathBuf::from(exe);
    // An embedded or odd build may report an empty sys.executable; the probed path is
    // then the best name for it.
    let exe = if exe.is_absolute() {
        exe
    } else {
        python.to_path_buf()
    };
    match nums.as_slice() {
        [a, b, c] => Ok((exe, (*a, *b, *c))),
        _ => Err(format!("{shown}: unexpected version {:?}", cut(ver))),
    }
}

fn cut(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(NOISE_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The interpreter to use: a configured one that satisfies `need` (the operator chose it),
/// else the newest that does; the earlier-found one among equal versions.
pub fn choose<'a>(found: &'a [Interpreter], need: &RequiresPython) -> Option<&'a Interpreter> {
    let ok = || found.iter().filter(|i| need.matches(i.version));
    ok().find(|i| i.source == Source::Configured).or_else(|| {
        ok().fold(None, |best: Option<&Interpreter>, i| match best {
            Some(b) if b.version >= i.version => Some(b),
            _ => Some(i),
        })
    })
}

/// Why a `requires-python` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not a specifier set this launcher understands.
    #[error("invalid requires-python {spec:?}: {reason}")]
    Invalid {
        /// The whole value.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `pyproject.toml` exists but cannot be read or parsed.
    #[error("cannot read {}: {message}", .path.display())]
    Pyproject {
        /// The file.
        path: PathBuf,
        /// The I/O or TOML error.
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Compatible,
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    Arbitrary,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Compatible => "~=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Arbitrary => "===",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    op: Op,
    /// Release segments (`3.12` → `[3, 12]`).
    release: Vec<u32>,
    /// `==3.12.*` / `!=3.12.*`.
    wildcard: bool,
    /// The version as written, for `===`.
    text: String,
}

/// A PEP 440 version specifier set as used for `requires-python` (`>=3.10`,
/// `>=3.10,<3.14`, `~=3.11`, `==3.12.*`, `!=3.11.0`), over final releases only: Python
/// interpreters that matter here report `major.minor.micro`. The empty set matches every
/// version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiresPython {
    clauses: Vec<Clause>,
}

impl RequiresPython {
    /// Parses a comma-separated specifier set.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let invalid = |reason: String| SpecError::Invalid {
            spec: spec.to_string(),
            reason,
        };
        let mut clauses = Vec::new();
        for part in spec.split(',').map(str::trim) {
            if part.is_empty() {
                if spec.trim().is_empty() {
                    continue;
                }
                return Err(invalid("empty clause".to_string()));
            }
            // Longest operators first, so `===` is not read as `==` + `=…`.
            let ops = [
                ("===", Op::Arbitrary),
                ("~=", Op::Compatible),
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
            ];
            let Some((op, rest)) = ops
                .iter()
                .find_map(|(s, op)| part.strip_prefix(s).map(|r| (*op, r.trim())))
            else {
                return Err(invalid(format!("{part:?} has no comparison operator")));
            };
            if op == Op::Arbitrary {
                clauses.push(Clause {
                    op,
                    release: Vec::new(),
                    wildcard: false,
                    text: rest.to_string(),
                });
                continue;
            }
            let (num, wildcard) = match rest.strip_suffix(".*") {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if wildcard && !matches!(op, Op::Eq | Op::Ne) {
                return Err(invalid(format!(
                    "{part:?}: '.*' is only allowed after == or !="
                )));
            }
            let num = num.strip_prefix(['v', 'V']).unwrap_or(num);
            let release: Option<Vec<u32>> = num.split('.').map(|s| s.parse().ok()).collect();
            let Some(release) = release.filter(|r| !r.is_empty()) else {
                return Err(invalid(format!(
                    "{part:?}: only release versions like 3.12 or 3.12.1 are supported"
                )));
            };
            if op == Op::Compatible && release.len() < 2 {
                return Err(invalid(format!("{part:?}: ~= needs at least two segments")));
            }
            clauses.push(Clause {
                op,
                release,
                wildcard,
                text: rest.to_string(),
            });
        }
        Ok(Self { clauses })
    }

    /// `>=major.minor`.
    pub fn at_least(min: (u32, u32)) -> Self {
        Self {
            clauses: vec![Clause {
                op: Op::Ge,
                release: vec![min.0, min.1],
                wildcard: false,
                text: format!("{}.{}", min.0, min.1),
            }],
        }
    }

    /// Both sets at once (the recipe's floor and the checkout's own requirement).
    pub fn and(mut self, other: &RequiresPython) -> Self {
        for c in &other.clauses {
            if !self.clauses.contains(c) {
                self.clauses.push(c.clone());
            }
        }
        self
    }

    /// Whether an interpreter of version `v` satisfies every clause.
    pub fn matches(&self, v: (u32, u32, u32)) -> bool {
        let have = [v.0, v.1, v.2];
        self.clauses.iter().all(|c| clause_matches(c, &have))
    }

    /// `[project] requires-python` of the checkout at `root`; `None` when there is no
    /// `pyproject.toml` or it does not say.
    pub fn from_pyproject(root: &Path) -> Result<Option<Self>, SpecError> {
        let path = root.join("pyproject.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SpecError::Pyproject {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let doc: toml_edit::DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| SpecError::Pyproject {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        match doc
            .get("project")
            .and_then(|p| p.get("requires-python"))
            .and_then(|v| v.as_str())
        {
            Some(spec) => Self::parse(spec).map(Some),
            None => Ok(None),
        }
    }

    /// The version to ask `uv python install` for: 3.12 when it satisfies (both MaiBot
    /// families run on it and every dependency has wheels for it), else the next newer minor
    /// that does, else the newest older one. A minor only one micro of which satisfies is
    /// asked for exactly (`==3.11.4` → `3.11.4`). `None` when no Python 3 release from 3.8
    /// on satisfies.
    pub fn install_request(&self) -> Option<String> {
        let order = (12..=*MINORS.end()).chain((*MINORS.start()..12).rev());
        for m in order {
            let micros: Vec<u32> = (0..=40).filter(|&p| self.matches((3, m, p))).collect();
            match micros.as_slice() {
                [] => {}
                [only] => return Some(format!("3.{m}.{only}")),
                _ => return Some(format!("3.{m}")),
            }
        }
        None
    }
}

/// Compares release segment lists as PEP 440 does, with missing segments as zeros.
fn cmp_release(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// `have` starts with `prefix` (missing segments of `have` count as zeros).
fn prefix_matches(have: &[u32], prefix: &[u32]) -> bool {
    prefix
        .iter()
        .enumerate()
        .all(|(i, p)| have.get(i).copied().unwrap_or(0) == *p)
}

fn clause_matches(c: &Clause, have: &[u32; 3]) -> bool {
    use std::cmp::Ordering::*;
    let ord = cmp_release(have, &c.release);
    match c.op {
        Op::Ge => ord != Less,
        Op::Gt => ord == Greater,
        Op::Le => ord != Greater,
        Op::Lt => ord == Less,
        Op::Eq if c.wildcard => prefix_matches(have, &c.release),
        Op::Eq => ord == Equal,
        Op::Ne if c.wildcard => !prefix_matches(have, &c.release),
        Op::Ne => ord != Equal,
        Op::Compatible => {
            let stem = &c.release[..c.release.len().saturating_sub(1)];
            ord != Less && prefix_matches(have, stem)
        }
        Op::Arbitrary => c.text == version_string((have[0], have[1], have[2])),
    }
}

impl fmt::Display for RequiresPython {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clauses.is_empty() {
            return f.write_str("(any version)");
        }
        for (i, c) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(c.op.as_str())?;
            if c.op == Op::Arbitrary {
                f.write_str(&c.text)?;
                continue;
            }
            let nums: Vec<String> = c.release.iter().map(u32::to_string).collect();
            f.write_str(&nums.join("."))?;
            if c.wildcard {
                f.write_str(".*")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for RequiresPython {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why provisioning an interpreter failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// `uv python install` failed or timed out.
    #[error("uv python install {request} failed: {message}")]
    Install {
        /// The version asked for.
        request: String,
        /// The tool's own message.
        message: String,
    },
    /// `uv python find` did not name an interpreter.
    #[error("uv python find {request} failed: {message}")]
    Find {
        /// The version asked for.
        request: String,
        /// The tool's own message.
        message: String,
    },
    /// The interpreter uv named does not run or is not what was asked for.
    #[error("the interpreter uv installed is unusable: {0}")]
    Unusable(String),
    /// The job was canceled; the tool's process group was killed.
    #[error("canceled")]
    Canceled,
}

/// One provisioning run.
#[derive(Debug, Clone)]
pub struct ProvisionRequest<'a> {
    /// The `uv` executable.
    pub uv: &'a Path,
    /// What to install (`3.12`, from [`RequiresPython::install_request`]).
    pub request: &'a str,
    /// What the result must satisfy.
    pub need: &'a RequiresPython,
    /// `deploy.python_install_mirror`, passed as `UV_PYTHON_INSTALL_MIRROR`.
    pub mirror: Option<&'a str>,
    /// Limit for the download and unpack.
    pub timeout: Duration,
    /// Extra environment for the tool (the job marker).
    pub env: Vec<(&'a str, &'a str)>,
}

/// Runs `uv python install <request>` (streaming each output line to `on_line`), then
/// `uv python find <request>`, and checks the interpreter it names. Both commands run in
/// their own process group, killed on `cancel` or timeout.
pub async fn provision(
    req: &ProvisionRequest<'_>,
    cancel: Option<&CancelToken>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Interpreter, ProvisionError> {
    let with_env = |mut cmd: Cmd| {
        for (k, v) in &req.env {
            cmd = cmd.env(k, v);
        }
        if let Some(m) = req.mirror.filter(|m| !m.trim().is_empty()) {
            cmd = cmd.env("UV_PYTHON_INSTALL_MIRROR", m);
        }
        cmd
    };
    let install = with_env(Cmd::new(req.uv).args(["python", "install", req.request]));
    on_line(&format!("$ {}", install.display()));
    let mut cb = |_s: Stream, line: &str| on_line(line);
    let failed = |message: String| ProvisionError::Install {
        request: req.request.to_string(),
        message,
    };
    match process::run(&install, req.timeout, cancel, &mut cb).await {
        Ok(fin) if fin.status.success() => {}
        Ok(fin) => return Err(failed(fin.failure_summary())),
        Err(RunError::Canceled) => return Err(ProvisionError::Canceled),
        Err(e) => return Err(failed(e.to_string())),
    }

    let find = with_env(Cmd::new(req.uv).args(["python", "find", req.request]));
    let not_found = |message: String| ProvisionError::Find {
        request: req.request.to_string(),
        message,
    };
    let path =
        match process::capture(&find, PROBE_TIMEOUT.max(Duration::from_secs(30)), cancel).await {
            Ok((fin, out)) if fin.status.success() => match out.first() {
                Some(p) if !p.trim().is_empty() => PathBuf::from(p.trim()),
                _ => return Err(not_found("it printed no path".to_string())),
            },
            Ok((fin, _)) => return Err(not_found(fin.failure_summary())),
            Err(RunError::Canceled) => return Err(ProvisionError::Canceled),
            Err(e) => return Err(not_found(e.to_string())),
        };
    let (path, version) = probe(&path).await.map_err(ProvisionError::Unusable)?;
    if !req.need.matches(version) {
        return Err(ProvisionError::Unusable(format!(
            "{} is {}, which does not satisfy {}",
            path.display(),
            version_string(version),
            req.need
        )));
    }
    Ok(Interpreter {
        path,
        version,
        source: Source::Uv,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn spec(s: &str) -> RequiresPython {
        RequiresPython::parse(s).unwrap()
    }

    #[test]
    fn specifier_table() {
        let table: &[(&str, (u32, u32, u32), bool)] = &[
            (">=3.10", (3, 10, 0), true),
            (">=3.10", (3, 9, 18), false),
            (">=3.10", (3, 13, 1), true),
            (">=3.12", (3, 11, 7), false),
            (">=3.12", (3, 12, 0), true),
            (">=3.10,<3.14", (3, 13, 9), true),
            (">=3.10,<3.14", (3, 14, 0), false),
            (">=3.10, <3.14", (3, 9, 0), false),
            ("~=3.11", (3, 11, 0), true),
            ("~=3.11", (3, 13, 2), true),
            ("~=3.11", (3, 10, 9), false),
            ("~=3.11", (4, 0, 0), false),
            ("~=3.11.2", (3, 11, 2), true),
            ("~=3.11.2", (3, 11, 1), false),
            ("~=3.11.2", (3, 12, 0), false),
            ("==3.12.*", (3, 12, 7), true),
            ("==3.12.*", (3, 13, 0), false),
            ("==3.12", (3, 12, 0), true),
            ("==3.12", (3, 12, 1), false),
            ("!=3.11.0", (3, 11, 0), false),
            ("!=3.11.0", (3, 11, 1), true),
            ("!=3.11.*", (3, 11, 5), false),
            (">3.12", (3, 12, 0), false),
            (">3.12", (3, 12, 1), true),
            ("<=3.12", (3, 12, 0), true),
            ("<=3.12", (3, 12, 1), false),
            ("===3.12.1", (3, 12, 1), true),
            ("===3.12.1", (3, 12, 2), false),
            ("", (2, 7, 18), true),
        ];
        for (s, v, want) in table {
            assert_eq!(spec(s).matches(*v), *want, "{s} vs {v:?}");
        }
    }

    #[test]
    fn specifier_display_and_errors() {
        assert_eq!(spec(">=3.10, <3.14").to_string(), ">=3.10,<3.14");
        assert_eq!(spec("==3.12.*").to_string(), "==3.12.*");
        assert_eq!(spec("~= 3.11").to_string(), "~=3.11");
        assert_eq!(RequiresPython::at_least((3, 12)).to_string(), ">=3.12");
        for bad in [
            "3.12",
            ">=3.12a1",
            ">=3.*",
            "~=3",
            ">=3.10,,<4",
            ">=",
            "=>3.10",
        ] {
            assert!(RequiresPython::parse(bad).is_err(), "{bad} accepted");
        }
        let both = RequiresPython::at_least((3, 10)).and(&spec("<3.14"));
        assert_eq!(both.to_string(), ">=3.10,<3.14");
    }

    #[test]
    fn install_requests() {
        assert_eq!(spec(">=3.12").install_request().as_deref(), Some("3.12"));
        assert_eq!(spec(">=3.10").install_request().as_deref(), Some("3.12"));
        assert_eq!(spec(">=3.13").install_request().as_deref(), Some("3.13"));
        assert_eq!(spec("<3.12").install_request().as_deref(), Some("3.11"));
        assert_eq!(
            spec("==3.11.4").install_request().as_deref(),
            Some("3.11.4")
        );
        assert_eq!(spec("<3.0").install_request(), None);
    }

    fn it(v: (u32, u32, u32), source: Source, p: &str) -> Interpreter {
        Interpreter {
            path: PathBuf::from(p),
            version: v,
            source,
        }
    }

    #[test]
    fn choose_newest_then_configured() {
        let found = vec![
            it((3, 11, 7), Source::Path, "/a"),
            it((3, 13, 0), Source::Pyenv, "/b"),
            it((3, 12, 1), Source::Pyenv, "/c"),
            it((3, 13, 0), Source::System, "/d"),
        ];
        assert_eq!(
            choose(&found, &spec(">=3.12")).unwrap().path,
            Path::new("/b")
        );
        assert_eq!(
            choose(&found, &spec(">=3.10,<3.13")).unwrap().path,
            Path::new("/c")
        );
        assert!(choose(&found, &spec(">=3.14")).is_none());
        let mut with_cfg = found.clone();
        with_cfg.insert(0, it((3, 12, 1), Source::Configured, "/cfg"));
        assert_eq!(
            choose(&with_cfg, &spec(">=3.12")).unwrap().path,
            Path::new("/cfg")
        );
        // A configured interpreter too old for this version does not block the others.
        assert_eq!(
            choose(&with_cfg, &spec(">=3.13")).unwrap().path,
            Path::new("/b")
        );
    }

    #[test]
    fn shim_dirs_are_skipped_and_roots_follow_variables() {
        assert!(is_shim_dir(Path::new("/root/.pyenv/shims")));
        assert!(!is_shim_dir(Path::new("/usr/bin")));
        let roots = SearchRoots::from_vars(
            Some(OsString::from("/x/bin:/y/bin")),
            Some(PathBuf::from("/home/u")),
            |k| (k == "UV_PYTHON_INSTALL_DIR").then(|| PathBuf::from("/uvpy")),
        );
        assert_eq!(
            roots.path,
            vec![PathBuf::from("/x/bin"), PathBuf::from("/y/bin")]
        );
        assert_eq!(roots.pyenv_root, Some(PathBuf::from("/home/u/.pyenv")));
        assert_eq!(roots.asdf_dir, Some(PathBuf::from("/home/u/.asdf")));
        assert_eq!(roots.uv_python_dir, Some(PathBuf::from("/uvpy")));
    }
}
