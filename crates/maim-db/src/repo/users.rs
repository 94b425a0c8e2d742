use super::check_len;
use crate::Db;
use crate::entity::system::users::{ActiveModel, Column, Entity, Model};
use crate::error::{DbError, DbResult};
use crate::scope::{SystemScope, new_id, validate_id};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter};

/// A user to create. The password hash is produced by the caller (bcrypt, argon2…); a
/// value that does not look like a modular-crypt hash is refused so that a plain
/// password can never be stored by mistake.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Chosen id; generated (`user_…`) when `None`.
    pub id: Option<String>,
    /// Login name, unique.
    pub username: String,
    /// Address, unique when present.
    pub email: Option<String>,
    /// A `$…$…` hash string.
    pub hashed_password: String,
}

/// Users repository (identities are not tenant data: all calls need the system scope).
#[derive(Debug)]
pub struct Users<'a> {
    db: &'a Db,
}

impl Db {
    /// The users repository.
    pub fn users(&self) -> Users<'_> {
        Users { db: self }
    }
}

fn check_hash(h: &str) -> DbResult<()> {
    let looks_hashed = h.starts_with('$') && h.matches('$').count() >= 3 && h.len() >= 20;
    if looks_hashed {
        Ok(())
    } else {
        Err(DbError::invalid(
            "hashed_password must be a modular-crypt hash ($id$…), never a plain password",
        ))
    }
}

impl Users<'_> {
    /// Creates a user.
    pub async fn create(&self, _s: &SystemScope, u: NewUser) -> DbResult<Model> {
        let id = u.id.unwrap_or_else(|| new_id("user"));
        validate_id("user", &id)?;
        check_len("username", &u.username, 100)?;
        check_hash(&u.hashed_password)?;
        let now = chrono::Utc::now();
        let am = ActiveModel {
            id: Set(id),
            username: Set(u.username),
            email: Set(u.email),
            hashed_password: Set(u.hashed_password),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(am.insert(&self.db.conn).await?)
    }

    /// The user with this id.
    pub async fn get(&self, _s: &SystemScope, id: &str) -> DbResult<Model> {
        Entity::find_by_id(id.to_owned())
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "user" })
    }

    /// The user with this login name (for the caller's password check).
    pub async fn by_username(&self, _s: &SystemScope, username: &str) -> DbResult<Model> {
        Entity::find()
            .filter(Column::Username.eq(username))
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "user" })
    }

    /// Replaces the password hash.
    pub async fn set_password_hash(
        &self,
        s: &SystemScope,
        id: &str,
        hash: &str,
    ) -> DbResult<Model> {
        check_hash(hash)?;
        let mut am: ActiveModel = self.get(s, id).await?.into();
        am.hashed_password = Set(hash.to_owned());
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?)
    }

    /// Activates or deactivates a user.
    pub async fn set_active(&self, s: &SystemScope, id: &str, active: bool) -> DbResult<Model> {
        let mut am: ActiveModel = self.get(s, id).await?.into();
        am.is_active = Set(active);
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?)
    }

    /// Deletes a user (tenants they owned keep existing, with no owner).
    pub async fn delete(&self, _s: &SystemScope, id: &str) -> DbResult<bool> {
        Ok(Entity::delete_by_id(id.to_owned())
            .exec(&self.db.conn)
            .await?
            .rows_affected
            > 0)
    }
}
