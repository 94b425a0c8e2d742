//! System tables. These are reached only through their dedicated repositories
//! ([`crate::repo`]), which apply the right scope to each call.

/// Tenants.
pub mod tenants {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One tenant.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_name: String,
        pub tenant_type: String,
        pub description: Option<String>,
        pub contact_email: Option<String>,
        pub tenant_config: Option<Json>,
        pub status: String,
        pub owner_id: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Users (identity for web logins; the password hash is produced by the caller).
pub mod users {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One user.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        pub email: Option<String>,
        #[serde(skip_serializing)]
        pub hashed_password: String,
        pub is_active: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Agents, each owned by one tenant; names are unique per tenant.
pub mod agents {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One agent.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "agents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub description: Option<String>,
        pub template_id: Option<String>,
        pub status: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// API key records: only a keyed hash of the key is stored.
pub mod api_keys {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;

    /// One key record.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub agent_id: Option<String>,
        pub name: String,
        pub description: Option<String>,
        pub key_hash: String,
        pub permissions: Json,
        pub status: String,
        pub expires_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Agent heartbeats: which agents are active, with a time to live.
pub mod agent_active_states {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One heartbeat.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "agent_active_states")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub agent_id: String,
        pub last_seen_at: DateTimeUtc,
        pub ttl_seconds: i64,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Plugin settings per tenant (agent_id NULL) or per agent.
pub mod plugin_settings {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    /// One plugin's settings.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
    #[sea_orm(table_name = "plugin_settings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub agent_id: Option<String>,
        pub plugin_name: String,
        pub enabled: bool,
        pub config: Json,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Agent configuration documents with their optimistic-concurrency version.
pub mod agent_configs {
    #![allow(missing_docs)]
    use sea_orm::entity::prelude::*;

    /// One agent's configuration document.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "agent_configs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub agent_id: String,
        pub document: Json,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
