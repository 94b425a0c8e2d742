//! `cargo xtask migrate [up|down N|status|fresh] [--database-url URL] [--yes]`

use clap::{Parser, Subcommand};
use maim_db::{DbOptions, SystemScope, connect};

#[derive(Parser, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Database URL (sqlite:… or postgres://…); defaults to the server's embedded database.
    #[arg(long, global = true, env = "MAILAUNCHER_DATABASE_URL")]
    database_url: Option<String>,
    /// Allow `fresh` to drop a database that holds data.
    #[arg(long, global = true)]
    yes: bool,
}

#[derive(Subcommand, Debug, Clone)]
enum Action {
    /// Apply every pending migration (the default).
    Up,
    /// Revert the last N migrations.
    Down {
        /// How many to revert.
        n: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Revert everything and apply again (refuses a database with data unless --yes).
    Fresh,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url = args
        .database_url
        .unwrap_or_else(launcher_core::paths::default_database_url);
    let db = connect(&url, &DbOptions::default()).await?;
    println!("database: {}", db.url());
    let sys = SystemScope::new("cargo xtask migrate");
    match args.action.unwrap_or(Action::Up) {
        Action::Up => {
            db.migrate(&sys).await?;
            println!("all migrations applied");
        }
        Action::Down { n } => {
            db.migrate_down(&sys, n).await?;
            println!("reverted {n} migration(s)");
        }
        Action::Status => {}
        Action::Fresh => {
            db.migrate_fresh(&sys, args.yes).await?;
            println!("schema recreated");
        }
    }
    for m in db.migration_status().await? {
        println!("  [{}] {}", if m.applied { "x" } else { " " }, m.name);
    }
    db.close().await?;
    Ok(())
}
