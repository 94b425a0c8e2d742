//! The MaiBot `emoji` table: CRUD, counters, search and image lookup.
//!
//! Synchronous functions; run them off the async runtime (see
//! [`MaibotDb`](super::MaibotDb)). Every function takes the instance directory
//! and opens its own connection.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;

use super::conn::{self, Assignments, Filter, Flag, Kind, Known, Page, Paging, Row, Table};
use super::error::{MaibotDbError, Result};

const TABLE: &str = "emoji";

/// Columns this module writes; anything else in the table is read-only here.
const KNOWN: &[Known] = &[
    Known {
        name: "full_path",
        kind: Kind::Text,
    },
    Known {
        name: "format",
        kind: Kind::Text,
    },
    Known {
        name: "emoji_hash",
        kind: Kind::Text,
    },
    Known {
        name: "description",
        kind: Kind::Text,
    },
    Known {
        name: "query_count",
        kind: Kind::Int,
    },
    Known {
        name: "is_registered",
        kind: Kind::Int,
    },
    Known {
        name: "is_banned",
        kind: Kind::Int,
    },
    Known {
        name: "emotion",
        kind: Kind::Text,
    },
    Known {
        name: "record_time",
        kind: Kind::Real,
    },
    Known {
        name: "register_time",
        kind: Kind::Real,
    },
    Known {
        name: "usage_count",
        kind: Kind::Int,
    },
    Known {
        name: "last_used_time",
        kind: Kind::Real,
    },
];

/// Default page size of [`search`], as in the legacy API.
pub const SEARCH_DEFAULT_LIMIT: u32 = 100;
/// Default page size of [`batch`] (the legacy API used 50; the bound is the same as search).
pub const BATCH_DEFAULT_SIZE: u32 = 100;

/// Body of `POST /resource/{id}/emoji`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmojiCreate {
    /// Image path, absolute or relative to the instance directory; unique.
    pub full_path: String,
    /// Image format, e.g. `png`.
    pub format: String,
    /// Content hash MaiBot uses for de-duplication.
    pub emoji_hash: String,
    /// Description; defaults to `""`.
    #[serde(default)]
    pub description: Option<String>,
    /// Emotion tags; defaults to `""`.
    #[serde(default)]
    pub emotion: Option<String>,
    /// Defaults to false.
    #[serde(default)]
    pub is_registered: Option<Flag>,
    /// Defaults to false.
    #[serde(default)]
    pub is_banned: Option<Flag>,
    /// Epoch seconds; defaults to now (the legacy default never applied).
    #[serde(default)]
    pub record_time: Option<f64>,
    /// Epoch seconds; defaults to now when `is_registered` is true, else NULL.
    #[serde(default)]
    pub register_time: Option<f64>,
}

/// Body of `PUT /resource/{id}/emoji/{emoji_id}`: absent or null means unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Field names are the column names.
pub struct EmojiUpdate {
    pub full_path: Option<String>,
    pub format: Option<String>,
    pub emoji_hash: Option<String>,
    pub description: Option<String>,
    pub emotion: Option<String>,
    pub is_registered: Option<Flag>,
    pub is_banned: Option<Flag>,
    pub record_time: Option<f64>,
    pub register_time: Option<f64>,
    pub last_used_time: Option<f64>,
    pub query_count: Option<i64>,
    pub usage_count: Option<i64>,
}

/// Emoji filters (body of `/emoji/count`). Empty strings mean "no filter".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmojiFilter {
    /// Substring of `description`; wildcards are matched literally.
    #[serde(default)]
    pub description_like: Option<String>,
    /// Exact `emotion`.
    #[serde(default)]
    pub emotion: Option<String>,
    /// Exact `format`.
    #[serde(default)]
    pub format: Option<String>,
    /// Registered flag.
    #[serde(default)]
    pub is_registered: Option<Flag>,
    /// Banned flag.
    #[serde(default)]
    pub is_banned: Option<Flag>,
}

/// Body of `/emoji/search`: filters plus `limit`/`offset`; ordered by `record_time DESC`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Same fields as EmojiFilter.
pub struct EmojiSearch {
    #[serde(default)]
    pub description_like: Option<String>,
    #[serde(default)]
    pub emotion: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub is_registered: Option<Flag>,
    #[serde(default)]
    pub is_banned: Option<Flag>,
    /// Page size: absent/0 → 100, max 1000, negative refused.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Rows to skip; negative refused.
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Body of `/emoji/batch`: filters plus `batch_size`/`offset`; ordered by `id DESC`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Same fields as EmojiFilter.
pub struct EmojiBatch {
    #[serde(default)]
    pub description_like: Option<String>,
    #[serde(default)]
    pub emotion: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub is_registered: Option<Flag>,
    #[serde(default)]
    pub is_banned: Option<Flag>,
    /// Page size: absent/0 → 50, max 1000, negative refused.
    #[serde(default)]
    pub batch_size: Option<i64>,
    /// Rows to skip; negative refused.
    #[serde(default)]
    pub offset: Option<i64>,
}

impl EmojiSearch {
    fn filter(&self) -> EmojiFilter {
        EmojiFilter {
            description_like: self.description_like.clone(),
            emotion: self.emotion.clone(),
            format: self.format.clone(),
            is_registered: self.is_registered,
            is_banned: self.is_banned,
        }
    }
}

impl EmojiBatch {
    fn filter(&self) -> EmojiFilter {
        EmojiFilter {
            description_like: self.description_like.clone(),
            emotion: self.emotion.clone(),
            format: self.format.clone(),
            is_registered: self.is_registered,
            is_banned: self.is_banned,
        }
    }
}

fn load(conn: &Connection) -> Result<Table> {
    Table::load(conn, TABLE, KNOWN)
}

fn build_filter(table: &Table, f: &EmojiFilter) -> Result<Filter> {
    let mut out = Filter::default();
    let text = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(d) = text(&f.description_like) {
        table.require("description", "description_like")?;
        out.contains("description", &d);
    }
    if let Some(e) = text(&f.emotion) {
        table.require("emotion", "emotion")?;
        out.eq("emotion", e);
    }
    if let Some(fmt) = text(&f.format) {
        table.require("format", "format")?;
        out.eq("format", fmt);
    }
    if let Some(flag) = f.is_registered {
        table.require("is_registered", "is_registered")?;
        out.eq("is_registered", flag);
    }
    if let Some(flag) = f.is_banned {
        table.require("is_banned", "is_banned")?;
        out.eq("is_banned", flag);
    }
    Ok(out)
}

fn not_found(key: impl ToString) -> MaibotDbError {
    MaibotDbError::NotFound {
        entity: "emoji",
        key: key.to_string(),
    }
}

fn path_taken(conn: &Connection, full_path: &str, except_id: Option<i64>) -> Result<bool> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT id FROM emoji WHERE full_path = ?1 AND id IS NOT ?2 LIMIT 1",
            rusqlite::params![full_path, except_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

/// Inserts an emoji row and returns its new id.
///
/// Counters start at 0; `record_time` defaults to now. A duplicate
/// `full_path` is a [`MaibotDbError::Conflict`].
pub fn create(instance_dir: &Path, input: &EmojiCreate) -> Result<i64> {
    conn::non_empty("full_path", &input.full_path)?;
    conn::non_empty("format", &input.format)?;
    conn::non_empty("emoji_hash", &input.emoji_hash)?;
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        if path_taken(c, &input.full_path, None)? {
            return Err(MaibotDbError::Conflict {
                field: "full_path".to_owned(),
                value: input.full_path.clone(),
            });
        }
        let now = conn::now_epoch();
        let registered = input.is_registered.unwrap_or(Flag(false));
        let mut a = Assignments::new(&table);
        a.set("full_path", "full_path", input.full_path.clone().into())?;
        a.set("format", "format", input.format.clone().into())?;
        a.set("emoji_hash", "emoji_hash", input.emoji_hash.clone().into())?;
        a.set(
            "description",
            "description",
            input.description.clone().unwrap_or_default().into(),
        )?;
        a.set(
            "emotion",
            "emotion",
            input.emotion.clone().unwrap_or_default().into(),
        )?;
        a.set("is_registered", "is_registered", registered.into())?;
        a.set(
            "is_banned",
            "is_banned",
            input.is_banned.unwrap_or(Flag(false)).into(),
        )?;
        a.set("query_count", "query_count", SqlValue::Integer(0))?;
        a.set("usage_count", "usage_count", SqlValue::Integer(0))?;
        a.set(
            "record_time",
            "record_time",
            input.record_time.unwrap_or(now).into(),
        )?;
        let register_time = input.register_time.or(registered.0.then_some(now));
        a.set_opt("register_time", "register_time", register_time)?;
        a.insert(c)
    })
}

/// Returns the emoji with `id`, every existing column included.
pub fn get(instance_dir: &Path, id: i64) -> Result<Row> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let mut f = Filter::default();
        f.eq("id", id);
        conn::select_one(c, &table, &f)?.ok_or_else(|| not_found(id))
    })
}

/// Returns the first (lowest id) emoji with this hash.
pub fn get_by_hash(instance_dir: &Path, emoji_hash: &str) -> Result<Row> {
    conn::non_empty("emoji_hash", emoji_hash)?;
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        table.require("emoji_hash", "emoji_hash")?;
        let mut f = Filter::default();
        f.eq("emoji_hash", emoji_hash.to_owned());
        conn::select_one(c, &table, &f)?.ok_or_else(|| not_found(emoji_hash))
    })
}

/// Filtered page ordered by `record_time DESC`, with `total_count`.
pub fn search(instance_dir: &Path, input: &EmojiSearch) -> Result<Page> {
    let paging = Paging::new(input.limit, input.offset, "limit", SEARCH_DEFAULT_LIMIT)?;
    let filter = input.filter();
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let f = build_filter(&table, &filter)?;
        let order = if table.has("record_time") {
            "\"record_time\" DESC, \"id\" DESC"
        } else {
            "\"id\" DESC"
        };
        let items = conn::select_page(c, &table, &f, order, paging)?;
        let total = conn::count(c, &table, &f)?;
        Ok(Page {
            items,
            total_count: Some(total),
            limit: paging.limit,
            offset: paging.offset,
        })
    })
}

/// Filtered page ordered by `id DESC`, without a COUNT (`total_count: None`).
pub fn batch(instance_dir: &Path, input: &EmojiBatch) -> Result<Page> {
    let paging = Paging::new(
        input.batch_size,
        input.offset,
        "batch_size",
        BATCH_DEFAULT_SIZE,
    )?;
    let filter = input.filter();
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let f = build_filter(&table, &filter)?;
        let items = conn::select_page(c, &table, &f, "\"id\" DESC", paging)?;
        Ok(Page {
            items,
            total_count: None,
            limit: paging.limit,
            offset: paging.offset,
        })
    })
}

/// Number of emojis matching `filter`.
pub fn count(instance_dir: &Path, filter: &EmojiFilter) -> Result<u64> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let f = build_filter(&table, filter)?;
        conn::count(c, &table, &f)
    })
}

/// Partial update; returns `false` when no emoji has this id.
///
/// An update with no fields is refused rather than reported as success.
pub fn update(instance_dir: &Path, id: i64, input: &EmojiUpdate) -> Result<bool> {
    for (field, value) in [
        ("full_path", &input.full_path),
        ("format", &input.format),
        ("emoji_hash", &input.emoji_hash),
    ] {
        if let Some(v) = value {
            conn::non_empty(field, v)?;
        }
    }
    for (field, value) in [
        ("query_count", input.query_count),
        ("usage_count", input.usage_count),
    ] {
        if value.is_some_and(|n| n < 0) {
            return Err(MaibotDbError::invalid(field, "must not be negative"));
        }
    }
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let mut a = Assignments::new(&table);
        a.set_opt("full_path", "full_path", input.full_path.clone())?;
        a.set_opt("format", "format", input.format.clone())?;
        a.set_opt("emoji_hash", "emoji_hash", input.emoji_hash.clone())?;
        a.set_opt("description", "description", input.description.clone())?;
        a.set_opt("emotion", "emotion", input.emotion.clone())?;
        a.set_opt("is_registered", "is_registered", input.is_registered)?;
        a.set_opt("is_banned", "is_banned", input.is_banned)?;
        a.set_opt("record_time", "record_time", input.record_time)?;
        a.set_opt("register_time", "register_time", input.register_time)?;
        a.set_opt("last_used_time", "last_used_time", input.last_used_time)?;
        a.set_opt("query_count", "query_count", input.query_count)?;
        a.set_opt("usage_count", "usage_count", input.usage_count)?;
        if a.is_empty() {
            return Err(MaibotDbError::invalid("body", "no fields to update"));
        }
        if let Some(p) = &input.full_path
            && path_taken(c, p, Some(id))?
        {
            return Err(MaibotDbError::Conflict {
                field: "full_path".to_owned(),
                value: p.clone(),
            });
        }
        Ok(a.update(c, "id", SqlValue::Integer(id))? > 0)
    })
}

/// Deletes the row (never the image file); returns whether it existed.
pub fn delete(instance_dir: &Path, id: i64) -> Result<bool> {
    conn::with_db(instance_dir, |c| {
        load(c)?;
        Ok(c.execute("DELETE FROM emoji WHERE id = ?1", [id])? > 0)
    })
}

/// `usage_count += 1`, `last_used_time = now`; returns whether the row exists.
pub fn increment_usage(instance_dir: &Path, id: i64) -> Result<bool> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        table.require("usage_count", "usage_count")?;
        let changed = if table.has("last_used_time") {
            c.execute(
                "UPDATE emoji SET usage_count = COALESCE(usage_count, 0) + 1, \
                 last_used_time = ?2 WHERE id = ?1",
                rusqlite::params![id, conn::now_epoch()],
            )?
        } else {
            c.execute(
                "UPDATE emoji SET usage_count = COALESCE(usage_count, 0) + 1 WHERE id = ?1",
                [id],
            )?
        };
        Ok(changed > 0)
    })
}

/// `query_count += 1`; returns whether the row exists.
pub fn increment_query(instance_dir: &Path, id: i64) -> Result<bool> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        table.require("query_count", "query_count")?;
        Ok(c.execute(
            "UPDATE emoji SET query_count = COALESCE(query_count, 0) + 1 WHERE id = ?1",
            [id],
        )? > 0)
    })
}

/// Resolves the image file of emoji `emoji_id` and its MIME type.
///
/// `full_path` may be absolute or relative to the instance directory; the
/// file (symlinks followed) must lie inside the instance directory, otherwise
/// [`MaibotDbError::PathEscape`]. The MIME type comes from the file's magic
/// bytes, not from the extension or `format` column: the row is editable
/// through the API, so trusting its labels would let it serve e.g. `.env`.
/// Callers should open the returned (canonical) path promptly.
pub fn image_path(instance_dir: &Path, emoji_id: i64) -> Result<(PathBuf, &'static str)> {
    let (resolved, mut file, _) = open_image(instance_dir, emoji_id)?;
    let mut head = [0u8; 16];
    let mut filled = 0;
    // A short read is normal for tiny files, so read until EOF or full.
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(MaibotDbError::io(&resolved, e)),
        }
    }
    match sniff_image(&head[..filled]) {
        Some(mime) => Ok((resolved, mime)),
        None => Err(MaibotDbError::NotAnImage { path: resolved }),
    }
}

/// The image of emoji `emoji_id` and its MIME type, under the rules of [`image_path`],
/// read into memory only when it is at most `max_bytes` long
/// ([`MaibotDbError::TooLarge`] otherwise, checked before reading and again while
/// reading, since the file may grow in between).
pub fn image(
    instance_dir: &Path,
    emoji_id: i64,
    max_bytes: u64,
) -> Result<(Vec<u8>, &'static str)> {
    let (resolved, file, size) = open_image(instance_dir, emoji_id)?;
    let too_large = |size: u64| MaibotDbError::TooLarge {
        path: resolved.clone(),
        size,
        limit: max_bytes,
    };
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| MaibotDbError::io(&resolved, e))?;
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > max_bytes {
        return Err(too_large(len));
    }
    match sniff_image(&bytes[..bytes.len().min(16)]) {
        Some(mime) => Ok((bytes, mime)),
        None => Err(MaibotDbError::NotAnImage { path: resolved }),
    }
}

/// Opens emoji `emoji_id`'s file (confined to the instance directory, a regular file);
/// returns its canonical path, the open file and its size.
fn open_image(instance_dir: &Path, emoji_id: i64) -> Result<(PathBuf, std::fs::File, u64)> {
    let root = super::locate::canonical_root(instance_dir)?;
    let row = get(instance_dir, emoji_id)?;
    let stored = row
        .get("full_path")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| MaibotDbError::NotFound {
            entity: "emoji image",
            key: emoji_id.to_string(),
        })?;
    let resolved = super::locate::resolve_inside(&root, Path::new(stored))?;
    let image_missing = || MaibotDbError::NotFound {
        entity: "emoji image",
        key: stored.to_owned(),
    };
    let file = match std::fs::File::open(&resolved) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(image_missing()),
        Err(e) => return Err(MaibotDbError::io(&resolved, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| MaibotDbError::io(&resolved, e))?;
    if !meta.is_file() {
        return Err(image_missing());
    }
    Ok((resolved, file, meta.len()))
}

fn sniff_image(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if head.starts_with(b"BM") && head.len() >= 14 {
        Some("image/bmp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::sniff_image;

    #[test]
    fn sniffing() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF87a.."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff_image(b"BM\0\0\0\0\0\0\0\0\0\0\0\0"),
            Some("image/bmp")
        );
        assert_eq!(sniff_image(b"API_KEY=secret"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
