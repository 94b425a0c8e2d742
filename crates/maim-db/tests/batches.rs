//! Batched inserts and whole-row reads on every backend: what a batch stores is what
//! single inserts store, whatever the mix of row shapes, a batch lands whole or not at all,
//! and reads survive columns the model does not know.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use chrono::{TimeZone, Utc};
use maim_db::entity::business::file_uploads;
use maim_db::entity::runtime::{llm_usage, thinking_back};
use maim_db::prelude::*;
use maim_db::{Filter, Query};

fn thought(chat: &str, i: usize) -> thinking_back::ActiveModel {
    let mut am = thinking_back::ActiveModel {
        chat_id: Set(chat.into()),
        question: Set(format!("q{i}")),
        found_answer: Set(i.is_multiple_of(2)),
        create_time: Set(1_700_000_000.25 + i as f64),
        update_time: Set(-0.5 * i as f64),
        ..Default::default()
    };
    // Shapes change mid-batch: some rows set the optional columns, some leave them out,
    // some set them to NULL explicitly.
    match i % 3 {
        0 => {
            am.context = Set(Some(format!("ctx \"quoted\" {{braces}} ,comma, {i}")));
            am.thinking_steps = Set(Some(serde_json::json!({"steps": [i, "two"], "ok": true})));
        }
        1 => am.answer = Set(None),
        _ => {
            am.answer = Set(Some(String::new()));
            am.thinking_steps = Set(Some(serde_json::json!(null)));
        }
    }
    am
}

fn usage(chat: usize, i: usize) -> llm_usage::ActiveModel {
    llm_usage::ActiveModel {
        model_name: Set(format!("m{chat}")),
        model_assign_name: Set(i.is_multiple_of(2).then(|| "assigned".into())),
        user_id: Set("u".into()),
        request_type: Set("chat".into()),
        endpoint: Set("/v1".into()),
        prompt_tokens: Set(i as i64),
        completion_tokens: Set(i64::MAX - i as i64),
        total_tokens: Set(-(i as i64)),
        cost: Set(0.1 * i as f64),
        time_cost: Set(i.is_multiple_of(3).then_some(1.5e-7)),
        status: Set("ok".into()),
        timestamp: Set(Utc
            .timestamp_opt(1_700_000_000 + i as i64, 123_456_000)
            .unwrap()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_batch_stores_what_single_inserts_store() {
    for t in common::backends().await {
        let scope = common::one_agent(&t.db, "batches").await.1;

        let thoughts = t.db.table::<thinking_back::Entity>();
        thoughts
            .insert_many(&scope, (0..9).map(|i| thought("batch", i)).collect())
            .await
            .unwrap();
        for i in 0..9 {
            thoughts.insert(&scope, thought("single", i)).await.unwrap();
        }
        let read = |chat: &'static str| {
            let thoughts = t.db.table::<thinking_back::Entity>();
            let scope = scope.clone();
            async move {
                thoughts
                    .find(
                        &scope,
                        Query::new()
                            .filter(Filter::eq(thinking_back::Column::ChatId, chat))
                            .asc(thinking_back::Column::Question),
                    )
                    .await
                    .unwrap()
            }
        };
        let (batch, single) = (read("batch").await, read("single").await);
        assert_eq!(batch.len(), 9, "{}", t.name);
        for (b, s) in batch.iter().zip(&single) {
            let strip = |m: &thinking_back::Model| {
                let mut m = m.clone();
                (m.id, m.chat_id, m.created_at, m.updated_at) = (
                    0,
                    String::new(),
                    Utc.timestamp_opt(0, 0).unwrap(),
                    Utc.timestamp_opt(0, 0).unwrap(),
                );
                m
            };
            assert_eq!(strip(b), strip(s), "{}", t.name);
        }
        assert_eq!(
            batch[0].thinking_steps,
            Some(serde_json::json!({"steps": [0, "two"], "ok": true}))
        );

        let usages = t.db.table::<llm_usage::Entity>();
        usages
            .insert_many(&scope, (0..7).map(|i| usage(1, i)).collect())
            .await
            .unwrap();
        let rows = usages
            .find(
                &scope,
                Query::new()
                    .filter(Filter::eq(llm_usage::Column::ModelName, "m1"))
                    .asc(llm_usage::Column::PromptTokens),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 7, "{}", t.name);
        for (i, r) in rows.iter().enumerate() {
            let want = usage(1, i);
            assert_eq!(r.timestamp, *want.timestamp.as_ref(), "{} row {i}", t.name);
            assert_eq!(r.completion_tokens, i64::MAX - i as i64);
            assert_eq!(r.time_cost, *want.time_cost.as_ref());
            assert_eq!(r.model_assign_name, *want.model_assign_name.as_ref());
            assert_eq!(r.cost, 0.1 * i as f64);
        }
        t.cleanup().await;
    }
}

fn upload(hash: &str, url: Option<&str>) -> file_uploads::ActiveModel {
    let mut am = file_uploads::ActiveModel {
        original_filename: Set(format!("{hash}.png")),
        stored_filename: Set(hash.into()),
        file_path: Set(format!("/f/{hash}")),
        file_size: Set(1),
        mime_type: Set("image/png".into()),
        file_hash: Set(hash.into()),
        is_public: Set(false),
        user_id: Set("u".into()),
        ..Default::default()
    };
    // Rows that set an optional column and rows that leave it unset differ in shape.
    if let Some(u) = url {
        am.download_url = Set(Some(u.into()));
    }
    am
}

/// Inserts a batch that must be refused as a conflict, and checks the table still holds
/// `before` rows.
async fn refused_whole(
    t: &common::TestDb,
    scope: &maim_db::AgentScope,
    rows: Vec<file_uploads::ActiveModel>,
    before: u64,
) {
    let table = t.db.table::<file_uploads::Entity>();
    let err = table.insert_many(scope, rows).await.unwrap_err();
    assert!(
        matches!(err, maim_db::DbError::Conflict { .. }),
        "{}: {err:?}",
        t.name
    );
    assert_eq!(
        table.count(scope, Filter::All).await.unwrap(),
        before,
        "{}",
        t.name
    );
}

#[tokio::test]
async fn batches_of_mixed_shapes_land_whole_or_not_at_all() {
    for t in common::backends().await {
        let scope = common::one_agent(&t.db, "batches").await.1;
        let table = t.db.table::<file_uploads::Entity>();

        // 75 rows: more than one multi-row statement on SQLite, shapes changing mid-batch.
        let rows = (0..75)
            .map(|i| {
                let url = (i % 10 < 3).then(|| format!("https://x/{i}"));
                upload(&format!("h{i:03}"), url.as_deref())
            })
            .collect();
        assert_eq!(
            table.insert_many(&scope, rows).await.unwrap(),
            75,
            "{}",
            t.name
        );
        let all = table
            .find(&scope, Query::new().asc(file_uploads::Column::FileHash))
            .await
            .unwrap();
        assert_eq!(all.len(), 75);
        for (i, f) in all.iter().enumerate() {
            assert_eq!(f.file_hash, format!("h{i:03}"));
            let want = (i % 10 < 3).then(|| format!("https://x/{i}"));
            assert_eq!(f.download_url, want, "{} row {i}", t.name);
        }

        // A duplicate natural key late in the batch refuses the whole batch, whether it
        // is in the last shape group or the only one.
        for tail in [Some("https://late"), None] {
            let rows = (0..40)
                .map(|i| upload(&format!("n{i}"), None))
                .chain([upload("h010", tail)])
                .collect();
            refused_whole(&t, &scope, rows, 75).await;
        }
        t.cleanup().await;
    }
}

#[tokio::test]
async fn reads_skip_columns_the_model_does_not_know_and_name_type_mismatches() {
    for t in common::backends().await {
        let scope = common::one_agent(&t.db, "reads").await.1;
        let thoughts = t.db.table::<thinking_back::Entity>();
        thoughts
            .insert_many(&scope, (0..3).map(|i| thought("c", i)).collect())
            .await
            .unwrap();
        // A later schema added a column this build does not know: reads skip it.
        t.raw("ALTER TABLE {t}thinking_back ADD COLUMN extra_note TEXT DEFAULT 'x'")
            .await;
        let rows = thoughts
            .find(&scope, Query::new().asc(thinking_back::Column::Question))
            .await
            .unwrap();
        assert_eq!(rows.len(), 3, "{}", t.name);
        assert_eq!(rows[0].question, "q0");
        assert_eq!(
            rows[0].thinking_steps,
            Some(serde_json::json!({"steps": [0, "two"], "ok": true}))
        );

        if t.name == "postgres" {
            // A column whose type no longer suits the model fails the read with its name,
            // never a misread value.
            t.raw(
                "ALTER TABLE {t}thinking_back ALTER COLUMN question TYPE integer \
                 USING length(question)",
            )
            .await;
            let err = thoughts
                .find(&scope, Query::new())
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("question"), "{err}");
        }
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_batch_larger_than_one_statement_is_still_all_or_none() {
    for t in common::backends().await {
        let scope = common::one_agent(&t.db, "large").await.1;
        let table = t.db.table::<file_uploads::Entity>();
        // More rows than one PostgreSQL array statement takes, the last a duplicate of
        // the first: nothing lands.
        let rows = (0..10_050)
            .map(|i| upload(&format!("x{i}"), None))
            .chain([upload("x0", None)])
            .collect();
        refused_whole(&t, &scope, rows, 0).await;
        let rows = (0..10_050)
            .map(|i| upload(&format!("x{i}"), None))
            .collect();
        assert_eq!(table.insert_many(&scope, rows).await.unwrap(), 10_050);
        assert_eq!(table.count(&scope, Filter::All).await.unwrap(), 10_050);
        t.cleanup().await;
    }
}
