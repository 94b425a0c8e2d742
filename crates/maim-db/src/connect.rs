//! Opening the database: scheme allow-list, SQLite pragmas, pool options, redaction.

use crate::error::{DbError, DbResult};
use crate::lite::Lite;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL, foreign keys on).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Connection settings. [`Default`] suits an embedded single-process launcher.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Largest pool size.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long to wait for a new connection to be established.
    pub connect_timeout: Duration,
    /// How long a caller waits for a free pooled connection before failing.
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Option<Duration>,
    /// SQLite only: how long a writer waits on a locked database before failing.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL only: use (and create if missing) this schema instead of `public`, so
    /// several services or test runs can share one database without seeing each other.
    pub postgres_schema: Option<String>,
    /// Log every SQL statement at debug level (statements, never the URL).
    pub log_statements: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            min_connections: 1,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            sqlite_busy_timeout: Duration::from_secs(5),
            postgres_schema: None,
            log_statements: false,
        }
    }
}

/// A database URL whose `Debug` and `Display` never show the password.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with any password replaced by `***`, safe for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            Ok(_) => self.0.clone(),
            Err(_) if self.0.contains('@') => "<unparseable url with credentials>".into(),
            Err(_) => self.0.clone(),
        }
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An open database. Cheap to clone (the pool is shared). The connection inside is never
/// handed out: callers reach data only through the scoped repositories.
#[derive(Clone)]
pub struct Db {
    pub(crate) conn: DatabaseConnection,
    /// The rusqlite engine for scoped tables on a SQLite file (see `lite`); `None` on
    /// PostgreSQL and in-memory SQLite, where everything goes through `conn`.
    pub(crate) lite: Option<Arc<Lite>>,
    backend: Backend,
    url: DatabaseUrl,
    schema: Option<String>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("schema", &self.schema)
            .finish()
    }
}

/// Parses the scheme; anything but SQLite or PostgreSQL is refused, never guessed.
pub fn backend_of(url: &str) -> DbResult<Backend> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(DbError::invalid(format!(
            "unsupported database URL scheme {scheme:?} in {}: use sqlite:PATH or postgres://…",
            DatabaseUrl::new(url).redacted()
        ))),
    }
}

/// The file behind a `sqlite:` URL, or `None` for an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// Builds a `sqlite:` URL for a file path.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// Opens a database. `sqlite:` creates the file and its parent directory and turns on WAL,
/// foreign keys, `synchronous=NORMAL` and the busy timeout; `postgres://`/`postgresql://`
/// opens a pool. Any other scheme is an error. The schema is not migrated: call
/// [`Db::migrate`].
pub async fn connect(url: &str, options: &DbOptions) -> DbResult<Db> {
    let backend = backend_of(url)?;
    let safe = DatabaseUrl::new(url);
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(options.max_connections)
        .min_connections(options.min_connections)
        .connect_timeout(options.connect_timeout)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .sqlx_logging(options.log_statements)
        // Formatting every statement into a tracing span costs more than a SQLite query.
        .record_stmt_in_spans(false);

    match backend {
        Backend::Sqlite => {
            if let Some(path) = sqlite_path(url)
                && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    DbError::Database(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            // A local file cannot be dropped by a server or a firewall: never ping.
            opts.test_before_acquire(false);
            let busy = options.sqlite_busy_timeout;
            opts.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(busy)
            });
        }
        Backend::Postgres => {
            // Ping only connections idle long enough to have been dropped, not every
            // checkout (which doubles the round trips of a hot pool).
            opts.test_before_acquire_if_idle_for(Duration::from_secs(30));
            if let Some(schema) = &options.postgres_schema {
                if !valid_schema_name(schema) {
                    return Err(DbError::invalid(format!(
                        "postgres schema must be lowercase letters, digits and '_', got {schema:?}"
                    )));
                }
                let mut boot = ConnectOptions::new(url.to_owned());
                boot.max_connections(1)
                    .connect_timeout(options.connect_timeout)
                    .sqlx_logging(false);
                let c = Database::connect(boot)
                    .await
                    .map_err(|e| connect_error(&safe, e))?;
                c.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .await?;
                c.close().await?;
                opts.set_schema_search_path(schema.clone());
            }
        }
    }

    let conn = Database::connect(opts)
        .await
        .map_err(|e| connect_error(&safe, e))?;
    // The pool has created the file and switched it to WAL; the engine opens beside it.
    let lite = match (backend, sqlite_path(url)) {
        // URI forms (`file:…`, `mode=memory`) are sqlx's business alone.
        (Backend::Sqlite, Some(path))
            if !url.contains("mode=memory") && !path.starts_with("file:") =>
        {
            Some(Arc::new(Lite::open(
                &path,
                options.sqlite_busy_timeout,
                options.max_connections as usize,
            )?))
        }
        _ => None,
    };
    tracing::info!(url = %safe, ?backend, "database connected");
    Ok(Db {
        conn,
        lite,
        backend,
        url: safe,
        schema: options.postgres_schema.clone(),
    })
}

fn connect_error(url: &DatabaseUrl, e: sea_orm::DbErr) -> DbError {
    // The driver's message may quote the URL; say only what failed and where.
    let msg = e.to_string().replace(url.expose(), &url.redacted());
    DbError::Database(format!("cannot connect to {url}: {msg}"))
}

impl Db {
    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL, with the password redacted.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`, waiting out the busy timeout): a deferred transaction that reads
    /// first fails at once, without waiting, if another connection (the scoped-table
    /// engine, another process) commits between its read and its write.
    pub(crate) async fn begin_write(&self) -> DbResult<sea_orm::DatabaseTransaction> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        Ok(self
            .conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?)
    }

    pub(crate) fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// The sqlx pool under a PostgreSQL connection (for statements sea-query cannot build).
    pub(crate) fn pg_pool(&self) -> Option<&sea_orm::sqlx::PgPool> {
        // The accessor panics on other backends; this check is what makes it infallible.
        (self.db_backend() == sea_orm::DbBackend::Postgres)
            .then(|| self.conn.get_postgres_connection_pool())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> DbResult<()> {
        self.conn.ping().await.map_err(Into::into)
    }

    /// Closes the pool, waiting for in-flight statements; on SQLite the WAL is
    /// checkpointed into the main file first.
    pub async fn close(mut self) -> DbResult<()> {
        // The engine's connections close first, so the checkpoint below can truncate.
        self.lite = None;
        if self.backend == Backend::Sqlite {
            // Best effort: a failed checkpoint only leaves a larger -wal file behind.
            let _ = self
                .conn
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await;
        }
        self.conn.close().await.map_err(Into::into)
    }

    /// PostgreSQL only: drops this connection's schema (see
    /// [`DbOptions::postgres_schema`]) and everything in it, then closes the pool.
    pub async fn drop_postgres_schema(self, _scope: &crate::SystemScope) -> DbResult<()> {
        let Some(schema) = self.schema.clone() else {
            return Err(DbError::invalid("this connection has no dedicated schema"));
        };
        self.conn
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
        self.conn.close().await.map_err(Into::into)
    }
}
