//! Connecting: the scheme allow-list, credential redaction, SQLite file setup.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use maim_db::{Backend, DatabaseUrl, DbError, DbOptions, backend_of, connect};

#[tokio::test]
async fn other_schemes_are_refused_never_guessed() {
    for url in [
        "mysql://u:p@localhost/db",
        "http://x",
        "sqlite3:foo.db",
        "",
        "postgresqlx://a",
    ] {
        let err = connect(url, &DbOptions::default()).await.unwrap_err();
        assert!(matches!(err, DbError::InvalidInput(_)), "{url}: {err:?}");
    }
    assert_eq!(backend_of("postgres://a@b/c").unwrap(), Backend::Postgres);
    assert_eq!(backend_of("postgresql://a@b/c").unwrap(), Backend::Postgres);
    assert_eq!(backend_of("sqlite::memory:").unwrap(), Backend::Sqlite);
}

#[tokio::test]
async fn the_password_never_appears_in_debug_display_or_errors() {
    let url = "postgres://maim:hunter2-secret@127.0.0.1:1/nowhere";
    let shown = format!("{:?} {}", DatabaseUrl::new(url), DatabaseUrl::new(url));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("maim"), "{shown}");
    let opts = DbOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        acquire_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let err = connect(url, &opts).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let err = connect("mysql://u:hunter2-secret@h/d", &opts)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn sqlite_creates_parent_dirs_uses_wal_and_enforces_foreign_keys() {
    let t = common::sqlite(true).await;
    let (scope, agents) = common::tenant_with_agents(&t.db, "fk", 1).await;
    let path = maim_db::sqlite_path(&t.db.url().redacted()).expect("path");
    assert!(path.exists(), "{path:?}");
    let wal = path.with_extension("db-wal");
    assert!(wal.exists(), "WAL file missing: journal mode is not WAL");
    // A row pointing at a missing agent must be refused by the foreign key.
    let bogus = scope.agent("agent_missing").unwrap();
    let err =
        t.db.heartbeats()
            .touch(&bogus, std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
    assert!(matches!(err, DbError::Conflict { .. }), "{err:?}");
    assert_eq!(agents.len(), 1);
    t.cleanup().await;
}
