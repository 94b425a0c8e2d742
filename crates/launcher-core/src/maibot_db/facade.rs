//! Async facade: every call runs the synchronous SQLite work on tokio's
//! blocking pool, so a 5 s busy wait on MaiBot's lock never stalls the runtime.

use std::path::{Path, PathBuf};

use super::conn::{Page, Row};
use super::emoji::{EmojiBatch, EmojiCreate, EmojiFilter, EmojiSearch, EmojiUpdate};
use super::error::{MaibotDbError, Result};
use super::locate::DbInfo;
use super::person::{
    PersonBatch, PersonCreate, PersonFilter, PersonInteraction, PersonSearch, PersonUpdate,
};
use super::{emoji, locate, person};

/// Handle on one MaiBot instance's database; cheap to create per request.
#[derive(Debug, Clone)]
pub struct MaibotDb {
    instance_dir: PathBuf,
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MaibotDbError::Task(e.to_string()))?
}

macro_rules! forward {
    ($(#[$doc:meta])* $name:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty, |$dir:ident| $call:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
            let $dir = self.instance_dir.clone();
            blocking(move || $call).await
        }
    };
}

impl MaibotDb {
    /// Handle for the instance rooted at `instance_dir` (nothing is opened yet).
    pub fn new(instance_dir: impl Into<PathBuf>) -> Self {
        Self {
            instance_dir: instance_dir.into(),
        }
    }

    /// The instance directory this handle works on.
    pub fn instance_dir(&self) -> &Path {
        &self.instance_dir
    }

    forward!(/// See [`locate::locate_db`].
        db_path, () -> PathBuf, |d| locate::locate_db(&d));
    forward!(/// See [`locate::db_info`].
        info, () -> DbInfo, |d| locate::db_info(&d));

    forward!(/// See [`emoji::create`].
        emoji_create, (input: EmojiCreate) -> i64, |d| emoji::create(&d, &input));
    forward!(/// See [`emoji::get`].
        emoji_get, (id: i64) -> Row, |d| emoji::get(&d, id));
    forward!(/// See [`emoji::get_by_hash`].
        emoji_get_by_hash, (hash: String) -> Row, |d| emoji::get_by_hash(&d, &hash));
    forward!(/// See [`emoji::search`].
        emoji_search, (input: EmojiSearch) -> Page, |d| emoji::search(&d, &input));
    forward!(/// See [`emoji::batch`].
        emoji_batch, (input: EmojiBatch) -> Page, |d| emoji::batch(&d, &input));
    forward!(/// See [`emoji::count`].
        emoji_count, (filter: EmojiFilter) -> u64, |d| emoji::count(&d, &filter));
    forward!(/// See [`emoji::update`].
        emoji_update, (id: i64, input: EmojiUpdate) -> bool, |d| emoji::update(&d, id, &input));
    forward!(/// See [`emoji::delete`].
        emoji_delete, (id: i64) -> bool, |d| emoji::delete(&d, id));
    forward!(/// See [`emoji::increment_usage`].
        emoji_increment_usage, (id: i64) -> bool, |d| emoji::increment_usage(&d, id));
    forward!(/// See [`emoji::increment_query`].
        emoji_increment_query, (id: i64) -> bool, |d| emoji::increment_query(&d, id));
    forward!(/// See [`emoji::image_path`].
        emoji_image_path, (id: i64) -> (PathBuf, &'static str), |d| emoji::image_path(&d, id));
    forward!(/// See [`emoji::image`].
        emoji_image, (id: i64, max_bytes: u64) -> (Vec<u8>, &'static str), |d| emoji::image(&d, id, max_bytes));

    forward!(/// See [`person::create`].
        person_create, (input: PersonCreate) -> i64, |d| person::create(&d, &input));
    forward!(/// See [`person::get`].
        person_get, (id: i64) -> Row, |d| person::get(&d, id));
    forward!(/// See [`person::get_by_person_id`].
        person_get_by_person_id, (person_id: String) -> Row, |d| person::get_by_person_id(&d, &person_id));
    forward!(/// See [`person::get_by_platform_user`].
        person_get_by_platform_user, (platform: String, user_id: String) -> Row, |d| person::get_by_platform_user(&d, &platform, &user_id));
    forward!(/// See [`person::search`].
        person_search, (input: PersonSearch) -> Page, |d| person::search(&d, &input));
    forward!(/// See [`person::batch`].
        person_batch, (input: PersonBatch) -> Page, |d| person::batch(&d, &input));
    forward!(/// See [`person::count`].
        person_count, (filter: PersonFilter) -> u64, |d| person::count(&d, &filter));
    forward!(/// See [`person::update`].
        person_update, (person_id: String, input: PersonUpdate) -> bool, |d| person::update(&d, &person_id, &input));
    forward!(/// See [`person::delete`].
        person_delete, (person_id: String) -> bool, |d| person::delete(&d, &person_id));
    forward!(/// See [`person::update_interaction`].
        person_update_interaction, (person_id: String, input: PersonInteraction) -> bool, |d| person::update_interaction(&d, &person_id, &input));
}
