//! Interpreter discovery, `requires-python`, and what validation and the runner do with
//! them, with real interpreters found on this machine (symlinked into pyenv-, asdf- and
//! uv-style trees built in temporary directories) and real MaiBot `pyproject.toml` files.
//! Nothing here touches the network: provisioning runs a stand-in `uv` script, because the
//! real `uv python install` downloads Python builds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::RecordingSink;
use common::fixture::Fixture;
use launcher_core::deploy::python::{
    self, Interpreter, RequiresPython, SearchRoots, Source, discover,
};
use launcher_core::deploy::{
    CancelToken, ComponentRequest, DeployConfig, DeployRequest, Deployer, Installer, PythonChoice,
    UseUv, ValidationContext, ValidationError,
};
use std::collections::HashSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips loudly, or fails under CI, when this machine lacks what a test needs.
fn require<T>(what: Option<T>, missing: &str) -> Option<T> {
    if what.is_none() {
        assert!(!in_ci(), "CI=true and {missing}");
        eprintln!("SKIP: {missing}");
    }
    what
}

fn version_of(p: &Path) -> Option<(u32, u32, u32)> {
    let out = std::process::Command::new(p)
        .args([
            "-c",
            "import sys; print('%d %d %d' % tuple(sys.version_info[:3]))",
        ])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    let v: Vec<u32> = s
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match v.as_slice() {
        [a, b, c] if out.status.success() => Some((*a, *b, *c)),
        _ => None,
    }
}

/// Real interpreters on this machine with their versions (absolute paths, each real
/// binary once): pyenv's version directories, then `/usr/bin/python3*`.
fn host_interpreters() -> Vec<(PathBuf, (u32, u32, u32))> {
    let mut cands = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(root) = pyenv
        && let Ok(rd) = std::fs::read_dir(root.join("versions"))
    {
        cands.extend(rd.flatten().map(|e| e.path().join("bin/python3")));
    }
    cands.push(PathBuf::from("/usr/bin/python3"));
    cands.push(PathBuf::from("/usr/local/bin/python3"));
    let mut seen = HashSet::new();
    cands
        .into_iter()
        .filter(|p| p.exists() && seen.insert(std::fs::canonicalize(p).unwrap()))
        .filter_map(|p| version_of(&p).map(|v| (p, v)))
        .collect()
}

fn any_python3() -> Option<(PathBuf, (u32, u32, u32))> {
    require(
        host_interpreters().into_iter().find(|(_, v)| v.0 == 3),
        "no Python 3 interpreter on this machine",
    )
}

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn link(target: &Path, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(target, at).unwrap();
}

/// A script that prints kilobytes to stderr and fails, like a pyenv shim naming a
/// version that is not installed.
const NOISY: &str = "#!/bin/sh\ni=0\nwhile [ $i -lt 400 ]; do echo \"pyenv: version \\`3.9.99' is not installed (set by /x/.python-version) $i\" >&2; i=$((i+1)); done\nexit 127\n";

#[tokio::test]
async fn discovery_finds_pyenv_asdf_and_uv_trees_and_skips_shims_and_noise() {
    let Some((real, version)) = any_python3() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pyenv = tmp.path().join("pyenv");
    let fake = pyenv.join("versions/3.12.7/bin/python3");
    link(&real, &fake);
    // A directory without bin/python3 (pyenv keeps such leftovers) is ignored.
    std::fs::create_dir_all(pyenv.join("versions/system")).unwrap();
    let shims = pyenv.join("shims");
    script(&shims.join("python3"), NOISY);
    let noisy_dir = tmp.path().join("noisy-bin");
    script(&noisy_dir.join("python3"), NOISY);

    let roots = SearchRoots {
        path: vec![shims.clone(), noisy_dir.clone()],
        pyenv_root: Some(pyenv.clone()),
        ..SearchRoots::default()
    };
    let found = discover(None, &roots).await;
    assert_eq!(
        found,
        vec![Interpreter {
            path: fake.clone(),
            version,
            source: Source::Pyenv,
        }],
        "only the pyenv tree's interpreter answers"
    );

    // The broken candidate's probe says why in one short line, not the kilobytes it printed.
    let e = python::probe(&noisy_dir.join("python3")).await.unwrap_err();
    assert!(e.contains("exit code 127"), "{e}");
    assert!(e.len() < 400, "{} bytes: {e}", e.len());

    // asdf and uv trees, each on its own.
    let asdf = tmp.path().join("asdf");
    let in_asdf = asdf.join("installs/python/3.12.7/bin/python3");
    link(&real, &in_asdf);
    let uvdir = tmp.path().join("uv-python");
    let in_uv = uvdir.join("cpython-3.12.7-linux-x86_64-gnu/bin/python3");
    link(&real, &in_uv);
    for (roots, path, source) in [
        (
            SearchRoots {
                asdf_dir: Some(asdf),
                ..SearchRoots::default()
            },
            in_asdf,
            Source::Asdf,
        ),
        (
            SearchRoots {
                uv_python_dir: Some(uvdir),
                ..SearchRoots::default()
            },
            in_uv,
            Source::Uv,
        ),
    ] {
        let found = discover(None, &roots).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].source, &found[0].path), (source, &path));
    }

    // A configured interpreter comes first; a broken configured one is simply absent.
    let found = discover(Some(&real), &roots).await;
    assert_eq!(found[0].source, Source::Configured);
    let found = discover(Some(&noisy_dir.join("python3")), &roots).await;
    assert!(found.iter().all(|i| i.source != Source::Configured));
}

#[tokio::test]
async fn one_interpreter_reached_several_ways_is_listed_once() {
    let Some((real, _)) = any_python3() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    link(&real, &bin.join("python3"));
    link(&bin.join("python3"), &bin.join("python"));
    link(&real, &bin.join("python3.12"));
    let pyenv = tmp.path().join("pyenv");
    link(&real, &pyenv.join("versions/3.12.7/bin/python3"));
    let roots = SearchRoots {
        path: vec![bin.clone()],
        pyenv_root: Some(pyenv),
        system_dirs: vec![bin.clone()],
        ..SearchRoots::default()
    };
    let found = discover(None, &roots).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].source, Source::Path);
    assert_eq!(found[0].path, bin.join("python3"));
}

#[tokio::test]
async fn this_host_has_a_python_for_maibot_1x() {
    let found = discover(None, &SearchRoots::from_env()).await;
    for i in &found {
        eprintln!(
            "{:<10} {} {}",
            i.source.as_str(),
            i.version_string(),
            i.path.display()
        );
    }
    let need = RequiresPython::parse(">=3.12").unwrap();
    let Some(chosen) = require(
        python::choose(&found, &need),
        "no Python >= 3.12 found by discovery; MaiBot 1.x cannot be deployed here",
    ) else {
        return;
    };
    assert!(chosen.version >= (3, 12, 0));
    // The newest one that satisfies.
    assert!(found.iter().all(|i| i.version <= chosen.version));
}

fn upstream() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream/maibot");
    require(
        p.is_dir().then_some(p),
        "shared/upstream/maibot is absent; real pyproject files not tested",
    )
}

#[test]
fn real_maibot_pyprojects() {
    let Some(up) = upstream() else { return };
    for (version, want, older_ok) in [
        ("0.12.3", ">=3.10", true),
        ("1.0.8", ">=3.12", false),
        ("1.2.1", ">=3.12", false),
    ] {
        let spec = RequiresPython::from_pyproject(&up.join(version))
            .unwrap()
            .unwrap_or_else(|| panic!("{version}: no requires-python"));
        assert_eq!(spec.to_string(), want, "{version}");
        assert_eq!(spec.matches((3, 11, 7)), older_ok, "{version}");
        assert!(spec.matches((3, 12, 0)), "{version}");
        assert!(!spec.matches((3, 9, 18)), "{version}");
        assert_eq!(spec.install_request().as_deref(), Some("3.12"));
    }
    // A checkout without pyproject.toml says nothing; a broken one is an error.
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(RequiresPython::from_pyproject(tmp.path()).unwrap(), None);
    std::fs::write(tmp.path().join("pyproject.toml"), "[project\n").unwrap();
    assert!(RequiresPython::from_pyproject(tmp.path()).is_err());
}

fn request(install: &Path, version: &str) -> DeployRequest {
    DeployRequest {
        instance_name: "py-test".to_string(),
        install_path: install.display().to_string(),
        version: version.to_string(),
        host: "127.0.0.1".to_string(),
        port: u32::from(common::free_port()),
        components: vec![ComponentRequest {
            kind: "main".to_string(),
            path: None,
            port: None,
        }],
        eula_accepted: true,
        adapter_version: None,
        webui_port: None,
        telemetry: false,
    }
}

fn ctx(home: &Path) -> ValidationContext {
    ValidationContext {
        forbidden_roots: Vec::new(),
        ports_in_use: HashSet::new(),
        home: Some(home.to_path_buf()),
        policy: Default::default(),
    }
}

/// Discovery confined to a pyenv-style tree holding only interpreters older than 3.12
/// (none at all when the machine has none).
fn old_only_roots(tmp: &Path) -> (SearchRoots, Vec<String>) {
    let pyenv = tmp.join("old-pyenv");
    let mut names = Vec::new();
    for (p, v) in host_interpreters()
        .into_iter()
        .filter(|(_, v)| (v.0, v.1) < (3, 12))
    {
        let at = pyenv.join(format!("versions/{}.{}.{}/bin/python3", v.0, v.1, v.2));
        link(&p, &at);
        names.push(at.display().to_string());
    }
    std::fs::create_dir_all(pyenv.join("versions")).unwrap();
    let roots = SearchRoots {
        pyenv_root: Some(pyenv),
        ..SearchRoots::default()
    };
    (roots, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_satisfying_python_is_refused_with_what_to_install() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let (roots, old) = old_only_roots(work.path());
    let cfg = DeployConfig {
        sources: fx.sources(),
        use_uv: UseUv::Never,
        provision_python: false,
        python_search: Some(roots.clone()),
        ..DeployConfig::default()
    };
    let d = Deployer::new(cfg.clone());
    let install = work.path().join("bot");
    let e = d
        .validate(&request(&install, "1.2.1"), &ctx(work.path()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "python_unavailable");
    let ValidationError::PythonUnavailable { need, found, hint } = &e else {
        panic!("{e}");
    };
    assert_eq!(need, "MaiBot 1.2.1 needs Python >=3.12");
    assert_eq!(found.len(), old.len(), "{found:?} vs {old:?}");
    for o in &old {
        assert!(
            found.iter().any(|f| f.contains(o.as_str())),
            "{o} not named: {found:?}"
        );
    }
    let msg = e.to_string();
    assert!(
        msg.starts_with("MaiBot 1.2.1 needs Python >=3.12; found "),
        "{msg}"
    );
    assert!(msg.contains("uv python install 3.12"), "{msg}");
    assert!(msg.contains("pyenv install 3.12"), "{msg}");
    assert!(hint.contains("deploy.python"), "{hint}");

    // Provisioning allowed but no uv (pip installer): still refused, and the hint says uv
    // would have done it.
    let d = Deployer::new(DeployConfig {
        provision_python: true,
        ..cfg.clone()
    });
    let e = d
        .validate(&request(&install, "1.2.1"), &ctx(work.path()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "python_unavailable");
    assert!(e.to_string().contains("with uv installed"), "{e}");

    // 0.x needs only 3.10: an old interpreter is enough when the machine has one.
    let found = discover(None, &roots).await;
    if found.iter().any(|i| i.version >= (3, 10, 0)) {
        let plan = Deployer::new(cfg)
            .validate(&request(&install, "0.10.1"), &ctx(work.path()))
            .await
            .unwrap();
        assert!(plan.python.found().unwrap().version >= (3, 10, 0));
    }
}

/// A stand-in for uv that records its calls: `python install` logs like uv and records
/// the mirror it was given; `python find` names `target`; `venv` uses `python -m venv`;
/// `export` writes an empty pinned list.
fn fake_uv(dir: &Path, target: &Path) -> PathBuf {
    let log = dir.join("uv-calls.log");
    let uv = dir.join("bin/uv");
    script(
        &uv,
        &format!(
            r#"#!/bin/sh
echo "$* mirror=${{UV_PYTHON_INSTALL_MIRROR:-none}} job=${{MAILAUNCHER_JOB_ID:-none}}" >> '{log}'
case "$1 $2" in
  "--version "*) echo "uv 0.0.0-stand-in" ;;
  "python install") echo "Searching for Python versions matching: Python $3" >&2; echo "Installed Python $3 in 0.01s" >&2 ;;
  "python find") echo '{target}' ;;
  "venv "*)
    py=; prev=; for a; do [ "$prev" = --python ] && py=$a; prev=$a; last=$a; done
    exec "$py" -m venv "$last" ;;
  "export "*) for a; do last=$a; done; : > "$last" ;;
  *) echo "stand-in uv: unsupported $*" >&2; exit 2 ;;
esac
"#,
            log = log.display(),
            target = target.display()
        ),
    );
    uv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_python_is_provisioned_with_uv_as_a_visible_step() {
    let Some((py312, v312)) = require(
        host_interpreters()
            .into_iter()
            .find(|(_, v)| (v.0, v.1) >= (3, 12)),
        "no Python >= 3.12 on this machine; provisioning not tested",
    ) else {
        return;
    };
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let (roots, _) = old_only_roots(work.path());
    let uv = fake_uv(work.path(), &py312);
    let cfg = DeployConfig {
        sources: fx.sources(),
        use_uv: UseUv::Always,
        uv: Some(uv.clone()),
        python_install_mirror: Some("file:///srv/python-mirror".to_string()),
        python_search: Some(roots),
        // The stand-in uv has no `pip install`; the fixture's requirements are empty.
        install_command: Some(vec!["{python}".into(), "-c".into(), "import sys".into()]),
        ..DeployConfig::default()
    };
    let d = Deployer::new(cfg);
    let install = work.path().join("bot1x");
    let plan = d
        .validate(&request(&install, "1.2.1"), &ctx(work.path()))
        .await
        .unwrap();
    assert_eq!(plan.installer, Installer::Uv(uv.clone()));
    match &plan.python {
        PythonChoice::Provision { request, need, .. } => {
            assert_eq!(request, "3.12");
            assert_eq!(need.to_string(), ">=3.12");
        }
        other => panic!("expected a provision, got {other:?}"),
    }
    let sink = RecordingSink::default();
    let out = d
        .run(plan, "job-py", &sink, &CancelToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sink.dump()));
    let logs = sink.dump();
    assert!(
        sink.has_log("no Python on this host satisfies >=3.12; installing Python 3.12 with uv"),
        "{logs}"
    );
    assert!(sink.has_log("python install 3.12"), "{logs}");
    assert!(sink.has_log("Installed Python 3.12"), "{logs}");
    let v = format!("{}.{}.{}", v312.0, v312.1, v312.2);
    assert!(sink.has_log(&format!("Python {v} installed: ")), "{logs}");
    // Provisioning comes after the fetch and before the venv is made.
    let pos = |needle: &str| {
        sink.logs()
            .iter()
            .position(|(_, m)| m.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not logged:\n{logs}"))
    };
    assert!(pos("phase 3/6") < pos("installing Python 3.12 with uv"));
    assert!(pos("Installed Python 3.12") < pos("/uv venv "));

    let calls = std::fs::read_to_string(work.path().join("uv-calls.log")).unwrap();
    assert!(
        calls.contains("python install 3.12 mirror=file:///srv/python-mirror job=job-py"),
        "{calls}"
    );
    assert!(calls.contains("python find 3.12"), "{calls}");
    let venv_py = install.join(".venv/bin/python");
    assert_eq!(out.components[0].python, venv_py);
    assert_eq!(version_of(&venv_py), Some(v312));
}
