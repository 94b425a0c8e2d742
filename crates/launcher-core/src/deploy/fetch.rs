//! Phase 2: claim the target directories and fetch MaiBot and the adapter into them.
//!
//! `git clone` refuses a non-empty directory, and the marker must exist before any file of
//! the checkout does (so an interrupted job is still recognisably ours). So each directory
//! is created, marked, and then filled with `git init` + `git fetch --depth 1 <ref>` +
//! `git checkout`; the marker (and the adapter directory inside MaiBot) are listed in
//! `.git/info/exclude`, so `git status` stays clean.

use super::adapter;
use super::cleanup::{MARKER_FILE, MarkerRole, write_marker};
use super::config::Source;
use super::error::{StepError, StepResult};
use super::process;
use super::process::Cmd;
use super::recipe::{self, ADAPTER_REQUIRED, AdapterStyle, PLUGIN_MANIFEST, Recipe};
use super::runner::Runner;
use super::sink::LogLevel;
use super::validate::{self, ComponentKind};
use super::versions::{self, LsRemoteError, RefKind, RemoteRefs, parse_version};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Share of the fetch phase taken by MaiBot when the adapter is also fetched.
const CORE_SHARE: f64 = 0.7;

impl Runner<'_> {
    pub(crate) async fn fetch_all(&mut self) -> StepResult<()> {
        let with_adapter = self.plan.adapter.is_some();
        let core_end = if with_adapter { CORE_SHARE } else { 1.0 };
        let install = self.plan.install_path.clone();
        let version = self.plan.version.clone();

        self.current = Some(ComponentKind::Main);
        self.component(ComponentKind::Main, "fetching", 0, "fetching source");
        self.claim(&install).await?;
        let src = self.cfg.sources.maibot.clone();
        let url = self
            .fetch_into(&install, &src, &version.name, version.kind, (0.0, core_end))
            .await?;
        self.log(
            LogLevel::Success,
            format!("MaiBot {} checked out from {url}", version.name),
        );
        self.select_recipe(&install).await?;
        self.component(ComponentKind::Main, "fetching", 30, "source fetched");

        let Some(adapter) = self.plan.adapter.clone() else {
            self.at(1.0);
            return Ok(());
        };
        self.check_cancel()?;
        self.current = Some(ComponentKind::NapcatAdapter);
        self.component(
            ComponentKind::NapcatAdapter,
            "fetching",
            0,
            "choosing version",
        );
        let recipe = self
            .recipe
            .ok_or_else(|| StepError::Failed("no recipe was selected".into()))?;
        let src = self.cfg.sources.adapter.clone();
        let refs = self.adapter_refs(&src).await?;
        let dir = match recipe.adapter {
            AdapterStyle::Standalone => adapter.path.clone(),
            AdapterStyle::Plugin { dir } => {
                let d = install.join(dir);
                if d != adapter.path && adapter.path != install.join(validate::DEFAULT_ADAPTER_DIR)
                {
                    self.log(
                        LogLevel::Warning,
                        format!(
                            "MaiBot {} loads the adapter as a plugin from {dir}; the requested \
                             adapter path {} is not used",
                            recipe.family,
                            adapter.path.display()
                        ),
                    );
                }
                d
            }
        };
        if dir.starts_with(&install)
            && let Ok(rel) = dir.strip_prefix(&install)
        {
            // Keep MaiBot's `git status` clean of the nested adapter checkout.
            let line = format!("/{}/", rel.display());
            let root = install.clone();
            self.blocking(move || append_exclude(&root, &[&line]))
                .await?;
        }
        self.claim(&dir).await?;
        let chosen = match recipe.adapter {
            AdapterStyle::Standalone => {
                let (name, refspec) = standalone_choice(&refs, adapter.version.as_deref())?;
                let url = self
                    .init_and_fetch(
                        &dir,
                        &src,
                        std::slice::from_ref(&refspec),
                        "the adapter",
                        None,
                    )
                    .await?;
                let commit = self.checkout_fetched(&dir, &refspec).await?;
                let missing: Vec<&str> = ADAPTER_REQUIRED
                    .iter()
                    .copied()
                    .filter(|f| !dir.join(f).is_file())
                    .collect();
                if !missing.is_empty() {
                    return Err(StepError::Failed(format!(
                        "adapter {name} is not the standalone adapter MaiBot {} needs: it lacks {}",
                        recipe.family,
                        missing.join(", ")
                    )));
                }
                self.log(
                    LogLevel::Success,
                    format!("adapter {name} ({}) checked out from {url}", short(&commit)),
                );
                name
            }
            AdapterStyle::Plugin { .. } => {
                self.fetch_plugin(&dir, &src, &refs, recipe, &adapter)
                    .await?
            }
        };
        self.adapter_ref = Some(chosen);
        self.adapter_dir = Some(dir);
        self.component(
            ComponentKind::NapcatAdapter,
            "fetching",
            30,
            "source fetched",
        );
        self.at(1.0);
        Ok(())
    }

    async fn adapter_refs(&self, src: &Source) -> StepResult<RemoteRefs> {
        match versions::ls_remote(
            &self.plan.git,
            src,
            self.cfg.timeouts.ls_remote(),
            Some(self.cancel),
            |url, e| {
                self.log(
                    LogLevel::Warning,
                    format!("listing adapter refs at {url} failed: {e}; trying next URL"),
                )
            },
        )
        .await
        {
            Ok((r, _)) => Ok(r),
            Err(LsRemoteError::Canceled) => Err(StepError::Canceled),
            Err(LsRemoteError::Failed(e)) => Err(StepError::Failed(format!(
                "cannot list adapter versions: {e}"
            ))),
        }
    }

    /// The plugin adapter: every candidate ref (the named one, or the default branch and
    /// the plugin tags, then the default branch's history of `_manifest.json`) is fetched
    /// into the claimed folder and judged by its manifest against this MaiBot; the best is
    /// checked out.
    async fn fetch_plugin(
        &self,
        dir: &Path,
        src: &Source,
        refs: &RemoteRefs,
        recipe: &'static Recipe,
        adapter: &validate::AdapterPlan,
    ) -> StepResult<String> {
        let host_v = self.maibot_version.clone().ok_or_else(|| {
            StepError::Failed(
                "MaiBot's version is unknown, so no plugin adapter can be paired".into(),
            )
        })?;
        let host = parse_version(&host_v).ok_or_else(|| {
            StepError::Failed(format!("MaiBot version {host_v:?} is not a version number"))
        })?;
        let gate = recipe.gate_for(&host);
        let default_branch = refs.default_branch.clone().or_else(|| {
            refs.heads
                .iter()
                .find(|(h, _)| h == "main")
                .map(|(h, _)| h.clone())
        });
        let mut names: Vec<(String, String)> = Vec::new();
        match &adapter.version {
            Some(v) => names.push((v.clone(), refspec_for(refs, v))),
            None => {
                if let Some(b) = &default_branch {
                    names.push((b.clone(), refspec_for(refs, b)));
                }
                for (t, _) in adapter::plugin_tags(&refs.tags) {
                    names.push((t.clone(), refspec_for(refs, t)));
                }
            }
        }
        if names.is_empty() {
            return Err(StepError::Failed(
                "the adapter repository has no default branch and no plugin release tag".into(),
            ));
        }
        let specs: Vec<String> = names.iter().map(|(_, r)| r.clone()).collect();
        let url = self
            .init_and_fetch(dir, src, &specs, "the adapter", None)
            .await?;
        let mut cands = Vec::new();
        let mut seen = Vec::new();
        for (name, spec) in &names {
            let local = local_ref(spec);
            let Some(commit) = self.rev(dir, &local).await else {
                continue;
            };
            match self.manifest_at(dir, &commit).await {
                Ok(m) => {
                    self.log(
                        LogLevel::Info,
                        format!("adapter {name}: plugin {} ", m.describe()),
                    );
                    seen.push(commit.clone());
                    cands.push(adapter::Candidate {
                        name: name.clone(),
                        commit,
                        manifest: m,
                    });
                }
                Err(e) => self.log(LogLevel::Info, format!("adapter {name}: {e}")),
            }
        }
        let strict = adapter::best(&cands, &host, gate)
            .is_some_and(|(_, a)| a == adapter::Admission::Strict);
        if !strict
            && adapter.version.is_none()
            && let Some(b) = &default_branch
        {
            // The default branch's history: releases between tags are commits there.
            let spec = format!("+refs/heads/{b}:refs/mailauncher/history");
            let git = &self.plan.git;
            let fetch =
                git_cmd(git, dir).args(["fetch", "--depth", "300", "--no-tags", "origin", &spec]);
            if self
                .tool(
                    "git fetch (adapter history)",
                    &fetch,
                    self.cfg.timeouts.clone_attempt(),
                    &mut |_| false,
                )
                .await
                .is_ok()
            {
                let log = git_cmd(git, dir).args([
                    "log",
                    "--format=%H",
                    "refs/mailauncher/history",
                    "--",
                    PLUGIN_MANIFEST,
                ]);
                if let Ok((fin, lines)) =
                    process::capture(&log, self.cfg.timeouts.ls_remote(), Some(self.cancel)).await
                    && fin.status.success()
                {
                    for c in lines.iter().map(|l| l.trim().to_string()) {
                        if c.is_empty() || seen.contains(&c) {
                            continue;
                        }
                        if let Ok(m) = self.manifest_at(dir, &c).await {
                            cands.push(adapter::Candidate {
                                name: short(&c).to_string(),
                                commit: c,
                                manifest: m,
                            });
                        }
                    }
                }
            }
        }
        let Some((pick, admission)) = adapter::best(&cands, &host, gate) else {
            let looked: Vec<String> = cands
                .iter()
                .map(|c| format!("{} {}", c.name, c.manifest.describe()))
                .collect();
            let what = match &adapter.version {
                Some(v) => format!("the named adapter {v}"),
                None => "no adapter release".to_string(),
            };
            return Err(StepError::Failed(format!(
                "{what} admits MaiBot {host_v} (looked at: {}); name a compatible one with adapter_version",
                if looked.is_empty() {
                    "nothing with a manifest".to_string()
                } else {
                    looked.join("; ")
                }
            )));
        };
        let how = match admission {
            adapter::Admission::Strict => "inside its host range",
            _ => "in MaiBot's compatibility mode",
        };
        self.log(
            LogLevel::Info,
            format!(
                "adapter: {} — plugin {}, loads on MaiBot {host_v} {how}",
                pick.name,
                pick.manifest.describe()
            ),
        );
        let co = git_cmd(&self.plan.git, dir).args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            &pick.commit,
        ]);
        self.tool(
            "git checkout",
            &co,
            self.cfg.timeouts.ls_remote(),
            &mut |_| true,
        )
        .await?;
        self.log(
            LogLevel::Success,
            format!(
                "adapter {} ({}) checked out from {url}",
                pick.name,
                short(&pick.commit)
            ),
        );
        Ok(pick.name.clone())
    }

    async fn rev(&self, dir: &Path, r: &str) -> Option<String> {
        let cmd = git_cmd(&self.plan.git, dir).args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("{r}^{{commit}}"),
        ]);
        match process::capture(&cmd, self.cfg.timeouts.ls_remote(), Some(self.cancel)).await {
            Ok((fin, out)) if fin.status.success() => out.first().map(|s| s.trim().to_string()),
            _ => None,
        }
    }

    async fn manifest_at(&self, dir: &Path, commit: &str) -> Result<adapter::Manifest, String> {
        let cmd =
            git_cmd(&self.plan.git, dir).args(["show", &format!("{commit}:{PLUGIN_MANIFEST}")]);
        match process::capture(&cmd, self.cfg.timeouts.ls_remote(), Some(self.cancel)).await {
            Ok((fin, out)) if fin.status.success() => adapter::Manifest::parse(&out.join("\n")),
            Ok(_) => Err(format!("no {PLUGIN_MANIFEST} (not the plugin adapter)")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `git init` in the claimed `dir` and one fetch of every refspec (URLs in order).
    async fn init_and_fetch(
        &self,
        dir: &Path,
        src: &Source,
        specs: &[String],
        what: &str,
        span: Option<(f64, f64)>,
    ) -> StepResult<String> {
        let git = &self.plan.git;
        let quick = self.cfg.timeouts.ls_remote();
        self.tool(
            "git init",
            &git_cmd(git, dir).args(["init", "-q"]),
            quick,
            &mut |_| true,
        )
        .await?;
        let d = dir.to_path_buf();
        self.blocking(move || append_exclude(&d, &[&format!("/{MARKER_FILE}")]))
            .await?;
        let urls: Vec<&str> = src.urls().collect();
        let Some(first) = urls.first() else {
            return Err(StepError::Failed("no source URL configured".to_string()));
        };
        self.tool(
            "git remote add",
            &git_cmd(git, dir).args(["remote", "add", "origin", first]),
            quick,
            &mut |_| true,
        )
        .await?;
        let mut errors = Vec::new();
        for url in &urls {
            self.check_cancel()?;
            self.tool(
                "git remote set-url",
                &git_cmd(git, dir).args(["remote", "set-url", "origin", url]),
                quick,
                &mut |_| true,
            )
            .await?;
            let fetch = git_cmd(git, dir)
                .args(["fetch", "--depth", "1", "--progress", "--no-tags", "origin"])
                .args(specs.iter().cloned());
            let mut throttle = ProgressThrottle::default();
            let mut on_line = |line: &str| {
                if let (Some(f), Some((from, to))) = (throttle.fraction(line), span) {
                    self.at(from + (to - from) * f);
                }
                throttle.worth_logging(line)
            };
            self.log(LogLevel::Info, format!("fetching {what} from {url}"));
            match self
                .tool(
                    "git fetch",
                    &fetch,
                    self.cfg.timeouts.clone_attempt(),
                    &mut on_line,
                )
                .await
            {
                Ok(_) => return Ok(url.to_string()),
                Err(StepError::Canceled) => return Err(StepError::Canceled),
                Err(StepError::Failed(e)) => {
                    self.log(
                        LogLevel::Warning,
                        format!("fetch from {url} failed: {e}; trying the next URL"),
                    );
                    errors.push(format!("{url}: {e}"));
                }
            }
        }
        Err(StepError::Failed(format!(
            "cannot fetch {what} from any source: {}",
            errors.join("; ")
        )))
    }

    /// Checks out what `spec` fetched; returns the commit.
    async fn checkout_fetched(&self, dir: &Path, spec: &str) -> StepResult<String> {
        let local = local_ref(spec);
        let commit = self
            .rev(dir, &local)
            .await
            .ok_or_else(|| StepError::Failed(format!("the fetch did not bring {local}")))?;
        let co = git_cmd(&self.plan.git, dir).args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            &commit,
        ]);
        self.tool(
            "git checkout",
            &co,
            self.cfg.timeouts.ls_remote(),
            &mut |_| true,
        )
        .await?;
        Ok(commit)
    }

    /// The recipe for the checked-out tree, and a Python that satisfies it.
    async fn select_recipe(&mut self, root: &Path) -> StepResult<()> {
        let recipe: &'static Recipe = match self.recipe {
            Some(r) => {
                r.check_tree(root).map_err(|e| {
                    StepError::Failed(format!("{e} (tag {})", self.plan.version.name))
                })?;
                r
            }
            None => {
                let r = recipe::detect_recipe(root).map_err(StepError::Failed)?;
                self.log(
                    LogLevel::Info,
                    format!(
                        "branch {} has the {} layout",
                        self.plan.version.name,
                        r.layout_name()
                    ),
                );
                r
            }
        };
        self.recipe = Some(recipe);
        // MaiBot judges plugins by its pyproject version (the tag for a 0.x tree, whose
        // pyproject version is stale upstream, matters only for display).
        self.maibot_version = match recipe.layout {
            recipe::Layout::V1 => recipe::project_version(root),
            recipe::Layout::V0 => None,
        }
        .or_else(|| {
            parse_version(&self.plan.version.name).map(|_| {
                self.plan
                    .version
                    .name
                    .trim_start_matches(['v', 'V'])
                    .to_string()
            })
        });
        self.recheck_python(recipe, root).await?;
        Ok(())
    }

    /// Creates (or adopts, if it exists empty) `dir` and marks it, creating and marking any
    /// missing ancestors first. Every marked directory is recorded before anything else
    /// happens in it.
    pub(crate) async fn claim(&mut self, dir: &Path) -> StepResult<()> {
        let job = self.job_id.to_string();
        let target = dir.to_path_buf();
        let (created, result) = match tokio::task::spawn_blocking(move || {
            let mut created = Vec::new();
            let r = claim_blocking(&target, &job, &mut created);
            (created, r)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => return Err(StepError::Failed(format!("worker thread failed: {e}"))),
        };
        for (p, role) in &created {
            let how = match role {
                MarkerRole::Root => "created",
                MarkerRole::Adopted => "claimed empty directory",
                MarkerRole::Parent => "created parent directory",
            };
            self.log(LogLevel::Info, format!("{how} {}", p.display()));
        }
        self.created.extend(created.into_iter().map(|(p, _)| p));
        result.map_err(StepError::Failed)
    }

    /// `git init` + fetch (URLs in order) + checkout of `refname` into the claimed `dir`.
    async fn fetch_into(
        &self,
        dir: &Path,
        src: &Source,
        refname: &str,
        kind: RefKind,
        span: (f64, f64),
    ) -> StepResult<String> {
        let git = &self.plan.git;
        let quick = self.cfg.timeouts.ls_remote();
        let refspec = match kind {
            RefKind::Tag => format!("+refs/tags/{refname}:refs/tags/{refname}"),
            RefKind::Branch => format!("+refs/heads/{refname}:refs/remotes/origin/{refname}"),
        };
        let used = self
            .init_and_fetch(
                dir,
                src,
                std::slice::from_ref(&refspec),
                refname,
                Some(span),
            )
            .await?;

        let checkout = match kind {
            RefKind::Tag => git_cmd(git, dir).args([
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                &format!("refs/tags/{refname}"),
            ]),
            RefKind::Branch => git_cmd(git, dir).args([
                "checkout",
                "-q",
                "-b",
                refname,
                "--track",
                &format!("origin/{refname}"),
            ]),
        };
        self.tool("git checkout", &checkout, quick, &mut |_| true)
            .await?;
        self.at(span.1);
        Ok(used)
    }
}

/// The refspec that fetches `name`: a tag, a branch, or a commit id.
fn refspec_for(refs: &RemoteRefs, name: &str) -> String {
    if refs.tags.iter().any(|(t, _)| t == name) {
        format!("+refs/tags/{name}:refs/tags/{name}")
    } else if refs.heads.iter().any(|(h, _)| h == name) {
        format!("+refs/heads/{name}:refs/remotes/origin/{name}")
    } else {
        // A commit id: fetched by id (the servers this launcher targets allow it).
        name.to_string()
    }
}

/// The local ref a refspec fills (`FETCH_HEAD` for a bare commit id).
fn local_ref(spec: &str) -> String {
    match spec.rsplit_once(':') {
        Some((_, dst)) => dst.to_string(),
        None => spec.to_string(),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// The standalone adapter to fetch: the named ref, else the newest release tag below 1.0,
/// else the `standalone` branch.
fn standalone_choice(refs: &RemoteRefs, named: Option<&str>) -> StepResult<(String, String)> {
    if let Some(n) = named {
        return Ok((n.to_string(), refspec_for(refs, n)));
    }
    if let Some((t, _)) = adapter::newest_standalone_tag(&refs.tags) {
        return Ok((t.clone(), refspec_for(refs, t)));
    }
    if refs.heads.iter().any(|(h, _)| h == "standalone") {
        return Ok(("standalone".to_string(), refspec_for(refs, "standalone")));
    }
    Err(StepError::Failed(
        "the adapter repository has no standalone adapter (no release tag below 1.0 and no \
         standalone branch); name one with adapter_version"
            .to_string(),
    ))
}

fn git_cmd(git: &Path, dir: &Path) -> Cmd {
    // English messages, so progress lines parse the same everywhere.
    Cmd::new(git).cwd(dir).env("LC_ALL", "C")
}

fn claim_blocking(
    target: &Path,
    job: &str,
    created: &mut Vec<(PathBuf, MarkerRole)>,
) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut cur = target.parent();
    while let Some(p) = cur {
        if fs::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    for p in missing.into_iter().rev() {
        match fs::create_dir(&p) {
            Ok(()) => {
                mark_new(&p, job, MarkerRole::Parent)?;
                created.push((p, MarkerRole::Parent));
            }
            // Someone else made it meanwhile: not ours, leave it unmarked.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(format!("cannot create {}: {e}", p.display())),
        }
    }
    match fs::create_dir(target) {
        Ok(()) => {
            mark_new(target, job, MarkerRole::Root)?;
            created.push((target.to_path_buf(), MarkerRole::Root));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(target).map_err(|e| e.to_string())?;
            let empty = meta.is_dir()
                && fs::read_dir(target)
                    .map_err(|e| e.to_string())?
                    .next()
                    .is_none();
            if !empty {
                return Err(format!(
                    "{} is no longer an empty directory; refusing to write into it",
                    target.display()
                ));
            }
            write_marker(target, job, MarkerRole::Adopted).map_err(|e| {
                format!(
                    "cannot claim {} (another deploy may be using it): {e}",
                    target.display()
                )
            })?;
            created.push((target.to_path_buf(), MarkerRole::Adopted));
            Ok(())
        }
        Err(e) => Err(format!("cannot create {}: {e}", target.display())),
    }
}

/// Marks a directory just created; if that fails the (empty) directory is removed again so
/// no unmarked directory of ours is left behind.
fn mark_new(dir: &Path, job: &str, role: MarkerRole) -> Result<(), String> {
    write_marker(dir, job, role).map_err(|e| {
        let _ = fs::remove_dir(dir);
        format!(
            "cannot write the ownership marker in {}: {e}",
            dir.display()
        )
    })
}

fn append_exclude(repo: &Path, lines: &[&str]) -> Result<(), String> {
    let info = repo.join(".git").join("info");
    fs::create_dir_all(&info).map_err(|e| format!("{}: {e}", info.display()))?;
    let path = info.join("exclude");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut body = String::from("# added by MaiLauncher\n");
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    f.write_all(body.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Turns git's `\r`-updated progress into a fraction and a few log lines per stage.
#[derive(Debug, Default)]
struct ProgressThrottle {
    stage: String,
    bucket: Option<u8>,
}

impl ProgressThrottle {
    /// Fraction of the transfer done, from "Receiving objects: NN%" (90 %) and
    /// "Resolving deltas: NN%" (the last 10 %).
    fn fraction(&self, line: &str) -> Option<f64> {
        let pct = f64::from(percent(line)?) / 100.0;
        if line.contains("Receiving objects") {
            Some(pct * 0.9)
        } else if line.contains("Resolving deltas") {
            Some(0.9 + pct * 0.1)
        } else {
            None
        }
    }

    /// Progress lines are logged when their stage changes, every 25 %, and when done;
    /// other lines always.
    fn worth_logging(&mut self, line: &str) -> bool {
        let Some(p) = percent(line) else {
            return true;
        };
        // The stage is the text before the percentage ("remote: Counting objects").
        let stage = line[..line.find('%').unwrap_or(0)]
            .rsplit_once(':')
            .map_or("", |(s, _)| s)
            .to_string();
        let bucket = p / 25;
        let log = stage != self.stage || self.bucket != Some(bucket) || line.contains("done");
        self.stage = stage;
        self.bucket = Some(bucket);
        log
    }
}

fn percent(line: &str) -> Option<u8> {
    let idx = line.find('%')?;
    let digits: String = line[..idx]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse::<u8>().ok().filter(|p| *p <= 100)
}

#[cfg(test)]
mod tests {
    use super::{ProgressThrottle, percent};

    #[test]
    fn progress_lines() {
        assert_eq!(percent("Receiving objects:  45% (450/1000)"), Some(45));
        assert_eq!(
            percent("remote: Counting objects: 100% (3/3), done."),
            Some(100)
        );
        assert_eq!(percent("From file:///x"), None);
        let mut t = ProgressThrottle::default();
        assert!(t.worth_logging("Receiving objects:   1% (1/100)"));
        assert!(!t.worth_logging("Receiving objects:   2% (2/100)"));
        assert!(!t.worth_logging("Receiving objects:  10% (10/100)"));
        assert!(t.worth_logging("Receiving objects:  25% (25/100)"));
        assert!(!t.worth_logging("Receiving objects:  49% (49/100)"));
        assert!(t.worth_logging("Receiving objects: 100% (100/100), done."));
        assert!(t.worth_logging("Resolving deltas:   0% (0/5)"));
        assert!(t.worth_logging("remote: Counting objects:   5% (1/20)"));
        assert!(!t.worth_logging("remote: Counting objects:  19% (2/20)"));
        assert!(t.worth_logging("remote: Compressing objects:   9% (2/20)"));
        let f = t.fraction("Resolving deltas:  50% (2/5)").unwrap_or(0.0);
        assert!((f - 0.95).abs() < 1e-9);
    }
}
