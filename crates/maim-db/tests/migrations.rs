//! Migrations on both backends: up, down, up again; both produce the same schema; every
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! table is either scoped or on the system allow-list; entities match the tables.

mod common;

use maim_db::registry::{self, Ownership};
use maim_db::{DbError, SystemScope};
use std::collections::BTreeMap;

type Schema = BTreeMap<String, Vec<String>>;

async fn schema(db: &maim_db::Db) -> Schema {
    db.schema_columns()
        .await
        .expect("schema")
        .into_iter()
        .collect()
}

async fn up_down_up(t: &common::TestDb) -> Schema {
    let sys = SystemScope::new("test");
    let full = schema(&t.db).await;
    let n = t.db.migration_status().await.unwrap().len() as u32;
    assert!(n >= 4, "{}: expected the four migrations", t.name);
    assert!(!t.db.has_pending_migrations().await.unwrap());

    t.db.migrate_down(&sys, n).await.expect("down");
    let after_down = schema(&t.db).await;
    let leftover: Vec<_> = after_down
        .keys()
        .filter(|k| *k != "seaql_migrations")
        .collect();
    assert!(
        leftover.is_empty(),
        "{}: tables left after down: {leftover:?}",
        t.name
    );
    assert!(
        t.db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| !m.applied)
    );

    t.db.migrate(&sys).await.expect("up again");
    let again = schema(&t.db).await;
    assert_eq!(full, again, "{}: schema differs after down+up", t.name);
    full
}

#[tokio::test]
async fn up_down_up_on_both_backends_gives_the_same_schema() {
    let mut schemas = Vec::new();
    for t in common::backends().await {
        schemas.push((t.name, up_down_up(&t).await));
        t.cleanup().await;
    }
    if let [(_, a), (_, b)] = schemas.as_slice() {
        assert_eq!(a, b, "SQLite and PostgreSQL schemas differ");
    }
}

#[tokio::test]
async fn every_table_is_scoped_or_allow_listed_and_scoped_tables_carry_scope_columns() {
    let t = common::sqlite(true).await;
    let s = schema(&t.db).await;
    let known: BTreeMap<_, _> = registry::tables().into_iter().collect();
    for (table, cols) in &s {
        if registry::MACHINERY.contains(&table.as_str()) {
            continue;
        }
        let own = known.get(table.as_str()).unwrap_or_else(|| {
            panic!("table {table} is neither scoped nor on the system allow-list")
        });
        let has = |c: &str| cols.iter().any(|x| x == c);
        match own {
            Ownership::Agent => assert!(
                has("tenant_id") && has("agent_id"),
                "{table} lacks scope columns"
            ),
            Ownership::Tenant => assert!(has("tenant_id"), "{table} lacks tenant_id"),
            Ownership::System => {}
        }
    }
    for table in known.keys() {
        assert!(
            s.contains_key(*table),
            "registry lists {table}, which no migration creates"
        );
    }
    t.cleanup().await;
}

macro_rules! entity_columns {
    ($($e:ty),* $(,)?) => {{
        use sea_orm::{EntityName, EntityTrait, IdenStatic, Iterable};
        let v: Vec<(&'static str, Vec<&'static str>)> = vec![$( (<$e>::default().table_name(), <$e as EntityTrait>::Column::iter().map(|c| c.as_str()).collect()) ),*];
        v
    }};
}

#[tokio::test]
async fn entities_match_the_migrated_tables() {
    use maim_db::entity::{business::*, launcher::*, runtime::*, system::*};
    let t = common::sqlite(true).await;
    let s = schema(&t.db).await;
    let entities = entity_columns!(
        chat_streams::Entity,
        messages::Entity,
        action_records::Entity,
        emoji::Entity,
        images::Entity,
        image_descriptions::Entity,
        emoji_description_cache::Entity,
        person_info::Entity,
        group_info::Entity,
        expression::Entity,
        jargon::Entity,
        chat_history_summary::Entity,
        thinking_back::Entity,
        llm_usage::Entity,
        online_time::Entity,
        runtime_state::Entity,
        hippo_topic_cache::Entity,
        hippo_batch_state::Entity,
        chat_history::Entity,
        chat_logs::Entity,
        file_uploads::Entity,
        user_sessions::Entity,
        system_metrics::Entity,
        instances::Entity,
        instance_components::Entity,
        deploy_jobs::Entity,
        deploy_job_logs::Entity,
        instance_runs::Entity,
        tenants::Entity,
        users::Entity,
        agents::Entity,
        api_keys::Entity,
        agent_active_states::Entity,
        plugin_settings::Entity,
        agent_configs::Entity,
    );
    for (table, cols) in entities {
        let db_cols = s.get(table).unwrap_or_else(|| panic!("no table {table}"));
        let mut a: Vec<_> = cols.iter().map(|c| c.to_string()).collect();
        let mut b = db_cols.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "entity and table {table} disagree");
    }
    t.cleanup().await;
}

#[tokio::test]
async fn fresh_refuses_a_database_with_data_unless_told() {
    for t in common::backends().await {
        let sys = SystemScope::new("test");
        t.db.migrate_fresh(&sys, false)
            .await
            .expect("fresh on empty db");
        common::tenant_with_agents(&t.db, "data", 1).await;
        let err = t.db.migrate_fresh(&sys, false).await.unwrap_err();
        assert!(
            matches!(err, DbError::Conflict { .. }),
            "{}: {err:?}",
            t.name
        );
        t.db.migrate_fresh(&sys, true)
            .await
            .expect("fresh with yes");
        assert!(!t.db.holds_data().await.unwrap());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn identifier_columns_compare_bytes_on_postgres() {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(url) = common::postgres_url() else {
        return;
    };
    let schema = format!("coll_{}", std::process::id());
    let db = maim_db::connect(
        &url,
        &maim_db::DbOptions {
            postgres_schema: Some(schema.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let sys = SystemScope::new("test");
    let probe = sea_orm::Database::connect(url.as_str()).await.unwrap();
    // Another program's table in the same schema keeps its collation.
    probe
        .execute_unprepared(&format!(
            "CREATE TABLE \"{schema}\".other_app (id text, owner_id varchar(10))"
        ))
        .await
        .unwrap();
    db.migrate(&sys).await.unwrap();
    let foreign = async || {
        probe
            .query_all_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 \
                 AND table_name = 'other_app' AND collation_name IS NOT NULL",
                [schema.clone().into()],
            ))
            .await
            .unwrap()[0]
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    assert_eq!(foreign().await, 0);
    let collations = async || {
        let rows = probe
            .query_all_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT column_name, collation_name FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = 'messages' \
                 AND column_name IN ('tenant_id', 'agent_id', 'message_id', 'processed_plain_text') \
                 ORDER BY column_name",
                [schema.clone().into()],
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.try_get_by_index::<String>(0).unwrap(),
                    r.try_get_by_index::<Option<String>>(1).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let c = Some("C".to_string());
    assert_eq!(
        collations().await,
        vec![
            ("agent_id".into(), c.clone()),
            ("message_id".into(), c.clone()),
            ("processed_plain_text".into(), None),
            ("tenant_id".into(), c.clone()),
        ]
    );
    // Down past migration 5 (migration 6, component ports, comes after it) restores the
    // database default; the tables and their rows stay.
    db.migrate_down(&sys, 2).await.unwrap();
    assert!(collations().await.iter().all(|(_, c)| c.is_none()));
    assert_eq!(foreign().await, 0);
    db.migrate(&sys).await.unwrap();
    assert_eq!(collations().await[0].1, c);
    probe.close().await.unwrap();
    db.drop_postgres_schema(&sys).await.unwrap();
}
