use super::check_len;
use crate::Db;
use crate::entity::system::plugin_settings::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::{AgentScope, TenantScope};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};

/// Whose plugin settings: tenant-wide, or one agent's.
#[derive(Debug, Clone, Copy)]
pub enum PluginScope<'s> {
    /// Settings that apply to every agent of the tenant.
    Tenant(&'s TenantScope),
    /// Settings of one agent.
    Agent(&'s AgentScope),
}

impl PluginScope<'_> {
    fn tenant_id(&self) -> &str {
        match self {
            PluginScope::Tenant(t) => t.tenant_id(),
            PluginScope::Agent(a) => a.tenant_id(),
        }
    }
    fn agent_id(&self) -> Option<&str> {
        match self {
            PluginScope::Tenant(_) => None,
            PluginScope::Agent(a) => Some(a.agent_id()),
        }
    }
    fn condition(&self) -> Condition {
        let c = Condition::all().add(Column::TenantId.eq(self.tenant_id()));
        match self.agent_id() {
            Some(a) => c.add(Column::AgentId.eq(a)),
            None => c.add(Column::AgentId.is_null()),
        }
    }
}

/// Plugin settings, unique per tenant/agent/plugin.
#[derive(Debug)]
pub struct Plugins<'a> {
    db: &'a Db,
}

impl Db {
    /// The plugin settings repository.
    pub fn plugins(&self) -> Plugins<'_> {
        Plugins { db: self }
    }
}

impl Plugins<'_> {
    /// The settings of `plugin` in this scope, if any.
    pub async fn get(&self, scope: PluginScope<'_>, plugin: &str) -> DbResult<Option<Model>> {
        Ok(Entity::find()
            .filter(scope.condition())
            .filter(Column::PluginName.eq(plugin))
            .one(&self.db.conn)
            .await?)
    }

    /// Every plugin's settings in exactly this scope.
    pub async fn list(&self, scope: PluginScope<'_>) -> DbResult<Vec<Model>> {
        Ok(Entity::find()
            .filter(scope.condition())
            .order_by_asc(Column::PluginName)
            .all(&self.db.conn)
            .await?)
    }

    /// Creates or replaces the settings of `plugin` in this scope. `config` must be a
    /// JSON object.
    pub async fn set(
        &self,
        scope: PluginScope<'_>,
        plugin: &str,
        enabled: bool,
        config: serde_json::Value,
    ) -> DbResult<Model> {
        check_len("plugin_name", plugin, 100)?;
        if !config.is_object() {
            return Err(DbError::invalid("plugin config must be a JSON object"));
        }
        let txn = self.db.begin_write().await?;
        let existing = Entity::find()
            .filter(scope.condition())
            .filter(Column::PluginName.eq(plugin))
            .one(&txn)
            .await?;
        let now = chrono::Utc::now();
        let saved = match existing {
            Some(row) => {
                let mut am: ActiveModel = row.into();
                am.enabled = Set(enabled);
                am.config = Set(config);
                am.updated_at = Set(now);
                am.update(&txn).await?
            }
            None => {
                // A concurrent writer racing us hits the unique index and gets a conflict.
                ActiveModel {
                    tenant_id: Set(scope.tenant_id().to_owned()),
                    agent_id: Set(scope.agent_id().map(str::to_owned)),
                    plugin_name: Set(plugin.to_owned()),
                    enabled: Set(enabled),
                    config: Set(config),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(&txn)
                .await?
            }
        };
        txn.commit().await?;
        Ok(saved)
    }

    /// Deletes the settings of `plugin` in this scope.
    pub async fn delete(&self, scope: PluginScope<'_>, plugin: &str) -> DbResult<bool> {
        Ok(Entity::delete_many()
            .filter(scope.condition())
            .filter(Column::PluginName.eq(plugin))
            .exec(&self.db.conn)
            .await?
            .rows_affected
            > 0)
    }
}
