//! Dedicated repositories for the system tables. Each method's signature says which scope
//! it needs: [`crate::SystemScope`] for cross-tenant administration, [`crate::TenantScope`]
//! or [`crate::AgentScope`] for a tenant's own data.

mod agents;
mod api_keys;
mod configs;
mod heartbeats;
mod plugins;
mod tenants;
mod users;

pub use agents::{Agents, NewAgent};
pub use api_keys::{
    ApiKeyHasher, ApiKeyInfo, ApiKeys, CreatedApiKey, GrantedScope, NewApiKey, VerifiedKey,
};
pub use configs::Configs;
pub use heartbeats::Heartbeats;
pub use plugins::{PluginScope, Plugins};
pub use tenants::{NewTenant, Tenants};
pub use users::{NewUser, Users};

use crate::error::{DbError, DbResult};

pub(crate) fn check_one_of(field: &str, value: &str, allowed: &[&str]) -> DbResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(DbError::invalid(format!(
            "{field} must be one of {allowed:?}, got {value:?}"
        )))
    }
}

pub(crate) fn check_len(field: &str, value: &str, max: usize) -> DbResult<()> {
    if value.trim().is_empty() || value.chars().count() > max {
        Err(DbError::invalid(format!(
            "{field} must be 1-{max} characters"
        )))
    } else {
        Ok(())
    }
}
