//! Administration under the system scope: whole-table export for backups and audits.

use crate::connect::Db;
use crate::error::{DbError, DbResult};
use crate::registry;
use crate::scope::SystemScope;
use sea_orm::{ConnectionTrait, Statement};

impl Db {
    /// Every row of `table` as JSON objects (every column, as stored). Only tables of the
    /// schema registry are accepted, so the name can never carry SQL.
    pub async fn export_table(
        &self,
        _s: &SystemScope,
        table: &str,
    ) -> DbResult<Vec<serde_json::Value>> {
        if !registry::tables().iter().any(|(t, _)| *t == table) {
            return Err(DbError::invalid(format!("unknown table {table:?}")));
        }
        let sql = match self.backend() {
            crate::Backend::Postgres => {
                format!("SELECT row_to_json(t)::text AS j FROM \"{table}\" t")
            }
            crate::Backend::Sqlite => {
                let cols = self
                    .schema_columns()
                    .await?
                    .into_iter()
                    .find(|(t, _)| t == table)
                    .map(|(_, c)| c)
                    .unwrap_or_default();
                let pairs: Vec<String> = cols.iter().map(|c| format!("'{c}', \"{c}\"")).collect();
                format!(
                    "SELECT json_object({}) AS j FROM \"{table}\"",
                    pairs.join(", ")
                )
            }
        };
        let rows = self
            .conn
            .query_all_raw(Statement::from_string(self.db_backend(), sql))
            .await?;
        rows.into_iter()
            .map(|r| {
                let text: String = r.try_get("", "j")?;
                serde_json::from_str(&text).map_err(|e| DbError::Database(e.to_string()))
            })
            .collect()
    }
}
