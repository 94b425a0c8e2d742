//! The MaiBot `person_info` table: CRUD, search and interaction updates.
//!
//! The column set changed a lot between MaiBot versions (0.7/0.8 have
//! `impression`, `points`, `attitude`…; 0.10+ dropped those for `memory_points`,
//! `group_nick_name`, `is_known`), so reads return whatever exists and writes
//! refuse non-empty values for columns this database does not have.

use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::Deserialize;
use serde_json::Value;

use super::conn::{
    self, Assignments, Filter, Flag, Kind, Known, LooseText, Page, Paging, Row, Table,
};
use super::error::{MaibotDbError, Result};

const TABLE: &str = "person_info";

/// Columns this module writes; anything else in the table is read-only here.
const KNOWN: &[Known] = &[
    Known {
        name: "person_id",
        kind: Kind::Text,
    },
    Known {
        name: "person_name",
        kind: Kind::Text,
    },
    Known {
        name: "name_reason",
        kind: Kind::Text,
    },
    Known {
        name: "platform",
        kind: Kind::Text,
    },
    Known {
        name: "user_id",
        kind: Kind::Text,
    },
    Known {
        name: "nickname",
        kind: Kind::Text,
    },
    Known {
        name: "impression",
        kind: Kind::Text,
    },
    Known {
        name: "short_impression",
        kind: Kind::Text,
    },
    Known {
        name: "points",
        kind: Kind::JsonList,
    },
    Known {
        name: "forgotten_points",
        kind: Kind::JsonList,
    },
    Known {
        name: "info_list",
        kind: Kind::JsonList,
    },
    Known {
        name: "know_times",
        kind: Kind::Real,
    },
    Known {
        name: "know_since",
        kind: Kind::Real,
    },
    Known {
        name: "last_know",
        kind: Kind::Real,
    },
    Known {
        name: "attitude",
        kind: Kind::Int,
    },
    Known {
        name: "is_known",
        kind: Kind::Int,
    },
    Known {
        name: "group_nick_name",
        kind: Kind::JsonList,
    },
    Known {
        name: "memory_points",
        kind: Kind::JsonList,
    },
];

/// Default page size of [`search`], as in the legacy API.
pub const SEARCH_DEFAULT_LIMIT: u32 = 100;
/// Default page size of [`batch`] (the legacy API used 50; the bound is the same as search).
pub const BATCH_DEFAULT_SIZE: u32 = 100;

/// Body of `POST /resource/{id}/person`. Absent optional fields are stored as
/// NULL (MaiBot's own default); JSON-list columns (`points`, `forgotten_points`,
/// `info_list`, `group_nick_name`, `memory_points`) take `""` as `[]` and
/// otherwise must be a JSON array.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Field names are the column names.
pub struct PersonCreate {
    /// MaiBot's person key (a hash of platform and user id); unique.
    pub person_id: String,
    /// Platform, e.g. `qq`.
    pub platform: String,
    /// Platform user id; numbers are accepted and stored as text.
    pub user_id: LooseText,
    #[serde(default)]
    pub person_name: Option<String>,
    #[serde(default)]
    pub name_reason: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub impression: Option<String>,
    #[serde(default)]
    pub short_impression: Option<String>,
    #[serde(default)]
    pub points: Option<String>,
    #[serde(default)]
    pub forgotten_points: Option<String>,
    #[serde(default)]
    pub info_list: Option<String>,
    #[serde(default)]
    pub know_times: Option<f64>,
    #[serde(default)]
    pub know_since: Option<f64>,
    #[serde(default)]
    pub last_know: Option<f64>,
    #[serde(default)]
    pub attitude: Option<i64>,
    #[serde(default)]
    pub is_known: Option<Flag>,
    #[serde(default)]
    pub group_nick_name: Option<String>,
    #[serde(default)]
    pub memory_points: Option<String>,
}

/// Body of `PUT /resource/{id}/person/{person_id}`: absent or null means
/// unchanged; `person_id` itself cannot be changed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Field names are the column names.
pub struct PersonUpdate {
    pub person_name: Option<String>,
    pub name_reason: Option<String>,
    pub platform: Option<String>,
    pub user_id: Option<LooseText>,
    pub nickname: Option<String>,
    pub impression: Option<String>,
    pub short_impression: Option<String>,
    pub points: Option<String>,
    pub forgotten_points: Option<String>,
    pub info_list: Option<String>,
    pub know_times: Option<f64>,
    pub know_since: Option<f64>,
    pub last_know: Option<f64>,
    pub attitude: Option<i64>,
    pub is_known: Option<Flag>,
    pub group_nick_name: Option<String>,
    pub memory_points: Option<String>,
}

/// Person filters (body of `/person/count`). Empty strings mean "no filter".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonFilter {
    /// Exact platform.
    #[serde(default)]
    pub platform: Option<String>,
    /// Substring of `person_name`; wildcards are matched literally.
    #[serde(default)]
    pub person_name_like: Option<String>,
    /// Substring of `nickname`.
    #[serde(default)]
    pub nickname_like: Option<String>,
    /// Substring of `impression` (only on versions that have it).
    #[serde(default)]
    pub impression_like: Option<String>,
    /// true: `person_name` is set and non-empty; false: NULL or empty.
    #[serde(default)]
    pub has_person_name: Option<bool>,
}

/// Body of `/person/search`: filters plus `limit`/`offset`; ordered by `last_know DESC`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Same fields as PersonFilter.
pub struct PersonSearch {
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub person_name_like: Option<String>,
    #[serde(default)]
    pub nickname_like: Option<String>,
    #[serde(default)]
    pub impression_like: Option<String>,
    #[serde(default)]
    pub has_person_name: Option<bool>,
    /// Page size: absent/0 → 100, max 1000, negative refused.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Rows to skip; negative refused.
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Body of `/person/batch`: filters plus `batch_size`/`offset`; ordered by `id DESC`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Same fields as PersonFilter.
pub struct PersonBatch {
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub person_name_like: Option<String>,
    #[serde(default)]
    pub nickname_like: Option<String>,
    #[serde(default)]
    pub impression_like: Option<String>,
    #[serde(default)]
    pub has_person_name: Option<bool>,
    /// Page size: absent/0 → 50, max 1000, negative refused.
    #[serde(default)]
    pub batch_size: Option<i64>,
    /// Rows to skip; negative refused.
    #[serde(default)]
    pub offset: Option<i64>,
}

/// Body of `/person/{person_id}/interaction`. Absent, null or empty strings
/// mean "no change"; `last_know` is always set to now.
///
/// * `impression_update`, `short_impression_update` replace the stored text
///   (what the legacy backend did).
/// * `points_update`: a JSON array replaces `points`; any other text is
///   appended to the stored JSON array as one MaiBot memory point
///   `[text, 1.0, "YYYY-MM-DD HH:MM:SS"]`. Numeric `points` columns take a number.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInteraction {
    /// New impression text.
    #[serde(default)]
    pub impression_update: Option<String>,
    /// New short impression text.
    #[serde(default)]
    pub short_impression_update: Option<String>,
    /// New points (see type docs).
    #[serde(default)]
    pub points_update: Option<String>,
}

impl PersonSearch {
    fn filter(&self) -> PersonFilter {
        PersonFilter {
            platform: self.platform.clone(),
            person_name_like: self.person_name_like.clone(),
            nickname_like: self.nickname_like.clone(),
            impression_like: self.impression_like.clone(),
            has_person_name: self.has_person_name,
        }
    }
}

impl PersonBatch {
    fn filter(&self) -> PersonFilter {
        PersonFilter {
            platform: self.platform.clone(),
            person_name_like: self.person_name_like.clone(),
            nickname_like: self.nickname_like.clone(),
            impression_like: self.impression_like.clone(),
            has_person_name: self.has_person_name,
        }
    }
}

fn load(conn: &Connection) -> Result<Table> {
    Table::load(conn, TABLE, KNOWN)
}

fn build_filter(table: &Table, f: &PersonFilter) -> Result<Filter> {
    let mut out = Filter::default();
    let text = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(p) = text(&f.platform) {
        table.require("platform", "platform")?;
        out.eq("platform", p);
    }
    for (field, column, value) in [
        ("person_name_like", "person_name", &f.person_name_like),
        ("nickname_like", "nickname", &f.nickname_like),
        ("impression_like", "impression", &f.impression_like),
    ] {
        if let Some(v) = text(value) {
            table.require(column, field)?;
            out.contains(column, &v);
        }
    }
    if let Some(has) = f.has_person_name {
        table.require("person_name", "has_person_name")?;
        out.raw(if has {
            "(person_name IS NOT NULL AND person_name != '')"
        } else {
            "(person_name IS NULL OR person_name = '')"
        });
    }
    Ok(out)
}

fn not_found(key: impl ToString) -> MaibotDbError {
    MaibotDbError::NotFound {
        entity: "person",
        key: key.to_string(),
    }
}

/// Inserts a person and returns the new record id (`id` column).
///
/// An existing `person_id` is a [`MaibotDbError::Conflict`].
pub fn create(instance_dir: &Path, input: &PersonCreate) -> Result<i64> {
    conn::non_empty("person_id", &input.person_id)?;
    conn::non_empty("platform", &input.platform)?;
    conn::non_empty("user_id", &input.user_id.0)?;
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let exists: Option<i64> = c
            .query_row(
                "SELECT id FROM person_info WHERE person_id = ?1 LIMIT 1",
                [&input.person_id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(MaibotDbError::Conflict {
                field: "person_id".to_owned(),
                value: input.person_id.clone(),
            });
        }
        let mut a = Assignments::new(&table);
        a.set("person_id", "person_id", input.person_id.clone().into())?;
        a.set("platform", "platform", input.platform.clone().into())?;
        a.set("user_id", "user_id", input.user_id.0.clone().into())?;
        apply_common(
            &mut a,
            Common {
                person_name: &input.person_name,
                name_reason: &input.name_reason,
                nickname: &input.nickname,
                impression: &input.impression,
                short_impression: &input.short_impression,
                points: &input.points,
                forgotten_points: &input.forgotten_points,
                info_list: &input.info_list,
                know_times: input.know_times,
                know_since: input.know_since,
                last_know: input.last_know,
                attitude: input.attitude,
                is_known: input.is_known,
                group_nick_name: &input.group_nick_name,
                memory_points: &input.memory_points,
            },
        )?;
        a.insert(c)
    })
}

/// Optional fields shared by create and update.
struct Common<'a> {
    person_name: &'a Option<String>,
    name_reason: &'a Option<String>,
    nickname: &'a Option<String>,
    impression: &'a Option<String>,
    short_impression: &'a Option<String>,
    points: &'a Option<String>,
    forgotten_points: &'a Option<String>,
    info_list: &'a Option<String>,
    know_times: Option<f64>,
    know_since: Option<f64>,
    last_know: Option<f64>,
    attitude: Option<i64>,
    is_known: Option<Flag>,
    group_nick_name: &'a Option<String>,
    memory_points: &'a Option<String>,
}

fn apply_common(a: &mut Assignments<'_>, f: Common<'_>) -> Result<()> {
    for (column, value) in [
        ("person_name", f.person_name),
        ("name_reason", f.name_reason),
        ("nickname", f.nickname),
        ("impression", f.impression),
        ("short_impression", f.short_impression),
        ("points", f.points),
        ("forgotten_points", f.forgotten_points),
        ("info_list", f.info_list),
        ("group_nick_name", f.group_nick_name),
        ("memory_points", f.memory_points),
    ] {
        a.set_opt(column, column, value.clone())?;
    }
    for (column, value) in [
        ("know_times", f.know_times),
        ("know_since", f.know_since),
        ("last_know", f.last_know),
    ] {
        a.set_opt(column, column, value)?;
    }
    a.set_opt("attitude", "attitude", f.attitude)?;
    a.set_opt("is_known", "is_known", f.is_known)?;
    Ok(())
}

fn get_where(
    instance_dir: &Path,
    column: &'static str,
    value: SqlValue,
    key: String,
) -> Result<Row> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let mut f = Filter::default();
        f.eq(column, value);
        conn::select_one(c, &table, &f)?.ok_or_else(|| not_found(key))
    })
}

/// Returns the person with record id `id`.
pub fn get(instance_dir: &Path, id: i64) -> Result<Row> {
    get_where(instance_dir, "id", SqlValue::Integer(id), id.to_string())
}

/// Returns the person with this `person_id`.
pub fn get_by_person_id(instance_dir: &Path, person_id: &str) -> Result<Row> {
    get_where(
        instance_dir,
        "person_id",
        SqlValue::Text(person_id.to_owned()),
        person_id.to_owned(),
    )
}

/// Returns the first person (lowest id) with this platform and user id.
pub fn get_by_platform_user(instance_dir: &Path, platform: &str, user_id: &str) -> Result<Row> {
    conn::non_empty("platform", platform)?;
    conn::non_empty("user_id", user_id)?;
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let mut f = Filter::default();
        f.eq("platform", platform.to_owned());
        f.eq("user_id", user_id.to_owned());
        conn::select_one(c, &table, &f)?.ok_or_else(|| not_found(format!("{platform}/{user_id}")))
    })
}

/// Filtered page ordered by `last_know DESC`, with `total_count`.
pub fn search(instance_dir: &Path, input: &PersonSearch) -> Result<Page> {
    let paging = Paging::new(input.limit, input.offset, "limit", SEARCH_DEFAULT_LIMIT)?;
    let filter = input.filter();
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let f = build_filter(&table, &filter)?;
        let order = if table.has("last_know") {
            "\"last_know\" DESC, \"id\" DESC"
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
pub fn batch(instance_dir: &Path, input: &PersonBatch) -> Result<Page> {
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

/// Number of persons matching `filter`.
pub fn count(instance_dir: &Path, filter: &PersonFilter) -> Result<u64> {
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let f = build_filter(&table, filter)?;
        conn::count(c, &table, &f)
    })
}

/// Partial update by `person_id`; returns `false` when it does not exist.
pub fn update(instance_dir: &Path, person_id: &str, input: &PersonUpdate) -> Result<bool> {
    if let Some(p) = &input.platform {
        conn::non_empty("platform", p)?;
    }
    if let Some(u) = &input.user_id {
        conn::non_empty("user_id", &u.0)?;
    }
    conn::with_db(instance_dir, |c| {
        let table = load(c)?;
        let mut a = Assignments::new(&table);
        a.set_opt("platform", "platform", input.platform.clone())?;
        a.set_opt("user_id", "user_id", input.user_id.clone().map(|u| u.0))?;
        apply_common(
            &mut a,
            Common {
                person_name: &input.person_name,
                name_reason: &input.name_reason,
                nickname: &input.nickname,
                impression: &input.impression,
                short_impression: &input.short_impression,
                points: &input.points,
                forgotten_points: &input.forgotten_points,
                info_list: &input.info_list,
                know_times: input.know_times,
                know_since: input.know_since,
                last_know: input.last_know,
                attitude: input.attitude,
                is_known: input.is_known,
                group_nick_name: &input.group_nick_name,
                memory_points: &input.memory_points,
            },
        )?;
        if a.is_empty() {
            return Err(MaibotDbError::invalid("body", "no fields to update"));
        }
        Ok(a.update(c, "person_id", SqlValue::Text(person_id.to_owned()))? > 0)
    })
}

/// Deletes by `person_id`; returns whether it existed.
pub fn delete(instance_dir: &Path, person_id: &str) -> Result<bool> {
    conn::with_db(instance_dir, |c| {
        load(c)?;
        Ok(c.execute("DELETE FROM person_info WHERE person_id = ?1", [person_id])? > 0)
    })
}

/// Applies an interaction update (see [`PersonInteraction`]); returns `false`
/// when `person_id` does not exist.
pub fn update_interaction(
    instance_dir: &Path,
    person_id: &str,
    input: &PersonInteraction,
) -> Result<bool> {
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let impression = given(&input.impression_update);
    let short_impression = given(&input.short_impression_update);
    let points = given(&input.points_update);
    conn::with_db(instance_dir, |c| {
        // Points are read-modify-write; IMMEDIATE takes the write lock up front
        // so a concurrent MaiBot write cannot be lost in between.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let table = load(&tx)?;
        let existing: Option<Option<String>> = if table.has("points") {
            tx.query_row(
                "SELECT CAST(points AS TEXT) FROM person_info WHERE person_id = ?1",
                [person_id],
                |r| r.get(0),
            )
            .optional()?
        } else {
            tx.query_row(
                "SELECT NULL FROM person_info WHERE person_id = ?1",
                [person_id],
                |r| r.get(0),
            )
            .optional()?
        };
        let Some(existing_points) = existing else {
            return Ok(false);
        };
        let mut a = Assignments::new(&table);
        a.set_opt("impression_update", "impression", impression)?;
        a.set_opt(
            "short_impression_update",
            "short_impression",
            short_impression,
        )?;
        if let Some(p) = points {
            let column = table
                .column("points")
                .ok_or_else(|| conn::absent_column(TABLE, "points", "points_update"))?;
            let value = merge_points(&column.decl_type, existing_points.as_deref(), &p)?;
            a.set("points_update", "points", value)?;
        }
        if table.has("last_know") {
            a.set("last_know", "last_know", SqlValue::Real(conn::now_epoch()))?;
        }
        if !a.is_empty() {
            a.update(&tx, "person_id", SqlValue::Text(person_id.to_owned()))?;
        }
        tx.commit()?;
        Ok(true)
    })
}

/// Computes the new `points` value for an interaction update.
fn merge_points(decl_type: &str, existing: Option<&str>, update: &str) -> Result<SqlValue> {
    let affinity = decl_type.to_ascii_uppercase();
    let bad = |msg: &str| MaibotDbError::invalid("points_update", msg);
    if affinity.contains("INT") {
        return update
            .trim()
            .parse::<i64>()
            .map(SqlValue::Integer)
            .map_err(|_| bad("this MaiBot version stores points as an integer"));
    }
    if affinity.contains("REAL") || affinity.contains("FLOA") || affinity.contains("DOUB") {
        return update
            .trim()
            .parse::<f64>()
            .map(SqlValue::Real)
            .map_err(|_| bad("this MaiBot version stores points as a number"));
    }
    if let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(update) {
        return Ok(SqlValue::Text(v.to_string()));
    }
    let mut list = match existing.map(str::trim).filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            _ => {
                return Err(bad(
                    "stored points are not a JSON array; send a full JSON array to replace them",
                ));
            }
        },
    };
    let stamp = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    list.push(Value::Array(vec![
        Value::String(update.to_owned()),
        Value::from(1.0),
        Value::String(stamp),
    ]));
    Ok(SqlValue::Text(Value::Array(list).to_string()))
}
