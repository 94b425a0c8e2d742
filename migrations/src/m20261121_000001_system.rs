//! System tables: tenants, users, agents, API keys, agent heartbeats, plugin settings and
//! agent configuration documents.

use crate::helpers::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES_CHILD_FIRST: &[&str] = &[
    "agent_configs",
    "plugin_settings",
    "agent_active_states",
    "api_keys",
    "agents",
    "tenants",
    "users",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let users = Table::create()
            .table("users")
            .col(id_pk("id"))
            .col(string_len("username", 100))
            .col(string_len_null("email", 255))
            .col(string_len("hashed_password", 255))
            .col(flag("is_active", true))
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            .take();

        let tenants = Table::create()
            .table("tenants")
            .col(id_pk("id"))
            .col(string_len("tenant_name", 100))
            .col(one_of(
                "tenant_type",
                20,
                "personal",
                &["personal", "enterprise"],
            ))
            .col(text_null("description"))
            .col(string_len_null("contact_email", 255))
            .col(json_doc_null("tenant_config"))
            .col(one_of(
                "status",
                20,
                "active",
                &["active", "inactive", "suspended"],
            ))
            .col(id_ref_null("owner_id"))
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_tenants_owner")
                    .from("tenants", "owner_id")
                    .to("users", "id")
                    .on_delete(ForeignKeyAction::SetNull),
            )
            .take();

        let agents = Table::create()
            .table("agents")
            .col(id_pk("id"))
            .col(id_ref("tenant_id"))
            .col(string_len("name", 100))
            .col(text_null("description"))
            .col(id_ref_null("template_id"))
            .col(one_of(
                "status",
                20,
                "active",
                &["active", "inactive", "archived"],
            ))
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            // Target of every composite foreign key (tenant_id, agent_id); a table
            // constraint so it exists before the tables that reference it.
            .index(&mut uniq("agents", &["tenant_id", "id"]))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_agents_tenant")
                    .from("agents", "tenant_id")
                    .to("tenants", "id")
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        // An API key grants a tenant scope (agent_id NULL) or an agent scope.
        let api_keys = Table::create()
            .table("api_keys")
            .col(id_pk("id"))
            .col(id_ref("tenant_id"))
            .col(id_ref_null("agent_id"))
            .col(string_len("name", 100))
            .col(text_null("description"))
            .col(string_len("key_hash", 64))
            .col(json_doc("permissions"))
            .col(one_of(
                "status",
                20,
                "active",
                &["active", "disabled", "revoked"],
            ))
            .col(ts_null("expires_at"))
            .col(ts_null("last_used_at"))
            .col(ts_null("revoked_at"))
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_api_keys_tenant")
                    .from("api_keys", "tenant_id")
                    .to("tenants", "id")
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_api_keys_agent")
                    .from("api_keys", ("tenant_id", "agent_id"))
                    .to("agents", ("tenant_id", "id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        let active_states = Table::create()
            .table("agent_active_states")
            .col(id_ref("tenant_id"))
            .col(id_ref("agent_id"))
            .col(ts_now("last_seen_at"))
            .col(
                big_integer("ttl_seconds")
                    .check(Expr::col("ttl_seconds").gt(0))
                    .take(),
            )
            .col(timestamp_with_time_zone("expires_at"))
            .primary_key(Index::create().col("tenant_id").col("agent_id"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_agent_active_states_agent")
                    .from("agent_active_states", ("tenant_id", "agent_id"))
                    .to("agents", ("tenant_id", "id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        let plugin_settings = Table::create()
            .table("plugin_settings")
            .col(big_pk_auto("id"))
            .col(id_ref("tenant_id"))
            .col(id_ref_null("agent_id"))
            .col(string_len("plugin_name", 100))
            .col(flag("enabled", false))
            .col(json_doc("config"))
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_plugin_settings_tenant")
                    .from("plugin_settings", "tenant_id")
                    .to("tenants", "id")
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_plugin_settings_agent")
                    .from("plugin_settings", ("tenant_id", "agent_id"))
                    .to("agents", ("tenant_id", "id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        let agent_configs = Table::create()
            .table("agent_configs")
            .col(id_ref("tenant_id"))
            .col(id_ref("agent_id"))
            .col(json_doc("document"))
            .col(
                big_integer("version")
                    .check(Expr::col("version").gte(1))
                    .take(),
            )
            .col(ts_now("created_at"))
            .col(ts_now("updated_at"))
            .primary_key(Index::create().col("tenant_id").col("agent_id"))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_agent_configs_agent")
                    .from("agent_configs", ("tenant_id", "agent_id"))
                    .to("agents", ("tenant_id", "id"))
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .take();

        // Tenant-wide plugin settings have agent_id NULL; NULLs are distinct in a unique
        // index, so the tenant-wide row gets its own partial unique index.
        let plugin_tenant_wide = Index::create()
            .name("ux_plugin_settings_tenant_wide")
            .table("plugin_settings")
            .col("tenant_id")
            .col("plugin_name")
            .unique()
            .and_where(Expr::col("agent_id").is_null())
            .take();

        create_all(
            m,
            vec![
                users,
                tenants,
                agents,
                api_keys,
                active_states,
                plugin_settings,
                agent_configs,
            ],
            vec![
                uniq("users", &["username"]),
                uniq("users", &["email"]),
                uniq("tenants", &["tenant_name"]),
                uniq("agents", &["tenant_id", "name"]),
                uniq("api_keys", &["key_hash"]),
                uniq("api_keys", &["tenant_id", "name"]),
                idx("api_keys", &["tenant_id", "agent_id"]),
                idx("agent_active_states", &["expires_at"]),
                uniq("plugin_settings", &["tenant_id", "agent_id", "plugin_name"]),
                plugin_tenant_wide,
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_all(m, TABLES_CHILD_FIRST).await
    }
}
