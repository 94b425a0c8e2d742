//! Tenant isolation: whatever ids it guesses, tenant B cannot read, count, update, upsert
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! over or delete tenant A's rows — checked on every agent-owned table of the schema, on
//! the tenant-owned launcher tables, on every system repository, and by a property test
//! of random interleaved operations by several tenants.

mod common;

use common::{am, dummy};
use maim_db::entity::{business, launcher, runtime};
use maim_db::prelude::*;
use maim_db::repo::{NewApiKey, PluginScope};
use maim_db::{AgentScope, Db, DbError, Filter, Query, Scoped, TenantScope};
use sea_orm::{ActiveModelBehavior, TryIntoModel};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

fn id_of<M: Serialize>(m: &M) -> i64 {
    serde_json::to_value(m).unwrap()["id"]
        .as_i64()
        .expect("integer id")
}

fn scope_of<M: Serialize>(m: &M) -> (String, String) {
    let v = serde_json::to_value(m).unwrap();
    (
        v["tenant_id"].as_str().unwrap().into(),
        v["agent_id"].as_str().unwrap_or("").into(),
    )
}

/// The full battery for one agent-owned table.
async fn check_agent_table<E>(db: &Db, a: &AgentScope, b: &AgentScope, crossed: &AgentScope)
where
    E: Scoped<Scope = AgentScope>,
    E::Model: IntoActiveModel<E::ActiveModel>
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + PartialEq
        + std::fmt::Debug,
    E::ActiveModel:
        ActiveModelTrait<Entity = E> + ActiveModelBehavior + TryIntoModel<E::Model> + Send,
{
    let table = db.table::<E>();
    let name = E::default().table_name();
    let row_a = table
        .insert(a, am::<E>(dummy::<E>(1)))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        scope_of(&row_a),
        (a.tenant_id().into(), a.agent_id().into()),
        "{name}: stamped scope"
    );
    let id = id_of(&row_a);

    // B guesses A's id and sweeps its whole scope.
    assert!(
        matches!(table.get(b, id).await, Err(DbError::NotFound { .. })),
        "{name}: get"
    );
    assert!(
        table.find(b, Query::new()).await.unwrap().is_empty(),
        "{name}: find"
    );
    assert_eq!(
        table.count(b, Filter::All).await.unwrap(),
        0,
        "{name}: count"
    );
    assert!(
        matches!(
            table.update(b, id, am::<E>(dummy::<E>(2))).await,
            Err(DbError::NotFound { .. })
        ),
        "{name}: update"
    );
    assert_eq!(
        table
            .update_where(b, Filter::All, am::<E>(dummy::<E>(2)))
            .await
            .unwrap(),
        0,
        "{name}: update_where"
    );
    assert!(!table.delete(b, id).await.unwrap(), "{name}: delete");
    assert_eq!(
        table.delete_where(b, Filter::All).await.unwrap(),
        0,
        "{name}: delete_where"
    );

    // Writing A's tenant/agent from B's scope is refused outright.
    let mut forged = dummy::<E>(3);
    forged["tenant_id"] = json!(a.tenant_id());
    forged["agent_id"] = json!(a.agent_id());
    assert!(
        matches!(
            table.insert(b, am::<E>(forged.clone())).await,
            Err(DbError::ScopeViolation(_))
        ),
        "{name}: forged insert"
    );
    assert!(
        matches!(
            table.update(b, id, am::<E>(forged)).await,
            Err(DbError::ScopeViolation(_))
        ),
        "{name}: forged update"
    );

    // A scope pairing A's tenant with B's agent can neither write nor read.
    assert!(
        matches!(
            table.insert(crossed, am::<E>(dummy::<E>(4))).await,
            Err(DbError::Conflict { .. })
        ),
        "{name}: crossed insert"
    );
    assert_eq!(
        table.count(crossed, Filter::All).await.unwrap(),
        0,
        "{name}: crossed count"
    );

    // An upsert with A's natural key from B creates B's own row and leaves A's alone.
    if !E::NATURAL_KEY.is_empty() {
        let row_b = table.upsert(b, am::<E>(dummy::<E>(1))).await.unwrap();
        assert_ne!(id_of(&row_b), id, "{name}: upsert took over A's row");
        assert_eq!(
            scope_of(&row_b),
            (b.tenant_id().into(), b.agent_id().into())
        );
        let again = table.upsert(b, am::<E>(dummy::<E>(1))).await.unwrap();
        assert_eq!(
            id_of(&again),
            id_of(&row_b),
            "{name}: upsert did not update in place"
        );
        assert_eq!(table.count(b, Filter::All).await.unwrap(), 1);
    }

    // A's row is exactly as it was.
    assert_eq!(
        table.get(a, id).await.unwrap(),
        row_a,
        "{name}: A's row changed"
    );
    assert_eq!(
        table.count(a, Filter::All).await.unwrap(),
        1,
        "{name}: A count"
    );
    // And A can change and delete its own row.
    table.update(a, id, am::<E>(dummy::<E>(6))).await.unwrap();
    assert!(table.delete(a, id).await.unwrap(), "{name}: A delete");
}

macro_rules! each_agent_table {
    ($db:expr, $a:expr, $b:expr, $x:expr; $($e:ty),* $(,)?) => {
        $( check_agent_table::<$e>($db, $a, $b, $x).await; )*
    };
}

#[tokio::test]
async fn no_agent_table_leaks_across_tenants() {
    use business::*;
    use runtime::*;
    for t in common::backends().await {
        let db = &t.db;
        let (ta, aa) = common::tenant_with_agents(db, "tenant-a", 1).await;
        let (tb, ab) = common::tenant_with_agents(db, "tenant-b", 1).await;
        let a = ta.agent(&aa[0]).unwrap();
        let b = tb.agent(&ab[0]).unwrap();
        let crossed = ta.agent(&ab[0]).unwrap();
        each_agent_table!(db, &a, &b, &crossed;
            chat_streams::Entity, messages::Entity, action_records::Entity, emoji::Entity,
            images::Entity, image_descriptions::Entity, emoji_description_cache::Entity,
            person_info::Entity, group_info::Entity, expression::Entity, jargon::Entity,
            chat_history_summary::Entity, thinking_back::Entity, llm_usage::Entity,
            online_time::Entity, runtime_state::Entity, hippo_topic_cache::Entity,
            hippo_batch_state::Entity, chat_history::Entity, chat_logs::Entity,
            file_uploads::Entity, user_sessions::Entity, system_metrics::Entity,
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn a_caller_or_filter_cannot_widen_the_scope() {
    use runtime::messages::{Column, Entity};
    for t in common::backends().await {
        let (ta, aa) = common::tenant_with_agents(&t.db, "or-a", 1).await;
        let (tb, ab) = common::tenant_with_agents(&t.db, "or-b", 1).await;
        let (a, b) = (ta.agent(&aa[0]).unwrap(), tb.agent(&ab[0]).unwrap());
        let table = t.db.table::<Entity>();
        table
            .insert(&a, am::<Entity>(dummy::<Entity>(1)))
            .await
            .unwrap();
        // The original's `orwhere` re-exposed every tenant; here the caller's OR stays
        // inside its own parentheses.
        let wide = Filter::Or(vec![
            Filter::eq(Column::TenantId, a.tenant_id()),
            Filter::is_not_null(Column::Id),
            Filter::Not(Box::new(Filter::eq(Column::Id, -1))),
        ]);
        assert!(
            table
                .find(&b, Query::new().filter(wide))
                .await
                .unwrap()
                .is_empty(),
            "{}",
            t.name
        );
        let wide = Filter::Or(vec![Filter::is_not_null(Column::Id), Filter::All]);
        assert_eq!(table.count(&b, wide).await.unwrap(), 0);
        let wide = Filter::Or(vec![Filter::is_not_null(Column::Id)]);
        assert_eq!(table.delete_where(&b, wide).await.unwrap(), 0);
        assert_eq!(table.count(&a, Filter::All).await.unwrap(), 1);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn launcher_tables_are_tenant_scoped() {
    use launcher::{instance_components as comp, instances as inst};
    for t in common::backends().await {
        let (ta, _) = common::tenant_with_agents(&t.db, "launch-a", 0).await;
        let (tb, _) = common::tenant_with_agents(&t.db, "launch-b", 0).await;
        let instances = t.db.table::<inst::Entity>();
        let mk = |id: &str| inst::ActiveModel {
            id: Set(id.into()),
            name: Set("mai".into()),
            install_path: Set("/srv/mai".into()),
            version: Set("0.10.1".into()),
            desired_state: Set("stopped".into()),
            observed_state: Set("stopped".into()),
            restart_policy: Set("on-failure".into()),
            ..Default::default()
        };
        let row = instances.insert(&ta, mk("inst-a")).await.unwrap();
        assert!(matches!(
            instances.get(&tb, "inst-a").await,
            Err(DbError::NotFound { .. })
        ));
        assert!(instances.find(&tb, Query::new()).await.unwrap().is_empty());
        assert!(!instances.delete(&tb, "inst-a").await.unwrap());
        // Same name in another tenant is fine; twice in one tenant is a conflict.
        instances.insert(&tb, mk("inst-b")).await.unwrap();
        assert!(matches!(
            instances.insert(&ta, mk("inst-c")).await,
            Err(DbError::Conflict { .. })
        ));
        // A component of another tenant's instance cannot be created.
        let c = |tenant: &TenantScope| comp::ActiveModel {
            instance_id: Set("inst-a".into()),
            kind: Set("main".into()),
            path: Set("/srv/mai".into()),
            argv: Set(json!(["python", "bot.py"])),
            env: Set(json!({})),
            observed_state: Set("stopped".into()),
            tenant_id: Set(tenant.tenant_id().into()),
            ..Default::default()
        };
        assert!(matches!(
            t.db.table::<comp::Entity>().insert(&tb, c(&tb)).await,
            Err(DbError::Conflict { .. })
        ));
        t.db.table::<comp::Entity>()
            .insert(&ta, c(&ta))
            .await
            .unwrap();
        assert_eq!(instances.get(&ta, "inst-a").await.unwrap(), row);
        t.cleanup().await;
    }
}

#[tokio::test]
async fn system_repositories_stay_inside_their_tenant() {
    for t in common::backends().await {
        let db = &t.db;
        let (ta, aa) = common::tenant_with_agents(db, "sys-a", 1).await;
        let (tb, ab) = common::tenant_with_agents(db, "sys-b", 1).await;
        let a = ta.agent(&aa[0]).unwrap();

        // agents
        assert!(matches!(
            db.agents().get(&tb, &aa[0]).await,
            Err(DbError::NotFound { .. })
        ));
        assert!(matches!(
            db.agents().scope(&tb, &aa[0]).await,
            Err(DbError::NotFound { .. })
        ));
        assert!(!db.agents().delete(&tb, &aa[0]).await.unwrap());
        assert!(
            db.agents()
                .update(&tb, &aa[0], Some("x".into()), None, None)
                .await
                .is_err()
        );
        assert_eq!(db.agents().list(&tb).await.unwrap().len(), 1);
        // names are unique per tenant, not globally
        let dup = db
            .agents()
            .create(
                &ta,
                maim_db::repo::NewAgent {
                    name: "agent-0".into(),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(dup, Err(DbError::Conflict { .. })));

        // api keys
        let hasher = maim_db::repo::ApiKeyHasher::new(vec![7u8; 32]).unwrap();
        let keys = db.api_keys(&hasher);
        let k = keys
            .create(
                &ta,
                NewApiKey {
                    name: "k".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(keys.list(&tb).await.unwrap().is_empty());
        assert!(matches!(
            keys.get(&tb, &k.info.id).await,
            Err(DbError::NotFound { .. })
        ));
        assert!(matches!(
            keys.revoke(&tb, &k.info.id).await,
            Err(DbError::NotFound { .. })
        ));
        assert!(!keys.delete(&tb, &k.info.id).await.unwrap());
        // a key cannot be restricted to another tenant's agent
        let cross = keys
            .create(
                &ta,
                NewApiKey {
                    name: "x".into(),
                    agent_id: Some(ab[0].clone()),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(cross, Err(DbError::Conflict { .. })), "{cross:?}");

        // configs
        let crossed = ta.agent(&ab[0]).unwrap();
        db.configs()
            .update(&a, None, &json!({"chat": {"talk_value": 0.3}}))
            .await
            .unwrap();
        assert_eq!(
            db.configs().export(&crossed, true).await.unwrap().version,
            0
        );
        assert!(
            db.configs()
                .update(&crossed, None, &json!({"chat": {"talk_value": 0.9}}))
                .await
                .is_err()
        );
        assert_eq!(db.configs().load(&a).await.unwrap().1.chat.talk_value, 0.3);

        // plugins
        db.plugins()
            .set(PluginScope::Agent(&a), "p", true, json!({"x": 1}))
            .await
            .unwrap();
        db.plugins()
            .set(PluginScope::Tenant(&ta), "p", false, json!({}))
            .await
            .unwrap();
        assert!(
            db.plugins()
                .get(PluginScope::Tenant(&tb), "p")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            db.plugins()
                .list(PluginScope::Tenant(&tb))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !db.plugins()
                .delete(PluginScope::Tenant(&tb), "p")
                .await
                .unwrap()
        );
        assert!(
            db.plugins()
                .set(PluginScope::Agent(&crossed), "p", true, json!({}))
                .await
                .is_err()
        );
        // one row per tenant/agent/plugin, tenant-wide included
        db.plugins()
            .set(PluginScope::Tenant(&ta), "p", true, json!({"y": 2}))
            .await
            .unwrap();
        assert_eq!(
            db.plugins()
                .list(PluginScope::Tenant(&ta))
                .await
                .unwrap()
                .len(),
            1
        );

        // heartbeats
        db.heartbeats()
            .touch(&a, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        assert!(db.heartbeats().list_active(&tb).await.unwrap().is_empty());
        assert_eq!(db.heartbeats().list_active(&ta).await.unwrap().len(), 1);

        // tenant profile
        assert_eq!(db.tenants().get(&tb).await.unwrap().id, tb.tenant_id());

        // deleting A's agent cascades to its data and touches nothing of B's
        let msgs = db.table::<runtime::messages::Entity>();
        msgs.insert(
            &a,
            am::<runtime::messages::Entity>(dummy::<runtime::messages::Entity>(1)),
        )
        .await
        .unwrap();
        let b = tb.agent(&ab[0]).unwrap();
        msgs.insert(
            &b,
            am::<runtime::messages::Entity>(dummy::<runtime::messages::Entity>(1)),
        )
        .await
        .unwrap();
        assert!(db.agents().delete(&ta, &aa[0]).await.unwrap());
        assert_eq!(msgs.count(&a, Filter::All).await.unwrap(), 0);
        assert_eq!(msgs.count(&b, Filter::All).await.unwrap(), 1);
        assert!(db.heartbeats().list_active(&ta).await.unwrap().is_empty());
        assert_eq!(db.configs().export(&a, false).await.unwrap().version, 0);
        t.cleanup().await;
    }
}

mod property {
    use super::*;
    use proptest::prelude::*;
    use runtime::messages::{Column, Entity};
    use std::collections::HashMap;
    use std::sync::OnceLock;

    #[derive(Debug, Clone)]
    enum Op {
        Insert { who: usize, chat: u8 },
        InsertMany { who: usize, chat: u8, n: u8 },
        ReadChat { who: usize, chat: u8 },
        ReadAnyId { who: usize, id: i64 },
        UpdateChat { who: usize, chat: u8 },
        DeleteChat { who: usize, chat: u8 },
        DeleteId { who: usize, id: i64 },
        Count { who: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        let who = 0usize..4;
        let chat = 0u8..3;
        prop_oneof![
            (who.clone(), chat.clone()).prop_map(|(who, chat)| Op::Insert { who, chat }),
            (who.clone(), chat.clone(), 1u8..5).prop_map(|(who, chat, n)| Op::InsertMany {
                who,
                chat,
                n
            }),
            (who.clone(), chat.clone()).prop_map(|(who, chat)| Op::ReadChat { who, chat }),
            (who.clone(), 1i64..200).prop_map(|(who, id)| Op::ReadAnyId { who, id }),
            (who.clone(), chat.clone()).prop_map(|(who, chat)| Op::UpdateChat { who, chat }),
            (who.clone(), chat.clone()).prop_map(|(who, chat)| Op::DeleteChat { who, chat }),
            (who.clone(), 1i64..200).prop_map(|(who, id)| Op::DeleteId { who, id }),
            who.prop_map(|who| Op::Count { who }),
        ]
    }

    fn row(chat: u8, seed: i64) -> runtime::messages::ActiveModel {
        let mut v = dummy::<Entity>(seed);
        v["chat_id"] = json!(format!("chat-{chat}"));
        am::<Entity>(v)
    }

    /// Runs `ops` for four scopes (two agents of tenant 0, one agent each of tenants 1
    /// and 2) and checks every answer against a model of who owns what.
    async fn run(db: &Db, case: u64, ops: Vec<Op>) {
        let mut scopes = Vec::new();
        for t in 0..3 {
            let (ts, agents) = common::tenant_with_agents(
                db,
                &format!("prop-{case}-{t}"),
                if t == 0 { 2 } else { 1 },
            )
            .await;
            for a in agents {
                scopes.push(ts.agent(a).unwrap());
            }
        }
        let table = db.table::<Entity>();
        // model: id -> (owner index, chat)
        let mut owned: HashMap<i64, (usize, u8)> = HashMap::new();
        let mut seed = 0i64;
        let check_rows = |who: usize, rows: &[runtime::messages::Model]| {
            for r in rows {
                assert_eq!(
                    (r.tenant_id.as_str(), r.agent_id.as_str()),
                    (scopes[who].tenant_id(), scopes[who].agent_id()),
                    "foreign row leaked to {who}"
                );
            }
        };
        for op in ops {
            seed += 1;
            match op {
                Op::Insert { who, chat } => {
                    let r = table.insert(&scopes[who], row(chat, seed)).await.unwrap();
                    owned.insert(r.id, (who, chat));
                }
                Op::InsertMany { who, chat, n } => {
                    let rows = (0..n).map(|i| row(chat, seed * 10 + i as i64)).collect();
                    table.insert_many(&scopes[who], rows).await.unwrap();
                    for r in table.find(&scopes[who], Query::new()).await.unwrap() {
                        owned.entry(r.id).or_insert((who, chat));
                    }
                }
                Op::ReadChat { who, chat } => {
                    let rows = table
                        .find(
                            &scopes[who],
                            Query::new()
                                .filter(Filter::eq(Column::ChatId, format!("chat-{chat}")))
                                .desc(Column::Time)
                                .limit(20),
                        )
                        .await
                        .unwrap();
                    check_rows(who, &rows);
                    let expected = owned
                        .values()
                        .filter(|(o, c)| *o == who && *c == chat)
                        .count()
                        .min(20);
                    assert_eq!(rows.len(), expected);
                }
                Op::ReadAnyId { who, id } => match table.get(&scopes[who], id).await {
                    Ok(r) => {
                        check_rows(who, std::slice::from_ref(&r));
                        assert_eq!(owned.get(&id).map(|o| o.0), Some(who));
                    }
                    Err(DbError::NotFound { .. }) => {
                        assert_ne!(owned.get(&id).map(|o| o.0), Some(who))
                    }
                    Err(e) => panic!("{e}"),
                },
                Op::UpdateChat { who, chat } => {
                    let mut patch = runtime::messages::ActiveModel::new();
                    patch.processed_plain_text = Set(Some(format!("by-{who}")));
                    let n = table
                        .update_where(
                            &scopes[who],
                            Filter::eq(Column::ChatId, format!("chat-{chat}")),
                            patch,
                        )
                        .await
                        .unwrap();
                    let expected = owned
                        .values()
                        .filter(|(o, c)| *o == who && *c == chat)
                        .count() as u64;
                    assert_eq!(n, expected);
                }
                Op::DeleteChat { who, chat } => {
                    let n = table
                        .delete_where(
                            &scopes[who],
                            Filter::eq(Column::ChatId, format!("chat-{chat}")),
                        )
                        .await
                        .unwrap();
                    let before = owned.len();
                    owned.retain(|_, (o, c)| !(*o == who && *c == chat));
                    assert_eq!(n as usize, before - owned.len());
                }
                Op::DeleteId { who, id } => {
                    let deleted = table.delete(&scopes[who], id).await.unwrap();
                    let mine = owned.get(&id).map(|o| o.0) == Some(who);
                    assert_eq!(deleted, mine);
                    if mine {
                        owned.remove(&id);
                    }
                }
                Op::Count { who } => {
                    let n = table.count(&scopes[who], Filter::All).await.unwrap();
                    assert_eq!(
                        n as usize,
                        owned.values().filter(|(o, _)| *o == who).count()
                    );
                }
            }
        }
        // Every text written by an update came from the row's own scope.
        for (who, s) in scopes.iter().enumerate() {
            for r in table.find(s, Query::new()).await.unwrap() {
                if let Some(t) = &r.processed_plain_text
                    && let Some(by) = t.strip_prefix("by-")
                {
                    assert_eq!(by, who.to_string(), "an update crossed scopes");
                }
            }
        }
    }

    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        })
    }

    fn sqlite_db() -> &'static Db {
        static DB: OnceLock<(Db, common::TestDb)> = OnceLock::new();
        &DB.get_or_init(|| {
            let t = runtime().block_on(common::sqlite(true));
            (t.db.clone(), t)
        })
        .0
    }

    fn postgres_db() -> Option<&'static Db> {
        static DB: OnceLock<Option<(Db, common::TestDb)>> = OnceLock::new();
        DB.get_or_init(|| {
            runtime()
                .block_on(common::postgres(true))
                .map(|t| (t.db.clone(), t))
        })
        .as_ref()
        .map(|(d, _)| d)
    }

    static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn random_interleavings_never_cross_tenants(ops in proptest::collection::vec(op(), 1..40)) {
            let case = CASE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            runtime().block_on(run(sqlite_db(), case, ops.clone()));
            if let Some(pg) = postgres_db() {
                runtime().block_on(run(pg, case + 1_000_000, ops));
            }
        }
    }
}
