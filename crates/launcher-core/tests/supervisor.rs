//! The component actor against real processes in real PTYs. Fixture programs are small
//! sh scripts written by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::logs::{Event, LogConfig, Replay};
use launcher_core::supervisor::{
    Component, ComponentConfig, ProcessSpec, RestartMode, RestartPolicy, State, Status, StopPolicy,
    SupervisorError,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn script(dir: &Path, body: &str) -> Vec<String> {
    let path = dir.join(format!("fixture-{}.sh", body.len()));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    vec!["sh".into(), path.display().to_string()]
}

fn component(dir: &Path, body: &str, restart: RestartPolicy, grace: Duration) -> Component {
    Component::new(ComponentConfig {
        name: "test".into(),
        spec: ProcessSpec::new(script(dir, body), dir),
        restart,
        stop: StopPolicy {
            grace,
            ..StopPolicy::default()
        },
        log: LogConfig::default(),
        flush_after: Duration::from_millis(30),
    })
    .unwrap()
}

async fn wait_for(c: &Component, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    let mut rx = c.watch();
    let res = tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|s| pred(s))).await;
    match res {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("timed out waiting for {what}; status {:?}", c.status()),
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

async fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// Waits until the component has printed `needle` (fixtures announce when they are set up).
async fn wait_output(c: &Component, needle: &str) {
    let mut sub = c.logs().subscribe(Replay::FromSeq(1));
    let mut text: String = sub
        .replay
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "never printed {needle:?}; got {text:?}"
        );
        if let Ok(Some(Event::Record(r))) =
            tokio::time::timeout(Duration::from_millis(100), sub.recv()).await
        {
            text.push_str(&String::from_utf8_lossy(&r.data));
        }
    }
}

fn no_restart() -> RestartPolicy {
    RestartPolicy {
        mode: RestartMode::Never,
        ..RestartPolicy::default()
    }
}

#[tokio::test]
async fn a_clean_exit_is_recorded_and_not_restarted_on_failure_policy() {
    let dir = tempfile::tempdir().unwrap();
    let c = component(
        dir.path(),
        "echo hello from fixture; exit 0",
        RestartPolicy::default(),
        Duration::from_secs(5),
    );
    c.start().await.unwrap();
    let s = wait_for(&c, "stopped", |s| {
        s.state == State::Stopped && s.last_exit.is_some()
    })
    .await;
    assert_eq!(s.start_count, 1);
    assert_eq!(s.last_exit.as_ref().unwrap().code, Some(0));
    assert!(
        c.logs()
            .tail_text(5)
            .iter()
            .any(|l| l.contains("hello from fixture"))
    );
}

#[tokio::test]
async fn crashes_back_off_restart_and_give_up_into_failed_with_reason_and_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RestartPolicy {
        mode: RestartMode::OnFailure,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        reset_after: Duration::from_secs(60),
        give_up: Some((3, Duration::from_secs(60))),
    };
    let c = component(
        dir.path(),
        "echo boom $$; sleep 0.05; exit 3",
        policy,
        Duration::from_secs(5),
    );
    let mut seen_backoff = false;
    let mut rx = c.watch();
    c.start().await.unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            rx.changed().await.unwrap();
            let s = rx.borrow().clone();
            seen_backoff |= s.state == State::Backoff;
            if s.state == State::Failed {
                return s;
            }
        }
    })
    .await
    .expect("never gave up");
    assert!(seen_backoff, "no backoff state was observed");
    assert_eq!(failed.start_count, 3);
    assert_eq!(failed.crash_count, 3);
    assert_eq!(failed.restart_count, 2);
    let f = failed.failure.unwrap();
    assert!(f.reason.contains("exited with code 3"), "{}", f.reason);
    assert!(
        f.last_lines.iter().any(|l| l.starts_with("boom ")),
        "{:?}",
        f.last_lines
    );
    // A user's start clears `failed`.
    c.start().await.unwrap();
    assert_ne!(c.status().state, State::Failed);
    assert!(c.status().failure.is_none());
    c.kill().await.unwrap();
}

#[tokio::test]
async fn stopping_a_child_that_ignores_signals_ends_in_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_millis(500);
    let c = component(
        dir.path(),
        "trap '' INT TERM; echo ready; while :; do sleep 0.1; done",
        no_restart(),
        grace,
    );
    c.start().await.unwrap();
    wait_output(&c, "ready").await;
    let pid = c.status().pid.unwrap();
    let t = Instant::now();
    c.stop().await.unwrap();
    let took = t.elapsed();
    assert!(took >= grace, "stopped before the grace period: {took:?}");
    // The lower bound proves the grace period; the upper one only that SIGKILL followed
    // (a loaded machine may take seconds to deliver the exit).
    assert!(took < grace + Duration::from_secs(10), "took {took:?}");
    let s = c.status();
    assert_eq!(s.state, State::Stopped);
    assert_eq!(s.last_exit.as_ref().unwrap().signal, Some(9));
    assert!(s.last_exit.unwrap().requested);
    assert_eq!(s.crash_count, 0);
    assert!(gone(pid).await);
}

#[tokio::test]
async fn no_grandchild_survives_stop_or_kill() {
    for use_kill in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let body =
            "(trap '' INT TERM HUP; exec sleep 300) & echo $! > grandchild.pid; echo spawned; wait";
        let c = component(dir.path(), body, no_restart(), Duration::from_millis(300));
        c.start().await.unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The shell creates the file before it writes the pid: wait for a whole number.
        let deadline = Instant::now() + Duration::from_secs(15);
        let gc: u32 = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no grandchild pid written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(alive(gc));
        if use_kill {
            c.kill().await.unwrap();
        } else {
            c.stop().await.unwrap();
        }
        assert!(gone(gc).await, "grandchild {gc} survived (kill={use_kill})");
    }
}

#[tokio::test]
async fn a_hundred_concurrent_starts_give_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let c = component(dir.path(), "sleep 30", no_restart(), Duration::from_secs(2));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.start().await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let s = c.status();
    assert_eq!(s.start_count, 1);
    assert_eq!(s.state, State::Running);
    c.stop().await.unwrap();
}

#[tokio::test]
async fn terminal_input_reaches_the_child_and_is_refused_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let c = component(dir.path(), "exec cat", no_restart(), Duration::from_secs(2));
    assert_eq!(
        c.input(b"early\n".to_vec()).await,
        Err(SupervisorError::NotRunning)
    );
    c.start().await.unwrap();
    let mut sub = c.logs().subscribe(Replay::FromSeq(1));
    c.resize(40, 100).await.unwrap();
    c.input(b"hello pty\n".to_vec()).await.unwrap();
    let mut text = sub
        .replay
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).to_string())
        .collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(15);
    while text.matches("hello pty").count() < 2 && Instant::now() < deadline {
        if let Ok(Some(Event::Record(r))) =
            tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
        {
            text.push_str(&String::from_utf8_lossy(&r.data));
        }
    }
    // Once echoed by the terminal, once written back by cat.
    assert!(text.matches("hello pty").count() >= 2, "{text:?}");
    c.stop().await.unwrap();
    assert_eq!(
        c.input(b"late\n".to_vec()).await,
        Err(SupervisorError::NotRunning)
    );
}

#[tokio::test]
async fn restart_is_a_confirmed_stop_then_a_start_and_statistics_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let c = component(dir.path(), "sleep 30", no_restart(), Duration::from_secs(2));
    c.start().await.unwrap();
    let first = c.status().pid.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.restart().await.unwrap();
    let s = c.status();
    assert_eq!(s.state, State::Running);
    assert_ne!(s.pid.unwrap(), first);
    assert!(
        gone(first).await,
        "the old process was not reaped before the new start"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.stop().await.unwrap();
    let s = c.status();
    assert_eq!(s.start_count, 2);
    assert_eq!(s.crash_count, 0);
    assert!(
        s.total_runtime >= Duration::from_millis(600),
        "{:?}",
        s.total_runtime
    );
    assert!(s.uptime().is_none());
}

#[tokio::test]
async fn a_missing_program_fails_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = Component::new(ComponentConfig {
        name: "missing".into(),
        spec: ProcessSpec::new(vec!["/nonexistent/python3".into()], dir.path()),
        restart: RestartPolicy::default(),
        stop: StopPolicy::default(),
        log: LogConfig::default(),
        flush_after: Duration::from_millis(30),
    })
    .unwrap();
    let err = c.start().await.unwrap_err();
    assert!(matches!(err, SupervisorError::Spawn(_)), "{err:?}");
    assert_eq!(c.status().state, State::Failed);
}
