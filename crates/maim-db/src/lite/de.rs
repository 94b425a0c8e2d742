//! Result rows straight into models with serde: every scoped model derives `Deserialize`
//! with its column names as field names, so a row is read as a map of column name to
//! SQLite value, with no intermediate `Value` or `ActiveModel` per column (which cost
//! more than the query itself on wide rows).

use super::value::Kind;
use crate::error::DbError;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::ValueRef;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use std::fmt;

/// A decode failure, carried through serde and turned into [`DbError::Database`].
#[derive(Debug)]
pub(crate) struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl DeError {
    pub(crate) fn custom_msg(msg: String) -> Self {
        DeError(msg)
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

impl From<DeError> for DbError {
    fn from(e: DeError) -> Self {
        DbError::Database(format!("cannot read row: {}", e.0))
    }
}

/// One result column: its name and how its values are stored.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: std::borrow::Cow<'static, str>,
    pub(crate) kind: Option<Kind>,
}

/// A row as a map from column name to value.
pub(crate) struct RowDe<'a, 'r> {
    pub(crate) row: &'a rusqlite::Row<'r>,
    pub(crate) columns: &'a [Column],
}

impl<'de, 'a> de::Deserializer<'de> for RowDe<'a, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let row = self.row;
        visitor.visit_map(ColumnMap {
            columns: self.columns,
            next: 0,
            value: |i, column: &'a Column| {
                let value = row
                    .get_ref(i)
                    .map_err(|e| DeError(format!("column {}: {e}", column.name)))?;
                Ok(ValueDe { value, column })
            },
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// A row's columns as a serde map: keys are the column names, values come from `value`
/// (given the column's position), so each engine supplies only how it reads one value.
pub(crate) struct ColumnMap<'a, F> {
    pub(crate) columns: &'a [Column],
    pub(crate) next: usize,
    pub(crate) value: F,
}

impl<'de, 'a, F, D> MapAccess<'de> for ColumnMap<'a, F>
where
    F: FnMut(usize, &'a Column) -> Result<D, DeError>,
    D: de::Deserializer<'de, Error = DeError>,
{
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.columns.get(self.next) {
            Some(c) => seed
                .deserialize(c.name.as_ref().into_deserializer())
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let i = self.next;
        self.next += 1;
        let column = self
            .columns
            .get(i)
            .ok_or_else(|| DeError("value without a column".into()))?;
        seed.deserialize((self.value)(i, column)?)
    }
}

/// One stored value, read as whatever the model's field asks for.
struct ValueDe<'a> {
    value: ValueRef<'a>,
    column: &'a Column,
}

impl ValueDe<'_> {
    fn wrong(&self, want: &str) -> DeError {
        DeError(format!(
            "column {} holds {:?}, not {want}",
            self.column.name,
            self.value.data_type()
        ))
    }

    fn text(&self) -> Result<&str, DeError> {
        match self.value {
            ValueRef::Text(b) => std::str::from_utf8(b)
                .map_err(|_| DeError(format!("column {} is not UTF-8", self.column.name))),
            _ => Err(self.wrong("text")),
        }
    }
}

/// Whether RFC 3339 text ends in a zone (`Z` or `±hh:mm`), which chrono requires.
fn has_zone(s: &str) -> bool {
    s.ends_with('Z')
        || s.len() > 6 && {
            let tail = &s.as_bytes()[s.len() - 6..];
            (tail[0] == b'+' || tail[0] == b'-') && tail[3] == b':'
        }
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.column.kind {
            Some(Kind::Json) => {
                let bytes = match self.value {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b,
                    ValueRef::Null => return visitor.visit_unit(),
                    _ => return Err(self.wrong("JSON text")),
                };
                let json: serde_json::Value = serde_json::from_slice(bytes)
                    .map_err(|e| DeError(format!("column {}: {e}", self.column.name)))?;
                return json
                    .deserialize_any(visitor)
                    .map_err(|e| DeError(e.to_string()));
            }
            Some(Kind::DateTimeUtc) => {
                // Stored by sqlx or by us as RFC 3339; by a column default as
                // `YYYY-MM-DD HH:MM:SS` in UTC, which chrono alone does not read.
                if let ValueRef::Text(_) = self.value {
                    let s = self.text()?;
                    if has_zone(s) {
                        return visitor.visit_str(s);
                    }
                }
                let t: DateTime<Utc> =
                    super::value::datetime(self.value).ok_or_else(|| self.wrong("a date-time"))?;
                return visitor.visit_string(t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            }
            _ => {}
        }
        match self.value {
            ValueRef::Null => visitor.visit_unit(),
            ValueRef::Integer(i) => match self.column.kind {
                Some(Kind::Bool) => visitor.visit_bool(i != 0),
                Some(Kind::F64 | Kind::F32) => visitor.visit_f64(i as f64),
                _ => visitor.visit_i64(i),
            },
            ValueRef::Real(f) => visitor.visit_f64(f),
            ValueRef::Text(_) => visitor.visit_str(self.text()?),
            ValueRef::Blob(b) => visitor.visit_bytes(b),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Integer(i) => visitor.visit_bool(i != 0),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Real(f) => visitor.visit_f64(f),
            // SQLite may store an integral REAL as an integer.
            ValueRef::Integer(i) => visitor.visit_f64(i as f64),
            _ => Err(self.wrong("a number")),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            ValueRef::Integer(i) => visitor.visit_string(i.to_string()),
            ValueRef::Real(f) => visitor.visit_string(f.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
