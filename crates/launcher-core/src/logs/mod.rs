//! The per-component log pipeline.
//!
//! Every byte a child writes is drained all the time, watched or not, and split into
//! [`Record`]s with a monotonically increasing sequence number. Each record goes, under one
//! lock, to (1) a ring buffer bounded by bytes and by records, for replay; (2) a size-capped
//! rotating file; (3) a broadcast channel. A slow subscriber never slows the child: the
//! channel overwrites what it has not read, and the subscriber receives one
//! [`Event::Skipped`] saying how many records it missed.
//!
//! Subscribing takes the ring snapshot and joins the channel under the same lock as
//! publishing, so "replay from N, then live" has neither gaps nor duplicates.

mod file;
mod plain;
mod reader;

pub use file::RotatingFile;
pub use plain::plain_line;
pub use reader::{LineWatch, spawn_reader, spawn_reader_watching};

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// One piece of output: a line (with its newline) or a flushed partial line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the component's output, from 1, never reused.
    pub seq: u64,
    /// When the record was cut.
    pub ts: DateTime<Utc>,
    /// The raw bytes, ANSI sequences included.
    pub data: Vec<u8>,
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The next record.
    Record(Arc<Record>),
    /// The subscriber fell behind and this many records were dropped for it.
    Skipped {
        /// How many records it missed.
        missed: u64,
    },
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Only what comes next.
    None,
    /// Every buffered record with `seq >= n`, then live.
    FromSeq(u64),
    /// The last `k` buffered records, then live.
    Tail(usize),
}

/// Limits and destinations of one pipeline.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Ring buffer limit in bytes of record data.
    pub ring_max_bytes: usize,
    /// Ring buffer limit in records.
    pub ring_max_records: usize,
    /// Records a subscriber may lag before it skips.
    pub channel_capacity: usize,
    /// The log file, if any (rotated to `<name>.1`, `<name>.2`, …).
    pub file: Option<PathBuf>,
    /// Size at which the file rotates.
    pub file_max_bytes: u64,
    /// Rotated files kept besides the live one.
    pub file_keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            ring_max_bytes: 2 * 1024 * 1024,
            ring_max_records: 10_000,
            channel_capacity: 4096,
            file: None,
            file_max_bytes: 10 * 1024 * 1024,
            file_keep: 5,
        }
    }
}

struct State {
    ring: VecDeque<Arc<Record>>,
    /// Sum of the records' data lengths: what the byte bound limits.
    ring_bytes: usize,
    /// Sum of the records' buffer capacities: what the ring actually holds on the heap.
    ring_capacity: usize,
    next_seq: u64,
    file: Option<RotatingFile>,
    file_error_reported: bool,
}

/// A component's log pipeline. Cheap to clone; all clones share one stream.
#[derive(Clone)]
pub struct LogPipeline {
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<Arc<Record>>,
    cfg: Arc<LogConfig>,
}

impl std::fmt::Debug for LogPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogPipeline")
            .field("next_seq", &self.next_seq())
            .finish()
    }
}

/// A live subscription: the replayed records, then [`Subscription::recv`].
#[derive(Debug)]
pub struct Subscription {
    /// Buffered records requested by the [`Replay`], oldest first.
    pub replay: Vec<Arc<Record>>,
    /// Records that were asked for but had already left the ring (`FromSeq` older than
    /// the buffer): the subscriber should show that a gap precedes the replay.
    pub evicted: u64,
    rx: broadcast::Receiver<Arc<Record>>,
}

impl Subscription {
    /// The next event; `None` once the pipeline is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(r) => Some(Event::Record(r)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Event::Skipped { missed: n }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl LogPipeline {
    /// A pipeline with these limits; opens (appends to) the log file if one is configured.
    pub fn new(cfg: LogConfig) -> std::io::Result<Self> {
        let file = match &cfg.file {
            Some(p) => Some(RotatingFile::open(
                p.clone(),
                cfg.file_max_bytes,
                cfg.file_keep,
            )?),
            None => None,
        };
        let (tx, _) = broadcast::channel(cfg.channel_capacity.max(1));
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                ring: VecDeque::new(),
                ring_bytes: 0,
                ring_capacity: 0,
                next_seq: 1,
                file,
                file_error_reported: false,
            })),
            tx,
            cfg: Arc::new(cfg),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the ring inconsistent in a way that
        // matters more than losing the component's output: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Publishes one record per item, in order; returns the last sequence number used.
    ///
    /// Once the ring is full, a record leaving it is reused for the next one (its `Arc`
    /// and, when the sizes are close, its buffer) unless a subscriber still holds it, so a
    /// steady flood allocates nothing per line. Fresh per-line allocations made by the
    /// reader thread of each run landed in that thread's malloc arena and outlived it in
    /// the ring; with a new thread per run, glibc spread them over up to 8 arenas per core,
    /// each kept fragmented by the survivors, and the daemon grew ~2 MB per million lines
    /// with no plateau in sight.
    pub fn publish<I, B>(&self, items: I) -> u64
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut guard = self.lock();
        let st = &mut *guard;
        let now = Utc::now();
        for item in items {
            let data = item.as_ref();
            let seq = st.next_seq;
            st.next_seq += 1;
            let failed = st.file.as_mut().and_then(|f| f.write(data).err());
            if let Some(e) = failed
                && !st.file_error_reported
            {
                tracing::warn!(error = %e, "component log file write failed; output stays in memory");
                st.file_error_reported = true;
            }
            // Make room first, so the record leaving the ring can carry the new one.
            let mut spare = None;
            while st.ring.len() >= self.cfg.ring_max_records.max(1)
                || (!st.ring.is_empty() && st.ring_bytes + data.len() > self.cfg.ring_max_bytes)
            {
                let Some(old) = st.ring.pop_front() else {
                    break;
                };
                st.ring_bytes -= old.data.len();
                st.ring_capacity -= old.data.capacity();
                spare = Some(old);
            }
            let reused = spare.and_then(|mut old| {
                let r = Arc::get_mut(&mut old)?;
                r.seq = seq;
                r.ts = now;
                refill(&mut r.data, data);
                Some(old)
            });
            let rec = reused.unwrap_or_else(|| {
                Arc::new(Record {
                    seq,
                    ts: now,
                    data: data.to_vec(),
                })
            });
            st.ring_bytes += rec.data.len();
            st.ring_capacity += rec.data.capacity();
            st.ring.push_back(rec.clone());
            // No receivers is not an error: output is kept in the ring and the file.
            let _ = self.tx.send(rec);
        }
        if let Some(f) = st.file.as_mut() {
            let _ = f.flush();
        }
        st.next_seq - 1
    }

    /// Subscribes, replaying buffered records as asked.
    pub fn subscribe(&self, replay: Replay) -> Subscription {
        let st = self.lock();
        let rx = self.tx.subscribe();
        let oldest = st.ring.front().map_or(st.next_seq, |r| r.seq);
        let (records, evicted): (Vec<_>, u64) = match replay {
            Replay::None => (Vec::new(), 0),
            Replay::FromSeq(n) => {
                let n = n.max(1);
                let skip = n.saturating_sub(oldest) as usize;
                (
                    st.ring.iter().skip(skip).cloned().collect(),
                    oldest.saturating_sub(n),
                )
            }
            Replay::Tail(k) => {
                let skip = st.ring.len().saturating_sub(k);
                (st.ring.iter().skip(skip).cloned().collect(), 0)
            }
        };
        Subscription {
            replay: records,
            evicted,
            rx,
        }
    }

    /// The last `k` buffered records as text (lossy UTF-8), e.g. for a failure report.
    pub fn tail_text(&self, k: usize) -> Vec<String> {
        let st = self.lock();
        let skip = st.ring.len().saturating_sub(k);
        st.ring
            .iter()
            .skip(skip)
            .map(|r| {
                String::from_utf8_lossy(&r.data)
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            })
            .collect()
    }

    /// The last `k` buffered records as plain text ([`plain_line`]: no ANSI escapes, carriage
    /// returns applied), for failure reports read outside a terminal.
    pub fn tail_plain(&self, k: usize) -> Vec<String> {
        let st = self.lock();
        let skip = st.ring.len().saturating_sub(k);
        st.ring
            .iter()
            .skip(skip)
            .map(|r| plain_line(&r.data))
            .collect()
    }

    /// Buffered record count and bytes.
    pub fn buffered(&self) -> (usize, usize) {
        let st = self.lock();
        (st.ring.len(), st.ring_bytes)
    }

    /// Heap bytes held by the buffered records' data (capacity, not length): stays within
    /// 1.5 × the byte bound plus [`Self::RETAINED_SLACK`] per record, because a reused
    /// buffer is never much larger than its record.
    pub fn retained_bytes(&self) -> usize {
        self.lock().ring_capacity
    }

    /// How much larger than its record a reused buffer may be: half the record plus this
    /// many bytes. Beyond it the buffer is replaced by an exact one, so a ring that once
    /// held long lines does not keep their buffers for short ones.
    pub const RETAINED_SLACK: usize = 64;
}

/// Puts `data` into a reused buffer, keeping the buffer only when its size is close.
fn refill(buf: &mut Vec<u8>, data: &[u8]) {
    let fits = buf.capacity() >= data.len()
        && buf.capacity() - data.len() <= data.len() / 2 + LogPipeline::RETAINED_SLACK;
    if fits {
        buf.clear();
        buf.extend_from_slice(data);
    } else {
        *buf = data.to_vec();
    }
}
