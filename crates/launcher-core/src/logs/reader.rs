//! Draining a child's output into a [`LogPipeline`].

use super::LogPipeline;
use std::io::Read;
use std::ops::Range;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest partial line kept waiting for its newline; beyond it the bytes are cut as a
/// record so a newline-less flood cannot grow memory without bound.
const MAX_PENDING: usize = 64 * 1024;

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
    mut reader: Box<dyn Read + Send>,
    pipeline: LogPipeline,
    flush_after: Duration,
    name: &str,
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
                            pipeline.publish(ranges.iter().map(|r| &pending[r.clone()]));
                        }
                        pending.drain(..used);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !pending.is_empty() {
                            pipeline.publish([pending.as_slice()]);
                            pending.clear();
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if !pending.is_empty() {
                            pipeline.publish([pending.as_slice()]);
                        }
                        break;
                    }
                }
            }
        })
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
    use super::{MAX_PENDING, cut_lines};

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
