use crate::Db;
use crate::config::{AgentConfig, ConfigDocument, apply_patch, view};
use crate::entity::system::agent_configs::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::AgentScope;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter};

/// Agent configuration documents.
#[derive(Debug)]
pub struct Configs<'a> {
    db: &'a Db,
}

impl Db {
    /// The agent configuration repository.
    pub fn configs(&self) -> Configs<'_> {
        Configs { db: self }
    }
}

fn decode(row: Option<&Model>) -> DbResult<AgentConfig> {
    match row {
        Some(r) => serde_json::from_value(r.document.clone())
            .map_err(|e| DbError::Database(format!("stored configuration is unreadable: {e}"))),
        None => Ok(AgentConfig::default()),
    }
}

impl Configs<'_> {
    async fn row(&self, scope: &AgentScope) -> DbResult<Option<Model>> {
        Ok(Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::AgentId.eq(scope.agent_id()))
            .one(&self.db.conn)
            .await?)
    }

    /// The typed configuration with its secrets (for the runtime that uses them).
    pub async fn load(&self, scope: &AgentScope) -> DbResult<(i64, AgentConfig)> {
        let row = self.row(scope).await?;
        Ok((row.as_ref().map_or(0, |r| r.version), decode(row.as_ref())?))
    }

    /// The whole document, secrets masked unless `reveal` (which callers must only pass
    /// for principals entitled to see secrets).
    pub async fn export(&self, scope: &AgentScope, reveal: bool) -> DbResult<ConfigDocument> {
        let (version, cfg) = self.load(scope).await?;
        Ok(ConfigDocument {
            version,
            config: view(&cfg, reveal),
        })
    }

    /// Applies a merge patch in one transaction and returns the new (masked) document.
    ///
    /// Only what the patch names changes. With `expected_version`, a document changed
    /// since that version is a [`DbError::Conflict`]; without it, a concurrent writer
    /// between our read and write is still detected and reported the same way.
    pub async fn update(
        &self,
        scope: &AgentScope,
        expected_version: Option<i64>,
        patch: &serde_json::Value,
    ) -> DbResult<ConfigDocument> {
        let txn = self.db.begin_write().await?;
        let row = Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::AgentId.eq(scope.agent_id()))
            .one(&txn)
            .await?;
        let current = row.as_ref().map_or(0, |r| r.version);
        if let Some(v) = expected_version
            && v != current
        {
            return Err(DbError::conflict(
                "agent_configs.version",
                format!("the configuration is at version {current}, not {v}"),
            ));
        }
        let stored = match &row {
            Some(r) => r.document.clone(),
            None => serde_json::to_value(AgentConfig::default())
                .map_err(|e| DbError::Database(e.to_string()))?,
        };
        let cfg = apply_patch(&stored, patch).map_err(DbError::InvalidInput)?;
        let document = serde_json::to_value(&cfg).map_err(|e| DbError::Database(e.to_string()))?;
        let now = chrono::Utc::now();
        let next = current + 1;
        if row.is_some() {
            let res = Entity::update_many()
                .col_expr(Column::Document, Expr::value(document))
                .col_expr(Column::Version, Expr::value(next))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::TenantId.eq(scope.tenant_id()))
                .filter(Column::AgentId.eq(scope.agent_id()))
                .filter(Column::Version.eq(current))
                .exec(&txn)
                .await?;
            if res.rows_affected != 1 {
                return Err(DbError::conflict(
                    "agent_configs.version",
                    "the configuration was changed concurrently; reload and retry",
                ));
            }
        } else {
            let am = ActiveModel {
                tenant_id: Set(scope.tenant_id().to_owned()),
                agent_id: Set(scope.agent_id().to_owned()),
                document: Set(document),
                version: Set(next),
                created_at: Set(now),
                updated_at: Set(now),
            };
            am.insert(&txn).await.map_err(|e| match DbError::from(e) {
                DbError::Conflict { constraint, .. }
                    if !constraint.contains("fk") && !constraint.contains("FOREIGN") =>
                {
                    DbError::conflict(
                        "agent_configs.version",
                        "the configuration was created concurrently; reload and retry",
                    )
                }
                other => other,
            })?;
        }
        txn.commit().await?;
        Ok(ConfigDocument {
            version: next,
            config: view(&cfg, false),
        })
    }

    /// Deletes the agent's configuration (back to defaults).
    pub async fn reset(&self, scope: &AgentScope) -> DbResult<bool> {
        Ok(Entity::delete_many()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::AgentId.eq(scope.agent_id()))
            .exec(&self.db.conn)
            .await?
            .rows_affected
            > 0)
    }
}
