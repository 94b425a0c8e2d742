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
    /// Whether the model has a field for it (a column without one is skipped).
    pub(crate) field: bool,
}

/// How a statement's columns are named to the model's `Deserialize`, worked out at its
/// first row and kept for the rest: by the model's field index where the column is one of
/// its fields, otherwise by name (which the model ignores). A derived `Deserialize` picks a
/// field from an index with one jump, where a name is compared against the field names in
/// turn — on 47-column message rows that lookup was a tenth of a read's CPU.
pub(crate) struct Keys {
    entity: Vec<&'static str>,
    keys: std::cell::OnceCell<Vec<Option<u64>>>,
}

impl Keys {
    /// For rows of `E`, whose model has one field per column, in column order.
    pub(crate) fn of<E: sea_orm::EntityTrait>() -> Self {
        use sea_orm::{IdenStatic, Iterable};
        Keys {
            entity: E::Column::iter().map(|c| c.as_str()).collect(),
            keys: std::cell::OnceCell::new(),
        }
    }

    /// `fields` is what the model's `Deserialize` passes to `deserialize_struct`. Indexes
    /// are used only when it is exactly the entity's column names in order: serde lists
    /// aliases there too and leaves skipped fields out, and either would shift positions
    /// away from field indexes; any such model is read by name, as before.
    pub(crate) fn get(&self, columns: &[Column], fields: &[&str]) -> &[Option<u64>] {
        self.keys.get_or_init(|| {
            if fields != self.entity.as_slice() {
                return Vec::new();
            }
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let at = match fields.get(i) {
                        Some(f) if *f == c.name => Some(i),
                        _ => fields.iter().position(|f| *f == c.name),
                    };
                    at.map(|p| p as u64)
                })
                .collect()
        })
    }
}

/// A row as a map from column name to value.
pub(crate) struct RowDe<'a, 'r> {
    pub(crate) row: &'a rusqlite::Row<'r>,
    pub(crate) columns: &'a [Column],
    pub(crate) keys: &'a Keys,
}

impl<'a> RowDe<'a, '_> {
    fn map(
        &self,
        keys: &'a [Option<u64>],
    ) -> ColumnMap<'a, impl FnMut(usize, &'a Column) -> Result<ValueDe<'a>, DeError>> {
        let row = self.row;
        ColumnMap {
            columns: self.columns,
            keys,
            next: 0,
            value: move |i, column: &'a Column| {
                let value = row
                    .get_ref(i)
                    .map_err(|e| DeError(format!("column {}: {e}", column.name)))?;
                Ok(ValueDe { value, column })
            },
        }
    }
}

impl<'de, 'a> de::Deserializer<'de> for RowDe<'a, '_> {
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

/// A row's columns as a serde map: keys are field indexes or column names (see [`Keys`];
/// an empty `keys` means names throughout), values come from `value` (given the column's
/// position), so each engine supplies only how it reads one value.
pub(crate) struct ColumnMap<'a, F> {
    pub(crate) columns: &'a [Column],
    pub(crate) keys: &'a [Option<u64>],
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
            Some(c) => match self.keys.get(self.next) {
                Some(Some(field)) => seed.deserialize((*field).into_deserializer()).map(Some),
                _ => seed
                    .deserialize(c.name.as_ref().into_deserializer())
                    .map(Some),
            },
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::entity::runtime::messages;
    use serde::de::DeserializeOwned;

    /// The field list a model's derived `Deserialize` hands to `deserialize_struct`.
    fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
        struct Capture;
        impl<'de> de::Deserializer<'de> for Capture {
            type Error = DeError;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
                Err(DeError("not a struct".into()))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, DeError> {
                Err(DeError(fields.join(",")))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let listed = T::deserialize(Capture).err().unwrap().0;
        Box::leak(
            listed
                .split(',')
                .map(|f| &*Box::leak(f.to_owned().into_boxed_str()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    }

    #[test]
    fn model_columns_are_keyed_by_field_index_and_unknown_ones_by_name() {
        let mut columns = super::super::value::entity_columns::<messages::Entity>();
        // `SELECT *` on a table with a column the model does not know, and two swapped.
        columns.swap(3, 4);
        columns.push(Column {
            name: "added_later".into(),
            kind: None,
            field: false,
        });
        let keys = Keys::of::<messages::Entity>();
        let got = keys.get(&columns, fields_of::<messages::Model>());
        let n = columns.len() - 1;
        let mut want: Vec<Option<u64>> = (0..n as u64).map(Some).collect();
        want.swap(3, 4);
        want.push(None);
        assert_eq!(got, want.as_slice());
    }

    #[test]
    fn a_model_whose_field_list_is_not_its_columns_is_read_by_name() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Aliased {
            id: i64,
            #[serde(alias = "tenant")]
            tenant_id: String,
        }
        let keys = Keys {
            entity: vec!["id", "tenant_id"],
            keys: std::cell::OnceCell::new(),
        };
        let columns = [
            Column {
                name: "id".into(),
                kind: Some(Kind::I64),
                field: true,
            },
            Column {
                name: "tenant_id".into(),
                kind: Some(Kind::Str),
                field: true,
            },
        ];
        assert!(keys.get(&columns, fields_of::<Aliased>()).is_empty());
    }
}
