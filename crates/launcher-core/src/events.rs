//! The event bus behind the event WebSocket: job and instance-state events in one ordered
//! sequence, with a ring of recent events so a client that reconnects can replay what it
//! missed from the last `seq` it saw.
//!
//! Component output is deliberately not on the bus: it can run at hundreds of thousands of
//! lines a second and already has its own numbered ring in each component's log pipeline,
//! which the WebSocket subscribes to directly.

use crate::jobs::{JobEvent, Jobs};
use crate::supervisor::{StateChange, Supervisor};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// One event on the bus.
#[derive(Debug, Clone, Serialize)]
pub struct BusEvent {
    /// Position on the bus, from 1, never reused within a daemon run.
    pub seq: u64,
    /// When it was published.
    pub ts: DateTime<Utc>,
    /// `job.log`, `job.progress`, `job.finished` or `instance.state`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it is about: `job:<id>` or `instance:<id>`.
    pub topic: String,
    /// The payload.
    pub data: Value,
}

/// What a new subscriber gets.
#[derive(Debug)]
pub struct BusSubscription {
    /// Buffered events after the requested sequence, oldest first.
    pub replay: Vec<Arc<BusEvent>>,
    /// Events after the requested sequence that are no longer buffered (0 when none were
    /// lost); the client should re-read state over HTTP.
    pub missed: u64,
    /// The last sequence number covered by the replay: live events start after it.
    pub covered: u64,
    /// Live events after the replay, without gap or overlap.
    pub live: broadcast::Receiver<Arc<BusEvent>>,
}

struct Ring {
    next_seq: u64,
    events: VecDeque<Arc<BusEvent>>,
}

struct Inner {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<BusEvent>>,
    capacity: usize,
}

/// The daemon's event bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl EventBus {
    /// A bus that keeps the last `capacity` events for replay.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    next_seq: 1,
                    events: VecDeque::with_capacity(capacity),
                }),
                tx,
                capacity,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // The ring is consistent after every statement that mutates it; a panic elsewhere
        // while holding the lock cannot leave it half-updated.
        self.inner.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Publishes an event and returns its sequence number.
    pub fn publish(&self, kind: &'static str, topic: String, data: Value) -> u64 {
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        let ev = Arc::new(BusEvent {
            seq,
            ts: Utc::now(),
            kind,
            topic,
            data,
        });
        if ring.events.len() == self.inner.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(ev.clone());
        // Sent under the lock so subscribers see the same order as the ring; no receiver
        // is not an error.
        let _ = self.inner.tx.send(ev);
        seq
    }

    /// Subscribes to live events, first replaying the buffered ones with a sequence
    /// greater than `after` (none when `after` is `None`).
    pub fn subscribe(&self, after: Option<u64>) -> BusSubscription {
        let ring = self.lock();
        let live = self.inner.tx.subscribe();
        let covered = ring.next_seq - 1;
        let Some(after) = after else {
            return BusSubscription {
                replay: Vec::new(),
                missed: 0,
                covered,
                live,
            };
        };
        let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
        let missed = oldest.saturating_sub(after.saturating_add(1));
        let replay = ring
            .events
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect();
        BusSubscription {
            replay,
            missed,
            covered,
            live,
        }
    }

    /// Forwards every job event onto the bus until the job manager goes away.
    pub fn feed_jobs(&self, jobs: &Jobs) -> JoinHandle<()> {
        let mut rx = jobs.subscribe();
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => bus.publish_job(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event bus fell behind the job events");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    fn publish_job(&self, ev: JobEvent) {
        let (kind, job_id, data) = match ev {
            JobEvent::Log { job_id, line } => (
                "job.log",
                job_id.clone(),
                json!({"job_id": job_id, "seq": line.seq, "ts": line.ts, "level": line.level, "line": line.line}),
            ),
            JobEvent::Progress {
                job_id,
                phase,
                progress,
            } => (
                "job.progress",
                job_id.clone(),
                json!({"job_id": job_id, "phase": phase, "progress": progress}),
            ),
            JobEvent::Finished {
                job_id,
                status,
                instance_id,
                error,
            } => (
                "job.finished",
                job_id.clone(),
                json!({"job_id": job_id, "status": status, "instance_id": instance_id, "error": error}),
            ),
        };
        self.publish(kind, format!("job:{job_id}"), data);
    }

    /// Forwards every recorded component state change onto the bus.
    pub fn feed_supervisor(&self, sup: &Supervisor) -> JoinHandle<()> {
        let mut rx = sup.subscribe();
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ch) => bus.publish_state(ch),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event bus fell behind the state changes");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }

    fn publish_state(&self, ch: StateChange) {
        let s = &ch.status;
        let data = json!({
            "instance_id": ch.instance,
            "component": ch.component,
            "state": s.state.as_str(),
            "instance_state": ch.instance_state.as_str(),
            "pid": s.pid,
            "start_count": s.start_count,
            "restart_count": s.restart_count,
            "last_exit": s.last_exit.as_ref().map(|e| json!({
                "code": e.code,
                "signal": e.signal,
                "at": e.at,
                "reason": e.describe(),
            })),
            "failure": s.failure.as_ref().map(|f| json!({"reason": f.reason, "last_lines": f.last_lines})),
        });
        self.publish("instance.state", format!("instance:{}", ch.instance), data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_resumes_after_the_given_sequence_and_reports_what_was_evicted() {
        let bus = EventBus::new(3);
        for i in 0..5 {
            bus.publish("job.log", "job:x".into(), json!(i));
        }
        // Ring holds 3, 4, 5.
        let sub = bus.subscribe(Some(3));
        let seqs: Vec<u64> = sub.replay.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(sub.missed, 0);
        let sub = bus.subscribe(Some(0));
        assert_eq!(sub.replay.len(), 3);
        assert_eq!(sub.missed, 2, "events 1 and 2 were evicted");
        let sub = bus.subscribe(None);
        assert!(sub.replay.is_empty());
        assert_eq!(bus.next_seq(), 6);
    }

    #[tokio::test]
    async fn live_events_follow_the_replay_without_gap_or_overlap() {
        let bus = EventBus::new(16);
        bus.publish("job.log", "job:x".into(), json!(1));
        let mut sub = bus.subscribe(Some(0));
        bus.publish("job.log", "job:x".into(), json!(2));
        assert_eq!(sub.replay.len(), 1);
        let next = sub.live.recv().await.map(|e| e.seq).ok();
        assert_eq!(next, Some(2));
    }
}
