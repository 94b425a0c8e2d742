//! Draining a child's output into a [`LogPipeline`].

use super::LogPipeline;
use std::io::Read;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest partial line kept waiting for its newline; beyond it the bytes are cut as a
/// record so a newline-less flood cannot grow memory without bound.
const MAX_PENDING: usize = 64 * 1024;

/// Starts draining `reader` (a PTY master or pipe) into `pipeline` on dedicated threads:
/// one blocks in `read`, the other cuts lines and flushes a partial line (a prompt) after
/// `flush_after` of quiet. The returned handle finishes at end of file, after the last
/// bytes are published.
pub fn spawn_reader(
    mut reader: Box<dyn Read + Send>,
    pipeline: LogPipeline,
    flush_after: Duration,
    name: &str,
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
                            pipeline.publish(lines);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if !pending.is_empty() {
                            pipeline.publish([std::mem::take(&mut pending)]);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if !pending.is_empty() {
                            pipeline.publish([std::mem::take(&mut pending)]);
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
    use super::cut_lines;

    #[test]
    fn cuts_complete_lines_and_keeps_the_partial_one() {
        let mut p = b"a\nbb\r\nccc".to_vec();
        let lines = cut_lines(&mut p);
        assert_eq!(lines, vec![b"a\n".to_vec(), b"bb\r\n".to_vec()]);
        assert_eq!(p, b"ccc");
    }
}
