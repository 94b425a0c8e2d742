//! Which tables exist and how each is scoped. A test compares this with the migrated
//! schema: a table that is neither scoped here nor on the system allow-list fails it.

use crate::entity::{business, launcher, runtime};
use sea_orm::EntityTrait;

/// How a table's rows are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Rows carry `tenant_id` and `agent_id`; reached through [`crate::ScopedTable`] with an
    /// [`crate::AgentScope`].
    Agent,
    /// Rows carry `tenant_id`; reached through [`crate::ScopedTable`] with a
    /// [`crate::TenantScope`].
    Tenant,
    /// A system table with a dedicated repository that applies its own scope rules.
    System,
}

fn name<E: EntityTrait>() -> &'static str {
    E::default().table_name()
}

/// Every table of the schema with its ownership. The generic tables are listed through
/// their entity types, so a listed table always has a [`crate::Scoped`] entity.
pub fn tables() -> Vec<(&'static str, Ownership)> {
    use Ownership::*;
    vec![
        (name::<runtime::chat_streams::Entity>(), Agent),
        (name::<runtime::messages::Entity>(), Agent),
        (name::<runtime::action_records::Entity>(), Agent),
        (name::<runtime::emoji::Entity>(), Agent),
        (name::<runtime::images::Entity>(), Agent),
        (name::<runtime::image_descriptions::Entity>(), Agent),
        (name::<runtime::emoji_description_cache::Entity>(), Agent),
        (name::<runtime::person_info::Entity>(), Agent),
        (name::<runtime::group_info::Entity>(), Agent),
        (name::<runtime::expression::Entity>(), Agent),
        (name::<runtime::jargon::Entity>(), Agent),
        (name::<runtime::chat_history_summary::Entity>(), Agent),
        (name::<runtime::thinking_back::Entity>(), Agent),
        (name::<runtime::llm_usage::Entity>(), Agent),
        (name::<runtime::online_time::Entity>(), Agent),
        (name::<runtime::runtime_state::Entity>(), Agent),
        (name::<runtime::hippo_topic_cache::Entity>(), Agent),
        (name::<runtime::hippo_batch_state::Entity>(), Agent),
        (name::<business::chat_history::Entity>(), Agent),
        (name::<business::chat_logs::Entity>(), Agent),
        (name::<business::file_uploads::Entity>(), Agent),
        (name::<business::user_sessions::Entity>(), Agent),
        (name::<business::system_metrics::Entity>(), Agent),
        (name::<launcher::instances::Entity>(), Tenant),
        (name::<launcher::instance_components::Entity>(), Tenant),
        (name::<launcher::deploy_jobs::Entity>(), Tenant),
        (name::<launcher::deploy_job_logs::Entity>(), Tenant),
        (name::<launcher::instance_runs::Entity>(), Tenant),
        ("tenants", System),
        ("users", System),
        ("agents", System),
        ("api_keys", System),
        ("agent_active_states", System),
        ("plugin_settings", System),
        ("agent_configs", System),
    ]
}

/// Tables that belong to the migration machinery, not to data.
pub const MACHINERY: &[&str] = &["seaql_migrations"];
