//! API keys: `maim_<key id>_<secret><checksum>`.
//!
//! - the key id (16 base62 characters) is public and is the row's primary key;
//! - the secret is 43 base62 characters (256 bits) from the OS-seeded CSPRNG;
//! - the checksum (6 base62 characters of SHA-256 over the rest) rejects typos and
//!   forgeries before any database work;
//! - only HMAC-SHA256(pepper, key) is stored. A fast keyed hash is the right tool for
//!   random 256-bit secrets (nothing to brute-force), and without the pepper a stolen
//!   table verifies nothing. Comparison is constant-time.

use super::{check_len, check_one_of};
use crate::Db;
use crate::entity::system::api_keys::{ActiveModel, Column, Entity, Model};
use crate::entity::system::tenants;
use crate::error::{DbError, DbResult};
use crate::scope::{AgentScope, TenantScope, validate_id};
use hmac::{Hmac, Mac};
use rand::Rng;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;
use subtle::ConstantTimeEq;

const PREFIX: &str = "maim_";
const KID_LEN: usize = 16;
const SECRET_LEN: usize = 43;
const CHECK_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const KEY_STATUSES: &[&str] = &["active", "disabled", "revoked"];

/// The keyed hash used to store keys. The pepper is a server secret kept outside the
/// database (environment, secret store); losing it invalidates every key.
#[derive(Clone)]
pub struct ApiKeyHasher {
    pepper: Vec<u8>,
    touch_interval: Duration,
}

impl fmt::Debug for ApiKeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHasher(pepper: <{} bytes>)", self.pepper.len())
    }
}

impl ApiKeyHasher {
    /// A hasher with this pepper (at least 32 bytes).
    pub fn new(pepper: impl Into<Vec<u8>>) -> DbResult<Self> {
        let pepper = pepper.into();
        if pepper.len() < 32 {
            return Err(DbError::invalid(
                "the API key pepper must be at least 32 bytes",
            ));
        }
        Ok(Self {
            pepper,
            touch_interval: Duration::from_secs(60),
        })
    }

    /// How stale `last_used_at` may get before a verification refreshes it (default 60 s).
    /// Keeps verification a pure read on the hot path.
    pub fn with_touch_interval(mut self, d: Duration) -> Self {
        self.touch_interval = d;
        self
    }

    fn hash(&self, key: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.pepper) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any size"),
        };
        mac.update(key.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn random_base62(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    let mut out = [0u8; CHECK_LEN];
    for slot in out.iter_mut() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Splits a presented key into its id, checking shape and checksum only.
fn parse(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (kid, tail) = rest.split_once('_')?;
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if kid.len() != KID_LEN || tail.len() != SECRET_LEN + CHECK_LEN || !base62(kid) || !base62(tail)
    {
        return None;
    }
    let (secret, check) = tail.split_at(SECRET_LEN);
    let body = format!("{PREFIX}{kid}_{secret}");
    let ok: bool = checksum(&body).as_bytes().ct_eq(check.as_bytes()).into();
    ok.then_some(kid)
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// Name, unique within the tenant.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Restrict the key to one agent of the tenant; `None` grants the tenant scope.
    pub agent_id: Option<String>,
    /// Permission names, e.g. `chat`, `config_read`.
    pub permissions: Vec<String>,
    /// When the key stops working.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A key record without its hash.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiKeyInfo {
    /// Public key id (the part after `maim_`).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The agent the key is restricted to, if any.
    pub agent_id: Option<String>,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Permission names.
    pub permissions: Vec<String>,
    /// `active`, `disabled` or `revoked`.
    pub status: String,
    /// Expiry.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last successful verification (refreshed lazily).
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Model> for ApiKeyInfo {
    fn from(m: Model) -> Self {
        let permissions = serde_json::from_value(m.permissions).unwrap_or_default();
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            agent_id: m.agent_id,
            name: m.name,
            description: m.description,
            permissions,
            status: m.status,
            expires_at: m.expires_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
            created_at: m.created_at,
        }
    }
}

/// A freshly created key: the only time the full key exists outside its holder.
#[derive(Clone)]
pub struct CreatedApiKey {
    /// The full key, to hand to its holder once.
    pub key: String,
    /// The stored record.
    pub info: ApiKeyInfo,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// The scope a verified key grants.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantedScope {
    /// The whole tenant.
    Tenant(TenantScope),
    /// One agent of the tenant.
    Agent(AgentScope),
}

/// The result of a successful verification.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    /// Public key id.
    pub key_id: String,
    /// What the key may act on.
    pub scope: GrantedScope,
    /// Permission names.
    pub permissions: Vec<String>,
}

impl VerifiedKey {
    /// Whether the key carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// API key repository.
#[derive(Debug)]
pub struct ApiKeys<'a> {
    db: &'a Db,
    hasher: &'a ApiKeyHasher,
}

impl Db {
    /// The API key repository, hashing with `hasher`.
    pub fn api_keys<'a>(&'a self, hasher: &'a ApiKeyHasher) -> ApiKeys<'a> {
        ApiKeys { db: self, hasher }
    }
}

impl ApiKeys<'_> {
    /// Creates a key in the scope's tenant. The returned key is shown once; only its
    /// keyed hash is stored.
    pub async fn create(&self, scope: &TenantScope, k: NewApiKey) -> DbResult<CreatedApiKey> {
        check_len("name", &k.name, 100)?;
        if let Some(a) = &k.agent_id {
            validate_id("agent", a)?;
        }
        if k.permissions.iter().any(|p| p.is_empty() || p.len() > 64) {
            return Err(DbError::invalid("permission names must be 1-64 characters"));
        }
        let kid = random_base62(KID_LEN);
        let body = format!("{PREFIX}{kid}_{}", random_base62(SECRET_LEN));
        let key = format!("{body}{}", checksum(&body));
        let now = chrono::Utc::now();
        let am = ActiveModel {
            id: Set(kid),
            tenant_id: Set(scope.tenant_id().to_owned()),
            agent_id: Set(k.agent_id),
            name: Set(k.name),
            description: Set(k.description),
            key_hash: Set(self.hasher.hash(&key)),
            permissions: Set(serde_json::json!(k.permissions)),
            status: Set("active".into()),
            expires_at: Set(k.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let row = am.insert(&self.db.conn).await?;
        Ok(CreatedApiKey {
            key,
            info: row.into(),
        })
    }

    /// Verifies a presented key and returns the scope it grants. A malformed, forged,
    /// altered, unknown, disabled, revoked or expired key, or one whose tenant is not
    /// active, is [`DbError::Unauthorized`] — without saying which.
    pub async fn verify(&self, presented: &str) -> DbResult<VerifiedKey> {
        let kid = parse(presented).ok_or(DbError::Unauthorized)?;
        let row = Entity::find_by_id(kid.to_owned())
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::Unauthorized)?;
        let presented_hash = self.hasher.hash(presented);
        let same: bool = presented_hash
            .as_bytes()
            .ct_eq(row.key_hash.as_bytes())
            .into();
        let now = chrono::Utc::now();
        let live = row.status == "active"
            && row.revoked_at.is_none()
            && row.expires_at.is_none_or(|e| e > now);
        if !same || !live {
            return Err(DbError::Unauthorized);
        }
        let tenant = tenants::Entity::find_by_id(row.tenant_id.clone())
            .one(&self.db.conn)
            .await?;
        if tenant.is_none_or(|t| t.status != "active") {
            return Err(DbError::Unauthorized);
        }
        let stale = row
            .last_used_at
            .is_none_or(|t| (now - t).to_std().unwrap_or_default() >= self.hasher.touch_interval);
        if stale {
            // Lazy bookkeeping: a failure here must not fail the caller's request.
            let res = Entity::update_many()
                .col_expr(Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
                .filter(Column::Id.eq(row.id.clone()))
                .exec(&self.db.conn)
                .await;
            if let Err(e) = res {
                tracing::warn!(key_id = %row.id, error = %e, "could not record API key use");
            }
        }
        let scope = match &row.agent_id {
            Some(a) => GrantedScope::Agent(AgentScope::new(row.tenant_id.clone(), a.clone())?),
            None => GrantedScope::Tenant(TenantScope::new(row.tenant_id.clone())?),
        };
        let info = ApiKeyInfo::from(row);
        Ok(VerifiedKey {
            key_id: info.id,
            scope,
            permissions: info.permissions,
        })
    }

    /// The tenant's keys (never the key material).
    pub async fn list(&self, scope: &TenantScope) -> DbResult<Vec<ApiKeyInfo>> {
        Ok(Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .order_by_asc(Column::CreatedAt)
            .all(&self.db.conn)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The tenant's key `id`.
    pub async fn get(&self, scope: &TenantScope, id: &str) -> DbResult<ApiKeyInfo> {
        Ok(self.row(scope, id).await?.into())
    }

    async fn row(&self, scope: &TenantScope, id: &str) -> DbResult<Model> {
        Entity::find()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::Id.eq(id))
            .one(&self.db.conn)
            .await?
            .ok_or(DbError::NotFound { entity: "api key" })
    }

    /// Sets `active` or `disabled` (use [`ApiKeys::revoke`] to revoke for good).
    pub async fn set_status(
        &self,
        scope: &TenantScope,
        id: &str,
        status: &str,
    ) -> DbResult<ApiKeyInfo> {
        check_one_of("status", status, &KEY_STATUSES[..2])?;
        let row = self.row(scope, id).await?;
        if row.status == "revoked" {
            return Err(DbError::conflict(
                "api_keys.status",
                "a revoked key cannot be re-enabled",
            ));
        }
        let mut am: ActiveModel = row.into();
        am.status = Set(status.to_owned());
        am.updated_at = Set(chrono::Utc::now());
        Ok(am.update(&self.db.conn).await?.into())
    }

    /// Revokes the key permanently.
    pub async fn revoke(&self, scope: &TenantScope, id: &str) -> DbResult<ApiKeyInfo> {
        let mut am: ActiveModel = self.row(scope, id).await?.into();
        let now = chrono::Utc::now();
        am.status = Set("revoked".into());
        am.revoked_at = Set(Some(now));
        am.updated_at = Set(now);
        Ok(am.update(&self.db.conn).await?.into())
    }

    /// Deletes the key record.
    pub async fn delete(&self, scope: &TenantScope, id: &str) -> DbResult<bool> {
        Ok(Entity::delete_many()
            .filter(Column::TenantId.eq(scope.tenant_id()))
            .filter(Column::Id.eq(id))
            .exec(&self.db.conn)
            .await?
            .rows_affected
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_rejects_any_single_character_change() {
        let body = format!(
            "{PREFIX}{}_{}",
            random_base62(KID_LEN),
            random_base62(SECRET_LEN)
        );
        let key = format!("{body}{}", checksum(&body));
        assert!(parse(&key).is_some());
        for i in PREFIX.len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered.as_bytes()[i] == b'_' || altered == key {
                continue;
            }
            assert!(parse(&altered).is_none(), "altered at {i} accepted");
        }
    }
}
