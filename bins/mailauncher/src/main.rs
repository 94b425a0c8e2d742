//! `mailauncher`: the MaiLauncher daemon.

mod doctor;
mod settings;
mod telemetry;
mod token;

use clap::{Parser, Subcommand};
use launcher_api::security::Security;
use launcher_core::catalog::Catalog;
use launcher_core::deploy::Deployer;
use launcher_core::events::EventBus;
use launcher_core::instance_files::InstanceFiles;
use launcher_core::jobs::Jobs;
use launcher_core::metrics::{Metrics, MetricsConfig, Sampler};
use launcher_core::path_policy::PathPolicy;
use launcher_core::supervisor::{Supervisor, SupervisorConfig};
use launcher_core::trash::Trash;
use settings::{LoggingOverrides, Overrides, ServerOverrides, Settings, StorageOverrides};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "mailauncher",
    version,
    about = "MaiLauncher backend: deploys, runs and watches MaiBot instances"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug, Clone, Default)]
struct Common {
    /// Config file (default: <data_dir>/config.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite:PATH or postgres://…).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Directory of the log files.
    #[arg(long, global = true)]
    logs_dir: Option<PathBuf>,
    /// Address to bind (serve).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Port to bind (serve; 0 picks a free one).
    #[arg(long, global = true)]
    port: Option<u16>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Show the access token (required when the server is bound beyond loopback).
    Token {
        /// Replace it with a new one (takes effect at the next server start).
        #[arg(long)]
        rotate: bool,
    },
    /// Check git, every Python found, uv, git sources, the package index, disk space, the
    /// port and the database (creating nothing); say how to fix gaps.
    Doctor,
}

fn overrides(common: &Common) -> Overrides {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    Overrides {
        server: Some(ServerOverrides {
            host: common.host.clone(),
            port: common.port,
        }),
        storage: Some(StorageOverrides {
            data_dir: path(&common.data_dir),
            database_url: common.database_url.clone(),
        }),
        logging: Some(LoggingOverrides {
            dir: path(&common.logs_dir),
        }),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.common.config.as_deref(), &overrides(&cli.common))?;
    match cli.cmd {
        Some(Cmd::Token { rotate }) => {
            let dir = settings.data_dir();
            let t = if rotate {
                token::rotate(&dir)?
            } else {
                token::load_or_create(&dir)?
            };
            println!("{t}");
            eprintln!("(stored in {})", token::path(&dir).display());
            return Ok(());
        }
        Some(Cmd::Doctor) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let ok = rt.block_on(doctor::run(&settings))?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        _ => {}
    }
    let migrate_only = matches!(cli.cmd, Some(Cmd::Migrate));
    let _guard = telemetry::init(
        &settings.logging.level,
        &settings.logs_dir(),
        settings.logging.retention_days,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let db = open_database(&settings).await?;
        if migrate_only {
            for m in db.migration_status().await? {
                println!("[{}] {}", if m.applied { "x" } else { " " }, m.name);
            }
            db.close().await?;
            return Ok(());
        }
        serve(settings, db).await
    })
}

async fn open_database(settings: &Settings) -> anyhow::Result<maim_db::Db> {
    let opts = maim_db::DbOptions {
        max_connections: settings.storage.max_connections,
        ..Default::default()
    };
    let db = maim_db::connect(&settings.database_url(), &opts).await?;
    db.migrate(&maim_db::SystemScope::new("startup migration"))
        .await?;
    Ok(db)
}

/// The tenant the launcher's own instances belong to.
const LOCAL_TENANT: &str = "local";
/// Bus events kept for replay by the event WebSocket (a reconnecting client resumes from
/// its last `seq` while the events are still here).
const EVENT_BUFFER: usize = 4096;

fn supervisor_config(settings: &Settings) -> anyhow::Result<SupervisorConfig> {
    let s = &settings.supervisor;
    settings.check_on_shutdown()?;
    let mut cfg = SupervisorConfig::new(settings.logs_dir().join("instances"));
    cfg.stop.signal = settings.stop_signal()?;
    cfg.stop.grace = Duration::from_secs(s.stop_grace_secs);
    cfg.ready_timeout = Duration::from_secs(s.ready_timeout_secs);
    cfg.restart.backoff_initial = Duration::from_secs(s.backoff_initial_secs);
    cfg.restart.backoff_max = Duration::from_secs(s.backoff_max_secs);
    cfg.restart.give_up = (s.give_up_crashes > 0).then(|| {
        (
            s.give_up_crashes,
            Duration::from_secs(s.give_up_window_secs),
        )
    });
    Ok(cfg)
}

fn security(settings: &Settings) -> anyhow::Result<Security> {
    let same_user = if settings.same_user_only() {
        match launcher_api::peer::own_uid().filter(|_| launcher_api::peer::SUPPORTED) {
            Some(uid) => Some(uid),
            None => {
                tracing::warn!(
                    "security.same_user_only: this platform cannot tell which user owns a \
                     loopback connection; other local users are not refused"
                );
                None
            }
        }
    } else {
        None
    };
    let token_required = settings.token_required();
    // Other users present the token too, so it must exist whenever they are asked for it.
    let token = if token_required || same_user.is_some() {
        Some(token::load_or_create(&settings.data_dir())?.into())
    } else {
        None
    };
    Ok(Security {
        allowed_origins: settings.security.allowed_origins.clone(),
        allow_loopback_origins: settings.security.allow_loopback_origins,
        loopback_only_hosts: settings.loopback_bind(),
        token,
        token_required,
        same_user,
        api_prefix: settings.server.api_prefix.clone(),
    })
}

/// Temp files of atomic writes a crash or kill interrupted (each a full copy of a config)
/// would otherwise pile up next to the configs: at boot no write of ours is in progress.
/// A failure to list instances only skips their folders; it does not stop the boot.
async fn sweep_temp_files(catalog: &Catalog, data_dir: &std::path::Path) {
    let mut dirs = vec![data_dir.to_path_buf()];
    match catalog.list().await {
        Ok(list) => dirs.extend(
            list.iter()
                .flat_map(launcher_core::instance_files::config_dirs),
        ),
        Err(e) => tracing::warn!(error = %e, "temp-file sweep: could not list instances"),
    }
    let n = dirs.len();
    match tokio::task::spawn_blocking(move || {
        launcher_core::instance_files::sweep_temp_files(&dirs)
    })
    .await
    {
        Ok(0) => tracing::debug!(
            dirs = n,
            "temp-file sweep: nothing left by interrupted writes"
        ),
        Ok(removed) => tracing::info!(
            removed,
            dirs = n,
            "temp-file sweep: removed temp files of interrupted writes"
        ),
        Err(e) => tracing::warn!(error = %e, "temp-file sweep failed"),
    }
}

async fn serve(settings: Settings, db: maim_db::Db) -> anyhow::Result<()> {
    // Listen before anything is announced: a supervisor (or a test) may send SIGINT the
    // moment it reads the "listening on" line, and an uninstalled handler means the
    // default action, which kills the process without stopping its instances.
    let signals = Signals::install()?;
    let data_dir = settings.data_dir();
    std::fs::create_dir_all(&data_dir)?;
    let security = security(&settings)?;
    if security.token_required {
        tracing::warn!(
            host = %settings.server.host,
            "bound beyond loopback: every request needs the access token (`mailauncher token`)"
        );
    }
    db.tenants()
        .ensure(
            &maim_db::SystemScope::new("launcher tenant"),
            LOCAL_TENANT,
            "MaiLauncher",
        )
        .await?;
    let tenant = maim_db::TenantScope::new(LOCAL_TENANT)?;
    let supervisor = Supervisor::new(db.clone(), tenant.clone(), supervisor_config(&settings)?);
    // Subscribed before reconciliation, so autostarts are on the bus too.
    let events = EventBus::new(EVENT_BUFFER);
    let _state_feed = events.feed_supervisor(&supervisor);
    let report = supervisor.reconcile().await?;
    tracing::info!(?report, "boot reconciliation done");
    let trash = Trash::new(&data_dir, settings.deploy.trash_days);
    let catalog = Catalog::new(
        db.clone(),
        tenant.clone(),
        supervisor.clone(),
        trash.clone(),
    )
    .with_path_policy(PathPolicy::from_env(settings.deploy.allowed_roots.clone()));
    sweep_temp_files(&catalog, &data_dir).await;
    let jobs = Jobs::new(
        db.clone(),
        tenant,
        catalog.clone(),
        Deployer::new({
            let mut d = settings.deploy.clone();
            d.cache_dir = Some(data_dir.join("cache"));
            d
        }),
        vec![data_dir.clone(), settings.logs_dir()],
        settings.jobs.parallel,
    );
    let _job_feed = events.feed_jobs(&jobs);
    let recovered = jobs.recover().await?;
    if !recovered.is_empty() {
        tracing::warn!(
            ?recovered,
            "deploy jobs interrupted by the last shutdown were marked failed"
        );
    }
    // After recovery: expired trash entries go at boot, then hourly.
    let trash_task = tokio::spawn(purge_trash(trash));

    let metrics = Metrics::new(MetricsConfig {
        interval: Duration::from_millis(settings.metrics.interval_ms),
        history: Duration::from_secs(settings.metrics.history_secs),
    });
    let sampler = Sampler::new()?;
    let sup = supervisor.clone();
    let sampler_task = tokio::spawn(metrics.clone().run(sampler, move || {
        let sup = sup.clone();
        async move { Some(sup.tracked().await) }
    }));

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = launcher_api::AppState {
        version: env!("CARGO_PKG_VERSION"),
        started_at: std::time::Instant::now(),
        catalog,
        metrics,
        files: InstanceFiles::default().with_max_bytes(settings.server.max_file_bytes),
        jobs,
        events,
        data_dir,
        shutdown: shutdown_rx,
        list_cache: Default::default(),
        ws: launcher_api::WsLimits::new(
            settings.server.ws_max_total,
            settings.server.ws_max_per_instance,
        ),
        max_file_bytes: settings.server.max_file_bytes,
    };
    let check_peers = security.same_user.is_some();
    let prefix = settings.server.api_prefix.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(launcher_api::security::cors(&security))
            .wrap(actix_web::middleware::from_fn(
                launcher_api::security::guard,
            ))
            .configure(launcher_api::configure(
                &prefix,
                state.clone(),
                security.clone(),
            ))
            .default_service(actix_web::web::to(launcher_api::not_found))
    })
    // The owner of each loopback client socket, read once per connection (not per request).
    .on_connect(move |conn, ext| {
        if check_peers {
            launcher_api::peer::on_connect(conn, ext);
        }
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(10)
    .bind((settings.server.host.as_str(), settings.server.port))?;
    for addr in server.addrs() {
        // A machine-readable line: tests and the desktop shell read the bound port from it.
        println!("listening on http://{addr}");
        tracing::info!(%addr, database = %db.url(), "MaiLauncher listening");
    }
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    signals.wait().await;
    tracing::info!("shutting down: closing WebSockets, stopping instances");
    // WebSocket viewers get a close frame with 1001 before the server stops accepting.
    let _ = shutdown_tx.send(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.stop(true).await;
    let _ = server_task.await;
    sampler_task.abort();
    trash_task.abort();
    // Instances are stopped gracefully, each component with its profile's signal and grace,
    // and every exit is recorded before the database closes (their desired state is kept,
    // so the next start brings back what was running). Their actors run on this (the main)
    // runtime whichever HTTP worker started them, so the workers' teardown above cut
    // nothing. Leaving them running is not offered (`supervisor.on_shutdown`): their
    // terminals are PTYs owned by this process, and they would receive SIGHUP when it exits.
    supervisor.shutdown().await;
    tracing::info!("instances stopped; closing the database");
    db.close().await?;
    Ok(())
}

/// How often expired trash entries are looked for after the boot-time purge.
const TRASH_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Purges trash entries older than `deploy.trash_days`, now and then every
/// [`TRASH_PURGE_EVERY`]; a failed pass is logged and retried at the next one.
async fn purge_trash(trash: Trash) {
    let mut tick = tokio::time::interval(TRASH_PURGE_EVERY);
    loop {
        tick.tick().await;
        match trash.purge_due().await {
            Ok(purged) if !purged.is_empty() => {
                tracing::info!(?purged, days = trash.days(), "expired trash entries purged");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "trash purge failed"),
        }
    }
}

/// SIGTERM and SIGINT listeners, installed together.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
