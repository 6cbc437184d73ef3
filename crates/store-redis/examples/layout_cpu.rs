//! CPU per `get` + `update` pair of each layout, the client's and Redis's, measured apart.
//!
//! It starts a Redis server (the testkit harness), creates one session per layout and round,
//! runs 64 tasks doing `get` then `update` of one key (the wrk counter's requests, without
//! HTTP) for 3 s on a one-thread runtime, and prints pairs per second and the CPU time per pair
//! of this process and of Redis (from `/proc/PID/stat`). Three rounds, alternating layouts.
//!
//! ```text
//! cargo run --release -p sessionbank-store-redis --example layout_cpu
//! SESSIONBANK_LAYOUT_ONLY=hash cargo run --release -p sessionbank-store-redis --example layout_cpu
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement: any failure ends it

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::ProcessCpu;
use sessionbank_testkit::servers::redis::RedisServer;

fn cpu_seconds(pid: u32) -> f64 {
    ProcessCpu::of(pid).own
}

fn main() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let redis_pids: Vec<u32> = server
        .guard()
        .pids()
        .iter()
        .filter_map(|p| u32::try_from(*p).ok())
        .collect();
    let redis_cpu = || redis_pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let only = std::env::var("SESSIONBANK_LAYOUT_ONLY").unwrap_or_default();
    for round in 1..=3 {
        for layout in ["string", "hash"] {
            if !only.is_empty() && only != layout {
                continue;
            }
            let url = format!("{}?prefix=cpu{round}:&layout={layout}", server.url());
            let store = Arc::new(runtime.block_on(RedisStore::connect(&url)).unwrap());
            let id = SessionId::generate().unwrap();
            let now = Timestamp::now();
            let record = Record::new(now).expiring_at(now + Duration::from_secs(3600));
            runtime.block_on(store.create(&id, &record)).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let pairs = Arc::new(AtomicU64::new(0));
            let (client_before, redis_before) = (cpu_seconds(std::process::id()), redis_cpu());
            let started = Instant::now();
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (store, stop, pairs) = (store.clone(), stop.clone(), pairs.clone());
                    runtime.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            let record = store.get(&id).await.unwrap().unwrap();
                            let n = record.data.get("visits").and_then(|v| v.as_u64());
                            let patch = Patch::new().set("visits", (n.unwrap_or(0) + 1).into());
                            store.update(&id, &patch).await.unwrap();
                            pairs.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs(3));
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                runtime.block_on(task).unwrap();
            }
            let elapsed = started.elapsed().as_secs_f64();
            let n = pairs.load(Ordering::Relaxed) as f64;
            let client = (cpu_seconds(std::process::id()) - client_before) * 1e6 / n;
            let redis = (redis_cpu() - redis_before) * 1e6 / n;
            println!(
                "round {round} {layout:>6}: {:>7.0} pairs/s   CPU per pair: client {client:.1} µs, redis {redis:.1} µs",
                n / elapsed
            );
        }
    }
}
