//! The log pipeline: replay, bounds, slow subscribers, rotation, and real children
//! draining into it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::logs::{Event, LogConfig, LogPipeline, Replay, spawn_reader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lines(n: usize, from: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| format!("line {i}\n").into_bytes())
        .collect()
}

fn seqs(records: &[std::sync::Arc<launcher_core::logs::Record>]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn replay_from_a_sequence_returns_exactly_the_missed_records_then_live() {
    let p = LogPipeline::new(LogConfig::default()).unwrap();
    assert_eq!(p.publish(lines(100, 1)), 100);
    let mut sub = p.subscribe(Replay::FromSeq(41));
    assert_eq!(seqs(&sub.replay), (41..=100).collect::<Vec<_>>());
    assert_eq!(sub.evicted, 0);
    p.publish(lines(5, 101));
    for want in 101..=105 {
        match sub.recv().await.unwrap() {
            Event::Record(r) => {
                assert_eq!(r.seq, want);
                assert_eq!(r.data, format!("line {want}\n").into_bytes());
            }
            other => panic!("{other:?}"),
        }
    }
    let tail = p.subscribe(Replay::Tail(10));
    assert_eq!(seqs(&tail.replay), (96..=105).collect::<Vec<_>>());
    assert!(p.subscribe(Replay::None).replay.is_empty());
    assert_eq!(p.tail_text(2), vec!["line 104", "line 105"]);
}

#[tokio::test]
async fn the_ring_is_bounded_by_records_and_by_bytes() {
    let p = LogPipeline::new(LogConfig {
        ring_max_records: 100,
        ..Default::default()
    })
    .unwrap();
    p.publish(lines(1000, 1));
    assert_eq!(p.buffered().0, 100);
    let sub = p.subscribe(Replay::FromSeq(1));
    assert_eq!(sub.evicted, 900, "the gap before the replay is reported");
    assert_eq!(sub.replay.first().unwrap().seq, 901);

    let p = LogPipeline::new(LogConfig {
        ring_max_bytes: 1000,
        ..Default::default()
    })
    .unwrap();
    p.publish((0..100).map(|_| vec![b'x'; 100]));
    let (n, bytes) = p.buffered();
    assert!(bytes <= 1000 && n == 10, "{n} records, {bytes} bytes");
}

#[tokio::test]
async fn a_full_ring_reuses_its_records_and_its_heap_stays_within_the_byte_bound() {
    let cfg = LogConfig {
        ring_max_records: 100,
        ring_max_bytes: 8 * 1024,
        channel_capacity: 16,
        ..Default::default()
    };
    let p = LogPipeline::new(cfg.clone()).unwrap();
    p.publish(lines(100, 1));
    let oldest = {
        let sub = p.subscribe(Replay::Tail(100));
        std::sync::Arc::as_ptr(&sub.replay[0]) as usize
    };
    p.publish(lines(1, 101));
    let newest = {
        let sub = p.subscribe(Replay::Tail(1));
        assert_eq!(sub.replay[0].seq, 101);
        assert_eq!(sub.replay[0].data, b"line 101\n");
        std::sync::Arc::as_ptr(&sub.replay[0]) as usize
    };
    assert_eq!(oldest, newest, "the evicted record carries the next one");

    // Long lines, then a long run of short ones, then mixed sizes: what the ring holds on
    // the heap follows what it buffers, never what it once buffered.
    p.publish((0..50).map(|_| vec![b'L'; 4000]));
    p.publish(lines(10_000, 1));
    p.publish((0..20_000).map(|i| vec![b'm'; 1 + (i * 37) % 300]));
    let (n, bytes) = p.buffered();
    let retained = p.retained_bytes();
    let bound = cfg.ring_max_bytes * 3 / 2 + LogPipeline::RETAINED_SLACK * cfg.ring_max_records;
    assert!(
        bytes <= cfg.ring_max_bytes && n <= cfg.ring_max_records,
        "{n} records, {bytes} bytes"
    );
    assert!(
        retained >= bytes && retained <= bound,
        "{retained} bytes retained, bound {bound}"
    );
}

#[tokio::test]
async fn a_stalled_subscriber_never_blocks_the_producer_and_is_told_what_it_missed() {
    let p = LogPipeline::new(LogConfig {
        channel_capacity: 16,
        ..Default::default()
    })
    .unwrap();
    let mut stalled = p.subscribe(Replay::None);
    // The producer runs to completion although nobody reads.
    assert_eq!(p.publish(lines(10_000, 1)), 10_000);
    match stalled.recv().await.unwrap() {
        Event::Skipped { missed } => assert_eq!(missed, 10_000 - 16),
        other => panic!("expected a skip marker, got {other:?}"),
    }
    // Then it continues with what the channel kept, in order.
    match stalled.recv().await.unwrap() {
        Event::Record(r) => assert_eq!(r.seq, 10_000 - 16 + 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_log_file_rotates_and_keeps_only_the_configured_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/inst-main.log");
    let p = LogPipeline::new(LogConfig {
        file: Some(path.clone()),
        file_max_bytes: 1000,
        file_keep: 2,
        ..Default::default()
    })
    .unwrap();
    p.publish((0..200).map(|i| format!("{i:049}\n").into_bytes()));
    let live = std::fs::read_to_string(&path).unwrap();
    assert!(live.ends_with(&format!("{:049}\n", 199)));
    assert!(live.len() <= 1000);
    assert!(dir.path().join("logs/inst-main.log.1").exists());
    assert!(dir.path().join("logs/inst-main.log.2").exists());
    assert!(!dir.path().join("logs/inst-main.log.3").exists());
    // The newest rotated file continues exactly where the live one starts.
    let prev = std::fs::read_to_string(dir.path().join("logs/inst-main.log.1")).unwrap();
    let last_prev: u64 = prev.lines().last().unwrap().parse().unwrap();
    let first_live: u64 = live.lines().next().unwrap().parse().unwrap();
    assert_eq!(first_live, last_prev + 1);
}

fn child_stdout(script: &str) -> (std::process::Child, Box<dyn std::io::Read + Send>) {
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    (child, Box::new(out))
}

#[tokio::test]
async fn a_flooding_child_runs_to_completion_with_no_reader_and_with_a_stalled_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = LogPipeline::new(LogConfig {
        channel_capacity: 64,
        file: Some(dir.path().join("flood.log")),
        ..Default::default()
    })
    .unwrap();
    let mut stalled = p.subscribe(Replay::None);
    let (mut child, out) = child_stdout("seq 1 200000");
    let drain = spawn_reader(out, p.clone(), Duration::from_millis(50), "flood").unwrap();
    assert!(child.wait().unwrap().success());
    drain.join().unwrap();
    assert_eq!(p.next_seq() - 1, 200_000, "every line became a record");
    assert_eq!(p.tail_text(1), vec!["200000"]);
    let file = std::fs::read_to_string(dir.path().join("flood.log")).unwrap();
    assert_eq!(file.lines().count(), 200_000);
    assert!(matches!(
        stalled.recv().await.unwrap(),
        Event::Skipped { .. }
    ));
}

#[tokio::test]
async fn a_prompt_without_newline_is_flushed_while_the_child_waits() {
    let p = LogPipeline::new(LogConfig::default()).unwrap();
    let mut sub = p.subscribe(Replay::None);
    let (mut child, out) = child_stdout("printf 'name> '; sleep 60");
    let _drain = spawn_reader(out, p.clone(), Duration::from_millis(50), "prompt").unwrap();
    let started = Instant::now();
    let ev = tokio::time::timeout(Duration::from_secs(30), sub.recv()).await;
    let _ = child.kill();
    let _ = child.wait();
    match ev {
        Ok(Some(Event::Record(r))) => assert_eq!(r.data, b"name> "),
        other => panic!(
            "prompt not flushed before the child finished: {other:?} after {:?}",
            started.elapsed()
        ),
    }
}
