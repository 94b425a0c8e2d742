//! PostgreSQL batch inserts as column arrays:
//! `INSERT INTO t (a, b, …) SELECT * FROM UNNEST($1::text[], $2::int8[], …)`.
//!
//! A multi-row `VALUES` list has one placeholder per value: for 1,000 message rows of 47
//! columns, 47,000 of them for the client to build and encode and for the server to parse,
//! analyse and plan, batch after batch. With arrays a statement has one parameter per
//! column whatever the row count, so its text is the same for every batch of a shape,
//! sqlx prepares it once per connection, and each column's values travel as one array.

use crate::lite::exec::{column_list, quoted, same_columns, take_columns};
use crate::lite::value::Kind;
use crate::{DbError, DbResult};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Arguments, postgres::PgArguments};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IdenStatic, Iterable, Value};

/// Rows per statement at most: PostgreSQL caps one parameter value (an array) at 1 GB, so
/// a very large batch is several statements in one transaction.
const ROWS_PER_STATEMENT: usize = 10_000;

/// One column's values across a group of rows, in the Rust type sqlx encodes as the
/// column's PostgreSQL array type.
enum Array {
    Str(Vec<Option<String>>),
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Json(Vec<Option<serde_json::Value>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Array {
    // Grown as rows arrive: a group is a run of rows of one shape, whose length is not
    // known up front (rows alternating between two shapes make many short groups).
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Str => Array::Str(Vec::new()),
            Kind::I32 => Array::I32(Vec::new()),
            Kind::I64 => Array::I64(Vec::new()),
            Kind::F32 => Array::F32(Vec::new()),
            Kind::F64 => Array::F64(Vec::new()),
            Kind::Bool => Array::Bool(Vec::new()),
            Kind::Json => Array::Json(Vec::new()),
            Kind::DateTimeUtc => Array::Time(Vec::new()),
            Kind::Bytes => Array::Bytes(Vec::new()),
        }
    }

    /// The cast written after the placeholder (the element type PostgreSQL should read).
    fn sql_type(&self) -> &'static str {
        match self {
            Array::Str(_) => "text[]",
            Array::I32(_) => "int4[]",
            Array::I64(_) => "int8[]",
            Array::F32(_) => "float4[]",
            Array::F64(_) => "float8[]",
            Array::Bool(_) => "bool[]",
            Array::Json(_) => "jsonb[]",
            Array::Time(_) => "timestamptz[]",
            Array::Bytes(_) => "bytea[]",
        }
    }

    /// Appends one row's value; a value of another type than the column's is refused
    /// (sea-orm's typed models cannot produce one, a hand-built `ActiveModel` can).
    fn push(&mut self, column: &str, v: Value) -> DbResult<()> {
        let mismatch = |v: &Value| {
            DbError::invalid(format!(
                "column {column}: value {v:?} does not fit its type"
            ))
        };
        match (self, v) {
            (Array::Str(a), Value::String(s)) => a.push(s),
            (Array::Str(a), Value::Char(c)) => a.push(c.map(String::from)),
            (Array::I32(a), Value::Int(i)) => a.push(i),
            (Array::I32(a), Value::SmallInt(i)) => a.push(i.map(i32::from)),
            (Array::I32(a), Value::TinyInt(i)) => a.push(i.map(i32::from)),
            (Array::I64(a), Value::BigInt(i)) => a.push(i),
            (Array::I64(a), Value::Int(i)) => a.push(i.map(i64::from)),
            (Array::F32(a), Value::Float(f)) => a.push(f),
            (Array::F64(a), Value::Double(f)) => a.push(f),
            (Array::F64(a), Value::Float(f)) => a.push(f.map(f64::from)),
            (Array::Bool(a), Value::Bool(b)) => a.push(b),
            (Array::Json(a), Value::Json(j)) => a.push(j.map(|j| *j)),
            (Array::Time(a), Value::ChronoDateTimeUtc(t)) => a.push(t),
            (Array::Time(a), Value::ChronoDateTimeLocal(t)) => {
                a.push(t.map(|t| t.with_timezone(&Utc)))
            }
            (Array::Time(a), Value::ChronoDateTimeWithTimeZone(t)) => {
                a.push(t.map(|t| t.with_timezone(&Utc)))
            }
            (Array::Bytes(a), Value::Bytes(b)) => a.push(b),
            (_, other) => return Err(mismatch(&other)),
        }
        Ok(())
    }

    fn bind(self, args: &mut PgArguments) -> Result<(), sqlx::error::BoxDynError> {
        match self {
            Array::Str(a) => args.add(a),
            Array::I32(a) => args.add(a),
            Array::I64(a) => args.add(a),
            Array::F32(a) => args.add(a),
            Array::F64(a) => args.add(a),
            Array::Bool(a) => args.add(a),
            Array::Json(a) => args.add(a),
            Array::Time(a) => args.add(a),
            Array::Bytes(a) => args.add(a),
        }
    }
}

/// Consecutive rows that set the same columns, as one statement's text and arguments.
pub(crate) struct Group {
    sql: String,
    arrays: Vec<Array>,
}

/// Whether every column of `E` has an array type here (checked before rows are consumed).
pub(crate) fn supports<E: EntityTrait>() -> bool {
    E::Column::iter().all(|c| Kind::of(c.def().get_column_type()).is_some())
}

/// Turns rows into groups of one shape each (see [`supports`] for which entities).
pub(crate) fn group_rows<E: EntityTrait>(rows: Vec<E::ActiveModel>) -> DbResult<Vec<Group>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let mut groups: Vec<Group> = Vec::new();
    let mut shape: Vec<E::Column> = Vec::new();
    let mut in_group = 0;
    for am in rows {
        let (cols, values) = take_columns::<E>(am);
        let same =
            !groups.is_empty() && in_group < ROWS_PER_STATEMENT && same_columns::<E>(&cols, &shape);
        if !same {
            in_group = 0;
            if cols.is_empty() {
                // Scoped rows always carry their tenant, so this is a caller's hand-built row.
                return Err(DbError::invalid("a batch row sets no column"));
            }
            let mut arrays = Vec::with_capacity(cols.len());
            for c in &cols {
                let kind = Kind::of(c.def().get_column_type()).ok_or_else(|| {
                    DbError::invalid(format!("column {} has no array type", c.as_str()))
                })?;
                arrays.push(Array::new(kind));
            }
            groups.push(Group {
                sql: unnest_sql::<E>(&cols, &arrays),
                arrays,
            });
            shape = cols;
        }
        if let Some(g) = groups.last_mut() {
            for ((array, col), v) in g.arrays.iter_mut().zip(&shape).zip(values) {
                array.push(col.as_str(), v)?;
            }
            in_group += 1;
        }
    }
    Ok(groups)
}

fn unnest_sql<E: EntityTrait>(cols: &[E::Column], arrays: &[Array]) -> String {
    let mut s = String::with_capacity(64 + cols.len() * 40);
    s.push_str("INSERT INTO ");
    let entity = E::default();
    if let Some(schema) = entity.schema_name() {
        quoted(&mut s, schema);
        s.push('.');
    }
    quoted(&mut s, entity.table_name());
    s.push(' ');
    column_list::<E>(&mut s, cols);
    s.push_str(" SELECT * FROM UNNEST(");
    for (i, a) in arrays.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(i + 1).to_string());
        s.push_str("::");
        s.push_str(a.sql_type());
    }
    s.push(')');
    s
}

fn exec_error(e: sqlx::Error) -> DbError {
    sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e.into())).into()
}

fn bind_error(e: sqlx::error::BoxDynError) -> DbError {
    DbError::invalid(format!("cannot encode a batch column: {e}"))
}

async fn run(conn: &mut sqlx::PgConnection, group: Group) -> DbResult<u64> {
    let mut args = PgArguments::default();
    for a in group.arrays {
        a.bind(&mut args).map_err(bind_error)?;
    }
    // The text holds only the entity's quoted identifiers, placeholders and type names.
    let done = sqlx::query_with(sqlx::AssertSqlSafe(group.sql), args)
        .execute(conn)
        .await
        .map_err(exec_error)?;
    Ok(done.rows_affected())
}

/// Inserts the groups, all or none: one statement (atomic by itself) for one group, a
/// transaction around several.
pub(crate) async fn insert_groups(pool: &sqlx::PgPool, mut groups: Vec<Group>) -> DbResult<u64> {
    if groups.len() == 1 {
        let mut conn = pool.acquire().await.map_err(exec_error)?;
        if let Some(g) = groups.pop() {
            return run(&mut conn, g).await;
        }
    }
    let mut txn = pool.begin().await.map_err(exec_error)?;
    let mut n = 0;
    for g in groups {
        n += run(&mut txn, g).await?;
    }
    txn.commit().await.map_err(exec_error)?;
    Ok(n)
}
