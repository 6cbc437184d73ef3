//! [`PostgresStore`]: the [`Store`] implementation over a `deadpool-postgres` pool of
//! `tokio-postgres` connections, with prepared (per-connection cached) statements.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use deadpool_postgres::{Object, Pool};
use sessionbank_core::{
    Action, Capabilities, Error, Operation, Page, Patch, Record, Result, SessionId, Store,
    Timestamp, async_trait,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::config::PostgresStoreBuilder;
use crate::conn::{Inner, build_pool};
use crate::error::{self, BACKEND};
use crate::layout::{Layout, Params, Shape, Sql};
use crate::time::check_times;

/// A session store in one PostgreSQL table.
///
/// Time is the database's: "expired" means `expiry <= now()` on the server, so every instance
/// of an application agrees, whatever its own clock and whatever the connection's `TimeZone`
/// (the native layout stores `timestamptz`). Clones share the pool.
///
/// # Setup
/// [`PostgresStoreBuilder::open`] connects, creates the table if allowed and checks its columns
/// before it returns the store. A store made with [`PostgresStoreBuilder::build`] has not
/// done that yet: its first operation runs [`setup`](Self::setup), and operations issued while
/// setup runs wait for it, so no session is ever written to an unchecked table. When setup
/// fails, that operation fails with setup's error and the next one tries again.
///
/// # Concurrency
/// Every operation is one statement (`rename`: one transaction), so it is atomic on the
/// server. `update` merges keys in SQL (`(data || $set) - $unset`) guarded by
/// `WHERE id = $1 AND expiry > now()`, so concurrent updates of different keys all survive and
/// an update never brings back a destroyed or expired session. `cleanup` deletes in batches of
/// [`CLEANUP_BATCH`](crate::CLEANUP_BATCH) with `FOR UPDATE SKIP LOCKED`, so several instances
/// may clean the same table at once.
///
/// # Cancel safety
/// Dropping an operation's future before it completes may leave its statement running or
/// committed on the server; the pooled connection stays usable.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
/// use sessionbank_store_postgres::PostgresStore;
///
/// # async fn demo() -> sessionbank_core::Result<()> {
/// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://app@db.internal/app")?
///     .table("sessions")
///     .open()
///     .await?;
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
/// store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600))).await?;
/// store.update(&id, &Patch::new().set("user", "ada".into())).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .field("table", &self.inner.table)
            .field("layout", &self.inner.sql.layout)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// The driver's view of a layout's parameters.
fn refs<'p>(params: &'p Params<'_>) -> Vec<&'p (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PostgresStore {
    /// Reads a `postgres://` URL and opens the store it names:
    /// [`PostgresStoreBuilder::parse`], then [`PostgresStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::parse`] and [`PostgresStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_postgres::PostgresStore::connect("postgres://app@db/app?table=web").await?;
    /// assert!(store.is_ready());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(text: &str) -> Result<Self> {
        PostgresStoreBuilder::parse(text)?.open().await
    }

    /// A builder from a driver configuration (the seed's "connection object"). From URL text,
    /// use [`PostgresStoreBuilder::parse`]; over the application's pool,
    /// [`builder_from_pool`](Self::builder_from_pool).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("localhost").user("app").password("pw").dbname("app");
    /// let builder = sessionbank_store_postgres::PostgresStore::builder(config).table("web");
    /// assert_eq!(builder.get_table(), "web");
    /// assert!(!format!("{builder:?}").contains("pw"));
    /// ```
    pub fn builder(config: tokio_postgres::Config) -> PostgresStoreBuilder {
        PostgresStoreBuilder::from_driver_config(config)
    }

    /// A builder over a pool the application already has (the seed's "pass in your own query
    /// function"): the store borrows connections from it and never closes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use deadpool_postgres::{Manager, Pool};
    ///
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("localhost").user("app").dbname("app");
    /// let pool = Pool::builder(Manager::new(config, tokio_postgres::NoTls)).max_size(8).build()?;
    /// let builder = sessionbank_store_postgres::PostgresStore::builder_from_pool(pool).table("s");
    /// # let _ = builder;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder_from_pool(pool: Pool) -> PostgresStoreBuilder {
        PostgresStoreBuilder::from_pool(pool)
    }

    /// Whether [`setup`](Self::setup) has completed.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder::build`].
    pub fn is_ready(&self) -> bool {
        self.inner.ready.initialized()
    }

    /// The layout this store reads and writes.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use sessionbank_store_postgres::{Layout, PostgresStore};
    /// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db?layout=koa")?.build()?;
    /// assert_eq!(store.layout(), Layout::Koa);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn layout(&self) -> Layout {
        self.inner.sql.layout
    }

    /// The pool the store uses (to share it with the application, or to read its status). A
    /// pool the store built holds `pool_size` connections shared by single statements, plus two.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db?pool_size=3")?.build()?;
    /// assert_eq!(store.pool().status().max_size, 3 + 2);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Connects, creates the schema and table when they are missing and `create` allows it
    /// (under an advisory lock, so several instances starting at once do not collide), and
    /// checks the table: extra columns are fine; a missing column, a column of another type, or
    /// an `id` without a unique index is an error naming the column and the type expected.
    /// Runs once; later calls return at once.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for a missing table with
    /// `create=false` or a table of the wrong shape (the message says what to change);
    /// [`ErrorKind::Unavailable`](sessionbank_core::ErrorKind::Unavailable) or
    /// [`ErrorKind::Timeout`](sessionbank_core::ErrorKind::Timeout) when the database cannot be
    /// reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://app@db/app")?.build()?;
    /// store.setup().await?; // as koa-pg-session's setup(); optional: the first operation runs it
    /// # Ok(())
    /// # }
    /// ```
    pub async fn setup(&self) -> Result<()> {
        self.ready(Action::Setup).await
    }

    async fn ready(&self, operation: impl Into<Action>) -> Result<()> {
        let operation = operation.into();
        if self.inner.ready.initialized() {
            return Ok(());
        }
        let inner = &self.inner;
        let run = inner.ready.get_or_try_init(|| async {
            match tokio::time::timeout(inner.timeout, crate::setup::run(inner)).await {
                Ok(result) => result,
                Err(_) => Err(error::timed_out(
                    Action::Setup,
                    &inner.target,
                    inner.timeout,
                )),
            }
        });
        match run.await {
            Ok(()) => Ok(()),
            Err(e) if operation == Action::Setup => Err(e),
            Err(e) => Err(Error::new(
                e.kind(),
                operation,
                "the store's setup (connect, create or check the table) failed",
            )
            .with_backend(BACKEND)
            .with_target(inner.target.clone())
            .with_source(e)),
        }
    }

    /// Runs `body` after setup, within the store's statement timeout.
    async fn run<T, F>(&self, operation: Operation, body: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.ready(operation).await?;
        match tokio::time::timeout(self.inner.timeout, body).await {
            Ok(result) => result,
            Err(_) => Err(error::timed_out(
                operation,
                &self.inner.target,
                self.inner.timeout,
            )),
        }
    }

    async fn client(&self, operation: Operation) -> Result<Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| error::from_pool(operation, &self.inner.target, e))
    }

    fn pg(&self, operation: Operation) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        move |e| error::from_pg(operation, &self.inner.target, e)
    }

    /// A shared connection for one statement, round robin. A slot whose connection closed (the
    /// server restarted, the network dropped) is refilled from the pool; the closed one goes
    /// back to the pool, which discards it.
    async fn shared(&self, operation: Operation) -> Result<Arc<Object>> {
        let slots = &self.inner.shared;
        let slot = &slots[self.inner.next.fetch_add(1, Ordering::Relaxed) % slots.len()];
        let current = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(client) = current
            && !client.is_closed()
        {
            return Ok(client);
        }
        let fresh = Arc::new(self.client(operation).await?);
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match &*guard {
            // Another caller refilled the slot meanwhile: use theirs, return ours to the pool.
            Some(client) if !client.is_closed() => Ok(client.clone()),
            _ => {
                *guard = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// Runs one statement that changes rows and returns how many.
    async fn execute(
        &self,
        operation: Operation,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let client = self.shared(operation).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(self.pg(operation))?;
        client
            .execute(&statement, params)
            .await
            .map_err(self.pg(operation))
    }

    /// Runs one query and returns its rows.
    async fn query(
        &self,
        operation: Operation,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self.shared(operation).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(self.pg(operation))?;
        client
            .query(&statement, params)
            .await
            .map_err(self.pg(operation))
    }

    /// The layout the store dispatches through.
    fn shape(&self) -> &'static dyn Shape {
        self.inner.sql.layout.shape()
    }

    /// Reads a record from `row`, whose columns start at `at` (the layout's column list).
    fn record(&self, operation: Operation, row: &Row, at: usize) -> Result<Record> {
        self.shape()
            .read(row, at)
            .map_err(|what| error::corrupt(operation, &self.inner.target, what))
    }

    /// (id, record) pairs from rows of `SELECT id, <columns>`; rows whose id is not a
    /// sessionbank id (another application's rows) are skipped.
    fn records(&self, operation: Operation, rows: &[Row]) -> Result<Vec<(SessionId, Record)>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let text: &str = row.try_get(0).map_err(|_| {
                error::corrupt(operation, &self.inner.target, "a stored id cannot be read")
            })?;
            let Ok(id) = SessionId::parse(text) else {
                tracing::debug!(target: "sessionbank::postgres", "skipping a row whose id is not a session id");
                continue;
            };
            out.push((id, self.record(operation, row, 1)?));
        }
        Ok(out)
    }

    async fn write(&self, operation: Operation, id: &SessionId, record: &Record) -> Result<u64> {
        let sql = match operation {
            Operation::Create => &self.inner.sql.create,
            _ => &self.inner.sql.set,
        };
        check_times(
            operation,
            &[
                record.expires_at,
                Some(record.created_at),
                Some(record.last_access),
            ],
        )?;
        let params = self.shape().write(id, record, self.inner.browser_idle);
        self.execute(operation, sql, &refs(&params)).await
    }

    /// An owner statement, or `Unsupported` when the layout keeps no owner.
    fn owner_sql<'s>(&self, operation: Operation, sql: &'s Option<String>) -> Result<&'s str> {
        sql.as_deref().ok_or_else(|| {
            let layout = self.inner.sql.layout;
            Error::unsupported(
                operation,
                format!(
                    "the {layout} layout has no owner column; use the native layout for an owner index"
                ),
            )
            .with_backend(BACKEND)
        })
    }
}

impl PostgresStoreBuilder {
    /// Makes the store without touching the network: names are checked and the pool is built,
    /// but no connection is opened. The first operation runs [`PostgresStore::setup`] (and any
    /// operation issued meanwhile waits for it), so no session is written before the table is
    /// checked. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](sessionbank_core::ErrorKind::InvalidInput) for a bad schema or table name; [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) when
    /// the pool cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db")?.build()?;
    /// assert!(!store.is_ready());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn build(self) -> Result<PostgresStore> {
        self.validate()?;
        let (pool, shared) = build_pool(
            self.source,
            self.pool_size,
            self.connect_timeout,
            self.statement_timeout,
        )?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(self.layout, &self.schema, &self.table),
                target: self.target,
                schema: self.schema,
                table: self.table,
                create: self.create,
                browser_idle: self.browser_idle,
                timeout: self.statement_timeout,
                ready: tokio::sync::OnceCell::new(),
                shared: (0..shared).map(|_| std::sync::Mutex::new(None)).collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// [`build`](Self::build), then [`PostgresStore::setup`]: connects, creates the table if
    /// allowed and missing, and checks its columns.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build) and [`PostgresStore::setup`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://app@db/app")?
    ///     .table("sessions")
    ///     .open()
    ///     .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<PostgresStore> {
        let store = self.build()?;
        store.setup().await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(self.inner.sql.owned_by.is_some())
            .with_atomic_rename(true)
            .with_native_expiry(false)
            .with_durable(true)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let op = Operation::Get;
        self.run(op, async {
            let rows = self.query(op, &self.inner.sql.get, &[&id.as_str()]).await?;
            rows.first().map(|row| self.record(op, row, 0)).transpose()
        })
        .await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = Operation::Set;
        self.run(op, async { self.write(op, id, record).await.map(drop) })
            .await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = Operation::Create;
        self.run(op, async {
            match self.write(op, id, record).await? {
                0 => Err(Error::already_exists(op).with_backend(BACKEND)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let op = Operation::Update;
        check_times(op, &[patch.expires_at.flatten()])?;
        self.run(op, async {
            let params = self.shape().update(id, patch, self.inner.browser_idle);
            let rows = self
                .execute(op, &self.inner.sql.update, &refs(&params))
                .await?;
            match rows {
                0 => Err(Error::gone(op).with_backend(BACKEND)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let op = Operation::Touch;
        check_times(op, &[expires_at])?;
        self.run(op, async {
            let params = self.shape().touch(id, expires_at, self.inner.browser_idle);
            let rows = self
                .execute(op, &self.inner.sql.touch, &refs(&params))
                .await?;
            match rows {
                0 => Err(Error::gone(op).with_backend(BACKEND)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        let op = Operation::Destroy;
        self.run(op, async {
            self.execute(op, &self.inner.sql.destroy, &[&id.as_str()])
                .await
                .map(drop)
        })
        .await
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let op = Operation::Rename;
        self.run(op, async {
            let mut client = self.client(op).await?;
            let take = client
                .prepare_cached(&self.inner.sql.rename_take)
                .await
                .map_err(self.pg(op))?;
            let put = client
                .prepare_cached(&self.inner.sql.rename_put)
                .await
                .map_err(self.pg(op))?;
            let tx = client.transaction().await.map_err(self.pg(op))?;
            let Some(row) = tx
                .query_opt(&take, &[&old.as_str()])
                .await
                .map_err(self.pg(op))?
            else {
                return Err(Error::gone(op).with_backend(BACKEND));
            };
            let record = self.record(op, &row, 0)?;
            let params = self.shape().rename(new, &record, self.inner.browser_idle);
            let moved = tx
                .execute(&put, &refs(&params))
                .await
                .map_err(self.pg(op))?;
            if moved == 0 {
                // `new` is a live session: the transaction rolls back when dropped, so `old`
                // stays as it was.
                return Err(Error::already_exists(op).with_backend(BACKEND));
            }
            tx.commit().await.map_err(self.pg(op))
        })
        .await
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let op = Operation::All;
        self.run(op, async {
            let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
            let rows = match cursor {
                None => self.query(op, &self.inner.sql.all_first, &[&limit]).await?,
                Some(after) => {
                    self.query(op, &self.inner.sql.all_after, &[&limit, &after])
                        .await?
                }
            };
            let next = if rows.len() as u64 == limit.unsigned_abs() {
                rows.last().and_then(|row| row.try_get::<_, String>(0).ok())
            } else {
                None
            };
            Ok(Page {
                sessions: self.records(op, &rows)?,
                next,
            })
        })
        .await
    }

    async fn length(&self) -> Result<u64> {
        let op = Operation::Length;
        self.run(op, async {
            let rows = self.query(op, &self.inner.sql.length, &[]).await?;
            let count: i64 = rows
                .first()
                .and_then(|r| r.try_get(0).ok())
                .unwrap_or_default();
            Ok(count.unsigned_abs())
        })
        .await
    }

    async fn clear(&self) -> Result<u64> {
        let op = Operation::Clear;
        self.run(op, async {
            self.execute(op, &self.inner.sql.clear, &[]).await
        })
        .await
    }

    async fn cleanup(&self) -> Result<u64> {
        let op = Operation::Cleanup;
        self.run(op, async {
            let client = self.client(op).await?;
            let statement = client
                .prepare_cached(&self.inner.sql.cleanup)
                .await
                .map_err(self.pg(op))?;
            let mut total = 0u64;
            loop {
                let removed = client
                    .execute(&statement, &[])
                    .await
                    .map_err(self.pg(op))?;
                total += removed;
                if removed < crate::CLEANUP_BATCH.unsigned_abs() {
                    break;
                }
            }
            if total > 0 {
                tracing::debug!(target: "sessionbank::postgres", removed = total, "cleanup removed expired sessions");
            }
            Ok(total)
        })
        .await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let op = Operation::OwnedBy;
        let sql = self.owner_sql(op, &self.inner.sql.owned_by)?;
        self.run(op, async {
            let rows = self.query(op, sql, &[&owner]).await?;
            self.records(op, &rows)
        })
        .await
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let op = Operation::DestroyOwnedBy;
        let sql = self.owner_sql(op, &self.inner.sql.destroy_owned_by)?;
        self.run(op, async {
            let except = except.map(SessionId::as_str);
            let rows = self.query(op, sql, &[&owner, &except]).await?;
            let count: i64 = rows
                .first()
                .and_then(|r| r.try_get(0).ok())
                .unwrap_or_default();
            Ok(count.unsigned_abs())
        })
        .await
    }
}
