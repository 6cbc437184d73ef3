//! save+load pairs at 64 concurrent tasks: through `DiskStore` (group commit) and through a raw
//! redb baseline (one durable write transaction per save, one read transaction per load), same
//! ~500-byte payload, same run.
//!
//! Run: `cargo bench -p sessionbank-store-disk --bench disk [-- seconds]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, TableDefinition};
use serde_json::json;
use sessionbank_core::{Record, SessionId, Store, Timestamp};
use sessionbank_store_disk::DiskStore;

const TASKS: usize = 64;
const RAW: TableDefinition<&str, &[u8]> = TableDefinition::new("raw");

fn record() -> Record {
    let now = Timestamp::now();
    let cart: Vec<String> = (0..30).map(|i| format!("item-{i:04}")).collect();
    Record::new(now)
        .with_data(
            json!({"user": "ada", "role": "admin", "csrf": "x".repeat(43), "cart": cart})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        )
        .expiring_at(now + Duration::from_secs(3600))
}

async fn measure<F, Fut>(secs: u64, pair: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let pair = Arc::new(pair);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (pair, stop, count) = (pair.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    pair(t, i).await;
                    i += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tmp = tempfile::Builder::new()
            .prefix("disk-bench-")
            .tempdir_in(std::env::current_dir().unwrap())
            .unwrap();
        let record = Arc::new(record());
        let payload = Arc::new(serde_json::to_vec(&*record).unwrap());
        println!(
            "payload {} bytes of JSON, {TASKS} tasks, {secs}s per measurement",
            payload.len()
        );
        // 64 ids per task, reused: the table stays small, as a working set of live sessions.
        let ids: Arc<Vec<SessionId>> = Arc::new(
            (0..TASKS * 64)
                .map(|_| SessionId::generate().unwrap())
                .collect(),
        );

        let store = DiskStore::open(tmp.path().join("store")).await.unwrap();
        let (s, r, i) = (store.clone(), record.clone(), ids.clone());
        let store_rate = measure(secs, move |t, n| {
            let (s, r, i) = (s.clone(), r.clone(), i.clone());
            async move {
                let id = &i[t * 64 + (n as usize % 64)];
                s.set(id, &r).await.unwrap();
                assert!(s.get(id).await.unwrap().is_some());
            }
        })
        .await;
        drop(store);
        println!("DiskStore (group commit):        {store_rate:>9.0} save+load pairs/s");

        let db = Arc::new(redb::Database::create(tmp.path().join("raw.redb")).unwrap());
        let tx = db.begin_write().unwrap();
        tx.open_table(RAW).unwrap();
        tx.commit().unwrap();
        let (d, p, i) = (db.clone(), payload.clone(), ids.clone());
        let raw_rate = measure(secs, move |t, n| {
            let (d, p, i) = (d.clone(), p.clone(), i.clone());
            async move {
                let id = i[t * 64 + (n as usize % 64)];
                let (d2, id2) = (d.clone(), id);
                tokio::task::spawn_blocking(move || {
                    let tx = d2.begin_write().unwrap();
                    tx.open_table(RAW)
                        .unwrap()
                        .insert(id2.as_str(), p.as_slice())
                        .unwrap();
                    tx.commit().unwrap();
                })
                .await
                .unwrap();
                tokio::task::spawn_blocking(move || {
                    let tx = d.begin_read().unwrap();
                    let table = tx.open_table(RAW).unwrap();
                    assert!(table.get(id.as_str()).unwrap().is_some());
                })
                .await
                .unwrap();
            }
        })
        .await;
        println!("raw redb (commit per save):      {raw_rate:>9.0} save+load pairs/s");
        println!(
            "ratio DiskStore / raw redb:      {:>9.2}",
            store_rate / raw_rate
        );
    });
}
