//! A hash slot moves from one master to another while tasks keep updating the sessions in it:
//! the client follows ASK and MOVED, no update is lost, and afterwards the sessions live on the
//! new master. Both layouts, one after the other on the same cluster: the string layout's
//! scripts and the hash layout's MULTI … EXEC (whose queued commands answer ASK or MOVED, which
//! aborts the transaction; the store sends it again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisCluster;

/// CRC16/XMODEM, the function Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for b in bytes {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn slot(key: &str) -> u16 {
    crc16(key.as_bytes()) % 16384
}

/// The port of the master serving `slot`.
fn owner(cluster: &RedisCluster, slot: u16) -> u16 {
    let text = cluster.cli(cluster.ports()[0], &["cluster", "slots"]);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // redis-cli prints each range as: start, end, host, port, id, (replicas...).
    let mut i = 0;
    while i + 3 < lines.len() {
        if let (Ok(start), Ok(end)) = (lines[i].parse::<u16>(), lines[i + 1].parse::<u16>())
            && lines[i + 2] == "127.0.0.1"
            && let Ok(port) = lines[i + 3].parse::<u16>()
        {
            if (start..=end).contains(&slot) {
                return port;
            }
            i += 4;
            continue;
        }
        i += 1;
    }
    panic!("no master serves slot {slot}: {text}");
}

#[test]
fn slot_migration_under_load() {
    let cluster = RedisCluster::start();
    migrate_under_load(&cluster, "string", "migrate:", "s:");
    migrate_under_load(&cluster, "hash", "migrateh:", "h:");
    drop(cluster);
}

#[allow(clippy::unwrap_used, clippy::expect_used)] // a test helper: any failure fails the test
fn migrate_under_load(cluster: &RedisCluster, layout: &str, prefix: &str, kind: &str) {
    let url = format!(
        "{}?prefix={prefix}&response_timeout=5s&layout={layout}",
        cluster.url()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(runtime.block_on(RedisStore::connect(&url)).unwrap());

    // Eight sessions that all hash to one slot.
    let first = SessionId::generate().unwrap();
    let target = slot(&format!("{prefix}{kind}{}", first.as_str()));
    let reported = cluster.cli(
        cluster.ports()[0],
        &[
            "cluster",
            "keyslot",
            &format!("{prefix}{kind}{}", first.as_str()),
        ],
    );
    assert_eq!(
        reported.trim(),
        target.to_string(),
        "our CRC16 matches Redis"
    );
    let mut ids = vec![first];
    while ids.len() < 8 {
        let id = SessionId::generate().unwrap();
        if slot(&format!("{prefix}{kind}{}", id.as_str())) == target {
            ids.push(id);
        }
    }
    let now = Timestamp::now();
    let record = Record::new(now)
        .expiring_at(now + Duration::from_secs(3600))
        .owned_by("mover");
    runtime.block_on(async {
        for id in &ids {
            store.set(id, &record).await.unwrap();
        }
    });

    let source = owner(cluster, target);
    let dest = *cluster.ports().iter().find(|p| **p != source).unwrap();
    let source_id = cluster.cli(source, &["cluster", "myid"]).trim().to_owned();
    let dest_id = cluster.cli(dest, &["cluster", "myid"]).trim().to_owned();

    // Each task counts up a key of its own session; every acknowledged count must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (store, stop, id) = (store.clone(), stop.clone(), *id);
            runtime.spawn(async move {
                let mut acknowledged = 0u64;
                let mut retried = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let next = acknowledged + 1;
                    match store.update(&id, &Patch::new().set("n", json!(next))).await {
                        Ok(()) => acknowledged = next,
                        Err(e) if e.kind().is_retryable() => {
                            let chain = e.chain();
                            assert!(
                                !chain.contains("Ask") && !chain.contains("Moved"),
                                "redirections are followed, not returned: {chain}"
                            );
                            retried += 1;
                        }
                        Err(e) => panic!("update during the migration: {}", e.chain()),
                    }
                    match store.get(&id).await {
                        Ok(Some(r)) => assert!(r.data["n"].as_u64() >= Some(acknowledged)),
                        Ok(None) => panic!("a session vanished during the migration"),
                        Err(e) if e.kind().is_retryable() => retried += 1,
                        Err(e) => panic!("get during the migration: {}", e.chain()),
                    }
                }
                (id, acknowledged, retried)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Move the slot, a key at a time, as redis-cli --cluster reshard does.
    let slot_text = target.to_string();
    let ok = |out: String, what: &str| assert!(out.contains("OK"), "{what}: {out}");
    ok(
        cluster.cli(
            dest,
            &["cluster", "setslot", &slot_text, "importing", &source_id],
        ),
        "importing",
    );
    ok(
        cluster.cli(
            source,
            &["cluster", "setslot", &slot_text, "migrating", &dest_id],
        ),
        "migrating",
    );
    let started = Instant::now();
    loop {
        let keys = cluster.cli(source, &["cluster", "getkeysinslot", &slot_text, "1"]);
        let Some(key) = keys.lines().next().map(str::trim).filter(|k| !k.is_empty()) else {
            break;
        };
        let out = cluster.cli(
            source,
            &["migrate", "127.0.0.1", &dest.to_string(), key, "0", "5000"],
        );
        assert!(
            out.contains("OK") || out.contains("NOKEY"),
            "migrate: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "migration hangs"
        );
    }
    for port in cluster.ports() {
        ok(
            cluster.cli(*port, &["cluster", "setslot", &slot_text, "node", &dest_id]),
            "setslot node",
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);

    let mut counts = Vec::new();
    for task in tasks {
        counts.push(runtime.block_on(task).unwrap());
    }
    runtime.block_on(async {
        for (id, acknowledged, _) in &counts {
            let back = store.get(id).await.unwrap().expect("the session survived");
            assert_eq!(
                back.data["n"].as_u64(),
                Some(*acknowledged),
                "the last acknowledged update is what is stored"
            );
            assert!(*acknowledged > 0, "the task made progress");
        }
        assert_eq!(store.owned_by("mover").await.unwrap().len(), 8);
        assert_eq!(store.length().await.unwrap(), 8);
        assert_eq!(store.clear().await.unwrap(), 8);
    });
    assert_eq!(owner(cluster, target), dest, "the slot moved");
    let retried: u64 = counts.iter().map(|c| c.2).sum();
    eprintln!(
        "slot migration ({layout} layout): {} updates acknowledged, {retried} retryable errors",
        counts.iter().map(|c| c.1).sum::<u64>()
    );
    drop(store);
    drop(runtime);
}
