//! MaiLauncher's domain logic. No HTTP types live here: `launcher-api` maps this crate's
//! results and errors onto the wire.

pub mod catalog;
pub mod deploy;
mod error;
pub mod events;
pub mod files;
pub mod instance_files;
pub mod jobs;
pub mod logs;
pub mod maibot_db;
pub mod metrics;
pub mod path_policy;
pub mod paths;
pub mod profile;
pub mod supervisor;
pub mod trash;

pub use error::CoreError;
