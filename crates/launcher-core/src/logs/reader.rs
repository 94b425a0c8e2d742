//! Draining a child's output into a [`LogPipeline`].

use super::{LogPipeline, plain_line};
use std::io::Read;
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

    fn matches(&self, lines: &[Vec<u8>]) -> bool {
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

/// Starts draining `reader` (a PTY master or pipe) into `pipeline` on dedicated threads:
/// one blocks in `read`, the other cuts lines and flushes a partial line (a prompt) after
/// `flush_after` of quiet. The returned handle finishes at end of file, after the last
/// bytes are published.
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
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
    std::thread::Builder::new()
        .name(format!("{name}-read"))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
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
            // Publishes, then fires the watch when these records hold its line.
            let mut publish = |lines: Vec<Vec<u8>>| {
                let hit = watch.as_ref().is_some_and(|w| w.matches(&lines));
                pipeline.publish(lines);
                if hit && let Some(w) = watch.take() {
                    (w.on_match)();
                }
            };
            loop {
                match rx.recv_timeout(flush_after) {
                    Ok(chunk) => {
                        pending.extend_from_slice(&chunk);
                        // Take whatever else is already queued before publishing once.
                        while let Ok(more) = rx.try_recv() {
                            pending.extend_from_slice(&more);
                            if pending.len() > 4 * MAX_PENDING {
                                break;
                            }
                        }
                        let lines = cut_lines(&mut pending);
                        if !lines.is_empty() {
                            publish(lines);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !pending.is_empty() {
                            publish(vec![std::mem::take(&mut pending)]);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if !pending.is_empty() {
                            publish(vec![std::mem::take(&mut pending)]);
                        }
                        break;
                    }
                }
            }
        })
}

/// Removes every complete line (newline included) from the front of `pending`; also cuts
/// an over-long partial line.
fn cut_lines(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
        out.push(pending[start..start + pos + 1].to_vec());
        start += pos + 1;
    }
    pending.drain(..start);
    while pending.len() > MAX_PENDING {
        out.push(pending.drain(..MAX_PENDING).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{LineWatch, cut_lines, spawn_reader_watching};
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
        let mut p = b"a\nbb\r\nccc".to_vec();
        let lines = cut_lines(&mut p);
        assert_eq!(lines, vec![b"a\n".to_vec(), b"bb\r\n".to_vec()]);
        assert_eq!(p, b"ccc");
    }
}
