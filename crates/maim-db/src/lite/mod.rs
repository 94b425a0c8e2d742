//! The SQLite engine behind the scoped repository.
//!
//! sqlx runs every SQLite connection on its own worker thread and moves each statement and
//! each result row across a channel, which costs more than the statement itself: a
//! single-row insert took ~140 µs and a 20-row read ~1.6 ms under load. Tenant data is the
//! hot path, so [`ScopedTable`](crate::ScopedTable) runs it here instead, on rusqlite
//! connections to the same file: one writer (SQLite has one writer at a time anyway, so
//! writes queue on an async lock instead of spinning in SQLite's busy handler) and a pool
//! of readers (WAL readers never block each other or the writer). Statements are built by
//! the same sea-query code as on PostgreSQL and cached prepared per connection.
//!
//! Checkpoints run on a background thread of their own: SQLite would otherwise copy the
//! WAL back into the database file, and fsync it, inside whichever commit crossed the
//! threshold, so every few hundred single-row inserts one of them waited on the disk.
//!
//! Short operations (one row by key, a bounded read) run on the calling task, without a
//! thread hop; they cannot wait on a lock there, because the connection's busy timeout is
//! zero for them, and a busy database sends them to the blocking pool with the configured
//! timeout. Long operations (batches, unbounded reads, bulk updates) always run on the
//! blocking pool. The sqlx pool stays for migrations, system tables and in-memory
//! databases.

pub(crate) mod de;
pub(crate) mod exec;
pub(crate) mod value;

use crate::error::{DbError, DbResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// Where an operation runs; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cost {
    /// Bounded work: run on the calling task, fall back to the blocking pool when busy.
    Short,
    /// Unbounded or batch work: run on the blocking pool.
    Long,
}

/// Prepared statements kept per connection (each table's insert, read and update shapes).
const STATEMENT_CACHE: usize = 128;

/// The writer's page cache, as SQLite's negative-KiB `cache_size` (64 MiB).
const WRITER_CACHE_KIB: i64 = -65_536;

/// How often the checkpointer looks for committed writes to copy back.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL frames past which the checkpointer makes sure the WAL can be rewound (16 MiB).
const REWIND_FRAMES: i64 = 4_096;

/// WAL pages after which the writer checkpoints by itself, should the checkpointer have
/// fallen behind or died (256 MiB at 4 KiB pages; SQLite's default is 1,000).
const WRITER_AUTOCHECKPOINT: u32 = 65_536;

pub(crate) struct Lite {
    path: PathBuf,
    busy: Duration,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<StdMutex<Vec<Connection>>>,
    read_slots: Arc<Semaphore>,
    checkpointer: Checkpointer,
}

/// The background checkpoint thread and its stop signal.
struct Checkpointer {
    dirty: Arc<AtomicBool>,
    stop: Arc<(StdMutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, writer: Arc<Mutex<Connection>>) -> DbResult<Checkpointer> {
        let conn = open(path, true)?;
        let dirty = Arc::new(AtomicBool::new(false));
        let stop = Arc::new((StdMutex::new(false), Condvar::new()));
        let (d, st) = (dirty.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("maim-db-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &writer, &d, &st))
            .map_err(|e| DbError::Database(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            dirty,
            stop,
            thread: Some(thread),
        })
    }
}

fn checkpoint_loop(
    conn: &Connection,
    writer: &Mutex<Connection>,
    dirty: &AtomicBool,
    stop: &(StdMutex<bool>, Condvar),
) {
    let (lock, cv) = stop;
    loop {
        let Ok(guard) = lock.lock() else { return };
        let Ok((guard, _)) = cv.wait_timeout_while(guard, CHECKPOINT_EVERY, |stopped| !*stopped)
        else {
            return;
        };
        if *guard {
            return;
        }
        drop(guard);
        if dirty.swap(false, Ordering::AcqRel)
            && let Err(e) = checkpoint(conn, writer)
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying later");
            dirty.store(true, Ordering::Release);
        }
    }
}

/// One checkpoint round. PASSIVE waits for nobody, so under a steady stream of commits
/// it never catches up with the last one and the WAL is never rewound; once the WAL is
/// long, a second pass holds the engine's writer lock for the few frames appended
/// meanwhile, after which the next write starts the WAL over from its beginning.
fn checkpoint(conn: &Connection, writer: &Mutex<Connection>) -> rusqlite::Result<()> {
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if frames > REWIND_FRAMES {
        let _writer = writer.blocking_lock();
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            // The thread only ever finishes its current checkpoint and returns.
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Lite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lite").field("path", &self.path).finish()
    }
}

/// Maps a rusqlite error onto the crate's error, with the same conflict wording as the
/// sqlx path so callers cannot tell the engines apart.
pub(crate) fn error(e: rusqlite::Error) -> DbError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let msg = msg.clone().unwrap_or_else(|| e.to_string());
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return DbError::conflict(
                    crate::error::constraint_name(&msg),
                    "a row with the same key already exists",
                );
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                return DbError::conflict(
                    crate::error::constraint_name(&msg),
                    "the referenced row does not exist in this scope",
                );
            }
            _ => {}
        }
    }
    DbError::Database(e.to_string())
}

fn is_busy(e: &DbError) -> bool {
    matches!(e, DbError::Database(m) if m.contains("database is locked") || m.contains("database table is locked"))
}

fn open(path: &Path, writer: bool) -> DbResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Same settings as the sqlx pool (connect.rs); readers are additionally read-only.
    // Reads map the file instead of copying pages through each connection's own cache,
    // so the readers share one copy of the hot pages (the OS page cache).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA mmap_size = 268435456;",
    )
    .map_err(error)?;
    if !writer {
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(error)?;
    }
    conn.busy_timeout(Duration::ZERO).map_err(error)?;
    Ok(conn)
}

fn with_busy<R>(
    conn: &Connection,
    busy: Duration,
    f: impl FnOnce(&Connection) -> DbResult<R>,
) -> DbResult<R> {
    conn.busy_timeout(busy).map_err(error)?;
    let r = f(conn);
    // A failure here leaves a waiting busy handler on a connection that is only ever
    // used with one set again before the next blocking call; nothing to undo.
    let _ = conn.busy_timeout(Duration::ZERO);
    r
}

fn blocking_error(e: tokio::task::JoinError) -> DbError {
    DbError::Database(format!("SQLite task failed: {e}"))
}

impl Lite {
    /// Opens the writer on `path` (which the sqlx pool has already created and put in
    /// WAL mode). Readers open on demand, up to `max_readers`.
    pub(crate) fn open(path: &Path, busy: Duration, max_readers: usize) -> DbResult<Lite> {
        let writer = open(path, true)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)
            .map_err(error)?;
        // Inserts touch index leaves all over the file; keep them cached rather than
        // read back for every transaction (the readers map the file instead).
        writer
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(error)?;
        // A multi-row INSERT keeps a statement journal (to undo its own rows when a later
        // one fails); in memory it never spills to a temporary file.
        writer
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(error)?;
        let writer = Arc::new(Mutex::new(writer));
        Ok(Lite {
            checkpointer: Checkpointer::start(path, writer.clone())?,
            path: path.to_owned(),
            busy,
            writer,
            readers: Arc::new(StdMutex::new(Vec::new())),
            read_slots: Arc::new(Semaphore::new(max_readers.max(1))),
        })
    }

    /// Runs `f` on the writer connection. `f` may run twice (short, busy, retried on the
    /// blocking pool) and must not have committed anything when it fails busy, which
    /// holds for single statements and for transactions it opens itself.
    pub(crate) async fn write<R, F>(&self, cost: Cost, f: F) -> DbResult<R>
    where
        R: Send + 'static,
        F: Fn(&mut Connection) -> DbResult<R> + Send + 'static,
    {
        let mut guard = self.writer.clone().lock_owned().await;
        if cost == Cost::Short {
            match f(&mut guard) {
                Err(e) if is_busy(&e) => {}
                done => {
                    self.checkpointer.dirty.store(true, Ordering::Release);
                    return done;
                }
            }
        }
        let busy = self.busy;
        let r = tokio::task::spawn_blocking(move || {
            let conn: &mut Connection = &mut guard;
            let r = match conn.busy_timeout(busy) {
                Ok(()) => f(conn),
                Err(e) => Err(error(e)),
            };
            let _ = conn.busy_timeout(Duration::ZERO);
            // Unlock before the closure's data (a whole batch) is freed.
            drop(guard);
            drop(f);
            r
        })
        .await
        .map_err(blocking_error)?;
        self.checkpointer.dirty.store(true, Ordering::Release);
        r
    }

    /// Runs `f` on a reader connection (read-only, its own WAL snapshot per statement).
    pub(crate) async fn read<R, F>(&self, cost: Cost, f: F) -> DbResult<R>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> DbResult<R> + Send + 'static,
    {
        let permit = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DbError::Database("SQLite reader pool closed".into()))?;
        let conn = self.checkout()?;
        if cost == Cost::Short {
            match f(&conn) {
                Err(e) if is_busy(&e) => {}
                done => {
                    self.checkin(conn);
                    return done;
                }
            }
        }
        let (readers, busy) = (self.readers.clone(), self.busy);
        tokio::task::spawn_blocking(move || {
            let r = with_busy(&conn, busy, &f);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            drop(permit);
            r
        })
        .await
        .map_err(blocking_error)?
    }

    pub(crate) fn checkout(&self) -> DbResult<Connection> {
        let idle = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        match idle {
            Some(c) => Ok(c),
            None => open(&self.path, false),
        }
    }

    fn checkin(&self, conn: Connection) {
        // A poisoned pool only means a panic elsewhere; the connection is then dropped.
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
    }
}
