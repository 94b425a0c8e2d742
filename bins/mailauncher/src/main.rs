//! `mailauncher`: the MaiLauncher daemon.

mod settings;
mod telemetry;

use clap::{Parser, Subcommand};
use settings::{LoggingOverrides, Overrides, ServerOverrides, Settings, StorageOverrides};
use std::path::PathBuf;

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
    let migrate_only = matches!(cli.cmd, Some(Cmd::Migrate));
    let settings = Settings::load(cli.common.config.as_deref(), &overrides(&cli.common))?;
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

async fn serve(settings: Settings, db: maim_db::Db) -> anyhow::Result<()> {
    let state = launcher_api::AppState {
        version: env!("CARGO_PKG_VERSION"),
        started_at: std::time::Instant::now(),
    };
    let prefix = settings.server.api_prefix.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .configure(launcher_api::configure(&prefix, state.clone()))
            .default_service(actix_web::web::to(launcher_api::not_found))
    })
    .workers(2)
    .shutdown_timeout(10)
    .bind((settings.server.host.as_str(), settings.server.port))?;
    for addr in server.addrs() {
        // A machine-readable line: tests and the desktop shell read the bound port from it.
        println!("listening on http://{addr}");
        tracing::info!(%addr, database = %db.url(), "MaiLauncher listening");
    }
    server.run().await?;
    tracing::info!("server stopped; closing the database");
    db.close().await?;
    Ok(())
}
