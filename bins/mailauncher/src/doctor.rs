//! `mailauncher doctor`: checks what deploying and running MaiBot needs, and says how to
//! fix what is missing.

use crate::settings::Settings;
use std::process::Command;

struct Report {
    failed: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: &str) {
        println!("[ok]   {what}: {detail}");
    }
    fn warn(&self, what: &str, detail: &str, fix: &str) {
        println!("[warn] {what}: {detail}\n       fix: {fix}");
    }
    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.failed += 1;
        println!("[FAIL] {what}: {detail}\n       fix: {fix}");
    }
}

fn version_of(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&text).trim().to_owned())
}

/// `(major, minor)` from "Python 3.11.7".
fn python_version(text: &str) -> Option<(u32, u32)> {
    let v = text.split_whitespace().nth(1)?;
    let mut it = v.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

pub async fn run(settings: &Settings) -> anyhow::Result<bool> {
    let mut r = Report { failed: 0 };
    match version_of("git", &["--version"]) {
        Some(v) => r.ok("git", &v),
        None => r.fail(
            "git",
            "not found on PATH",
            "install git (e.g. `apt install git`); deploys clone MaiBot with it",
        ),
    }
    let python = ["python3", "python"]
        .iter()
        .find_map(|p| version_of(p, &["--version"]).map(|v| (*p, v)));
    match python {
        Some((cmd, v)) => match python_version(&v) {
            Some((3, minor)) if minor >= 10 => {
                r.ok("python", &format!("{cmd}: {v}"));
                if minor < 12 {
                    r.warn(
                        "python",
                        "MaiBot 1.x needs Python >= 3.12",
                        "install python3.12 to deploy MaiBot 1.x; 0.x versions work",
                    );
                }
            }
            _ => r.fail(
                "python",
                &format!("{cmd} is {v}; MaiBot needs >= 3.10"),
                "install Python 3.10 or newer",
            ),
        },
        None => r.fail(
            "python",
            "neither python3 nor python is on PATH",
            "install Python 3.10 or newer",
        ),
    }
    match version_of("uv", &["--version"]) {
        Some(v) => r.ok("uv", &v),
        None => r.warn(
            "uv",
            "not found; deploys fall back to pip (slower)",
            "`pip install uv` or see https://docs.astral.sh/uv/",
        ),
    }
    let data_dir = settings.data_dir();
    match sysinfo::Disks::new_with_refreshed_list() {
        Ok(disks) => {
            let probe = if data_dir.exists() {
                data_dir.clone()
            } else {
                data_dir
                    .ancestors()
                    .find(|p| p.exists())
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| "/".into())
            };
            let disk = disks
                .iter()
                .filter(|d| probe.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len());
            match disk {
                Some(d) => {
                    let gib = d.available_space() as f64 / (1u64 << 30) as f64;
                    if gib < 2.0 {
                        r.fail(
                            "disk",
                            &format!("{gib:.1} GiB free at {}", d.mount_point().display()),
                            "free space: one MaiBot instance with its venv needs about 1-2 GiB",
                        );
                    } else {
                        r.ok(
                            "disk",
                            &format!("{gib:.1} GiB free at {}", d.mount_point().display()),
                        );
                    }
                }
                None => r.warn("disk", "could not find the data directory's disk", "-"),
            }
        }
        Err(e) => r.warn("disk", &e.to_string(), "-"),
    }
    let addr = (settings.server.host.as_str(), settings.server.port);
    match std::net::TcpListener::bind(addr) {
        Ok(_) => r.ok(
            "port",
            &format!("{}:{} is free", settings.server.host, settings.server.port),
        ),
        Err(e) => r.warn(
            "port",
            &format!(
                "{}:{} cannot be bound ({e}); is the launcher already running?",
                settings.server.host, settings.server.port
            ),
            "stop the other process or set server.port / --port",
        ),
    }
    let url = settings.database_url();
    match maim_db::connect(&url, &maim_db::DbOptions::default()).await {
        Ok(db) => {
            let pending = db.has_pending_migrations().await.unwrap_or(true);
            r.ok(
                "database",
                &format!(
                    "{} reachable{}",
                    db.url(),
                    if pending {
                        "; migrations pending (applied at next start)"
                    } else {
                        ""
                    }
                ),
            );
            db.close().await.ok();
        }
        Err(e) => r.fail(
            "database",
            &e.to_string(),
            "check storage.database_url / --database-url",
        ),
    }
    println!(
        "{}",
        if r.failed == 0 {
            "everything needed is present".to_owned()
        } else {
            format!("{} problem(s) found", r.failed)
        }
    );
    Ok(r.failed == 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_versions() {
        assert_eq!(super::python_version("Python 3.11.7"), Some((3, 11)));
        assert_eq!(super::python_version("garbage"), None);
    }
}
