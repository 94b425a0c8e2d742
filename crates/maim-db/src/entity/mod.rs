//! Entity definitions (row types and column enums). Entities are data: without the
//! connection, which never leaves this crate, nothing can be executed with them except
//! through the scoped repositories.

mod macros;

pub mod business;
pub mod launcher;
pub mod runtime;
pub mod system;
