use crate::Db;
use crate::entity::system::agent_active_states::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::{AgentScope, SystemScope, TenantScope};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use std::time::Duration;

/// Agent heartbeats: an agent is active until its last touch plus its TTL.
#[derive(Debug)]
pub struct Heartbeats<'a> {
    db: &'a Db,
}

impl Db {
    /// The heartbeats repository.
    pub fn heartbeats(&self) -> Heartbeats<'_> {
        Heartbeats { db: self }
    }
}

impl Heartbeats<'_> {
    /// Marks the agent active for `ttl` from now (one atomic upsert).
    pub async fn touch(&self, scope: &AgentScope, ttl: Duration) -> DbResult<Model> {
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        if secs <= 0 {
            return Err(DbError::invalid("ttl must be at least one second"));
        }
        let now = chrono::Utc::now();
        let expires = now
            .checked_add_signed(chrono::Duration::seconds(secs))
            .ok_or_else(|| DbError::invalid("ttl too large"))?;
        let am = ActiveModel {
            tenant_id: Set(scope.tenant_id().to_owned()),
            agent_id: Set(scope.agent_id().to_owned()),
            last_seen_at: Set(now),
            ttl_seconds: Set(secs),
            expires_at: Set(expires),
        };
        let on_conflict = OnConflict::columns([Column::TenantId, Column::AgentId])
            .update_columns([Column::LastSeenAt, Column::TtlSeconds, Column::ExpiresAt])
            .to_owned();
        Ok(Entity::insert(am)
            .on_conflict(on_conflict)
            .exec_with_returning(&self.db.conn)
            .await?)
    }

    /// The tenant's agents that are active now.
    pub async fn list_active(&self, scope: &TenantScope) -> DbResult<Vec<Model>> {
        Ok(Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::ExpiresAt.gt(chrono::Utc::now()))
            .order_by_asc(Column::AgentId)
            .all(&self.db.conn)
            .await?)
    }

    /// Every active agent of every tenant (for schedulers that serve all tenants).
    pub async fn list_active_all(&self, _s: &SystemScope) -> DbResult<Vec<Model>> {
        Ok(Entity::find()
            .filter(Column::ExpiresAt.gt(chrono::Utc::now()))
            .order_by_asc(Column::TenantId)
            .order_by_asc(Column::AgentId)
            .all(&self.db.conn)
            .await?)
    }

    /// Removes expired heartbeats; returns how many.
    pub async fn prune_expired(&self, _s: &SystemScope) -> DbResult<u64> {
        Ok(Entity::delete_many()
            .filter(Column::ExpiresAt.lte(chrono::Utc::now()))
            .exec(&self.db.conn)
            .await?
            .rows_affected)
    }
}
