//! A size-capped log file rotated to numbered siblings.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `name.log`, rotated to `name.log.1` … `name.log.<keep>` (oldest removed) when it would
/// grow past `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    out: BufWriter<File>,
    size: u64,
}

fn sibling(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    /// Opens `path` for appending (creating its directory).
    pub fn open(path: PathBuf, max_bytes: u64, keep: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = f.metadata()?.len();
        Ok(Self {
            path,
            max_bytes: max_bytes.max(1),
            keep,
            out: BufWriter::with_capacity(64 * 1024, f),
            size,
        })
    }

    /// Appends `data`, rotating first when it would not fit.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + data.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Pushes buffered bytes to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(sibling(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let from = sibling(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, sibling(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, sibling(&self.path, 1))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, f);
        self.size = 0;
        Ok(())
    }
}
