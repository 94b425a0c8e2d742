//! `cargo xtask bench deploy`: full deploys through the real engine (git clone, venvs,
//! requirements, configs) with uv and with pip, timed per phase; prints both and their
//! ratio.
//!
//! By default it deploys the test fixture (a local MaiBot-like repository and adapter)
//! whose requirements are a set of local wheels built here, so installers do real work
//! without the network. `--source PATH` deploys a local clone of real MaiBot instead; its
//! requirements then come from the configured package index (network).

use anyhow::Context;
use clap::Parser;
use launcher_core::deploy::{
    CancelToken, ComponentRequest, DeployConfig, DeployRequest, DeploySink, Deployer, LogLevel,
    Phase, Source, SourcesConfig, UseUv, ValidationContext,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "../../crates/launcher-core/tests/common/fixture.rs"]
mod fixture;

#[derive(Debug, Parser)]
pub struct Args {
    /// Deploys per installer (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Local wheels in the fixture's requirements.
    #[arg(long, default_value_t = 20)]
    wheels: usize,
    /// A local clone of real MaiBot to deploy instead of the fixture.
    #[arg(long)]
    source: Option<PathBuf>,
    /// A local clone of the napcat adapter (with `--source`; omitted: core only).
    #[arg(long)]
    adapter_source: Option<PathBuf>,
    /// Version (tag or branch) to deploy.
    #[arg(long)]
    version: Option<String>,
}

/// Records when each phase started and the installer lines.
#[derive(Default)]
struct TimingSink {
    phases: Mutex<Vec<(Phase, Instant)>>,
    lines: Mutex<Vec<String>>,
}

impl DeploySink for TimingSink {
    fn phase(&self, phase: Phase, _progress: u8) {
        let mut p = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if p.last().map(|(last, _)| *last) != Some(phase) {
            p.push((phase, Instant::now()));
        }
    }
    fn log(&self, level: LogLevel, line: &str) {
        if matches!(level, LogLevel::Error | LogLevel::Warning) || line.contains("uv") {
            let mut l = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            l.push(line.to_owned());
        }
    }
    fn component(&self, _: &str, _: &str, _: u8, _: &str) {}
}

struct Run {
    total: Duration,
    fetch: Duration,
    environment: Duration,
    /// The interpreter the deploy chose (the reference uses the same one).
    python: PathBuf,
    /// The adapter ref the deploy chose.
    adapter: Option<String>,
    /// Whether MaiBot's adapter ran as its own checkout (standalone).
    standalone_adapter: bool,
}

/// The same work done by hand with the bare tools, no launcher: `git clone --depth 1` of
/// the same refs, `uv venv`, `uv export --frozen` when the tree has `uv.lock`, and
/// `uv pip install` from the same index; for the standalone adapter its checkout, venv and
/// requirements. Returns the wall time.
fn bare_uv(
    src: &SourcesConfig,
    version: &str,
    adapter: Option<&str>,
    python: &Path,
    index: &str,
    env: &[(String, String)],
    work: &Path,
) -> anyhow::Result<Duration> {
    let run = |dir: &Path, prog: &str, args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new(prog)
            .args(args)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .with_context(|| prog.to_string())?;
        anyhow::ensure!(
            out.status.success(),
            "{prog} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let started = Instant::now();
    let trees: Vec<(PathBuf, &str, &str)> =
        std::iter::once((work.join("bot"), src.maibot.url.as_str(), version))
            .chain(adapter.map(|a| {
                (
                    work.join("bot").join("napcat-ada"),
                    src.adapter.url.as_str(),
                    a,
                )
            }))
            .collect();
    for (dir, url, refname) in &trees {
        let d = dir.display().to_string();
        run(
            work,
            "git",
            &["clone", "-q", "--depth", "1", "--branch", refname, url, &d],
        )?;
        let py = python.display().to_string();
        run(
            dir,
            "uv",
            &["venv", "--no-config", "-q", "--python", &py, ".venv"],
        )?;
        let reqs = if dir.join("uv.lock").is_file() {
            run(
                dir,
                "uv",
                &[
                    "export",
                    "--frozen",
                    "--no-dev",
                    "--no-emit-project",
                    "--no-config",
                    "--quiet",
                    "--format",
                    "requirements-txt",
                    "--output-file",
                    ".venv/pinned.txt",
                ],
            )?;
            ".venv/pinned.txt"
        } else {
            "requirements.txt"
        };
        if dir.join(reqs).is_file() {
            let mut args = vec![
                "pip",
                "install",
                "--no-config",
                "-q",
                "-r",
                reqs,
                "--python",
                ".venv/bin/python",
                "--index-url",
                index,
            ];
            // The same install the launcher does: a lock export is the whole closure.
            if reqs.ends_with("pinned.txt") {
                args.push("--no-deps");
            }
            run(dir, "uv", &args)?;
        }
    }
    Ok(started.elapsed())
}

fn uv_available() -> bool {
    std::process::Command::new("uv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pure-Python wheels `benchpkgNN`, each a package with a module of some size, built by
/// Python's zipfile with a correct RECORD (installers check it).
fn build_wheels(dir: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let script = r#"
import base64, hashlib, sys, zipfile
out, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    name = f"benchpkg{i:02d}"
    files = {
        f"{name}/__init__.py": ("VALUE = %d\n" % i + "".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(200))).encode(),
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{name}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: mailauncher-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{name}-1.0.dist-info/RECORD,,\n"
    files[f"{name}-1.0.dist-info/RECORD"] = record.encode()
    with zipfile.ZipFile(f"{out}/{name}-1.0-py3-none-any.whl", "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
"#;
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(n.to_string())
        .status()
        .context("python3 is needed to build the fixture wheels")?;
    anyhow::ensure!(st.success(), "building the fixture wheels failed");
    Ok((0..n)
        .map(|i| dir.join(format!("benchpkg{i:02}-1.0-py3-none-any.whl")))
        .collect())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn deploy_once(
    cfg: &DeployConfig,
    version: &str,
    with_adapter: bool,
    work: &Path,
) -> anyhow::Result<Run> {
    let install = work.join("bot");
    let mut components = vec![ComponentRequest {
        kind: "main".into(),
        path: None,
        port: None,
    }];
    if with_adapter {
        components.push(ComponentRequest {
            kind: "napcat-ada".into(),
            path: None,
            port: Some(u32::from(free_port()?)),
        });
    }
    let req = DeployRequest {
        instance_name: "bench".into(),
        install_path: install.display().to_string(),
        version: version.into(),
        host: "127.0.0.1".into(),
        port: u32::from(free_port()?),
        components,
        eula_accepted: true,
        adapter_version: None,
        webui_port: None,
        telemetry: false,
    };
    let ctx = ValidationContext {
        forbidden_roots: Vec::new(),
        ports_in_use: HashSet::new(),
        home: Some(work.to_path_buf()),
        policy: Default::default(),
    };
    let deployer = Deployer::new(cfg.clone());
    let plan = deployer
        .validate(&req, &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("validation: {e}"))?;
    // The bench measures deploys, not downloads: it needs an interpreter already there.
    let python = plan
        .python
        .found()
        .map(|p| p.path.clone())
        .context("no installed Python satisfies this version; the bench does not provision")?;
    let sink = TimingSink::default();
    let started = Instant::now();
    let res = deployer
        .run(plan, "bench", &sink, &CancelToken::new())
        .await;
    let total = started.elapsed();
    let out = match res {
        Ok(o) => o,
        Err(e) => {
            let lines = sink.lines.lock().map(|l| l.join("\n")).unwrap_or_default();
            anyhow::bail!("deploy failed: {e}\n{lines}");
        }
    };
    let phases = sink.phases.lock().map(|p| p.clone()).unwrap_or_default();
    let span = |which: Phase| {
        let i = phases.iter().position(|(p, _)| *p == which)?;
        let end = phases.get(i + 1).map_or(started + total, |(_, t)| *t);
        Some(end - phases[i].1)
    };
    Ok(Run {
        total,
        fetch: span(Phase::Fetch).unwrap_or_default(),
        environment: span(Phase::Environment).unwrap_or_default(),
        python,
        adapter: out.adapter_version.clone(),
        standalone_adapter: out.components.len() > 1,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    // The fixture must outlive every run that clones from it.
    let fx;
    let (sources, version, with_adapter, what) = match &args.source {
        Some(src) => {
            let src = src.canonicalize().context("--source")?;
            let adapter = args.adapter_source.as_ref().map(|p| p.canonicalize());
            let adapter = adapter.transpose().context("--adapter-source")?;
            let sources = SourcesConfig {
                maibot: Source::new(fixture::file_url(&src), Vec::<String>::new()),
                adapter: Source::new(
                    adapter
                        .as_deref()
                        .map(fixture::file_url)
                        .unwrap_or_default(),
                    Vec::<String>::new(),
                ),
            };
            let version = args.version.clone().unwrap_or_else(|| "main".into());
            let what = format!("MaiBot from {} at {version}", src.display());
            (sources, version, adapter.is_some(), what)
        }
        None => {
            let wheels = build_wheels(&root.path().join("wheels"), args.wheels)?;
            let reqs: String = wheels
                .iter()
                .map(|w| format!("{}\n", w.display()))
                .collect();
            fx = fixture::Fixture::build_with(fixture::FixtureOptions {
                maibot_requirements: reqs,
                ..Default::default()
            });
            let version = args.version.clone().unwrap_or_else(|| "0.10.1".into());
            let what = format!(
                "the fixture at {version} (core + adapter, {} local wheels)",
                args.wheels
            );
            (fx.sources(), version, true, what)
        }
    };
    println!("deploying {what}, {} run(s) per installer", args.runs);
    let mut installers = vec![("pip", UseUv::Never)];
    if uv_available() {
        installers.insert(0, ("uv", UseUv::Always));
    } else {
        println!("uv is not installed: only pip is measured (pip install uv to compare)");
    }
    let mut medians = Vec::new();
    for (name, use_uv) in installers {
        // uv runs against its own cache: cold for the first deploy (a fresh cache
        // directory), warm for the rest; the bare reference uses the same caches.
        let cold_cache = root.path().join(format!("uv-cache-cold-{name}"));
        let warm_cache = root.path().join(format!("uv-cache-warm-{name}"));
        let (mut totals, mut envs, mut fetches, mut bares) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..=args.runs {
            let cache = if i == 0 { &cold_cache } else { &warm_cache };
            let env = vec![("UV_CACHE_DIR".to_string(), cache.display().to_string())];
            let cfg = DeployConfig {
                sources: sources.clone(),
                use_uv,
                tool_env: env.clone(),
                ..DeployConfig::default()
            };
            let work = root.path().join(format!("{name}-{i}"));
            std::fs::create_dir_all(&work)?;
            let r = deploy_once(&cfg, &version, with_adapter, &work).await?;
            std::fs::remove_dir_all(&work)?;
            let bare = if use_uv == UseUv::Always {
                // The reference on a cold cache gets a fresh one of its own.
                let env = if i == 0 {
                    vec![(
                        "UV_CACHE_DIR".to_string(),
                        root.path()
                            .join(format!("uv-cache-cold-bare-{name}"))
                            .display()
                            .to_string(),
                    )]
                } else {
                    env.clone()
                };
                std::fs::create_dir_all(&work)?;
                let adapter = if r.standalone_adapter {
                    r.adapter.as_deref()
                } else {
                    None
                };
                let b = bare_uv(
                    &sources,
                    &version,
                    adapter,
                    &r.python,
                    &cfg.index_url,
                    &env,
                    &work,
                )?;
                std::fs::remove_dir_all(&work)?;
                Some(b)
            } else {
                None
            };
            if i == 0 {
                println!(
                    "{name:>3}: cold cache: deploy {:.2} s (environment {:.2} s){}",
                    secs(r.total),
                    secs(r.environment),
                    bare.map(|b| format!(
                        "; bare uv, cold cache: {:.2} s (ratio {:.2})",
                        secs(b),
                        secs(r.total) / secs(b).max(1e-9)
                    ))
                    .unwrap_or_default()
                );
                // The cold run warms the warm cache too.
                let env = vec![("UV_CACHE_DIR".to_string(), warm_cache.display().to_string())];
                let cfg = DeployConfig {
                    sources: sources.clone(),
                    use_uv,
                    tool_env: env,
                    ..DeployConfig::default()
                };
                let work = root.path().join(format!("{name}-warmup"));
                std::fs::create_dir_all(&work)?;
                deploy_once(&cfg, &version, with_adapter, &work).await?;
                std::fs::remove_dir_all(&work)?;
                continue;
            }
            totals.push(r.total);
            envs.push(r.environment);
            fetches.push(r.fetch);
            bares.extend(bare);
        }
        let (t, e, f) = (median(totals), median(envs), median(fetches));
        println!(
            "{name:>3}: warm cache: deploy {:.2} s (fetch {:.2} s, environment {:.2} s), median of {}",
            secs(t),
            secs(f),
            secs(e),
            args.runs
        );
        if !bares.is_empty() {
            let b = median(bares);
            println!(
                "     bare uv (git clone + uv venv + uv export + uv pip install, same trees, index and cache): {:.2} s; launcher/bare {:.2} (target <= 1.5)",
                secs(b),
                secs(t) / secs(b).max(1e-9)
            );
        }
        medians.push((name, t, e));
    }
    if let [(_, uv_t, uv_e), (_, pip_t, pip_e)] = medians[..] {
        println!(
            "pip/uv: whole deploy {:.1}x, environment phase {:.1}x",
            secs(pip_t) / secs(uv_t).max(1e-9),
            secs(pip_e) / secs(uv_e).max(1e-9)
        );
    }
    Ok(())
}
