//! MemoryStore specifics beyond the conformance suite: really frees expired entries, stays
//! consistent under heavy concurrency, honours its bound.

use std::time::Duration;

use sessionbank_core::{
    Clock, ManualClock, MemoryStore, Patch, Record, SessionId, Store, Timestamp,
};

#[tokio::test]
async fn expired_entries_are_freed_on_read_and_by_cleanup() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder()
        .clock(std::sync::Arc::new(clock.clone()))
        .build();
    let now = clock.now();
    let ids: Vec<_> = (0..100).map(|_| SessionId::generate().unwrap()).collect();
    for id in &ids {
        store
            .set(
                id,
                &Record::new(now)
                    .expiring_at(now + Duration::from_secs(10))
                    .owned_by("u"),
            )
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(11));
    // A read frees the entry it finds expired: cleanup then only finds the other 99.
    assert!(store.get(&ids[0]).await.unwrap().is_none());
    assert_eq!(store.cleanup().await.unwrap(), 99);
    assert_eq!(store.cleanup().await.unwrap(), 0);
    assert!(store.owned_by("u").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_concurrency_keeps_every_acknowledged_change() {
    let store = MemoryStore::new();
    let now = Timestamp::now();
    let ids: Vec<_> = (0..16).map(|_| SessionId::generate().unwrap()).collect();
    for id in &ids {
        store
            .create(
                id,
                &Record::new(now).expiring_at(now + Duration::from_secs(600)),
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for (n, id) in ids.iter().enumerate() {
                store
                    .update(id, &Patch::new().set(format!("t{t}"), (n as u64).into()))
                    .await
                    .unwrap();
                store.get(id).await.unwrap().unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let record = store.get(id).await.unwrap().unwrap();
        assert_eq!(record.data.len(), 64, "session {n} lost updates");
    }
}

#[tokio::test]
async fn the_bound_refuses_new_sessions_after_freeing_expired_ones() {
    let store = MemoryStore::builder().max_entries(3).build();
    let now = Timestamp::now();
    let old = Record::new(now).expiring_at(now - Duration::from_secs(1));
    let live = Record::new(now).expiring_at(now + Duration::from_secs(60));
    store
        .set(&SessionId::generate().unwrap(), &old)
        .await
        .unwrap();
    for _ in 0..3 {
        // The expired entry is evicted to make room.
        store
            .set(&SessionId::generate().unwrap(), &live)
            .await
            .unwrap();
    }
    let refused = SessionId::generate().unwrap();
    let err = store.create(&refused, &live).await.unwrap_err();
    assert_eq!(err.kind(), sessionbank_core::ErrorKind::Unavailable);
    assert!(err.to_string().contains("maximum of 3"), "{err}");
    assert!(store.get(&refused).await.unwrap().is_none());
    assert_eq!(store.length().await.unwrap(), 3);
}
