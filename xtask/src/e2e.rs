//! `cargo xtask e2e maibot`: deploys the real MaiBot (and its NapCat adapter) through the
//! release server's HTTP API, with the launcher's defaults and real dependencies from the
//! package index, starts it, waits until it is ready, does the same for a second instance
//! beside it, and checks that every TCP port the instances' processes listen on is one the
//! launcher registered for them. Prints the time of each phase and a summary table, then
//! stops and deletes both instances (unless `--keep`) and removes everything it created.
//!
//! What "ready" means per family (see `/work/shared/upstream/FACTS.md` for the sources):
//! - MaiBot: its banner (`全部系统初始化完成` / `has been awakened`), then its main port
//!   accepting connections (the banner comes before the servers are started).
//! - 0.x adapter (a process of its own): its `使用 Legacy WebSocket 模式连接 MaiBot` line,
//!   MaiBot's `WebSocket 已连接` (the handshake it accepted) and an established TCP
//!   connection from one of the adapter's processes to MaiBot's main port.
//! - 1.x plugin adapter (inside MaiBot; no NapCat runs here): the plugin runner's
//!   `已加载=…napcat-adapter…` summary and a line of the adapter trying NapCat (connected or
//!   failed to connect), which it only prints when its config enabled it.
//!
//! The server runs outside any cargo lock: `--server-bin` names an already built binary;
//! without it the release binary is built first.

use crate::bench_api::Conn;
use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// MaiBot git repository (a clone or a bare mirror), served as a `file://` source.
    #[arg(long)]
    source: PathBuf,
    /// NapCat adapter git repository; omitted: MaiBot alone.
    #[arg(long)]
    adapter_source: Option<PathBuf>,
    /// MaiBot tag or branch; omitted: the newest tag of the launcher's version list.
    #[arg(long)]
    version: Option<String>,
    /// Leave both instances deployed and the server running (its address is printed).
    #[arg(long)]
    keep: bool,
    /// Python for the environments (`deploy.python`); omitted: the launcher's discovery.
    #[arg(long)]
    python: Option<PathBuf>,
    /// An already built `mailauncher` binary (otherwise `cargo build --release` runs).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// uv cache directory; omitted: a fresh one under the run's temporary directory, so
    /// the first instance installs from a cold cache and the second from a warm one.
    #[arg(long)]
    uv_cache: Option<PathBuf>,
    /// Package index (`deploy.index_url`); omitted: the launcher's default.
    #[arg(long)]
    index_url: Option<String>,
    /// Number of instances side by side.
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Seconds allowed from start to ready, per instance.
    #[arg(long, default_value_t = 600)]
    ready_timeout: u64,
}

/// One HTTP call on a fresh loopback connection (the server closes idle keep-alives, and a
/// deploy poll loop is idle most of the time). Returns the status and the JSON body.
async fn api(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut c = Conn::open(port).await?;
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, out) = c
        .call(method, &format!("/api/v1{path}"), &bytes)
        .await
        .with_context(|| format!("{method} {path}"))?;
    let v = if out.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out).into_owned()))
    };
    Ok((status, v))
}

/// `api` that requires a 2xx answer.
async fn api_ok(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let (s, v) = api(port, method, path, body).await?;
    ensure!((200..300).contains(&s), "{method} {path}: HTTP {s}: {v}");
    Ok(v)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A TOML string literal (paths and URLs may hold quotes or backslashes).
fn toml_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Terminal output without ANSI escape sequences and carriage returns, so log lines can
/// be matched as text.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ST.
                    for n in chars.by_ref() {
                        if n == '\u{7}' || n == '\\' {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The release server on a fresh data directory, its output in files there.
struct Server {
    child: std::process::Child,
    port: u16,
    out: PathBuf,
}

impl Server {
    fn start(bin: &Path, root: &Path, args: &Args) -> anyhow::Result<Self> {
        let data = root.join("data");
        std::fs::create_dir_all(&data)?;
        let uv_cache = args
            .uv_cache
            .clone()
            .unwrap_or_else(|| root.join("uv-cache"));
        // A config file rather than environment variables: mirror lists are arrays, and an
        // empty list keeps the run on the local repositories (no fallback to the network).
        let mut cfg = String::from("[deploy]\n");
        let maibot = args.source.canonicalize().context("--source")?;
        let _ = writeln!(cfg, "sources.maibot.url = {}", toml_str(&file_url(&maibot)));
        cfg.push_str("sources.maibot.mirrors = []\n");
        if let Some(a) = &args.adapter_source {
            let a = a.canonicalize().context("--adapter-source")?;
            let _ = writeln!(cfg, "sources.adapter.url = {}", toml_str(&file_url(&a)));
        }
        cfg.push_str("sources.adapter.mirrors = []\n");
        if let Some(p) = &args.python {
            let _ = writeln!(cfg, "python = {}", toml_str(&p.display().to_string()));
        }
        if let Some(i) = &args.index_url {
            let _ = writeln!(cfg, "index_url = {}", toml_str(i));
        }
        // Deleted instances go straight away instead of into the trash: the run leaves
        // nothing behind either way, and the trash would double the disk use meanwhile.
        cfg.push_str("trash_days = 0\n");
        let cfg_path = root.join("mailauncher.toml");
        std::fs::write(&cfg_path, &cfg)?;
        let out = root.join("server.out");
        let err = root.join("server.err");
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&cfg_path)
            .arg("--data-dir")
            .arg(&data)
            .arg("--logs-dir")
            .arg(data.join("logs"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            // MaiBot 1.x migrates these into its config on a first start, and 1.1+ adds
            // WEBUI_HOST to its WebUI binds on every start: the instances must not see them.
            .env_remove("HOST")
            .env_remove("PORT")
            .env_remove("WEBUI_HOST")
            .env_remove("WEBUI_PORT")
            .env_remove("MAILAUNCHER_DATA_DIR")
            .env_remove("LOGS_DIR")
            .env("UV_CACHE_DIR", &uv_cache)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            // Files, not pipes: with `--keep` the server outlives this process.
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut s = Self {
            child,
            port: 0,
            out,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&s.out).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("listening on http://"))
            {
                s.port = addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .context("no port in the listening line")?;
                return Ok(s);
            }
            if let Some(st) = s.child.try_wait()? {
                bail!(
                    "the server exited ({st}): {}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not announce its port in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (the server stops its instances gracefully), SIGKILL after 60 s.
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one instance went through.
#[derive(Default)]
struct Report {
    name: String,
    id: String,
    phases: Vec<(String, Duration)>,
    deploy_total: Duration,
    ready: Option<Duration>,
    adapter: Option<(String, Duration)>,
    registered: BTreeMap<u16, String>,
    listening: BTreeSet<u16>,
    notes: Vec<String>,
}

/// `phase N/M <name>: …`, the line the job writes when a phase begins.
fn phase_of(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("phase ")?;
    let (_, rest) = rest.split_once(' ')?;
    rest.split(':').next().filter(|n| !n.is_empty())
}

fn timestamp(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_str()?.parse().ok()
}

/// Polls a deploy job to its end, printing its log lines. Phases are timed from the
/// server's own timestamps on the `phase N/6` lines (a poll would miss the short ones),
/// up to the job's `finished_at`.
async fn run_job(
    port: u16,
    job: &Value,
) -> anyhow::Result<(Value, Vec<(String, Duration)>, Duration)> {
    let id = job["id"].as_str().context("job id")?.to_owned();
    let started = Instant::now();
    let mut marks: Vec<(String, chrono::DateTime<chrono::Utc>)> = Vec::new();
    let mut seen: i64 = 0;
    loop {
        let j = api_ok(port, "GET", &format!("/jobs/{id}"), None).await?;
        let logs = api_ok(port, "GET", &format!("/jobs/{id}/logs?since={seen}"), None).await?;
        for l in logs["lines"].as_array().into_iter().flatten() {
            seen = seen.max(l["seq"].as_i64().unwrap_or(seen));
            let text = l["line"].as_str().unwrap_or("");
            println!("    job | {:7} | {text}", l["level"].as_str().unwrap_or(""));
            if let (Some(p), Some(ts)) = (phase_of(text), timestamp(&l["ts"])) {
                marks.push((p.to_owned(), ts));
            }
        }
        match j["status"].as_str().unwrap_or("") {
            "succeeded" => {
                let total = started.elapsed();
                let end = timestamp(&j["finished_at"]).unwrap_or_else(chrono::Utc::now);
                if let Some(t0) = timestamp(&j["started_at"])
                    && let Some((_, first)) = marks.first()
                    && *first > t0
                {
                    marks.insert(0, ("queued".into(), t0));
                }
                let spans = marks
                    .iter()
                    .enumerate()
                    .map(|(i, (p, t))| {
                        let next = marks.get(i + 1).map_or(end, |(_, n)| *n);
                        (p.clone(), (next - *t).to_std().unwrap_or_default())
                    })
                    .collect();
                return Ok((j, spans, total));
            }
            "failed" | "canceled" | "cancelled" => {
                bail!("deploy job {id} {}: {}", j["status"], j["error"])
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Output records of one component after `since`, as text lines; returns the next seq.
async fn read_logs(
    port: u16,
    id: &str,
    comp: &str,
    since: &mut u64,
    sink: &mut Vec<String>,
) -> anyhow::Result<()> {
    let q = if *since == 0 {
        "tail=10000".to_owned()
    } else {
        format!("since={since}")
    };
    let (s, v) = api(
        port,
        "GET",
        &format!("/instances/{id}/components/{comp}/logs?{q}"),
        None,
    )
    .await?;
    if s == 404 {
        return Ok(());
    }
    ensure!(s == 200, "logs of {comp}: HTTP {s}: {v}");
    for r in v["records"].as_array().into_iter().flatten() {
        let data = strip_ansi(r["data"].as_str().unwrap_or(""));
        for line in data.lines() {
            println!("    {comp:>9} | {line}");
            sink.push(line.to_owned());
        }
    }
    if let Some(n) = v["next_seq"].as_u64() {
        *since = n;
    }
    Ok(())
}

fn component<'a>(detail: &'a Value, kind: &str) -> Option<&'a Value> {
    detail["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == kind)
}

/// Registered ports of an instance: number → `component/role` (the component's own
/// `port` included, whatever the `ports` column says).
fn registered_ports(detail: &Value) -> BTreeMap<u16, String> {
    let mut out = BTreeMap::new();
    for c in detail["components"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?");
        for p in c["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()) {
                let listens = if p["listens"].as_bool() == Some(false) {
                    " (reserved)"
                } else {
                    ""
                };
                out.insert(
                    n,
                    format!("{name}/{}{listens}", p["role"].as_str().unwrap_or("?")),
                );
            }
        }
        if let Some(n) = c["port"].as_u64().and_then(|n| u16::try_from(n).ok()) {
            out.entry(n).or_insert_with(|| format!("{name}/port"));
        }
    }
    out
}

fn tcp_port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &(std::net::Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// The session id of a live process (field 6 of `/proc/<pid>/stat`); `None` for a zombie,
/// which is dead and only waits for its new parent to reap it.
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    if f.next()? == "Z" {
        return None;
    }
    f.nth(2)?.parse().ok()
}

/// Every process in the sessions led by `leaders` (the supervisor starts each component
/// as a session leader, so a component's tree is its session).
fn session_pids(leaders: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if session_of(pid).is_some_and(|s| leaders.contains(&s)) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(n) = t
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse().ok())
            {
                out.insert(n);
            }
        }
    }
    out
}

/// One row of `/proc/<pid>/net/tcp{,6}`.
struct TcpRow {
    local_port: u16,
    remote_port: u16,
    state: u8,
    inode: u64,
}

fn tcp_rows(pid: u32) -> Vec<TcpRow> {
    let mut out = Vec::new();
    for f in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let port = |c: Option<&&str>| {
                c.and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if let (Some(local_port), Some(remote_port), Some(state), Some(inode)) = (
                port(cols.get(1)),
                port(cols.get(2)),
                cols.get(3).and_then(|s| u8::from_str_radix(s, 16).ok()),
                cols.get(9).and_then(|s| s.parse().ok()),
            ) {
                out.push(TcpRow {
                    local_port,
                    remote_port,
                    state,
                    inode,
                });
            }
        }
    }
    out
}

const TCP_ESTABLISHED: u8 = 0x01;
const TCP_LISTEN: u8 = 0x0A;

/// Ports listened on by the given processes, and the remote ports of their established
/// connections, from the sockets they hold.
fn sockets_of(pids: &[u32]) -> (BTreeSet<u16>, BTreeSet<u16>) {
    let (mut listening, mut connected) = (BTreeSet::new(), BTreeSet::new());
    for &pid in pids {
        let inodes = socket_inodes(pid);
        if inodes.is_empty() {
            continue;
        }
        for r in tcp_rows(pid) {
            if !inodes.contains(&r.inode) {
                continue;
            }
            match r.state {
                TCP_LISTEN => {
                    listening.insert(r.local_port);
                }
                TCP_ESTABLISHED => {
                    connected.insert(r.remote_port);
                }
                _ => {}
            }
        }
    }
    (listening, connected)
}

/// The component pids of an instance (session leaders), from its detail.
fn leaders(detail: &Value) -> Vec<u32> {
    detail["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

/// Deploys one instance and starts it until ready.
async fn deploy_and_start(
    port: u16,
    root: &Path,
    version: &str,
    with_adapter: bool,
    n: usize,
    ready_timeout: Duration,
    reports: &mut Vec<Report>,
) -> anyhow::Result<()> {
    let name = format!("e2e-{}-{n}", version.replace(['/', '+'], "-"));
    let install = root.join("instances").join(&name);
    let mut components = Vec::new();
    if with_adapter {
        components.push(json!({"kind": "napcat-ada"}));
    }
    // MaiBot's port is the one port a deploy request must carry (the frontend asks the
    // user); every other one is left to the launcher's allocation.
    let req = json!({
        "instance_name": name,
        "install_path": install,
        "version": version,
        "port": free_port()?,
        "components": components,
        "eula_accepted": true,
    });
    println!("\n== {name}: POST /deploy {req}");
    let job = api_ok(port, "POST", "/deploy", Some(&req)).await?;
    let (done, phases, total) = run_job(port, &job).await?;
    let id = done["instance_id"]
        .as_str()
        .context("the finished job has no instance_id")?
        .to_owned();
    // Recorded before the start, so a start that fails is still stopped and deleted.
    reports.push(Report {
        name: name.clone(),
        id: id.clone(),
        phases,
        deploy_total: total,
        ..Default::default()
    });
    let rep = reports.last_mut().context("just pushed")?;
    let detail = api_ok(port, "GET", &format!("/instances/{id}"), None).await?;
    rep.registered = registered_ports(&detail);
    ensure!(
        !rep.registered.is_empty(),
        "the instance detail shows no registered port: {detail}"
    );
    let main_port = component(&detail, "main")
        .and_then(|c| c["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .context("no main port")?;
    let kinds: Vec<String> = detail["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let standalone_adapter = kinds.iter().any(|k| k == "napcat-ada");
    // A 1.x deploy with the adapter has no adapter process: the plugin lives in MaiBot.
    let plugin_adapter = with_adapter && !standalone_adapter;
    println!(
        "== {name}: registered ports {:?}; components {kinds:?}",
        rep.registered
    );

    println!("== {name}: POST /instances/{id}/start");
    let t0 = Instant::now();
    api_ok(port, "POST", &format!("/instances/{id}/start"), None).await?;
    let deadline = t0 + ready_timeout;
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    let mut banner = false;
    let mut plugin_loaded = false;
    let mut plugin_active = false;
    let mut adapter_line = false;
    let mut maibot_accepted = false;
    loop {
        for k in &kinds {
            let since = seqs.entry(k.clone()).or_insert(0);
            let sink = lines.entry(k.clone()).or_default();
            let from = sink.len();
            read_logs(port, &id, k, since, sink).await?;
            for l in &sink[from..] {
                if k == "main" {
                    if l.contains("全部系统初始化完成") || l.contains("has been awakened")
                    {
                        banner = true;
                    }
                    if l.contains("已加载=") && l.to_lowercase().contains("napcat") {
                        let loaded = l.split("已加载=").nth(1).unwrap_or("");
                        let loaded = loaded.split("失败=").next().unwrap_or("");
                        if loaded.to_lowercase().contains("napcat") {
                            plugin_loaded = true;
                        }
                    }
                    if l.contains("NapCat 适配器保持空闲状态") {
                        bail!("the plugin adapter stayed idle: its config did not enable it ({l})");
                    }
                    if l.contains("NapCat 适配器连接失败") || l.contains("NapCat 适配器已连接")
                    {
                        plugin_active = true;
                    }
                    // maim_message's server side: `平台 <platform> WebSocket 已连接`.
                    if l.contains("WebSocket 已连接") {
                        maibot_accepted = true;
                    }
                } else if l.contains("使用 Legacy WebSocket 模式连接 MaiBot") {
                    adapter_line = true;
                }
            }
        }
        let detail = api_ok(port, "GET", &format!("/instances/{id}"), None).await?;
        for c in detail["components"].as_array().into_iter().flatten() {
            let st = c["status"].as_str().unwrap_or("");
            if matches!(st, "failed" | "backoff" | "stopped") {
                bail!(
                    "{} of {name} is {st} before it was ready: {}",
                    c["name"],
                    c["failure"]
                );
            }
        }
        let main_ready = banner && tcp_port_open(main_port);
        if main_ready && rep.ready.is_none() {
            rep.ready = Some(t0.elapsed());
            println!("== {name}: MaiBot ready after {}", secs(t0.elapsed()));
        }
        // An established socket alone proves nothing (a refused handshake holds one for a
        // moment): MaiBot must also have logged the accepted WebSocket.
        if main_ready
            && standalone_adapter
            && adapter_line
            && maibot_accepted
            && rep.adapter.is_none()
        {
            let pids = session_pids(&leaders(&component_only(&detail, "napcat-ada")));
            let (_, connected) = sockets_of(&pids);
            if connected.contains(&main_port) {
                rep.adapter = Some((
                    "standalone adapter connected to MaiBot /ws".into(),
                    t0.elapsed(),
                ));
                println!(
                    "== {name}: adapter connected to MaiBot's port {main_port} after {}",
                    secs(t0.elapsed())
                );
            }
        }
        if main_ready && plugin_adapter && plugin_loaded && plugin_active && rep.adapter.is_none() {
            rep.adapter = Some((
                "plugin adapter loaded and enabled in MaiBot".into(),
                t0.elapsed(),
            ));
            println!(
                "== {name}: plugin adapter loaded and enabled after {}",
                secs(t0.elapsed())
            );
        }
        if main_ready && (!with_adapter || rep.adapter.is_some()) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{name} not ready in {} (banner {banner}, main port {main_port} open {}, adapter line {adapter_line}, MaiBot accepted a WebSocket {maibot_accepted}, plugin loaded {plugin_loaded}, plugin active {plugin_active})",
                secs(ready_timeout),
                tcp_port_open(main_port)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Listeners the WebUI opens in its own thread may come a moment after the banner:
    // wait for every registered listening port (bounded), then read the sockets.
    let wanted: Vec<u16> = registered_listening(&detail_of(port, &id).await?);
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until && !wanted.iter().all(|p| tcp_port_open(*p)) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

fn component_only(detail: &Value, kind: &str) -> Value {
    json!({"components": component(detail, kind).into_iter().cloned().collect::<Vec<_>>()})
}

async fn detail_of(port: u16, id: &str) -> anyhow::Result<Value> {
    api_ok(port, "GET", &format!("/instances/{id}"), None).await
}

fn registered_listening(detail: &Value) -> Vec<u16> {
    let mut out = Vec::new();
    for c in detail["components"].as_array().into_iter().flatten() {
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["listens"].as_bool() != Some(false)
                && let Some(n) = p["port"].as_u64().and_then(|n| u16::try_from(n).ok())
            {
                out.push(n);
            }
        }
    }
    out
}

/// Every port the instance's processes listen on must be registered for it; returns the
/// problems found (empty: all good) and records what it saw.
async fn check_ports(port: u16, rep: &mut Report) -> anyhow::Result<Vec<String>> {
    let detail = detail_of(port, &rep.id).await?;
    let pids = session_pids(&leaders(&detail));
    ensure!(!pids.is_empty(), "{}: no running process found", rep.name);
    let (listening, _) = sockets_of(&pids);
    rep.listening = listening.clone();
    let mut problems = Vec::new();
    for p in &listening {
        if !rep.registered.contains_key(p) {
            problems.push(format!(
                "{}: port {p} is listened on but not registered",
                rep.name
            ));
        }
    }
    for p in registered_listening(&detail) {
        if !listening.contains(&p) {
            rep.notes
                .push(format!("registered port {p} is not listened on"));
        }
    }
    println!(
        "== {}: processes {pids:?} listen on {listening:?}; registered {:?}",
        rep.name, rep.registered
    );
    Ok(problems)
}

async fn stop_and_delete(port: u16, rep: &Report) -> anyhow::Result<()> {
    let detail = detail_of(port, &rep.id).await?;
    let install = detail["path"].as_str().map(PathBuf::from);
    let sessions = leaders(&detail);
    let t = Instant::now();
    api_ok(port, "POST", &format!("/instances/{}/stop", rep.id), None).await?;
    loop {
        let d = detail_of(port, &rep.id).await?;
        if d["status"] == "stopped" || d["status"] == "failed" {
            break;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(90),
            "{} did not stop in 90 s",
            rep.name
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // SIGKILL to what the leader left is sent before the exit is reported, but a killed
    // process stays in /proc until it is torn down: allow it a moment.
    let mut left = session_pids(&sessions);
    let until = Instant::now() + Duration::from_secs(5);
    while !left.is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = session_pids(&sessions);
    }
    ensure!(
        left.is_empty(),
        "{}: processes {left:?} survived the stop",
        rep.name
    );
    println!(
        "== {}: stopped in {} with no process left",
        rep.name,
        secs(t.elapsed())
    );
    api_ok(
        port,
        "DELETE",
        &format!("/instances/{}?remove_files=true", rep.id),
        None,
    )
    .await?;
    if let Some(p) = install {
        ensure!(
            !p.exists(),
            "{}: {} is still on disk after the delete",
            rep.name,
            p.display()
        );
    }
    println!("== {}: deleted, files removed", rep.name);
    Ok(())
}

fn print_summary(version: &str, reports: &[Report]) {
    println!("\n== summary: MaiBot {version}");
    let mut phase_names: Vec<String> = Vec::new();
    for r in reports {
        for (p, _) in &r.phases {
            if !phase_names.contains(p) {
                phase_names.push(p.clone());
            }
        }
    }
    let mut head = format!("{:<20}", "instance");
    for p in &phase_names {
        let _ = write!(head, " {p:>12}");
    }
    let _ = write!(
        head,
        " {:>12} {:>14} {:>12}",
        "deploy", "start→ready", "adapter"
    );
    println!("{head}");
    for r in reports {
        let mut row = format!("{:<20}", r.name);
        for p in &phase_names {
            let d = r
                .phases
                .iter()
                .find(|(n, _)| n == p)
                .map(|(_, d)| secs(*d))
                .unwrap_or_else(|| "-".into());
            let _ = write!(row, " {d:>12}");
        }
        let _ = write!(
            row,
            " {:>12} {:>14} {:>12}",
            secs(r.deploy_total),
            r.ready.map(secs).unwrap_or_else(|| "-".into()),
            r.adapter
                .as_ref()
                .map(|(_, d)| secs(*d))
                .unwrap_or_else(|| "-".into())
        );
        println!("{row}");
    }
    for r in reports {
        let reg: Vec<String> = r
            .registered
            .iter()
            .map(|(p, w)| format!("{p} {w}"))
            .collect();
        println!(
            "{}: listening {:?}; registered [{}]{}{}",
            r.name,
            r.listening,
            reg.join(", "),
            r.adapter
                .as_ref()
                .map(|(w, _)| format!("; {w}"))
                .unwrap_or_default(),
            if r.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", r.notes.join("; "))
            }
        );
    }
}

async fn scenario(
    port: u16,
    root: &Path,
    args: &Args,
    reports: &mut Vec<Report>,
) -> anyhow::Result<String> {
    let version = match &args.version {
        Some(v) => v.clone(),
        None => {
            let v = api_ok(port, "GET", "/deploy/versions", None).await?;
            v["versions"][0]
                .as_str()
                .context("the version list is empty")?
                .to_owned()
        }
    };
    let with_adapter = args.adapter_source.is_some();
    let mut problems = Vec::new();
    for n in 1..=args.instances {
        deploy_and_start(
            port,
            root,
            &version,
            with_adapter,
            n,
            Duration::from_secs(args.ready_timeout),
            reports,
        )
        .await?;
        // After each start, every instance running so far is checked again: a second
        // instance must not make the first one's listeners (or its own) stray.
        for r in reports.iter_mut() {
            problems.extend(check_ports(port, r).await?);
        }
    }
    let mut all: Vec<u16> = Vec::new();
    for r in reports.iter() {
        all.extend(r.listening.iter().copied());
    }
    let distinct: BTreeSet<u16> = all.iter().copied().collect();
    if distinct.len() != all.len() {
        problems.push(format!("instances share a listening port: {all:?}"));
    }
    print_summary(&version, reports);
    ensure!(
        problems.is_empty(),
        "port check failed:\n  {}",
        problems.join("\n  ")
    );
    println!("port check: every listening port is registered to its instance");
    Ok(version)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = std::process::Command::new(&cargo)
                .args(["build", "--release", "--quiet", "-p", "mailauncher"])
                .status()?;
            ensure!(st.success(), "building the server failed");
            PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
                .join("release/mailauncher")
        }
    };
    let tmp = tempfile::Builder::new()
        .prefix("mailauncher-e2e-")
        .tempdir()?;
    let root = tmp.path().to_path_buf();
    println!("work directory {}", root.display());
    let mut server = Server::start(&bin, &root, &args)?;
    println!(
        "server on 127.0.0.1:{} (output in {})",
        server.port,
        server.out.display()
    );
    let mut reports = Vec::new();
    let res = scenario(server.port, &root, &args, &mut reports).await;
    if args.keep {
        let kept = tmp.keep();
        println!(
            "--keep: instances left deployed, server still running at http://127.0.0.1:{} (pid {}), files in {}",
            server.port,
            server.child.id(),
            kept.display()
        );
        return res.map(|_| ());
    }
    let mut cleanup = Ok(());
    for r in &reports {
        if let Err(e) = stop_and_delete(server.port, r).await {
            eprintln!("cleanup of {}: {e:#}", r.name);
            cleanup = Err(e);
        }
    }
    server.stop();
    drop(tmp);
    ensure!(!root.exists(), "{} is still on disk", root.display());
    println!("server stopped; {} removed", root.display());
    res?;
    cleanup
}
