use super::{check_len, check_one_of};
use crate::Db;
use crate::entity::system::agents::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::{AgentScope, TenantScope, new_id, validate_id};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

const AGENT_STATUSES: &[&str] = &["active", "inactive", "archived"];

/// An agent to create.
#[derive(Debug, Clone, Default)]
pub struct NewAgent {
    /// Chosen id; generated (`agent_…`) when `None`.
    pub id: Option<String>,
    /// Name, unique within the tenant (enforced by the database, not by a racy check).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Template the agent was made from.
    pub template_id: Option<String>,
}

/// Agents repository: every call is confined to one tenant.
#[derive(Debug)]
pub struct Agents<'a> {
    db: &'a Db,
}

impl Db {
    /// The agents repository.
    pub fn agents(&self) -> Agents<'_> {
        Agents { db: self }
    }
}

impl Agents<'_> {
    /// Creates an agent in the scope's tenant.
    pub async fn create(&self, scope: &TenantScope, a: NewAgent) -> DbResult<Model> {
        let id = a.id.unwrap_or_else(|| new_id("agent"));
        validate_id("agent", &id)?;
        check_len("name", &a.name, 100)?;
        let now = chrono::Utc::now();
        let am = ActiveModel {
            id: Set(id),
            tenant_id: Set(scope.tenant_id().to_owned()),
            name: Set(a.name),
            description: Set(a.description),
            template_id: Set(a.template_id),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(am.insert(&self.db.conn).await?)
    }

    /// The agent `id` of the scope's tenant.
    pub async fn get(&self, scope: &TenantScope, id: &str) -> DbResult<Model> {
        validate_id("agent", id)?;
        Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::Id.eq(id))
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "agent" })
    }

    /// An agent scope for `id`, checked to exist in the scope's tenant.
    pub async fn scope(&self, scope: &TenantScope, id: &str) -> DbResult<AgentScope> {
        let a = self.get(scope, id).await?;
        scope.agent(a.id)
    }

    /// The agent named `name` in the scope's tenant.
    pub async fn by_name(&self, scope: &TenantScope, name: &str) -> DbResult<Model> {
        Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::Name.eq(name))
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "agent" })
    }

    /// The tenant's agents, by creation time.
    pub async fn list(&self, scope: &TenantScope) -> DbResult<Vec<Model>> {
        Ok(Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .order_by_asc(Column::CreatedAt)
            .all(&self.db.conn)
            .await?)
    }

    /// How many agents the tenant has.
    pub async fn count(&self, scope: &TenantScope) -> DbResult<u64> {
        Ok(Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .count(&self.db.conn)
            .await?)
    }

    /// Changes name, description or status; `None` leaves a field as it is.
    pub async fn update(
        &self,
        scope: &TenantScope,
        id: &str,
        name: Option<String>,
        description: Option<String>,
        status: Option<String>,
    ) -> DbResult<Model> {
        let mut am: ActiveModel = self.get(scope, id).await?.into();
        if let Some(n) = name {
            check_len("name", &n, 100)?;
            am.name = Set(n);
        }
        if let Some(d) = description {
            am.description = Set(Some(d));
        }
        if let Some(s) = status {
            check_one_of("status", &s, AGENT_STATUSES)?;
            am.status = Set(s);
        }
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?)
    }

    /// Deletes the agent and, by cascade, its keys, heartbeat, configuration and data.
    pub async fn delete(&self, scope: &TenantScope, id: &str) -> DbResult<bool> {
        let res = Entity::delete_many()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::Id.eq(id))
            .exec(&self.db.conn)
            .await?;
        Ok(res.rows_affected > 0)
    }
}
