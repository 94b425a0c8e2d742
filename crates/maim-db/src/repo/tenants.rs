use super::{check_len, check_one_of};
use crate::Db;
use crate::entity::system::tenants::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::{SystemScope, TenantScope, new_id, validate_id};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, QueryOrder, QuerySelect};

/// Tenant statuses.
pub const TENANT_STATUSES: &[&str] = &["active", "inactive", "suspended"];
const TENANT_TYPES: &[&str] = &["personal", "enterprise"];

/// A tenant to create.
#[derive(Debug, Clone, Default)]
pub struct NewTenant {
    /// Chosen id; generated (`tenant_…`) when `None`.
    pub id: Option<String>,
    /// Display name, globally unique.
    pub tenant_name: String,
    /// `personal` (default) or `enterprise`.
    pub tenant_type: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Contact address.
    pub contact_email: Option<String>,
    /// Free-form settings object.
    pub tenant_config: Option<serde_json::Value>,
    /// Owning user id.
    pub owner_id: Option<String>,
}

/// Tenants repository.
#[derive(Debug)]
pub struct Tenants<'a> {
    db: &'a Db,
}

impl Db {
    /// The tenants repository.
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants { db: self }
    }
}

impl Tenants<'_> {
    /// Creates a tenant (administration: needs the system scope).
    pub async fn create(&self, _s: &SystemScope, t: NewTenant) -> DbResult<Model> {
        let id = t.id.unwrap_or_else(|| new_id("tenant"));
        validate_id("tenant", &id)?;
        check_len("tenant_name", &t.tenant_name, 100)?;
        let tenant_type = t.tenant_type.unwrap_or_else(|| "personal".into());
        check_one_of("tenant_type", &tenant_type, TENANT_TYPES)?;
        if let Some(cfg) = &t.tenant_config
            && !cfg.is_object()
        {
            return Err(DbError::invalid("tenant_config must be a JSON object"));
        }
        let now = chrono::Utc::now();
        let am = ActiveModel {
            id: Set(id),
            tenant_name: Set(t.tenant_name),
            tenant_type: Set(tenant_type),
            description: Set(t.description),
            contact_email: Set(t.contact_email),
            tenant_config: Set(t.tenant_config),
            status: Set("active".into()),
            owner_id: Set(t.owner_id),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(am.insert(&self.db.conn).await?)
    }

    /// Returns the tenant with this id, creating it with `name` if missing (idempotent
    /// boot-time setup, e.g. the launcher's local tenant).
    pub async fn ensure(&self, s: &SystemScope, id: &str, name: &str) -> DbResult<Model> {
        if let Some(t) = Entity::find_by_id(id.to_owned()).one(&self.db.conn).await? {
            return Ok(t);
        }
        self.create(
            s,
            NewTenant {
                id: Some(id.to_owned()),
                tenant_name: name.to_owned(),
                ..Default::default()
            },
        )
        .await
    }

    /// The scope's own tenant.
    pub async fn get(&self, scope: &TenantScope) -> DbResult<Model> {
        Entity::find_by_id(scope.tenant_id().to_owned())
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "tenant" })
    }

    /// Every tenant, by creation time (administration).
    pub async fn list(&self, _s: &SystemScope, limit: u64, offset: u64) -> DbResult<Vec<Model>> {
        Ok(Entity::find()
            .order_by_asc(Column::CreatedAt)
            .limit(limit)
            .offset(offset)
            .all(&self.db.conn)
            .await?)
    }

    /// Number of tenants (administration).
    pub async fn count(&self, _s: &SystemScope) -> DbResult<u64> {
        Ok(Entity::find().count(&self.db.conn).await?)
    }

    /// Updates the scope's own descriptive fields; `None` leaves a field as it is.
    pub async fn update_profile(
        &self,
        scope: &TenantScope,
        description: Option<String>,
        contact_email: Option<String>,
        tenant_config: Option<serde_json::Value>,
    ) -> DbResult<Model> {
        let cur = self.get(scope).await?;
        let mut am: ActiveModel = cur.into();
        if let Some(d) = description {
            am.description = Set(Some(d));
        }
        if let Some(e) = contact_email {
            am.contact_email = Set(Some(e));
        }
        if let Some(c) = tenant_config {
            if !c.is_object() {
                return Err(DbError::invalid("tenant_config must be a JSON object"));
            }
            am.tenant_config = Set(Some(c));
        }
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?)
    }

    /// Sets a tenant's status (administration).
    pub async fn set_status(&self, _s: &SystemScope, id: &str, status: &str) -> DbResult<Model> {
        check_one_of("status", status, TENANT_STATUSES)?;
        let cur = Entity::find_by_id(id.to_owned())
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "tenant" })?;
        let mut am: ActiveModel = cur.into();
        am.status = Set(status.to_owned());
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?)
    }

    /// Deletes a tenant and, by cascade, its agents, keys, configuration and data.
    pub async fn delete(&self, _s: &SystemScope, id: &str) -> DbResult<bool> {
        let res = Entity::delete_by_id(id.to_owned())
            .exec(&self.db.conn)
            .await?;
        Ok(res.rows_affected > 0)
    }
}
