//! The one source of the maim-db schema, for SQLite and PostgreSQL alike.
//!
//! Every migration is written with sea-query's schema builder, so the same statements
//! produce both dialects. Migrations are append-only: a released migration is never edited,
//! a change is a new migration. `maim-db` runs them through [`Migrator`].

pub use sea_orm_migration::prelude::*;

mod helpers;
mod m20261121_000001_system;
mod m20261121_000002_runtime;
mod m20261121_000003_business;
mod m20261121_000004_launcher;
mod m20261122_000005_identifier_collation;
mod m20261201_000006_component_ports;

/// The ordered list of every migration of the schema.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_system::Migration),
            Box::new(m20261121_000002_runtime::Migration),
            Box::new(m20261121_000003_business::Migration),
            Box::new(m20261121_000004_launcher::Migration),
            Box::new(m20261122_000005_identifier_collation::Migration),
            Box::new(m20261201_000006_component_ports::Migration),
        ]
    }
}
