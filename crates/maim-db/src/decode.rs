//! Rows from the sqlx pool (PostgreSQL, in-memory SQLite) into models, by position.
//!
//! sea-orm's own decoding formats each column's name into a new string and looks it up in
//! a map, for every column of every row: on 47-column message rows that was most of a
//! read's client CPU. Selects list the entity's columns in declaration order, so each
//! value is fetched by index with the type its column declares and handed to the model's
//! serde `Deserialize`, as the SQLite engine does with its rows.

use crate::lite::de::{Column, ColumnMap, DeError, Keys};
use crate::lite::value::Kind;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sqlx;
use sea_orm::{QueryResult, TryGetable};
use serde::de::{self, Visitor};

/// A value fetched from a row, already in a Rust type.
enum Fetched {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Json(serde_json::Value),
    Time(DateTime<Utc>),
    Bytes(Vec<u8>),
}

/// Whether a statement's PostgreSQL column types suit the types its model reads them as,
/// worked out once from the first row's description. sqlx's `try_get` repeats that check
/// (cloning the type descriptions) for every value; once it has passed for the statement,
/// values go straight to sqlx's decoders. A statement that fails it keeps the per-value
/// check, whose error names the mismatch.
#[derive(Default)]
pub(crate) struct TypesChecked(std::cell::OnceCell<bool>);

impl TypesChecked {
    fn get(&self, row: &QueryResult, columns: &[Column]) -> bool {
        *self.0.get_or_init(|| {
            let Some(pg) = row.try_as_pg_row() else {
                return false;
            };
            let described = sqlx::Row::columns(pg);
            columns.iter().enumerate().all(|(i, c)| {
                c.kind.is_none_or(|k| {
                    described
                        .get(i)
                        .is_some_and(|d| suits(k, sqlx::Column::type_info(d)))
                })
            })
        })
    }
}

fn suits(kind: Kind, ty: &sqlx::postgres::PgTypeInfo) -> bool {
    use sqlx::{Postgres, Type};
    match kind {
        Kind::Str => <String as Type<Postgres>>::compatible(ty),
        Kind::I32 => <i32 as Type<Postgres>>::compatible(ty),
        Kind::I64 => <i64 as Type<Postgres>>::compatible(ty),
        Kind::F64 => <f64 as Type<Postgres>>::compatible(ty),
        Kind::F32 => <f32 as Type<Postgres>>::compatible(ty),
        Kind::Bool => <bool as Type<Postgres>>::compatible(ty),
        Kind::Json => <serde_json::Value as Type<Postgres>>::compatible(ty),
        Kind::DateTimeUtc => <DateTime<Utc> as Type<Postgres>>::compatible(ty),
        Kind::Bytes => <Vec<u8> as Type<Postgres>>::compatible(ty),
    }
}

fn get<T>(row: &QueryResult, i: usize, c: &Column, checked: bool) -> Result<Option<T>, DeError>
where
    T: TryGetable + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    // PostgreSQL rows are read through sqlx directly: sea-orm formats the index into an
    // error message for every NULL it meets, before its `Option` turns that into `None`.
    let got = match row.try_as_pg_row() {
        Some(pg) if checked => {
            sqlx::Row::try_get_unchecked::<Option<T>, _>(pg, i).map_err(|e| e.to_string())
        }
        Some(pg) => sqlx::Row::try_get::<Option<T>, _>(pg, i).map_err(|e| e.to_string()),
        None => row
            .try_get_by_index::<Option<T>>(i)
            .map_err(|e| e.to_string()),
    };
    got.map_err(|e| DeError::custom_msg(format!("column {}: {e}", c.name)))
}

fn fetch(row: &QueryResult, i: usize, c: &Column, checked: bool) -> Result<Fetched, DeError> {
    let Some(kind) = c.kind else {
        // A column the model does not know (added by a later migration): the model skips
        // its value, so none is fetched. A field of a type this decoder has no reading
        // for is an error, never a silent NULL.
        return match c.field {
            false => Ok(Fetched::Null),
            true => Err(DeError::custom_msg(format!(
                "column {} has a type maim-db cannot read",
                c.name
            ))),
        };
    };
    Ok(match kind {
        Kind::Str => get::<String>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Str),
        Kind::I32 => {
            get::<i32>(row, i, c, checked)?.map_or(Fetched::Null, |v| Fetched::Int(v.into()))
        }
        Kind::I64 => get::<i64>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Int),
        Kind::F64 => get::<f64>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Float),
        Kind::F32 => {
            get::<f32>(row, i, c, checked)?.map_or(Fetched::Null, |v| Fetched::Float(v.into()))
        }
        Kind::Bool => get::<bool>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Bool),
        Kind::Json => {
            get::<serde_json::Value>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Json)
        }
        Kind::DateTimeUtc => {
            get::<DateTime<Utc>>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Time)
        }
        Kind::Bytes => get::<Vec<u8>>(row, i, c, checked)?.map_or(Fetched::Null, Fetched::Bytes),
    })
}

/// A row as a map from column name to value.
pub(crate) struct RowDe<'a> {
    pub(crate) row: &'a QueryResult,
    pub(crate) columns: &'a [Column],
    pub(crate) keys: &'a Keys,
    pub(crate) checked: &'a TypesChecked,
}

impl<'a> RowDe<'a> {
    /// The row as a serde map, its columns named by `keys` (see [`Keys`]).
    fn map(
        &self,
        keys: &'a [Option<u64>],
    ) -> ColumnMap<'a, impl FnMut(usize, &'a Column) -> Result<Fetched, DeError>> {
        let row = self.row;
        let checked = self.checked.get(row, self.columns);
        ColumnMap {
            columns: self.columns,
            keys,
            next: 0,
            value: move |i, column: &'a Column| fetch(row, i, column, checked),
        }
    }
}

impl<'de> de::Deserializer<'de> for RowDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let keys = self.keys.get(self.columns, fields);
        visitor.visit_map(self.map(keys))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

impl<'de> de::Deserializer<'de> for Fetched {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Fetched::Null => visitor.visit_unit(),
            Fetched::Str(s) => visitor.visit_string(s),
            Fetched::Int(i) => visitor.visit_i64(i),
            Fetched::Float(f) => visitor.visit_f64(f),
            Fetched::Bool(b) => visitor.visit_bool(b),
            Fetched::Json(j) => j
                .deserialize_any(visitor)
                .map_err(|e| DeError::custom_msg(e.to_string())),
            // chrono's `Deserialize` reads RFC 3339 text.
            Fetched::Time(t) => {
                visitor.visit_string(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            Fetched::Bytes(b) => visitor.visit_byte_buf(b),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Fetched::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
