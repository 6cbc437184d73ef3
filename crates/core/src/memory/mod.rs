//! `memory://`: a sharded in-process store for tests, single-instance apps and caches.

use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::store::{Capabilities, Page, Store};
use crate::time::{SharedClock, Timestamp};

mod builder;

pub use builder::MemoryStoreBuilder;

/// An in-memory store: sharded (DashMap), safe under heavy concurrency, never returns an expired
/// session, frees expired ones on read and on `cleanup`, optionally bounded in entries.
///
/// Clones share the same sessions.
///
/// # Concurrency
/// `update`, `touch`, `create` and `destroy` each run under the lock of the session's shard, so
/// they are atomic with respect to each other. `rename` takes the record out and puts it under
/// the new id in two steps, so `capabilities().atomic_rename` is `false`: a reader may briefly
/// see neither id.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::MemoryStore;
///
/// let store = MemoryStore::builder()
///     .max_entries(100_000)
///     .browser_idle(Duration::from_secs(3600))
///     .build();
/// assert_eq!(store.max_entries(), Some(100_000));
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// foldhash, seeded per process: several times faster than SipHash on a 32-byte id, and still
/// keyed, so ids chosen by an attacker cannot be aimed at one bucket.
type Hasher = foldhash::fast::RandomState;

#[derive(Debug)]
struct Inner {
    sessions: DashMap<SessionId, Record, Hasher>,
    /// owner -> ids. A superset hint: every id a live session of that owner has is in here;
    /// stale ids are checked against `sessions` on read and pruned.
    owners: DashMap<String, HashSet<SessionId, Hasher>, Hasher>,
    max_entries: Option<usize>,
    /// The largest session data, as JSON, a write may leave.
    max_record_bytes: usize,
    /// With `max_entries`: a lower bound (in ms) of every stored record's deadline. While the
    /// clock is before it nothing has expired, so a store at capacity refuses an insert at once
    /// instead of scanning every entry for expired ones.
    next_expiry: AtomicI64,
    /// How many full scans for expired entries ran (`cleanup`, or an insert at capacity).
    sweeps: AtomicU64,
    browser_idle: Duration,
    clock: SharedClock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    fn from_parts(
        max_entries: Option<usize>,
        max_record_bytes: usize,
        browser_idle: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: DashMap::with_hasher(Hasher::default()),
                owners: DashMap::with_hasher(Hasher::default()),
                max_entries,
                max_record_bytes,
                next_expiry: AtomicI64::new(i64::MAX),
                sweeps: AtomicU64::new(0),
                browser_idle,
                clock,
            }),
        }
    }

    /// An unbounded store on the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for the options.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// The bound on entries, if any.
    pub fn max_entries(&self) -> Option<usize> {
        self.inner.max_entries
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn live(&self, record: &Record, now: Timestamp) -> bool {
        record.is_live(now, self.inner.browser_idle)
    }

    /// Records `id` under `owner` in the owner index. Called with the session's shard locked.
    fn index_owner(&self, id: SessionId, owner: &str) {
        self.inner
            .owners
            .entry(owner.to_owned())
            .or_default()
            .insert(id);
    }

    /// Removes `id` from `owner`'s set. Called with the session's shard locked.
    fn unindex_owner(&self, id: &SessionId, owner: &str) {
        if let Some(mut ids) = self.inner.owners.get_mut(owner) {
            ids.remove(id);
        }
        self.inner.owners.remove_if(owner, |_, ids| ids.is_empty());
    }

    fn reindex(&self, id: SessionId, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.unindex_owner(&id, old);
        }
        if let Some(new) = new {
            self.index_owner(id, new);
        }
    }

    /// Lowers the bound of stored deadlines to this record's (only a store with
    /// `max_entries` keeps the bound).
    fn note_deadline(&self, record: &Record) {
        if self.inner.max_entries.is_some() {
            let deadline = record.deadline(self.inner.browser_idle).as_millis();
            self.inner
                .next_expiry
                .fetch_min(deadline, Ordering::Relaxed);
        }
    }

    /// At capacity, an insert scans for expired entries only when one may have expired (the
    /// clock passed the lowest deadline noted since the last scan); otherwise it is refused at
    /// once. So a store full of live sessions answers in O(1), and each scan frees every
    /// session expired since the previous one.
    fn check_capacity(&self, operation: Operation) -> Result<()> {
        let Some(max) = self.inner.max_entries else {
            return Ok(());
        };
        if self.inner.sessions.len() <= max {
            return Ok(());
        }
        if self.now().as_millis() >= self.inner.next_expiry.load(Ordering::Relaxed) {
            self.remove_expired();
            if self.inner.sessions.len() <= max {
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            operation,
            format!("the memory store holds its maximum of {max} sessions"),
        )
        .with_backend("memory"))
    }

    fn remove_expired(&self) -> u64 {
        let now = self.now();
        let mut removed = 0u64;
        let mut orphaned = Vec::new();
        self.inner.sweeps.fetch_add(1, Ordering::Relaxed);
        // Rebuilt from the survivors; writes during the scan lower it themselves.
        self.inner.next_expiry.store(i64::MAX, Ordering::Relaxed);
        self.inner.sessions.retain(|id, record| {
            if self.live(record, now) {
                self.note_deadline(record);
                return true;
            }
            removed += 1;
            if let Some(owner) = &record.owner {
                orphaned.push((*id, owner.clone()));
            }
            false
        });
        for (id, owner) in orphaned {
            // The session is gone; if the id was reused meanwhile under the same owner, keep it.
            if let Entry::Vacant(_) = self.inner.sessions.entry(id) {
                self.unindex_owner(&id, &owner);
            }
        }
        removed
    }

    /// Refuses a record whose data, as JSON, is larger than `max_record_bytes`.
    fn check_size(&self, record: &Record, operation: Operation) -> Result<()> {
        let size = json_len(&record.data);
        let max = self.inner.max_record_bytes;
        if size > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                operation,
                format!("the session's data has {size} bytes as JSON, more than max_record_bytes = {max}"),
            )
            .with_backend("memory"));
        }
        Ok(())
    }

    fn insert_new(&self, id: &SessionId, record: &Record, operation: Operation) -> Result<()> {
        self.check_size(record, operation)?;
        match self.inner.sessions.entry(*id) {
            Entry::Occupied(mut existing) => {
                // Only `create` over an existing entry needs the time: `set` never reads the clock.
                if operation == Operation::Create && self.live(existing.get(), self.now()) {
                    return Err(Error::already_exists(operation).with_backend("memory"));
                }
                let old_owner = existing.get().owner.clone();
                self.note_deadline(record);
                existing.insert(record.clone());
                self.reindex(*id, old_owner.as_deref(), record.owner.as_deref());
                return Ok(());
            }
            Entry::Vacant(slot) => {
                self.note_deadline(record);
                slot.insert(record.clone());
                if let Some(owner) = &record.owner {
                    self.index_owner(*id, owner);
                }
            }
        }
        if let Err(e) = self.check_capacity(operation) {
            self.remove_entry(id);
            return Err(e);
        }
        Ok(())
    }

    fn remove_entry(&self, id: &SessionId) -> Option<Record> {
        match self.inner.sessions.entry(*id) {
            Entry::Occupied(entry) => {
                if let Some(owner) = &entry.get().owner {
                    self.unindex_owner(id, owner);
                }
                Some(entry.remove())
            }
            Entry::Vacant(_) => None,
        }
    }

    /// Applies `change` to a live record under its shard lock, or fails with `Gone`.
    fn modify_live(
        &self,
        id: &SessionId,
        operation: Operation,
        change: impl FnOnce(&mut Record, Timestamp) -> Result<()>,
    ) -> Result<()> {
        let now = self.now();
        match self.inner.sessions.entry(*id) {
            Entry::Occupied(mut entry) if self.live(entry.get(), now) => {
                let old_owner = entry.get().owner.clone();
                change(entry.get_mut(), now)?;
                self.note_deadline(entry.get());
                let new_owner = entry.get().owner.clone();
                self.reindex(*id, old_owner.as_deref(), new_owner.as_deref());
                Ok(())
            }
            Entry::Occupied(entry) => {
                if let Some(owner) = &entry.get().owner {
                    self.unindex_owner(id, owner);
                }
                entry.remove();
                Err(Error::gone(operation).with_backend("memory"))
            }
            Entry::Vacant(_) => Err(Error::gone(operation).with_backend("memory")),
        }
    }

    fn owner_ids(&self, owner: &str) -> Vec<SessionId> {
        self.inner
            .owners
            .get(owner)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(true)
            .with_atomic_rename(false)
            .with_native_expiry(false)
            .with_durable(false)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        let now = self.now();
        if let Some(record) = self.inner.sessions.get(id) {
            if self.live(&record, now) {
                return Ok(Some(record.clone()));
            }
        } else {
            return Ok(None);
        }
        // Expired: free it now rather than waiting for cleanup.
        if let Entry::Occupied(entry) = self.inner.sessions.entry(*id)
            && !self.live(entry.get(), now)
        {
            if let Some(owner) = &entry.get().owner {
                self.unindex_owner(id, owner);
            }
            entry.remove();
        }
        Ok(None)
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.insert_new(id, record, Operation::Set)
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.insert_new(id, record, Operation::Create)
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        self.modify_live(id, Operation::Update, |record, now| {
            if patch.set.is_empty() {
                patch.apply_to(record, now);
                return Ok(());
            }
            // Checked before anything is written: the patch goes to a copy first.
            let mut next = record.clone();
            patch.apply_to(&mut next, now);
            self.check_size(&next, Operation::Update)?;
            *record = next;
            Ok(())
        })
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        self.modify_live(id, Operation::Touch, |record, now| {
            record.expires_at = expires_at;
            record.last_access = now;
            Ok(())
        })
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.remove_entry(id);
        Ok(())
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let now = self.now();
        if old == new {
            return self
                .touch(old, self.get(old).await?.and_then(|r| r.expires_at))
                .await;
        }
        if let Some(existing) = self.inner.sessions.get(new)
            && self.live(&existing, now)
        {
            return Err(Error::already_exists(Operation::Rename).with_backend("memory"));
        }
        let mut record = match self.remove_entry(old) {
            Some(record) if self.live(&record, now) => record,
            _ => return Err(Error::gone(Operation::Rename).with_backend("memory")),
        };
        record.last_access = now;
        match self.inner.sessions.entry(*new) {
            Entry::Occupied(entry) if self.live(entry.get(), now) => {
                drop(entry);
                // Another request took `new` in between: put the old session back.
                if let Entry::Vacant(slot) = self.inner.sessions.entry(*old) {
                    if let Some(owner) = &record.owner {
                        self.index_owner(*old, owner);
                    }
                    slot.insert(record);
                }
                Err(Error::already_exists(Operation::Rename).with_backend("memory"))
            }
            Entry::Occupied(mut entry) => {
                let stale_owner = entry.get().owner.clone();
                self.reindex(*new, stale_owner.as_deref(), record.owner.as_deref());
                entry.insert(record);
                Ok(())
            }
            Entry::Vacant(slot) => {
                if let Some(owner) = &record.owner {
                    self.index_owner(*new, owner);
                }
                slot.insert(record);
                Ok(())
            }
        }
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let after = cursor.map(SessionId::parse).transpose()?;
        let limit = limit.max(1);
        let now = self.now();
        // Keep the `limit` smallest ids after the cursor: O(n log limit) per page, no full copy.
        let mut heap: BinaryHeap<SessionId> = BinaryHeap::with_capacity(limit + 1);
        for entry in self.inner.sessions.iter() {
            let id = *entry.key();
            if after.is_some_and(|a| id <= a) || !self.live(entry.value(), now) {
                continue;
            }
            if heap.len() < limit {
                heap.push(id);
            } else if heap.peek().is_some_and(|max| id < *max) {
                heap.pop();
                heap.push(id);
            }
        }
        let full = heap.len() == limit;
        let ids = heap.into_sorted_vec();
        let next = if full {
            ids.last().map(|id| id.as_str().to_owned())
        } else {
            None
        };
        let sessions = ids
            .into_iter()
            .filter_map(|id| {
                let record = self.inner.sessions.get(&id)?;
                self.live(&record, now).then(|| (id, record.clone()))
            })
            .collect();
        Ok(Page { sessions, next })
    }

    async fn length(&self) -> Result<u64> {
        let now = self.now();
        Ok(self
            .inner
            .sessions
            .iter()
            .filter(|entry| self.live(entry.value(), now))
            .count() as u64)
    }

    async fn clear(&self) -> Result<u64> {
        let removed = self.inner.sessions.len() as u64;
        self.inner.sessions.clear();
        self.inner.owners.clear();
        Ok(removed)
    }

    async fn cleanup(&self) -> Result<u64> {
        Ok(self.remove_expired())
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let now = self.now();
        let mut found = Vec::new();
        for id in self.owner_ids(owner) {
            match self.inner.sessions.entry(id) {
                Entry::Occupied(entry)
                    if entry.get().owner.as_deref() == Some(owner)
                        && self.live(entry.get(), now) =>
                {
                    found.push((id, entry.get().clone()));
                }
                Entry::Occupied(entry) if entry.get().owner.as_deref() == Some(owner) => {
                    // Expired: free it.
                    self.unindex_owner(&id, owner);
                    entry.remove();
                }
                _ => self.unindex_owner(&id, owner),
            }
        }
        found.sort_by_key(|(_, r)| r.created_at);
        Ok(found)
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let now = self.now();
        let mut destroyed = 0;
        for id in self.owner_ids(owner) {
            if Some(&id) == except {
                continue;
            }
            match self.inner.sessions.entry(id) {
                Entry::Occupied(entry) if entry.get().owner.as_deref() == Some(owner) => {
                    if self.live(entry.get(), now) {
                        destroyed += 1;
                    }
                    self.unindex_owner(&id, owner);
                    entry.remove();
                }
                _ => self.unindex_owner(&id, owner),
            }
        }
        Ok(destroyed)
    }
}

/// The length of `data` as JSON, counted without building the text.
fn json_len(data: &crate::record::Data) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and session data is plain JSON values.
    let _ = serde_json::to_writer(&mut count, data);
    count.0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::time::ManualClock;

    /// A store at capacity with only live sessions refuses inserts without scanning its
    /// entries each time; once sessions expire, one scan frees them all.
    #[tokio::test]
    async fn at_capacity_refusals_do_not_scan_and_expiry_frees_room() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let store = MemoryStore::builder()
            .max_entries(100)
            .clock(Arc::new(clock.clone()))
            .build();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let record = |secs| Record::new(now).expiring_at(now + Duration::from_secs(secs));
        for _ in 0..100 {
            store
                .create(&SessionId::generate().unwrap(), &record(60))
                .await
                .unwrap();
        }
        for _ in 0..1000 {
            let err = store
                .create(&SessionId::generate().unwrap(), &record(60))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable);
        }
        assert_eq!(store.length().await.unwrap(), 100);
        assert_eq!(
            store.inner.sweeps.load(Ordering::Relaxed),
            0,
            "nothing can have expired: no scan"
        );

        clock.advance(Duration::from_secs(61));
        store
            .create(&SessionId::generate().unwrap(), &record(3600))
            .await
            .unwrap();
        for _ in 0..99 {
            store
                .create(&SessionId::generate().unwrap(), &record(3600))
                .await
                .unwrap();
        }
        assert_eq!(
            store.inner.sweeps.load(Ordering::Relaxed),
            1,
            "one scan freed all 100"
        );
        assert_eq!(store.length().await.unwrap(), 100);
    }

    /// Issue 14, defect 6: the memory store took sessions of any size. Now `set`, `create` and
    /// `update` refuse more than `max_record_bytes` of data before writing anything, naming
    /// the limit and the size; the URL option sets it, out of range is a `Config` error.
    #[tokio::test]
    async fn sessions_over_max_record_bytes_are_too_large_and_write_nothing() {
        let store = MemoryStore::builder().max_record_bytes(64).build();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let big: serde_json::Value = "x".repeat(100).into();
        let id = SessionId::generate().unwrap();
        let mut record = Record::new(now);
        record.data.insert("note".to_owned(), big.clone());
        for result in [
            store.set(&id, &record).await,
            store.create(&id, &record).await,
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TooLarge);
            assert!(err.to_string().contains("max_record_bytes = 64"), "{err}");
        }
        assert_eq!(store.length().await.unwrap(), 0, "nothing written");

        let small = Record::new(Timestamp::now());
        store.create(&id, &small).await.unwrap();
        let err = store
            .update(&id, &Patch::new().set("a", 1.into()).set("note", big))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
        assert!(
            store.get(&id).await.unwrap().unwrap().data.is_empty(),
            "nothing written"
        );
        store
            .update(&id, &Patch::new().set("a", 1.into()))
            .await
            .unwrap();

        let parsed = MemoryStoreBuilder::parse("memory://?max_record_bytes=10")
            .unwrap()
            .build();
        assert_eq!(parsed.inner.max_record_bytes, 10);
        assert_eq!(
            MemoryStore::new().inner.max_record_bytes,
            crate::DEFAULT_MAX_RECORD_BYTES
        );
        for bad in [
            "memory://?max_record_bytes=0",
            "memory://?max_record_bytes=2000000000",
        ] {
            assert_eq!(
                MemoryStoreBuilder::parse(bad).unwrap_err().kind(),
                ErrorKind::Config
            );
        }
    }
}
