//! Applying, reverting and reporting schema migrations (the `maim-migrations` crate).

use crate::connect::Db;
use crate::error::{DbError, DbResult};
use crate::scope::SystemScope;
use maim_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use sea_orm_migration::MigrationStatus;

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name, e.g. `m20261121_000001_system`.
    pub name: String,
    /// Whether it is recorded as applied.
    pub applied: bool,
}

/// Tables that hold data a `fresh` would destroy.
const DATA_TABLES: &[&str] = &["tenants", "users", "instances"];

impl Db {
    /// Applies every pending migration.
    pub async fn migrate(&self, _scope: &SystemScope) -> DbResult<()> {
        Migrator::up(&self.conn, None).await?;
        Ok(())
    }

    /// Reverts the last `steps` applied migrations.
    pub async fn migrate_down(&self, _scope: &SystemScope, steps: u32) -> DbResult<()> {
        Migrator::down(&self.conn, Some(steps)).await?;
        Ok(())
    }

    /// Every known migration with its state, oldest first.
    pub async fn migration_status(&self) -> DbResult<Vec<MigrationState>> {
        let list = Migrator::get_migration_with_status(&self.conn).await?;
        Ok(list
            .into_iter()
            .map(|m| MigrationState {
                name: m.name().to_string(),
                applied: matches!(m.status(), MigrationStatus::Applied),
            })
            .collect())
    }

    /// Whether any migration is not yet applied.
    pub async fn has_pending_migrations(&self) -> DbResult<bool> {
        Ok(self.migration_status().await?.iter().any(|m| !m.applied))
    }

    /// Reverts every migration and applies them again. Refuses when the database holds
    /// tenants, users or instances unless `allow_data_loss` is set.
    pub async fn migrate_fresh(&self, _scope: &SystemScope, allow_data_loss: bool) -> DbResult<()> {
        if !allow_data_loss && self.holds_data().await? {
            return Err(DbError::conflict(
                "fresh",
                "the database holds data; pass --yes to drop it",
            ));
        }
        Migrator::down(&self.conn, None).await?;
        Migrator::up(&self.conn, None).await?;
        Ok(())
    }

    /// Whether any of the data tables has a row (tables that do not exist yet count as empty).
    pub async fn holds_data(&self) -> DbResult<bool> {
        let applied = self.migration_status().await?.iter().any(|m| m.applied);
        if !applied {
            return Ok(false);
        }
        for table in DATA_TABLES {
            let sql = format!("SELECT 1 AS one FROM {table} LIMIT 1");
            let row = self
                .conn
                .query_one_raw(Statement::from_string(self.db_backend(), sql))
                .await;
            if let Ok(Some(_)) = row {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The tables and their columns as the database reports them (for schema checks).
    pub async fn schema_columns(&self) -> DbResult<Vec<(String, Vec<String>)>> {
        let backend = self.db_backend();
        let tables_sql = match self.backend() {
            crate::Backend::Sqlite => {
                "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            crate::Backend::Postgres => {
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            }
        };
        let rows = self
            .conn
            .query_all_raw(Statement::from_string(backend, tables_sql))
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let table: String = r.try_get("", "t")?;
            let cols_sql = match self.backend() {
                crate::Backend::Sqlite => Statement::from_sql_and_values(
                    backend,
                    "SELECT name AS c FROM pragma_table_info(?) ORDER BY cid",
                    [table.clone().into()],
                ),
                crate::Backend::Postgres => Statement::from_sql_and_values(
                    backend,
                    "SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    [table.clone().into()],
                ),
            };
            let cols = self
                .conn
                .query_all_raw(cols_sql)
                .await?
                .into_iter()
                .map(|c| c.try_get::<String>("", "c"))
                .collect::<Result<Vec<_>, _>>()?;
            out.push((table, cols));
        }
        Ok(out)
    }
}
