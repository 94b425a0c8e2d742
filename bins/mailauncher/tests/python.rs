//! Black-box: the launcher and Python interpreters. `mailauncher doctor` lists what it
//! finds (a pyenv-style tree built here around a real interpreter), checks local and
//! unreachable remotes, and creates nothing; a deploy no interpreter can serve is refused
//! with HTTP 424 `python_unavailable`. No test reaches the internet: sources are a local
//! bare repository and `127.0.0.1:9`, the package index a one-shot local HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../../crates/launcher-core/tests/common/fixture.rs"]
mod fixture;

use fixture::Fixture;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn version_of(p: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(p)
        .args([
            "-c",
            "import sys; print('%d %d %d' % tuple(sys.version_info[:3]))",
        ])
        .output()
        .ok()?;
    let v: Vec<u32> = String::from_utf8(out.stdout)
        .ok()?
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match v.as_slice() {
        [a, b, c] if out.status.success() => Some((*a, *b, *c)),
        _ => None,
    }
}

/// A real Python 3 on this machine, absolute: pyenv's newest first, then `/usr/bin/python3`.
fn real_python() -> Option<(PathBuf, (u32, u32, u32))> {
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
    let best = cands
        .into_iter()
        .filter_map(|p| version_of(&p).map(|v| (p, v)))
        .filter(|(_, v)| v.0 == 3)
        .max_by_key(|(_, v)| *v);
    if best.is_none() {
        assert!(!in_ci(), "CI=true and no Python 3 interpreter found");
        eprintln!("SKIP: no Python 3 interpreter on this machine");
    }
    best
}

fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every path under `root`, relative.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Answers one HTTP request with 200 and returns the request line it got.
fn one_shot_index() -> (u16, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        line.trim().to_owned()
    });
    (port, h)
}

#[test]
fn doctor_lists_interpreters_checks_remotes_and_creates_nothing() {
    let Some((real, version)) = real_python() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let fake = h.join("pyenv/versions/3.12.7/bin/python3");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    symlink(&real, &fake).unwrap();
    std::fs::create_dir_all(h.join("empty-bin")).unwrap();
    let repo = h.join("maibot.git");
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo)
            .status()
            .unwrap()
            .success()
    );
    let (index_port, index) = one_shot_index();
    let before = tree(h);
    let data = h.join("data");

    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mailauncher"))
        .arg("doctor")
        .env("HOME", h)
        // Nothing on PATH: interpreters come from the pyenv tree (and /usr{,/local}/bin).
        .env("PATH", h.join("empty-bin"))
        .env("PYENV_ROOT", h.join("pyenv"))
        .env("ASDF_DATA_DIR", h.join("no-asdf"))
        .env("UV_PYTHON_INSTALL_DIR", h.join("no-uv"))
        .env_remove("XDG_DATA_HOME")
        .env_remove("MAILAUNCHER_DATA_DIR")
        .env_remove("LOGS_DIR")
        .env("MAILAUNCHER_STORAGE__DATA_DIR", &data)
        .env("MAILAUNCHER_SERVER__PORT", free_port().to_string())
        .env("MAILAUNCHER_DEPLOY__GIT", which("git"))
        .env("MAILAUNCHER_DEPLOY__UV", h.join("no-uv/uv"))
        .env("MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__URL", &repo)
        .env(
            "MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__MIRRORS",
            "[\"http://127.0.0.1:9/maibot.git\"]",
        )
        .env(
            "MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__URL",
            "http://127.0.0.1:9/adapter.git",
        )
        .env("MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__MIRRORS", "[]")
        .env(
            "MAILAUNCHER_DEPLOY__INDEX_URL",
            format!("http://127.0.0.1:{index_port}/simple"),
        )
        .env(
            "MAILAUNCHER_DEPLOY__EXTRA_INDEX_URL",
            "http://127.0.0.1:9/simple",
        )
        .output()
        .unwrap();
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n--- stderr ---\n{stderr}");

    // The pyenv-style interpreter, with its version, its source and what it runs.
    let v = format!("{}.{}.{}", version.0, version.1, version.2);
    let line = stdout
        .lines()
        .find(|l| l.contains(&fake.display().to_string()))
        .unwrap_or_else(|| panic!("{} not listed:\n{all}", fake.display()));
    assert!(line.contains(&v) && line.contains("pyenv"), "{line}");
    assert!(line.contains("MaiBot 0.x"), "{line}");
    assert_eq!(line.contains("MaiBot 1.2"), version >= (3, 12, 0), "{line}");
    if version >= (3, 12, 0) {
        assert!(
            stdout.contains("[ok]   MaiBot 1.2: needs Python >=3.12"),
            "{all}"
        );
    }
    // Without uv nothing can be provisioned; the advice names what to install.
    assert!(stdout.contains("[warn] uv:"), "{all}");
    assert!(!stdout.contains("install python3.12"), "old advice:\n{all}");

    // Remotes: the local repository answers, the closed port does not.
    assert!(
        stdout.contains(&format!(
            "[ok]   git source maibot: {} answers",
            repo.display()
        )),
        "{all}"
    );
    assert!(
        stdout.contains("[warn] git source maibot: http://127.0.0.1:9/maibot.git"),
        "{all}"
    );
    assert!(
        stdout.contains("[FAIL] git source adapter: http://127.0.0.1:9/adapter.git"),
        "{all}"
    );
    assert!(
        stdout.contains(&format!(
            "[ok]   package index: http://127.0.0.1:{index_port}/simple: HTTP 200 for /simple/pip/"
        )),
        "{all}"
    );
    assert_eq!(index.join().unwrap(), "GET /simple/pip/ HTTP/1.1");
    assert!(
        stdout.contains("[FAIL] package index: http://127.0.0.1:9/simple"),
        "{all}"
    );
    assert!(
        stdout.contains("does not exist yet; the server creates it at first start"),
        "{all}"
    );
    assert_eq!(out.status.code(), Some(1), "problems were found:\n{all}");
    assert!(took < Duration::from_secs(15), "doctor took {took:?}");

    // Nothing was created: no data directory, no database, nothing else under HOME.
    assert!(!data.exists(), "doctor created {}", data.display());
    assert_eq!(tree(h), before, "doctor changed HOME:\n{all}");
}

#[test]
fn deploy_no_interpreter_can_serve_is_refused_with_424() {
    let fx = Fixture::build();
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    std::fs::create_dir_all(h.join("empty-bin")).unwrap();
    // Discovery sees nothing but the system directories; a host whose /usr/bin has a
    // Python >= 3.12 cannot show the refusal.
    let system_new = (12..=15).any(|m| {
        ["/usr/bin", "/usr/local/bin"]
            .iter()
            .any(|d| Path::new(&format!("{d}/python3.{m}")).exists())
    });
    if system_new {
        eprintln!("SKIP: a system Python >= 3.12 exists; the 424 refusal cannot be shown here");
        return;
    }
    let git = which("git").display().to_string();
    let env = [
        ("PATH", h.join("empty-bin").display().to_string()),
        ("PYENV_ROOT", h.join("no-pyenv").display().to_string()),
        ("ASDF_DATA_DIR", h.join("no-asdf").display().to_string()),
        (
            "UV_PYTHON_INSTALL_DIR",
            h.join("no-uv").display().to_string(),
        ),
        ("MAILAUNCHER_DEPLOY__GIT", git),
        ("MAILAUNCHER_DEPLOY__USE_UV", "never".into()),
        ("MAILAUNCHER_DEPLOY__PROVISION_PYTHON", "false".into()),
        ("MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__URL", fx.maibot_url()),
        ("MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__MIRRORS", "[]".into()),
        (
            "MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__URL",
            fx.adapter_url(),
        ),
        ("MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__MIRRORS", "[]".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = common::spawn_app_at(home, &[], &env);
    let install = app.home.path().join("MaiBot/bot1x");
    let r = app.post(
        "/deploy/deploy",
        &json!({
            "instance_name": "needs-312", "version": "1.2.1",
            "install_path": install, "port": free_port(), "host": "127.0.0.1",
            "token": "", "install_services": [],
        }),
    );
    assert_eq!(r.status, 424, "{}", r.body);
    assert_eq!(r.body["code"], "python_unavailable", "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("MaiBot 1.2.1 needs Python >=3.12; found "),
        "{detail}"
    );
    assert!(detail.contains("uv python install 3.12"), "{detail}");
    assert!(detail.contains("or set deploy.python"), "{detail}");
    assert!(
        !install.exists(),
        "a refused deploy created {}",
        install.display()
    );
}
