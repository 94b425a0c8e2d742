//! Shared test helpers: the fixture repositories, a recording sink, tool discovery.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod fixture;

use launcher_core::deploy::{DeploySink, LogLevel, Phase};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Everything a sink was told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Phase(Phase, u8),
    Log(LogLevel, String),
    Component(String, String, u8, String),
}

/// A sink that keeps every call.
#[derive(Debug, Default)]
pub struct RecordingSink {
    pub events: Mutex<Vec<Event>>,
}

impl DeploySink for RecordingSink {
    fn phase(&self, phase: Phase, progress: u8) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Phase(phase, progress));
    }
    fn log(&self, level: LogLevel, line: &str) {
        assert!(!line.contains('\n'), "log line with a newline: {line:?}");
        self.events
            .lock()
            .unwrap()
            .push(Event::Log(level, line.to_string()));
    }
    fn component(&self, name: &str, status: &str, progress: u8, message: &str) {
        self.events.lock().unwrap().push(Event::Component(
            name.to_string(),
            status.to_string(),
            progress,
            message.to_string(),
        ));
    }
}

impl RecordingSink {
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Log(l, m) => Some((*l, m.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs().iter().any(|(_, m)| m.contains(needle))
    }

    pub fn phases(&self) -> Vec<(Phase, u8)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Phase(p, n) => Some((*p, *n)),
                _ => None,
            })
            .collect()
    }

    /// Last status reported for a component.
    pub fn last_status(&self, name: &str) -> Option<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Component(n, s, _, _) if n == name => Some(s.clone()),
                _ => None,
            })
    }

    pub fn dump(&self) -> String {
        self.logs()
            .iter()
            .map(|(l, m)| format!("[{}] {m}", l.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Progress values never decrease and phases never go back.
    pub fn assert_monotonic(&self) {
        let ph = self.phases();
        for w in ph.windows(2) {
            assert!(w[1].1 >= w[0].1, "progress went backwards: {w:?}");
            assert!(w[1].0 >= w[0].0, "phase went backwards: {w:?}");
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `uv` is on PATH.
pub fn uv_available() -> bool {
    Command::new("uv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_version(p: &std::path::Path) -> Option<(u32, u32)> {
    let out = Command::new(p)
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// Some interpreter >= 3.12 on this machine (PATH, then pyenv), for the 1.x layout.
pub fn python_at_least(min: (u32, u32)) -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = ["python3", "python3.14", "python3.13", "python3.12"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(root) = pyenv_root
        && let Ok(rd) = std::fs::read_dir(root.join("versions"))
    {
        let mut vs: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("bin/python3")).collect();
        vs.sort();
        cands.extend(vs);
    }
    cands
        .into_iter()
        .find(|c| python_version(c).is_some_and(|v| v >= min))
}

/// A PEP 503 package index on disk (`file://…/simple`) holding one pure-Python wheel
/// `name==1.0`, built with Python's zipfile and a correct RECORD; both uv and pip install
/// from it offline.
pub fn local_index(dir: &std::path::Path, name: &str) -> String {
    let simple = dir.join("simple");
    let pkg = simple.join(name);
    std::fs::create_dir_all(&pkg).unwrap();
    let script = r#"
import base64, hashlib, sys, zipfile
out, name = sys.argv[1], sys.argv[2]
files = {
    f"{name}/__init__.py": b"VALUE = 1\n",
    f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
    f"{name}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: mailauncher-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{path},sha256={digest},{len(data)}\n"
record += f"{name}-1.0.dist-info/RECORD,,\n"
files[f"{name}-1.0.dist-info/RECORD"] = record.encode()
whl = f"{out}/{name}-1.0-py3-none-any.whl"
with zipfile.ZipFile(whl, "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
sha = hashlib.sha256(open(whl, "rb").read()).hexdigest()
open(f"{out}/index.html", "w").write(
    f'<!DOCTYPE html><html><body><a href="{name}-1.0-py3-none-any.whl#sha256={sha}">{name}-1.0-py3-none-any.whl</a></body></html>\n')
"#;
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&pkg)
        .arg(name)
        .status()
        .unwrap();
    assert!(st.success(), "building the local index failed");
    std::fs::write(
        simple.join("index.html"),
        format!("<!DOCTYPE html><html><body><a href=\"{name}/\">{name}</a></body></html>\n"),
    )
    .unwrap();
    format!("file://{}", simple.display())
}
