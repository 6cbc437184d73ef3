//! [`DiskStore`]: the [`Store`] implementation, and [`DiskStoreBuilder::open`], which opens the
//! database file and starts the writer thread.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableDatabase};
use sessionbank_core::{
    Action, Capabilities, Error, ErrorKind, Operation, Page, Patch, Record, Result, SessionId,
    SharedClock, Store, Timestamp, async_trait,
};
use tokio::sync::oneshot;

use crate::config::{DATABASE_FILE, DiskStoreBuilder};
use crate::error::{self, BACKEND};
use crate::layout::{self, EXPIRY, OWNERS, SESSIONS};
use crate::writer::{Op, Reply, Request, Writer};

/// How many expired sessions one cleanup transaction removes at most, so writers waiting behind
/// it are not starved.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_disk::CLEANUP_BATCH, 1000);
/// ```
pub const CLEANUP_BATCH: usize = 1000;

/// The embedded disk store (`disk://`): one redb file in a directory, durable on every
/// acknowledged write, with an expiry index and an owner index.
///
/// Writes go to one writer thread that commits whatever is queued in one durable transaction
/// (group commit); reads run concurrently in redb read transactions on tokio's blocking pool.
/// Clones share the same store. Only one `DiskStore` (in any process) may have a directory open
/// at a time; dropping the last clone stops the writer thread and releases the file.
///
/// # Cancel safety
///
/// A write whose future is dropped after it was polled once may still be committed: it is
/// already queued. Reads are cancel safe.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
/// use sessionbank_store_disk::DiskStore;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = DiskStore::open(dir.path().join("sessions")).await?;
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
pub struct DiskStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Arc<Database>,
    pub(crate) dir: PathBuf,
    pub(crate) file: PathBuf,
    pub(crate) max_record_bytes: usize,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
    pub(crate) sender: Option<mpsc::Sender<Request>>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel stops the writer once it has answered everything queued; joining
        // it means the file lock is released when the last clone is gone, so the directory can
        // be opened again right away.
        self.sender.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!(target: "sessionbank::disk", "the disk store's writer thread panicked");
        }
    }
}

impl fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskStore")
            .field("dir", &self.inner.dir)
            .field("max_record_bytes", &self.inner.max_record_bytes)
            .field("browser_idle", &self.inner.browser_idle)
            .finish()
    }
}

impl DiskStore {
    /// Opens (creating if missing) the store in directory `dir`, with default options.
    ///
    /// # Errors
    ///
    /// As [`DiskStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(dir.path().join("sessions")).await?;
    /// assert!(store.database_file().ends_with("sessions/sessions.redb"));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::builder(dir).open().await
    }

    /// A builder for a store in directory `dir`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// let builder = DiskStore::builder("/var/lib/app/sessions").max_record_bytes(4096);
    /// assert_eq!(builder.get_dir(), std::path::Path::new("/var/lib/app/sessions"));
    /// ```
    pub fn builder(dir: impl Into<PathBuf>) -> DiskStoreBuilder {
        DiskStoreBuilder::new(dir.into())
    }

    /// Reads a `disk:` URL and opens the store it names: [`DiskStoreBuilder::parse`], then
    /// [`DiskStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`DiskStoreBuilder::parse`] and [`DiskStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let url = format!("disk://{}/sessions?max_record_bytes=65536", dir.path().display());
    /// let store = DiskStore::connect(&url).await?;
    /// assert_eq!(store.max_record_bytes(), 65536);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn connect(text: &str) -> Result<Self> {
        DiskStoreBuilder::parse(text)?.open().await
    }

    /// The store's directory, made absolute when the store was opened.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::{DATABASE_FILE, DiskStore};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let tmp = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(tmp.path().join("s")).await?;
    /// assert!(store.dir().is_absolute());
    /// assert_eq!(store.database_file(), store.dir().join(DATABASE_FILE));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The database file inside the directory ([`DATABASE_FILE`](crate::DATABASE_FILE)).
    ///
    /// # Examples
    ///
    /// See [`DiskStore::dir`].
    pub fn database_file(&self) -> &Path {
        &self.inner.file
    }

    /// The largest encoded record accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_store_disk::{DEFAULT_MAX_RECORD_BYTES, DiskStore};
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let tmp = tempfile::tempdir().unwrap();
    /// let store = DiskStore::open(tmp.path().join("s")).await?;
    /// assert_eq!(store.max_record_bytes(), DEFAULT_MAX_RECORD_BYTES);
    /// assert_eq!(store.browser_idle(), Duration::from_secs(86_400));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn max_record_bytes(&self) -> usize {
        self.inner.max_record_bytes
    }

    /// How long a browser session lives after its last access.
    ///
    /// # Examples
    ///
    /// See [`DiskStore::max_record_bytes`].
    pub fn browser_idle(&self) -> Duration {
        self.inner.browser_idle
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Queues a write and waits until its transaction committed durably.
    async fn submit(&self, operation: Operation, op: Op) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .inner
            .sender
            .as_ref()
            .ok_or_else(|| error::writer_gone(operation, &self.inner.dir))?;
        sender
            .send(Request {
                operation,
                op,
                reply,
            })
            .map_err(|_| error::writer_gone(operation, &self.inner.dir))?;
        answer
            .await
            .map_err(|_| error::writer_gone(operation, &self.inner.dir))?
    }

    /// Runs `read` in a redb read transaction on tokio's blocking pool.
    async fn read<T, F>(&self, operation: Operation, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &ReadTransaction, Timestamp) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let now = self.now();
        tokio::task::spawn_blocking(move || {
            let tx = inner
                .db
                .begin_read()
                .map_err(|e| error::from_redb(operation, &inner.dir, e))?;
            read(&inner, &tx, now)
        })
        .await
        .map_err(|e| error::join_failed(operation, &self.inner.dir, e))?
    }

    /// Encodes a record for `set`/`create` on the calling task, refusing one that is too large.
    fn put(
        &self,
        operation: Operation,
        id: &SessionId,
        record: &Record,
        create: bool,
    ) -> Result<Op> {
        let deadline = record.deadline(self.inner.browser_idle);
        let bytes = layout::encode(record, deadline)
            .map_err(|e| error::encode_failed(operation, &self.inner.dir, e))?;
        if bytes.len() > self.inner.max_record_bytes {
            return Err(error::too_large(
                operation,
                &self.inner.dir,
                bytes.len(),
                self.inner.max_record_bytes,
            ));
        }
        Ok(Op::Put {
            id: *id,
            record: record.clone(),
            bytes,
            deadline: deadline.as_millis(),
            create,
        })
    }

    fn expect_done(operation: Operation, reply: Reply) -> Result<()> {
        match reply {
            Reply::Done => Ok(()),
            other => Err(unexpected(operation, other)),
        }
    }

    fn expect_count(operation: Operation, reply: Reply) -> Result<u64> {
        match reply {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(operation, other)),
        }
    }
}

fn unexpected(operation: Operation, reply: Reply) -> Error {
    Error::new(
        ErrorKind::Backend,
        operation,
        format!("internal error: the writer answered {reply:?}"),
    )
    .with_backend(BACKEND)
}

impl DiskStoreBuilder {
    /// Creates the directory if missing, opens (or creates) the database file in it and starts
    /// the writer thread.
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the directory or file cannot be created or opened, or when
    /// another process (or another `DiskStore` in this process) has the store open; the message
    /// says so and the error's target is the directory. [`ErrorKind::Corrupt`] when the file is
    /// not a database redb can read.
    pub async fn open(self) -> Result<DiskStore> {
        tokio::task::spawn_blocking(move || open_blocking(&self))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    Action::Connect,
                    "the blocking open task did not complete",
                )
                .with_backend(BACKEND)
                .with_source(e)
            })?
    }
}

fn open_blocking(builder: &DiskStoreBuilder) -> Result<DiskStore> {
    let given = builder.get_dir();
    let dir = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            Action::Connect,
            "cannot create the store's directory",
        )
        .with_backend(BACKEND)
        .with_target(error::target(&dir))
        .with_source(e)
    })?;
    let file = dir.join(DATABASE_FILE);
    let db = Database::builder()
        .create(&file)
        .map_err(|e| open_error(&dir, e))?;
    let tx = db
        .begin_write()
        .map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
    {
        let created = tx
            .open_table(SESSIONS)
            .and_then(|_| tx.open_table(EXPIRY))
            .and_then(|_| tx.open_table(OWNERS));
        created.map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
    }
    tx.commit()
        .map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
    let db = Arc::new(db);
    let (sender, receiver) = mpsc::channel();
    let writer = Writer {
        db: db.clone(),
        dir: dir.clone(),
        browser_idle: builder.get_browser_idle(),
        clock: builder.get_clock().clone(),
        max_record_bytes: builder.get_max_record_bytes(),
    };
    let thread = std::thread::Builder::new()
        .name("sessionbank-disk-writer".into())
        .spawn(move || writer.run(receiver))
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                Action::Connect,
                "cannot start the writer thread",
            )
            .with_backend(BACKEND)
            .with_target(error::target(&dir))
            .with_source(e)
        })?;
    tracing::debug!(target: "sessionbank::disk", dir = %dir.display(), "disk store opened");
    Ok(DiskStore {
        inner: Arc::new(Inner {
            db,
            dir,
            file,
            max_record_bytes: builder.get_max_record_bytes(),
            browser_idle: builder.get_browser_idle(),
            clock: builder.get_clock().clone(),
            sender: Some(sender),
            thread: Some(thread),
        }),
    })
}

fn open_error(dir: &Path, err: redb::DatabaseError) -> Error {
    if matches!(err, redb::DatabaseError::DatabaseAlreadyOpen) {
        let error = Error::new(
            ErrorKind::Unavailable,
            Action::Connect,
            format!(
                "the disk store at {} is already open by another process (or by another DiskStore \
                 in this process); only one may have it open at a time",
                dir.display()
            ),
        )
        .with_backend(BACKEND)
        .with_target(error::target(dir))
        .with_source(err);
        tracing::warn!(target: "sessionbank::disk", error = %error, "disk store error");
        return error;
    }
    error::from_redb(Action::Connect, dir, err)
}

impl Inner {
    fn live(&self, record: &Record, now: Timestamp) -> bool {
        record.is_live(now, self.browser_idle)
    }

    /// Reads and decodes one record inside `tx`: `None` when absent or expired.
    fn live_record(
        &self,
        operation: Operation,
        tx: &ReadTransaction,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<Record>> {
        let table = tx
            .open_table(SESSIONS)
            .map_err(|e| error::from_redb(operation, &self.dir, e))?;
        let Some(value) = table
            .get(id)
            .map_err(|e| error::from_redb(operation, &self.dir, e))?
        else {
            return Ok(None);
        };
        let record =
            layout::decode(value.value()).map_err(|e| error::corrupt(operation, &self.dir, e))?;
        Ok(self.live(&record, now).then_some(record))
    }
}

#[async_trait]
impl Store for DiskStore {
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
        let id = *id;
        self.read(Operation::Get, move |inner, tx, now| {
            inner.live_record(Operation::Get, tx, id.as_str(), now)
        })
        .await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = self.put(Operation::Set, id, record, false)?;
        Self::expect_done(Operation::Set, self.submit(Operation::Set, op).await?)
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let op = self.put(Operation::Create, id, record, true)?;
        Self::expect_done(Operation::Create, self.submit(Operation::Create, op).await?)
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let op = Op::Update {
            id: *id,
            patch: patch.clone(),
        };
        Self::expect_done(Operation::Update, self.submit(Operation::Update, op).await?)
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let op = Op::Touch {
            id: *id,
            expires_at,
        };
        Self::expect_done(Operation::Touch, self.submit(Operation::Touch, op).await?)
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        let op = Op::Destroy { id: *id };
        Self::expect_done(
            Operation::Destroy,
            self.submit(Operation::Destroy, op).await?,
        )
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let op = Op::Rename {
            old: *old,
            new: *new,
        };
        Self::expect_done(Operation::Rename, self.submit(Operation::Rename, op).await?)
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let after = cursor.map(SessionId::parse).transpose()?;
        let limit = limit.max(1);
        self.read(Operation::All, move |inner, tx, now| {
            let op = Operation::All;
            let table = tx
                .open_table(SESSIONS)
                .map_err(|e| error::from_redb(op, &inner.dir, e))?;
            let range = match &after {
                Some(after) => table.range::<&str>((
                    std::ops::Bound::Excluded(after.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&str>(..),
            }
            .map_err(|e| error::from_redb(op, &inner.dir, e))?;
            let mut sessions = Vec::with_capacity(limit.min(1024));
            for entry in range {
                let (key, value) = entry.map_err(|e| error::from_redb(op, &inner.dir, e))?;
                let Ok(id) = SessionId::parse(key.value()) else {
                    continue;
                };
                match layout::decode(value.value()) {
                    Ok(record) if inner.live(&record, now) => sessions.push((id, record)),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(
                            target: "sessionbank::disk",
                            error = %e,
                            "all: skipped a session that does not decode"
                        );
                    }
                }
                if sessions.len() >= limit {
                    break;
                }
            }
            let next = if sessions.len() >= limit {
                sessions.last().map(|(id, _)| id.as_str().to_owned())
            } else {
                None
            };
            Ok(Page { sessions, next })
        })
        .await
    }

    async fn length(&self) -> Result<u64> {
        self.read(Operation::Length, move |inner, tx, now| {
            let op = Operation::Length;
            let table = tx
                .open_table(SESSIONS)
                .map_err(|e| error::from_redb(op, &inner.dir, e))?;
            let mut live = 0u64;
            for entry in table
                .range::<&str>(..)
                .map_err(|e| error::from_redb(op, &inner.dir, e))?
            {
                let (_, value) = entry.map_err(|e| error::from_redb(op, &inner.dir, e))?;
                if layout::is_live(value.value(), now, inner.browser_idle).unwrap_or(false) {
                    live += 1;
                }
            }
            Ok(live)
        })
        .await
    }

    async fn clear(&self) -> Result<u64> {
        Self::expect_count(
            Operation::Clear,
            self.submit(Operation::Clear, Op::Clear).await?,
        )
    }

    async fn cleanup(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let op = Op::CleanupBatch {
                limit: CLEANUP_BATCH,
            };
            match self.submit(Operation::Cleanup, op).await? {
                Reply::Cleaned { removed, more } => {
                    total += removed;
                    if !more {
                        break;
                    }
                }
                other => return Err(unexpected(Operation::Cleanup, other)),
            }
        }
        tracing::debug!(target: "sessionbank::disk", cleaned = total, "cleanup finished");
        Ok(total)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let owner = owner.to_owned();
        self.read(Operation::OwnedBy, move |inner, tx, now| {
            let op = Operation::OwnedBy;
            let owners = tx
                .open_table(OWNERS)
                .map_err(|e| error::from_redb(op, &inner.dir, e))?;
            let mut ids = Vec::new();
            for entry in owners
                .range::<(&str, &str)>((owner.as_str(), "")..)
                .map_err(|e| error::from_redb(op, &inner.dir, e))?
            {
                let (key, _) = entry.map_err(|e| error::from_redb(op, &inner.dir, e))?;
                let (o, id) = key.value();
                if o != owner {
                    break;
                }
                ids.push(id.to_owned());
            }
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let Ok(parsed) = SessionId::parse(&id) else {
                    continue;
                };
                match inner.live_record(op, tx, &id, now) {
                    Ok(Some(record)) if record.owner.as_deref() == Some(owner.as_str()) => {
                        found.push((parsed, record));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Corrupt => {}
                    Err(e) => return Err(e),
                }
            }
            found.sort_by_key(|(_, r)| r.created_at);
            Ok(found)
        })
        .await
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let op = Op::DestroyOwnedBy {
            owner: owner.to_owned(),
            except: except.copied(),
        };
        Self::expect_count(
            Operation::DestroyOwnedBy,
            self.submit(Operation::DestroyOwnedBy, op).await?,
        )
    }
}
