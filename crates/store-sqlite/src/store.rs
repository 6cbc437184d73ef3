//! [`SqliteStore`]: the [`Store`] implementation, and [`SqliteStoreBuilder::open`], which opens
//! the connections and sets up the table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, named_params};
use sessionbank_core::{
    Action, Capabilities, Data, Error, ErrorKind, Operation, Page, Patch, Record, Result,
    SessionId, SharedClock, Store, Timestamp, async_trait,
};

use crate::config::SqliteStoreBuilder;
use crate::conn::{self, Readers, lock};
use crate::error::{self, BACKEND};
use crate::schema::{Statements, key_path, validate_table};

/// How many expired sessions one cleanup statement removes at most, so writers (in this or
/// another process) waiting for the lock are not starved.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_sqlite::CLEANUP_BATCH, 500);
/// ```
pub const CLEANUP_BATCH: i64 = 500;

/// The SQLite store (`sqlite:`): one table in a SQLite database file, in WAL mode, safe for
/// several processes (and several stores) on one file.
///
/// Every call runs on tokio's blocking pool, never on a runtime worker thread. Writes of one
/// store share one connection (SQLite has one writer at a time anyway, so queuing them in the
/// process avoids spinning on the file lock); reads use a small pool of read connections that
/// run in parallel with the writer (WAL). Other processes on the same file wait for the lock
/// up to `busy_timeout`.
///
/// `update` is one `UPDATE … SET data = json_remove(json_set(data, …), …) WHERE id = ? AND
/// <live>`: atomic, and 0 rows means the session is gone, never resurrected.
///
/// # Cancel safety
///
/// A call whose future is dropped after its first poll may still complete: the blocking task
/// runs to its end.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
/// use sessionbank_store_sqlite::SqliteStore;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("sessions.db")).await?;
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
/// store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(60))).await?;
/// store.update(&id, &Patch::new().set("user", "ada".into())).await?;
/// assert_eq!(store.get(&id).await?.map(|r| r.data["user"].clone()), Some("ada".into()));
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) target: String,
    pub(crate) statements: Statements,
    pub(crate) writer: Mutex<Connection>,
    pub(crate) readers: Readers,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
    pub(crate) path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("target", &self.inner.target)
            .field("table", &self.inner.statements.table)
            .field("browser_idle", &self.inner.browser_idle)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` with the default options.
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// See [`SqliteStore`].
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Self::builder(path).open().await
    }

    /// A builder for the database file at `path`.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub fn builder(path: impl Into<PathBuf>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::file(path.into())
    }

    /// A builder for a private in-memory database (gone when the store is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_sqlite::SqliteStore;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = SqliteStore::builder_in_memory().open().await?;
    /// assert_eq!(store.path(), None);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn builder_in_memory() -> SqliteStoreBuilder {
        SqliteStoreBuilder::memory()
    }

    /// Reads a `sqlite:` URL and opens the store it names: [`SqliteStoreBuilder::parse`], then
    /// [`SqliteStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStoreBuilder::parse`] and [`SqliteStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_sqlite::SqliteStore;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = SqliteStore::connect("sqlite::memory:?table=web_sessions").await?;
    /// assert_eq!(store.table(), "web_sessions");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn connect(text: &str) -> Result<Self> {
        SqliteStoreBuilder::parse(text)?.open().await
    }

    /// The table the sessions live in.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub fn table(&self) -> &str {
        &self.inner.statements.table
    }

    /// The database file, or `None` for an in-memory database.
    ///
    /// # Examples
    ///
    /// See [`SqliteStore::builder_in_memory`].
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// How long a browser session lives after its last access.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessionbank_store_sqlite::SqliteStore::builder_in_memory().open().await?;
    /// assert_eq!(store.browser_idle(), sessionbank_core::DEFAULT_BROWSER_IDLE);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn browser_idle(&self) -> Duration {
        self.inner.browser_idle
    }

    /// Runs `f` with the write connection on the blocking pool.
    async fn write<T, F>(&self, operation: Operation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            f(&mut conn, &inner)
        })
        .await
        .map_err(|e| error::join_failed(operation, &self.inner.target, e))?
    }

    /// Runs `f` with a read connection (the write connection for an in-memory database) on
    /// the blocking pool.
    async fn read<T, F>(&self, operation: Operation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Inner) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if inner.path.is_none() {
                let conn = lock(&inner.writer);
                return f(&conn, &inner);
            }
            inner.readers.with(|conn| f(conn, &inner))
        })
        .await
        .map_err(|e| error::join_failed(operation, &self.inner.target, e))?
    }
}

impl SqliteStoreBuilder {
    /// Opens (or creates) the database file, switches it to WAL mode, creates the table and
    /// its indexes unless `create(false)`, and opens the connections.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a bad table name; [`ErrorKind::Config`] when
    /// `create(false)` and the table is missing or lacks a column; [`ErrorKind::Unavailable`]
    /// when the file cannot be opened; [`ErrorKind::Corrupt`] when it is not a SQLite database.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub async fn open(self) -> Result<SqliteStore> {
        validate_table(self.get_table(), Action::Connect)?;
        tokio::task::spawn_blocking(move || open_blocking(&self))
            .await
            .map_err(|e| error::join_failed(Action::Connect, "sqlite", e))?
    }
}

fn open_blocking(builder: &SqliteStoreBuilder) -> Result<SqliteStore> {
    let target = builder.target();
    conn::check_directory(builder, &target)?;
    let writer = conn::open(builder, &target, true)?;
    let table = builder.get_table();
    let statements = Statements::new(table);
    if builder.get_create() {
        writer
            .execute_batch(&statements.create_table)
            .map_err(|e| error::from_sqlite(Action::Setup, &target, e))?;
    }
    if let Err(e) = writer.prepare(&statements.check_table) {
        return Err(Error::new(
            ErrorKind::Config,
            Action::Setup,
            format!(
                "the table `{table}` is missing or lacks a column (id, data, expires_at, \
                 created_at, last_access, owner, deadline); open with create=true to create it",
            ),
        )
        .with_backend(BACKEND)
        .with_target(target)
        .with_source(e));
    }
    let readers = Readers::open(builder, &target)?;
    tracing::debug!(target: "sessionbank::sqlite", target = %target, table = %table, "sqlite store opened");
    Ok(SqliteStore {
        inner: Arc::new(Inner {
            target,
            statements,
            writer: Mutex::new(writer),
            readers,
            browser_idle: builder.get_browser_idle(),
            clock: builder.get_clock().clone(),
            path: builder.get_path().map(Path::to_path_buf),
        }),
    })
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.now().as_millis()
    }

    fn idle(&self) -> i64 {
        i64::try_from(self.browser_idle.as_millis()).unwrap_or(i64::MAX)
    }

    fn sql(&self, operation: Operation) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |e| error::from_sqlite(operation, &self.target, e)
    }
}

/// A record's row values, encoded.
struct Encoded {
    data: String,
    expires_at: Option<i64>,
    created_at: i64,
    last_access: i64,
    owner: Option<String>,
    deadline: i64,
}

fn encode(record: &Record, inner: &Inner, operation: Operation) -> Result<Encoded> {
    let data = serde_json::to_string(&record.data)
        .map_err(|e| error::encode_failed(operation, &inner.target, e))?;
    Ok(Encoded {
        data,
        expires_at: record.expires_at.map(Timestamp::as_millis),
        created_at: record.created_at.as_millis(),
        last_access: record.last_access.as_millis(),
        owner: record.owner.clone(),
        deadline: record.deadline(inner.browser_idle).as_millis(),
    })
}

/// Reads a row of [`COLUMNS`](crate::schema::COLUMNS) into an id and a record.
fn decode(row: &Row<'_>) -> rusqlite::Result<(String, Result<Data, serde_json::Error>, Record)> {
    let id: String = row.get(0)?;
    let data: String = row.get(1)?;
    let record = Record {
        data: Data::new(),
        expires_at: row.get::<_, Option<i64>>(2)?.map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(row.get(3)?),
        last_access: Timestamp::from_millis(row.get(4)?),
        owner: row.get(5)?,
    };
    Ok((id, serde_json::from_str(&data), record))
}

/// Turns decoded rows into sessions, failing on the first that does not decode (`strict`) or
/// skipping it with a warning.
fn collect(
    rows: Vec<(String, Result<Data, serde_json::Error>, Record)>,
    inner: &Inner,
    operation: Operation,
    strict: bool,
) -> Result<Vec<(SessionId, Record)>> {
    let mut out = Vec::with_capacity(rows.len());
    for (id, data, mut record) in rows {
        let id = match SessionId::parse(&id) {
            Ok(id) => id,
            Err(_) if !strict => {
                tracing::warn!(target: "sessionbank::sqlite", table = %inner.statements.table, "skipping a row whose id is not a session id");
                continue;
            }
            Err(e) => return Err(e.with_backend(BACKEND)),
        };
        match data {
            Ok(data) => {
                record.data = data;
                out.push((id, record));
            }
            Err(e) if strict => return Err(error::corrupt(operation, &inner.target, e)),
            Err(_) => {
                tracing::warn!(target: "sessionbank::sqlite", table = %inner.statements.table, "skipping a session whose data does not decode");
            }
        }
    }
    Ok(out)
}

fn gone(operation: Operation) -> Error {
    Error::gone(operation).with_backend(BACKEND)
}

fn insert(
    conn: &Connection,
    inner: &Inner,
    sql: &str,
    id: &SessionId,
    e: &Encoded,
    operation: Operation,
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(sql).map_err(inner.sql(operation))?;
    let id = id.as_str();
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
        (":id", &id as &dyn rusqlite::ToSql),
        (":data", &e.data),
        (":expires_at", &e.expires_at),
        (":created_at", &e.created_at),
        (":last_access", &e.last_access),
        (":owner", &e.owner),
        (":deadline", &e.deadline),
    ];
    let now = inner.now();
    let idle = inner.idle();
    if operation == Operation::Create {
        params.push((":now", &now));
        params.push((":idle", &idle));
    }
    stmt.execute(params.as_slice())
        .map_err(inner.sql(operation))
}

/// `update` for a patch whose keys SQLite's JSON paths can all name: one statement.
fn update_in_place(
    conn: &Connection,
    inner: &Inner,
    id: &SessionId,
    patch: &Patch,
    paths: (Vec<String>, Vec<String>),
) -> Result<usize> {
    let op = Operation::Update;
    let (set_paths, unset_paths) = paths;
    let sql = inner.statements.update(set_paths.len(), unset_paths.len());
    let mut stmt = conn.prepare_cached(&sql).map_err(inner.sql(op))?;
    let mut index = 1;
    for (path, value) in set_paths.iter().zip(patch.set.values()) {
        let json =
            serde_json::to_string(value).map_err(|e| error::encode_failed(op, &inner.target, e))?;
        stmt.raw_bind_parameter(index, path)
            .map_err(inner.sql(op))?;
        stmt.raw_bind_parameter(index + 1, json)
            .map_err(inner.sql(op))?;
        index += 2;
    }
    for path in &unset_paths {
        stmt.raw_bind_parameter(index, path)
            .map_err(inner.sql(op))?;
        index += 1;
    }
    let expires = patch.expires_at.flatten().map(Timestamp::as_millis);
    let owner: Option<&str> = patch.owner.as_ref().and_then(|o| o.as_deref());
    let named: [(&str, SqlValue); 7] = [
        (
            ":expires_flag",
            SqlValue::Integer(i64::from(patch.expires_at.is_some())),
        ),
        (
            ":expires_at",
            expires.map_or(SqlValue::Null, SqlValue::Integer),
        ),
        (
            ":owner_flag",
            SqlValue::Integer(i64::from(patch.owner.is_some())),
        ),
        (
            ":owner",
            owner.map_or(SqlValue::Null, |o| SqlValue::Text(o.to_owned())),
        ),
        (":now", SqlValue::Integer(inner.now())),
        (":idle", SqlValue::Integer(inner.idle())),
        (":id", SqlValue::Text(id.as_str().to_owned())),
    ];
    for (name, value) in named {
        let Some(i) = stmt.parameter_index(name).map_err(inner.sql(op))? else {
            continue;
        };
        stmt.raw_bind_parameter(i, value).map_err(inner.sql(op))?;
    }
    stmt.raw_execute().map_err(inner.sql(op))
}

/// `update` for a patch with a key SQLite's JSON paths cannot name: read, apply and write back
/// inside one `BEGIN IMMEDIATE` transaction, so it is just as atomic.
fn update_read_modify_write(
    conn: &mut Connection,
    inner: &Inner,
    id: &SessionId,
    patch: &Patch,
) -> Result<usize> {
    let op = Operation::Update;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(inner.sql(op))?;
    let now = inner.now();
    let idle = inner.idle();
    let current: Option<(String, Option<i64>, Option<String>)> = tx
        .prepare_cached(&inner.statements.read_for_update)
        .and_then(|mut stmt| {
            stmt.query_row(
                named_params! {":id": id.as_str(), ":now": now, ":idle": idle},
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
        })
        .map_err(inner.sql(op))?;
    let Some((data, expires_at, owner)) = current else {
        return Ok(0);
    };
    let data: Data =
        serde_json::from_str(&data).map_err(|e| error::corrupt(op, &inner.target, e))?;
    let mut record = Record::new(Timestamp::from_millis(now)).with_data(data);
    record.expires_at = expires_at.map(Timestamp::from_millis);
    record.owner = owner;
    patch.apply_to(&mut record, Timestamp::from_millis(now));
    let encoded = encode(&record, inner, op)?;
    let changed = tx
        .prepare_cached(&inner.statements.write_after_update)
        .and_then(|mut stmt| {
            stmt.execute(named_params! {
                ":data": encoded.data,
                ":expires_at": encoded.expires_at,
                ":owner": encoded.owner,
                ":now": now,
                ":idle": idle,
                ":id": id.as_str(),
            })
        })
        .map_err(inner.sql(op))?;
    tx.commit().map_err(inner.sql(op))?;
    Ok(changed)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(true)
            .with_atomic_rename(true)
            .with_native_expiry(false)
            .with_durable(self.inner.path.is_some())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let id = *id;
        self.read(Operation::Get, move |conn, inner| {
            let op = Operation::Get;
            let row = conn
                .prepare_cached(&inner.statements.get)
                .and_then(|mut stmt| {
                    stmt.query_row(
                        named_params! {":id": id.as_str(), ":now": inner.now(), ":idle": inner.idle()},
                        decode,
                    )
                    .optional()
                })
                .map_err(inner.sql(op))?;
            match row {
                None => Ok(None),
                Some((_, Ok(data), record)) => Ok(Some(record.with_data(data))),
                Some((_, Err(e), _)) => Err(error::corrupt(op, &inner.target, e)),
            }
        })
        .await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let encoded = encode(record, &self.inner, Operation::Set)?;
        let id = *id;
        self.write(Operation::Set, move |conn, inner| {
            insert(
                conn,
                inner,
                &inner.statements.set,
                &id,
                &encoded,
                Operation::Set,
            )
            .map(|_| ())
        })
        .await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let encoded = encode(record, &self.inner, Operation::Create)?;
        let id = *id;
        self.write(Operation::Create, move |conn, inner| {
            let changed = insert(
                conn,
                inner,
                &inner.statements.create,
                &id,
                &encoded,
                Operation::Create,
            )?;
            if changed == 0 {
                return Err(Error::already_exists(Operation::Create).with_backend(BACKEND));
            }
            Ok(())
        })
        .await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let id = *id;
        let patch = patch.clone();
        self.write(Operation::Update, move |conn, inner| {
            let set_paths: Option<Vec<String>> = patch.set.keys().map(|k| key_path(k)).collect();
            let unset_paths: Option<Vec<String>> =
                patch.unset.iter().map(|k| key_path(k)).collect();
            let changed = match (set_paths, unset_paths) {
                (Some(set), Some(unset)) => {
                    update_in_place(conn, inner, &id, &patch, (set, unset))?
                }
                _ => update_read_modify_write(conn, inner, &id, &patch)?,
            };
            if changed == 0 {
                return Err(gone(Operation::Update));
            }
            Ok(())
        })
        .await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let id = *id;
        self.write(Operation::Touch, move |conn, inner| {
            let op = Operation::Touch;
            let changed = conn
                .prepare_cached(&inner.statements.touch)
                .and_then(|mut stmt| {
                    stmt.execute(named_params! {
                        ":expires_at": expires_at.map(Timestamp::as_millis),
                        ":now": inner.now(),
                        ":idle": inner.idle(),
                        ":id": id.as_str(),
                    })
                })
                .map_err(inner.sql(op))?;
            if changed == 0 {
                return Err(gone(op));
            }
            Ok(())
        })
        .await
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        let id = *id;
        self.write(Operation::Destroy, move |conn, inner| {
            conn.prepare_cached(&inner.statements.destroy)
                .and_then(|mut stmt| stmt.execute(named_params! {":id": id.as_str()}))
                .map_err(inner.sql(Operation::Destroy))?;
            Ok(())
        })
        .await
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let (old, new) = (*old, *new);
        self.write(Operation::Rename, move |conn, inner| {
            let op = Operation::Rename;
            let now = inner.now();
            let idle = inner.idle();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(inner.sql(op))?;
            if old == new {
                let touched = tx
                    .prepare_cached(&inner.statements.rename_check_new)
                    .and_then(|mut stmt| {
                        stmt.exists(named_params! {":id": old.as_str(), ":now": now, ":idle": idle})
                    })
                    .map_err(inner.sql(op))?;
                if !touched {
                    return Err(gone(op));
                }
                tx.execute(
                    &format!(
                        "UPDATE \"{}\" SET last_access = ?1 WHERE id = ?2",
                        inner.statements.table
                    ),
                    rusqlite::params![now, old.as_str()],
                )
                .map_err(inner.sql(op))?;
                tx.commit().map_err(inner.sql(op))?;
                return Ok(());
            }
            let taken = tx
                .prepare_cached(&inner.statements.rename_check_new)
                .and_then(|mut stmt| {
                    stmt.exists(named_params! {":id": new.as_str(), ":now": now, ":idle": idle})
                })
                .map_err(inner.sql(op))?;
            let copied = if taken {
                0
            } else {
                tx.prepare_cached(&inner.statements.rename_copy)
                    .and_then(|mut stmt| {
                        stmt.execute(named_params! {
                            ":new": new.as_str(),
                            ":id": old.as_str(),
                            ":now": now,
                            ":idle": idle,
                        })
                    })
                    .map_err(inner.sql(op))?
            };
            if copied == 0 {
                // Was `old` live? It decides between Gone and AlreadyExists.
                let old_live = tx
                    .prepare_cached(&inner.statements.rename_check_new)
                    .and_then(|mut stmt| {
                        stmt.exists(named_params! {":id": old.as_str(), ":now": now, ":idle": idle})
                    })
                    .map_err(inner.sql(op))?;
                return Err(if old_live && taken {
                    Error::already_exists(op).with_backend(BACKEND)
                } else {
                    gone(op)
                });
            }
            tx.prepare_cached(&inner.statements.destroy)
                .and_then(|mut stmt| stmt.execute(named_params! {":id": old.as_str()}))
                .map_err(inner.sql(op))?;
            tx.commit().map_err(inner.sql(op))?;
            Ok(())
        })
        .await
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let after = cursor
            .map(SessionId::parse)
            .transpose()
            .map_err(|e| e.with_backend(BACKEND))?;
        let limit = limit.clamp(1, 10_000);
        self.read(Operation::All, move |conn, inner| {
            let op = Operation::All;
            let now = inner.now();
            let idle = inner.idle();
            let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match after {
                None => conn.prepare_cached(&inner.statements.all_first).and_then(|mut stmt| {
                    stmt.query_map(
                        named_params! {":now": now, ":idle": idle, ":limit": limit_sql},
                        decode,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                }),
                Some(after) => conn.prepare_cached(&inner.statements.all_after).and_then(|mut stmt| {
                    stmt.query_map(
                        named_params! {":after": after.as_str(), ":now": now, ":idle": idle, ":limit": limit_sql},
                        decode,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                }),
            }
            .map_err(inner.sql(op))?;
            let full = rows.len() == limit;
            let last = rows.last().map(|(id, _, _)| id.clone());
            let sessions = collect(rows, inner, op, false)?;
            Ok(Page {
                sessions,
                next: if full { last } else { None },
            })
        })
        .await
    }

    async fn length(&self) -> Result<u64> {
        self.read(Operation::Length, move |conn, inner| {
            let count: i64 = conn
                .prepare_cached(&inner.statements.length)
                .and_then(|mut stmt| {
                    stmt.query_row(
                        named_params! {":now": inner.now(), ":idle": inner.idle()},
                        |row| row.get(0),
                    )
                })
                .map_err(inner.sql(Operation::Length))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }

    async fn clear(&self) -> Result<u64> {
        self.write(Operation::Clear, move |conn, inner| {
            let removed = conn
                .prepare_cached(&inner.statements.clear)
                .and_then(|mut stmt| stmt.execute([]))
                .map_err(inner.sql(Operation::Clear))?;
            Ok(removed as u64)
        })
        .await
    }

    async fn cleanup(&self) -> Result<u64> {
        let mut total = 0u64;
        // Re-index browser sessions kept alive by a larger browser_idle than the one their
        // deadline was computed with, so the batches below skip nothing forever.
        self.write(Operation::Cleanup, move |conn, inner| {
            conn.prepare_cached(&inner.statements.cleanup_reindex)
                .and_then(|mut stmt| {
                    stmt.execute(named_params! {":now": inner.now(), ":idle": inner.idle()})
                })
                .map_err(inner.sql(Operation::Cleanup))
        })
        .await?;
        loop {
            // One batch per write lock, so other writers get their turn between batches.
            let removed = self
                .write(Operation::Cleanup, move |conn, inner| {
                    conn.prepare_cached(&inner.statements.cleanup_batch)
                        .and_then(|mut stmt| {
                            stmt.execute(named_params! {
                                ":now": inner.now(),
                                ":idle": inner.idle(),
                                ":limit": CLEANUP_BATCH,
                            })
                        })
                        .map_err(inner.sql(Operation::Cleanup))
                })
                .await?;
            total += removed as u64;
            if (removed as i64) < CLEANUP_BATCH {
                break;
            }
        }
        if total > 0 {
            tracing::debug!(target: "sessionbank::sqlite", removed = total, "cleanup removed expired sessions");
        }
        Ok(total)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let owner = owner.to_owned();
        self.read(Operation::OwnedBy, move |conn, inner| {
            let op = Operation::OwnedBy;
            let rows = conn
                .prepare_cached(&inner.statements.owned_by)
                .and_then(|mut stmt| {
                    stmt.query_map(
                        named_params! {":owner": owner, ":now": inner.now(), ":idle": inner.idle()},
                        decode,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(inner.sql(op))?;
            collect(rows, inner, op, false)
        })
        .await
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let owner = owner.to_owned();
        let except = except.map(|id| id.as_str().to_owned());
        self.write(Operation::DestroyOwnedBy, move |conn, inner| {
            let live: Vec<bool> = conn
                .prepare_cached(&inner.statements.destroy_owned_by)
                .and_then(|mut stmt| {
                    stmt.query_map(
                        named_params! {
                            ":owner": owner,
                            ":except": except,
                            ":now": inner.now(),
                            ":idle": inner.idle(),
                        },
                        |row| row.get(0),
                    )?
                    .collect()
                })
                .map_err(inner.sql(Operation::DestroyOwnedBy))?;
            Ok(live.into_iter().filter(|l| *l).count() as u64)
        })
        .await
    }
}
