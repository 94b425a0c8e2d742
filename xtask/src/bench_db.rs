//! `cargo xtask bench db`: scoped inserts and reads with 10 agents, on SQLite (temp file)
//! and PostgreSQL (`--postgres-url` or `MAIM_TEST_DATABASE_URL`, in a throw-away schema).

use clap::Parser;
use maim_db::entity::runtime::messages::{self, ActiveModel, Column, Entity};
use maim_db::prelude::*;
use maim_db::repo::{NewAgent, NewTenant};
use maim_db::{AgentScope, Db, DbOptions, Filter, Query, SystemScope, TenantScope, connect};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
pub struct Args {
    /// PostgreSQL URL; defaults to MAIM_TEST_DATABASE_URL. Without either, only SQLite runs.
    #[arg(long, env = "MAIM_TEST_DATABASE_URL")]
    postgres_url: Option<String>,
    /// How long each measurement runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Concurrent tasks for the PostgreSQL single-row and read measurements.
    #[arg(long, default_value_t = 8)]
    pg_workers: usize,
    /// Concurrent batch writers for PostgreSQL.
    #[arg(long, default_value_t = 4)]
    pg_batch_workers: usize,
    /// Concurrent tasks for SQLite's single-row and batched inserts. SQLite commits one
    /// transaction at a time; a second task builds its next row or batch meanwhile.
    #[arg(long, default_value_t = 2)]
    sqlite_writers: usize,
    /// Concurrent readers for SQLite (WAL readers do not block each other).
    #[arg(long, default_value_t = 4)]
    sqlite_readers: usize,
    /// Run one measurement only (for profiling; `reads` preloads 100,000 rows untimed).
    #[arg(long, value_enum)]
    only: Option<Phase>,
    /// Run on one backend only (for profiling).
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Skip the reference figures (the database alone, without maim-db) after a full run.
    #[arg(long)]
    no_reference: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Single,
    Batched,
    Reads,
}

const AGENTS: usize = 10;
const CHATS_PER_AGENT: usize = 10;

struct Target {
    single: f64,
    batched: f64,
    reads: f64,
}

fn row(chat: usize, i: u64) -> ActiveModel {
    let now = i as f64;
    ActiveModel {
        message_id: Set(format!("m{i}")),
        time: Set(now),
        chat_id: Set(format!("chat-{chat}")),
        chat_info_stream_id: Set(format!("chat-{chat}")),
        chat_info_platform: Set("qq".into()),
        chat_info_user_platform: Set("qq".into()),
        chat_info_user_id: Set("10001".into()),
        chat_info_user_nickname: Set("alice".into()),
        chat_info_create_time: Set(now),
        chat_info_last_active_time: Set(now),
        processed_plain_text: Set(Some(
            "a typical short chat message for the benchmark".into(),
        )),
        ..Default::default()
    }
}

async fn setup(db: &Db) -> anyhow::Result<Vec<AgentScope>> {
    db.migrate(&SystemScope::new("bench")).await?;
    let t = db
        .tenants()
        .create(
            &SystemScope::new("bench"),
            NewTenant {
                tenant_name: format!("bench-{}", std::process::id()),
                ..Default::default()
            },
        )
        .await?;
    let ts = TenantScope::new(t.id)?;
    let mut scopes = Vec::new();
    for i in 0..AGENTS {
        let a = db
            .agents()
            .create(
                &ts,
                NewAgent {
                    name: format!("a{i}"),
                    ..Default::default()
                },
            )
            .await?;
        scopes.push(ts.agent(a.id)?);
    }
    Ok(scopes)
}

/// CPU time this process has used so far (all threads, user and system), from
/// `/proc/self/stat`; `None` where that file does not exist.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Some(ticks / 100.0)
}

/// One measurement: throughput, and CPU microseconds the process spent per operation
/// (steadier than throughput on a shared machine, whose speed varies from run to run).
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_sec: f64,
    cpu_us: Option<f64>,
}

/// Runs `op` from `workers` tasks for `secs` seconds.
async fn measure<F, Fut>(workers: usize, secs: u64, op: F) -> anyhow::Result<Rate>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    if workers == 0 {
        return Ok(Rate {
            per_sec: 0.0,
            cpu_us: None,
        });
    }
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (op, done, seq) = (op.clone(), done.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                let n = op(i).await?;
                done.fetch_add(n, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let n = done.load(Ordering::Relaxed) as f64;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_us = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if n > 0.0 => Some((b - a) * 1e6 / n),
        _ => None,
    };
    Ok(Rate {
        per_sec: n / elapsed,
        cpu_us,
    })
}

/// [`measure`] for the reference figures: operations per second only.
pub(crate) async fn measure_async<F, Fut>(workers: usize, secs: u64, op: F) -> anyhow::Result<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    Ok(measure(workers, secs, op).await?.per_sec)
}

/// Runs the three measurements; returns the (tenant, agent) pairs it wrote under.
async fn bench(
    name: &str,
    db: Db,
    args: &Args,
    workers: usize,
    batch_workers: usize,
    read_workers: usize,
    target: Target,
) -> anyhow::Result<crate::bench_db_ref::Scopes> {
    let scopes = Arc::new(setup(&db).await?);
    let secs = args.seconds;

    let wanted = |p: Phase| args.only.is_none_or(|o| o == p);

    let (d, s) = (db.clone(), scopes.clone());
    let single = measure(
        if wanted(Phase::Single) { workers } else { 0 },
        secs,
        move |i| {
            let (db, scopes) = (d.clone(), s.clone());
            async move {
                let scope = &scopes[(i as usize) % AGENTS];
                db.table::<Entity>()
                    .insert(scope, row((i as usize / AGENTS) % CHATS_PER_AGENT, i))
                    .await?;
                Ok(1)
            }
        },
    )
    .await?;

    if args.only == Some(Phase::Reads) {
        for i in 0..100u64 {
            let rows = (0..1000u64)
                .map(|j| row((j as usize) % CHATS_PER_AGENT, (1 << 40) + i * 1000 + j))
                .collect();
            db.table::<Entity>()
                .insert_many(&scopes[(i as usize) % AGENTS], rows)
                .await?;
        }
    }

    let (d, s) = (db.clone(), scopes.clone());
    let batched = measure(
        if wanted(Phase::Batched) {
            batch_workers
        } else {
            0
        },
        secs,
        move |i| {
            let (db, scopes) = (d.clone(), s.clone());
            async move {
                let scope = &scopes[(i as usize) % AGENTS];
                let rows = (0..1000u64)
                    .map(|j| row((j as usize) % CHATS_PER_AGENT, i * 1000 + j))
                    .collect();
                Ok(db.table::<Entity>().insert_many(scope, rows).await?)
            }
        },
    )
    .await?;

    let (d, s) = (db.clone(), scopes.clone());
    let reads = measure(
        if wanted(Phase::Reads) {
            read_workers
        } else {
            0
        },
        secs,
        move |i| {
            let (db, scopes) = (d.clone(), s.clone());
            async move {
                let scope = &scopes[(i as usize) % AGENTS];
                let chat = format!("chat-{}", (i as usize / AGENTS) % CHATS_PER_AGENT);
                let rows: Vec<messages::Model> = db
                    .table::<Entity>()
                    .find(
                        scope,
                        Query::new()
                            .filter(Filter::eq(Column::ChatId, chat))
                            .desc(Column::Time)
                            .limit(20),
                    )
                    .await?;
                anyhow::ensure!(rows.len() == 20, "expected 20 rows, got {}", rows.len());
                Ok(1)
            }
        },
    )
    .await?;

    let total: u64 = {
        let mut n = 0;
        for s in scopes.iter() {
            n += db.table::<Entity>().count(s, Filter::All).await?;
        }
        n
    };
    let mark = |got: Rate, want: f64| {
        if got.per_sec == 0.0 && got.cpu_us.is_none() {
            return "(not run)".to_string();
        }
        let verdict = if got.per_sec >= want {
            "meets"
        } else {
            "BELOW"
        };
        match got.cpu_us {
            Some(us) => format!("{verdict}  ({us:.1} CPU µs per row/read in this process)"),
            None => verdict.to_string(),
        }
    };
    println!(
        "\n{name} (concurrent tasks: {workers} single-row writers, {batch_workers} batch writers, {read_workers} readers; {total} messages at the end)"
    );
    println!(
        "  single-row inserts/s (1 row per txn)  {:>10.0}   target {:>7.0}  {}",
        single.per_sec,
        target.single,
        mark(single, target.single)
    );
    println!(
        "  batched inserts/s (1,000 rows per txn) {:>10.0}   target {:>7.0}  {}",
        batched.per_sec,
        target.batched,
        mark(batched, target.batched)
    );
    println!(
        "  latest-20-of-a-chat reads/s          {:>10.0}   target {:>7.0}  {}",
        reads.per_sec,
        target.reads,
        mark(reads, target.reads)
    );
    Ok(Arc::new(
        scopes
            .iter()
            .map(|s| (s.tenant_id().to_owned(), s.agent_id().to_owned()))
            .collect(),
    ))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "maim-db benchmark: 10 agents, scoped repository calls, {} s per measurement",
        args.seconds
    );
    let reference = !args.no_reference && args.only.is_none();
    if args.backend != Some(Backend::Postgres) {
        sqlite(&args, reference).await?;
    }
    if args.backend == Some(Backend::Sqlite) {
        return Ok(());
    }
    postgres(&args, reference).await
}

async fn sqlite(args: &Args, reference: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let url = maim_db::sqlite_url(&path);
    let db = connect(&url, &DbOptions::default()).await?;
    let scopes = bench(
        "SQLite (WAL, synchronous=NORMAL)",
        db.clone(),
        args,
        args.sqlite_writers,
        args.sqlite_writers,
        args.sqlite_readers,
        Target {
            single: 20_000.0,
            batched: 150_000.0,
            reads: 20_000.0,
        },
    )
    .await?;
    db.close().await?;
    if reference {
        let (secs, readers) = (args.seconds, args.sqlite_readers);
        tokio::task::spawn_blocking(move || {
            crate::bench_db_ref::sqlite(&path, scopes, secs, readers)
        })
        .await??;
    }
    Ok(())
}

async fn postgres(args: &Args, reference: bool) -> anyhow::Result<()> {
    match &args.postgres_url {
        Some(pg) => {
            let schema = format!("bench_{}", std::process::id());
            let opts = DbOptions {
                postgres_schema: Some(schema.clone()),
                max_connections: (args.pg_workers as u32).max(2) + 2,
                ..DbOptions::default()
            };
            let db = connect(pg, &opts).await?;
            let r = bench(
                "PostgreSQL",
                db.clone(),
                args,
                args.pg_workers,
                args.pg_batch_workers,
                args.pg_workers,
                Target {
                    single: 4_000.0,
                    batched: 100_000.0,
                    reads: 10_000.0,
                },
            )
            .await;
            let r = match r {
                Ok(scopes) if reference => {
                    crate::bench_db_ref::postgres(
                        pg,
                        &schema,
                        scopes,
                        args.seconds,
                        args.pg_batch_workers,
                        args.pg_workers,
                    )
                    .await
                }
                other => other.map(drop),
            };
            db.drop_postgres_schema(&SystemScope::new("bench cleanup"))
                .await?;
            r?;
        }
        None => println!("\nPostgreSQL skipped: set MAIM_TEST_DATABASE_URL or pass --postgres-url"),
    }
    Ok(())
}
