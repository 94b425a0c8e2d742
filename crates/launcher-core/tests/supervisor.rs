//! The component actor against real processes in real PTYs. Fixture programs are small
//! sh and Python scripts written by the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::logs::{Event, LogConfig, Replay};
use launcher_core::supervisor::{
    Component, ComponentConfig, ProcessSpec, Readiness, RestartMode, RestartPolicy, State, Status,
    StopPolicy, SupervisorError,
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
        ready: Readiness::default(),
        restart_exit_code: None,
        log: LogConfig::default(),
        flush_after: Duration::from_millis(30),
    })
    .unwrap()
}

async fn wait_for(c: &Component, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    let mut rx = c.watch();
    let res = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|s| pred(s))).await;
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
    let deadline = Instant::now() + Duration::from_secs(30);
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
        ready: Readiness::default(),
        restart_exit_code: None,
        log: LogConfig::default(),
        flush_after: Duration::from_millis(30),
    })
    .unwrap();
    let err = c.start().await.unwrap_err();
    assert!(matches!(err, SupervisorError::Spawn(_)), "{err:?}");
    assert_eq!(c.status().state, State::Failed);
}

// ---- readiness, the program's own restart, plain-text failures ----

/// MaiBot 1.x's ready lines, as its profile has them.
fn maibot_lines() -> Vec<String> {
    launcher_core::profile::MAIBOT_1X
        .ready_lines
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

fn python(dir: &Path, name: &str, body: &str) -> Vec<String> {
    let path = dir.join(format!("{name}.py"));
    std::fs::write(&path, body).unwrap();
    vec!["python3".into(), path.display().to_string()]
}

fn component_with(
    dir: &Path,
    argv: Vec<String>,
    restart: RestartPolicy,
    ready: Readiness,
    restart_exit_code: Option<i32>,
) -> Component {
    Component::new(ComponentConfig {
        name: "ready-test".into(),
        spec: ProcessSpec::new(argv, dir),
        restart,
        stop: StopPolicy {
            grace: Duration::from_secs(5),
            ..StopPolicy::default()
        },
        ready,
        restart_exit_code,
        log: LogConfig::default(),
        flush_after: Duration::from_millis(30),
    })
    .unwrap()
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A stand-in MaiBot: prints the (coloured) banner and binds its port, in the order given,
/// holding the second step until the test creates `go`.
const BANNER_AND_PORT: &str = r#"
import os, socket, sys, time
port, banner_first = int(sys.argv[1]), sys.argv[2] == "banner-first"
def banner():
    print("\x1b[32m12-01 21:00:00 [主程序] 全部系统初始化完成，麦麦已成功唤醒\x1b[0m", flush=True)
def bind():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    open("bound", "w").write(str(time.time()))
    return s
def wait_go():
    while not os.path.exists("go"):
        time.sleep(0.02)
print("starting up", flush=True)
if banner_first:
    banner(); wait_go(); s = bind()
else:
    s = bind(); wait_go(); banner()
while True:
    c, _ = s.accept()
    c.close()
"#;

#[tokio::test]
async fn starting_until_the_ready_line_and_the_port_both_hold() {
    for order in ["banner-first", "port-first"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut argv = python(dir.path(), "maibot", BANNER_AND_PORT);
        argv.extend([port.to_string(), order.to_owned()]);
        let ready = Readiness {
            lines: maibot_lines(),
            ports: vec![port],
            timeout: Duration::from_secs(120),
        };
        let c = component_with(dir.path(), argv, no_restart(), ready, None);
        c.start().await.unwrap();
        assert_eq!(
            c.status().state,
            State::Starting,
            "{order}: right after spawn"
        );
        if order == "banner-first" {
            wait_output(&c, "全部系统初始化完成").await;
        } else {
            wait_file(&dir.path().join("bound")).await;
        }
        // Half of readiness holds; give the probe several rounds to be wrong.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            c.status().state,
            State::Starting,
            "{order}: only half ready"
        );
        std::fs::write(dir.path().join("go"), "").unwrap();
        let s = wait_for(&c, "running", |s| s.state == State::Running).await;
        assert!(
            dir.path().join("bound").exists(),
            "{order}: running before the bind"
        );
        assert!(
            c.logs()
                .tail_text(10)
                .iter()
                .any(|l| l.contains("全部系统初始化完成")),
            "{order}: running before the banner"
        );
        assert_eq!(s.start_count, 1);
        c.stop().await.unwrap();
    }
}

#[tokio::test]
async fn not_ready_in_time_is_a_failure_with_the_reason_and_a_line_in_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let ready = Readiness {
        lines: maibot_lines(),
        ports: Vec::new(),
        timeout: Duration::from_secs(1),
    };
    // It shuts down cleanly on the stop signal: still a failure, it was never ready.
    let argv = script(
        dir.path(),
        "trap 'echo shutting down; exit 0' INT; echo loading forever; while :; do sleep 0.1; done",
    );
    let c = component_with(dir.path(), argv, no_restart(), ready, None);
    c.start().await.unwrap();
    let s = wait_for(&c, "failed", |s| s.state == State::Failed).await;
    let f = s.failure.unwrap();
    assert!(f.reason.contains("not ready after 1 s"), "{}", f.reason);
    assert!(
        f.last_lines
            .iter()
            .any(|l| l.contains("not ready after 1 s")),
        "{:?}",
        f.last_lines
    );
    assert_eq!(s.crash_count, 1);
    let exit = s.last_exit.unwrap();
    assert!(!exit.requested);
    assert_eq!(
        exit.code,
        Some(0),
        "the stop signal was not the graceful one"
    );
}

#[tokio::test]
async fn exit_code_42_restarts_at_once_and_counts_as_a_restart_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // First run: ready, then asks for a restart once the test says so. Second run stays.
    let body = "echo '全部系统初始化完成'\n\
                if [ ! -f first-run-done ]; then\n\
                  while [ ! -f go ]; do sleep 0.05; done\n\
                  touch first-run-done; exit 42\n\
                fi\n\
                exec sleep 60";
    let ready = Readiness {
        lines: maibot_lines(),
        ..Readiness::default()
    };
    // `Never`: a crash would not be restarted, so a second run proves the restart path.
    let argv = script(dir.path(), body);
    let c = component_with(dir.path(), argv, no_restart(), ready, Some(42));
    c.start().await.unwrap();
    let first = wait_for(&c, "running", |s| s.state == State::Running).await;
    std::fs::write(dir.path().join("go"), "").unwrap();
    let s = wait_for(&c, "running again", |s| {
        s.state == State::Running && s.start_count == 2
    })
    .await;
    assert_ne!(s.pid, first.pid);
    assert_eq!(s.crash_count, 0);
    assert_eq!(s.restart_count, 1);
    let exit = s.last_exit.unwrap();
    assert_eq!(exit.code, Some(42));
    assert!(exit.requested);
    c.stop().await.unwrap();
}

#[tokio::test]
async fn a_program_crashing_two_seconds_into_each_start_never_reads_running() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RestartPolicy {
        mode: RestartMode::OnFailure,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        reset_after: Duration::from_secs(60),
        give_up: Some((3, Duration::from_secs(120))),
    };
    let ready = Readiness {
        lines: maibot_lines(),
        ..Readiness::default()
    };
    let argv = script(
        dir.path(),
        "echo 正在唤醒麦麦; sleep 2; echo Traceback: boom; exit 1",
    );
    let c = component_with(dir.path(), argv, policy, ready, Some(42));
    let mut rx = c.watch();
    c.start().await.unwrap();
    let mut seen = vec![c.status().state];
    let failed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            rx.changed().await.unwrap();
            let s = rx.borrow_and_update().clone();
            seen.push(s.state);
            if s.state == State::Failed {
                return s;
            }
        }
    })
    .await
    .expect("never gave up");
    assert!(!seen.contains(&State::Running), "{seen:?}");
    assert!(seen.contains(&State::Starting), "{seen:?}");
    assert_eq!(failed.crash_count, 3);
    assert_eq!(failed.restart_count, 2);
}

#[tokio::test]
async fn failure_lines_are_plain_text_while_the_terminal_keeps_the_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"printf '\033[31mERROR\033[0m \033[1mdatabase locked\033[0m\n'
printf 'progress 10%%\rprogress 100%%\n'
printf '\033]0;window title\007after the title\n'
exit 3"#;
    let c = component(dir.path(), body, no_restart(), Duration::from_secs(2));
    c.start().await.unwrap();
    let s = wait_for(&c, "failed", |s| s.state == State::Failed).await;
    let lines = s.failure.unwrap().last_lines;
    for want in ["ERROR database locked", "progress 100%", "after the title"] {
        assert!(lines.iter().any(|l| l == want), "{want:?} not in {lines:?}");
    }
    assert!(
        lines
            .iter()
            .all(|l| !l.contains('\x1b') && !l.contains('\r'))
    );
    let raw = c.logs().tail_text(10).join("\n");
    assert!(raw.contains("\x1b[31mERROR"), "raw output lost: {raw:?}");
}
