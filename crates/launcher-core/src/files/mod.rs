//! Safe, format-preserving editing of MaiBot's config files.
//!
//! The legacy launcher round-tripped `bot_config.toml` & co. through plain dicts (losing every
//! comment), truncated files before serializing (one `null` left an empty config), rewrote
//! `.env` from scratch with broken quoting, and wrote wherever a path pointed. This module
//! replaces all of that:
//!
//! * [`toml_doc`]: JSON ⇄ TOML with in-place, comment-preserving, type-checked edits;
//! * [`env_file`]: lossless `.env` parsing and editing with python-dotenv semantics;
//! * [`atomic`]: temp file + fsync + rename writes with a single `.bak`;
//! * [`safe_path`]: confining paths to an instance directory;
//! * [`ConfigFile`]: the read → edit → verify → write pipeline tying these together.
//!
//! Everything is synchronous; call it from `spawn_blocking` in async code.

pub mod atomic;
pub mod config_file;
pub mod env_file;
pub mod error;
pub mod safe_path;
pub mod toml_doc;

pub use atomic::write_atomic;
pub use config_file::{ConfigFile, DEFAULT_MAX_SIZE};
pub use env_file::EnvFile;
pub use error::FileError;
pub use safe_path::{resolve_inside, resolve_inside_for_create};
pub use toml_doc::{ChangeSummary, apply_full, apply_patch, toml_to_json};
