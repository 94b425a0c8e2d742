//! Black-box: start the real binary on port 0 with a fresh data directory and talk HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{spawn_app, spawn_app_with};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn fresh_start_serves_health_on_the_embedded_database() {
    let app = spawn_app();
    let r = app.get("/system/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "success");
    assert!(r.body["time"].is_string());
    let r = app.get("/version/current");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["version"], env!("CARGO_PKG_VERSION"));
    let db = app
        .home
        .path()
        .join(".local/share/mailauncher/mailauncher.db");
    assert!(db.exists(), "embedded database not created at {db:?}");
    assert!(
        app.home
            .path()
            .join(".local/share/mailauncher/logs")
            .is_dir()
    );
}

#[test]
fn unknown_routes_get_the_documented_error_body() {
    let app = spawn_app();
    let r = app.get("/does-not-exist");
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "route_not_found");
    assert!(r.body["detail"].is_string());
}

#[test]
fn logs_dir_env_is_honoured() {
    let logs = tempfile::tempdir().unwrap();
    let app = spawn_app_with(&[], &[("LOGS_DIR", logs.path().to_str().unwrap())]);
    app.get("/system/health");
    let deadline = Instant::now() + Duration::from_secs(15);
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
    let mut app = spawn_app();
    let pid = app.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = app.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}
