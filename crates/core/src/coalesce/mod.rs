//! [`Coalescing`]: concurrent reads of one session share one read, concurrent writes one write.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;

use crate::error::{Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::store::{Capabilities, Page, Store};
use crate::time::Timestamp;

mod lanes;

use lanes::{Change, InFlight, Joined, Lane, Shared, Waiter, dropped};

/// How many calls of one session may wait behind the one in flight, per lane, unless
/// [`Coalescing::with_max_waiters`] says otherwise. More get `Unavailable` at once, so a stuck
/// backend call cannot pile up unbounded memory behind it.
pub const DEFAULT_MAX_WAITERS: usize = 1024;

/// A [`Store`] wrapper that shares concurrent reads of one session and merges
/// concurrent updates of it into one write (group commit).
///
/// Requests that race on one session (a page's parallel API calls, the wrk benchmark's 64
/// connections with one cookie) each load the session and most end in `update`. Every backend
/// must apply each `update` atomically on the server: on Redis a script run, on SQL a row lock,
/// on Memcached a compare-and-set loop that retries under contention. This wrapper keeps at most
/// one `get` and one write (`update` or `touch`) per session in flight from this process:
/// - an `update` or `touch` that arrives while another write of the same session is in flight
///   waits; when that one returns, every waiting change is merged ([`Patch::then`], in arrival
///   order; a `touch` is a patch that moves the expiry only) and written by one `update` of the
///   inner store, or by one `touch` when all were touches;
/// - a `get` that arrives while another `get` of the same session is in flight does **not** take
///   that one's answer (it may have been read before the caller's own last write); it waits, and
///   when that one returns, one new `get` answers every waiting caller.
///
/// Why the [`Store`] contract still holds:
/// - **Atomicity and per-key merge.** Applying `p1.then(p2)` once leaves the same record as
///   applying `p1` and then `p2` with nothing in between, and the merged calls all overlapped in
///   time: running them back to back is one of the orders the contract allows for overlapping
///   calls.
/// - **Read your writes.** A waiting `update` returns only after the write that carried its
///   patch returned. A waiting `get` is answered by a read that started after the caller
///   called, so it sees every write that returned before.
/// - **No resurrection.** The merged patch goes through the inner store's `update`, which fails
///   with `Gone` for a destroyed or expired session; every waiter then gets `Gone`.
/// - **Errors stay per request.** When a merged write fails with `InvalidInput` or `TooLarge`
///   (one request's value too large or malformed; the failed `update` wrote nothing, as every
///   `update` is atomic), the patches are written one at a time, so only the request that sent the bad one fails. Any
///   other error (the backend went away, a timeout) reaches every waiter of that call, as it
///   would have reached each of them.
/// - **Cancellation.** A request dropped while its own call is in flight (a client that hung up)
///   hands the waiting calls to a task that runs them; nobody waits forever. A request dropped
///   while it waits has its call dropped, as if it had never reached the store.
///
/// An uncontended call costs one map insert and remove more than the inner store's; a batch of
/// n waiting calls costs one call of the inner store instead of n, at the price of waiting for
/// the call in flight first. The registry wraps every store it opens in this unless the URL says
/// `coalesce=false`. Clones share the lanes.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use sessionbank_core::{Coalescing, MemoryStore, Patch, Record, SessionId, Store, Timestamp};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Coalescing::new(Arc::new(MemoryStore::new()));
/// let id = SessionId::generate()?;
/// store.create(&id, &Record::new(Timestamp::now())).await?;
/// let (a, b) = (Patch::new().set("a", json!(1)), Patch::new().set("b", json!(2)));
/// let (ra, rb) = tokio::join!(store.update(&id, &a), store.update(&id, &b));
/// ra?;
/// rb?;
/// let record = store.get(&id).await?.expect("live");
/// assert_eq!((record.data["a"].clone(), record.data["b"].clone()), (json!(1), json!(2)));
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Coalescing {
    shared: Arc<Shared>,
}

impl Coalescing {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self::with_max_waiters(inner, DEFAULT_MAX_WAITERS)
    }

    /// Wraps `inner`, letting at most `max` calls of one session wait behind the one in flight
    /// (per lane: reads and writes); the next ones fail at once with
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable). `0` makes every call that
    /// meets one in flight fail that way.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sessionbank_core::{Coalescing, MemoryStore};
    ///
    /// let store = Coalescing::with_max_waiters(Arc::new(MemoryStore::new()), 64);
    /// assert_eq!(store.max_waiters(), 64);
    /// ```
    pub fn with_max_waiters(inner: Arc<dyn Store>, max: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                in_flight: DashMap::new(),
                max_waiters: max,
            }),
        }
    }

    /// How many calls of one session may wait behind the one in flight, per lane.
    pub fn max_waiters(&self) -> usize {
        self.shared.max_waiters
    }

    /// The answer of a call that found another in flight (`None`: it leads, and runs itself).
    fn follow<T: Send + 'static>(
        &self,
        joined: Joined<T>,
        operation: Operation,
    ) -> Option<futures::future::BoxFuture<'static, Result<T>>> {
        let backend = self.shared.inner.backend();
        match joined {
            Joined::Lead => None,
            Joined::Full => {
                let refused = self.shared.full(operation);
                Some(Box::pin(async move { refused }))
            }
            Joined::Wait(result) => Some(Box::pin(async move {
                result.await.unwrap_or_else(|_| dropped(operation, backend))
            })),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.shared.inner
    }
}

impl fmt::Debug for Coalescing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescing")
            .field("inner", &self.shared.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for Coalescing {
    fn backend(&self) -> &'static str {
        self.shared.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.shared.inner.capabilities()
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let key = (*id, Lane::Get);
        if let Some(answer) = self.follow(self.shared.join(key, Waiter::Get), Operation::Get) {
            return answer.await;
        }
        let _in_flight = InFlight {
            shared: &self.shared,
            key,
        };
        self.shared.inner.get(id).await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.shared.inner.set(id, record).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.shared.inner.create(id, record).await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        let key = (*id, Lane::Write);
        let joined = self.shared.join(key, |done| {
            Waiter::Write(Change::Update(patch.clone()), done)
        });
        if let Some(answer) = self.follow(joined, Operation::Update) {
            return answer.await;
        }
        let _in_flight = InFlight {
            shared: &self.shared,
            key,
        };
        self.shared.inner.update(id, patch).await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let key = (*id, Lane::Write);
        let joined = self
            .shared
            .join(key, |done| Waiter::Write(Change::Touch(expires_at), done));
        if let Some(answer) = self.follow(joined, Operation::Touch) {
            return answer.await;
        }
        let _in_flight = InFlight {
            shared: &self.shared,
            key,
        };
        self.shared.inner.touch(id, expires_at).await
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.shared.inner.destroy(id).await
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        self.shared.inner.rename(old, new).await
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        self.shared.inner.all(cursor, limit).await
    }

    async fn length(&self) -> Result<u64> {
        self.shared.inner.length().await
    }

    async fn clear(&self) -> Result<u64> {
        self.shared.inner.clear().await
    }

    async fn cleanup(&self) -> Result<u64> {
        self.shared.inner.cleanup().await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        self.shared.inner.owned_by(owner).await
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        self.shared.inner.destroy_owned_by(owner, except).await
    }
}

#[cfg(test)]
mod tests;
