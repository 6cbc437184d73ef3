//! save+load pairs at 64 concurrent tasks against a real MongoDB wire-protocol server
//! (SecantusDB) started for the run: through `MongoStore` (`set` + `get`), and through the raw
//! driver doing the equivalent (`replace_one` with upsert of the same document + `find_one` of
//! the live document), in the same run, with the ratio.
//!
//! Run: `cargo bench -p sessionbank-store-mongodb --bench mongodb [-- SECONDS]` (default 5
//! seconds per round; two rounds per target, alternating).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessionbank_core::{Data, Record, SessionId, Store, Timestamp};
use sessionbank_store_mongodb::mongodb::bson::{DateTime, Document, doc};
use sessionbank_store_mongodb::mongodb::{Client, Collection};
use sessionbank_store_mongodb::{MongoStore, MongoStoreBuilder};
use sessionbank_testkit::servers::mongo::MongoServer;

const TASKS: usize = 64;
const IDS_PER_TASK: usize = 16;

fn seconds() -> Duration {
    let secs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn record() -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(
            Data::from_value(json!({"user": "ada", "cart": ["book", "pen"], "visits": 3})).unwrap(),
        )
        .expiring_at(now + Duration::from_secs(3600))
}

async fn store_pairs(
    store: Arc<MongoStore>,
    ids: Vec<SessionId>,
    until: Instant,
    done: Arc<AtomicU64>,
) {
    let record = record();
    let mut i = 0;
    while Instant::now() < until {
        let id = &ids[i % ids.len()];
        store.set(id, &record).await.unwrap();
        assert!(store.get(id).await.unwrap().is_some());
        done.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

async fn raw_pairs(
    coll: Collection<Document>,
    ids: Vec<SessionId>,
    until: Instant,
    done: Arc<AtomicU64>,
) {
    let mut i = 0;
    while Instant::now() < until {
        let id = ids[i % ids.len()].as_str().to_owned();
        let now = DateTime::now();
        let deadline = DateTime::from_millis(now.timestamp_millis() + 3_600_000);
        let document = doc! {
            "_id": &id,
            "data": {"user": "ada", "cart": ["book", "pen"], "visits": 3_i64},
            "expires_at": deadline, "created_at": now, "last_access": now,
            "owner": null, "deadline": deadline,
        };
        coll.replace_one(doc! {"_id": &id}, document)
            .upsert(true)
            .await
            .unwrap();
        let found = coll
            .find_one(doc! {"_id": &id, "deadline": {"$gt": DateTime::now()}})
            .await
            .unwrap();
        assert!(found.is_some());
        done.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

fn ids() -> Vec<Vec<SessionId>> {
    (0..TASKS)
        .map(|_| {
            (0..IDS_PER_TASK)
                .map(|_| SessionId::generate().unwrap())
                .collect()
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let run_for = seconds();
    let server = MongoServer::start();
    let pinned = sessionbank_testkit::servers::pin_apart(&[server.process()]);
    println!("server on CPU 0, client on CPU 1: {pinned}");
    let url = format!("{}?collection=bench_store", server.url("sessionbank"));
    let store = Arc::new(MongoStore::connect(&url).await.unwrap());

    let raw_url = format!("{}?collection=bench_raw", server.url("sessionbank"));
    let raw_store = MongoStore::connect(&raw_url).await.unwrap(); // same indexes
    drop(raw_store);
    let config = MongoStoreBuilder::parse(&raw_url).unwrap();
    let client = Client::with_uri_str(config.get_connection_string())
        .await
        .unwrap();
    let coll = client
        .database(config.get_database())
        .collection::<Document>(config.get_collection());

    // Warm up both pools.
    let warm = Instant::now() + Duration::from_millis(500);
    let mut handles = Vec::new();
    for ids in ids() {
        handles.push(tokio::spawn(store_pairs(
            store.clone(),
            ids,
            warm,
            Arc::default(),
        )));
    }
    for ids in ids() {
        handles.push(tokio::spawn(raw_pairs(
            coll.clone(),
            ids,
            warm,
            Arc::default(),
        )));
    }
    for h in handles.drain(..) {
        h.await.unwrap();
    }

    // Alternate the targets (store, raw, store, raw) so a slow phase of the server or the
    // machine does not land on one of them only.
    let mut rates = [Vec::new(), Vec::new()];
    let labels = [
        "MongoStore set+get",
        "raw driver replace_one(upsert)+find_one",
    ];
    for round in 0..4 {
        let which = round % 2;
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let until = start + run_for;
        for ids in ids() {
            handles.push(if which == 0 {
                tokio::spawn(store_pairs(store.clone(), ids, until, done.clone()))
            } else {
                tokio::spawn(raw_pairs(coll.clone(), ids, until, done.clone()))
            });
        }
        for h in handles.drain(..) {
            h.await.unwrap();
        }
        let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        println!(
            "{}: {rate:.0} save+load pairs/s at {TASKS} tasks",
            labels[which]
        );
        rates[which].push(rate);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "mean: store {:.0}/s, raw {:.0}/s, ratio store/raw {:.2}",
        mean(&rates[0]),
        mean(&rates[1]),
        mean(&rates[0]) / mean(&rates[1])
    );
    drop(server);
}
