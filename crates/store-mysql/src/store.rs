//! [`MySqlStore`]: the [`Store`] implementation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts, TxOpts, Value};
use sessionbank_core::{
    Action, Capabilities, Data, Error, Operation, Page, Patch, Record, Result, SessionId,
    SharedClock, Store, Timestamp, async_trait,
};

use crate::config::DEFAULT_POOL_MAX;
use crate::config::MySqlStoreBuilder;
use crate::error::{self, BACKEND, DEADLOCK, DUPLICATE_KEY, LOCK_WAIT_TIMEOUT, server_code};
use crate::schema::{Statements, key_path, validate_table};

/// How many expired sessions one cleanup round selects (by the deadline index, without
/// locking) and then deletes by primary key. Small, so a round holds few row locks for a
/// short time and cannot deadlock with writers for long.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_mysql::CLEANUP_BATCH, 100);
/// ```
pub const CLEANUP_BATCH: usize = 100;

/// A row as every read selects it.
type Row = (String, Vec<u8>, Option<i64>, i64, i64, Option<String>);

/// The MySQL / MariaDB store (`mysql://`, `mariadb://`): one InnoDB table with a JSON column,
/// over a `mysql_async` connection pool.
///
/// `update` is one `UPDATE … SET data = JSON_REMOVE(JSON_SET(data, …), …) … WHERE id = ? AND
/// <live>`; connections use `CLIENT_FOUND_ROWS`, so "0 rows" means "no live row", never "no
/// value changed", and a destroyed or expired session is never brought back. Every operation
/// is bounded by the `timeout` (waiting for a connection included).
///
/// # Cancel safety
///
/// A dropped future may leave its statement running on the server, or done.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
/// use sessionbank_store_mysql::MySqlStore;
///
/// # async fn demo() -> sessionbank_core::Result<()> {
/// let store = MySqlStore::builder("127.0.0.1", 3306).user("root").database("app").open().await?;
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
/// store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(60))).await?;
/// store.update(&id, &Patch::new().set("user", "ada".into())).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MySqlStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) target: String,
    pub(crate) statements: Statements,
    pub(crate) timeout: Duration,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("target", &self.inner.target)
            .field("table", &self.inner.statements.table)
            .field("timeout", &self.inner.timeout)
            .field("browser_idle", &self.inner.browser_idle)
            .finish_non_exhaustive()
    }
}

impl MySqlStore {
    /// A builder for the server at `host:port`.
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    pub fn builder(host: impl Into<String>, port: u16) -> MySqlStoreBuilder {
        MySqlStoreBuilder::new(host.into(), port)
    }

    /// Reads a `mysql://` or `mariadb://` URL and opens the store it names:
    /// [`MySqlStoreBuilder::parse`], then [`MySqlStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`MySqlStoreBuilder::parse`] and [`MySqlStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_mysql::MySqlStore::connect("mariadb://app:secret@127.0.0.1/app").await?;
    /// assert_eq!(store.table(), "sessions");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(text: &str) -> Result<Self> {
        MySqlStoreBuilder::parse(text)?.open().await
    }

    /// The table the sessions live in.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: sessionbank_store_mysql::MySqlStore) {
    /// assert_eq!(store.table(), "sessions");
    /// # }
    /// ```
    pub fn table(&self) -> &str {
        &self.inner.statements.table
    }

    /// Closes the pool's connections. Operations afterwards fail with `Unavailable`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: sessionbank_store_mysql::MySqlStore) {
    /// store.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        let _ =
            tokio::time::timeout(self.inner.timeout, self.inner.pool.clone().disconnect()).await;
    }
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.now().as_millis()
    }

    fn idle(&self) -> i64 {
        i64::try_from(self.browser_idle.as_millis()).unwrap_or(i64::MAX)
    }

    fn my(&self, operation: Operation) -> impl Fn(mysql_async::Error) -> Error + '_ {
        move |e| error::from_mysql(operation, &self.target, e)
    }

    /// Runs `work` within the timeout.
    async fn timed<T>(
        &self,
        operation: Operation,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(error::timed_out(operation, &self.target, self.timeout)),
        }
    }

    async fn conn(&self, operation: Operation) -> Result<mysql_async::Conn> {
        self.pool.get_conn().await.map_err(self.my(operation))
    }

    fn decode(&self, row: Row, operation: Operation) -> Result<(String, Record)> {
        let (id, data, expires_at, created_at, last_access, owner) = row;
        let data: Data = serde_json::from_slice(&data)
            .map_err(|e| error::corrupt(operation, &self.target, e))?;
        Ok((
            id,
            Record {
                data,
                expires_at: expires_at.map(Timestamp::from_millis),
                created_at: Timestamp::from_millis(created_at),
                last_access: Timestamp::from_millis(last_access),
                owner,
            },
        ))
    }

    /// Rows to sessions, skipping (with a warning) those that do not decode.
    fn decode_all(&self, rows: Vec<Row>, operation: Operation) -> Vec<(SessionId, Record)> {
        rows.into_iter()
            .filter_map(|row| match self.decode(row, operation) {
                Ok((id, record)) => match SessionId::parse(&id) {
                    Ok(id) => Some((id, record)),
                    Err(_) => {
                        tracing::warn!(target: "sessionbank::mysql", "skipping a row whose id is not a session id");
                        None
                    }
                },
                Err(_) => None,
            })
            .collect()
    }

    fn row_params(
        &self,
        id: &SessionId,
        record: &Record,
        operation: Operation,
    ) -> Result<Vec<Value>> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| error::encode_failed(operation, &self.target, e))?;
        Ok(vec![
            Value::from(id.as_str()),
            Value::from(data),
            Value::from(record.expires_at.map(Timestamp::as_millis)),
            Value::from(record.created_at.as_millis()),
            Value::from(record.last_access.as_millis()),
            Value::from(record.owner.as_deref()),
            Value::from(record.deadline(self.browser_idle).as_millis()),
        ])
    }
}

fn gone(operation: Operation) -> Error {
    Error::gone(operation).with_backend(BACKEND)
}

fn is_duplicate(e: &mysql_async::Error) -> bool {
    server_code(e) == Some(DUPLICATE_KEY)
}

impl MySqlStoreBuilder {
    /// Connects, creates the table and indexes unless `create(false)`, and checks the table.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a bad table name; [`ErrorKind::Unavailable`] when the
    /// server cannot be reached; [`ErrorKind::Timeout`] when it does not answer in time;
    /// [`ErrorKind::Config`] when it refuses the login or the table is missing or lacks a
    /// column.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_mysql::MySqlStore::builder("127.0.0.1", 3306)
    ///     .user("root")
    ///     .database("app")
    ///     .open()
    ///     .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<MySqlStore> {
        validate_table(&self.table, Action::Connect)?;
        let target = self.to_url();
        let constraints = PoolConstraints::new(0, self.pool_max)
            .unwrap_or_else(|| PoolConstraints::new(0, DEFAULT_POOL_MAX).unwrap_or_default());
        let opts = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.database.clone())
            .client_found_rows(true)
            .prefer_socket(false)
            .stmt_cache_size(64)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(false),
            );
        let pool = Pool::new(opts);
        let statements = Statements::new(&self.table);
        let setup = async {
            let mut conn = pool.get_conn().await?;
            if self.create {
                conn.query_drop(&statements.create_table).await?;
            }
            conn.query_drop(&statements.check_table).await?;
            Ok::<_, mysql_async::Error>(())
        };
        let result = match tokio::time::timeout(self.timeout, setup).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error::from_mysql(Action::Setup, &target, e)),
            Err(_) => Err(error::timed_out(Action::Connect, &target, self.timeout)),
        };
        if let Err(e) = result {
            let _ = tokio::time::timeout(Duration::from_secs(1), pool.disconnect()).await;
            return Err(e);
        }
        tracing::debug!(target: "sessionbank::mysql", target = %target, table = %self.table, "mysql store opened");
        Ok(MySqlStore {
            inner: Arc::new(Inner {
                pool,
                target,
                statements,
                timeout: self.timeout,
                browser_idle: self.browser_idle,
                clock: self.clock,
            }),
        })
    }
}

#[async_trait]
impl Store for MySqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(true)
            .with_atomic_rename(true)
            .with_native_expiry(false)
            .with_durable(true)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let inner = &self.inner;
        let op = Operation::Get;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                let row: Option<Row> = conn
                    .exec_first(
                        &inner.statements.get,
                        (id.as_str(), inner.idle(), inner.now()),
                    )
                    .await
                    .map_err(inner.my(op))?;
                row.map(|row| inner.decode(row, op).map(|(_, r)| r))
                    .transpose()
            })
            .await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Set;
        let params = inner.row_params(id, record, op)?;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec_drop(&inner.statements.set, params)
                    .await
                    .map_err(inner.my(op))
            })
            .await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Create;
        let params = inner.row_params(id, record, op)?;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                // A plain INSERT: the primary key decides between racing creates. Only when the
                // id is taken, remove it if expired, and try once more.
                match conn
                    .exec_drop(&inner.statements.insert, params.clone())
                    .await
                {
                    Ok(()) => return Ok(()),
                    Err(e) if is_duplicate(&e) => {}
                    Err(e) => return Err(inner.my(op)(e)),
                }
                conn.exec_drop(
                    &inner.statements.delete_expired,
                    (id.as_str(), inner.idle(), inner.now()),
                )
                .await
                .map_err(inner.my(op))?;
                if conn.affected_rows() == 0 {
                    return Err(Error::already_exists(op).with_backend(BACKEND));
                }
                match conn.exec_drop(&inner.statements.insert, params).await {
                    Ok(()) => Ok(()),
                    Err(e) if is_duplicate(&e) => {
                        Err(Error::already_exists(op).with_backend(BACKEND))
                    }
                    Err(e) => Err(inner.my(op)(e)),
                }
            })
            .await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Update;
        let set_paths: Option<Vec<String>> = patch.set.keys().map(|k| key_path(k)).collect();
        let unset_paths: Option<Vec<String>> = patch.unset.iter().map(|k| key_path(k)).collect();
        let now = inner.now();
        let idle = inner.idle();
        let changed = match (set_paths, unset_paths) {
            (Some(set_paths), Some(unset_paths)) => {
                let sql = inner.statements.update(set_paths.len(), unset_paths.len());
                let mut params = Vec::with_capacity(set_paths.len() * 2 + unset_paths.len() + 10);
                for (path, value) in set_paths.into_iter().zip(patch.set.values()) {
                    let json = serde_json::to_string(value)
                        .map_err(|e| error::encode_failed(op, &inner.target, e))?;
                    params.push(Value::from(path));
                    params.push(Value::from(json));
                }
                params.extend(unset_paths.into_iter().map(Value::from));
                params.push(Value::from(patch.expires_at.is_some()));
                params.push(Value::from(
                    patch.expires_at.flatten().map(Timestamp::as_millis),
                ));
                params.push(Value::from(patch.owner.is_some()));
                params.push(Value::from(patch.owner.as_ref().and_then(|o| o.as_deref())));
                params.extend([now, now, idle].map(Value::from));
                params.push(Value::from(id.as_str()));
                params.extend([idle, now].map(Value::from));
                inner
                    .timed(op, async {
                        let mut conn = inner.conn(op).await?;
                        conn.exec_drop(sql, params).await.map_err(inner.my(op))?;
                        Ok(conn.affected_rows())
                    })
                    .await?
            }
            _ => {
                inner
                    .timed(op, async {
                        let mut conn = inner.conn(op).await?;
                        let mut tx = conn
                            .start_transaction(TxOpts::default())
                            .await
                            .map_err(inner.my(op))?;
                        let row: Option<(Vec<u8>, Option<i64>, Option<String>)> = tx
                            .exec_first(&inner.statements.read_for_update, (id.as_str(), idle, now))
                            .await
                            .map_err(inner.my(op))?;
                        let Some((data, expires_at, owner)) = row else {
                            tx.rollback().await.map_err(inner.my(op))?;
                            return Ok(0);
                        };
                        let data: Data = serde_json::from_slice(&data)
                            .map_err(|e| error::corrupt(op, &inner.target, e))?;
                        let mut record = Record::new(Timestamp::from_millis(now)).with_data(data);
                        record.expires_at = expires_at.map(Timestamp::from_millis);
                        record.owner = owner;
                        patch.apply_to(&mut record, Timestamp::from_millis(now));
                        let data = serde_json::to_string(&record.data)
                            .map_err(|e| error::encode_failed(op, &inner.target, e))?;
                        tx.exec_drop(
                            &inner.statements.write_after_update,
                            (
                                data,
                                record.expires_at.map(Timestamp::as_millis),
                                record.owner,
                                now,
                                now,
                                idle,
                                id.as_str(),
                            ),
                        )
                        .await
                        .map_err(inner.my(op))?;
                        tx.commit().await.map_err(inner.my(op))?;
                        Ok(1)
                    })
                    .await?
            }
        };
        if changed == 0 {
            return Err(gone(op));
        }
        Ok(())
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Touch;
        let (now, idle) = (inner.now(), inner.idle());
        let changed = inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec_drop(
                    &inner.statements.touch,
                    (
                        expires_at.map(Timestamp::as_millis),
                        now,
                        now,
                        idle,
                        id.as_str(),
                        idle,
                        now,
                    ),
                )
                .await
                .map_err(inner.my(op))?;
                Ok(conn.affected_rows())
            })
            .await?;
        if changed == 0 {
            return Err(gone(op));
        }
        Ok(())
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Destroy;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec_drop(&inner.statements.destroy, (id.as_str(),))
                    .await
                    .map_err(inner.my(op))
            })
            .await
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let inner = &self.inner;
        let op = Operation::Rename;
        let (now, idle) = (inner.now(), inner.idle());
        let changed = inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                if old != new {
                    // An expired row under the new id may go: cleanup would remove it anyway.
                    conn.exec_drop(&inner.statements.delete_expired, (new.as_str(), idle, now))
                        .await
                        .map_err(inner.my(op))?;
                }
                // One statement moves the primary key: atomic; a live row under `new` makes it
                // fail with a duplicate key and changes nothing.
                match conn
                    .exec_drop(
                        &inner.statements.rename,
                        (new.as_str(), now, now, idle, old.as_str(), idle, now),
                    )
                    .await
                {
                    Ok(()) => Ok(conn.affected_rows()),
                    Err(e) if is_duplicate(&e) => {
                        Err(Error::already_exists(op).with_backend(BACKEND))
                    }
                    Err(e) => Err(inner.my(op)(e)),
                }
            })
            .await?;
        if changed == 0 {
            return Err(gone(op));
        }
        Ok(())
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let inner = &self.inner;
        let op = Operation::All;
        let after = cursor
            .map(SessionId::parse)
            .transpose()
            .map_err(|e| e.with_backend(BACKEND))?;
        let limit = limit.clamp(1, 10_000);
        let (now, idle) = (inner.now(), inner.idle());
        let rows: Vec<Row> = inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                match after {
                    None => {
                        conn.exec(&inner.statements.all_first, (idle, now, limit as u64))
                            .await
                    }
                    Some(after) => {
                        conn.exec(
                            &inner.statements.all_after,
                            (after.as_str(), idle, now, limit as u64),
                        )
                        .await
                    }
                }
                .map_err(inner.my(op))
            })
            .await?;
        let full = rows.len() == limit;
        let last = rows.last().map(|row| row.0.clone());
        let sessions = inner.decode_all(rows, op);
        Ok(Page {
            sessions,
            next: if full { last } else { None },
        })
    }

    async fn length(&self) -> Result<u64> {
        let inner = &self.inner;
        let op = Operation::Length;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                let count: Option<u64> = conn
                    .exec_first(&inner.statements.length, (inner.idle(), inner.now()))
                    .await
                    .map_err(inner.my(op))?;
                Ok(count.unwrap_or_default())
            })
            .await
    }

    async fn clear(&self) -> Result<u64> {
        let inner = &self.inner;
        let op = Operation::Clear;
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec_drop(&inner.statements.clear, ())
                    .await
                    .map_err(inner.my(op))?;
                Ok(conn.affected_rows())
            })
            .await
    }

    async fn cleanup(&self) -> Result<u64> {
        let inner = &self.inner;
        let op = Operation::Cleanup;
        let mut total = 0u64;
        loop {
            let (now, idle) = (inner.now(), inner.idle());
            // 1. Find a small batch through the deadline index, with a plain (non-locking)
            //    consistent read.
            let batch: Vec<(String, bool)> = inner
                .timed(op, async {
                    let mut conn = inner.conn(op).await?;
                    conn.exec(
                        &inner.statements.cleanup_select,
                        (idle, now, now, CLEANUP_BATCH as u64),
                    )
                    .await
                    .map_err(inner.my(op))
                })
                .await?;
            if batch.is_empty() {
                break;
            }
            let selected = batch.len();
            let (stale, expired): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(_, live)| *live);
            // 2. Delete by primary key, re-checking liveness (a writer may have touched a row
            //    since), and move browser sessions a larger browser_idle keeps alive out of the
            //    range. Each is one short statement locking only these rows, in key order; a
            //    deadlock or lock timeout is retried a few times.
            if !expired.is_empty() {
                let sql = inner.statements.cleanup_delete(expired.len());
                let mut params: Vec<Value> = expired
                    .iter()
                    .map(|(id, _)| Value::from(id.as_str()))
                    .collect();
                params.extend([idle, now].map(Value::from));
                total += self.retrying(op, &sql, params).await?;
            }
            if !stale.is_empty() {
                let sql = inner.statements.cleanup_reindex(stale.len());
                let mut params = vec![Value::from(idle)];
                params.extend(stale.iter().map(|(id, _)| Value::from(id.as_str())));
                params.extend([idle, now].map(Value::from));
                self.retrying(op, &sql, params).await?;
            }
            if selected < CLEANUP_BATCH {
                break;
            }
        }
        if total > 0 {
            tracing::debug!(target: "sessionbank::mysql", removed = total, "cleanup removed expired sessions");
        }
        Ok(total)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let inner = &self.inner;
        let op = Operation::OwnedBy;
        let rows: Vec<Row> = inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec(
                    &inner.statements.owned_by,
                    (owner, inner.idle(), inner.now()),
                )
                .await
                .map_err(inner.my(op))
            })
            .await?;
        Ok(inner.decode_all(rows, op))
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let inner = &self.inner;
        let op = Operation::DestroyOwnedBy;
        let except = except.map(SessionId::as_str);
        inner
            .timed(op, async {
                let mut conn = inner.conn(op).await?;
                conn.exec_drop(
                    &inner.statements.destroy_owned_live,
                    (owner, except, inner.idle(), inner.now()),
                )
                .await
                .map_err(inner.my(op))?;
                let live = conn.affected_rows();
                // The owner's expired sessions go too (they would be cleaned up anyway).
                conn.exec_drop(&inner.statements.destroy_owned_rest, (owner, except))
                    .await
                    .map_err(inner.my(op))?;
                Ok(live)
            })
            .await
    }
}

impl MySqlStore {
    /// Runs one cleanup statement, retrying a deadlock or lock wait timeout up to 3 times.
    async fn retrying(&self, op: Operation, sql: &str, params: Vec<Value>) -> Result<u64> {
        let inner = &self.inner;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = inner
                .timed(op, async {
                    let mut conn = inner.conn(op).await?;
                    match conn.exec_drop(sql, params.clone()).await {
                        Ok(()) => Ok(Ok(conn.affected_rows())),
                        Err(e)
                            if matches!(server_code(&e), Some(DEADLOCK | LOCK_WAIT_TIMEOUT))
                                && attempt < 4 =>
                        {
                            Ok(Err(()))
                        }
                        Err(e) => Err(inner.my(op)(e)),
                    }
                })
                .await?;
            match result {
                Ok(n) => return Ok(n),
                Err(()) => {
                    tracing::debug!(target: "sessionbank::mysql", attempt, "cleanup batch hit a lock conflict; retrying");
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
            }
        }
    }
}
