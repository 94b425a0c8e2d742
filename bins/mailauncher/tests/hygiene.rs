//! Black-box hygiene: what a crash or a delete leaves behind — temp files of interrupted
//! config writes are swept at boot; deleting a running instance logs no error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fake_adapter, fake_maibot, listen_on, spawn_app};
use serde_json::json;
use std::time::{Duration, Instant};

const BOT: &str = "# MaiBot config\n[bot]\nqq_account = 123456\n";

/// A kill in the middle of an atomic write leaves its temp file (a full copy of the config)
/// next to the target; the next boot removes every such file of a writer that is gone, in
/// each registered instance's config folders and the data directory, and nothing else.
#[test]
fn boot_removes_temp_files_of_interrupted_writes_and_keeps_user_files() {
    let app = spawn_app();
    let root = app.home.path().join("bots");
    let dir = fake_maibot(&root, "tmp");
    let ada = fake_adapter(&root, "tmp-ada");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/bot_config.toml"), BOT).unwrap();
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "tmp", "maibot_path": dir, "adapter_path": ada, "port": 8710,
                "install_services": [{"name": "napcat-ada", "path": ada, "port": 8811}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let data_dir = app.home.path().join(".local/share/mailauncher");
    assert!(data_dir.join("mailauncher.db").exists());

    let home = app.crash();
    // The pid of a writer that is gone: a child that has exited and been reaped.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let leftovers = [
        dir.join(format!("config/.bot_config.toml.tmp-{dead}-Ab3dE9")),
        dir.join(format!(".env.tmp-{dead}")),
        ada.join(format!(".config.toml.tmp-{dead}-zz9Q1a")),
        data_dir.join(format!(".settings.toml.tmp-{dead}-k2L0pp")),
    ];
    let user_files = [
        dir.join("config/.bot_config.toml.tmp"),
        dir.join(format!("config/bot_config.toml.tmp-{dead}")),
        dir.join(format!("config/.bot_config.toml.tmp-{dead}.orig")),
        ada.join(format!(".config.toml.tmp-{dead}-x")),
    ];
    for p in leftovers.iter().chain(&user_files) {
        std::fs::write(p, BOT).unwrap();
    }

    let _app = common::spawn_app_at(home, &[], &[]);
    for p in &leftovers {
        assert!(!p.exists(), "{} survived the boot", p.display());
    }
    for p in &user_files {
        assert_eq!(std::fs::read_to_string(p).unwrap(), BOT, "{}", p.display());
    }
}

/// The daemon's own log files, read after it has exited (the file writer flushes then).
fn daemon_logs(logs_dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(logs_dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

/// Deleting a running instance stops it; its components' final states arrive after the
/// rows are gone, which is expected and must not be logged as an error.
#[test]
fn deleting_a_running_instance_logs_no_error() {
    let mut app = spawn_app();
    let root = app.home.path().join("bots");
    let dir = fake_maibot(&root, "run-del");
    let ada = fake_adapter(&root, "run-del-ada");
    // Ready means the banner and the registered port accepting: the fakes bind theirs.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, ada_port) = (free(), free());
    listen_on(&dir, port);
    listen_on(&ada, ada_port);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "run-del", "maibot_path": dir, "adapter_path": ada, "port": port,
                "install_services": [{"name": "napcat-ada", "path": ada, "port": ada_port}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
    app.wait_instance(&id, "running", |i| i["status"] == "running");
    let d = app.delete(&format!("/instance/{id}/delete"));
    assert_eq!(d.status, 200, "{}", d.body);
    app.wait_instance(&id, "gone from the list", |i| i.is_null());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = daemon_logs(&app.home.path().join(".local/share/mailauncher/logs"));
    assert!(
        logs.contains("boot reconciliation done"),
        "not the daemon's log: {logs}"
    );
    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
}
