//! save+load pairs at 64 concurrent tasks through `SqliteStore` and through raw rusqlite doing
//! the equivalent (the baseline), in the same run, with the same load driver
//! (`sessionbank_load`) and the same ~500-byte payload.
//!
//! The baseline is what a careful hand-written use of rusqlite looks like: the same file
//! settings (WAL, the same `synchronous`), one write connection behind a mutex and a pool of
//! four read connections, every call on tokio's blocking pool; save is one
//! `INSERT … ON CONFLICT DO UPDATE` of the id, the JSON text and the expiry, load one `SELECT`
//! of the text checked against the expiry. The store does the same plus its bookkeeping
//! (created/last access/owner/deadline columns, JSON encode and decode of the record).
//!
//! ```text
//! cargo bench -p sessionbank-store-sqlite --bench sqlite
//! ```
//!
//! Knobs from the environment: `SESSIONBANK_BENCH_SECONDS` (per run, default 3),
//! `SESSIONBANK_BENCH_CONCURRENCY` (default 64), `SESSIONBANK_BENCH_ROUNDS` (default 3).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sessionbank_core::{Result, SessionId, StoreHandle, Timestamp};
use sessionbank_load::{LoadConfig, LoadTarget, knob, run_load};
use sessionbank_store_sqlite::{SqliteStore, Synchronous};

#[derive(Clone)]
struct RawSqlite(Arc<Shared>);

struct Shared {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl RawSqlite {
    fn open(path: &std::path::Path, synchronous: &str) -> Self {
        let open = || {
            let conn = Connection::open(path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let _: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .unwrap();
            conn.pragma_update(None, "synchronous", synchronous)
                .unwrap();
            conn
        };
        let writer = open();
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS raw (id TEXT PRIMARY KEY, data TEXT NOT NULL, \
                 expires INTEGER NOT NULL) WITHOUT ROWID",
            )
            .unwrap();
        Self(Arc::new(Shared {
            writer: Mutex::new(writer),
            readers: Mutex::new((0..4).map(|_| open()).collect()),
            returned: Condvar::new(),
        }))
    }
}

impl LoadTarget for RawSqlite {
    type Value = Arc<String>;

    fn name(&self) -> String {
        "raw rusqlite".to_owned()
    }

    fn prepare(&self, payload: &str) -> Arc<String> {
        Arc::new(serde_json::json!({ "payload": payload }).to_string())
    }

    async fn save(&self, id: &SessionId, value: &Arc<String>) -> Result<()> {
        let (raw, id, value) = (self.clone(), *id, value.clone());
        tokio::task::spawn_blocking(move || {
            let conn = raw.0.writer.lock().unwrap();
            let expires = (Timestamp::now() + Duration::from_secs(3600)).as_millis();
            conn.prepare_cached(
                "INSERT INTO raw (id, data, expires) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
            )
            .unwrap()
            .execute(params![id.as_str(), value.as_str(), expires])
            .unwrap();
        })
        .await
        .unwrap();
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let (raw, id) = (self.clone(), *id);
        let len = tokio::task::spawn_blocking(move || {
            let mut idle = raw.0.readers.lock().unwrap();
            let conn = loop {
                if let Some(conn) = idle.pop() {
                    break conn;
                }
                idle = raw.0.returned.wait(idle).unwrap();
            };
            drop(idle);
            let now = Timestamp::now().as_millis();
            let data: Option<String> = conn
                .prepare_cached("SELECT data FROM raw WHERE id = ?1 AND expires > ?2")
                .unwrap()
                .query_row(params![id.as_str(), now], |r| r.get(0))
                .optional()
                .unwrap();
            raw.0.readers.lock().unwrap().push(conn);
            raw.0.returned.notify_one();
            // What the application would read: the payload inside the JSON.
            data.map(|d| {
                let v: serde_json::Value = serde_json::from_str(&d).unwrap();
                v["payload"].as_str().map_or(0, str::len)
            })
        })
        .await
        .unwrap();
        Ok(len)
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        let (raw, id) = (self.clone(), *id);
        tokio::task::spawn_blocking(move || {
            raw.0
                .writer
                .lock()
                .unwrap()
                .execute("DELETE FROM raw WHERE id = ?1", params![id.as_str()])
                .unwrap();
        })
        .await
        .unwrap();
        Ok(())
    }
}

fn main() {
    let secs = knob("SESSIONBANK_BENCH_SECONDS", 3_u64);
    let concurrency = usize::try_from(knob("SESSIONBANK_BENCH_CONCURRENCY", 64_u64)).unwrap();
    let config = LoadConfig {
        concurrency,
        duration: Duration::from_secs(secs),
        ids_per_task: 64,
        ..LoadConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tmp = tempfile::Builder::new()
            .prefix("sqlite-bench-")
            .tempdir_in(std::env::current_dir().unwrap())
            .unwrap();
        println!(
            "{} tasks, {}-byte payload, {secs}s per run, save+load pairs/s",
            config.concurrency, config.value_bytes
        );
        let rounds = knob("SESSIONBANK_BENCH_ROUNDS", 3_u64);
        for (label, sync) in [("full", Synchronous::Full), ("normal", Synchronous::Normal)] {
            let store = SqliteStore::builder(tmp.path().join(format!("store-{label}.db")))
                .synchronous(sync)
                .open()
                .await
                .unwrap();
            let store = Arc::new(StoreHandle::new(store));
            let raw = Arc::new(RawSqlite::open(
                &tmp.path().join(format!("raw-{label}.db")),
                label,
            ));
            // Alternate store and baseline, round after round, and report the median ratio:
            // on a shared machine the load moves between runs.
            let mut ratios = Vec::new();
            for round in 1..=rounds {
                let store_report = run_load(store.clone(), &config).await.unwrap();
                let raw_report = run_load(raw.clone(), &config).await.unwrap();
                let (s, r) = (store_report.ops_per_sec(), raw_report.ops_per_sec());
                ratios.push(s / r);
                println!(
                    "synchronous={label:<6} round {round}: SqliteStore {s:>8.0} (p99 {:>7.0} us, {} \
                     errors)   raw rusqlite {r:>8.0} (p99 {:>7.0} us, {} errors)   ratio {:.2}",
                    store_report.latency_us(0.99),
                    store_report.errors,
                    raw_report.latency_us(0.99),
                    raw_report.errors,
                    s / r
                );
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "synchronous={label:<6} median ratio SqliteStore / raw rusqlite: {:.2}",
                ratios[ratios.len() / 2]
            );
        }
    });
}
