//! Black-box: start the real binary on port 0 with a fresh data directory and talk HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    _home: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra_env: &[(&str, &str)]) -> Server {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailauncher"));
    cmd.args(["serve", "--port", "0"])
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("MAILAUNCHER_DATA_DIR")
        .env_remove("LOGS_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Server {
        child,
        port,
        _home: home,
    }
}

fn get(port: u16, path: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn fresh_start_serves_health_on_the_embedded_database() {
    let srv = start(&[]);
    let (status, body) = get(srv.port, "/api/v1/system/health");
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    assert!(body["time"].is_string());
    let (status, body) = get(srv.port, "/api/v1/version/current");
    assert_eq!(status, 200);
    assert_eq!(body["data"]["version"], env!("CARGO_PKG_VERSION"));
    let db = srv
        ._home
        .path()
        .join(".local/share/mailauncher/mailauncher.db");
    assert!(db.exists(), "embedded database not created at {db:?}");
    assert!(
        srv._home
            .path()
            .join(".local/share/mailauncher/logs")
            .is_dir()
    );
}

#[test]
fn unknown_routes_get_the_documented_error_body() {
    let srv = start(&[]);
    let (status, body) = get(srv.port, "/api/v1/does-not-exist");
    assert_eq!(status, 404);
    assert_eq!(body["code"], "route_not_found");
    assert!(body["detail"].is_string());
}

#[test]
fn logs_dir_env_is_honoured() {
    let logs = tempfile::tempdir().unwrap();
    let srv = start(&[("LOGS_DIR", logs.path().to_str().unwrap())]);
    get(srv.port, "/api/v1/system/health");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(logs.path()).unwrap().next().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::read_dir(logs.path()).unwrap().next().is_some(),
        "no log file in LOGS_DIR"
    );
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mailauncher"))
        .env("HOME", home.path())
        .env("MAILAUNCHER_SERVER__PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.port"), "{err}");
}

#[test]
fn sigint_shuts_down_cleanly() {
    let mut srv = start(&[]);
    let pid = srv.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = srv.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}
