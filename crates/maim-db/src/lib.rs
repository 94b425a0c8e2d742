//! # maim-db — the multi-tenant data plane of the MaiM stack
//!
//! One library, two backends: embedded SQLite (default, zero setup) and PostgreSQL (when
//! several services or hosts share one store). Downstream services get:
//!
//! - [`connect`]: opens `sqlite:` or `postgres(ql)://` URLs, nothing else;
//! - [`Db::migrate`] and friends, backed by the `maim-migrations` crate (one schema
//!   source for both backends);
//! - scope values ([`TenantScope`], [`AgentScope`], and the audited [`SystemScope`]);
//! - scoped repositories: [`Db::table`] for every tenant-owned table, plus
//!   [`Db::tenants`], [`Db::users`], [`Db::agents`], [`Db::api_keys`],
//!   [`Db::heartbeats`], [`Db::plugins`] and [`Db::configs`].
//!
//! The raw connection never leaves the crate, so there is no way for a caller to run a
//! query that is not scoped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), maim_db::DbError> {
//! use maim_db::{connect, DbOptions, SystemScope};
//! let db = connect("sqlite://data/maim.db", &DbOptions::default()).await?;
//! db.migrate(&SystemScope::new("startup")).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod admin;
pub mod config;
mod connect;
mod decode;
pub mod entity;
mod error;
mod lite;
mod migrate;
mod pg;
pub mod registry;
pub mod repo;
mod scope;
pub mod scoped;

pub use connect::{
    Backend, DatabaseUrl, Db, DbOptions, backend_of, connect, sqlite_path, sqlite_url,
};
pub use error::{DbError, DbResult};
pub use migrate::MigrationState;
pub use scope::{AgentScope, MAX_ID_LEN, SystemScope, TenantScope};
pub use scoped::{Cmp, Filter, Query, ScopeKey, Scoped, ScopedTable};

/// What callers need to build rows: the `Set`/`NotSet` wrappers and value types.
pub mod prelude {
    pub use sea_orm::ActiveValue::{NotSet, Set};
    pub use sea_orm::prelude::{DateTimeUtc, Json};
    pub use sea_orm::{ActiveModelTrait, IntoActiveModel, Value};
}
