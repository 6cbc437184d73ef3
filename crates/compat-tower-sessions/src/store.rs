//! [`TowerSessionsStore`]: `tower_sessions::SessionStore` over a sessionbank [`StoreHandle`].

use async_trait::async_trait;
use sessionbank_core::{
    DEFAULT_BROWSER_IDLE, Data, ErrorKind, Patch, Record, StoreHandle, Timestamp,
};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record as TowerRecord};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

use crate::id::session_id_for;

/// How many fresh ids `create` tries when the store reports the id as taken (two random 128-bit
/// ids colliding twice in a row does not happen; the bound only keeps a broken store from
/// looping forever).
const CREATE_ATTEMPTS: usize = 4;

/// A tower-sessions [`SessionStore`] backed by any sessionbank store: memory, disk, SQLite,
/// PostgreSQL, MySQL, Redis, MongoDB, Memcached, picked by URL. A tower-sessions application
/// changes the store it passes to `SessionManagerLayer::new`, and nothing else.
///
/// # Mapping
///
/// - **Id**: tower-sessions' random `i128` is stored under
///   [`session_id_for(id)`](crate::session_id_for): a fixed prefix and the id's own base64url
///   text, one-to-one and reversible.
/// - **Record**: `data` (a map of JSON values) becomes the record's top-level keys, so other
///   sessionbank adapters and Node apps sharing the store see the same keys; `expiry_date`
///   becomes `expires_at`, truncated to whole milliseconds (sessionbank's precision).
///   tower-sessions has no creation time: `created_at` is the time of `create`, kept by every
///   `save` (so an absolute timeout counts from the session's start), and no owner is set.
/// - **create**: the sessionbank `create` (insert only); when the id is taken it draws a new
///   one from the OS random source and writes it into the record, as tower-sessions' contract
///   asks of stores.
/// - **save**: `get`, then one atomic `update` that makes the stored data the record's (sets
///   the changed keys, removes the dropped ones, moves the expiry). It never inserts: when the
///   session is gone (destroyed by a logout or "log out everywhere" racing this request, or
///   expired), nothing is written and the session stays gone; its cookie loads as no session.
///   **load**: `get`, which never returns an expired record;
///   **delete**: `destroy` (idempotent). [`ExpiredDeletion::delete_expired`] is `cleanup`.
/// - **Errors** become `session_store::Error::Backend` with sessionbank's message (which
///   never carries a session id); time out of range becomes `Encode`/`Decode`.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbank_tower_sessions::TowerSessionsStore;
/// use tower_sessions::{Session, SessionManagerLayer};
///
/// async fn count(session: Session) -> String {
///     let n: u64 = session.get("visits").await.ok().flatten().unwrap_or(0) + 1;
///     let _ = session.insert("visits", n).await;
///     n.to_string()
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // was: let store = tower_sessions::MemoryStore::default();
/// let store = TowerSessionsStore::new(sessionbank::connect("memory://").await?);
/// let app: Router = Router::new()
///     .route("/", get(count))
///     .layer(SessionManagerLayer::new(store).with_secure(false));
/// # Ok::<(), sessionbank_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct TowerSessionsStore {
    store: StoreHandle,
}

impl TowerSessionsStore {
    /// Wraps a sessionbank store (from `sessionbank::connect(url)` or
    /// [`StoreHandle::new`]).
    pub fn new(store: StoreHandle) -> Self {
        Self { store }
    }

    /// The sessionbank store underneath, for operations tower-sessions does not have
    /// (`length`, `all`, `clear`).
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }
}

impl From<StoreHandle> for TowerSessionsStore {
    fn from(store: StoreHandle) -> Self {
        Self::new(store)
    }
}

fn backend_error(e: &sessionbank_core::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// tower-sessions' expiry as sessionbank time (whole milliseconds, truncated).
fn to_timestamp(at: OffsetDateTime) -> session_store::Result<Timestamp> {
    let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis)
        .map(Timestamp::from_millis)
        .map_err(|_| {
            session_store::Error::Encode("the session's expiry date is out of range".into())
        })
}

fn to_offset_date_time(at: Timestamp) -> session_store::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_millis()) * 1_000_000).map_err(
        |_| session_store::Error::Decode("the stored session's expiry is out of range".into()),
    )
}

fn to_record(record: &TowerRecord) -> session_store::Result<Record> {
    let now = Timestamp::now();
    let data: Data = record
        .data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Record::new(now)
        .with_data(data)
        .expiring_at(to_timestamp(record.expiry_date)?))
}

fn from_record(id: Id, record: Record) -> session_store::Result<TowerRecord> {
    // Records written here always have an expiry; one without (a browser session written by
    // another adapter under this id) lives until its store deadline.
    let expiry = record
        .expires_at
        .unwrap_or_else(|| record.deadline(DEFAULT_BROWSER_IDLE));
    Ok(TowerRecord {
        id,
        data: record.data.into_map().into_iter().collect(),
        expiry_date: to_offset_date_time(expiry)?,
    })
}

fn random_id() -> session_store::Result<Id> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        session_store::Error::Backend(format!("the operating system's random source failed: {e}"))
    })?;
    Ok(Id(i128::from_le_bytes(bytes)))
}

#[async_trait]
impl SessionStore for TowerSessionsStore {
    async fn create(&self, record: &mut TowerRecord) -> session_store::Result<()> {
        let ours = to_record(record)?;
        for _ in 0..CREATE_ATTEMPTS {
            match self.store.create(&session_id_for(&record.id), &ours).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    tracing::debug!("tower-sessions id already taken; drawing a new one");
                    record.id = random_id()?;
                }
                Err(e) => return Err(backend_error(&e)),
            }
        }
        Err(session_store::Error::Backend(format!(
            "the store reported {CREATE_ATTEMPTS} freshly generated ids as taken"
        )))
    }

    async fn save(&self, record: &TowerRecord) -> session_store::Result<()> {
        let id = session_id_for(&record.id);
        let Some(stored) = self.store.get(&id).await.map_err(|e| backend_error(&e))? else {
            tracing::debug!("the session to save is gone (destroyed or expired); nothing written");
            return Ok(());
        };
        let mut patch = Patch::new().expire_at(Some(to_timestamp(record.expiry_date)?));
        for (key, value) in &record.data {
            if stored.data.get(key) != Some(value) {
                patch.set.insert(key.clone(), value.clone());
            }
        }
        patch.unset = stored
            .data
            .keys()
            .filter(|key| !record.data.contains_key(*key))
            .cloned()
            .collect();
        match self.store.update(&id, &patch).await {
            Err(e) if e.kind() == ErrorKind::Gone => {
                tracing::debug!(
                    "the session to save is gone (destroyed or expired); nothing written"
                );
                Ok(())
            }
            result => result.map_err(|e| backend_error(&e)),
        }
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<TowerRecord>> {
        match self.store.get(&session_id_for(session_id)).await {
            Ok(Some(record)) => from_record(*session_id, record).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(backend_error(&e)),
        }
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.store
            .destroy(&session_id_for(session_id))
            .await
            .map_err(|e| backend_error(&e))
    }
}

#[async_trait]
impl ExpiredDeletion for TowerSessionsStore {
    /// Runs the store's `cleanup` (cheap or a no-op where the backend expires records itself).
    async fn delete_expired(&self) -> session_store::Result<()> {
        let removed = self.store.cleanup().await.map_err(|e| backend_error(&e))?;
        tracing::debug!(removed, "expired sessions removed");
        Ok(())
    }
}
