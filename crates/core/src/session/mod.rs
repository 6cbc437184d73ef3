//! The framework-independent session handle: lazy loading, change tracking, id rotation and
//! the expiry policy, for any web adapter (tower/axum, actix-web, plain hyper).
//!
//! An adapter verifies the session cookie, builds a [`SessionHandle`] with the id it carried,
//! gives the handle to the request handler, and afterwards calls [`SessionHandle::finish`],
//! which writes what changed and returns the [`Outcome`]: whether to set or clear the cookie.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

mod finish;
mod state;

use finish::id_exhausted;
use state::{State, Status};

use crate::error::{Action, Error, ErrorKind, Operation, Result};
use crate::expiry::ExpiryPolicy;
use crate::id::SessionId;
use crate::record::{Data, Record};
use crate::registry::StoreHandle;
use crate::time::{SharedClock, Timestamp};

/// How many fresh ids `finish` and `cycle_id` try when the store says an id is taken (with
/// 192 random bits, a second try is already astronomically unlikely).
const ID_ATTEMPTS: usize = 3;

/// What the adapter must do with the session cookie after the handler ran, as
/// [`SessionHandle::finish`] returns it.
///
/// # Examples
///
/// ```
/// use sessionbank_core::session::Outcome;
///
/// fn describe(outcome: &Outcome) -> &'static str {
///     match outcome {
///         Outcome::Unchanged => "leave the cookie alone",
///         Outcome::SetCookie { .. } => "send a signed cookie for the id",
///         Outcome::ClearCookie => "send a removal cookie",
///     }
/// }
/// assert_eq!(describe(&Outcome::Unchanged), "leave the cookie alone");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The cookie the client holds is still right (or it holds none and needs none).
    Unchanged,
    /// Send a cookie for `id`: the session is new, its id changed, or its expiry moved. A
    /// persistent cookie's `Max-Age` follows `expires_at` (`None`: a browser session).
    SetCookie {
        /// The session's id.
        id: SessionId,
        /// The session's expiry.
        expires_at: Option<Timestamp>,
    },
    /// Send a removal cookie: the session was destroyed (by this request or another).
    ClearCookie,
}

/// One request's view of its session: reads and writes keys, rotates the id, destroys the
/// session; [`finish`](SessionHandle::finish) writes only what changed.
///
/// Cheap to clone (clones share one session) and `Send + Sync`. Nothing here is HTTP-specific.
///
/// # Semantics
///
/// - **Lazy.** The store is read when a method first needs the session; a request whose
///   handler never touches it makes no store call at all.
/// - **Server-generated ids only.** If the store has no live session for the incoming id
///   (unknown, expired, or expired by this [`ExpiryPolicy`]), the handle starts a new session,
///   which gets a fresh id from [`SessionId::generate`] when it is first saved, never the
///   client's. A new session is stored only once it holds data or an owner.
/// - **Per-key writes.** Changed and removed keys are tracked, and `finish` sends only those
///   with [`Store::update`](crate::Store::update), so concurrent requests that change different
///   keys of one session all keep their changes. If another request destroyed the session
///   meanwhile, `update` fails with `Gone`: the change is dropped, the session is not
///   re-created, and the outcome clears the cookie.
/// - **Touch by policy.** A request that changed nothing calls
///   [`Store::touch`](crate::Store::touch) only when [`ExpiryPolicy::needs_touch`] says so.
/// - **Locks.** The loaded state sits behind a `std` mutex that is never held across an await.
///
/// # Examples
///
/// ```
/// use sessionbank_core::session::{Outcome, SessionHandle};
/// use sessionbank_core::{ExpiryPolicy, MemoryStore, StoreHandle, system_clock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = StoreHandle::new(MemoryStore::new());
///
/// // First request: no cookie.
/// let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
/// session.insert("visits", 1).await?;
/// let Outcome::SetCookie { id, .. } = session.finish().await? else { panic!("new session") };
///
/// // Second request: the cookie carried `id`.
/// let session = SessionHandle::new(store, ExpiryPolicy::new(), system_clock(), Some(id));
/// assert_eq!(session.get::<u32>("visits").await?, Some(1));
/// assert_eq!(session.finish().await?, Outcome::Unchanged);
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionHandle {
    inner: Arc<Inner>,
}

struct Inner {
    store: StoreHandle,
    policy: ExpiryPolicy,
    clock: SharedClock,
    incoming: Option<SessionId>,
    state: OnceCell<Mutex<State>>,
}

impl SessionHandle {
    /// A handle for one request. `incoming` is the id the adapter's cookie layer verified, or
    /// `None` when there was no valid session cookie. Nothing is read until a method needs it.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::session::SessionHandle;
    /// use sessionbank_core::{ExpiryPolicy, MemoryStore, StoreHandle, system_clock};
    ///
    /// let session = SessionHandle::new(
    ///     StoreHandle::new(MemoryStore::new()),
    ///     ExpiryPolicy::new(),
    ///     system_clock(),
    ///     None,
    /// );
    /// assert!(!session.is_loaded());
    /// ```
    pub fn new(
        store: StoreHandle,
        policy: ExpiryPolicy,
        clock: SharedClock,
        incoming: Option<SessionId>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                policy,
                clock,
                incoming,
                state: OnceCell::new(),
            }),
        }
    }

    /// The store this session lives in.
    pub fn store(&self) -> &StoreHandle {
        &self.inner.store
    }

    /// The expiry policy.
    pub fn policy(&self) -> &ExpiryPolicy {
        &self.inner.policy
    }

    /// Whether the session was loaded (or started) yet: `false` until a method needed it.
    pub fn is_loaded(&self) -> bool {
        self.inner.state.initialized()
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    async fn load(&self) -> Result<Mutex<State>> {
        let now = self.now();
        let Some(id) = self.inner.incoming else {
            return Ok(Mutex::new(State::new_session(now)));
        };
        match self.inner.store.get(&id).await? {
            Some(record) if !self.inner.policy.is_expired(&record, now) => {
                Ok(Mutex::new(State::existing(id, record)))
            }
            Some(_) => {
                // The store still holds it, but the policy (say, a shortened absolute timeout)
                // says it is over: remove it rather than let the old cookie find it again.
                self.inner.store.destroy(&id).await?;
                Ok(Mutex::new(State::new_session(now)))
            }
            None => Ok(Mutex::new(State::new_session(now))),
        }
    }

    async fn state(&self) -> Result<MutexGuard<'_, State>> {
        let cell = self.inner.state.get_or_try_init(|| self.load()).await?;
        Ok(lock(cell))
    }

    /// The value under `key`, deserialized.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails; [`ErrorKind::InvalidInput`] when the
    /// stored value does not deserialize into `T` (the message names the key and the type,
    /// never the value).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::SessionHandle;
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let session = SessionHandle::new(StoreHandle::new(MemoryStore::new()), ExpiryPolicy::new(), system_clock(), None);
    /// session.insert("cart", vec![1, 2]).await?;
    /// assert_eq!(session.get::<Vec<u32>>("cart").await?, Some(vec![1, 2]));
    /// assert!(session.get::<String>("cart").await.is_err());
    /// assert_eq!(session.get::<u32>("missing").await?, None);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.state().await?;
        let Some(value) = state.record.data.get(key) else {
            return Ok(None);
        };
        // Deserialized from the stored value in place, without cloning it first.
        T::deserialize(value).map(Some).map_err(|e| {
            // serde_json's message may quote the value, which may be secret: keep only its
            // category.
            Error::new(
                ErrorKind::InvalidInput,
                Action::Decode,
                format!(
                    "the session value under `{key}` does not deserialize into {} ({:?} error)",
                    std::any::type_name::<T>(),
                    e.classify()
                ),
            )
        })
    }

    /// The raw JSON value under `key`.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.state().await?.record.data.get(key).cloned())
    }

    /// Sets `key` to `value`. Setting a key to the value it already has changes nothing.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails; [`ErrorKind::InvalidInput`] when
    /// `value` does not serialize to JSON.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                Action::Encode,
                format!("the value for session key `{key}` does not serialize to JSON"),
            )
            .with_source(e)
        })?;
        let mut state = self.state().await?;
        if state.record.data.get(key) == Some(&value) {
            return Ok(());
        }
        // Replaced in place when present: no new key string.
        match state.record.data.get_mut(key) {
            Some(current) => *current = value,
            None => {
                state.record.data.insert(key.to_owned(), value);
            }
        }
        state.removed.remove(key);
        if !state.changed.contains(key) {
            state.changed.insert(key.to_owned());
        }
        Ok(())
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::{Outcome, SessionHandle};
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, Store, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let store = StoreHandle::new(MemoryStore::new());
    /// # let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
    /// session.insert("flash", "saved").await?;
    /// assert_eq!(session.remove("flash").await?, Some("saved".into()));
    /// assert_eq!(session.remove("flash").await?, None);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn remove(&self, key: &str) -> Result<Option<Value>> {
        let mut state = self.state().await?;
        let old = state.record.data.remove(key);
        if old.is_some() {
            state.changed.remove(key);
            state.removed.insert(key.to_owned());
        }
        Ok(old)
    }

    /// Removes every key (the session, its id and owner stay; see [`destroy`](Self::destroy)
    /// to end it).
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn clear(&self) -> Result<()> {
        let mut state = self.state().await?;
        let keys: Vec<String> = state.record.data.keys().cloned().collect();
        state.record.data.clear();
        state.changed.clear();
        state.removed.extend(keys);
        Ok(())
    }

    /// All keys and values.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn data(&self) -> Result<Data> {
        Ok(self.state().await?.record.data.clone())
    }

    /// The session's id: `None` while the session is new and unsaved (it gets one in
    /// [`finish`](Self::finish)), or after it was destroyed.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn id(&self) -> Result<Option<SessionId>> {
        let state = self.state().await?;
        Ok(match state.status {
            Status::Existing => state.id,
            Status::New | Status::Gone => None,
        })
    }

    /// The session's owner (the user it belongs to), if set.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn owner(&self) -> Result<Option<String>> {
        Ok(self.state().await?.record.owner.clone())
    }

    /// Sets or removes the owner, for [`Store::owned_by`](crate::Store::owned_by) and "log this
    /// user out everywhere". Call [`cycle_id`](Self::cycle_id) too when a user signs in.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::{Outcome, SessionHandle};
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, Store, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let store = StoreHandle::new(MemoryStore::new());
    /// # let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
    /// session.set_owner(Some("ada".into())).await?;
    /// session.finish().await?;
    /// assert_eq!(store.owned_by("ada").await?.len(), 1);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn set_owner(&self, owner: Option<String>) -> Result<()> {
        let mut state = self.state().await?;
        if state.record.owner != owner {
            state.record.owner = owner;
            state.owner_changed = true;
        }
        Ok(())
    }

    /// The stored session with this request's changes applied: data, expiry, created time,
    /// last access and owner; `None` while the session is new and unsaved.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn record(&self) -> Result<Option<Record>> {
        let state = self.state().await?;
        Ok((state.status == Status::Existing).then(|| state.record.clone()))
    }

    /// Gives the session a new id, keeping its data (with
    /// [`Store::rename`](crate::Store::rename), right away); the old id is dead afterwards and
    /// `finish` sends the new cookie. Call it when a user signs in, against session fixation.
    ///
    /// A new, unsaved session needs nothing: it gets a fresh id when it is saved. If another
    /// request destroyed the session meanwhile, the session stays destroyed: this request's
    /// changes are dropped and the cookie is cleared.
    ///
    /// # Errors
    ///
    /// The store's error when loading or renaming fails; [`ErrorKind::Unavailable`] when no
    /// random id can be generated.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::{Outcome, SessionHandle};
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, Store, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let store = StoreHandle::new(MemoryStore::new());
    /// # let first = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
    /// # first.insert("cart", 3).await?;
    /// # let Outcome::SetCookie { id: old, .. } = first.finish().await? else { panic!() };
    /// let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), Some(old));
    /// session.cycle_id().await?;
    /// let new = session.id().await?.unwrap();
    /// assert_ne!(new, old);
    /// assert!(store.get(&old).await?.is_none());
    /// assert!(matches!(session.finish().await?, Outcome::SetCookie { id, .. } if id == new));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn cycle_id(&self) -> Result<()> {
        let old = {
            let state = self.state().await?;
            match (state.status, state.id) {
                (Status::Existing, Some(id)) => id,
                _ => return Ok(()),
            }
        };
        for _ in 0..ID_ATTEMPTS {
            let new = SessionId::generate()?;
            match self.inner.store.rename(&old, &new).await {
                Ok(()) => {
                    tracing::debug!(backend = self.inner.store.backend(), "session id rotated");
                    let now = self.now();
                    let mut state = self.state().await?;
                    if state.status == Status::Existing && state.id == Some(old) {
                        state.id = Some(new);
                        state.id_changed = true;
                        state.record.last_access = now;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == ErrorKind::Gone => {
                    tracing::debug!("cycle_id: the session was destroyed meanwhile; dropping it");
                    let mut state = self.state().await?;
                    state.status = Status::Gone;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Err(id_exhausted(Operation::Rename))
    }

    /// Destroys the session in the store right away, and makes `finish` clear the cookie. The
    /// handle then holds a new, empty session: anything inserted afterwards is saved under a
    /// fresh id (a "you have been signed out" message, say).
    ///
    /// # Errors
    ///
    /// The store's error when destroying fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::{Outcome, SessionHandle};
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, Store, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let store = StoreHandle::new(MemoryStore::new());
    /// # let first = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
    /// # first.insert("user", "ada").await?;
    /// # let Outcome::SetCookie { id, .. } = first.finish().await? else { panic!() };
    /// let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), Some(id));
    /// session.destroy().await?;
    /// assert!(store.get(&id).await?.is_none());
    /// assert_eq!(session.finish().await?, Outcome::ClearCookie);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn destroy(&self) -> Result<()> {
        let now = self.now();
        let was_loaded = self.is_loaded();
        // Destroying needs no read: start an empty state if nothing was loaded yet.
        let cell = self
            .inner
            .state
            .get_or_init(|| async { Mutex::new(State::new_session(now)) })
            .await;
        let mut targets: Vec<SessionId> = Vec::with_capacity(2);
        {
            let mut state = lock(cell);
            if let (Status::Existing, Some(id)) = (state.status, state.id) {
                targets.push(id);
            }
            *state = State::new_session(now);
            state.cleared = true;
        }
        if !was_loaded
            && let Some(incoming) = self.inner.incoming
            && !targets.contains(&incoming)
        {
            targets.push(incoming);
        }
        for id in &targets {
            self.inner.store.destroy(id).await?;
        }
        if !targets.is_empty() {
            tracing::debug!(backend = self.inner.store.backend(), "session destroyed");
        }
        Ok(())
    }
}

/// Locks the state, recovering from a poisoned lock (a panicking handler must not take the
/// session down with it: the state is plain data, valid after any partial update).
fn lock(cell: &Mutex<State>) -> MutexGuard<'_, State> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SessionHandle");
        d.field("store", &self.inner.store)
            .field("incoming", &self.inner.incoming.map(|_| "<redacted>"));
        if let Some(cell) = self.inner.state.get() {
            let state = lock(cell);
            d.field("status", &state.status)
                .field("keys", &state.record.data.len())
                .field("changed", &state.changed.len())
                .field("removed", &state.removed.len());
        } else {
            d.field("status", &"not loaded");
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests;
