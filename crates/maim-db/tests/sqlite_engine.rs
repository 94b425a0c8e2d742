//! The SQLite engine behind the scoped tables (rusqlite beside the sqlx pool): it reads
//! what other writers stored, stores what sqlx would, and waits out a lock held by another
//! connection instead of failing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use maim_db::entity::business::file_uploads;
use maim_db::entity::launcher::instances;
use maim_db::entity::runtime::chat_history_summary as summaries;
use maim_db::prelude::*;
use maim_db::{Filter, Query};
use std::time::Duration;

fn raw(t: &common::TestDb) -> rusqlite::Connection {
    let path = maim_db::sqlite_path(&t.db.url().redacted()).unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

#[tokio::test]
async fn reads_rows_other_writers_stored_and_stores_them_as_sqlx_does() {
    let t = common::sqlite(true).await;
    let (ts, scope) = common::one_agent(&t.db, "engine").await;
    let c = raw(&t);

    // Written by someone else: column defaults for the timestamps (`YYYY-MM-DD
    // HH:MM:SS`, no zone), JSON as text, booleans as integers, an integral REAL stored
    // as an integer, NULLs.
    c.execute(
        "INSERT INTO chat_history_summary (tenant_id, agent_id, chat_id, start_time, end_time, \
         original_text, participants, theme, keywords, summary, key_point, count, forget_times) \
         VALUES (?1, ?2, 'c1', 5, 6.5, 'text', '[\"alice\",\"bob\"]', 'theme', \
         '{\"k\":[1,2]}', 'sum', NULL, 3, 0)",
        (scope.tenant_id(), scope.agent_id()),
    )
    .unwrap();
    let rows =
        t.db.table::<summaries::Entity>()
            .find(
                &scope,
                Query::new().filter(Filter::eq(summaries::Column::ChatId, "c1")),
            )
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.start_time, 5.0);
    assert_eq!(r.end_time, 6.5);
    assert_eq!(r.participants, serde_json::json!(["alice", "bob"]));
    assert_eq!(r.keywords, serde_json::json!({"k": [1, 2]}));
    assert_eq!(r.key_point, None);
    assert_eq!(r.count, 3);
    let age = chrono::Utc::now() - r.created_at;
    assert!(
        age.num_seconds().abs() < 120,
        "default timestamp read as UTC: {age}"
    );

    // Written through the engine: stored in sqlx's formats, read back equal.
    let expires = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let file =
        t.db.table::<file_uploads::Entity>()
            .insert(
                &scope,
                file_uploads::ActiveModel {
                    original_filename: Set("a \"quoted\" name.png".into()),
                    stored_filename: Set("x".into()),
                    file_path: Set("/f".into()),
                    file_size: Set(i64::MAX),
                    mime_type: Set("image/png".into()),
                    file_hash: Set("h1".into()),
                    is_public: Set(true),
                    download_url: Set(None),
                    expires_at: Set(Some(expires)),
                    user_id: Set("u".into()),
                    metadata: Set(Some(serde_json::json!({"w": 1, "tags": ["x"]}))),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(file.expires_at, Some(expires));
    assert_eq!(file.file_size, i64::MAX);
    assert!(file.is_public);
    let (public, stored_expiry, meta, created): (i64, String, String, String) = c
        .query_row(
            "SELECT is_public, expires_at, metadata, created_at FROM file_uploads WHERE id = ?1",
            [file.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(public, 1);
    assert_eq!(stored_expiry, "2030-01-02T03:04:05.123456+00:00");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&meta).unwrap(),
        serde_json::json!({"w": 1, "tags": ["x"]})
    );
    assert!(created.ends_with("+00:00"), "{created}");
    let again =
        t.db.table::<file_uploads::Entity>()
            .get(&scope, file.id)
            .await
            .unwrap();
    assert_eq!(again, file);

    // Tenant-level rows with string keys, optional integers and dates.
    let inst =
        t.db.table::<instances::Entity>()
            .insert(
                &ts,
                instances::ActiveModel {
                    id: Set("inst-1".into()),
                    name: Set("bot".into()),
                    install_path: Set("/srv/bot".into()),
                    version: Set("0.10.1".into()),
                    maibot_port: Set(Some(8000)),
                    owned: Set(true),
                    desired_state: Set("stopped".into()),
                    observed_state: Set("stopped".into()),
                    restart_policy: Set("on-failure".into()),
                    start_count: Set(0),
                    crash_count: Set(0),
                    total_runtime_ms: Set(0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    assert_eq!(inst.maibot_port, Some(8000));
    assert_eq!(inst.last_exit_code, None);
    let page =
        t.db.table::<instances::Entity>()
            .find(
                &ts,
                Query::new().asc(instances::Column::Name).limit(5).offset(0),
            )
            .await
            .unwrap();
    assert_eq!(page, vec![inst]);
    t.cleanup().await;
}

#[tokio::test]
async fn a_write_waits_for_a_lock_held_by_another_connection() {
    let t = common::sqlite(true).await;
    let (_, scope) = common::one_agent(&t.db, "engine").await;
    let c = raw(&t);
    c.execute_batch("BEGIN IMMEDIATE").unwrap();

    let db = t.db.clone();
    let s = scope.clone();
    let insert = tokio::spawn(async move {
        db.table::<summaries::Entity>()
            .insert(
                &s,
                summaries::ActiveModel {
                    chat_id: Set("c".into()),
                    start_time: Set(1.0),
                    end_time: Set(2.0),
                    original_text: Set("t".into()),
                    participants: Set(serde_json::json!([])),
                    theme: Set("x".into()),
                    keywords: Set(serde_json::json!([])),
                    summary: Set("s".into()),
                    count: Set(1),
                    forget_times: Set(0),
                    ..Default::default()
                },
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !insert.is_finished(),
        "the insert must wait for the other writer"
    );
    c.execute_batch("COMMIT").unwrap();
    let row = insert
        .await
        .unwrap()
        .expect("insert after the lock is released");
    assert_eq!(row.chat_id, "c");
    assert_eq!(
        t.db.table::<summaries::Entity>()
            .count(&scope, Filter::All)
            .await
            .unwrap(),
        1
    );
    t.cleanup().await;
}
