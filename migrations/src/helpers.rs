//! Column and table shapes shared by every migration, so that the conventions
//! (id widths, UTC timestamps with database defaults, scope columns, composite
//! foreign keys, index names) are written down once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// Width of every textual identifier column (tenant, agent, key, instance ids).
pub const ID_LEN: u32 = 64;

/// A textual primary key.
pub fn id_pk(col: &'static str) -> ColumnDef {
    string_len(col, ID_LEN).primary_key().take()
}

/// A required reference to a textual id.
pub fn id_ref(col: &'static str) -> ColumnDef {
    string_len(col, ID_LEN)
}

/// An optional reference to a textual id.
pub fn id_ref_null(col: &'static str) -> ColumnDef {
    string_len_null(col, ID_LEN)
}

/// A UTC timestamp maintained by the database when a writer leaves it out.
pub fn ts_now(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone(col)
        .default(Expr::current_timestamp())
        .take()
}

/// An optional UTC timestamp.
pub fn ts_null(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

/// A JSON document column (jsonb on PostgreSQL, text on SQLite).
pub fn json_doc(col: &'static str) -> ColumnDef {
    json_binary(col)
}

/// An optional JSON document column.
pub fn json_doc_null(col: &'static str) -> ColumnDef {
    json_binary_null(col)
}

/// A boolean with a default.
pub fn flag(col: &'static str, default: bool) -> ColumnDef {
    boolean(col).default(default).take()
}

/// A 64-bit integer with a default.
pub fn count(col: &'static str, default: i64) -> ColumnDef {
    big_integer(col).default(default).take()
}

/// A text column with a CHECK that it holds one of `allowed`.
pub fn one_of(
    col: &'static str,
    len: u32,
    default: &'static str,
    allowed: &[&'static str],
) -> ColumnDef {
    string_len(col, len)
        .default(default)
        .check(Expr::col(col).is_in(allowed.iter().copied()))
        .take()
}

/// A table of agent-owned rows: `id`, `tenant_id`, `agent_id`, the given columns,
/// `created_at`, `updated_at`, and the composite foreign key to `agents(tenant_id, id)`
/// that makes a row pointing at another tenant's agent impossible and cascades deletes.
pub fn agent_table(name: &'static str, cols: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(name)
        .col(big_pk_auto("id"))
        .col(id_ref("tenant_id"))
        .col(id_ref("agent_id"));
    for mut c in cols {
        t.col(&mut c);
    }
    t.col(ts_now("created_at"))
        .col(ts_now("updated_at"))
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{name}_agent"))
                .from(name, ("tenant_id", "agent_id"))
                .to("agents", ("tenant_id", "id"))
                .on_delete(ForeignKeyAction::Cascade)
                .on_update(ForeignKeyAction::Cascade),
        );
    t.take()
}

/// A table of tenant-owned rows whose parent is another tenant-owned row:
/// the caller adds the foreign keys; this adds `tenant_id` and the timestamps.
pub fn tenant_table(
    name: &'static str,
    pk: ColumnDef,
    cols: Vec<ColumnDef>,
) -> TableCreateStatement {
    let mut t = Table::create();
    let mut pk = pk;
    t.table(name).col(&mut pk).col(id_ref("tenant_id"));
    for mut c in cols {
        t.col(&mut c);
    }
    t.col(ts_now("created_at")).col(ts_now("updated_at"));
    t.take()
}

fn index_name(prefix: &str, table: &str, cols: &[&'static str]) -> String {
    format!("{prefix}_{table}_{}", cols.join("_"))
}

/// A plain index.
pub fn idx(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(index_name("ix", table, cols)).table(table);
    for c in cols {
        i.col(*c);
    }
    i.take()
}

/// A unique index.
pub fn uniq(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = idx(table, cols);
    i.name(index_name("ux", table, cols)).unique();
    i.take()
}

/// A natural key unique per agent: `(tenant_id, agent_id, cols…)`.
pub fn uniq_per_agent(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut all = vec!["tenant_id", "agent_id"];
    all.extend_from_slice(cols);
    uniq(table, &all)
}

/// A lookup index inside one agent: `(tenant_id, agent_id, cols…)`.
pub fn idx_per_agent(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut all = vec!["tenant_id", "agent_id"];
    all.extend_from_slice(cols);
    idx(table, &all)
}

/// Creates the tables then the indexes, in order.
pub async fn create_all(
    m: &SchemaManager<'_>,
    tables: Vec<TableCreateStatement>,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    for t in tables {
        m.create_table(t).await?;
    }
    for i in indexes {
        m.create_index(i).await?;
    }
    Ok(())
}

/// Drops the named tables, in the order given (children first).
pub async fn drop_all(m: &SchemaManager<'_>, tables: &[&'static str]) -> Result<(), DbErr> {
    for t in tables {
        m.drop_table(Table::drop().table(*t).to_owned()).await?;
    }
    Ok(())
}

/// On PostgreSQL, gives every text column named `id` or `…_id` of `tables` (in the current
/// schema) the collation `collation` (`"C"` or `"default"`), one `ALTER TABLE` per table
/// so that each index is rebuilt once; nothing on other backends. Only the named tables
/// are touched: a shared schema may hold other programs' tables. A later migration that
/// adds identifier columns calls it with its own tables and `"C"`.
pub async fn set_identifier_collation(
    m: &SchemaManager<'_>,
    tables: &[&str],
    collation: &str,
) -> Result<(), DbErr> {
    if m.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    // Both are spliced into SQL: only the two collations this schema uses, and table
    // names made of lowercase letters, digits and underscores.
    if collation != "C" && collation != "default" {
        return Err(DbErr::Migration(format!(
            "unexpected collation {collation:?}"
        )));
    }
    if let Some(bad) = tables.iter().find(|t| {
        t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }) {
        return Err(DbErr::Migration(format!("unexpected table name {bad:?}")));
    }
    let list = tables
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        r#"DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.table_name,
           string_agg(format('ALTER COLUMN %I TYPE %s COLLATE "{collation}"', c.column_name,
             CASE WHEN c.character_maximum_length IS NULL THEN c.data_type
                  ELSE format('varchar(%s)', c.character_maximum_length) END),
             ', ' ORDER BY c.ordinal_position) AS alters
    FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema()
      AND t.table_type = 'BASE TABLE'
      AND c.table_name IN ({list})
      AND (c.column_name = 'id' OR right(c.column_name, 3) = '_id')
      AND c.data_type IN ('character varying', 'text')
    GROUP BY c.table_name
    ORDER BY c.table_name
  LOOP
    EXECUTE format('ALTER TABLE %I ', r.table_name) || r.alters;
  END LOOP;
END $$"#
    );
    m.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}
