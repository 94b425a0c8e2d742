//! MaiLauncher's domain logic. No HTTP types live here: `launcher-api` maps this crate's
//! results and errors onto the wire.

pub mod logs;
pub mod paths;
pub mod supervisor;
