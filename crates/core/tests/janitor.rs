//! The janitor against a real MemoryStore, with a wrapper that makes chosen cleanup runs fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sessionbank_core::{
    Capabilities, Error, ErrorKind, Janitor, JanitorConfig, MemoryStore, Operation, Page, Patch,
    Record, SessionId, Store, Timestamp, async_trait,
};

/// A MemoryStore whose first `fail_first` cleanups fail with `Unavailable`.
#[derive(Debug)]
struct FlakyCleanup {
    inner: MemoryStore,
    calls: AtomicU64,
    fail_first: u64,
}

#[async_trait]
impl Store for FlakyCleanup {
    fn backend(&self) -> &'static str {
        "flaky"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, id: &SessionId) -> sessionbank_core::Result<Option<Record>> {
        self.inner.get(id).await
    }
    async fn set(&self, id: &SessionId, r: &Record) -> sessionbank_core::Result<()> {
        self.inner.set(id, r).await
    }
    async fn create(&self, id: &SessionId, r: &Record) -> sessionbank_core::Result<()> {
        self.inner.create(id, r).await
    }
    async fn update(&self, id: &SessionId, p: &Patch) -> sessionbank_core::Result<()> {
        self.inner.update(id, p).await
    }
    async fn touch(&self, id: &SessionId, e: Option<Timestamp>) -> sessionbank_core::Result<()> {
        self.inner.touch(id, e).await
    }
    async fn destroy(&self, id: &SessionId) -> sessionbank_core::Result<()> {
        self.inner.destroy(id).await
    }
    async fn rename(&self, a: &SessionId, b: &SessionId) -> sessionbank_core::Result<()> {
        self.inner.rename(a, b).await
    }
    async fn all(&self, c: Option<&str>, l: usize) -> sessionbank_core::Result<Page> {
        self.inner.all(c, l).await
    }
    async fn length(&self) -> sessionbank_core::Result<u64> {
        self.inner.length().await
    }
    async fn clear(&self) -> sessionbank_core::Result<u64> {
        self.inner.clear().await
    }
    async fn cleanup(&self) -> sessionbank_core::Result<u64> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            return Err(Error::new(
                ErrorKind::Unavailable,
                Operation::Cleanup,
                "injected failure",
            ));
        }
        self.inner.cleanup().await
    }
    async fn owned_by(&self, o: &str) -> sessionbank_core::Result<Vec<(SessionId, Record)>> {
        self.inner.owned_by(o).await
    }
    async fn destroy_owned_by(
        &self,
        o: &str,
        e: Option<&SessionId>,
    ) -> sessionbank_core::Result<u64> {
        self.inner.destroy_owned_by(o, e).await
    }
}

fn expired() -> Record {
    let now = Timestamp::now();
    Record::new(now - Duration::from_secs(100)).expiring_at(now - Duration::from_secs(1))
}

#[tokio::test]
async fn a_failed_run_is_followed_by_the_next_tick() {
    let inner = MemoryStore::new();
    for _ in 0..3 {
        inner
            .set(&SessionId::generate().unwrap(), &expired())
            .await
            .unwrap();
    }
    let store = Arc::new(FlakyCleanup {
        inner: inner.clone(),
        calls: AtomicU64::new(0),
        fail_first: 2,
    });
    let janitor = Janitor::spawn(
        store.clone(),
        JanitorConfig::every(Duration::from_millis(20)),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while janitor.removed() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the janitor never recovered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(janitor.failures(), 2);
    assert!(janitor.runs() >= 3);
    // The expired records are really gone from the underlying map, not just hidden.
    assert_eq!(inner.cleanup().await.unwrap(), 0);
    janitor.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_runs() {
    let store = Arc::new(MemoryStore::new());
    let janitor = Janitor::spawn(store, JanitorConfig::every(Duration::from_millis(10)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    janitor.shutdown().await;
    let runs = janitor.runs();
    assert!(runs >= 2, "ran {runs} times in 100 ms at a 10 ms interval");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(janitor.runs(), runs, "no run after shutdown");
}

#[tokio::test]
async fn jitter_spreads_the_runs() {
    // With 50% jitter each wait lies in 5..15 ms: never faster than interval * (1 - jitter),
    // never slower than interval * (1 + jitter) plus scheduling.
    let config = JanitorConfig::every(Duration::from_millis(10)).with_jitter(0.5);
    let a = Janitor::spawn(Arc::new(MemoryStore::new()), config);
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.shutdown().await;
    let runs = a.runs();
    assert!(
        runs <= 81,
        "at least 5 ms between runs, got {runs} runs in 400 ms"
    );
    assert!(
        runs >= 10,
        "at most ~15 ms between runs plus scheduling, got {runs}"
    );
}

#[tokio::test]
async fn connect_starts_a_janitor_that_cleans() {
    let handle = sessionbank_core::Registry::with_memory()
        .connect("memory://?cleanup_time=20ms")
        .await
        .unwrap();
    handle
        .set(&SessionId::generate().unwrap(), &expired())
        .await
        .unwrap();
    let janitor = handle.janitor().expect("a janitor runs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while janitor.removed() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the janitor never cleaned"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let off = sessionbank_core::Registry::with_memory()
        .connect("memory://?cleanup_time=off")
        .await
        .unwrap();
    assert!(off.janitor().is_none());
}
