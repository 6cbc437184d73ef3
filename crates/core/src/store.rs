//! The Store contract every backend implements, its capabilities, and convenience methods.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};

/// What a backend supports. An operation whose flag is `false` returns
/// [`ErrorKind::Unsupported`], never a silent no-op; the conformance suite checks both ways.
///
/// Fields may be added in later versions, so build one with [`Capabilities::new`] (everything
/// off) and the `with_…` methods.
///
/// # Examples
///
/// ```
/// use sessionbank_core::Capabilities;
///
/// let caps = Capabilities::new().with_list(true).with_owner_index(true);
/// assert!(caps.list && caps.owner_index);
/// assert!(!caps.native_expiry);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `all`, `length` and `clear` work.
    pub list: bool,
    /// `owned_by` and `destroy_owned_by` work.
    pub owner_index: bool,
    /// `rename` is atomic: no reader ever sees both ids or neither.
    pub atomic_rename: bool,
    /// The backend expires records itself (Redis TTL, a TTL index): `cleanup` has little or
    /// nothing to do, and the registry starts no janitor.
    pub native_expiry: bool,
    /// An acknowledged write survives a crash of this process (and, for embedded stores, of
    /// the machine's power only as far as the disk honours fsync).
    pub durable: bool,
}

impl Capabilities {
    /// No capability at all.
    pub const fn new() -> Self {
        Self {
            list: false,
            owner_index: false,
            atomic_rename: false,
            native_expiry: false,
            durable: false,
        }
    }

    /// Sets [`list`](Self::list).
    #[must_use]
    pub const fn with_list(mut self, yes: bool) -> Self {
        self.list = yes;
        self
    }

    /// Sets [`owner_index`](Self::owner_index).
    #[must_use]
    pub const fn with_owner_index(mut self, yes: bool) -> Self {
        self.owner_index = yes;
        self
    }

    /// Sets [`atomic_rename`](Self::atomic_rename).
    #[must_use]
    pub const fn with_atomic_rename(mut self, yes: bool) -> Self {
        self.atomic_rename = yes;
        self
    }

    /// Sets [`native_expiry`](Self::native_expiry).
    #[must_use]
    pub const fn with_native_expiry(mut self, yes: bool) -> Self {
        self.native_expiry = yes;
        self
    }

    /// Sets [`durable`](Self::durable).
    #[must_use]
    pub const fn with_durable(mut self, yes: bool) -> Self {
        self.durable = yes;
        self
    }
}

/// One page of [`Store::all`]: live sessions, and the cursor for the next page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The sessions on this page.
    pub sessions: Vec<(SessionId, Record)>,
    /// Pass this to `all` for the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// The storage contract: one object-safe async trait, implemented by every backend.
///
/// The seed's names (`get`, `set`, `destroy`, `all`, `length`, `clear`, `cleanup`, `touch`) are
/// the vocabulary; `create`, `update`, `rename` and the owner index go beyond it. Each method's
/// `# Contract` section lists sentences that the conformance suite in `sessionbank-testkit`
/// checks one trial each.
///
/// "Live" below means: the record's [`deadline`](Record::deadline) is later than the store's
/// current time. A store enforces this on every read, whether or not `cleanup` ran.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::{MemoryStore, Patch, Record, SessionId, Store, Timestamp};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
/// store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(60))).await?;
/// store.update(&id, &Patch::new().set("user", "ada".into())).await?;
/// assert_eq!(store.get(&id).await?.map(|r| r.data["user"].clone()), Some("ada".into()));
/// store.destroy(&id).await?;
/// assert!(store.update(&id, &Patch::new()).await.is_err()); // Gone: never resurrected
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The backend's short name, e.g. `memory`, `disk`, `postgres`.
    fn backend(&self) -> &'static str;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Reads a session.
    ///
    /// # Contract
    /// - Returns the record last written for `id`, with the same data, expiry, created time,
    ///   last access and owner.
    /// - Returns `None` for an id that was never written.
    /// - Returns `None` for an expired record, even before `cleanup` ran.
    /// - Returns `None` after `destroy`.
    async fn get(&self, id: &SessionId) -> Result<Option<Record>>;

    /// Writes a session whether or not the id exists (the seed's upsert).
    ///
    /// # Contract
    /// - Works for a new id and overwrites an existing one.
    /// - Replaces the whole record: keys absent from `record` are gone afterwards.
    /// - Stores a browser session (`expires_at: None`) and keeps it while
    ///   `last_access + browser_idle` is in the future.
    async fn set(&self, id: &SessionId, record: &Record) -> Result<()>;

    /// Inserts a new session.
    ///
    /// # Contract
    /// - Stores the record when no live session has `id`.
    /// - Fails with [`ErrorKind::AlreadyExists`] when a live session has `id`, and leaves that
    ///   session untouched.
    /// - Succeeds over an expired record with the same id.
    async fn create(&self, id: &SessionId, record: &Record) -> Result<()>;

    /// Applies `patch` atomically: the set keys, the removed keys, and optionally a new expiry
    /// and owner; `last_access` becomes now.
    ///
    /// # Contract
    /// - Changes only the keys named in the patch; other keys keep their values.
    /// - Concurrent updates of different keys of one session all survive.
    /// - Fails with [`ErrorKind::Gone`] for a missing, destroyed or expired id, and does not
    ///   bring the session back.
    /// - A new expiry in the patch takes effect; a patch without one keeps the old expiry.
    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()>;

    /// Moves the expiry and sets `last_access` to now, writing no data.
    ///
    /// # Contract
    /// - The new expiry is what `get` returns afterwards; the data is unchanged.
    /// - Fails with [`ErrorKind::Gone`] for a missing, destroyed or expired id, and does not
    ///   bring the session back.
    async fn touch(&self, id: &SessionId, expires_at: Option<crate::Timestamp>) -> Result<()>;

    /// Removes a session.
    ///
    /// # Contract
    /// - `get` returns `None` afterwards.
    /// - Succeeds whether or not the session exists (idempotent).
    async fn destroy(&self, id: &SessionId) -> Result<()>;

    /// Moves a session to a new id, keeping data, expiry, created time and owner; `last_access`
    /// becomes now.
    ///
    /// # Contract
    /// - Afterwards `new` holds the data and `old` is gone.
    /// - Fails with [`ErrorKind::Gone`] when `old` is missing or expired.
    /// - Fails with [`ErrorKind::AlreadyExists`] when `new` is a live session, changing neither.
    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()>;

    /// One page of live sessions. Pass `None` for the first page and the returned
    /// [`Page::next`] for the following ones.
    ///
    /// # Contract
    /// - Pages together list every live session exactly once (when nothing writes meanwhile).
    /// - Never lists an expired session.
    /// - A page holds at most `limit` sessions.
    /// - Without the `list` capability: [`ErrorKind::Unsupported`].
    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page>;

    /// Counts live sessions.
    ///
    /// # Contract
    /// - Equals the number of sessions `all` lists; expired ones do not count.
    /// - Without the `list` capability: [`ErrorKind::Unsupported`].
    async fn length(&self) -> Result<u64>;

    /// Removes every session of this store (its namespace, table, prefix), and nothing else.
    /// Returns how many were removed, live or expired.
    ///
    /// # Contract
    /// - `length` is 0 afterwards.
    /// - A store in another namespace keeps its sessions.
    /// - Without the `list` capability: [`ErrorKind::Unsupported`].
    async fn clear(&self) -> Result<u64>;

    /// Removes expired sessions, returning how many. Its cost grows with the number of expired
    /// sessions, not with the total.
    ///
    /// # Contract
    /// - Removes expired records and keeps live ones.
    /// - Removes browser sessions idle for longer than `browser_idle`.
    async fn cleanup(&self) -> Result<u64>;

    /// The live sessions of `owner`.
    ///
    /// # Contract
    /// - Lists every live session whose owner is `owner`, and no other.
    /// - Follows owner changes made by `set`, `update` and `rename`, and forgets destroyed
    ///   sessions.
    /// - Without the `owner_index` capability: [`ErrorKind::Unsupported`].
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>>;

    /// Destroys every session of `owner` except `except` ("log this user out everywhere else"),
    /// returning how many were destroyed.
    ///
    /// # Contract
    /// - Afterwards `owned_by(owner)` lists only `except`, if it was owned by `owner`.
    /// - Sessions of other owners stay.
    /// - Without the `owner_index` capability: [`ErrorKind::Unsupported`].
    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64>;
}

/// A boxed stream of sessions, as [`StoreExt::stream_all`] returns.
pub type SessionStream<'a> = Pin<Box<dyn Stream<Item = Result<(SessionId, Record)>> + Send + 'a>>;

/// Convenience methods for every [`Store`], implemented once on top of the trait, so wrappers
/// cannot forget to forward them.
///
/// # Examples
///
/// ```
/// use futures::TryStreamExt;
/// use sessionbank_core::{MemoryStore, Record, SessionId, Store, StoreExt, Timestamp};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// store.set(&SessionId::generate()?, &Record::new(Timestamp::now())).await?;
/// let all: Vec<_> = store.stream_all(100).try_collect().await?;
/// assert_eq!(all.len(), 1);
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub trait StoreExt: Store {
    /// Streams every live session, fetching `page_size` at a time.
    fn stream_all(&self, page_size: usize) -> SessionStream<'_> {
        let page_size = page_size.max(1);
        Box::pin(futures::stream::try_unfold(
            (Some(None::<String>), Vec::new().into_iter()),
            move |(mut cursor, mut buffered)| async move {
                loop {
                    if let Some(item) = buffered.next() {
                        return Ok(Some((item, (cursor, buffered))));
                    }
                    let Some(current) = cursor.take() else {
                        return Ok(None);
                    };
                    let page = self.all(current.as_deref(), page_size).await?;
                    cursor = page.next.map(Some);
                    buffered = page.sessions.into_iter();
                }
            },
        ))
    }

    /// Reads a session that must exist.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the session is missing or expired.
    fn get_required<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Record>> + Send + 'a>> {
        Box::pin(async move {
            self.get(id).await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    Operation::Get,
                    "no live session has this id",
                )
                .with_backend(self.backend())
            })
        })
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
