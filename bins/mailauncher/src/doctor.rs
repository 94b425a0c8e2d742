//! `mailauncher doctor`: checks what deploying and running MaiBot needs, and says how to
//! fix what is missing. It only looks: no file or directory is created (the database is
//! checked by its file's existence and permissions, never opened), and every remote check
//! has a short deadline and runs at the same time as the others.

use crate::settings::Settings;
use launcher_core::deploy::python::{self, Interpreter, RequiresPython, SearchRoots};
use launcher_core::deploy::{UseUv, reach, recipe};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Deadline of each remote check (a git URL, a package index).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(5);

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
    fn note(&self, line: &str) {
        println!("       {line}");
    }
}

fn version_of(cmd: &Path, args: &[&str]) -> Option<String> {
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

/// The MaiBot families and the Python each needs, from the deploy recipes (one place to
/// change if the recipe table moves).
fn families() -> Vec<(&'static str, (u32, u32))> {
    recipe::RECIPES
        .iter()
        .map(|r| (r.layout_name(), r.min_python))
        .collect()
}

/// What a remote check is about, for the report line.
enum Remote {
    Git { source: &'static str, url: String },
    Index { url: String },
}

pub async fn run(settings: &Settings) -> anyhow::Result<bool> {
    let cfg = &settings.deploy;
    let mut r = Report { failed: 0 };

    // Remote checks first, so they run while the local ones do.
    let mut remotes = tokio::task::JoinSet::new();
    let mut n = 0usize;
    for (name, src) in [
        ("maibot", &cfg.sources.maibot),
        ("adapter", &cfg.sources.adapter),
    ] {
        for url in src.urls() {
            let (git, url) = (cfg.git.clone(), url.to_string());
            let i = n;
            n += 1;
            remotes.spawn(async move {
                let res = reach::git_source_answers(&git, &url, REMOTE_TIMEOUT)
                    .await
                    .map(|heads| format!("answers ({heads} branches)"));
                (i, Remote::Git { source: name, url }, res)
            });
        }
    }
    let index = cfg.index_url.clone();
    for url in std::iter::once(index).chain(cfg.extra_index_url.clone()) {
        let i = n;
        n += 1;
        remotes.spawn(async move {
            let u = url.clone();
            let res = match tokio::time::timeout(
                REMOTE_TIMEOUT,
                tokio::task::spawn_blocking(move || index_answers(&u)),
            )
            .await
            {
                Ok(Ok(res)) => res,
                Ok(Err(e)) => Err(format!("check failed: {e}")),
                Err(_) => Err(format!(
                    "no answer within {} s (name lookup or connect)",
                    REMOTE_TIMEOUT.as_secs()
                )),
            };
            (i, Remote::Index { url }, res)
        });
    }

    match version_of(&cfg.git, &["--version"]) {
        Some(v) => r.ok("git", &v),
        None => r.fail(
            "git",
            &format!("{} does not run", cfg.git.display()),
            "install git (e.g. `apt install git`) or set deploy.git; deploys clone MaiBot with it",
        ),
    }

    let uv_path = cfg.uv.clone().unwrap_or_else(|| PathBuf::from("uv"));
    let uv = version_of(&uv_path, &["--version"]);
    let can_provision = uv.is_some() && cfg.use_uv != UseUv::Never && cfg.provision_python;
    check_python(&mut r, settings, uv.is_some(), can_provision).await;
    match &uv {
        Some(v) => r.ok("uv", v),
        None => r.warn(
            "uv",
            "not found; deploys fall back to pip (slower) and cannot install a missing Python",
            "`pip install uv` or see https://docs.astral.sh/uv/ (or set deploy.uv)",
        ),
    }

    let mut results = Vec::with_capacity(n);
    while let Some(joined) = remotes.join_next().await {
        if let Ok(x) = joined {
            results.push(x);
        }
    }
    results.sort_by_key(|(i, _, _)| *i);
    report_remotes(&mut r, results);

    check_disk(&mut r, &settings.data_dir());
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
    check_database(&mut r, &settings.database_url()).await;
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

/// Every interpreter found, which MaiBot families each runs, and per family the one a
/// deploy would use — or that it would be installed first, or what to install.
async fn check_python(r: &mut Report, settings: &Settings, have_uv: bool, can_provision: bool) {
    let cfg = &settings.deploy;
    let found = python::discover(cfg.python.as_deref(), &SearchRoots::from_env()).await;
    if let Some(c) = &cfg.python
        && !found.iter().any(|i| i.source == python::Source::Configured)
    {
        let why = python::probe(c)
            .await
            .err()
            .unwrap_or_else(|| "it did not answer".to_owned());
        r.fail(
            "python",
            &format!("deploy.python does not run: {why}"),
            "point deploy.python at a working interpreter or remove it",
        );
    }
    let families: Vec<(&str, RequiresPython)> = families()
        .into_iter()
        .map(|(name, min)| (name, RequiresPython::at_least(min)))
        .collect();
    if found.is_empty() {
        r.warn(
            "python",
            "no interpreter found (PATH, pyenv, asdf, uv, /usr/bin, /usr/local/bin)",
            "install Python 3.12 or set deploy.python",
        );
    } else {
        r.ok("python", &format!("{} interpreter(s) found", found.len()));
        let mut listed: Vec<&Interpreter> = found.iter().collect();
        listed.sort_by_key(|i| std::cmp::Reverse(i.version));
        for i in listed {
            let runs: Vec<String> = families
                .iter()
                .filter(|(_, need)| need.matches(i.version))
                .map(|(name, _)| format!("MaiBot {name}"))
                .collect();
            let runs = if runs.is_empty() {
                "too old for MaiBot".to_owned()
            } else {
                format!("runs {}", runs.join(", "))
            };
            r.note(&format!(
                "{:<8} {:<10} {}  ({runs})",
                i.version_string(),
                i.source.as_str(),
                i.path.display()
            ));
        }
    }
    let mut runnable = 0;
    for (name, need) in &families {
        let what = format!("MaiBot {name}");
        let request = need.install_request().unwrap_or_else(|| need.to_string());
        if let Some(i) = python::choose(&found, need) {
            runnable += 1;
            r.ok(
                &what,
                &format!("needs Python {need}; deploys use {}", describe(i)),
            );
        } else if can_provision {
            runnable += 1;
            r.warn(
                &what,
                &format!(
                    "needs Python {need}, none installed satisfies it; a deploy installs \
                     Python {request} with uv first (deploy.provision_python)"
                ),
                &format!(
                    "nothing required; `uv python install {request}` ahead of time saves the wait"
                ),
            );
        } else {
            let mut fix = format!(
                "install Python {request} (e.g. `uv python install {request}` or \
                 `pyenv install {request}`) or set deploy.python"
            );
            if have_uv && !cfg.provision_python {
                fix.push_str("; or set deploy.provision_python = true");
            } else if !have_uv && cfg.provision_python {
                fix.push_str("; or install uv, which then installs it during deploys");
            }
            r.warn(
                &what,
                &format!("needs Python {need}; no interpreter found satisfies it"),
                &fix,
            );
        }
    }
    if runnable == 0 {
        r.fail(
            "python",
            "no MaiBot version can be deployed with the interpreters found",
            "install Python 3.12 (e.g. `pyenv install 3.12`) or uv",
        );
    }
}

fn describe(i: &Interpreter) -> String {
    format!(
        "{} ({}, {})",
        i.path.display(),
        i.version_string(),
        i.source.as_str()
    )
}

fn report_remotes(r: &mut Report, results: Vec<(usize, Remote, Result<String, String>)>) {
    for source in ["maibot", "adapter"] {
        let mine: Vec<&(usize, Remote, Result<String, String>)> = results
            .iter()
            .filter(|(_, what, _)| matches!(what, Remote::Git { source: s, .. } if *s == source))
            .collect();
        let any_ok = mine.iter().any(|(_, _, res)| res.is_ok());
        let what = format!("git source {source}");
        let key = format!("deploy.sources.{source}");
        if mine.is_empty() {
            r.fail(&what, "no URL configured", &format!("set {key}.url"));
        }
        for (_, remote, res) in mine {
            let Remote::Git { url, .. } = remote else {
                continue;
            };
            match res {
                Ok(d) => r.ok(&what, &format!("{url} {d}")),
                Err(e) if any_ok => r.warn(
                    &what,
                    &format!("{url}: {e}"),
                    "another URL of this source answers; deploys fall back to it",
                ),
                Err(e) => r.fail(
                    &what,
                    &format!("{url}: {e}"),
                    &format!(
                        "check the network, or point {key}.url / {key}.mirrors at a \
                         reachable copy (a local path works)"
                    ),
                ),
            }
        }
    }
    for (_, remote, res) in &results {
        let Remote::Index { url } = remote else {
            continue;
        };
        match res {
            Ok(d) => r.ok("package index", &format!("{url}: {d}")),
            Err(e) => r.fail(
                "package index",
                &format!("{url}: {e}"),
                "check the network, or set deploy.index_url to a reachable mirror",
            ),
        }
    }
}

/// `scheme://host[:port]/path` of an index URL.
fn split_url(url: &str) -> Option<(&str, &str, u16, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // Credentials in the URL (`user:pass@host`) are for the installer, not for this check.
    let hostport = authority.rsplit('@').next()?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        // `[::1]:3141` / `[::1]`
        let (h, after) = v6.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (h, p.parse().ok()?),
            None => (h, default_port),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, default_port),
        }
    };
    (!host.is_empty()).then_some((scheme, host, port, path))
}

/// Whether a package index answers. Over `http://`, a real request for the `pip` project
/// page (`<index>/pip/`) must get a non-error status. Over `https://` only a TCP connection
/// to the host is checked: the launcher carries no TLS client (pip and uv bring their own),
/// so a reachable port is the most this check can say.
fn index_answers(url: &str) -> Result<String, String> {
    let Some((scheme, host, port, path)) = split_url(url) else {
        return Err("not an http:// or https:// URL".to_owned());
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, REMOTE_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let Some(mut s) = stream else {
        return Err(last);
    };
    if scheme == "https" {
        return Ok(format!(
            "{host}:{port} accepts connections (TLS and the index itself not checked)"
        ));
    }
    let page = format!("{}/pip/", path.trim_end_matches('/'));
    let req = format!(
        "GET {page} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mailauncher-doctor\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    let io = |e: std::io::Error| format!("{host}:{port}: {e}");
    s.set_read_timeout(Some(REMOTE_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(REMOTE_TIMEOUT)).map_err(io)?;
    s.write_all(req.as_bytes()).map_err(io)?;
    // The status line is all that is needed; at most 1 KiB of it is read.
    let mut status = String::new();
    BufReader::new(std::io::Read::take(&mut s, 1024))
        .read_line(&mut status)
        .map_err(io)?;
    let code: Option<u16> = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    match code {
        Some(c) if c < 400 => Ok(format!("HTTP {c} for {page}")),
        Some(c) => Err(format!("HTTP {c} for {page}")),
        None => Err(format!("not an HTTP answer: {:?}", status.trim())),
    }
}

fn check_disk(r: &mut Report, data_dir: &Path) {
    match sysinfo::Disks::new_with_refreshed_list() {
        Ok(disks) => {
            // The data directory may not exist yet (doctor creates nothing): measure the
            // disk of its nearest existing ancestor.
            let probe = data_dir
                .ancestors()
                .find(|p| p.exists())
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| "/".into());
            let disk = disks
                .iter()
                .filter(|d| probe.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len());
            match disk {
                Some(d) => {
                    let gib = d.available_space() as f64 / (1u64 << 30) as f64;
                    let detail = format!("{gib:.1} GiB free at {}", d.mount_point().display());
                    if gib < 2.0 {
                        r.fail(
                            "disk",
                            &detail,
                            "free space: one MaiBot instance with its venv needs about 1-2 GiB",
                        );
                    } else {
                        r.ok("disk", &detail);
                    }
                }
                None => r.warn("disk", "could not find the data directory's disk", "-"),
            }
        }
        Err(e) => r.warn("disk", &e.to_string(), "-"),
    }
}

/// SQLite: the file's existence and permissions only — opening it would create it (and
/// its directory, WAL and shared-memory files). PostgreSQL: a connection, which creates
/// nothing on this machine.
async fn check_database(r: &mut Report, url: &str) {
    let fix = "check storage.database_url / --database-url";
    match maim_db::backend_of(url) {
        Err(e) => r.fail("database", &e.to_string(), fix),
        Ok(maim_db::Backend::Sqlite) => match maim_db::sqlite_path(url) {
            None => r.ok("database", "in-memory SQLite (nothing is kept)"),
            Some(path) => check_sqlite_file(r, &path),
        },
        Ok(maim_db::Backend::Postgres) => {
            match maim_db::connect(url, &maim_db::DbOptions::default()).await {
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
                Err(e) => r.fail("database", &e.to_string(), fix),
            }
        }
    }
}

fn check_sqlite_file(r: &mut Report, path: &Path) {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            // Opening for writing without create/truncate changes nothing.
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Ok(_) => r.ok(
                    "database",
                    &format!("{shown} ({} KiB, readable and writable)", m.len() / 1024),
                ),
                Err(e) => r.fail(
                    "database",
                    &format!("{shown} cannot be opened for writing: {e}"),
                    "fix the file's owner or permissions",
                ),
            }
        }
        Ok(_) => r.fail(
            "database",
            &format!("{shown} exists and is not a file"),
            "move it away or set storage.database_url",
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .ancestors()
                .skip(1)
                .find(|p| p.exists())
                .unwrap_or(Path::new("/"));
            let readonly = std::fs::metadata(parent).map_or(true, |m| m.permissions().readonly());
            if readonly {
                r.fail(
                    "database",
                    &format!(
                        "{shown} does not exist and {} is read-only",
                        parent.display()
                    ),
                    "make the data directory writable or set --data-dir",
                );
            } else {
                r.ok(
                    "database",
                    &format!("{shown} does not exist yet; the server creates it at first start"),
                );
            }
        }
        Err(e) => r.fail("database", &format!("{shown}: {e}"), "fix the permissions"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn index_urls() {
        assert_eq!(
            split_url("https://pypi.org/simple"),
            Some(("https", "pypi.org", 443, "/simple"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:9/"),
            Some(("http", "127.0.0.1", 9, "/"))
        );
        assert_eq!(
            split_url("http://u:p@mirror.local:8080/pypi/simple/"),
            Some(("http", "mirror.local", 8080, "/pypi/simple/"))
        );
        assert_eq!(
            split_url("http://[::1]:3141/root"),
            Some(("http", "::1", 3141, "/root"))
        );
        assert_eq!(split_url("http://[::1]/s"), Some(("http", "::1", 80, "/s")));
        assert_eq!(split_url("ftp://x/"), None);
    }
}
