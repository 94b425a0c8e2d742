//! Access to a MaiBot instance's own SQLite database (`emoji`, `person_info`).
//!
//! This is the logic behind the `/api/v1/resource/{id}/...` routes; the HTTP
//! layer wraps the results in its envelopes and maps [`MaibotDbError::code`].
//!
//! Design points, each fixing a legacy-backend flaw:
//! * the database is located via `config/bot_config.toml` when it says so, and
//!   must stay inside the instance directory ([`locate`]);
//! * it is opened read-write but never created, per operation, with a 5 s busy
//!   timeout, and the blocking work runs off the async runtime ([`MaibotDb`]);
//! * columns are introspected, so older and newer MaiBot schemas both work:
//!   reads return every existing column, writes touch only known, existing ones;
//! * filters are bound parameters only, LIKE wildcards are escaped, and page
//!   sizes are bounded;
//! * create returns the new id, and a missing `record_time` defaults to now.

mod conn;
pub mod emoji;
pub mod error;
mod facade;
pub mod locate;
pub mod person;

pub use conn::{Flag, LooseText, MAX_PAGE, Page, Row, parse_input};
pub use error::{MaibotDbError, Result};
pub use facade::MaibotDb;
pub use locate::{DbInfo, db_info, locate_db};

/// Resolves emoji `emoji_id`'s image file and MIME type; see [`emoji::image_path`].
pub fn emoji_image_path(
    instance_dir: &std::path::Path,
    emoji_id: i64,
) -> Result<(std::path::PathBuf, &'static str)> {
    emoji::image_path(instance_dir, emoji_id)
}
