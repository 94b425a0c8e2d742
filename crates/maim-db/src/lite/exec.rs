//! Running built statements on a rusqlite connection and reading models back.

use super::de::{Keys, RowDe};
use super::error;
use super::value::{Bind, columns, encode};
use crate::error::DbResult;
use rusqlite::Connection;
use sea_orm::{ActiveModelTrait, ActiveValue, EntityTrait, IdenStatic, Iterable, Value};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A statement ready to run: SQL with `?` placeholders and its values in order.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) values: Vec<Value>,
}

impl From<sea_orm::Statement> for Sql {
    fn from(s: sea_orm::Statement) -> Self {
        Sql {
            text: s.sql,
            values: s.values.map(|v| v.0).unwrap_or_default(),
        }
    }
}

impl From<(String, sea_orm::sea_query::Values)> for Sql {
    fn from((text, values): (String, sea_orm::sea_query::Values)) -> Self {
        Sql {
            text,
            values: values.0,
        }
    }
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, values: &[Value]) -> DbResult<()> {
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, Bind(v)).map_err(error)?;
    }
    Ok(())
}

/// Runs a statement that returns rows of `E` (a SELECT of its columns, or a write with
/// `RETURNING`).
pub(crate) fn models<E>(conn: &Connection, sql: &Sql, capacity: usize) -> DbResult<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: DeserializeOwned,
{
    let mut stmt = conn.prepare_cached(&sql.text).map_err(error)?;
    let columns = columns::<E>(&stmt.column_names());
    bind(&mut stmt, &sql.values)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::with_capacity(capacity);
    let keys = Keys::of::<E>();
    while let Some(row) = rows.next().map_err(error)? {
        let model = E::Model::deserialize(RowDe {
            row,
            columns: &columns,
            keys: &keys,
        })?;
        out.push(model);
    }
    Ok(out)
}

/// Runs a statement whose first column of its one row is an integer (a count).
pub(crate) fn scalar(conn: &Connection, sql: &Sql) -> DbResult<i64> {
    let mut stmt = conn.prepare_cached(&sql.text).map_err(error)?;
    bind(&mut stmt, &sql.values)?;
    let mut rows = stmt.raw_query();
    match rows.next().map_err(error)? {
        Some(row) => row.get(0).map_err(error),
        None => Ok(0),
    }
}

/// Runs a statement that returns no rows; returns how many rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &Sql) -> DbResult<u64> {
    let mut stmt = conn.prepare_cached(&sql.text).map_err(error)?;
    bind(&mut stmt, &sql.values)?;
    Ok(stmt.raw_execute().map_err(error)? as u64)
}

pub(crate) fn quoted(out: &mut String, ident: &str) {
    out.push('"');
    if ident.contains('"') {
        out.push_str(&ident.replace('"', "\"\""));
    } else {
        out.push_str(ident);
    }
    out.push('"');
}

/// `("a", "b", …)`: the quoted column names in parentheses.
pub(crate) fn column_list<E: EntityTrait>(out: &mut String, cols: &[E::Column]) {
    out.push('(');
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(out, c.as_str());
    }
    out.push(')');
}

/// Whether two rows set the same columns (they can share one INSERT text).
pub(crate) fn same_columns<E: EntityTrait>(a: &[E::Column], b: &[E::Column]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.as_str() == y.as_str())
}

/// The columns `am` sets, with their values (moved out, not cloned), in declaration order.
pub(crate) fn take_columns<E: EntityTrait>(mut am: E::ActiveModel) -> (Vec<E::Column>, Vec<Value>)
where
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let mut cols = Vec::new();
    let mut values = Vec::new();
    for c in E::Column::iter() {
        if let ActiveValue::Set(v) | ActiveValue::Unchanged(v) = am.take(c) {
            cols.push(c);
            values.push(v);
        }
    }
    (cols, values)
}

/// `INSERT INTO t (cols) VALUES (?, …)`, optionally returning the whole row.
/// Built by hand rather than by sea-query so that a batch builds it once, not per row.
pub(crate) fn insert_sql<E: EntityTrait>(cols: &[E::Column], returning: bool) -> String {
    let mut s = String::with_capacity(64 + cols.len() * 24);
    s.push_str("INSERT INTO ");
    quoted(&mut s, E::default().table_name());
    if cols.is_empty() {
        s.push_str(" DEFAULT VALUES");
    } else {
        column_list::<E>(&mut s, cols);
        s.push_str(" VALUES (");
        for i in 0..cols.len() {
            s.push_str(if i == 0 { "?" } else { ", ?" });
        }
        s.push(')');
    }
    if returning {
        // Rows are decoded by the names the result carries, so `*` serves; a short text is
        // also cheaper for the prepared-statement cache, which compares whole texts.
        s.push_str(" RETURNING *");
    }
    s
}

/// Rows of one batch that share an INSERT shape (the same set columns), already in the
/// form SQLite stores.
#[derive(Debug)]
pub(crate) struct Group {
    /// `INSERT INTO t (cols) VALUES` without any row.
    head: String,
    /// `(?, …)` for one row.
    row: String,
    rows: Vec<Vec<rusqlite::types::Value>>,
}

/// Rows per INSERT statement of a batch. Each statement ends with fixed work (the
/// AUTOINCREMENT counter, statement reset), so several rows share one; the statement
/// stays far below SQLite's bound-parameter limit for any table here.
const ROWS_PER_STATEMENT: usize = 32;

impl Group {
    fn sql(&self, rows: usize) -> String {
        let mut s = String::with_capacity(self.head.len() + rows * (self.row.len() + 2));
        s.push_str(&self.head);
        for i in 0..rows {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&self.row);
        }
        s
    }
}

/// Splits a batch into runs of rows with the same shape, in order.
pub(crate) fn group_rows<E: EntityTrait>(rows: Vec<E::ActiveModel>) -> DbResult<Vec<Group>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let mut groups: Vec<Group> = Vec::new();
    let mut shape: Vec<E::Column> = Vec::new();
    let mut last_time = None;
    for am in rows {
        let (cols, values) = take_columns::<E>(am);
        let same = groups.last().is_some() && same_columns::<E>(&cols, &shape);
        if !same {
            let full = insert_sql::<E>(&cols, false);
            // `… VALUES (?, …)`: split before the row, so a statement can repeat it.
            let (head, row) = match full.find(" VALUES (") {
                Some(at) => (full[..at + 8].to_owned(), full[at + 8..].to_owned()),
                None => (full, String::new()),
            };
            groups.push(Group {
                head,
                row,
                rows: Vec::new(),
            });
            shape = cols;
        }
        if let Some(g) = groups.last_mut() {
            let encoded = values
                .into_iter()
                .map(|v| encode(v, &mut last_time))
                .collect::<DbResult<Vec<_>>>()?;
            g.rows.push(encoded);
        }
    }
    Ok(groups)
}

/// Inserts the groups in one immediate transaction: all rows or none.
pub(crate) fn insert_groups(conn: &mut Connection, groups: &[Group]) -> DbResult<u64> {
    let txn = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(error)?;
    let mut n = 0u64;
    for g in groups {
        if g.row.is_empty() {
            // `DEFAULT VALUES`: one statement per row.
            let mut stmt = txn.prepare_cached(&g.head).map_err(error)?;
            for _ in &g.rows {
                stmt.raw_execute().map_err(error)?;
                n += 1;
            }
            continue;
        }
        for chunk in g.rows.chunks(ROWS_PER_STATEMENT) {
            let mut stmt = txn.prepare_cached(&g.sql(chunk.len())).map_err(error)?;
            let mut i = 0;
            for v in chunk.iter().flatten() {
                i += 1;
                stmt.raw_bind_parameter(i, v).map_err(error)?;
            }
            n += stmt.raw_execute().map_err(error)? as u64;
        }
    }
    txn.commit().map_err(error)?;
    Ok(n)
}
