//! The scoped repository: every read, insert, update, upsert, delete and count on
//! tenant-owned rows goes through [`ScopedTable`], which ANDs the scope predicate into
//! every statement and stamps (or checks) the scope columns on every write.
//!
//! Callers filter with [`Filter`], a tree of column comparisons. It cannot carry raw SQL,
//! so a caller condition can never break out of the parentheses around it and undo the
//! scope (the original's `orwhere` and raw-SQL holes).

use crate::connect::{Backend, Db};
use crate::error::{DbError, DbResult};
use crate::lite::Cost;
use crate::lite::exec::{self, Sql};
use crate::scope::{AgentScope, TenantScope};
use sea_orm::sea_query::OnConflict;
use sea_orm::sea_query::{
    Asterisk, Expr, PostgresQueryBuilder, Query as SeaQuery, SqliteQueryBuilder,
};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, Condition, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, Order, PaginatorTrait, QueryFilter, Value,
};
use sea_orm::{ConnectionTrait, DbBackend, QueryTrait};
use serde::Deserialize as _;
use std::fmt;
use std::fmt::Write as _;
use std::marker::PhantomData;

/// What a scope pins down: always a tenant, and for agent scopes an agent.
pub trait ScopeKey: Send + Sync + fmt::Debug {
    /// The tenant the scope acts for.
    fn tenant_id(&self) -> &str;
    /// The agent the scope acts for, if it is an agent scope.
    fn agent_id(&self) -> Option<&str>;
}

impl ScopeKey for TenantScope {
    fn tenant_id(&self) -> &str {
        TenantScope::tenant_id(self)
    }
    fn agent_id(&self) -> Option<&str> {
        None
    }
}

impl ScopeKey for AgentScope {
    fn tenant_id(&self) -> &str {
        AgentScope::tenant_id(self)
    }
    fn agent_id(&self) -> Option<&str> {
        Some(AgentScope::agent_id(self))
    }
}

/// An entity whose rows are owned by a scope. Implemented for every tenant-owned table;
/// a test fails if a table exists that is neither scoped nor on the system allow-list.
pub trait Scoped: EntityTrait {
    /// The scope that owns a row: [`AgentScope`] for agent data, [`TenantScope`] for
    /// tenant-level data such as launcher instances.
    type Scope: ScopeKey;
    /// The natural key, unique within one scope (upserts target it). Empty when the
    /// table has none.
    const NATURAL_KEY: &'static [&'static str];
}

fn column<E: EntityTrait>(name: &str) -> Option<E::Column> {
    E::Column::iter().find(|c| c.as_str() == name)
}

fn required_column<E: EntityTrait>(name: &str) -> DbResult<E::Column> {
    column::<E>(name).ok_or_else(|| {
        DbError::Database(format!(
            "table {} has no column {name}",
            E::default().table_name()
        ))
    })
}

/// Comparison operators of a [`Filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// A condition on columns of `E`, ANDed with the scope. Build with the constructors.
pub enum Filter<E: EntityTrait> {
    /// Every row of the scope.
    All,
    /// `column <op> value`.
    Compare(E::Column, Cmp, Value),
    /// `column IN (values)`.
    In(E::Column, Vec<Value>),
    /// `column IS NULL` (`true`) or `IS NOT NULL` (`false`).
    Null(E::Column, bool),
    /// `column LIKE pattern`.
    Like(E::Column, String),
    /// All of these.
    And(Vec<Filter<E>>),
    /// Any of these.
    Or(Vec<Filter<E>>),
    /// Not this.
    Not(Box<Filter<E>>),
}

impl<E: EntityTrait> fmt::Debug for Filter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => write!(f, "All"),
            Filter::Compare(c, op, v) => write!(f, "{} {op:?} {v:?}", c.as_str()),
            Filter::In(c, v) => write!(f, "{} IN {v:?}", c.as_str()),
            Filter::Null(c, n) => write!(f, "{} null={n}", c.as_str()),
            Filter::Like(c, p) => write!(f, "{} LIKE {p:?}", c.as_str()),
            Filter::And(v) => f.debug_tuple("And").field(v).finish(),
            Filter::Or(v) => f.debug_tuple("Or").field(v).finish(),
            Filter::Not(x) => f.debug_tuple("Not").field(x).finish(),
        }
    }
}

// Manual impls: a derive would demand `E: Clone`, which entities need not be.
impl<E: EntityTrait> Clone for Filter<E> {
    fn clone(&self) -> Self {
        match self {
            Filter::All => Filter::All,
            Filter::Compare(c, op, v) => Filter::Compare(*c, *op, v.clone()),
            Filter::In(c, v) => Filter::In(*c, v.clone()),
            Filter::Null(c, n) => Filter::Null(*c, *n),
            Filter::Like(c, p) => Filter::Like(*c, p.clone()),
            Filter::And(v) => Filter::And(v.clone()),
            Filter::Or(v) => Filter::Or(v.clone()),
            Filter::Not(f) => Filter::Not(f.clone()),
        }
    }
}

impl<E: EntityTrait> Clone for Query<E> {
    fn clone(&self) -> Self {
        Self {
            filter: self.filter.clone(),
            order: self.order.clone(),
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl<E: EntityTrait> Filter<E> {
    /// `column = value`
    pub fn eq(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Eq, v.into())
    }
    /// `column <> value`
    pub fn ne(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Ne, v.into())
    }
    /// `column > value`
    pub fn gt(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Gt, v.into())
    }
    /// `column >= value`
    pub fn gte(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Gte, v.into())
    }
    /// `column < value`
    pub fn lt(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Lt, v.into())
    }
    /// `column <= value`
    pub fn lte(col: E::Column, v: impl Into<Value>) -> Self {
        Filter::Compare(col, Cmp::Lte, v.into())
    }
    /// `column IN (values)`
    pub fn is_in<V: Into<Value>>(col: E::Column, vs: impl IntoIterator<Item = V>) -> Self {
        Filter::In(col, vs.into_iter().map(Into::into).collect())
    }
    /// `column IS NULL`
    pub fn is_null(col: E::Column) -> Self {
        Filter::Null(col, true)
    }
    /// `column IS NOT NULL`
    pub fn is_not_null(col: E::Column) -> Self {
        Filter::Null(col, false)
    }
    /// `column LIKE pattern`
    pub fn like(col: E::Column, pattern: impl Into<String>) -> Self {
        Filter::Like(col, pattern.into())
    }
    /// `self AND other`
    pub fn and(self, other: Filter<E>) -> Self {
        Filter::And(vec![self, other])
    }
    /// `self OR other`
    pub fn or(self, other: Filter<E>) -> Self {
        Filter::Or(vec![self, other])
    }

    fn condition(&self) -> Condition {
        match self {
            Filter::All => Condition::all(),
            Filter::Compare(c, op, v) => {
                let v = v.clone();
                let e = match op {
                    Cmp::Eq => c.eq(v),
                    Cmp::Ne => c.ne(v),
                    Cmp::Gt => c.gt(v),
                    Cmp::Gte => c.gte(v),
                    Cmp::Lt => c.lt(v),
                    Cmp::Lte => c.lte(v),
                };
                Condition::all().add(e)
            }
            Filter::In(c, vs) => Condition::all().add(c.is_in(vs.clone())),
            Filter::Null(c, true) => Condition::all().add(c.is_null()),
            Filter::Null(c, false) => Condition::all().add(c.is_not_null()),
            Filter::Like(c, p) => Condition::all().add(c.like(p.as_str())),
            Filter::And(v) => v
                .iter()
                .fold(Condition::all(), |acc, f| acc.add(f.condition())),
            Filter::Or(v) => v
                .iter()
                .fold(Condition::any(), |acc, f| acc.add(f.condition())),
            Filter::Not(f) => f.condition().not(),
        }
    }
}

/// A scoped read: filter, order, limit and offset.
pub struct Query<E: EntityTrait> {
    filter: Filter<E>,
    order: Vec<(E::Column, Order)>,
    limit: Option<u64>,
    offset: Option<u64>,
}

impl<E: EntityTrait> fmt::Debug for Query<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("filter", &self.filter)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<E: EntityTrait> Default for Query<E> {
    fn default() -> Self {
        Self {
            filter: Filter::All,
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

impl<E: EntityTrait> Query<E> {
    /// Every row of the scope.
    pub fn new() -> Self {
        Self::default()
    }
    /// Rows matching `filter` (replaces any earlier filter).
    pub fn filter(mut self, filter: Filter<E>) -> Self {
        self.filter = filter;
        self
    }
    /// Ascending order by `col` (after any earlier order).
    pub fn asc(mut self, col: E::Column) -> Self {
        self.order.push((col, Order::Asc));
        self
    }
    /// Descending order by `col` (after any earlier order).
    pub fn desc(mut self, col: E::Column) -> Self {
        self.order.push((col, Order::Desc));
        self
    }
    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
    /// Skip the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }
}

/// Scoped access to one table. Get it with [`Db::table`].
pub struct ScopedTable<'a, E> {
    db: &'a Db,
    _e: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> fmt::Debug for ScopedTable<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedTable({})", E::default().table_name())
    }
}

impl Db {
    /// Scoped access to the table of entity `E`.
    pub fn table<E: Scoped>(&self) -> ScopedTable<'_, E> {
        ScopedTable {
            db: self,
            _e: PhantomData,
        }
    }
}

/// Bound parameters one multi-row INSERT may carry: SQLite allows 32,766 per statement,
/// PostgreSQL 65,535 (its wire format counts them in 16 bits).
fn max_params(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 32_766,
        Backend::Postgres => 65_535,
    }
}

/// Reads bounded to this many rows run on the calling task on SQLite (see `lite`).
const SHORT_READ_ROWS: u64 = 200;

impl<E> ScopedTable<'_, E>
where
    E: Scoped,
    E::Model: IntoActiveModel<E::ActiveModel> + serde::de::DeserializeOwned + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    fn scope_condition(scope: &E::Scope) -> DbResult<Condition> {
        let mut c = Condition::all()
            .add(required_column::<E>("tenant_id")?.eq(scope.tenant_id().to_owned()));
        if let Some(agent) = scope.agent_id() {
            c = c.add(required_column::<E>("agent_id")?.eq(agent.to_owned()));
        }
        Ok(c)
    }

    fn scope_values(scope: &E::Scope) -> DbResult<Vec<(E::Column, Value)>> {
        let mut v = vec![(
            required_column::<E>("tenant_id")?,
            Value::from(scope.tenant_id().to_owned()),
        )];
        if let Some(agent) = scope.agent_id() {
            v.push((
                required_column::<E>("agent_id")?,
                Value::from(agent.to_owned()),
            ));
        }
        Ok(v)
    }

    /// Refuses a model whose scope columns name another scope; leaves them untouched
    /// when they are unset or agree.
    fn check_scope(
        scope: &E::Scope,
        values: &[(E::Column, Value)],
        am: &E::ActiveModel,
    ) -> DbResult<()> {
        for (col, want) in values {
            let got = match am.get(*col) {
                ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v,
                ActiveValue::NotSet => continue,
            };
            if got != *want {
                return Err(DbError::ScopeViolation(format!(
                    "{}.{} is {got:?} but the scope is {scope:?}",
                    E::default().table_name(),
                    col.as_str()
                )));
            }
        }
        Ok(())
    }

    /// What every row of one insert call gets stamped with, looked up once per call.
    fn insert_stamp(scope: &E::Scope) -> DbResult<InsertStamp<E::Column>> {
        Ok(InsertStamp {
            scope: Self::scope_values(scope)?,
            times: ["created_at", "updated_at"]
                .into_iter()
                .filter_map(column::<E>)
                .collect(),
            now: Value::from(chrono::Utc::now()),
        })
    }

    fn stamp_insert(
        scope: &E::Scope,
        stamp: &InsertStamp<E::Column>,
        am: &mut E::ActiveModel,
    ) -> DbResult<()> {
        Self::check_scope(scope, &stamp.scope, am)?;
        for (col, v) in &stamp.scope {
            am.set(*col, v.clone());
        }
        for col in &stamp.times {
            if !am.get(*col).is_set() {
                am.set(*col, stamp.now.clone());
            }
        }
        Ok(())
    }

    /// Prepares a model for an UPDATE: the scope columns and the primary key are never
    /// rewritten, and `updated_at` is refreshed on every update path.
    fn stamp_update(scope: &E::Scope, am: &mut E::ActiveModel) -> DbResult<()> {
        let values = Self::scope_values(scope)?;
        Self::check_scope(scope, &values, am)?;
        for (col, _) in values {
            am.not_set(col);
        }
        for name in ["id", "created_at"] {
            if let Some(col) = column::<E>(name) {
                am.not_set(col);
            }
        }
        if let Some(col) = column::<E>("updated_at") {
            am.set(col, Value::from(chrono::Utc::now()));
        }
        Ok(())
    }

    /// Inserts one row in the scope and returns it. Scope columns left unset are filled
    /// in; set to another scope, the insert is refused.
    pub async fn insert(&self, scope: &E::Scope, mut am: E::ActiveModel) -> DbResult<E::Model> {
        Self::stamp_insert(scope, &Self::insert_stamp(scope)?, &mut am)?;
        if let Some(lite) = &self.db.lite {
            let (cols, values) = exec::take_columns::<E>(am);
            let sql = Sql {
                text: exec::insert_sql::<E>(&cols, true),
                values,
            };
            return lite
                .write(Cost::Short, move |c| {
                    first::<E>(exec::models::<E>(c, &sql, 1)?)
                })
                .await;
        }
        let mut q = E::insert(am).into_query();
        q.returning_all();
        first::<E>(self.pool_models(self.db.db_backend().build(&q)).await?)
    }

    /// Inserts many rows in one transaction (all or none) and returns how many.
    pub async fn insert_many(&self, scope: &E::Scope, rows: Vec<E::ActiveModel>) -> DbResult<u64> {
        let n = rows.len();
        if n == 0 {
            return Ok(0);
        }
        let stamp = Self::insert_stamp(scope)?;
        let mut stamped = Vec::with_capacity(n);
        for mut am in rows {
            Self::stamp_insert(scope, &stamp, &mut am)?;
            stamped.push(am);
        }
        if let Some(lite) = &self.db.lite {
            // One prepared single-row INSERT per shape, stepped per row: SQLite parses it
            // once, where a multi-row VALUES list would be parsed per batch.
            let groups = exec::group_rows::<E>(stamped)?;
            return lite
                .write(Cost::Long, move |c| exec::insert_groups(c, &groups))
                .await;
        }
        if let Some(pool) = self.db.pg_pool()
            && crate::pg::supports::<E>()
        {
            let groups = crate::pg::group_rows::<E>(stamped)?;
            return crate::pg::insert_groups(pool, groups).await;
        }
        let per_stmt = (max_params(self.db.backend()) / E::Column::iter().count().max(1)).max(1);
        let txn = self.db.begin_write().await?;
        let mut it = stamped.into_iter().peekable();
        while it.peek().is_some() {
            let chunk: Vec<_> = it.by_ref().take(per_stmt).collect();
            E::insert_many(chunk).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(n as u64)
    }

    /// Runs a read of whole rows on whichever engine serves this database.
    ///
    /// SQLite gets `SELECT *` (decoded by column name) and LIMIT and OFFSET as literals:
    /// bound as parameters, they make it re-prepare the statement on every execution (its
    /// planner looks at their values), which cost more than the read itself.
    async fn read_models(
        &self,
        cond: Condition,
        order: &[(E::Column, Order)],
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> DbResult<Vec<E::Model>> {
        match &self.db.lite {
            Some(lite) => {
                let sql = Self::select_sql(cond, order, limit, offset, DbBackend::Sqlite)?;
                let (cost, capacity) = match limit {
                    Some(l) if l <= SHORT_READ_ROWS => (Cost::Short, l as usize),
                    _ => (Cost::Long, 0),
                };
                lite.read(cost, move |c| exec::models::<E>(c, &sql, capacity))
                    .await
            }
            None => {
                let backend = self.db.db_backend();
                let sql = Self::select_sql(cond, order, limit, offset, backend)?;
                self.pool_models(sea_orm::Statement::from_sql_and_values(
                    backend, sql.text, sql.values,
                ))
                .await
            }
        }
    }

    /// Runs a statement returning whole rows on the sqlx pool and decodes them by the
    /// names the result carries (see `decode.rs`): reads, and writes with `RETURNING *`.
    async fn pool_models(&self, stmt: sea_orm::Statement) -> DbResult<Vec<E::Model>> {
        let rows = self.db.conn.query_all_raw(stmt).await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names = first.column_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let columns = crate::lite::value::columns::<E>(&names);
        let keys = crate::lite::de::Keys::of::<E>();
        let checked = crate::decode::TypesChecked::default();
        rows.iter()
            .map(|row| {
                E::Model::deserialize(crate::decode::RowDe {
                    row,
                    columns: &columns,
                    keys: &keys,
                    checked: &checked,
                })
                .map_err(DbError::from)
            })
            .collect()
    }

    /// The text of a whole-row read (see [`Self::read_models`]): `SELECT *`, decoded by
    /// the names the result carries (listing 47 columns cost more to build than to run).
    fn select_sql(
        cond: Condition,
        order: &[(E::Column, Order)],
        limit: Option<u64>,
        offset: Option<u64>,
        backend: DbBackend,
    ) -> DbResult<Sql> {
        let mut q = SeaQuery::select();
        q.column(Asterisk).from(E::default()).cond_where(cond);
        for (col, ord) in order {
            q.order_by(*col, ord.clone());
        }
        let postgres = backend == DbBackend::Postgres;
        let mut sql = Sql::from(if postgres {
            q.build(PostgresQueryBuilder)
        } else {
            q.build(SqliteQueryBuilder)
        });
        match (limit, offset) {
            (Some(l), Some(o)) => write!(sql.text, " LIMIT {l} OFFSET {o}"),
            (Some(l), None) => write!(sql.text, " LIMIT {l}"),
            (None, Some(o)) if postgres => write!(sql.text, " OFFSET {o}"),
            (None, Some(o)) => write!(sql.text, " LIMIT -1 OFFSET {o}"),
            (None, None) => Ok(()),
        }
        .map_err(|e| DbError::Database(e.to_string()))?;
        Ok(sql)
    }

    /// The row with primary key `id`, if it is in the scope.
    pub async fn get(&self, scope: &E::Scope, id: impl Into<Value>) -> DbResult<E::Model> {
        let pk = required_column::<E>("id")?;
        let cond = Self::scope_condition(scope)?.add(pk.eq(id.into()));
        self.read_models(cond, &[], Some(1), None)
            .await?
            .pop()
            .ok_or(DbError::NotFound {
                entity: table_entity::<E>(),
            })
    }

    /// The first row matching `filter` in the scope, if any.
    pub async fn find_one(
        &self,
        scope: &E::Scope,
        filter: Filter<E>,
    ) -> DbResult<Option<E::Model>> {
        let cond = Self::scope_condition(scope)?.add(filter.condition());
        Ok(self.read_models(cond, &[], Some(1), None).await?.pop())
    }

    /// The rows of the scope matching `query`.
    pub async fn find(&self, scope: &E::Scope, query: Query<E>) -> DbResult<Vec<E::Model>> {
        let cond = Self::scope_condition(scope)?.add(query.filter.condition());
        self.read_models(cond, &query.order, query.limit, query.offset)
            .await
    }

    /// How many rows of the scope match `filter`.
    pub async fn count(&self, scope: &E::Scope, filter: Filter<E>) -> DbResult<u64> {
        let select = E::find()
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition());
        match &self.db.lite {
            Some(lite) => {
                let mut q = select.into_query();
                q.clear_selects().expr(Expr::cust("COUNT(*)"));
                let sql = Sql::from(q.build(SqliteQueryBuilder));
                let n = lite
                    .read(Cost::Long, move |c| exec::scalar(c, &sql))
                    .await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }
            None => Ok(select.count(&self.db.conn).await?),
        }
    }

    /// Updates the columns set in `am` on the row `id` of the scope and returns the row.
    /// A row outside the scope is [`DbError::NotFound`], exactly like a missing one.
    pub async fn update(
        &self,
        scope: &E::Scope,
        id: impl Into<Value>,
        mut am: E::ActiveModel,
    ) -> DbResult<E::Model> {
        Self::stamp_update(scope, &mut am)?;
        let pk = required_column::<E>("id")?;
        let update = E::update_many()
            .set(am)
            .filter(Self::scope_condition(scope)?)
            .filter(pk.eq(id.into()));
        let mut rows = match &self.db.lite {
            Some(lite) => {
                let mut q = update.into_query();
                q.returning_all();
                let sql = Sql::from(q.build(SqliteQueryBuilder));
                lite.write(Cost::Short, move |c| exec::models::<E>(c, &sql, 1))
                    .await?
            }
            None => {
                let mut q = update.into_query();
                q.returning_all();
                self.pool_models(self.db.db_backend().build(&q)).await?
            }
        };
        rows.pop().ok_or(DbError::NotFound {
            entity: table_entity::<E>(),
        })
    }

    /// Updates the columns set in `am` on every row of the scope matching `filter`;
    /// returns how many rows changed.
    pub async fn update_where(
        &self,
        scope: &E::Scope,
        filter: Filter<E>,
        mut am: E::ActiveModel,
    ) -> DbResult<u64> {
        Self::stamp_update(scope, &mut am)?;
        let update = E::update_many()
            .set(am)
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition());
        match &self.db.lite {
            Some(lite) => {
                let sql = Sql::from(update.build(DbBackend::Sqlite));
                lite.write(Cost::Long, move |c| exec::execute(c, &sql))
                    .await
            }
            None => Ok(update.exec(&self.db.conn).await?.rows_affected),
        }
    }

    /// Inserts the row, or updates the columns it sets when a row with the same natural
    /// key exists in the same scope. The conflict target includes the scope columns, so an
    /// upsert can never take over another scope's row.
    pub async fn upsert(&self, scope: &E::Scope, mut am: E::ActiveModel) -> DbResult<E::Model> {
        if E::NATURAL_KEY.is_empty() {
            return Err(DbError::invalid(format!(
                "table {} has no natural key to upsert on",
                E::default().table_name()
            )));
        }
        Self::stamp_insert(scope, &Self::insert_stamp(scope)?, &mut am)?;
        let mut target: Vec<E::Column> = Self::scope_values(scope)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        for k in E::NATURAL_KEY {
            target.push(required_column::<E>(k)?);
        }
        let fixed: Vec<&str> = ["id", "tenant_id", "agent_id", "created_at"]
            .into_iter()
            .chain(E::NATURAL_KEY.iter().copied())
            .collect();
        let update_cols: Vec<E::Column> = E::Column::iter()
            .filter(|c| !fixed.contains(&c.as_str()) && am.get(*c).is_set())
            .collect();
        let on_conflict = OnConflict::columns(target)
            .update_columns(update_cols)
            .to_owned();
        let insert = E::insert(am).on_conflict(on_conflict);
        match &self.db.lite {
            Some(lite) => {
                let mut q = insert.into_query();
                q.returning_all();
                let sql = Sql::from(q.build(SqliteQueryBuilder));
                lite.write(Cost::Short, move |c| {
                    first::<E>(exec::models::<E>(c, &sql, 1)?)
                })
                .await
            }
            None => {
                let mut q = insert.into_query();
                q.returning_all();
                first::<E>(self.pool_models(self.db.db_backend().build(&q)).await?)
            }
        }
    }

    /// Runs a DELETE on whichever engine serves this database; returns rows deleted.
    async fn run_delete(&self, delete: sea_orm::DeleteMany<E>, cost: Cost) -> DbResult<u64> {
        match &self.db.lite {
            Some(lite) => {
                let sql = Sql::from(delete.build(DbBackend::Sqlite));
                lite.write(cost, move |c| exec::execute(c, &sql)).await
            }
            None => Ok(delete.exec(&self.db.conn).await?.rows_affected),
        }
    }

    /// Deletes the row `id` if it is in the scope; returns whether a row was deleted.
    pub async fn delete(&self, scope: &E::Scope, id: impl Into<Value>) -> DbResult<bool> {
        let pk = required_column::<E>("id")?;
        let delete = E::delete_many()
            .filter(Self::scope_condition(scope)?)
            .filter(pk.eq(id.into()));
        Ok(self.run_delete(delete, Cost::Short).await? > 0)
    }

    /// Deletes every row of the scope matching `filter`; returns how many.
    pub async fn delete_where(&self, scope: &E::Scope, filter: Filter<E>) -> DbResult<u64> {
        let delete = E::delete_many()
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition());
        self.run_delete(delete, Cost::Long).await
    }
}

/// The one row a single-row write returned.
fn first<E: EntityTrait>(mut rows: Vec<E::Model>) -> DbResult<E::Model> {
    rows.pop().ok_or(DbError::NotFound {
        entity: table_entity::<E>(),
    })
}

/// The scope columns and timestamps an insert call stamps on its rows.
struct InsertStamp<C> {
    scope: Vec<(C, Value)>,
    times: Vec<C>,
    now: Value,
}

fn table_entity<E: EntityTrait>() -> &'static str {
    // Table names are 'static in every entity this crate defines.
    E::default().table_name()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
    use super::*;
    use crate::entity::runtime::messages;
    use crate::repo::{NewAgent, NewTenant};
    use crate::{DbOptions, SystemScope, connect, sqlite_url};

    /// SQLite re-prepares a statement whenever a parameter its planner looked at is
    /// rebound (LIMIT is one); the hot read must run as one cached statement instead.
    #[tokio::test]
    async fn the_latest_messages_read_is_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&sqlite_url(&dir.path().join("m.db")), &DbOptions::default())
            .await
            .unwrap();
        let sys = SystemScope::new("test");
        db.migrate(&sys).await.unwrap();
        let t = db
            .tenants()
            .create(
                &sys,
                NewTenant {
                    tenant_name: "t".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let ts = TenantScope::new(t.id).unwrap();
        let a = db
            .agents()
            .create(
                &ts,
                NewAgent {
                    name: "a".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let scope = ts.agent(a.id).unwrap();
        let table = db.table::<messages::Entity>();
        let rows = (0..30)
            .map(|i| messages::ActiveModel {
                message_id: ActiveValue::Set(format!("m{i}")),
                time: ActiveValue::Set(f64::from(i)),
                chat_id: ActiveValue::Set("c".into()),
                chat_info_stream_id: ActiveValue::Set("c".into()),
                chat_info_platform: ActiveValue::Set("qq".into()),
                chat_info_user_platform: ActiveValue::Set("qq".into()),
                chat_info_user_id: ActiveValue::Set("1".into()),
                chat_info_user_nickname: ActiveValue::Set("n".into()),
                chat_info_create_time: ActiveValue::Set(0.0),
                chat_info_last_active_time: ActiveValue::Set(0.0),
                ..Default::default()
            })
            .collect();
        table.insert_many(&scope, rows).await.unwrap();
        let latest = || {
            Query::new()
                .filter(Filter::eq(messages::Column::ChatId, "c"))
                .desc(messages::Column::Time)
                .limit(20)
        };
        for round in 0..5 {
            let got = table.find(&scope, latest()).await.unwrap();
            assert_eq!(got.len(), 20, "round {round}");
            assert_eq!(got[0].time, 29.0);
        }

        let q = latest();
        let cond = ScopedTable::<messages::Entity>::scope_condition(&scope)
            .unwrap()
            .add(q.filter.condition());
        let sql = ScopedTable::<messages::Entity>::select_sql(
            cond,
            &q.order,
            q.limit,
            q.offset,
            DbBackend::Sqlite,
        )
        .unwrap();
        let lite = db.lite.as_ref().expect("a SQLite file runs on the engine");
        let reader = lite.checkout().unwrap();
        let stmt = reader.prepare_cached(&sql.text).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::Run), 5);
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
