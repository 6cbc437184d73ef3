//! [`MemcachedStore`]: the [`Store`] implementation.

use std::sync::Arc;
use std::time::Duration;

use sessionbank_core::{
    Action, Capabilities, Error, Operation, Page, Patch, Record, Result, SessionId, SharedClock,
    Store, Timestamp, async_trait,
};

use crate::client::{Cluster, Item, Reply, Request, Server, StoreCommand, StoreReply};
use crate::config::MemcachedStoreBuilder;
use crate::error::{self, BACKEND};
use crate::layout::{self, FORMAT_FLAGS, ITEM_OVERHEAD};

/// How many times `update`, `touch`, `create` and `rename` retry after losing a `cas` race
/// before giving up with [`ErrorKind::Unavailable`](sessionbank_core::ErrorKind::Unavailable).
///
/// # Examples
///
/// ```
/// assert!(sessionbank_store_memcached::MAX_CAS_ATTEMPTS >= 100);
/// ```
pub const MAX_CAS_ATTEMPTS: usize = 1000;

/// Sessions in one or more memcached servers, spread over them by rendezvous hashing; expiry
/// is memcached's own (`exptime`), and reads also check each record's deadline.
///
/// `update` and `touch` read the item with `gets` and write it back with `cas`, retrying when
/// another writer got there first, so concurrent updates of different keys all survive and a
/// destroyed session is never brought back. `create` is memcached's `add`.
///
/// memcached cannot list its keys: `all`, `length`, `clear`, `owned_by` and
/// `destroy_owned_by` return [`ErrorKind::Unsupported`](sessionbank_core::ErrorKind::Unsupported),
/// as [`capabilities`](Store::capabilities) says. `rename` adds the new key, then deletes the
/// old one: not atomic (a reader may briefly see both).
///
/// Clones share the connection pools.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
/// use sessionbank_store_memcached::MemcachedStore;
///
/// # async fn demo() -> sessionbank_core::Result<()> {
/// let store = MemcachedStore::connect("memcached://10.0.0.1:11211,10.0.0.2:11211").await?;
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
/// store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600))).await?;
/// store.update(&id, &Patch::new().set("user", "ada".into())).await?;
/// assert!(store.capabilities().native_expiry);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemcachedStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cluster: Cluster,
    pub(crate) prefix: String,
    pub(crate) max_item_bytes: usize,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
}

impl MemcachedStore {
    /// Opens a store from a URL such as `memcached://host1:11211,host2:11211/?prefix=app:`.
    ///
    /// # Errors
    ///
    /// As [`MemcachedStoreBuilder::parse`] and [`MemcachedStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// See [`MemcachedStore`].
    pub async fn connect(url: &str) -> Result<Self> {
        MemcachedStoreBuilder::parse(url)?.open().await
    }

    /// Settings for these servers, to adjust and then [`open`](MemcachedStoreBuilder::open).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_store_memcached::MemcachedStore;
    ///
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = MemcachedStore::builder(["127.0.0.1:11211"]).prefix("app:").open().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> MemcachedStoreBuilder {
        MemcachedStoreBuilder::new(servers)
    }

    /// The server (`host:port`) that holds session `id`; for operators, and for tests that
    /// stop one server.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: sessionbank_store_memcached::MemcachedStore) -> sessionbank_core::Result<()> {
    /// let id = sessionbank_core::SessionId::generate()?;
    /// println!("on {}", store.server_for(&id));
    /// # Ok(())
    /// # }
    /// ```
    pub fn server_for(&self, id: &SessionId) -> &str {
        self.server(&self.key(id)).addr()
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: sessionbank_store_memcached::MemcachedStore) {
    /// assert_eq!(store.prefix(), "sessionbank:");
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn key(&self, id: &SessionId) -> Vec<u8> {
        layout::key(&self.inner.prefix, id)
    }

    fn server(&self, key: &[u8]) -> &Server {
        self.inner.cluster.server_for(key)
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn live(&self, record: &Record, now: Timestamp) -> bool {
        record.is_live(now, self.inner.browser_idle)
    }

    /// Encodes `record` and checks it fits the item size limit.
    fn encode(&self, operation: Operation, key: &[u8], record: &Record) -> Result<Vec<u8>> {
        let value = layout::encode(record).map_err(|e| error::encode_failed(operation, e))?;
        let size = key.len() + value.len() + ITEM_OVERHEAD;
        if size > self.inner.max_item_bytes {
            return Err(error::too_large(operation, size, self.inner.max_item_bytes));
        }
        Ok(value)
    }

    async fn call(
        &self,
        operation: Operation,
        server: &Server,
        request: &Request<'_>,
    ) -> Result<Reply> {
        server
            .call(request)
            .await
            .map_err(|e| error::from_client(operation, server.addr(), e))
    }

    async fn gets(
        &self,
        operation: Operation,
        server: &Server,
        key: &[u8],
    ) -> Result<Option<Item>> {
        match self.call(operation, server, &Request::Gets(key)).await? {
            Reply::Item(item) => Ok(item),
            _ => Err(error::unexpected(operation, server.addr())),
        }
    }

    /// Reads and decodes the item, `None` when absent.
    async fn read(
        &self,
        operation: Operation,
        server: &Server,
        key: &[u8],
    ) -> Result<Option<(Record, u64)>> {
        match self.gets(operation, server, key).await? {
            None => Ok(None),
            Some(item) => layout::decode(item.flags, &item.value)
                .map(|record| Some((record, item.cas)))
                .map_err(|e| error::corrupt(operation, server.addr(), e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        operation: Operation,
        server: &Server,
        command: StoreCommand,
        key: &[u8],
        record: &Record,
        value: &[u8],
        now: Timestamp,
    ) -> Result<StoreReply> {
        let exptime = layout::exptime(record.deadline(self.inner.browser_idle), now);
        let request = Request::Store {
            command,
            key,
            flags: FORMAT_FLAGS,
            exptime,
            value,
        };
        match self.call(operation, server, &request).await? {
            Reply::Store(reply) => Ok(reply),
            _ => Err(error::unexpected(operation, server.addr())),
        }
    }

    async fn delete(&self, operation: Operation, server: &Server, key: &[u8]) -> Result<bool> {
        match self.call(operation, server, &Request::Delete(key)).await? {
            Reply::Deleted(found) => Ok(found),
            _ => Err(error::unexpected(operation, server.addr())),
        }
    }

    /// Reads the live record, applies `change`, and writes the result with `cas`, retrying
    /// on conflict. A missing, expired or concurrently deleted record is `Gone`.
    async fn modify(
        &self,
        operation: Operation,
        id: &SessionId,
        change: impl Fn(&mut Record, Timestamp),
    ) -> Result<()> {
        let key = self.key(id);
        let server = self.server(&key);
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let now = self.now();
            let Some((record, cas)) = self.read(operation, server, &key).await? else {
                return Err(Error::gone(operation).with_backend(BACKEND));
            };
            if !self.live(&record, now) {
                return Err(Error::gone(operation).with_backend(BACKEND));
            }
            let mut record = record;
            change(&mut record, now);
            let value = self.encode(operation, &key, &record)?;
            match self
                .store(
                    operation,
                    server,
                    StoreCommand::Cas(cas),
                    &key,
                    &record,
                    &value,
                    now,
                )
                .await?
            {
                StoreReply::Stored => return Ok(()),
                StoreReply::NotFound => return Err(Error::gone(operation).with_backend(BACKEND)),
                StoreReply::Exists => backoff(attempt).await,
                StoreReply::NotStored => return Err(error::unexpected(operation, server.addr())),
            }
        }
        Err(error::contention(
            operation,
            server.addr(),
            MAX_CAS_ATTEMPTS,
        ))
    }

    /// Writes `record` under `key` only when no live session holds it: `add`, and when an
    /// expired (not yet evicted) item is in the way, `cas` over it.
    async fn insert(
        &self,
        operation: Operation,
        key: &[u8],
        record: &Record,
        now: Timestamp,
    ) -> Result<()> {
        let server = self.server(key);
        let value = self.encode(operation, key, record)?;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            match self
                .store(
                    operation,
                    server,
                    StoreCommand::Add,
                    key,
                    record,
                    &value,
                    now,
                )
                .await?
            {
                StoreReply::Stored => return Ok(()),
                StoreReply::NotStored => {}
                _ => return Err(error::unexpected(operation, server.addr())),
            }
            let Some(item) = self.gets(operation, server, key).await? else {
                continue; // deleted or evicted meanwhile: add again
            };
            let existing = layout::decode(item.flags, &item.value)
                .map_err(|e| error::corrupt(operation, server.addr(), e))?;
            if self.live(&existing, self.now()) {
                return Err(Error::already_exists(operation).with_backend(BACKEND));
            }
            match self
                .store(
                    operation,
                    server,
                    StoreCommand::Cas(item.cas),
                    key,
                    record,
                    &value,
                    now,
                )
                .await?
            {
                StoreReply::Stored => return Ok(()),
                StoreReply::Exists | StoreReply::NotFound => backoff(attempt).await,
                StoreReply::NotStored => return Err(error::unexpected(operation, server.addr())),
            }
        }
        Err(error::contention(
            operation,
            server.addr(),
            MAX_CAS_ATTEMPTS,
        ))
    }
}

/// After a lost `cas`: yield, then wait a little longer (with jitter) on each further loss, so
/// that many writers on one hot session do not keep colliding.
async fn backoff(attempt: usize) {
    if attempt < 2 {
        tokio::task::yield_now().await;
        return;
    }
    let ceiling_us = (50u64 << attempt.min(7)).min(5000);
    let wait = rand::random_range(0..=ceiling_us);
    tokio::time::sleep(Duration::from_micros(wait)).await;
}

impl MemcachedStoreBuilder {
    /// Connects: builds a connection pool per server and asks every server for its version;
    /// the store opens when at least one answers (the others are retried on each call).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for invalid settings;
    /// otherwise the error of the last server that did not answer, when none did.
    ///
    /// # Examples
    ///
    /// See [`MemcachedStore::builder`].
    pub async fn open(self) -> Result<MemcachedStore> {
        self.check()?;
        let servers = self
            .get_servers()
            .iter()
            .map(|addr| {
                Server::new(
                    addr.clone(),
                    self.get_pool_size(),
                    self.get_connect_timeout(),
                    self.get_timeout(),
                    self.get_max_item_bytes(),
                )
            })
            .collect();
        let cluster = Cluster::new(servers);
        let mut last_error = None;
        let mut answered = 0;
        for server in cluster.servers() {
            match server.call(&Request::Version).await {
                Ok(Reply::Version(version)) => {
                    answered += 1;
                    tracing::debug!(target: "sessionbank::memcached", server = server.addr(), %version, "memcached server answered");
                }
                Ok(_) => last_error = Some(error::unexpected(Action::Connect, server.addr())),
                Err(e) => last_error = Some(error::from_client(Action::Connect, server.addr(), e)),
            }
        }
        if answered == 0
            && let Some(e) = last_error
        {
            return Err(e);
        }
        Ok(MemcachedStore {
            inner: Arc::new(Inner {
                cluster,
                prefix: self.get_prefix().to_owned(),
                max_item_bytes: self.get_max_item_bytes(),
                browser_idle: self.get_browser_idle(),
                clock: self.get_clock().clone(),
            }),
        })
    }
}

#[async_trait]
impl Store for MemcachedStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(false)
            .with_owner_index(false)
            .with_atomic_rename(false)
            .with_native_expiry(true)
            .with_durable(false)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let key = self.key(id);
        let server = self.server(&key);
        let now = self.now();
        Ok(self
            .read(Operation::Get, server, &key)
            .await?
            .map(|(record, _)| record)
            .filter(|record| self.live(record, now)))
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        let key = self.key(id);
        let server = self.server(&key);
        let value = self.encode(Operation::Set, &key, record)?;
        match self
            .store(
                Operation::Set,
                server,
                StoreCommand::Set,
                &key,
                record,
                &value,
                self.now(),
            )
            .await?
        {
            StoreReply::Stored => Ok(()),
            _ => Err(error::unexpected(Operation::Set, server.addr())),
        }
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        let key = self.key(id);
        self.insert(Operation::Create, &key, record, self.now())
            .await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        self.modify(Operation::Update, id, |record, now| {
            patch.apply_to(record, now)
        })
        .await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        self.modify(Operation::Touch, id, |record, now| {
            record.expires_at = expires_at;
            record.last_access = now;
        })
        .await
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        let key = self.key(id);
        let server = self.server(&key);
        self.delete(Operation::Destroy, server, &key).await?;
        Ok(())
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        const OP: Operation = Operation::Rename;
        if old == new {
            return self
                .modify(OP, old, |record, now| record.last_access = now)
                .await;
        }
        let old_key = self.key(old);
        let old_server = self.server(&old_key);
        let new_key = self.key(new);
        let new_server = self.server(&new_key);
        let mut copied = false;
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let now = self.now();
            let (mut record, cas) = match self.read(OP, old_server, &old_key).await? {
                Some((record, cas)) if self.live(&record, now) => (record, cas),
                _ => {
                    // Destroyed (or expired) before or while we copied it: the rename must not
                    // bring it back under the new id.
                    if copied {
                        self.delete(OP, new_server, &new_key).await?;
                    }
                    return Err(Error::gone(OP).with_backend(BACKEND));
                }
            };
            record.last_access = now;
            if copied {
                let value = self.encode(OP, &new_key, &record)?;
                self.store(
                    OP,
                    new_server,
                    StoreCommand::Set,
                    &new_key,
                    &record,
                    &value,
                    now,
                )
                .await?;
            } else {
                self.insert(OP, &new_key, &record, now).await?;
                copied = true;
            }
            // Retire the old id only if nothing wrote it since we read it: a `cas` with an
            // expiry in the past is memcached's compare-and-delete. When an update slipped in
            // between (`Exists`), copy again, so no acknowledged write is lost.
            let mut retired = record.clone();
            retired.expires_at = Some(Timestamp::from_millis(0));
            let value = self.encode(OP, &old_key, &retired)?;
            match self
                .store(
                    OP,
                    old_server,
                    StoreCommand::Cas(cas),
                    &old_key,
                    &retired,
                    &value,
                    now,
                )
                .await?
            {
                StoreReply::Stored => {
                    // Already invisible (expired); the delete only frees the memory.
                    let _ = self.delete(OP, old_server, &old_key).await;
                    return Ok(());
                }
                StoreReply::Exists => backoff(attempt).await,
                StoreReply::NotFound => {
                    self.delete(OP, new_server, &new_key).await?;
                    return Err(Error::gone(OP).with_backend(BACKEND));
                }
                StoreReply::NotStored => return Err(error::unexpected(OP, old_server.addr())),
            }
        }
        // Still contended: leave the old id as it is, and the new one as it was.
        self.delete(OP, new_server, &new_key).await?;
        Err(error::contention(OP, old_server.addr(), MAX_CAS_ATTEMPTS))
    }

    async fn all(&self, _cursor: Option<&str>, _limit: usize) -> Result<Page> {
        Err(error::unsupported(Operation::All))
    }

    async fn length(&self) -> Result<u64> {
        Err(error::unsupported(Operation::Length))
    }

    async fn clear(&self) -> Result<u64> {
        Err(error::unsupported(Operation::Clear))
    }

    /// memcached expires items itself: nothing to do.
    async fn cleanup(&self) -> Result<u64> {
        Ok(0)
    }

    async fn owned_by(&self, _owner: &str) -> Result<Vec<(SessionId, Record)>> {
        Err(error::unsupported(Operation::OwnedBy))
    }

    async fn destroy_owned_by(&self, _owner: &str, _except: Option<&SessionId>) -> Result<u64> {
        Err(error::unsupported(Operation::DestroyOwnedBy))
    }
}
