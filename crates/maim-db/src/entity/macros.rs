//! The shape shared by every agent-owned entity, written once.

/// Defines an agent-owned entity module: `id`, `tenant_id`, `agent_id`, the given
/// fields, `created_at`, `updated_at`, no navigable relations (joins would bypass the
/// scope), and its [`crate::scoped::Scoped`] impl with the natural key.
macro_rules! agent_entity {
    (
        $(#[$doc:meta])*
        $module:ident = $table:literal, key [$($nk:literal),*] {
            $( $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        pub mod $module {
            #![allow(missing_docs)]
            use sea_orm::entity::prelude::*;
            use serde::{Deserialize, Serialize};

            /// One row of the table.
            #[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                #[sea_orm(primary_key)]
                pub id: i64,
                pub tenant_id: String,
                pub agent_id: String,
                $( pub $field: $ty, )*
                pub created_at: DateTimeUtc,
                pub updated_at: DateTimeUtc,
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}

            impl crate::scoped::Scoped for Entity {
                type Scope = crate::AgentScope;
                const NATURAL_KEY: &'static [&'static str] = &[$($nk),*];
            }
        }
    };
}

pub(crate) use agent_entity;
