//! The framework-independent session handle: lazy loading, change tracking, id rotation and
//! the expiry policy, for any web adapter (tower/axum, actix-web, plain hyper).
//!
//! An adapter verifies the session cookie, builds a [`SessionHandle`] with the id it carried,
//! gives the handle to the request handler, and afterwards calls [`SessionHandle::finish`],
//! which writes what changed and returns the [`Outcome`]: whether to set or clear the cookie.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::error::{Action, Error, ErrorKind, Operation, Result};
use crate::expiry::ExpiryPolicy;
use crate::id::SessionId;
use crate::record::{Data, Patch, Record};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not in the store yet; saved by `finish` once it holds data or an owner.
    New,
    /// In the store under `State::id`.
    Existing,
    /// Destroyed by another request while this one ran: changes are dropped.
    Gone,
}

struct State {
    status: Status,
    /// The stored id (`Existing`), after any rotation.
    id: Option<SessionId>,
    /// The current view: loaded record plus this request's changes. For a new session, a
    /// placeholder whose metadata `finish` replaces.
    record: Record,
    changed: BTreeSet<String>,
    removed: BTreeSet<String>,
    owner_changed: bool,
    id_changed: bool,
    /// `destroy` ran: the client's cookie must go unless a new session is saved.
    cleared: bool,
}

impl State {
    fn new_session(now: Timestamp) -> Self {
        Self {
            status: Status::New,
            id: None,
            record: Record::new(now),
            changed: BTreeSet::new(),
            removed: BTreeSet::new(),
            owner_changed: false,
            id_changed: false,
            cleared: false,
        }
    }

    fn existing(id: SessionId, record: Record) -> Self {
        Self {
            status: Status::Existing,
            id: Some(id),
            record,
            ..Self::new_session(Timestamp::from_millis(0))
        }
    }

    fn take_pending(&mut self) -> (BTreeSet<String>, BTreeSet<String>, bool, bool) {
        (
            std::mem::take(&mut self.changed),
            std::mem::take(&mut self.removed),
            std::mem::replace(&mut self.owner_changed, false),
            std::mem::replace(&mut self.id_changed, false),
        )
    }
}

/// What `finish` decided to do, computed under the lock and carried out after it.
enum Plan {
    Nothing,
    Clear,
    Create(Record),
    Update {
        id: SessionId,
        patch: Patch,
        expires_at: Option<Timestamp>,
        old_expiry: Option<Timestamp>,
        id_changed: bool,
    },
    Touch {
        id: SessionId,
        expires_at: Option<Timestamp>,
        old_expiry: Option<Timestamp>,
        id_changed: bool,
    },
    Cookie {
        id: SessionId,
        expires_at: Option<Timestamp>,
    },
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

    /// Writes what this request changed and says what to do with the cookie. The adapter calls
    /// it once, after the handler.
    ///
    /// - Untouched session: no store call, [`Outcome::Unchanged`].
    /// - New session with data or an owner: `create` under a fresh id (another on
    ///   `AlreadyExists`), [`Outcome::SetCookie`]. Without either: nothing is stored.
    /// - Existing session with changes: one `update` with the changed and removed keys, and a
    ///   new expiry only when the policy wants one ([`ExpiryPolicy::expiry_change`]); without
    ///   changes, a `touch` if the policy wants one. `SetCookie`
    ///   when the id or the expiry changed, `Unchanged` otherwise.
    /// - Destroyed (here, or by another request as `update`/`touch` found): `ClearCookie`.
    ///
    /// # Errors
    ///
    /// The store's error from `create`, `update` or `touch` (other than `Gone`).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the pending changes are taken before the write, so a cancelled
    /// `finish` loses them (as a dropped request would).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::session::{Outcome, SessionHandle};
    /// # use sessionbank_core::{ExpiryPolicy, MemoryStore, Store, StoreHandle, system_clock};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let store = StoreHandle::new(MemoryStore::new());
    /// # let session = SessionHandle::new(store.clone(), ExpiryPolicy::new(), system_clock(), None);
    /// assert_eq!(session.finish().await?, Outcome::Unchanged); // untouched: no store call
    /// session.insert("n", 1).await?;
    /// let Outcome::SetCookie { id, expires_at } = session.finish().await? else { panic!() };
    /// assert_eq!(store.get(&id).await?.map(|r| r.expires_at), Some(expires_at));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub async fn finish(&self) -> Result<Outcome> {
        let Some(cell) = self.inner.state.get() else {
            return Ok(Outcome::Unchanged);
        };
        let now = self.now();
        let plan = self.plan(&mut lock(cell), now);
        match plan {
            Plan::Nothing => Ok(Outcome::Unchanged),
            Plan::Clear => Ok(Outcome::ClearCookie),
            Plan::Cookie { id, expires_at } => Ok(Outcome::SetCookie { id, expires_at }),
            Plan::Create(record) => {
                let id = self.create(&record).await?;
                let expires_at = record.expires_at;
                let mut state = lock(cell);
                state.status = Status::Existing;
                state.id = Some(id);
                state.cleared = false;
                state.record.created_at = record.created_at;
                state.record.last_access = record.last_access;
                state.record.expires_at = expires_at;
                Ok(Outcome::SetCookie { id, expires_at })
            }
            Plan::Update {
                id,
                patch,
                expires_at,
                old_expiry,
                id_changed,
            } => {
                let result = self.inner.store.update(&id, &patch).await;
                self.after_write(cell, result, id, expires_at, old_expiry, id_changed, now)
            }
            Plan::Touch {
                id,
                expires_at,
                old_expiry,
                id_changed,
            } => {
                let result = self.inner.store.touch(&id, expires_at).await;
                self.after_write(cell, result, id, expires_at, old_expiry, id_changed, now)
            }
        }
    }

    fn plan(&self, state: &mut State, now: Timestamp) -> Plan {
        let (changed, removed, owner_changed, id_changed) = state.take_pending();
        match state.status {
            Status::Gone => Plan::Clear,
            Status::New => {
                if state.record.data.is_empty() && state.record.owner.is_none() {
                    return if state.cleared {
                        Plan::Clear
                    } else {
                        Plan::Nothing
                    };
                }
                let mut record = Record::new(now).with_data(state.record.data.clone());
                record.owner.clone_from(&state.record.owner);
                record.expires_at = self.inner.policy.expiry_for(&record, now);
                Plan::Create(record)
            }
            Status::Existing => {
                let Some(id) = state.id else {
                    return Plan::Nothing;
                };
                let old_expiry = state.record.expires_at;
                let mut patch = Patch::new();
                for key in changed {
                    if let Some(value) = state.record.data.get(&key) {
                        patch.set.insert(key, value.clone());
                    }
                }
                patch.unset = removed;
                if owner_changed {
                    patch.owner = Some(state.record.owner.clone());
                }
                if !patch.is_empty() {
                    let change = self.inner.policy.expiry_change(&state.record, now);
                    patch.expires_at = change;
                    Plan::Update {
                        id,
                        patch,
                        expires_at: change.unwrap_or(old_expiry),
                        old_expiry,
                        id_changed,
                    }
                } else if self.inner.policy.needs_touch(&state.record, now) {
                    Plan::Touch {
                        id,
                        expires_at: self.inner.policy.expiry_for(&state.record, now),
                        old_expiry,
                        id_changed,
                    }
                } else if id_changed {
                    Plan::Cookie {
                        id,
                        expires_at: old_expiry,
                    }
                } else {
                    Plan::Nothing
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn after_write(
        &self,
        cell: &Mutex<State>,
        result: Result<()>,
        id: SessionId,
        expires_at: Option<Timestamp>,
        old_expiry: Option<Timestamp>,
        id_changed: bool,
        now: Timestamp,
    ) -> Result<Outcome> {
        match result {
            Ok(()) => {
                let mut state = lock(cell);
                state.record.expires_at = expires_at;
                state.record.last_access = now;
                if id_changed || expires_at != old_expiry {
                    Ok(Outcome::SetCookie { id, expires_at })
                } else {
                    Ok(Outcome::Unchanged)
                }
            }
            Err(e) if e.kind() == ErrorKind::Gone => {
                tracing::debug!(
                    "the session was destroyed by another request; this request's changes are dropped"
                );
                lock(cell).status = Status::Gone;
                Ok(Outcome::ClearCookie)
            }
            Err(e) => Err(e),
        }
    }

    async fn create(&self, record: &Record) -> Result<SessionId> {
        for _ in 0..ID_ATTEMPTS {
            let id = SessionId::generate()?;
            match self.inner.store.create(&id, record).await {
                Ok(()) => {
                    tracing::debug!(backend = self.inner.store.backend(), "session created");
                    return Ok(id);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(id_exhausted(Operation::Create))
    }
}

fn id_exhausted(operation: Operation) -> Error {
    Error::new(
        ErrorKind::Backend,
        operation,
        format!("the store reported {ID_ATTEMPTS} freshly generated ids as taken"),
    )
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
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::memory::MemoryStore;
    use crate::store::{Capabilities, Page, Store};
    use crate::time::{Clock, ManualClock};

    const MIN: Duration = Duration::from_secs(60);

    /// A real MemoryStore that counts the calls made to it.
    #[derive(Debug, Clone)]
    struct Counting {
        inner: MemoryStore,
        calls: Arc<Mutex<HashMap<&'static str, usize>>>,
    }

    impl Counting {
        fn new(clock: SharedClock) -> Self {
            Self {
                inner: MemoryStore::builder().clock(clock).build(),
                calls: Arc::default(),
            }
        }
        fn count(&self, op: &'static str) {
            *self.calls.lock().unwrap().entry(op).or_default() += 1;
        }
        fn calls(&self, op: &str) -> usize {
            self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
        }
        fn total(&self) -> usize {
            self.calls.lock().unwrap().values().sum()
        }
    }

    #[async_trait]
    impl Store for Counting {
        fn backend(&self) -> &'static str {
            "counting"
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
            self.count("get");
            self.inner.get(id).await
        }
        async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
            self.count("set");
            self.inner.set(id, record).await
        }
        async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
            self.count("create");
            self.inner.create(id, record).await
        }
        async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
            self.count("update");
            self.inner.update(id, patch).await
        }
        async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
            self.count("touch");
            self.inner.touch(id, expires_at).await
        }
        async fn destroy(&self, id: &SessionId) -> Result<()> {
            self.count("destroy");
            self.inner.destroy(id).await
        }
        async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
            self.count("rename");
            self.inner.rename(old, new).await
        }
        async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
            self.inner.all(cursor, limit).await
        }
        async fn length(&self) -> Result<u64> {
            self.inner.length().await
        }
        async fn clear(&self) -> Result<u64> {
            self.inner.clear().await
        }
        async fn cleanup(&self) -> Result<u64> {
            self.inner.cleanup().await
        }
        async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
            self.inner.owned_by(owner).await
        }
        async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
            self.inner.destroy_owned_by(owner, except).await
        }
    }

    struct Fixture {
        clock: ManualClock,
        store: Counting,
        handle: StoreHandle,
        policy: ExpiryPolicy,
    }

    impl Fixture {
        fn new(policy: ExpiryPolicy) -> Self {
            let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
            let store = Counting::new(Arc::new(clock.clone()));
            let handle = StoreHandle::new(store.clone());
            Self {
                clock,
                store,
                handle,
                policy,
            }
        }
        fn session(&self, incoming: Option<SessionId>) -> SessionHandle {
            SessionHandle::new(
                self.handle.clone(),
                self.policy,
                Arc::new(self.clock.clone()),
                incoming,
            )
        }
        /// A stored session holding `key = value`, by way of a first request.
        async fn saved(&self, key: &str, value: i64) -> SessionId {
            let s = self.session(None);
            s.insert(key, value).await.unwrap();
            match s.finish().await.unwrap() {
                Outcome::SetCookie { id, .. } => id,
                other => panic!("expected SetCookie, got {other:?}"),
            }
        }
    }

    fn idle_policy() -> ExpiryPolicy {
        ExpiryPolicy::new().idle(30 * MIN).no_absolute()
    }

    #[test]
    fn handle_and_its_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let f = Fixture::new(idle_policy());
        let s = f.session(None);
        send_sync(&s);
        send(s.insert("a", 1));
        send(s.get::<u32>("a"));
        send(s.cycle_id());
        send(s.destroy());
        send(s.finish());
    }

    #[tokio::test]
    async fn untouched_session_makes_no_store_call() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let before = f.store.total();
        let s = f.session(Some(id));
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        assert!(!s.is_loaded());
        assert_eq!(f.store.total(), before);
    }

    #[tokio::test]
    async fn new_session_is_stored_only_with_data_and_under_a_fresh_id() {
        let f = Fixture::new(idle_policy());
        let s = f.session(None);
        assert_eq!(s.get_value("x").await.unwrap(), None);
        assert_eq!(s.id().await.unwrap(), None);
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        assert_eq!(f.store.calls("create"), 0, "no empty session stored");

        let unknown = SessionId::generate().unwrap();
        let s = f.session(Some(unknown));
        s.insert("x", 1).await.unwrap();
        let Outcome::SetCookie { id, expires_at } = s.finish().await.unwrap() else {
            panic!("expected SetCookie")
        };
        assert_ne!(id, unknown, "never the client's id");
        assert_eq!(expires_at, Some(f.clock.now() + 30 * MIN));
        assert!(f.handle.get(&unknown).await.unwrap().is_none());
        let record = f.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(record.data["x"], 1);
        assert_eq!(record.expires_at, expires_at);

        // An owner alone is enough to store a session.
        let s = f.session(None);
        s.set_owner(Some("ada".into())).await.unwrap();
        assert!(matches!(
            s.finish().await.unwrap(),
            Outcome::SetCookie { .. }
        ));
    }

    #[tokio::test]
    async fn expired_by_store_or_policy_starts_fresh() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        f.clock.advance(31 * MIN);
        let s = f.session(Some(id));
        assert_eq!(s.get_value("a").await.unwrap(), None);
        assert_eq!(s.id().await.unwrap(), None);

        // Still live in the store, but the policy's absolute timeout is over.
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        f.clock.advance(20 * MIN);
        let strict = SessionHandle::new(
            f.handle.clone(),
            ExpiryPolicy::new().idle(30 * MIN).absolute(10 * MIN),
            Arc::new(f.clock.clone()),
            Some(id),
        );
        assert_eq!(strict.data().await.unwrap().len(), 0);
        assert!(f.handle.get(&id).await.unwrap().is_none(), "destroyed");
    }

    #[tokio::test]
    async fn finish_writes_only_changed_keys_and_concurrent_changes_survive() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("shared", 0).await;
        let a = f.session(Some(id));
        let b = f.session(Some(id));
        // Both load before either writes.
        assert_eq!(a.get::<i64>("shared").await.unwrap(), Some(0));
        assert_eq!(b.get::<i64>("shared").await.unwrap(), Some(0));
        a.insert("a", "from a").await.unwrap();
        b.insert("b", "from b").await.unwrap();
        b.remove("shared").await.unwrap();
        a.finish().await.unwrap();
        b.finish().await.unwrap();
        let data = f.handle.get(&id).await.unwrap().unwrap().data;
        assert_eq!(data.get("a"), Some(&"from a".into()));
        assert_eq!(data.get("b"), Some(&"from b".into()));
        assert_eq!(data.get("shared"), None);
        assert_eq!(f.store.calls("update"), 2);
        assert_eq!(f.store.calls("set"), 0, "never a whole-record overwrite");
    }

    #[tokio::test]
    async fn writing_the_same_value_is_no_change() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let s = f.session(Some(id));
        s.insert("a", 1).await.unwrap();
        assert_eq!(s.remove("missing").await.unwrap(), None);
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        assert_eq!(f.store.calls("update"), 0);
        assert_eq!(f.store.calls("touch"), 0);
    }

    #[tokio::test]
    async fn update_after_another_request_destroyed_does_not_resurrect() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let slow = f.session(Some(id));
        assert_eq!(slow.get::<i64>("a").await.unwrap(), Some(1));
        let logout = f.session(Some(id));
        logout.destroy().await.unwrap();
        assert_eq!(logout.finish().await.unwrap(), Outcome::ClearCookie);

        slow.insert("b", 2).await.unwrap();
        assert_eq!(slow.finish().await.unwrap(), Outcome::ClearCookie);
        assert!(f.handle.get(&id).await.unwrap().is_none());
        assert_eq!(f.store.calls("create"), 1, "only the first request created");

        // A touch that finds the session gone clears too.
        let id = f.saved("a", 1).await;
        let idle = f.session(Some(id));
        idle.get_value("a").await.unwrap();
        f.handle.destroy(&id).await.unwrap();
        f.clock.advance(20 * MIN);
        assert_eq!(idle.finish().await.unwrap(), Outcome::ClearCookie);
        assert!(f.handle.get(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn touch_only_below_the_threshold() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;

        f.clock.advance(5 * MIN);
        let s = f.session(Some(id));
        s.get_value("a").await.unwrap();
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        assert_eq!(f.store.calls("touch"), 0);

        f.clock.advance(11 * MIN); // 16 minutes after the write: 14 left of 30
        let s = f.session(Some(id));
        s.get_value("a").await.unwrap();
        let expected = f.clock.now() + 30 * MIN;
        assert_eq!(
            s.finish().await.unwrap(),
            Outcome::SetCookie {
                id,
                expires_at: Some(expected)
            }
        );
        assert_eq!(f.store.calls("touch"), 1);
        assert_eq!(f.store.calls("update"), 0);
        let record = f.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(record.expires_at, Some(expected));
    }

    #[tokio::test]
    async fn writes_move_the_expiry_only_below_the_threshold() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let first_expiry = f.handle.get(&id).await.unwrap().unwrap().expires_at;

        f.clock.advance(5 * MIN); // 25 of 30 minutes left: the data is written, the expiry kept
        let s = f.session(Some(id));
        s.insert("a", 2).await.unwrap();
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        let record = f.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (record.data["a"].clone(), record.expires_at),
            (2.into(), first_expiry)
        );
        assert_eq!(record.last_access, f.clock.now());

        f.clock.advance(11 * MIN); // 14 left: the expiry moves and the cookie is sent again
        let s = f.session(Some(id));
        s.insert("a", 3).await.unwrap();
        let expected = Some(f.clock.now() + 30 * MIN);
        assert_eq!(
            s.finish().await.unwrap(),
            Outcome::SetCookie {
                id,
                expires_at: expected
            }
        );
        let record = f.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(
            (record.data["a"].clone(), record.expires_at),
            (3.into(), expected)
        );
        assert_eq!(f.store.calls("update"), 2);
        assert_eq!(f.store.calls("touch"), 0);

        // A shorter idle timeout than the stored expiry allows moves it sooner at once.
        let strict = Fixture {
            policy: ExpiryPolicy::new().idle(10 * MIN).no_absolute(),
            ..f
        };
        let s = strict.session(Some(id));
        s.insert("a", 4).await.unwrap();
        let sooner = Some(strict.clock.now() + 10 * MIN);
        assert_eq!(
            s.finish().await.unwrap(),
            Outcome::SetCookie {
                id,
                expires_at: sooner
            }
        );
        let stored = strict.handle.get(&id).await.unwrap().unwrap().expires_at;
        assert_eq!(stored, sooner);
    }

    #[tokio::test]
    async fn absolute_only_policy_does_not_resend_the_cookie_on_writes() {
        let f = Fixture::new(ExpiryPolicy::new().no_idle().absolute(60 * MIN));
        let id = f.saved("a", 1).await;
        f.clock.advance(MIN);
        let s = f.session(Some(id));
        s.insert("a", 2).await.unwrap();
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
        assert_eq!(f.handle.get(&id).await.unwrap().unwrap().data["a"], 2);
    }

    #[tokio::test]
    async fn cycle_id_moves_data_and_pending_changes() {
        let f = Fixture::new(idle_policy());
        let old = f.saved("a", 1).await;
        let s = f.session(Some(old));
        s.insert("user", "ada").await.unwrap();
        s.cycle_id().await.unwrap();
        let new = s.id().await.unwrap().unwrap();
        assert_ne!(new, old);
        assert!(f.handle.get(&old).await.unwrap().is_none());
        let Outcome::SetCookie { id, .. } = s.finish().await.unwrap() else {
            panic!("expected SetCookie")
        };
        assert_eq!(id, new);
        let data = f.handle.get(&new).await.unwrap().unwrap().data;
        assert_eq!(data["a"], 1);
        assert_eq!(data["user"], "ada");

        // Without other changes, the new cookie is still sent.
        let s = f.session(Some(new));
        s.cycle_id().await.unwrap();
        let newer = s.id().await.unwrap().unwrap();
        assert!(matches!(s.finish().await.unwrap(), Outcome::SetCookie { id, .. } if id == newer));

        // A new session has nothing to rename.
        let s = f.session(None);
        s.cycle_id().await.unwrap();
        assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    }

    #[tokio::test]
    async fn cycle_id_of_a_destroyed_session_keeps_it_destroyed() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let s = f.session(Some(id));
        s.get_value("a").await.unwrap();
        f.handle.destroy(&id).await.unwrap();
        s.cycle_id().await.unwrap();
        s.insert("b", 2).await.unwrap();
        assert_eq!(s.finish().await.unwrap(), Outcome::ClearCookie);
        assert_eq!(f.handle.length().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn destroy_needs_no_read_and_later_data_starts_a_new_session() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let gets = f.store.calls("get");
        let s = f.session(Some(id));
        s.destroy().await.unwrap();
        assert_eq!(f.store.calls("get"), gets, "no read to destroy");
        assert!(f.handle.get(&id).await.unwrap().is_none());
        assert_eq!(s.finish().await.unwrap(), Outcome::ClearCookie);

        let id = f.saved("a", 1).await;
        let s = f.session(Some(id));
        s.destroy().await.unwrap();
        s.insert("flash", "signed out").await.unwrap();
        let Outcome::SetCookie { id: fresh, .. } = s.finish().await.unwrap() else {
            panic!("expected SetCookie")
        };
        assert_ne!(fresh, id);
        let record = f.handle.get(&fresh).await.unwrap().unwrap();
        assert_eq!(record.data.len(), 1);
        assert_eq!(record.data["flash"], "signed out");
    }

    #[tokio::test]
    async fn owner_and_record() {
        let f = Fixture::new(idle_policy());
        let id = f.saved("a", 1).await;
        let s = f.session(Some(id));
        assert_eq!(s.owner().await.unwrap(), None);
        s.set_owner(Some("ada".into())).await.unwrap();
        s.finish().await.unwrap();
        let owned = f.handle.owned_by("ada").await.unwrap();
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].0, id);

        let s = f.session(Some(id));
        let record = s.record().await.unwrap().unwrap();
        assert_eq!(record.owner.as_deref(), Some("ada"));
        assert!(record.expires_at.is_some());
        assert!(f.session(None).record().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn bad_types_name_the_key_not_the_value() {
        let f = Fixture::new(idle_policy());
        let s = f.session(None);
        s.insert("token", "hunter2-secret").await.unwrap();
        let err = s.get::<u64>("token").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.chain().contains("token"));
        assert!(!err.chain().contains("hunter2"), "{}", err.chain());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
