//! Coalescing's unit tests, over a memory store whose calls a test can hold in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::*;
use crate::MemoryStore;
use crate::error::{Error, ErrorKind};

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
    fixture_with(DEFAULT_MAX_WAITERS).await
}

async fn fixture_with(max_waiters: usize) -> Fixture {
    let id = SessionId::generate().unwrap();
    let gated = Gated::new(id);
    let store = Arc::new(Coalescing::with_max_waiters(gated.clone(), max_waiters));
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

/// A stuck call cannot pile up unbounded waiters: past the cap, calls of that session fail at
/// once with `Unavailable`, and the ones that waited are still answered once it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_past_the_cap_are_refused_at_once() {
    let f = fixture_with(3).await;
    let tasks = f
        .queue_updates((0..3).map(|i| Patch::new().set(format!("k{i}"), json!(i))))
        .await;
    let refused = f
        .store
        .update(&f.id, &Patch::new().set("late", json!(1)))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
    assert_eq!(refused.operation(), Some(Operation::Update));
    assert!(refused.to_string().contains("3 calls"), "{refused}");
    assert_eq!(refused.backend(), "gated");
    f.close(Lane::Get);
    let reader = f.get();
    f.until(|f| f.gated.gets.load(Ordering::SeqCst) == 1).await;
    f.open();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    reader.await.unwrap().unwrap();
    let record = f.store.get(&f.id).await.unwrap().unwrap();
    assert_eq!(record.data.len(), 4, "the first and the three that waited");
    assert!(
        !record.data.contains_key("late"),
        "the refused one wrote nothing"
    );
    assert!(f.store.shared.in_flight.is_empty());
}
