//! Draining a child's output into a [`LogPipeline`].

use super::{LogPipeline, plain_line};
use std::io::Read;
use std::ops::Range;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest partial line kept waiting for its newline; beyond it the bytes are cut as a
/// record so a newline-less flood cannot grow memory without bound.
const MAX_PENDING: usize = 64 * 1024;

/// Watches the output for the first line that contains one of `needles` (compared as
/// [`plain_line`] text) and calls `on_match` once, after that line is published. Only
/// lines up to the match are scanned; after it the watch is dropped and costs nothing.
pub struct LineWatch {
    needles: Vec<String>,
    on_match: Box<dyn FnOnce() + Send>,
}

impl LineWatch {
    /// A watch for any of `needles`.
    pub fn new(needles: Vec<String>, on_match: impl FnOnce() + Send + 'static) -> Self {
        Self {
            needles,
            on_match: Box::new(on_match),
        }
    }

    fn matches(&self, lines: &[&[u8]]) -> bool {
        lines.iter().any(|l| {
            let text = plain_line(l);
            self.needles.iter().any(|n| text.contains(n.as_str()))
        })
    }
}

impl std::fmt::Debug for LineWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWatch")
            .field("needles", &self.needles)
            .finish_non_exhaustive()
    }
}

/// Size of one `read`.
const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the two threads.
const IN_FLIGHT: usize = 64;

/// Starts draining `reader` (a PTY master or pipe) into `pipeline` on dedicated threads:
/// one blocks in `read`, the other cuts lines and flushes a partial line (a prompt) after
/// `flush_after` of quiet. The returned handle finishes at end of file, after the last
/// bytes are published.
///
/// Read buffers travel back to the reading thread once their bytes are copied out, so a
/// run allocates at most `IN_FLIGHT + 2` of them however long it floods; lines are handed
/// to the pipeline as slices of one pending buffer, never as one allocation each.
pub fn spawn_reader(
    reader: Box<dyn Read + Send>,
    pipeline: LogPipeline,
    flush_after: Duration,
    name: &str,
) -> std::io::Result<JoinHandle<()>> {
    spawn_reader_watching(reader, pipeline, flush_after, name, None)
}

/// [`spawn_reader`] with an optional [`LineWatch`] on the published records.
pub fn spawn_reader_watching(
    mut reader: Box<dyn Read + Send>,
    pipeline: LogPipeline,
    flush_after: Duration,
    name: &str,
    mut watch: Option<LineWatch>,
) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 1);
    std::thread::Builder::new()
        .name(format!("{name}-read"))
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        // A returned buffer keeps its capacity, which follows the sizes
                        // reads actually return (a PTY gives a few KiB at a time), not the
                        // size asked for.
                        let mut chunk = free_rx.try_recv().unwrap_or_default();
                        chunk.clear();
                        chunk.extend_from_slice(&buf[..n]);
                        if tx.send(chunk).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // EIO is how a PTY master reports that the child side closed.
                    Err(_) => break,
                }
            }
        })?;
    std::thread::Builder::new()
        .name(format!("{name}-lines"))
        .spawn(move || {
            let mut pending: Vec<u8> = Vec::new();
            let mut ranges: Vec<Range<usize>> = Vec::new();
            let give_back = |chunk: Vec<u8>| {
                // A full return queue (the reader exited) just drops the buffer.
                let _ = free_tx.try_send(chunk);
            };
            loop {
                match rx.recv_timeout(flush_after) {
                    Ok(chunk) => {
                        pending.extend_from_slice(&chunk);
                        give_back(chunk);
                        // Take whatever else is already queued before publishing once, up
                        // to one `MAX_PENDING`: a bigger batch saves little locking and makes
                        // every run's pending buffer a larger heap block to come and go.
                        while let Ok(more) = rx.try_recv() {
                            pending.extend_from_slice(&more);
                            give_back(more);
                            if pending.len() > MAX_PENDING {
                                break;
                            }
                        }
                        let used = cut_lines(&pending, &mut ranges);
                        if !ranges.is_empty() {
                            if watch.is_some() {
                                let lines: Vec<&[u8]> =
                                    ranges.iter().map(|r| &pending[r.clone()]).collect();
                                publish_watched(&pipeline, &mut watch, &lines);
                            } else {
                                pipeline.publish(ranges.iter().map(|r| &pending[r.clone()]));
                            }
                        }
                        pending.drain(..used);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !pending.is_empty() {
                            publish_watched(&pipeline, &mut watch, &[pending.as_slice()]);
                            pending.clear();
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if !pending.is_empty() {
                            publish_watched(&pipeline, &mut watch, &[pending.as_slice()]);
                        }
                        break;
                    }
                }
            }
        })
}

/// Publishes `lines`, then fires the watch (once) when they hold its line.
fn publish_watched(pipeline: &LogPipeline, watch: &mut Option<LineWatch>, lines: &[&[u8]]) {
    let hit = watch.as_ref().is_some_and(|w| w.matches(lines));
    pipeline.publish(lines.iter().copied());
    if hit && let Some(w) = watch.take() {
        (w.on_match)();
    }
}

/// Fills `ranges` with every complete line (newline included) at the front of `pending`,
/// then cuts an over-long partial line into `MAX_PENDING` pieces; returns how many bytes
/// the ranges cover (the caller drops them after publishing).
fn cut_lines(pending: &[u8], ranges: &mut Vec<Range<usize>>) -> usize {
    ranges.clear();
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
        ranges.push(start..start + pos + 1);
        start += pos + 1;
    }
    while pending.len() - start > MAX_PENDING {
        ranges.push(start..start + MAX_PENDING);
        start += MAX_PENDING;
    }
    start
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{LineWatch, MAX_PENDING, cut_lines, spawn_reader_watching};
    use crate::logs::{LogConfig, LogPipeline};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn the_watch_fires_once_on_plain_text_and_every_record_is_still_published() {
        let p = LogPipeline::new(LogConfig::default()).unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let watch = LineWatch::new(vec!["系统初始化完成".into()], move || {
            f.fetch_add(1, Ordering::SeqCst);
        });
        let out = "loading\n\x1b[32m全部系统\x1b[1m初始化完成\x1b[0m\nagain 系统初始化完成\n";
        let input = Box::new(std::io::Cursor::new(out.as_bytes().to_vec()));
        let drain = spawn_reader_watching(
            input,
            p.clone(),
            Duration::from_millis(20),
            "w",
            Some(watch),
        )
        .unwrap();
        drain.join().unwrap();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert_eq!(p.buffered().0, 3);
    }

    #[test]
    fn cuts_complete_lines_and_keeps_the_partial_one() {
        let p = b"a\nbb\r\nccc".to_vec();
        let mut ranges = Vec::new();
        let used = cut_lines(&p, &mut ranges);
        let lines: Vec<&[u8]> = ranges.iter().map(|r| &p[r.clone()]).collect();
        assert_eq!(lines, vec![&b"a\n"[..], &b"bb\r\n"[..]]);
        assert_eq!(&p[used..], b"ccc");
    }

    #[test]
    fn cuts_an_over_long_partial_line() {
        let p = vec![b'x'; 2 * MAX_PENDING + 5];
        let mut ranges = Vec::new();
        let used = cut_lines(&p, &mut ranges);
        assert_eq!(ranges, vec![0..MAX_PENDING, MAX_PENDING..2 * MAX_PENDING]);
        assert_eq!(p.len() - used, 5);
    }
}
