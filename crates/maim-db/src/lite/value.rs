//! Values between sea-query and SQLite, stored exactly as the sqlx driver stores them, so
//! rows written by either path read back identically through the other.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable, Value};
use std::borrow::Cow;

/// Binds a sea-query value as sqlx-sqlite would: booleans as 0/1, date-times as RFC 3339
/// text with an explicit offset, JSON as its text.
pub(crate) struct Bind<'a>(pub(crate) &'a Value);

fn unsupported(what: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(format!("unsupported value type {what}").into())
}

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as Owned;
        let null = ToSqlOutput::Owned(Owned::Null);
        let int = |v: Option<i64>| v.map_or(ToSqlOutput::Owned(Owned::Null), |i| i.into());
        Ok(match self.0 {
            Value::Bool(v) => int(v.map(i64::from)),
            Value::TinyInt(v) => int(v.map(i64::from)),
            Value::SmallInt(v) => int(v.map(i64::from)),
            Value::Int(v) => int(v.map(i64::from)),
            Value::BigInt(v) => int(*v),
            Value::TinyUnsigned(v) => int(v.map(i64::from)),
            Value::SmallUnsigned(v) => int(v.map(i64::from)),
            Value::Unsigned(v) => int(v.map(i64::from)),
            Value::BigUnsigned(v) => match v {
                Some(u) => i64::try_from(*u)
                    .map_err(|_| unsupported("u64 above i64::MAX"))?
                    .into(),
                None => null,
            },
            Value::Float(v) => v.map_or(null, |f| f64::from(f).into()),
            Value::Double(v) => v.map_or(null, |f| f.into()),
            Value::String(v) => v.as_deref().map_or(null, |s| s.into()),
            Value::Char(v) => v.map_or(null, |c| c.to_string().into()),
            Value::Bytes(v) => v.as_deref().map_or(null, |b| b.into()),
            Value::Json(v) => match v {
                Some(j) => serde_json::to_string(j.as_ref())
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?
                    .into(),
                None => null,
            },
            Value::ChronoDateTimeUtc(v) => v.map_or(null, |t| {
                t.to_rfc3339_opts(SecondsFormat::AutoSi, false).into()
            }),
            Value::ChronoDateTime(v) => v.map_or(null, |t| t.format("%F %T%.f").to_string().into()),
            other => return Err(unsupported(&format!("{other:?}"))),
        })
    }
}

/// Converts a value to what SQLite stores, ahead of time and by move (strings are not
/// copied), so that the writer only binds. `last_time` memoizes the last date-time's text:
/// a batch stamps the same `created_at`/`updated_at` on every row.
pub(crate) fn encode(
    v: Value,
    last_time: &mut Option<(DateTime<Utc>, String)>,
) -> Result<rusqlite::types::Value, crate::DbError> {
    use rusqlite::types::Value as Owned;
    Ok(match v {
        Value::String(Some(s)) => Owned::Text(s),
        Value::ChronoDateTimeUtc(Some(t)) => match last_time {
            Some((prev, text)) if *prev == t => Owned::Text(text.clone()),
            _ => {
                let text = t.to_rfc3339_opts(SecondsFormat::AutoSi, false);
                *last_time = Some((t, text.clone()));
                Owned::Text(text)
            }
        },
        Value::Bytes(Some(b)) => Owned::Blob(b),
        other => Bind(&other)
            .to_sql()
            .map_err(|e| crate::DbError::invalid(e.to_string()))?
            .into_owned(),
    })
}

trait IntoOwned {
    fn into_owned(self) -> rusqlite::types::Value;
}

impl IntoOwned for ToSqlOutput<'_> {
    fn into_owned(self) -> rusqlite::types::Value {
        use rusqlite::types::Value as Owned;
        match self {
            ToSqlOutput::Borrowed(v) => match v {
                ValueRef::Null => Owned::Null,
                ValueRef::Integer(i) => Owned::Integer(i),
                ValueRef::Real(f) => Owned::Real(f),
                ValueRef::Text(t) => Owned::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Owned::Blob(b.to_vec()),
            },
            ToSqlOutput::Owned(v) => v,
            // Bind produces only the two forms above.
            _ => Owned::Null,
        }
    }
}

/// How a column's stored value becomes a sea-query value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str,
    I32,
    I64,
    F64,
    F32,
    Bool,
    Json,
    DateTimeUtc,
    Bytes,
}

impl Kind {
    pub(crate) fn of(t: &ColumnType) -> Option<Kind> {
        Some(match t {
            ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Kind::Str,
            ColumnType::TinyInteger | ColumnType::SmallInteger | ColumnType::Integer => Kind::I32,
            ColumnType::BigInteger => Kind::I64,
            ColumnType::Double => Kind::F64,
            ColumnType::Float => Kind::F32,
            ColumnType::Boolean => Kind::Bool,
            ColumnType::Json | ColumnType::JsonBinary => Kind::Json,
            ColumnType::TimestampWithTimeZone => Kind::DateTimeUtc,
            ColumnType::Blob | ColumnType::VarBinary(_) | ColumnType::Binary(_) => Kind::Bytes,
            _ => return None,
        })
    }
}

/// The columns of `E` in declaration order.
#[cfg(test)]
pub(crate) fn entity_columns<E: EntityTrait>() -> Vec<super::de::Column> {
    E::Column::iter()
        .map(|c| super::de::Column {
            name: Cow::Borrowed(c.as_str()),
            kind: Kind::of(c.def().get_column_type()),
            field: true,
        })
        .collect()
}

/// Describes a statement's result columns for [`super::de`]: each one's name and, when it
/// is a column of `E`, how its values are stored.
pub(crate) fn columns<E: EntityTrait>(names: &[&str]) -> Vec<super::de::Column> {
    let cols: Vec<E::Column> = E::Column::iter().collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // `SELECT *` lists the table's columns, usually in declaration order.
            let col = match cols.get(i) {
                Some(c) if c.as_str() == *name => Some(*c),
                _ => cols.iter().find(|c| c.as_str() == *name).copied(),
            };
            match col {
                Some(c) => super::de::Column {
                    name: Cow::Borrowed(c.as_str()),
                    kind: Kind::of(c.def().get_column_type()),
                    field: true,
                },
                // Not a field of the model (a newer column): serde skips it.
                None => super::de::Column {
                    name: Cow::Owned((*name).to_owned()),
                    kind: None,
                    field: false,
                },
            }
        })
        .collect()
}

/// Date-times as sqlx-sqlite reads them: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` (what
/// `CURRENT_TIMESTAMP` writes, taken as UTC), or Unix seconds.
pub(crate) fn datetime(v: ValueRef<'_>) -> Option<DateTime<Utc>> {
    match v {
        ValueRef::Integer(secs) => Utc.timestamp_opt(secs, 0).single(),
        ValueRef::Text(_) => {
            let ValueRef::Text(b) = v else { return None };
            let s = std::str::from_utf8(b).ok()?;
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            let s = s.trim_end_matches('Z');
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
                .ok()
                .map(|n| Utc.from_utc_datetime(&n))
        }
        _ => None,
    }
}
