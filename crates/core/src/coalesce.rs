//! [`Coalescing`]: concurrent reads of one session share one read, concurrent writes one write.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::Entry;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::id::SessionId;
use crate::record::{Patch, Record};
use crate::store::{Capabilities, Page, Store};
use crate::time::Timestamp;

/// Which calls of a session share a lane: a `get` never waits for a write (`update` or
/// `touch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Get,
    Write,
}

/// A write waiting on the write lane: an `update`'s patch, or a `touch`'s new expiry.
enum Change {
    Update(Patch),
    Touch(Option<Timestamp>),
}

impl Change {
    fn operation(&self) -> Operation {
        match self {
            Change::Update(_) => Operation::Update,
            Change::Touch(_) => Operation::Touch,
        }
    }

    /// Folds this change into `merged`: a touch is a patch that moves the expiry only.
    fn fold_into(&self, merged: &mut Patch) {
        match self {
            Change::Update(patch) => merged.then(patch),
            Change::Touch(expires_at) => merged.expires_at = Some(*expires_at),
        }
    }

    /// Writes this change alone, as its caller asked.
    async fn write(&self, inner: &dyn Store, id: &SessionId) -> Result<()> {
        match self {
            Change::Update(patch) => inner.update(id, patch).await,
            Change::Touch(expires_at) => inner.touch(id, *expires_at).await,
        }
    }
}

/// A call waiting for the one in flight on its lane, and where its result goes.
enum Waiter {
    Get(oneshot::Sender<Result<Option<Record>>>),
    Write(Change, oneshot::Sender<Result<()>>),
}

/// What the wrapper shares with the tasks that run waiting calls.
struct Shared {
    inner: Arc<dyn Store>,
    /// A lane of a session is here while one of its calls is in flight; its list holds the
    /// calls that arrived meanwhile. Sharded: sessions in different shards never contend.
    in_flight: DashMap<(SessionId, Lane), Vec<Waiter>>,
}

impl Shared {
    /// Joins the lane's call in flight (`Some`: wait on it), or marks the lane in flight
    /// (`None`: the caller runs its call itself). `waiter` makes the waiting entry.
    fn join<T>(
        &self,
        key: (SessionId, Lane),
        waiter: impl FnOnce(oneshot::Sender<Result<T>>) -> Waiter,
    ) -> Option<oneshot::Receiver<Result<T>>> {
        match self.in_flight.entry(key) {
            Entry::Occupied(mut waiting) => {
                let (done, result) = oneshot::channel();
                waiting.get_mut().push(waiter(done));
                Some(result)
            }
            Entry::Vacant(lane) => {
                lane.insert(Vec::new());
                None
            }
        }
    }

    /// The calls that arrived while the lane's last call was in flight; when there are none, the
    /// lane is no longer in flight.
    fn next_batch(&self, key: &(SessionId, Lane)) -> Vec<Waiter> {
        match self.in_flight.entry(*key) {
            Entry::Occupied(mut waiting) if !waiting.get().is_empty() => {
                std::mem::take(waiting.get_mut())
            }
            Entry::Occupied(lane) => {
                lane.remove();
                Vec::new()
            }
            Entry::Vacant(_) => Vec::new(),
        }
    }

    /// Runs batches of waiting calls of a lane until none is left.
    async fn drain(self: Arc<Self>, key: (SessionId, Lane)) {
        let mut guard = Draining {
            shared: &self,
            key,
            done: false,
        };
        loop {
            let batch = self.next_batch(&key);
            if batch.is_empty() {
                guard.done = true;
                return;
            }
            self.run_batch(&key.0, batch).await;
        }
    }

    /// Runs a batch of one lane: one `get` for all, or one merged write.
    async fn run_batch(&self, id: &SessionId, batch: Vec<Waiter>) {
        // A caller that stopped waiting (its request was dropped) has its call dropped too, as
        // its own future would have been before it reached the store.
        let mut gets = Vec::new();
        let mut writes = Vec::new();
        for waiter in batch {
            match waiter {
                Waiter::Get(done) if !done.is_closed() => gets.push(done),
                Waiter::Write(change, done) if !done.is_closed() => writes.push((change, done)),
                Waiter::Get(_) | Waiter::Write(..) => {}
            }
        }
        tracing::trace!(
            gets = gets.len(),
            writes = writes.len(),
            "running calls that waited for one of their session"
        );
        if !gets.is_empty() {
            let result = self.inner.get(id).await;
            for done in gets {
                let _ = done.send(match &result {
                    Ok(record) => Ok(record.clone()),
                    Err(e) => Err(copy_of(e, Operation::Get)),
                });
            }
        }
        if !writes.is_empty() {
            self.write_changes(id, writes).await;
        }
    }

    /// Writes waiting changes as one: a `touch` with the last expiry when all are touches,
    /// otherwise one `update` of the merged patch. Tells each waiter how it went.
    async fn write_changes(
        &self,
        id: &SessionId,
        mut batch: Vec<(Change, oneshot::Sender<Result<()>>)>,
    ) {
        if batch.len() == 1 {
            let (change, done) = batch.remove(0);
            let _ = done.send(change.write(&*self.inner, id).await);
            return;
        }
        let result = if let Some(Change::Touch(last)) = batch.last().map(|(change, _)| change)
            && batch
                .iter()
                .all(|(change, _)| matches!(change, Change::Touch(_)))
        {
            self.inner.touch(id, *last).await
        } else {
            let mut merged = Patch::new();
            for (change, _) in &batch {
                change.fold_into(&mut merged);
            }
            self.inner.update(id, &merged).await
        };
        match result {
            Ok(()) => {
                for (_, done) in batch {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::TooLarge) => {
                // One change was refused, and as writes are atomic nothing was written: write
                // them one by one so that only its request fails.
                for (change, done) in batch {
                    let _ = done.send(change.write(&*self.inner, id).await);
                }
            }
            Err(e) => {
                for (change, done) in batch {
                    let _ = done.send(Err(copy_of(&e, change.operation())));
                }
            }
        }
    }
}

/// Left by a task that runs waiting calls: if the task is dropped (its runtime shuts down), the
/// calls still waiting fail instead of waiting forever, and the lane is no longer in flight.
struct Draining<'a> {
    shared: &'a Shared,
    key: (SessionId, Lane),
    done: bool,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if !self.done {
            let waiting = self
                .shared
                .in_flight
                .remove(&self.key)
                .map(|(_, waiting)| waiting)
                .unwrap_or_default();
            fail_all(
                waiting,
                self.shared.inner.backend(),
                "the task running this session's call was stopped",
            );
        }
    }
}

/// Held by the call in flight on a lane. When it ends, returned or dropped, the calls that
/// arrived meanwhile go to a task that runs them.
struct InFlight<'a> {
    shared: &'a Arc<Shared>,
    key: (SessionId, Lane),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Entry::Occupied(lane) = self.shared.in_flight.entry(self.key) else {
            return;
        };
        if lane.get().is_empty() {
            lane.remove();
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(lane);
                runtime.spawn(self.shared.clone().drain(self.key));
            }
            Err(_) => {
                let waiting = lane.remove();
                fail_all(
                    waiting,
                    self.shared.inner.backend(),
                    "no async runtime was left to run this session's call",
                );
            }
        }
    }
}

/// Fails every waiting call with `Unavailable`, saying `why`.
fn fail_all(waiting: Vec<Waiter>, backend: &'static str, why: &'static str) {
    let error =
        |operation| Error::new(ErrorKind::Unavailable, operation, why).with_backend(backend);
    for waiter in waiting {
        match waiter {
            Waiter::Get(done) => {
                let _ = done.send(Err(error(Operation::Get)));
            }
            Waiter::Write(change, done) => {
                let _ = done.send(Err(error(change.operation())));
            }
        }
    }
}

/// What a waiter gets when the call it waited on was dropped before answering.
fn dropped<T>(operation: Operation, backend: &'static str) -> Result<T> {
    Err(Error::new(
        ErrorKind::Unavailable,
        operation,
        "the call carrying this one was dropped before it answered",
    )
    .with_backend(backend))
}

/// The same error for another waiter, of `operation` (a merged write is an `update`, the
/// waiter's call may have been a `touch`): kind, backend, target and message, with the
/// original's causes as text.
fn copy_of(e: &Error, operation: Operation) -> Error {
    let mut copy = Error::new(e.kind(), operation, e.message().to_owned())
        .with_backend(e.backend().to_owned());
    if let Some(target) = e.target() {
        copy = copy.with_target(target);
    }
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if !causes.is_empty() {
        copy = copy.with_source(causes.join(": "));
    }
    copy
}

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
        Self {
            shared: Arc::new(Shared {
                inner,
                in_flight: DashMap::new(),
            }),
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
        if let Some(result) = self.shared.join(key, Waiter::Get) {
            return result
                .await
                .unwrap_or_else(|_| dropped(Operation::Get, self.backend()));
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
        if let Some(result) = self.shared.join(key, |done| {
            Waiter::Write(Change::Update(patch.clone()), done)
        }) {
            return result
                .await
                .unwrap_or_else(|_| dropped(Operation::Update, self.backend()));
        }
        let _in_flight = InFlight {
            shared: &self.shared,
            key,
        };
        self.shared.inner.update(id, patch).await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let key = (*id, Lane::Write);
        if let Some(result) = self
            .shared
            .join(key, |done| Waiter::Write(Change::Touch(expires_at), done))
        {
            return result
                .await
                .unwrap_or_else(|_| dropped(Operation::Touch, self.backend()));
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
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::json;
    use tokio::sync::watch;

    use super::*;
    use crate::MemoryStore;

    /// A memory store whose `get` and `update` of one chosen session stop, after reaching the
    /// store, until the test opens the gate: so a call stays in flight while others arrive.
    #[derive(Debug)]
    struct Gated {
        inner: MemoryStore,
        gated: SessionId,
        /// Whether gets, and updates, of `gated` pass.
        gates: [watch::Sender<bool>; 2],
        gets: AtomicUsize,
        updates: AtomicUsize,
        touches: AtomicUsize,
        /// `update`s fail with `Unavailable` while set.
        failing: AtomicBool,
    }

    impl Gated {
        fn new(gated: SessionId) -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryStore::new(),
                gated,
                gates: [watch::channel(true).0, watch::channel(true).0],
                gets: AtomicUsize::new(0),
                updates: AtomicUsize::new(0),
                touches: AtomicUsize::new(0),
                failing: AtomicBool::new(false),
            })
        }

        async fn pass(&self, id: &SessionId, lane: Lane) {
            if *id == self.gated {
                let mut open = self.gates[lane as usize].subscribe();
                let _ = open.wait_for(|open| *open).await;
            }
        }
    }

    #[async_trait]
    impl Store for Gated {
        fn backend(&self) -> &'static str {
            "gated"
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            // Read first, answer when the gate opens: a reply in transit.
            let record = self.inner.get(id).await;
            self.pass(id, Lane::Get).await;
            record
        }
        async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
            self.inner.set(id, record).await
        }
        async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
            self.inner.create(id, record).await
        }
        async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
            self.updates.fetch_add(1, Ordering::SeqCst);
            self.pass(id, Lane::Write).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    Operation::Update,
                    "the test took the backend away",
                )
                .with_backend("gated")
                .with_source("connection reset"));
            }
            if patch.set.contains_key("bad") {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    Operation::Update,
                    "the test refuses the key `bad`",
                ));
            }
            self.inner.update(id, patch).await
        }
        async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
            self.touches.fetch_add(1, Ordering::SeqCst);
            self.pass(id, Lane::Write).await;
            self.inner.touch(id, expires_at).await
        }
        async fn destroy(&self, id: &SessionId) -> Result<()> {
            self.inner.destroy(id).await
        }
        async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
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
        gated: Arc<Gated>,
        store: Arc<Coalescing>,
        id: SessionId,
    }

    async fn fixture() -> Fixture {
        let id = SessionId::generate().unwrap();
        let gated = Gated::new(id);
        let store = Arc::new(Coalescing::new(gated.clone()));
        let now = Timestamp::now();
        store
            .create(
                &id,
                &Record::new(now).expiring_at(now + Duration::from_secs(600)),
            )
            .await
            .unwrap();
        Fixture { gated, store, id }
    }

    impl Fixture {
        fn close(&self, lane: Lane) {
            self.gated.gates[lane as usize].send_replace(false);
        }

        fn open(&self) {
            for gate in &self.gated.gates {
                gate.send_replace(true);
            }
        }

        /// How many calls wait on the session's lane.
        fn waiting(&self, lane: Lane) -> usize {
            self.store
                .shared
                .in_flight
                .get(&(self.id, lane))
                .map_or(0, |waiting| waiting.len())
        }

        async fn until(&self, what: impl Fn(&Self) -> bool) {
            for _ in 0..10_000 {
                if what(self) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("the condition never held");
        }

        fn update(&self, patch: Patch) -> tokio::task::JoinHandle<Result<()>> {
            let (store, id) = (self.store.clone(), self.id);
            tokio::spawn(async move { store.update(&id, &patch).await })
        }

        fn touch(&self, expires_at: Option<Timestamp>) -> tokio::task::JoinHandle<Result<()>> {
            let (store, id) = (self.store.clone(), self.id);
            tokio::spawn(async move { store.touch(&id, expires_at).await })
        }

        fn get(&self) -> tokio::task::JoinHandle<Result<Option<Record>>> {
            let (store, id) = (self.store.clone(), self.id);
            tokio::spawn(async move { store.get(&id).await })
        }

        /// Starts an update that stays in flight, then `n` more that wait behind it.
        async fn queue_updates(
            &self,
            patches: impl IntoIterator<Item = Patch>,
        ) -> Vec<tokio::task::JoinHandle<Result<()>>> {
            self.close(Lane::Write);
            let mut tasks = vec![self.update(Patch::new().set("first", json!(0)))];
            self.until(|f| f.gated.updates.load(Ordering::SeqCst) == 1)
                .await;
            for patch in patches {
                tasks.push(self.update(patch));
                let queued = tasks.len() - 1;
                self.until(|f| f.waiting(Lane::Write) == queued).await;
            }
            tasks
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_updates_are_written_as_one_merged_update() {
        let f = fixture().await;
        let tasks = f
            .queue_updates((0..20).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
            .await;
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // The one in flight, then one for the twenty that waited.
        assert_eq!(f.gated.updates.load(Ordering::SeqCst), 2);
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.data.len(), 21);
        for i in 0..20 {
            assert_eq!(record.data[&format!("k{i}")], json!(i));
        }
        assert_eq!(f.waiting(Lane::Write), 0);
        assert!(f.store.shared.in_flight.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn later_patches_win_in_arrival_order() {
        let f = fixture().await;
        let tasks = f
            .queue_updates([
                Patch::new().set("x", json!(1)).set("y", json!(1)),
                Patch::new().unset("x"),
                Patch::new().set("y", json!(2)),
            ])
            .await;
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert!(!record.data.contains_key("x"));
        assert_eq!(record.data["y"], json!(2));
    }

    /// Starts an update that stays in flight, then touches to each of `expiries` that wait.
    async fn queue_touches(
        f: &Fixture,
        expiries: &[Option<Timestamp>],
    ) -> Vec<tokio::task::JoinHandle<Result<()>>> {
        let mut tasks = f.queue_updates([]).await;
        for expires_at in expiries {
            tasks.push(f.touch(*expires_at));
            let queued = tasks.len() - 1;
            f.until(|f| f.waiting(Lane::Write) == queued).await;
        }
        tasks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_touches_are_one_touch_to_the_last_expiry() {
        let f = fixture().await;
        let now = Timestamp::now();
        let expiries: Vec<_> = (1..=3)
            .map(|h| Some(now + Duration::from_secs(3600 * h)))
            .collect();
        let tasks = queue_touches(&f, &expiries).await;
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            f.gated.updates.load(Ordering::SeqCst),
            1,
            "the one in flight"
        );
        assert_eq!(
            f.gated.touches.load(Ordering::SeqCst),
            1,
            "one for the three"
        );
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.expires_at, expiries[2]);
        assert!(record.data.contains_key("first"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn touches_and_updates_that_wait_together_are_one_update() {
        let f = fixture().await;
        let later = Timestamp::now() + Duration::from_secs(7200);
        let mut tasks = f.queue_updates([Patch::new().set("a", json!(1))]).await;
        tasks.push(f.touch(Some(later)));
        f.until(|f| f.waiting(Lane::Write) == 2).await;
        tasks.push(f.update(Patch::new().set("b", json!(2))));
        f.until(|f| f.waiting(Lane::Write) == 3).await;
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(f.gated.updates.load(Ordering::SeqCst), 2);
        assert_eq!(f.gated.touches.load(Ordering::SeqCst), 0);
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.expires_at, Some(later));
        assert_eq!(
            (record.data["a"].clone(), record.data["b"].clone()),
            (json!(1), json!(2))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_get_waits_for_a_read_that_started_after_it() {
        let f = fixture().await;
        f.close(Lane::Get);
        // A read in flight: it read the session before the update below.
        let stale = f.get();
        f.until(|f| f.gated.gets.load(Ordering::SeqCst) == 1).await;
        f.store
            .update(&f.id, &Patch::new().set("x", json!(1)))
            .await
            .unwrap_or_else(|e| panic!("{}", e.chain()));
        // This get was called after the update returned: it must see it, so it must not take
        // the answer of the read in flight.
        let fresh = f.get();
        f.until(|f| f.waiting(Lane::Get) == 1).await;
        let also_fresh = f.get();
        f.until(|f| f.waiting(Lane::Get) == 2).await;
        f.open();
        let stale = stale.await.unwrap().unwrap().unwrap();
        assert!(!stale.data.contains_key("x"));
        for task in [fresh, also_fresh] {
            let record = task.await.unwrap().unwrap().unwrap();
            assert_eq!(record.data["x"], json!(1));
        }
        // One read for the two that waited.
        assert_eq!(f.gated.gets.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gone_reaches_every_waiter_and_brings_nothing_back() {
        let f = fixture().await;
        f.store.destroy(&f.id).await.unwrap();
        let tasks = f
            .queue_updates((0..5).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
            .await;
        f.open();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap_err().kind(), ErrorKind::Gone);
        }
        assert!(f.store.get(&f.id).await.unwrap().is_none());
        assert_eq!(f.gated.updates.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_patch_fails_only_its_own_request() {
        let f = fixture().await;
        let tasks = f
            .queue_updates([
                Patch::new().set("a", json!(1)),
                Patch::new().set("bad", json!(2)),
                Patch::new().set("c", json!(3)),
            ])
            .await;
        f.open();
        let results: Vec<_> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().map_err(|e| e.kind()))
            .collect();
        assert_eq!(
            results,
            [Ok(()), Ok(()), Err(ErrorKind::InvalidInput), Ok(())]
        );
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.data["a"], json!(1));
        assert_eq!(record.data["c"], json!(3));
        assert!(!record.data.contains_key("bad"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_reaches_every_waiter_with_its_context() {
        let f = fixture().await;
        let tasks = f
            .queue_updates((0..3).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
            .await;
        f.gated.failing.store(true, Ordering::SeqCst);
        f.open();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable);
            assert_eq!(err.backend(), "gated");
            assert_eq!(
                err.chain(),
                "update on gated failed (unavailable): the test took the backend away: \
                 connection reset"
            );
        }
        // Nothing was written, and the next update goes through once the backend is back.
        f.gated.failing.store(false, Ordering::SeqCst);
        f.store
            .update(&f.id, &Patch::new().set("after", json!(true)))
            .await
            .unwrap();
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["after"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_calls_still_run_when_the_call_in_flight_is_dropped() {
        let f = fixture().await;
        let mut tasks = f
            .queue_updates((0..4).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
            .await;
        // The client of the request in flight hangs up: its future is dropped mid-call.
        let in_flight = tasks.remove(0);
        in_flight.abort();
        assert!(in_flight.await.unwrap_err().is_cancelled());
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.data.len(), 4, "{:?}", record.data.keys());
        assert!(f.store.shared.in_flight.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_stops_waiting_has_its_patch_dropped() {
        let f = fixture().await;
        let mut tasks = f
            .queue_updates((0..3).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
            .await;
        // The request of `k1` is dropped while it waits (its client hung up).
        let gave_up = tasks.remove(2);
        gave_up.abort();
        assert!(gave_up.await.unwrap_err().is_cancelled());
        f.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let record = f.store.get(&f.id).await.unwrap().unwrap();
        assert_eq!(record.data.get("k0"), Some(&json!(0)));
        assert_eq!(record.data.get("k1"), None);
        assert_eq!(record.data.get("k2"), Some(&json!(2)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_sessions_and_the_other_lane_do_not_wait() {
        let f = fixture().await;
        let other = SessionId::generate().unwrap();
        let now = Timestamp::now();
        f.store
            .create(
                &other,
                &Record::new(now).expiring_at(now + Duration::from_secs(600)),
            )
            .await
            .unwrap();
        let tasks = f.queue_updates([]).await;
        // The gated session's update is in flight; another session's update and this one's get
        // do not wait behind it.
        tokio::time::timeout(
            Duration::from_secs(5),
            f.store.update(&other, &Patch::new().set("x", json!(1))),
        )
        .await
        .expect("another session's update waited")
        .unwrap();
        let read = f.get();
        f.until(|f| f.gated.gets.load(Ordering::SeqCst) == 1).await;
        assert_eq!(f.waiting(Lane::Get), 0);
        f.open();
        read.await.unwrap().unwrap().unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
}
