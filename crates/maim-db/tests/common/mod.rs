//! Test harness: every test story runs against a fresh SQLite file and, when
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! `MAIM_TEST_DATABASE_URL` is set, against a fresh schema of that PostgreSQL database.
#![allow(dead_code)]

use maim_db::{AgentScope, Db, DbOptions, SystemScope, TenantScope, connect, sqlite_url};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestDb {
    pub name: &'static str,
    pub db: Db,
    /// The PostgreSQL schema this database lives in (`None` on SQLite).
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn cleanup(self) {
        if self.name == "postgres" {
            self.db
                .drop_postgres_schema(&SystemScope::new("test cleanup"))
                .await
                .expect("drop test schema");
        } else {
            self.db.close().await.expect("close");
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn postgres_url() -> Option<String> {
    match std::env::var("MAIM_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!(
                "\n*** MAIM_TEST_DATABASE_URL is not set: the PostgreSQL half of this test was SKIPPED ***\n"
            );
            None
        }
    }
}

pub async fn sqlite(migrated: bool) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir.path().join("nested/dir/maim.db"));
    let db = connect(&url, &DbOptions::default())
        .await
        .expect("sqlite connect");
    if migrated {
        db.migrate(&SystemScope::new("test"))
            .await
            .expect("migrate sqlite");
    }
    TestDb {
        name: "sqlite",
        db,
        schema: None,
        _dir: Some(dir),
    }
}

/// Drops schemas left by test processes that no longer run (a panicking test, or the
/// property test's shared database, which lives in a static and is never cleaned up).
/// Schemas are named `t_<pid>_…`; a live pid's are never touched.
async fn sweep_dead_schemas(url: &str) {
    use sea_orm::ConnectionTrait;
    let Ok(c) = sea_orm::Database::connect(url).await else {
        return;
    };
    let Ok(rows) = c
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        ))
        .await
    else {
        return;
    };
    for r in rows {
        let Ok(name) = r.try_get_by_index::<String>(0) else {
            continue;
        };
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = c
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
    let _ = c.close().await;
}

pub async fn postgres(migrated: bool) -> Option<TestDb> {
    let url = postgres_url()?;
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT.get_or_init(|| sweep_dead_schemas(&url)).await;
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        nanos()
    );
    let opts = DbOptions {
        postgres_schema: Some(schema.clone()),
        max_connections: 8,
        ..DbOptions::default()
    };
    let db = connect(&url, &opts).await.expect("postgres connect");
    if migrated {
        db.migrate(&SystemScope::new("test"))
            .await
            .expect("migrate postgres");
    }
    Some(TestDb {
        name: "postgres",
        db,
        schema: Some(schema),
        _dir: None,
    })
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Both backends (Postgres only when configured), migrated.
pub async fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite(true).await];
    if let Some(pg) = postgres(true).await {
        v.push(pg);
    }
    v
}

/// Creates a tenant with `agents` agents; returns the tenant scope and agent ids.
pub async fn tenant_with_agents(db: &Db, name: &str, agents: usize) -> (TenantScope, Vec<String>) {
    let sys = SystemScope::new("test setup");
    let t = db
        .tenants()
        .create(
            &sys,
            maim_db::repo::NewTenant {
                tenant_name: name.into(),
                ..Default::default()
            },
        )
        .await
        .expect("tenant");
    let scope = TenantScope::new(t.id).expect("scope");
    let mut ids = Vec::new();
    for i in 0..agents {
        let a = db
            .agents()
            .create(
                &scope,
                maim_db::repo::NewAgent {
                    name: format!("agent-{i}"),
                    ..Default::default()
                },
            )
            .await
            .expect("agent");
        ids.push(a.id);
    }
    (scope, ids)
}

// ---- rows for any table -------------------------------------------------------------

use maim_db::prelude::*;
use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, EntityTrait, IdenStatic, Iterable, TryIntoModel};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value as J, json};

const AUTO: &[&str] = &["id", "tenant_id", "agent_id", "created_at", "updated_at"];

/// A row for any table, with values derived from each column's type and `seed`
/// (the automatic columns left out).
pub fn dummy<E: EntityTrait>(seed: i64) -> J {
    let mut v = dummy_all::<E>(seed);
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !AUTO.contains(&k.as_str()));
    }
    v
}

pub fn dummy_all<E: EntityTrait>(seed: i64) -> J {
    let mut m = serde_json::Map::new();
    for col in E::Column::iter() {
        let name = col.as_str();
        let v = match col.def().get_column_type() {
            ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
                json!(format!("{name}-{seed}"))
            }
            ColumnType::Double | ColumnType::Float => json!(seed as f64 + 0.5),
            ColumnType::BigInteger | ColumnType::Integer | ColumnType::SmallInteger => json!(seed),
            ColumnType::Boolean => json!(seed % 2 == 0),
            ColumnType::Json | ColumnType::JsonBinary => json!({"seed": seed}),
            ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime => {
                json!(chrono::Utc::now())
            }
            other => panic!("no dummy value for {name}: {other:?}"),
        };
        m.insert(name.to_owned(), v);
    }
    J::Object(m)
}

pub fn am<E>(v: J) -> E::ActiveModel
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Serialize + DeserializeOwned,
    E::ActiveModel: ActiveModelTrait<Entity = E> + TryIntoModel<E::Model>,
{
    // Every column is present in `v` (sea-orm's own placeholder timestamps do not parse
    // back); the automatic ones are unset again so the repository fills them in.
    let forged: Vec<&str> = ["tenant_id", "agent_id"]
        .into_iter()
        .filter(|k| v.get(*k).is_some())
        .collect();
    let mut full = dummy_all::<E>(0);
    for (k, val) in v.as_object().expect("object") {
        full[k] = val.clone();
    }
    let mut am =
        <E::ActiveModel as ActiveModelTrait>::from_json(full).expect("active model from json");
    for col in E::Column::iter() {
        if AUTO.contains(&col.as_str()) && !forged.contains(&col.as_str()) {
            am.not_set(col);
        }
    }
    am
}

/// A new tenant with one agent; returns both scopes.
pub async fn one_agent(db: &Db, tenant: &str) -> (TenantScope, AgentScope) {
    let (ts, ids) = tenant_with_agents(db, tenant, 1).await;
    let scope = ts.agent(ids[0].clone()).expect("agent scope");
    (ts, scope)
}

impl TestDb {
    /// Runs DDL or DML behind the repositories' back, as another program sharing the
    /// database would (`{t}` in `sql` becomes the schema-qualified table prefix).
    pub async fn raw(&self, sql: &str) {
        match &self.schema {
            Some(schema) => {
                use sea_orm::ConnectionTrait;
                let sql = sql.replace("{t}", &format!("\"{schema}\"."));
                let c = sea_orm::Database::connect(postgres_url().expect("url").as_str())
                    .await
                    .expect("raw connect");
                c.execute_unprepared(&sql).await.expect("raw sql");
                c.close().await.expect("raw close");
            }
            None => {
                let path = maim_db::sqlite_path(&self.db.url().redacted()).expect("sqlite path");
                let c = rusqlite::Connection::open(path).expect("raw open");
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .expect("busy");
                c.execute_batch(&sql.replace("{t}", "")).expect("raw sql");
            }
        }
    }
}
