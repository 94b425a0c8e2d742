//! The scoped repository: every read, insert, update, upsert, delete and count on
//! tenant-owned rows goes through [`ScopedTable`], which ANDs the scope predicate into
//! every statement and stamps (or checks) the scope columns on every write.
//!
//! Callers filter with [`Filter`], a tree of column comparisons. It cannot carry raw SQL,
//! so a caller condition can never break out of the parentheses around it and undo the
//! scope (the original's `orwhere` and raw-SQL holes).

use crate::connect::Db;
use crate::error::{DbError, DbResult};
use crate::scope::{AgentScope, TenantScope};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, Condition, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, Value,
};
use std::fmt;
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

/// SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535; batches are
/// cut so that one statement stays under the smaller bound.
const MAX_PARAMS: usize = 30_000;

impl<E> ScopedTable<'_, E>
where
    E: Scoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
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
    fn check_scope(scope: &E::Scope, am: &E::ActiveModel) -> DbResult<()> {
        for (col, want) in Self::scope_values(scope)? {
            let got = match am.get(col) {
                ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v,
                ActiveValue::NotSet => continue,
            };
            if got != want {
                return Err(DbError::ScopeViolation(format!(
                    "{}.{} is {got:?} but the scope is {scope:?}",
                    E::default().table_name(),
                    col.as_str()
                )));
            }
        }
        Ok(())
    }

    fn stamp_insert(scope: &E::Scope, am: &mut E::ActiveModel) -> DbResult<()> {
        Self::check_scope(scope, am)?;
        for (col, v) in Self::scope_values(scope)? {
            am.set(col, v);
        }
        let now = Value::from(chrono::Utc::now());
        for name in ["created_at", "updated_at"] {
            if let Some(col) = column::<E>(name)
                && !am.get(col).is_set()
            {
                am.set(col, now.clone());
            }
        }
        Ok(())
    }

    /// Prepares a model for an UPDATE: the scope columns and the primary key are never
    /// rewritten, and `updated_at` is refreshed on every update path.
    fn stamp_update(scope: &E::Scope, am: &mut E::ActiveModel) -> DbResult<()> {
        Self::check_scope(scope, am)?;
        for (col, _) in Self::scope_values(scope)? {
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
        Self::stamp_insert(scope, &mut am)?;
        Ok(E::insert(am).exec_with_returning(&self.db.conn).await?)
    }

    /// Inserts many rows in one transaction (all or none) and returns how many.
    pub async fn insert_many(&self, scope: &E::Scope, rows: Vec<E::ActiveModel>) -> DbResult<u64> {
        let n = rows.len();
        if n == 0 {
            return Ok(0);
        }
        let mut stamped = Vec::with_capacity(n);
        for mut am in rows {
            Self::stamp_insert(scope, &mut am)?;
            stamped.push(am);
        }
        let per_stmt = (MAX_PARAMS / E::Column::iter().count().max(1)).max(1);
        let txn = self.db.conn.begin().await?;
        let mut it = stamped.into_iter().peekable();
        while it.peek().is_some() {
            let chunk: Vec<_> = it.by_ref().take(per_stmt).collect();
            E::insert_many(chunk).exec_without_returning(&txn).await?;
        }
        txn.commit().await?;
        Ok(n as u64)
    }

    /// The row with primary key `id`, if it is in the scope.
    pub async fn get(&self, scope: &E::Scope, id: impl Into<Value>) -> DbResult<E::Model> {
        let pk = required_column::<E>("id")?;
        E::find()
            .filter(Self::scope_condition(scope)?)
            .filter(pk.eq(id.into()))
            .one(&self.db.conn)
            .await?
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
        Ok(E::find()
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition())
            .one(&self.db.conn)
            .await?)
    }

    /// The rows of the scope matching `query`.
    pub async fn find(&self, scope: &E::Scope, query: Query<E>) -> DbResult<Vec<E::Model>> {
        Ok(Self::select(scope, &query)?.all(&self.db.conn).await?)
    }

    fn select(scope: &E::Scope, query: &Query<E>) -> DbResult<sea_orm::Select<E>> {
        let mut q = E::find()
            .filter(Self::scope_condition(scope)?)
            .filter(query.filter.condition());
        for (col, ord) in &query.order {
            q = q.order_by(*col, ord.clone());
        }
        if let Some(l) = query.limit {
            q = q.limit(l);
        }
        if let Some(o) = query.offset {
            q = q.offset(o);
        }
        Ok(q)
    }

    /// How many rows of the scope match `filter`.
    pub async fn count(&self, scope: &E::Scope, filter: Filter<E>) -> DbResult<u64> {
        Ok(E::find()
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition())
            .count(&self.db.conn)
            .await?)
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
        let mut rows = E::update_many()
            .set(am)
            .filter(Self::scope_condition(scope)?)
            .filter(pk.eq(id.into()))
            .exec_with_returning(&self.db.conn)
            .await?;
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
        let res = E::update_many()
            .set(am)
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition())
            .exec(&self.db.conn)
            .await?;
        Ok(res.rows_affected)
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
        Self::stamp_insert(scope, &mut am)?;
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
        Ok(E::insert(am)
            .on_conflict(on_conflict)
            .exec_with_returning(&self.db.conn)
            .await?)
    }

    /// Deletes the row `id` if it is in the scope; returns whether a row was deleted.
    pub async fn delete(&self, scope: &E::Scope, id: impl Into<Value>) -> DbResult<bool> {
        let pk = required_column::<E>("id")?;
        let res = E::delete_many()
            .filter(Self::scope_condition(scope)?)
            .filter(pk.eq(id.into()))
            .exec(&self.db.conn)
            .await?;
        Ok(res.rows_affected > 0)
    }

    /// Deletes every row of the scope matching `filter`; returns how many.
    pub async fn delete_where(&self, scope: &E::Scope, filter: Filter<E>) -> DbResult<u64> {
        let res = E::delete_many()
            .filter(Self::scope_condition(scope)?)
            .filter(filter.condition())
            .exec(&self.db.conn)
            .await?;
        Ok(res.rows_affected)
    }
}

fn table_entity<E: EntityTrait>() -> &'static str {
    // Table names are 'static in every entity this crate defines.
    E::default().table_name()
}
