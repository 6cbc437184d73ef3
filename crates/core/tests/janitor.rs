//! The janitor against a real MemoryStore, wrapped so that chosen cleanup runs fail.

use std::sync::Arc;
use std::time::Duration;

use sessionbank_core::{
    Janitor, JanitorConfig, MemoryStore, Operation, Record, SessionId, Store, Timestamp,
};
use sessionbank_testkit::InstrumentedStore;

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
    let store = InstrumentedStore::new(inner.clone());
    store.fail_times(Operation::Cleanup, 2);
    let store = Arc::new(store);
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
