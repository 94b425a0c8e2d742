//! Black-box supervision against the real binary: graceful shutdown of instances started
//! through the API, a crashed daemon's leftovers, and deletes racing starts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{App, fake_maibot, listen_on, spawn_app, spawn_app_at};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Listens on the port in `fake_port` (readiness needs it), prints MaiBot's ready line.
const PRELUDE: &str = r#"
import os, signal, socket, subprocess, sys, threading, time
def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", int(open("fake_port").read())))
        s.listen(16)
    except OSError:
        return
    def serve():
        while True:
            c, _ = s.accept()
            c.close()
    threading.Thread(target=serve, daemon=True).start()
def ready():
    listen()
    print("全部系统初始化完成，麦麦已成功唤醒", flush=True)
"#;

/// On SIGINT: `got-sigint`, a second of cleanup, `cleaned`, exit 0.
const GRACEFUL: &str = r#"
def on_int(*_):
    open("got-sigint", "w").write("1")
    time.sleep(1)
    open("cleaned", "w").write("1")
    os._exit(0)
signal.signal(signal.SIGINT, on_int)
ready()
while True:
    time.sleep(1)
"#;

/// A grandchild that ignores SIGHUP and whose parent exits at once (a daemonised helper);
/// each copy appends its pid to `copies.txt`.
const HUP_IGNORING_GRANDCHILD: &str = r#"
pid = os.fork()
if pid == 0:
    if os.fork() == 0:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with open("copies.txt", "a") as f:
            f.write(f"{os.getpid()}\n")
        while True:
            time.sleep(1)
    os._exit(0)
os.waitpid(pid, 0)
ready()
while True:
    time.sleep(1)
"#;

/// A bot with a helper child, as MaiBot's subprocesses; both pids go to `pids.txt`. On
/// SIGINT it takes a moment to clean up, as MaiBot does: a delete's stop takes a while.
const WITH_HELPER: &str = r#"
helper = subprocess.Popen(["sleep", "300"])
with open("pids.txt", "a") as f:
    f.write(f"{os.getpid()}\n{helper.pid}\n")
def on_int(*_):
    time.sleep(0.3)
    os._exit(0)
signal.signal(signal.SIGINT, on_int)
ready()
while True:
    time.sleep(1)
"#;

/// Registers `bot.py` = prelude + `body` as an existing MaiBot instance named `name`.
fn add(app: &App, name: &str, port: u16, body: &str) -> (String, PathBuf) {
    let root = app.home.path().join("bots");
    let main = fake_maibot(&root, name);
    listen_on(&main, port);
    std::fs::write(main.join("bot.py"), format!("{PRELUDE}{body}")).unwrap();
    let r = app.post(
        "/instances/add",
        &json!({
            "instance_name": name,
            "maibot_path": main,
            "install_path": main,
            "port": port,
            "version": "检测到的MaiBot版本",
            "host": "localhost",
            "token": "",
            "install_services": [],
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["instance_id"].as_str().unwrap().to_owned(), main)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Live processes whose environment marks them as a component of instance `id`.
fn marked(id: &str) -> Vec<u32> {
    let suffix = format!("/{id}_");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0).any(|v| {
                    let v = String::from_utf8_lossy(v);
                    v.starts_with("MAILAUNCHER_COMPONENT=") && v.contains(&suffix)
                })
            })
        })
        .filter(|pid| alive(*pid))
        .collect()
}

fn wait_exit(app: &mut App, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = app.child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the daemon did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn db(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join(".local/share/mailauncher/mailauncher.db")).unwrap()
}

fn sigterm(app: &App) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

#[test]
fn shutdown_stops_api_started_instances_gracefully_and_records_their_exits() {
    let mut app = spawn_app();
    let (a, dir_a) = add(&app, "grace-a", 8610, GRACEFUL);
    let (b, dir_b) = add(&app, "grace-b", 8611, GRACEFUL);
    for id in [&a, &b] {
        assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
        app.wait_instance(id, "running", |i| i["status"] == "running");
    }
    sigterm(&app);
    let status = wait_exit(&mut app, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    for dir in [&dir_a, &dir_b] {
        assert!(dir.join("got-sigint").exists(), "no SIGINT reached {dir:?}");
        assert!(
            dir.join("cleaned").exists(),
            "{dir:?} was cut off in its cleanup"
        );
    }
    let db = db(app.home.path());
    for id in [&a, &b] {
        let (observed, desired, code): (String, String, Option<i64>) = db
            .query_row(
                "SELECT observed_state, desired_state, last_exit_code FROM instances WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (observed.as_str(), desired.as_str(), code),
            ("stopped", "running", Some(0)),
            "{id}: the database tells the truth, and the next boot starts it again"
        );
        let (state, pid): (String, Option<i64>) = db
            .query_row(
                "SELECT observed_state, pid FROM instance_components WHERE instance_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((state.as_str(), pid), ("stopped", None), "{id}");
        let open: i64 = db
            .query_row(
                "SELECT count(*) FROM instance_runs WHERE instance_id = ?1 AND stopped_at IS NULL",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(open, 0, "{id}: its run is closed");
        let reason: String = db
            .query_row(
                "SELECT reason FROM instance_runs WHERE instance_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(reason, "stopped", "{id}");
    }
}

fn copies(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("copies.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_copies(dir: &Path, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = copies(dir);
        if c.len() >= n {
            return c;
        }
        assert!(Instant::now() < deadline, "copy {n} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn after_daemon_crashes_a_surviving_grandchild_is_ended_before_the_autostart() {
    let app = spawn_app();
    let (id, dir) = add(&app, "hup", 8620, HUP_IGNORING_GRANDCHILD);
    assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
    wait_copies(&dir, 1);
    let mut app = app;
    for cycle in 1..=3 {
        let home = app.crash();
        let before = copies(&dir);
        let survivor = *before.last().unwrap();
        // The leader died with its terminal; the grandchild ignored the hang-up.
        assert!(
            alive(survivor),
            "cycle {cycle}: the scenario needs a survivor"
        );
        app = spawn_app_at(home, &[], &[]);
        // Reconciliation ends the survivor before the autostart brings the next copy.
        let all = wait_copies(&dir, before.len() + 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let live: Vec<u32> = all.iter().copied().filter(|p| alive(*p)).collect();
            if live == vec![*all.last().unwrap()] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: copies alive {live:?} of {all:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let last = *copies(&dir).last().unwrap();
    assert_eq!(app.get(&format!("/instance/{id}/stop")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(last) {
        assert!(Instant::now() < deadline, "the last copy survived stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn delete_racing_start_or_restart_leaves_no_process_and_no_id() {
    let app = spawn_app();
    let mut survivors = Vec::new();
    for round in 0..50u64 {
        let (id, dir) = add(&app, &format!("race{round}"), 8630, WITH_HELPER);
        // Running, so the delete has a stop to wait through; the start or restart arrives
        // while it does (or just before).
        assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
        app.wait_instance(&id, "running", |i| i["status"] == "running");
        let action = if round % 2 == 0 { "start" } else { "restart" };
        std::thread::scope(|s| {
            let del = s.spawn(|| app.delete(&format!("/instance/{id}/delete")));
            std::thread::sleep(Duration::from_millis(round % 10 * 25));
            let p = app.get(&format!("/instance/{id}/{action}")).status;
            assert!(p == 200 || p == 404, "{action}: {p}");
            let del = del.join().unwrap();
            assert_eq!(del.status, 200, "{}", del.body);
        });
        // After DELETE answered, nothing of the instance may be left; a SIGKILLed helper
        // may take a moment to be reaped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marked(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listed_alive = || {
            std::fs::read_to_string(dir.join("pids.txt"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok())
                .filter(|p| alive(*p))
                .collect::<Vec<u32>>()
        };
        while !listed_alive().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut left = marked(&id);
        left.extend(listed_alive());
        if !left.is_empty() {
            survivors.push((round, id.clone(), left));
        }
        let listed = app.get("/instances").body["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str());
        assert!(!listed, "round {round}: deleted {id} is still listed");
        assert_eq!(app.get(&format!("/instance/{id}/start")).status, 404);
    }
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
}

#[test]
fn on_shutdown_accepts_only_stop() {
    let app = spawn_app_at(
        tempfile::tempdir().unwrap(),
        &[],
        &[("MAILAUNCHER_SUPERVISOR__ON_SHUTDOWN", "stop")],
    );
    assert_eq!(app.get("/system/health").status, 200);
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailauncher"))
        .env("HOME", home.path())
        .env("MAILAUNCHER_SUPERVISOR__ON_SHUTDOWN", "leave-running")
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("supervisor.on_shutdown"), "{err}");
}
