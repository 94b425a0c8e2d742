//! Reference figures for `bench db`: what the database alone does on this machine with the
//! same schema, rows and concurrency, without maim-db in the way. They bound what the
//! library can reach here, and the gap between them and the library's figures is its cost.
//!
//! - SQLite, batched: one connection, one prepared single-row INSERT stepped 1,000 times
//!   per `BEGIN IMMEDIATE` transaction, values bound as they are (SQLite has one writer).
//! - SQLite, reads: one prepared `SELECT *` per reader thread, every column of every row
//!   touched, nothing decoded into a model.
//! - PostgreSQL, batched: `INSERT … SELECT … FROM generate_series` per 1,000 rows, so the
//!   server does all the work and the client none.
//! - PostgreSQL, reads: the same query through sqlx, the 20 rows fetched and dropped
//!   undecoded.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The bench's (tenant, agent) pairs.
pub type Scopes = Arc<Vec<(String, String)>>;

const TEXT: &str = "a typical short chat message for the benchmark";
const CHATS: [&str; 10] = [
    "chat-0", "chat-1", "chat-2", "chat-3", "chat-4", "chat-5", "chat-6", "chat-7", "chat-8",
    "chat-9",
];

fn print(what: &str, per_sec: f64) {
    println!("  {what:<58} {per_sec:>10.0}");
}

/// Runs `op` on `threads` OS threads for `secs` seconds; `op` returns how many it did.
fn on_threads<F>(threads: usize, secs: u64, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> anyhow::Result<u64> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (op, done) = (op.clone(), done.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    done.fetch_add(op(t, i)?, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("reference thread panicked"))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

pub fn sqlite(path: &Path, scopes: Scopes, secs: u64, readers: usize) -> anyhow::Result<()> {
    println!("  reference, SQLite alone (rusqlite, no maim-db):");
    let open = |path: &Path| -> anyhow::Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(path)?;
        c.busy_timeout(Duration::from_secs(5))?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(c)
    };
    let writer = std::sync::Mutex::new(open(path)?);
    let s = scopes.clone();
    let batched = on_threads(1, secs, move |_, i| {
        let mut c = writer
            .lock()
            .map_err(|_| anyhow::anyhow!("writer lock poisoned"))?;
        let (tenant, agent) = &s[(i as usize) % s.len()];
        let now = chrono::Utc::now().to_rfc3339();
        let txn = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = txn.prepare_cached(
                "INSERT INTO messages (tenant_id, agent_id, message_id, time, chat_id, \
                 chat_info_stream_id, chat_info_platform, chat_info_user_platform, \
                 chat_info_user_id, chat_info_user_nickname, chat_info_create_time, \
                 chat_info_last_active_time, processed_plain_text, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'qq', 'qq', '10001', 'alice', ?4, ?4, ?6, ?7, ?7)",
            )?;
            // Only binding and stepping in the loop: the ids are written into one buffer.
            let mut id = String::with_capacity(32);
            for j in 0..1000u64 {
                id.clear();
                write!(id, "r{i}-{j}")?;
                stmt.execute(rusqlite::params![
                    tenant,
                    agent,
                    id,
                    j as f64,
                    CHATS[(j % 10) as usize],
                    TEXT,
                    now
                ])?;
            }
        }
        txn.commit()?;
        Ok(1000)
    })?;
    print(
        "batched inserts/s (1,000 rows per txn, one writer)",
        batched,
    );

    let path = path.to_path_buf();
    let reads = on_threads(readers, secs, move |_, i| {
        thread_local! {
            static CONN: std::cell::OnceCell<rusqlite::Connection> = const { std::cell::OnceCell::new() };
        }
        CONN.with(|cell| -> anyhow::Result<u64> {
            let c = match cell.get() {
                Some(c) => c,
                None => {
                    let _ = cell.set(open(&path)?);
                    cell.get()
                        .ok_or_else(|| anyhow::anyhow!("connection not set"))?
                }
            };
            let (tenant, agent) = &scopes[(i as usize) % scopes.len()];
            let mut stmt = c.prepare_cached(
                "SELECT * FROM messages WHERE tenant_id = ?1 AND agent_id = ?2 AND chat_id = ?3 \
                 ORDER BY time DESC LIMIT 20",
            )?;
            let n = stmt.column_count();
            let chat = format!("chat-{}", (i as usize / scopes.len()) % 10);
            let mut rows = stmt.query(rusqlite::params![tenant, agent, chat])?;
            let mut got = 0;
            while let Some(r) = rows.next()? {
                for k in 0..n {
                    std::hint::black_box(r.get_ref(k)?);
                }
                got += 1;
            }
            anyhow::ensure!(got == 20, "expected 20 rows, got {got}");
            Ok(1)
        })
    })?;
    print(
        "latest-20-of-a-chat reads/s (rows stepped, not decoded)",
        reads,
    );
    Ok(())
}

pub async fn postgres(
    url: &str,
    schema: &str,
    scopes: Scopes,
    secs: u64,
    batch_workers: usize,
    read_workers: usize,
) -> anyhow::Result<()> {
    use sea_orm::sqlx;
    println!("  reference, PostgreSQL alone (no maim-db):");
    let conn = sea_orm::Database::connect(url).await?;
    let pool = conn.get_postgres_connection_pool().clone();
    let table = format!("\"{schema}\".messages");

    let insert = format!(
        "INSERT INTO {table} (tenant_id, agent_id, message_id, time, chat_id, \
         chat_info_stream_id, chat_info_platform, chat_info_user_platform, chat_info_user_id, \
         chat_info_user_nickname, chat_info_create_time, chat_info_last_active_time, \
         processed_plain_text, created_at, updated_at) \
         SELECT $1, $2, 'r' || $3::int8 || '-' || g, g, 'chat-' || (g % 10), 'chat-' || (g % 10), \
         'qq', 'qq', '10001', 'alice', g, g, $4, now(), now() \
         FROM generate_series(0, 999) g"
    );
    let seq = Arc::new(AtomicU64::new(0));
    let (p, s, q) = (pool.clone(), scopes.clone(), seq.clone());
    let batched = crate::bench_db::measure_async(batch_workers, secs, move |_| {
        let (pool, scopes, sql) = (p.clone(), s.clone(), insert.clone());
        let i = q.fetch_add(1, Ordering::Relaxed);
        async move {
            let (tenant, agent) = &scopes[(i as usize) % scopes.len()];
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(agent)
                .bind(i as i64)
                .bind(TEXT)
                .execute(&pool)
                .await?;
            Ok(1000)
        }
    })
    .await?;
    print(
        "batched inserts/s (server-side INSERT … SELECT, no client work)",
        batched,
    );

    let select = format!(
        "SELECT * FROM {table} WHERE tenant_id = $1 AND agent_id = $2 AND chat_id = $3 \
         ORDER BY time DESC LIMIT 20"
    );
    let reads = crate::bench_db::measure_async(read_workers, secs, move |i| {
        let (pool, scopes, sql) = (pool.clone(), scopes.clone(), select.clone());
        async move {
            let (tenant, agent) = &scopes[(i as usize) % scopes.len()];
            let chat = format!("chat-{}", (i as usize / scopes.len()) % 10);
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(agent)
                .bind(chat)
                .fetch_all(&pool)
                .await?;
            anyhow::ensure!(rows.len() == 20, "expected 20 rows, got {}", rows.len());
            Ok(1)
        }
    })
    .await?;
    print(
        "latest-20-of-a-chat reads/s (rows fetched, not decoded)",
        reads,
    );
    conn.close().await?;
    Ok(())
}
