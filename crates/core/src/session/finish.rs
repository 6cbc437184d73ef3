//! [`SessionHandle::finish`]: after the handler, plan the write under the lock (create, patch,
//! touch, cookie only, or nothing) and carry it out, never bringing a destroyed session back.

use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::time::Timestamp;

use super::state::{Plan, State, Status};
use super::{ID_ATTEMPTS, Outcome, SessionHandle, lock};

impl SessionHandle {
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

pub(super) fn id_exhausted(operation: Operation) -> Error {
    Error::new(
        ErrorKind::Backend,
        operation,
        format!("the store reported {ID_ATTEMPTS} freshly generated ids as taken"),
    )
}
