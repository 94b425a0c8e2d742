//! `cargo xtask bench supervisor`: log pipeline throughput against a bare PTY reader,
//! exit-to-observed latency, kill-to-reaped time for a process tree, replay time, and the
//! process's resident memory across repeated floods of one component.

use clap::Parser;
use launcher_core::logs::{Event, LogConfig, Replay};
use launcher_core::supervisor::{
    Component, ComponentConfig, ProcessSpec, Readiness, RestartMode, RestartPolicy, State,
    StopPolicy, spawn,
};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
pub struct Args {
    /// Lines the flooding child prints (80 bytes each).
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Samples for the latency measurements.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Floods of `--flood-lines` lines into one component for the memory figure (0 skips it).
    #[arg(long, default_value_t = 10)]
    floods: usize,
    /// Lines per flood of the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    flood_lines: u64,
}

/// This process's resident set in KiB (`VmRSS`), the figure a user sees for the daemon.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))
}

/// (e) The same component flooded `floods` times (as a bot restarted after each burst),
/// with its log file and one live subscriber, RSS read after each flood. The reference is
/// the RSS after the first flood, when the ring, channel and file buffers are full: what
/// follows should add nothing.
async fn memory_over_floods(dir: &Path, floods: usize, lines: u64) -> anyhow::Result<()> {
    let before = rss_kib()?;
    let c = component(dir, flood_argv(lines), Some(&dir.join("logs/memory.log")))?;
    let mut sub = c.logs().subscribe(Replay::None);
    let reader = tokio::spawn(async move { while sub.recv().await.is_some() {} });
    let mut after = Vec::with_capacity(floods);
    for _ in 0..floods {
        let mut watch = c.watch();
        let starts = watch.borrow().start_count;
        c.start().await?;
        watch
            .wait_for(|s| {
                s.start_count > starts && s.state == State::Stopped && s.last_exit.is_some()
            })
            .await?;
        after.push(rss_kib()?);
    }
    let (ring_records, ring_bytes) = c.logs().buffered();
    let ring_heap = c.logs().retained_bytes();
    drop(c);
    reader.abort();
    let (Some(&first), Some(&last)) = (after.first(), after.last()) else {
        return Ok(());
    };
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "\n(e) RSS over {floods} floods of {lines} lines into one component (ring+file+1 subscriber)"
    );
    println!("  before the first flood  {:>8.1} MB", mb(before));
    let list: Vec<String> = after.iter().map(|k| format!("{:.1}", mb(*k))).collect();
    println!("  after each flood (MB)   {}", list.join("  "));
    println!(
        "  after flood {floods} vs after flood 1 (reference): {:>8.1} MB vs {:>8.1} MB  growth {:+.1} MB   ({:+.2} MB per million lines after the first flood)",
        mb(last),
        mb(first),
        mb(last) - mb(first),
        (mb(last) - mb(first)) / ((floods.saturating_sub(1)).max(1) as f64 * lines as f64 / 1e6)
    );
    println!(
        "  ring at the end: {ring_records} records, {:.2} MB of data in {:.2} MB of buffers (bounds {} records, {:.1} MB)",
        ring_bytes as f64 / 1048576.0,
        ring_heap as f64 / 1048576.0,
        LogConfig::default().ring_max_records,
        LogConfig::default().ring_max_bytes as f64 / 1048576.0
    );
    Ok(())
}

fn flood_argv(lines: u64) -> Vec<String> {
    // 79 characters and a newline per line.
    let line = "x".repeat(79);
    vec![
        "sh".into(),
        "-c".into(),
        format!("yes {line} | head -n {lines}"),
    ]
}

fn component(dir: &Path, argv: Vec<String>, log_file: Option<&Path>) -> anyhow::Result<Component> {
    Ok(Component::new(ComponentConfig {
        name: "bench".into(),
        spec: ProcessSpec::new(argv, dir),
        restart: RestartPolicy {
            mode: RestartMode::Never,
            ..RestartPolicy::default()
        },
        stop: StopPolicy::default(),
        ready: Readiness::default(),
        restart_exit_code: None,
        log: LogConfig {
            file: log_file.map(Path::to_path_buf),
            ..LogConfig::default()
        },
        flush_after: Duration::from_millis(50),
    })?)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "supervisor benchmark ({} lines of 80 bytes; {} latency samples)",
        args.lines, args.samples
    );

    // (a) raw: the same child into a PTY drained by a bare reader.
    let t = Instant::now();
    let mut raw = spawn(&ProcessSpec::new(flood_argv(args.lines), dir.path()))?;
    let raw_bytes = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        while let Ok(k) = raw.reader.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        let _ = raw.child.wait();
        n
    })
    .await?;
    let raw_secs = t.elapsed().as_secs_f64();

    // (a) pipeline: ring buffer + rotating file + one live subscriber.
    let c = component(
        dir.path(),
        flood_argv(args.lines),
        Some(&dir.path().join("logs/bench.log")),
    )?;
    let mut sub = c.logs().subscribe(Replay::None);
    let reader = tokio::spawn(async move {
        let (mut records, mut skipped) = (0u64, 0u64);
        while let Some(ev) = sub.recv().await {
            match ev {
                Event::Record(_) => records += 1,
                Event::Skipped { missed } => skipped += missed,
            }
        }
        (records, skipped)
    });
    let mut watch = c.watch();
    let t = Instant::now();
    c.start().await?;
    watch
        .wait_for(|s| s.state == State::Stopped && s.last_exit.is_some())
        .await?;
    let pipe_secs = t.elapsed().as_secs_f64();
    let records = c.logs().next_seq() - 1;
    drop(c);
    reader.abort();
    let raw_lines = raw_bytes as f64 / 81.0; // the terminal turns "\n" into "\r\n"
    println!("\n(a) log pipeline throughput");
    println!(
        "  bare PTY reader        {:>10.0} lines/s  {:>7.1} MB/s",
        raw_lines / raw_secs,
        raw_bytes as f64 / raw_secs / 1e6
    );
    println!(
        "  pipeline (ring+file+1 subscriber) {:>10.0} lines/s  {:>7.1} MB/s   {:.0}% of raw   ({records} records)",
        records as f64 / pipe_secs,
        raw_bytes as f64 / pipe_secs / 1e6,
        100.0 * raw_secs / pipe_secs
    );

    // (b) exit -> observed state change: SIGKILL the child from outside, time the watch.
    let mut lat = Vec::new();
    for _ in 0..args.samples {
        let c = component(dir.path(), vec!["sleep".into(), "30".into()], None)?;
        c.start().await?;
        let pid = c.status().pid.unwrap_or_default();
        let mut w = c.watch();
        let t = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        w.wait_for(|s| s.state != State::Running).await?;
        lat.push(t.elapsed());
    }
    println!(
        "\n(b) child exit -> observed state change: p50 {:?}  p99 {:?}",
        percentile(lat.clone(), 0.5),
        percentile(lat, 0.99)
    );

    // (c) kill -> reaped for a three-process tree.
    let mut kills = Vec::new();
    for _ in 0..args.samples {
        let c = component(
            dir.path(),
            vec![
                "sh".into(),
                "-c".into(),
                "sleep 300 & sleep 300 & echo up; wait".into(),
            ],
            None,
        )?;
        c.start().await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        c.kill().await?;
        kills.push(t.elapsed());
    }
    println!(
        "(c) kill -> reaped, 3-process tree: p50 {:?}  p99 {:?}",
        percentile(kills.clone(), 0.5),
        percentile(kills, 0.99)
    );

    // (d) replay of the last 1,000 records to a new subscriber.
    let p = launcher_core::logs::LogPipeline::new(LogConfig::default())?;
    p.publish((0..5_000).map(|i| format!("{i:079}\n").into_bytes()));
    let mut reps = Vec::new();
    for _ in 0..args.samples {
        let t = Instant::now();
        let s = p.subscribe(Replay::Tail(1000));
        anyhow::ensure!(s.replay.len() == 1000);
        reps.push(t.elapsed());
    }
    println!(
        "(d) replay of the last 1,000 records: p50 {:?}  p99 {:?}",
        percentile(reps.clone(), 0.5),
        percentile(reps, 0.99)
    );
    if args.floods > 0 {
        memory_over_floods(dir.path(), args.floods, args.flood_lines).await?;
    }
    println!(
        "\ntargets: (a) >= 50% of raw and >= 300,000 lines/s; (b) p50 < 20 ms; (c) < 100 ms; (d) < 5 ms; (e) growth within 5 MB"
    );
    Ok(())
}
