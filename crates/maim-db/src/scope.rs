//! Scope values. Every repository method on tenant-owned data takes one of these; there is
//! no ambient "current tenant". A scope is a plain value the caller holds, so concurrent
//! tasks can never see each other's scope (the original kept it in a thread-local).

use crate::error::{DbError, DbResult};
use std::fmt;

/// Longest accepted id, matching the width of the id columns.
pub const MAX_ID_LEN: usize = 64;

/// Validates an identifier: 1–64 characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub(crate) fn validate_id(kind: &str, id: &str) -> DbResult<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if id.is_empty() || id.len() > MAX_ID_LEN || !ok_chars || id.starts_with(['.', '-']) {
        return Err(DbError::invalid(format!(
            "{kind} id must be 1-{MAX_ID_LEN} characters of letters, digits, '_', '-' or '.', got {id:?}"
        )));
    }
    Ok(())
}

/// Generates a fresh id with a readable prefix, e.g. `agent_V1StGXR8Z5jdHi6B`.
pub(crate) fn new_id(prefix: &str) -> String {
    const ALPHABET: [char; 62] = [
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
        'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
        'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R',
        'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z',
    ];
    // 16 base62 characters carry 95 bits: collisions are not a practical concern.
    format!("{prefix}_{}", nanoid::nanoid!(16, &ALPHABET))
}

/// The scope of one tenant: all of its agents.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantScope {
    tenant_id: String,
}

impl TenantScope {
    /// A scope acting for `tenant_id`. The id is validated, not looked up: reads in a scope
    /// whose tenant does not exist simply find nothing, and writes fail their foreign key.
    pub fn new(tenant_id: impl Into<String>) -> DbResult<Self> {
        let tenant_id = tenant_id.into();
        validate_id("tenant", &tenant_id)?;
        Ok(Self { tenant_id })
    }

    /// The tenant this scope acts for.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Narrows this scope to one of the tenant's agents (validated, not looked up; use
    /// [`crate::Db::agents`]`().scope(..)` to check the agent exists).
    pub fn agent(&self, agent_id: impl Into<String>) -> DbResult<AgentScope> {
        AgentScope::new(self.tenant_id.clone(), agent_id)
    }
}

impl fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantScope({})", self.tenant_id)
    }
}

/// The scope of one agent of one tenant.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentScope {
    tenant: TenantScope,
    agent_id: String,
}

impl AgentScope {
    /// A scope acting for `agent_id` of `tenant_id`. An agent id paired with the wrong
    /// tenant reads nothing and cannot write: rows reference `agents(tenant_id, id)`.
    pub fn new(tenant_id: impl Into<String>, agent_id: impl Into<String>) -> DbResult<Self> {
        let tenant = TenantScope::new(tenant_id)?;
        let agent_id = agent_id.into();
        validate_id("agent", &agent_id)?;
        Ok(Self { tenant, agent_id })
    }

    /// The tenant this scope acts for.
    pub fn tenant_id(&self) -> &str {
        self.tenant.tenant_id()
    }

    /// The agent this scope acts for.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The enclosing tenant scope.
    pub fn tenant(&self) -> &TenantScope {
        &self.tenant
    }
}

impl fmt::Debug for AgentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentScope({}/{})", self.tenant.tenant_id, self.agent_id)
    }
}

/// The one unscoped door: administration and migrations. Creating one is logged at
/// `info` on the `maim_db::audit` target with its stated reason, so every use shows up
/// in review (grep `SystemScope::new`) and in the logs.
#[derive(Debug, Clone)]
pub struct SystemScope {
    reason: &'static str,
}

impl SystemScope {
    /// Opens the system scope for `reason` (e.g. `"migrate"`, `"create tenant"`).
    pub fn new(reason: &'static str) -> Self {
        tracing::info!(target: "maim_db::audit", reason, "system scope opened");
        Self { reason }
    }

    /// Why this scope was opened.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}
