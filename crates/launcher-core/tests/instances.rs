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

async fn register(e: &Env, id: &str, desired: &str, components: &[(&str, &str)]) {
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
    for (kind, body) in components {
        e.db.table::<comps::Entity>()
            .insert(
                &e.tenant,
                comps::ActiveModel {
                    instance_id: Set(id.into()),
                    kind: Set((*kind).into()),
                    path: Set(e.dir.path().display().to_string()),
                    argv: Set(script(e.dir.path(), &format!("{id}-{kind}"), body)),
                    env: Set(json!({"FIXTURE": "1"})),
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
    let deadline = Instant::now() + Duration::from_secs(10);
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
