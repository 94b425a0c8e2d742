//! `cargo xtask bench api`: the release server with 20 registered instances under load from
//! keep-alive HTTP/1.1 connections on loopback (a small built-in load generator, so nothing
//! has to be installed). Prints req/s and p50/p99 per route, metrics latency, idle RSS
//! before and after the load, start-to-healthy time, the emoji batch route over a 10,000-row
//! MaiBot database and a config update round-trip on a ~30 KB bot_config.toml.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds of load per route.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    connections: usize,
}

/// One keep-alive HTTP/1.1 connection to the server (also used by `e2e`).
pub(crate) struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    pub(crate) async fn open(port: u16) -> anyhow::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Self {
            r: BufReader::new(r),
            w,
        })
    }

    /// One request; returns the status code and body.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.w.write_all(head.as_bytes()).await?;
        self.w.write_all(body).await?;
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("bad status line")?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse()?;
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).await?;
        Ok((status, buf))
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn load(
    port: u16,
    conns: usize,
    secs: u64,
    method: &'static str,
    path: String,
    body: Vec<u8>,
) -> anyhow::Result<(f64, Duration, Duration, usize)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(port).await?;
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (status, _) = c.call(method, &path, &body).await?;
                lat.push(t.elapsed());
                if status != 200 {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let start = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    Ok((
        all.len() as f64 / elapsed,
        pct(&all, 0.5),
        pct(&all, 0.99),
        errors,
    ))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn fake_bot(root: &Path, i: usize) -> anyhow::Result<PathBuf> {
    let d = root.join(format!("bot{i}"));
    std::fs::create_dir_all(d.join("config"))?;
    std::fs::write(d.join("bot.py"), "print('hi')\n")?;
    Ok(d)
}

/// A bot_config.toml of about 30 KB with comments on every key.
fn big_config() -> String {
    let mut s = String::from("# generated for the benchmark\n[inner]\nversion = \"1.0.0\"\n");
    let mut i = 0;
    while s.len() < 30_000 {
        s.push_str(&format!(
            "\n# section {i}: what it is for\n[section_{i}]\n# a number\nvalue = {i} # inline\nname = \"item {i}\"\nenabled = true\nlist = [1, 2, 3]\n"
        ));
        i += 1;
    }
    s
}

fn emoji_db(path: &Path, rows: usize) -> anyhow::Result<()> {
    // The same schema MaiBot's peewee models create, filled by the sqlite3 CLI-free route:
    // a python3 one-liner keeps xtask free of another SQLite binding.
    let script = format!(
        "import sqlite3,time\nc=sqlite3.connect({path:?})\nc.execute('''CREATE TABLE emoji (id INTEGER NOT NULL PRIMARY KEY, full_path TEXT NOT NULL, format TEXT NOT NULL, emoji_hash TEXT NOT NULL, description TEXT NOT NULL, query_count INTEGER NOT NULL, is_registered INTEGER NOT NULL, is_banned INTEGER NOT NULL, emotion TEXT, record_time REAL NOT NULL, register_time REAL, usage_count INTEGER NOT NULL, last_used_time REAL)''')\nc.executemany('INSERT INTO emoji (full_path,format,emoji_hash,description,query_count,is_registered,is_banned,emotion,record_time,usage_count) VALUES (?,?,?,?,0,1,0,?,?,0)',[('data/emoji/%d.png'%i,'png','h%d'%i,'emoji number %d'%i,'happy' if i%2 else 'sad',time.time()) for i in range({rows})])\nc.commit()\n",
        path = path.display().to_string()
    );
    let st = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()?;
    anyhow::ensure!(st.success(), "python3 could not build the fixture database");
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = std::process::Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", "mailauncher"])
        .status()?;
    anyhow::ensure!(st.success(), "building the server failed");
    let bin = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("release/mailauncher");
    let home = tempfile::tempdir()?;
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(&bin)
        .args(["serve", "--port", "0"])
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("MAILAUNCHER_DATA_DIR")
        .env_remove("LOGS_DIR")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("no pid")?;
    let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut line = String::new();
    out.read_line(&mut line).await?;
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("no port")?;
    let mut c = Conn::open(port).await?;
    loop {
        if let Ok((200, _)) = c.call("GET", "/api/v1/system/health", b"").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let healthy = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(pid);

    let root = home.path().join("bots");
    let mut first_id = String::new();
    for i in 0..20 {
        let d = fake_bot(&root, i)?;
        let body = serde_json::json!({"instance_name": format!("bot{i}"), "maibot_path": d, "port": 10000 + i});
        let (s, b) = c
            .call("POST", "/api/v1/instances/add", body.to_string().as_bytes())
            .await?;
        anyhow::ensure!(s == 200, "add failed: {}", String::from_utf8_lossy(&b));
        if i == 0 {
            let v: serde_json::Value = serde_json::from_slice(&b)?;
            first_id = v["instance_id"].as_str().unwrap_or_default().to_owned();
        }
    }
    println!(
        "machine: {} cpus; {} connections, {} s per route",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.connections,
        args.seconds
    );
    println!("start to first healthy response: {:.1} ms", ms(healthy));
    for (path, target) in [
        ("/api/v1/system/health", ""),
        (
            "/api/v1/instances",
            " (target >= 20,000 req/s, p99 < 10 ms)",
        ),
    ] {
        let (rps, p50, p99, errs) = load(
            port,
            args.connections,
            args.seconds,
            "GET",
            path.into(),
            Vec::new(),
        )
        .await?;
        println!(
            "GET {path}: {rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {errs} non-200{target}",
            ms(p50),
            ms(p99)
        );
    }
    // Idle keep-alive connections are closed by the server during the load: reconnect.
    let mut c = Conn::open(port).await?;
    let mut lat = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        c.call("GET", "/api/v1/system/metrics", b"").await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "GET /api/v1/system/metrics (sequential): p50 {:.3} ms, p99 {:.3} ms (target p50 < 2 ms)",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99))
    );

    let bot0 = root.join("bot0");
    std::fs::create_dir_all(bot0.join("data"))?;
    emoji_db(&bot0.join("data/MaiBot.db"), 10_000)?;
    let body = serde_json::json!({"batch_size": 100, "offset": 5000})
        .to_string()
        .into_bytes();
    let (rps, p50, p99, errs) = load(
        port,
        args.connections,
        args.seconds,
        "POST",
        format!("/api/v1/resource/{first_id}/emoji/batch"),
        body,
    )
    .await?;
    println!(
        "POST /resource/{{id}}/emoji/batch (100 of 10,000 rows): {rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {errs} non-200",
        ms(p50),
        ms(p99)
    );

    std::fs::write(bot0.join("config/bot_config.toml"), big_config())?;
    let mut c = Conn::open(port).await?;
    let mut lat = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        let (_, b) = c
            .call(
                "GET",
                &format!("/api/v1/resources/{first_id}/config/get"),
                b"",
            )
            .await?;
        let mut v: serde_json::Value = serde_json::from_slice(&b)?;
        v["data"]["section_3"]["value"] = serde_json::json!(i);
        let body = serde_json::json!({"config_data": v["data"]}).to_string();
        let (s, b) = c
            .call(
                "POST",
                &format!("/api/v1/resources/{first_id}/config/update"),
                body.as_bytes(),
            )
            .await?;
        anyhow::ensure!(s == 200, "update failed: {}", String::from_utf8_lossy(&b));
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "config get + update round-trip (30 KB bot_config.toml): p50 {:.2} ms, p99 {:.2} ms",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "RSS: idle after start {:.1} MiB, after the load {:.1} MiB (target idle < 30 MB)",
        rss_idle as f64 / 1024.0,
        rss_kib(pid) as f64 / 1024.0
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    Ok(())
}
