//! Connection handling, schema introspection and the small query builder
//! shared by the `emoji` and `person` modules.
//!
//! MaiBot owns the database and keeps it open (WAL) while running, so every
//! operation opens its own short-lived connection with a busy timeout and
//! drops it immediately; nothing here caches a handle across operations.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde_json::{Map, Value};

use super::error::{MaibotDbError, Result};

/// One table row as JSON, keyed by column name.
pub type Row = Map<String, Value>;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One column as reported by `PRAGMA table_info`.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) decl_type: String,
    pub(crate) not_null: bool,
    pub(crate) has_default: bool,
    pub(crate) pk: bool,
}

/// How this module interprets a known column when it writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Int,
    Real,
    /// MaiBot stores a JSON array in a TEXT column; writes must keep it parseable.
    JsonList,
}

/// A column this module knows how to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

/// Columns of one table in one particular database.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: Vec<Column>,
    known: &'static [Known],
}

impl Table {
    pub(crate) fn load(
        conn: &Connection,
        name: &'static str,
        known: &'static [Known],
    ) -> Result<Self> {
        let mut stmt = conn.prepare(
            "SELECT name, COALESCE(type, ''), \"notnull\", dflt_value IS NOT NULL, pk \
             FROM pragma_table_info(?1)",
        )?;
        let columns = stmt
            .query_map([name], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    decl_type: r.get(1)?,
                    not_null: r.get(2)?,
                    has_default: r.get(3)?,
                    pk: r.get::<_, i64>(4)? != 0,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if columns.is_empty() {
            return Err(MaibotDbError::TableMissing { table: name });
        }
        Ok(Self {
            name,
            columns,
            known,
        })
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(column))
    }

    pub(crate) fn column(&self, column: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
    }

    /// Fails with an input error naming `field` when the column is absent, for
    /// filters that cannot be honoured on this schema version.
    pub(crate) fn require(&self, column: &str, field: &str) -> Result<()> {
        if self.has(column) {
            Ok(())
        } else {
            Err(absent_column(self.name, column, field))
        }
    }

    fn kind_of(&self, column: &str) -> Option<Kind> {
        self.known.iter().find(|k| k.name == column).map(|k| k.kind)
    }
}

pub(crate) fn absent_column(table: &str, column: &str, field: &str) -> MaibotDbError {
    MaibotDbError::invalid(
        field,
        format!("column `{column}` does not exist in table `{table}` of this MaiBot version"),
    )
}

/// Returns whether the file opens read-only and contains both MaiBot tables.
pub(crate) fn probe_valid(path: &Path) -> bool {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return false;
    };
    if conn.busy_timeout(BUSY_TIMEOUT).is_err() {
        return false;
    }
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
         AND lower(name) IN ('emoji', 'person_info')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n == 2)
}

/// Opens an existing database read-write; never creates one.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(MaibotDbError::NotADatabase {
                path: path.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MaibotDbError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(MaibotDbError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    // No SQLITE_OPEN_CREATE: if the file vanishes between the check and the
    // open, SQLite fails instead of leaving an empty database behind.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(e, path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(e, path))?;
    // Opening is lazy; touching the schema surfaces "not a database" here
    // rather than as a confusing error in the middle of an operation.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| classify(e, path))?;
    Ok(conn)
}

/// Locates and opens the instance database, runs `op`, and closes it.
pub(crate) fn with_db<T>(
    instance_dir: &Path,
    op: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    let path = super::locate::locate_db(instance_dir)?;
    let mut conn = open(&path)?;
    let out = op(&mut conn).map_err(|e| match e {
        MaibotDbError::Sqlite(inner) => classify(inner, &path),
        other => other,
    });
    drop(conn);
    out
}

/// Turns SQLite failures that callers can act on into dedicated variants.
pub(crate) fn classify(err: rusqlite::Error, path: &Path) -> MaibotDbError {
    use rusqlite::ErrorCode;
    let Some(code) = err.sqlite_error() else {
        return MaibotDbError::Sqlite(err);
    };
    match code.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => MaibotDbError::Busy,
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => MaibotDbError::NotADatabase {
            path: path.to_path_buf(),
        },
        ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
            MaibotDbError::Unreadable {
                path: path.to_path_buf(),
                reason: err.to_string(),
            }
        }
        ErrorCode::ConstraintViolation
            if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            // SQLite reports "UNIQUE constraint failed: table.column".
            let field = err
                .to_string()
                .rsplit('.')
                .next()
                .unwrap_or("unknown")
                .trim()
                .to_owned();
            MaibotDbError::Conflict {
                field,
                value: String::new(),
            }
        }
        _ => MaibotDbError::Sqlite(err),
    }
}

/// Quotes an SQL identifier taken from `PRAGMA table_info`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Converts one SQLite value to JSON. BLOBs are omitted (`None`) because no
/// MaiBot column of these tables holds binary data and raw bytes are useless
/// to the frontend.
fn to_json(v: ValueRef<'_>) -> Option<Value> {
    match v {
        ValueRef::Null => Some(Value::Null),
        ValueRef::Integer(i) => Some(Value::from(i)),
        ValueRef::Real(f) => {
            Some(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
        }
        ValueRef::Text(t) => Some(Value::String(String::from_utf8_lossy(t).into_owned())),
        ValueRef::Blob(_) => None,
    }
}

/// WHERE-clause builder that only ever binds values as parameters.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Filter {
    pub(crate) fn eq(&mut self, column: &str, value: impl Into<SqlValue>) {
        self.clauses.push(format!("{} = ?", ident(column)));
        self.params.push(value.into());
    }

    /// Substring match; `%`, `_` and `\` in `needle` are matched literally.
    pub(crate) fn contains(&mut self, column: &str, needle: &str) {
        self.clauses
            .push(format!("{} LIKE ? ESCAPE '\\'", ident(column)));
        self.params
            .push(SqlValue::Text(format!("%{}%", escape_like(needle))));
    }

    /// A fixed condition written by this module (no user data inside).
    pub(crate) fn raw(&mut self, clause: &'static str) {
        self.clauses.push(clause.to_owned());
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Escapes LIKE wildcards so user text is matched literally.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Bounded, validated LIMIT/OFFSET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) limit: u32,
    pub(crate) offset: u64,
}

/// Hard upper bound for one page.
pub const MAX_PAGE: u32 = 1000;

impl Paging {
    /// `limit` of `None` or 0 means `default` (the legacy API treated 0 as
    /// "default" too); negative values and values above [`MAX_PAGE`] are refused
    /// rather than clamped so a client bug is visible.
    pub(crate) fn new(
        limit: Option<i64>,
        offset: Option<i64>,
        limit_field: &str,
        default: u32,
    ) -> Result<Self> {
        let limit = match limit.unwrap_or(0) {
            0 => default,
            n if n < 0 => {
                return Err(MaibotDbError::invalid(limit_field, "must not be negative"));
            }
            n => u32::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_PAGE)
                .ok_or_else(|| {
                    MaibotDbError::invalid(limit_field, format!("must be at most {MAX_PAGE}"))
                })?,
        };
        let offset = u64::try_from(offset.unwrap_or(0))
            .map_err(|_| MaibotDbError::invalid("offset", "must not be negative"))?;
        Ok(Self { limit, offset })
    }
}

/// One page of rows plus paging metadata, as the list endpoints return it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    /// Rows, every existing column included.
    pub items: Vec<Row>,
    /// Matching rows in total; `None` for the batch endpoints, which skip the COUNT.
    pub total_count: Option<u64>,
    /// Effective page size.
    pub limit: u32,
    /// Effective offset.
    pub offset: u64,
}

/// Runs `SELECT *` with `filter`, ordered and paged.
pub(crate) fn select_page(
    conn: &Connection,
    table: &Table,
    filter: &Filter,
    order_by: &str,
    paging: Paging,
) -> Result<Vec<Row>> {
    let sql = format!(
        "SELECT * FROM {}{} ORDER BY {order_by} LIMIT ? OFFSET ?",
        ident(table.name),
        filter.sql()
    );
    let mut params = filter.params.clone();
    params.push(SqlValue::Integer(i64::from(paging.limit)));
    // Offsets beyond i64 cannot match anything; saturating keeps SQLite happy.
    params.push(SqlValue::Integer(
        i64::try_from(paging.offset).unwrap_or(i64::MAX),
    ));
    query_rows(conn, &sql, params)
}

/// Runs `SELECT *` with `filter` and returns the first row, if any.
pub(crate) fn select_one(conn: &Connection, table: &Table, filter: &Filter) -> Result<Option<Row>> {
    let sql = format!(
        "SELECT * FROM {}{} ORDER BY {} LIMIT 1",
        ident(table.name),
        filter.sql(),
        ident("id")
    );
    Ok(query_rows(conn, &sql, filter.params.clone())?
        .into_iter()
        .next())
}

pub(crate) fn count(conn: &Connection, table: &Table, filter: &Filter) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {}{}", ident(table.name), filter.sql());
    let n: i64 = conn.query_row(&sql, params_from_iter(filter.params.iter()), |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn query_rows(conn: &Connection, sql: &str, params: Vec<SqlValue>) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut map = Map::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if let Some(v) = to_json(row.get_ref(i)?) {
                map.insert(name.clone(), v);
            }
        }
        out.push(map);
    }
    Ok(out)
}

/// Collects column assignments for INSERT/UPDATE, enforcing the write rules:
/// only known columns, only columns that exist in this database, and values
/// that keep MaiBot's JSON columns parseable.
#[derive(Debug)]
pub(crate) struct Assignments<'t> {
    table: &'t Table,
    values: Vec<(&'static str, SqlValue)>,
}

impl<'t> Assignments<'t> {
    pub(crate) fn new(table: &'t Table) -> Self {
        Self {
            table,
            values: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets `column` from request field `field`.
    ///
    /// A field whose column does not exist in this MaiBot version is skipped
    /// when it carries nothing (null or empty text, which the frontend sends as
    /// defaults) and refused otherwise, so data is never silently dropped.
    pub(crate) fn set(&mut self, field: &str, column: &'static str, value: SqlValue) -> Result<()> {
        let empty = match &value {
            SqlValue::Null => true,
            SqlValue::Text(t) => t.is_empty(),
            _ => false,
        };
        if !self.table.has(column) {
            return if empty {
                Ok(())
            } else {
                Err(absent_column(self.table.name, column, field))
            };
        }
        let value = if self.table.kind_of(column) == Some(Kind::JsonList) {
            json_list_value(field, value)?
        } else {
            value
        };
        self.values.retain(|(c, _)| *c != column);
        self.values.push((column, value));
        Ok(())
    }

    pub(crate) fn set_opt<T: Into<SqlValue>>(
        &mut self,
        field: &str,
        column: &'static str,
        value: Option<T>,
    ) -> Result<()> {
        match value {
            Some(v) => self.set(field, column, v.into()),
            None => Ok(()),
        }
    }

    fn contains(&self, column: &str) -> bool {
        self.values
            .iter()
            .any(|(c, _)| c.eq_ignore_ascii_case(column))
    }

    /// Inserts a row and returns its id. NOT NULL columns without an SQL
    /// default are filled with a zero value, because peewee keeps its defaults
    /// in Python and newer MaiBot columns would otherwise make the INSERT fail.
    pub(crate) fn insert(self, conn: &Connection) -> Result<i64> {
        let mut columns: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        for (c, v) in &self.values {
            columns.push(ident(c));
            params.push(v.clone());
        }
        for col in &self.table.columns {
            if col.pk || !col.not_null || col.has_default || self.contains(&col.name) {
                continue;
            }
            columns.push(ident(&col.name));
            params.push(self.zero_value(col));
        }
        let placeholders = vec!["?"; columns.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            ident(self.table.name),
            columns.join(", ")
        );
        conn.execute(&sql, params_from_iter(params))?;
        Ok(conn.last_insert_rowid())
    }

    /// Updates rows where `key_column = key`; returns the number changed.
    pub(crate) fn update(
        self,
        conn: &Connection,
        key_column: &str,
        key: SqlValue,
    ) -> Result<usize> {
        let sets: Vec<String> = self
            .values
            .iter()
            .map(|(c, _)| format!("{} = ?", ident(c)))
            .collect();
        let mut params: Vec<SqlValue> = self.values.into_iter().map(|(_, v)| v).collect();
        params.push(key);
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = ?",
            ident(self.table.name),
            sets.join(", "),
            ident(key_column)
        );
        Ok(conn.execute(&sql, params_from_iter(params))?)
    }

    fn zero_value(&self, col: &Column) -> SqlValue {
        match self.table.kind_of(&col.name) {
            Some(Kind::Text) => SqlValue::Text(String::new()),
            Some(Kind::Int) => SqlValue::Integer(0),
            Some(Kind::Real) => SqlValue::Real(0.0),
            Some(Kind::JsonList) => SqlValue::Text("[]".to_owned()),
            None => zero_for_affinity(&col.decl_type),
        }
    }
}

/// Zero value following SQLite's column-affinity rules for an unknown column.
fn zero_for_affinity(decl_type: &str) -> SqlValue {
    let t = decl_type.to_ascii_uppercase();
    if t.contains("INT") {
        SqlValue::Integer(0)
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") || t.is_empty() {
        SqlValue::Text(String::new())
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        SqlValue::Real(0.0)
    } else {
        SqlValue::Integer(0)
    }
}

/// Empty text becomes `[]`; other text must be a JSON array, stored compactly.
fn json_list_value(field: &str, value: SqlValue) -> Result<SqlValue> {
    match value {
        SqlValue::Text(t) if t.trim().is_empty() => Ok(SqlValue::Text("[]".to_owned())),
        SqlValue::Text(t) => match serde_json::from_str::<Value>(&t) {
            Ok(v @ Value::Array(_)) => Ok(SqlValue::Text(v.to_string())),
            _ => Err(MaibotDbError::invalid(
                field,
                "must be a JSON array (MaiBot parses this column as JSON)",
            )),
        },
        other => Ok(other),
    }
}

/// Current time as epoch seconds with sub-second precision, like Python's `time.time()`.
pub(crate) fn now_epoch() -> f64 {
    let now = chrono::Utc::now();
    now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6
}

/// Refuses an empty or whitespace-only required string.
pub(crate) fn non_empty(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(MaibotDbError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Deserialises a JSON request body, turning serde's message into an input
/// error that names the offending field where serde reports one.
pub fn parse_input<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field `"))
            .unwrap_or("body")
            .to_owned();
        MaibotDbError::Invalid {
            field,
            message: msg,
        }
    })
}

/// A boolean flag that accepts `true`/`false` or `0`/`1` on input, because
/// the frontend sends 0/1 while MaiBot stores peewee booleans as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "FlagRepr")]
pub struct Flag(pub bool);

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FlagRepr {
    Bool(bool),
    Int(i64),
}

impl TryFrom<FlagRepr> for Flag {
    type Error = String;

    fn try_from(r: FlagRepr) -> std::result::Result<Self, Self::Error> {
        match r {
            FlagRepr::Bool(b) => Ok(Self(b)),
            FlagRepr::Int(0) => Ok(Self(false)),
            FlagRepr::Int(1) => Ok(Self(true)),
            FlagRepr::Int(n) => Err(format!("expected true/false or 0/1, got {n}")),
        }
    }
}

impl From<Flag> for SqlValue {
    fn from(f: Flag) -> Self {
        SqlValue::Integer(i64::from(f.0))
    }
}

/// Text that may arrive as a JSON string or number (platform user ids are
/// numeric on QQ and some clients send them unquoted).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "TextRepr")]
pub struct LooseText(pub String);

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TextRepr {
    Text(String),
    Int(i64),
    UInt(u64),
}

impl From<TextRepr> for LooseText {
    fn from(r: TextRepr) -> Self {
        Self(match r {
            TextRepr::Text(s) => s,
            TextRepr::Int(n) => n.to_string(),
            TextRepr::UInt(n) => n.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(escape_like("plain"), "plain");
    }

    #[test]
    fn paging_bounds() {
        let p = Paging::new(None, None, "limit", 100).unwrap();
        assert_eq!((p.limit, p.offset), (100, 0));
        assert_eq!(
            Paging::new(Some(0), Some(3), "limit", 50).unwrap().limit,
            50
        );
        assert!(Paging::new(Some(-1), None, "limit", 100).is_err());
        assert!(Paging::new(Some(1001), None, "limit", 100).is_err());
        assert!(Paging::new(Some(i64::MAX), None, "limit", 100).is_err());
        assert!(Paging::new(None, Some(-1), "limit", 100).is_err());
    }

    #[test]
    fn json_list_rules() {
        let text = |s: &str| SqlValue::Text(s.to_owned());
        assert_eq!(json_list_value("f", text("")).unwrap(), text("[]"));
        assert_eq!(
            json_list_value("f", text(" [1, 2] ")).unwrap(),
            text("[1,2]")
        );
        assert!(json_list_value("f", text("{}")).is_err());
        assert!(json_list_value("f", text("nope")).is_err());
    }

    #[test]
    fn affinity_zero_values() {
        assert_eq!(zero_for_affinity("INTEGER"), SqlValue::Integer(0));
        assert_eq!(
            zero_for_affinity("varchar(255)"),
            SqlValue::Text(String::new())
        );
        assert_eq!(zero_for_affinity("DOUBLE"), SqlValue::Real(0.0));
    }
}
