//! Sentinel failover under load: the master is stopped while tasks keep writing and reading.
//! Errors during the switch are `Unavailable` or `Timeout` and stop within a bounded time;
//! afterwards every request succeeds, and writes that were acknowledged and replicated before
//! the switch are readable from the new master. A string-layout and a hash-layout store run
//! side by side through the same failover (the hash layout's writes are `MULTI … EXEC`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sessionbank_core::{ErrorKind, Patch, Record, SessionId, Store, Timestamp};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisSentinel;

const SWITCH_BOUND: Duration = Duration::from_secs(60);

#[test]
fn sentinel_failover_under_load() {
    let mut group = RedisSentinel::start();
    let master_port = group.master_port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stores: Vec<Arc<RedisStore>> = [("failover:", "string"), ("failoverh:", "hash")]
        .into_iter()
        .map(|(prefix, layout)| {
            let url = format!(
                "{}?prefix={prefix}&layout={layout}&response_timeout=5s&connect_timeout=5s",
                group.url()
            );
            Arc::new(runtime.block_on(RedisStore::connect(&url)).unwrap())
        })
        .collect();

    // Acknowledged and replicated before the switch.
    let now = Timestamp::now();
    let record = Record::new(now).expiring_at(now + Duration::from_secs(3600));
    let before: Vec<SessionId> = (0..100).map(|_| SessionId::generate().unwrap()).collect();
    runtime.block_on(async {
        for store in &stores {
            for id in &before {
                store.set(id, &record).await.unwrap();
            }
        }
    });
    let replicated = group.cli(master_port, &["WAIT", "1", "10000"]);
    assert_eq!(
        replicated.trim(),
        "1",
        "the replica acknowledged the writes"
    );

    // Load: four tasks per store writing, reading and updating their own sessions until told
    // to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = stores[i % 2].clone();
            let stop = stop.clone();
            let record = record.clone();
            runtime.spawn(async move {
                let mut failures: Vec<(Instant, ErrorKind)> = Vec::new();
                let mut successes = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let id = SessionId::generate().unwrap();
                    let patch = Patch::new().set("n", 1.into());
                    let result = match store.set(&id, &record).await {
                        Ok(()) => match store.update(&id, &patch).await {
                            Ok(()) => store.get(&id).await.map(|_| ()),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(()) => successes += 1,
                        Err(e) => {
                            failures.push((Instant::now(), e.kind()));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (successes, failures)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    group.kill_master();

    // Wait until requests succeed again through the new master.
    let recovered = runtime.block_on(async {
        loop {
            let id = SessionId::generate().unwrap();
            let mut ok = true;
            for store in &stores {
                ok &= store.set(&id, &record).await.is_ok()
                    && store.update(&id, &Patch::new()).await.is_ok()
                    && store.get(&id).await.is_ok();
            }
            if ok {
                return Instant::now();
            }
            assert!(
                killed_at.elapsed() < SWITCH_BOUND,
                "the store did not recover within {SWITCH_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let mut all_failures = Vec::new();
    let mut total_successes = 0;
    for task in tasks {
        let (successes, failures) = runtime.block_on(task).unwrap();
        total_successes += successes;
        all_failures.extend(failures);
    }
    assert!(total_successes > 0, "the load ran");
    for (at, kind) in &all_failures {
        assert!(
            matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout),
            "errors during the switch are Unavailable or Timeout, got {kind:?}"
        );
        assert!(
            at.duration_since(killed_at) < SWITCH_BOUND,
            "errors stop within {SWITCH_BOUND:?}"
        );
    }
    eprintln!(
        "failover: {} errors, recovered {:?} after the master stopped, {total_successes} pairs",
        all_failures.len(),
        recovered.duration_since(killed_at)
    );

    // Afterwards every request succeeds, and the replicated writes are there.
    runtime.block_on(async {
        for store in &stores {
            for _ in 0..100 {
                let id = SessionId::generate().unwrap();
                store.set(&id, &record).await.unwrap();
                store.update(&id, &Patch::new()).await.unwrap();
                assert!(store.get(&id).await.unwrap().is_some());
            }
            for id in &before {
                assert!(
                    store.get(id).await.unwrap().is_some(),
                    "a replicated write survived the failover ({:?})",
                    store.layout()
                );
            }
        }
    });
    let new_master = group.cli(
        group.sentinel_ports()[0],
        &["sentinel", "get-master-addr-by-name", "mymaster"],
    );
    assert!(
        new_master.contains(&group.replica_port().to_string()),
        "the sentinels promoted the replica: {new_master}"
    );
    drop(stores);
    drop(runtime);
    drop(group);
}
