//! The access token: generated at first start, stored in the data directory readable by
//! its owner only, required on every request when the server is exposed beyond loopback.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("token")
}

fn generate() -> String {
    // 43 characters of a 64-symbol alphabet: 258 bits from the OS-seeded CSPRNG.
    nanoid::nanoid!(43)
}

fn write(data_dir: &Path, token: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let p = path(data_dir);
    let tmp = data_dir.join(".token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

/// The stored token, created when missing. Refuses a token file others can read.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<String> {
    let p = path(data_dir);
    match std::fs::read_to_string(&p) {
        Ok(t) => {
            let mode = std::fs::metadata(&p)?.permissions().mode();
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    p.display(),
                    mode & 0o777,
                    p.display()
                );
            }
            let t = t.trim().to_owned();
            anyhow::ensure!(
                t.len() >= 32,
                "{} holds no valid token; rotate it",
                p.display()
            );
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = generate();
            write(data_dir, &t)?;
            Ok(t)
        }
        Err(e) => Err(e.into()),
    }
}

/// Replaces the token; the old one stops working at the next server start.
pub fn rotate(data_dir: &Path) -> anyhow::Result<String> {
    let t = generate();
    write(data_dir, &t)?;
    Ok(t)
}
