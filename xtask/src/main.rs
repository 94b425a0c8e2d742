//! `cargo xtask …`: project tasks that need more than a shell one-liner.

mod bench_api;
mod bench_db;
mod bench_db_ref;
mod bench_deploy;
mod bench_supervisor;
mod e2e;
mod migrate;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "MaiLauncher project tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Apply, revert or inspect schema migrations.
    Migrate(migrate::Args),
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
    /// Real end-to-end runs through the release server's HTTP API.
    E2e {
        #[command(subcommand)]
        which: E2e,
    },
}

#[derive(Subcommand, Debug)]
enum E2e {
    /// Deploy, start and check two real MaiBot instances side by side, then remove them.
    Maibot(e2e::Args),
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// The release server under HTTP load (routes, metrics, RSS, startup, resources, config).
    Api(bench_api::Args),
    /// maim-db inserts and reads on SQLite and PostgreSQL.
    Db(bench_db::Args),
    /// Full deploys with uv and with pip (the fixture, or a local MaiBot clone).
    Deploy(bench_deploy::Args),
    /// Log pipeline throughput and process-control latencies.
    Supervisor(bench_supervisor::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Benchmarks of a debug build measure the debug build; rerun them optimized.
    if cfg!(debug_assertions) && matches!(cli.cmd, Cmd::Bench { .. }) {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["run", "--release", "--quiet", "--package", "xtask", "--"])
                .args(std::env::args().skip(1))
                .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Migrate(args) => rt.block_on(migrate::run(args)),
        Cmd::Bench {
            which: Bench::Api(args),
        } => rt.block_on(bench_api::run(args)),
        Cmd::Bench {
            which: Bench::Db(args),
        } => rt.block_on(bench_db::run(args)),
        Cmd::Bench {
            which: Bench::Deploy(args),
        } => rt.block_on(bench_deploy::run(args)),
        Cmd::Bench {
            which: Bench::Supervisor(args),
        } => rt.block_on(bench_supervisor::run(args)),
        Cmd::E2e {
            which: E2e::Maibot(args),
        } => rt.block_on(e2e::run(args)),
    }
}
