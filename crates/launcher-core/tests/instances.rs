//! Instances against a real SQLite database and real processes: start order, recorded
//! state and statistics, and boot reconciliation after a simulated daemon crash.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::supervisor::{Supervisor, SupervisorConfig, procfs};
use maim_db::entity::launcher::{
    instance_components as comps, instance_runs as runs, instances as insts,
};
use maim_db::prelude::*;
use maim_db::{Db, DbOptions, Filter, Query, SystemScope, TenantScope};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Env {
    db: Db,
    tenant: TenantScope,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = maim_db::connect(
        &maim_db::sqlite_url(&dir.path().join("l.db")),
        &DbOptions::default(),
    )
    .await
    .unwrap();
    db.migrate(&SystemScope::new("test")).await.unwrap();
    db.tenants()
        .ensure(&SystemScope::new("test"), "local", "local")
        .await
        .unwrap();
    Env {
        db,
        tenant: TenantScope::new("local").unwrap(),
        dir,
    }
}

fn script(dir: &Path, name: &str, body: &str) -> serde_json::Value {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    json!(["sh", path.display().to_string()])
}

/// One component row of a test instance.
struct Comp {
    kind: &'static str,
    argv: serde_json::Value,
    /// Its own directory (the profile looks at it; stand-ins write their files there).
    dir: std::path::PathBuf,
    port: Option<u16>,
    env: serde_json::Value,
}

async fn register(e: &Env, id: &str, desired: &str, components: &[(&'static str, &str)]) {
    let comps: Vec<Comp> = components
        .iter()
        .map(|(kind, body)| Comp {
            kind,
            argv: script(e.dir.path(), &format!("{id}-{kind}"), body),
            dir: e.dir.path().to_path_buf(),
            port: None,
            env: json!({"FIXTURE": "1"}),
        })
        .collect();
    register_comps(e, id, desired, &comps).await;
}

async fn register_comps(e: &Env, id: &str, desired: &str, components: &[Comp]) {
    e.db.table::<insts::Entity>()
        .insert(
            &e.tenant,
            insts::ActiveModel {
                id: Set(id.into()),
                name: Set(id.into()),
                install_path: Set(e.dir.path().display().to_string()),
                version: Set("test".into()),
                desired_state: Set(desired.into()),
                observed_state: Set("stopped".into()),
                restart_policy: Set("on-failure".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for c in components {
        e.db.table::<comps::Entity>()
            .insert(
                &e.tenant,
                comps::ActiveModel {
                    instance_id: Set(id.into()),
                    kind: Set(c.kind.into()),
                    path: Set(c.dir.display().to_string()),
                    port: Set(c.port.map(i32::from)),
                    argv: Set(c.argv.clone()),
                    env: Set(c.env.clone()),
                    observed_state: Set("stopped".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
}

fn supervisor(e: &Env) -> Arc<Supervisor> {
    let mut cfg = SupervisorConfig::new(e.dir.path().join("logs"));
    cfg.stop.grace = Duration::from_secs(2);
    Supervisor::new(e.db.clone(), e.tenant.clone(), cfg)
}

async fn instance(e: &Env, id: &str) -> insts::Model {
    e.db.table::<insts::Entity>()
        .get(&e.tenant, id.to_owned())
        .await
        .unwrap()
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn start_and_stop_are_recorded_with_runs_and_statistics() {
    let e = env().await;
    register(
        &e,
        "i1",
        "stopped",
        &[
            (
                "napcat-ada",
                "echo adapter $FIXTURE; echo '✅ Adapter 启动成功! 监听: ws://127.0.0.1:0'; exec sleep 30",
            ),
            ("main", "echo core; echo 全部系统初始化完成; exec sleep 30"),
        ],
    )
    .await;
    let sup = supervisor(&e);
    sup.start("i1").await.unwrap();
    eventually("observed running", async || {
        instance(&e, "i1").await.observed_state == "running"
    })
    .await;
    let st = sup.statuses("i1").await.unwrap();
    assert_eq!(
        st.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["main", "napcat-ada"],
        "start order"
    );
    assert!(st[0].1.started_at.unwrap() <= st[1].1.started_at.unwrap());
    let row = instance(&e, "i1").await;
    assert_eq!(row.desired_state, "running");
    assert_eq!(row.start_count, 1);
    let comp_rows =
        e.db.table::<comps::Entity>()
            .find(&e.tenant, Query::new())
            .await
            .unwrap();
    eventually("pids recorded", async || {
        let rows =
            e.db.table::<comps::Entity>()
                .find(&e.tenant, Query::new())
                .await
                .unwrap();
        rows.iter()
            .all(|c| c.pid.is_some() && c.pid_start_time.is_some())
    })
    .await;
    assert_eq!(comp_rows.len(), 2);

    tokio::time::sleep(Duration::from_millis(200)).await;
    sup.stop("i1").await.unwrap();
    eventually("observed stopped", async || {
        instance(&e, "i1").await.observed_state == "stopped"
    })
    .await;
    eventually("runs closed", async || {
        let open =
            e.db.table::<runs::Entity>()
                .count(&e.tenant, Filter::is_null(runs::Column::StoppedAt))
                .await
                .unwrap();
        open == 0
    })
    .await;
    let row = instance(&e, "i1").await;
    assert_eq!(row.desired_state, "stopped");
    assert_eq!(row.crash_count, 0);
    assert!(row.total_runtime_ms >= 200, "{}", row.total_runtime_ms);
    assert_eq!(row.last_exit_reason.as_deref(), Some("stopped"));
    assert_eq!(
        e.db.table::<runs::Entity>()
            .count(&e.tenant, Filter::All)
            .await
            .unwrap(),
        2
    );
    assert!(e.dir.path().join("logs/i1/main.log").exists());
}

#[tokio::test]
async fn runtime_statistics_add_up_across_supervisor_restarts() {
    let e = env().await;
    register(&e, "i2", "stopped", &[("main", "exec sleep 30")]).await;
    for _ in 0..2 {
        let sup = supervisor(&e);
        sup.start("i2").await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        sup.stop("i2").await.unwrap();
        eventually("exit recorded", async || {
            instance(&e, "i2").await.last_exit_at.is_some()
                && instance(&e, "i2").await.observed_state == "stopped"
        })
        .await;
    }
    eventually("both runs counted", async || {
        instance(&e, "i2").await.total_runtime_ms >= 500
    })
    .await;
    let row = instance(&e, "i2").await;
    assert_eq!(row.start_count, 2);
}

#[tokio::test]
async fn reconciliation_after_a_daemon_crash() {
    let e = env().await;
    // A live orphan of the previous daemon: its own session, recorded pid and start time.
    let mut orphan = std::process::Command::new("setsid")
        .args(["sleep", "300"])
        .spawn()
        .unwrap();
    let orphan_pid = orphan.id();
    // Wait until `setsid` has made it a group leader: the daemon stops orphans by group.
    let leads_its_group = || {
        std::fs::read_to_string(format!("/proc/{orphan_pid}/stat"))
            .ok()
            .and_then(|s| {
                let after_name = &s[s.rfind(')')? + 1..];
                after_name.split_whitespace().nth(2)?.parse::<u32>().ok()
            })
            == Some(orphan_pid)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(leads_its_group() && procfs::start_time(orphan_pid).is_some()) {
        assert!(
            Instant::now() < deadline,
            "the orphan never led its own group"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // An unrelated process whose pid the record happens to name, with another start time.
    let mut unrelated = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let unrelated_pid = unrelated.id();

    register(&e, "orphaned", "stopped", &[("main", "exec sleep 30")]).await;
    register(&e, "dead", "stopped", &[("main", "exec sleep 30")]).await;
    register(&e, "reused", "stopped", &[("main", "exec sleep 30")]).await;
    register(
        &e,
        "wanted",
        "running",
        &[(
            "main",
            "echo wanted up; echo 全部系统初始化完成; exec sleep 30",
        )],
    )
    .await;
    let claims = [
        (
            "orphaned",
            orphan_pid as i64,
            procfs::start_time(orphan_pid),
        ),
        ("dead", 4_194_000, Some(1)),
        (
            "reused",
            unrelated_pid as i64,
            procfs::start_time(unrelated_pid).map(|t| t + 1),
        ),
    ];
    for (id, pid, start) in claims {
        let am = comps::ActiveModel {
            pid: Set(Some(pid)),
            pid_start_time: Set(start),
            observed_state: Set("running".into()),
            ..Default::default()
        };
        e.db.table::<comps::Entity>()
            .update_where(
                &e.tenant,
                Filter::eq(comps::Column::InstanceId, id.to_owned()),
                am,
            )
            .await
            .unwrap();
        let am = insts::ActiveModel {
            observed_state: Set("running".into()),
            ..Default::default()
        };
        e.db.table::<insts::Entity>()
            .update(&e.tenant, id.to_owned(), am)
            .await
            .unwrap();
    }

    let sup = supervisor(&e);
    let report = sup.reconcile().await.unwrap();
    assert_eq!(report.orphans_terminated, vec![orphan_pid]);
    let mut stale = report.stale_pids.clone();
    stale.sort();
    let mut want = vec![4_194_000, unrelated_pid];
    want.sort();
    assert_eq!(stale, want);
    assert_eq!(report.autostarted, vec!["wanted".to_string()]);

    // The orphan is gone; the unrelated process was not touched.
    let status = orphan.wait().unwrap();
    assert!(!status.success());
    assert!(procfs::alive(unrelated_pid), "a reused pid was killed");
    let _ = unrelated.kill();
    let _ = unrelated.wait();

    // No record claims a live process any more, and the wanted instance runs again.
    for id in ["orphaned", "dead", "reused"] {
        assert_eq!(instance(&e, id).await.observed_state, "stopped", "{id}");
    }
    eventually("autostart", async || {
        instance(&e, "wanted").await.observed_state == "running"
    })
    .await;
    sup.stop("wanted").await.unwrap();
}

#[tokio::test]
async fn unknown_instances_and_components_are_not_found() {
    let e = env().await;
    let sup = supervisor(&e);
    assert!(matches!(
        sup.start("nope").await,
        Err(launcher_core::CoreError::NotFound(_))
    ));
    register(&e, "i3", "stopped", &[("main", "exec sleep 30")]).await;
    assert!(matches!(
        sup.component("i3", "napcat").await,
        Err(launcher_core::CoreError::NotFound(_))
    ));
}

// ---- profiles: start order, degraded instances, MaiBot's stop and environment ----

/// A Python stand-in in its own directory `<root>/<name>/`.
fn python(e: &Env, name: &str, body: &str) -> (serde_json::Value, std::path::PathBuf) {
    let dir = e.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("standin.py");
    std::fs::write(&path, body).unwrap();
    (json!(["python3", path.display().to_string()]), dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_time(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn wait_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints a ready line (argv[2]), sleeps a second, then binds the port (argv[1]), writing
/// the time of the bind to `bound` and the time it started to `started`.
const READY_THEN_BIND: &str = r#"
import socket, sys, time
open("started", "w").write(repr(time.time()))
print(sys.argv[2], flush=True)
time.sleep(1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
open("bound", "w").write(repr(time.time()))
while True:
    c, _ = s.accept()
    c.close()
"#;

fn with_args(mut argv: serde_json::Value, args: &[&str]) -> serde_json::Value {
    let list = argv.as_array_mut().unwrap();
    list.extend(args.iter().map(|a| json!(a)));
    argv
}

#[tokio::test]
async fn the_adapter_starts_only_once_maibot_is_ready() {
    let e = env().await;
    let (main_port, ada_port) = (free_port(), free_port());
    let (main_argv, main_dir) = python(&e, "main", READY_THEN_BIND);
    let (ada_argv, ada_dir) = python(&e, "ada", READY_THEN_BIND);
    let main_port_s = main_port.to_string();
    let ada_port_s = ada_port.to_string();
    register_comps(
        &e,
        "order",
        "stopped",
        &[
            Comp {
                kind: "napcat-ada",
                argv: with_args(
                    ada_argv,
                    &[&ada_port_s, "✅ Adapter 启动成功! 监听: ws://127.0.0.1"],
                ),
                dir: ada_dir.clone(),
                port: Some(ada_port),
                env: json!({}),
            },
            Comp {
                kind: "main",
                argv: with_args(
                    main_argv,
                    &[&main_port_s, "全部系统初始化完成，麦麦已成功唤醒"],
                ),
                dir: main_dir.clone(),
                port: Some(main_port),
                env: json!({}),
            },
        ],
    )
    .await;
    let sup = supervisor(&e);
    sup.start("order").await.unwrap();
    // Right after the call MaiBot is spawned and the adapter waits behind it.
    let st = sup.statuses("order").await.unwrap();
    assert_eq!(st[0].0, "main");
    assert_eq!(st[1].1.state, launcher_core::supervisor::State::Starting);
    assert_eq!(st[1].1.pid, None);
    eventually("both running", async || {
        instance(&e, "order").await.observed_state == "running"
    })
    .await;
    let main_bound = read_time(&main_dir.join("bound"));
    let ada_started = read_time(&ada_dir.join("started"));
    assert!(
        ada_started >= main_bound,
        "the adapter started at {ada_started}, before MaiBot bound its port at {main_bound}"
    );
    assert!(ada_dir.join("bound").exists());
    sup.stop("order").await.unwrap();
}

#[tokio::test]
async fn when_maibot_fails_the_adapter_is_not_started_and_says_why() {
    let e = env().await;
    register(
        &e,
        "nostart",
        "stopped",
        &[
            ("main", "echo 'config error: no model'; exit 1"),
            (
                "napcat-ada",
                "echo adapter ran > adapter-ran; exec sleep 30",
            ),
        ],
    )
    .await;
    let mut cfg = SupervisorConfig::new(e.dir.path().join("logs"));
    cfg.restart.give_up = Some((1, Duration::from_secs(60)));
    let sup = Supervisor::new(e.db.clone(), e.tenant.clone(), cfg);
    sup.start("nostart").await.unwrap();
    eventually("observed failed", async || {
        instance(&e, "nostart").await.observed_state == "failed"
    })
    .await;
    let st = sup.statuses("nostart").await.unwrap();
    let ada = &st[1].1;
    assert_eq!(ada.start_count, 0);
    let reason = &ada.failure.as_ref().unwrap().reason;
    assert!(
        reason.contains("not started: main did not become ready")
            && reason.contains("exited with code 1"),
        "{reason}"
    );
    assert!(!e.dir.path().join("adapter-ran").exists());
}

#[tokio::test]
async fn maibot_running_with_a_failed_adapter_is_degraded() {
    use launcher_core::supervisor::InstanceState;
    let e = env().await;
    register(
        &e,
        "deg",
        "stopped",
        &[
            ("main", "echo 全部系统初始化完成; exec sleep 30"),
            ("napcat-ada", "echo 'cannot reach napcat'; exit 1"),
        ],
    )
    .await;
    let mut cfg = SupervisorConfig::new(e.dir.path().join("logs"));
    cfg.restart.give_up = Some((1, Duration::from_secs(60)));
    let sup = Supervisor::new(e.db.clone(), e.tenant.clone(), cfg);
    let trash = launcher_core::trash::Trash::new(&e.dir.path().join("data"), 7);
    let catalog =
        launcher_core::catalog::Catalog::new(e.db.clone(), e.tenant.clone(), sup.clone(), trash);
    sup.start("deg").await.unwrap();
    eventually("observed degraded", async || {
        instance(&e, "deg").await.observed_state == "degraded"
    })
    .await;
    let st = sup.statuses("deg").await.unwrap();
    assert_eq!(
        launcher_core::supervisor::summary(st.iter().map(|(_, s)| s)),
        InstanceState::Degraded
    );
    let info = catalog.get("deg").await.unwrap();
    assert_eq!(info.state, InstanceState::Degraded);
    assert_eq!(info.state.legacy_str(), "running");
    sup.stop("deg").await.unwrap();
    eventually("observed stopped", async || {
        instance(&e, "deg").await.observed_state == "stopped"
    })
    .await;
}

#[tokio::test]
async fn maibot_is_stopped_with_sigint_and_its_graceful_exit_is_recorded() {
    let e = env().await;
    let body = r#"
import signal, sys, time
def on_int(*_):
    open("got-sigint", "w").write("1")
    print("收到中断信号，正在优雅关闭...", flush=True)
    sys.exit(0)
def on_term(*_):
    open("got-sigterm", "w").write("1")
    sys.exit(1)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGTERM, on_term)
print("全部系统初始化完成", flush=True)
while True:
    time.sleep(0.1)
"#;
    let (argv, dir) = python(&e, "graceful", body);
    register_comps(
        &e,
        "sig",
        "stopped",
        &[Comp {
            kind: "main",
            argv,
            dir: dir.clone(),
            port: None,
            env: json!({}),
        }],
    )
    .await;
    // The configured signal is for components without a profile: MaiBot's is SIGINT.
    let mut cfg = SupervisorConfig::new(e.dir.path().join("logs"));
    cfg.stop.signal = launcher_core::supervisor::Signal::SIGTERM;
    let sup = Supervisor::new(e.db.clone(), e.tenant.clone(), cfg);
    sup.start("sig").await.unwrap();
    eventually("observed running", async || {
        instance(&e, "sig").await.observed_state == "running"
    })
    .await;
    sup.stop("sig").await.unwrap();
    assert!(dir.join("got-sigint").exists(), "no SIGINT reached it");
    assert!(!dir.join("got-sigterm").exists(), "it got SIGTERM");
    let s = &sup.statuses("sig").await.unwrap()[0].1;
    let exit = s.last_exit.as_ref().unwrap();
    assert_eq!(
        (exit.code, exit.signal, exit.requested),
        (Some(0), None, true)
    );
    eventually("exit recorded", async || {
        let row = instance(&e, "sig").await;
        row.last_exit_code == Some(0) && row.last_exit_reason.as_deref() == Some("stopped")
    })
    .await;
    assert_eq!(instance(&e, "sig").await.crash_count, 0);
}

/// Run in a child test process whose environment holds what a launcher might inherit
/// (setting variables in this multi-threaded process would race with every spawn).
#[test]
fn inherited_host_and_port_do_not_reach_maibot_but_the_rows_env_does() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "env_policy_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOST", "0.0.0.0")
        .env("PORT", "1")
        .env("WEBUI_HOST", "0.0.0.0")
        .env("WEBUI_PORT", "2")
        .env("EULA_AGREE", "x")
        .env("MAIBOT_LOCALE", "ja-JP")
        .env("MAILAUNCHER_SECRET", "s3cret")
        .env("KEEP_ME", "kept")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run: {text}"
    );
}

#[tokio::test]
#[ignore = "run by inherited_host_and_port_do_not_reach_maibot_but_the_rows_env_does"]
async fn env_policy_child() {
    assert_eq!(
        std::env::var("HOST").as_deref(),
        Ok("0.0.0.0"),
        "run by the parent test"
    );
    let e = env().await;
    let body = r#"
import json, os, time
open("env.json.tmp", "w").write(json.dumps(dict(os.environ)))
os.rename("env.json.tmp", "env.json")
print("全部系统初始化完成", flush=True)
while True:
    time.sleep(1)
"#;
    let (argv, dir) = python(&e, "envdump", body);
    register_comps(
        &e,
        "envi",
        "stopped",
        &[Comp {
            kind: "main",
            argv,
            dir: dir.clone(),
            port: None,
            env: json!({"PORT": "8123", "MAIBOT_LOCALE": "en-US"}),
        }],
    )
    .await;
    let sup = supervisor(&e);
    sup.start("envi").await.unwrap();
    wait_file(&dir.join("env.json")).await;
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("env.json")).unwrap()).unwrap();
    for gone in [
        "HOST",
        "WEBUI_HOST",
        "WEBUI_PORT",
        "EULA_AGREE",
        "MAILAUNCHER_SECRET",
    ] {
        assert!(!env.contains_key(gone), "{gone} reached MaiBot");
    }
    assert_eq!(env["PORT"], "8123", "the row's own value");
    assert_eq!(env["MAIBOT_LOCALE"], "en-US", "the row's own value");
    assert_eq!(env["MAIBOT_WORKER_PROCESS"], "1");
    assert_eq!(env["KEEP_ME"], "kept");
    sup.stop("envi").await.unwrap();
}

// ---- membership: descendants that leave the group, orphans, deletes ----

/// Forks, lets the child `setsid()` and fork again, and lets the middle one exit: the
/// grandchild is a daemon in its own session with no parent link to the component, and
/// ignores every polite signal. Its pid goes to `escapee.pid` (written whole, renamed).
const DOUBLE_FORK_SETSID: &str = r#"
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        open("escapee.tmp", "w").write(str(os.getpid()))
        os.rename("escapee.tmp", "escapee.pid")
        while True:
            time.sleep(1)
    os._exit(0)
os.waitpid(pid, 0)
print("spawned", flush=True)
while True:
    time.sleep(1)
"#;

async fn read_pid(path: &Path) -> u32 {
    wait_file(path).await;
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn dead(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while procfs::alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn a_descendant_that_double_forks_into_its_own_session_is_gone_after_stop_and_kill() {
    let e = env().await;
    let sup = supervisor(&e);
    for (round, use_kill) in [(0, false), (1, true)] {
        let id = format!("escape{round}");
        let (argv, dir) = python(&e, &id, DOUBLE_FORK_SETSID);
        register_comps(
            &e,
            &id,
            "stopped",
            &[Comp {
                kind: "worker",
                argv,
                dir: dir.clone(),
                port: None,
                env: json!({}),
            }],
        )
        .await;
        sup.start(&id).await.unwrap();
        let escapee = read_pid(&dir.join("escapee.pid")).await;
        assert!(procfs::alive(escapee));
        let leader = sup.statuses(&id).await.unwrap()[0].1.pid.unwrap();
        assert!(
            procfs::session_members(&[leader])
                .iter()
                .all(|p| p.pid != escapee),
            "the scenario needs an escapee outside the component's session"
        );
        if use_kill {
            sup.kill(&id).await.unwrap();
        } else {
            sup.stop(&id).await.unwrap();
        }
        assert!(
            dead(escapee).await,
            "the escapee {escapee} survived (kill={use_kill})"
        );
    }
}
