//! save+load pairs through `RedisStore` and through raw redis-rs doing the equivalent (the
//! baseline), in the same run, against one Redis server started for the run, with the same
//! load driver (`sessionbank_load`) and the same ~500-byte payload; at 64 concurrent tasks
//! and at 1.
//!
//! The baseline is a careful hand-written use of redis-rs: one `MultiplexedConnection`, save is
//! `SET key json PX 3600000` of JSON text made once before the run (the strictest baseline: it
//! never serializes), load is `GET key` and reading the payload out of the JSON. A second raw
//! variant serializes its JSON value on every save, as an application whose session changes
//! must. The store does `set` (one `SET key value PXAT deadline`, the record encoded on every
//! call) and `get` (one `GET`, decoded into a record, deadline checked).
//!
//! ```text
//! cargo bench -p sessionbank-store-redis --bench redis
//! ```
//!
//! The server is pinned to CPU 0 and the client to CPU 1 (`taskset`), as in the issue's
//! reference figures; each concurrency runs several rounds in alternating order and reports
//! the median ratio.
//!
//! Knobs from the environment: `SESSIONBANK_BENCH_SECONDS` (per run, default 2),
//! `SESSIONBANK_BENCH_ROUNDS` (default 5), `SESSIONBANK_BENCH_CONCURRENCY` (default 64; a run
//! at 1 always follows), `SESSIONBANK_BENCH_ONLY=store|raw` (one side only, for a profiler),
//! `SESSIONBANK_BENCH_CONNECTIONS` (the store's `connections` option, default 1),
//! `SESSIONBANK_BENCH_LAYOUT` (the store's `layout` option: `string`, the default, or `hash`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use sessionbank_core::{Action, Error, ErrorKind, Result, SessionId, StoreHandle};
use sessionbank_load::{LoadConfig, LoadTarget, knob, median, run_load};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisServer;

/// Raw redis-rs over a multiplexed connection; `serialize`: make the JSON text on every save
/// rather than once before the run.
#[derive(Clone)]
struct RawRedis<C> {
    conn: C,
    serialize: bool,
}

fn fail(e: redis::RedisError) -> Error {
    Error::new(ErrorKind::Backend, Action::Session, "raw redis failed").with_source(e)
}

impl<C> LoadTarget for RawRedis<C>
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    type Value = (serde_json::Value, String);

    fn name(&self) -> String {
        if self.serialize {
            "raw redis-rs, JSON made per save".to_owned()
        } else {
            "raw redis-rs".to_owned()
        }
    }

    fn prepare(&self, payload: &str) -> (serde_json::Value, String) {
        let value = serde_json::json!({ "payload": payload });
        let text = value.to_string();
        (value, text)
    }

    async fn save(&self, id: &SessionId, value: &(serde_json::Value, String)) -> Result<()> {
        let mut conn = self.conn.clone();
        let made;
        let text = if self.serialize {
            made = serde_json::to_vec(&value.0).unwrap();
            made.as_slice()
        } else {
            value.1.as_bytes()
        };
        let _: () = redis::cmd("SET")
            .arg(format!("raw:{}", id.as_str()))
            .arg(text)
            .arg("PX")
            .arg(3_600_000)
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let mut conn = self.conn.clone();
        let data: Option<String> = conn
            .get(format!("raw:{}", id.as_str()))
            .await
            .map_err(fail)?;
        Ok(data.map(|d| {
            let v: serde_json::Value = serde_json::from_str(&d).unwrap();
            v["payload"].as_str().map_or(0, str::len)
        }))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .del(format!("raw:{}", id.as_str()))
            .await
            .map_err(fail)?;
        Ok(())
    }
}

fn main() {
    let secs = knob("SESSIONBANK_BENCH_SECONDS", 2_u64);
    let rounds = knob("SESSIONBANK_BENCH_ROUNDS", 5_u64);
    let concurrency = usize::try_from(knob("SESSIONBANK_BENCH_CONCURRENCY", 64_u64)).unwrap();
    let connections = knob("SESSIONBANK_BENCH_CONNECTIONS", 1_u64);
    let layout = std::env::var("SESSIONBANK_BENCH_LAYOUT").unwrap_or_else(|_| "string".into());
    // `store` or `raw`: run one side only (for a profiler).
    let only = std::env::var("SESSIONBANK_BENCH_ONLY").ok();
    let server = RedisServer::start();
    let pinned = sessionbank_testkit::servers::pin_apart(&[server.guard()]);
    println!("server on CPU 0, client on CPU 1: {pinned}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect(&format!(
            "{}?prefix=bench:&connections={connections}&layout={layout}",
            server.url()
        ))
        .await
        .unwrap();
        let store = Arc::new(StoreHandle::new(store));
        let client = redis::Client::open(server.url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let raw = Arc::new(RawRedis {
            conn: conn.clone(),
            serialize: false,
        });
        let serializing = Arc::new(RawRedis {
            conn,
            serialize: true,
        });
        if let Some(only) = only {
            let config = LoadConfig {
                concurrency,
                duration: Duration::from_secs(secs * rounds),
                ids_per_task: 64,
                ..LoadConfig::default()
            };
            let report = if only == "raw" {
                run_load(raw.clone(), &config).await.unwrap()
            } else {
                run_load(store.clone(), &config).await.unwrap()
            };
            println!("{only} alone: {:.0} pairs/s", report.ops_per_sec());
            return;
        }
        for tasks in [concurrency, 1] {
            let config = LoadConfig {
                concurrency: tasks,
                duration: Duration::from_secs(secs),
                ids_per_task: 64,
                ..LoadConfig::default()
            };
            println!(
                "{tasks} tasks, {}-byte payload, {rounds} rounds of {secs}s, save+load pairs/s",
                config.value_bytes
            );
            let (mut to_raw, mut to_serializing) = (Vec::new(), Vec::new());
            // Rounds alternate the order, so neither side always runs on a warmer server.
            for round in 1..=rounds {
                let store_report;
                let raw_report;
                if round % 2 == 1 {
                    store_report = run_load(store.clone(), &config).await.unwrap();
                    raw_report = run_load(raw.clone(), &config).await.unwrap();
                } else {
                    raw_report = run_load(raw.clone(), &config).await.unwrap();
                    store_report = run_load(store.clone(), &config).await.unwrap();
                }
                let serializing_report = run_load(serializing.clone(), &config).await.unwrap();
                let (s, r) = (store_report.ops_per_sec(), raw_report.ops_per_sec());
                let j = serializing_report.ops_per_sec();
                to_raw.push(s / r);
                to_serializing.push(s / j);
                println!(
                    "round {round}: RedisStore {s:>8.0} (p50 {:>5.0} us, p99 {:>5.0} us, {} errors)   \
                     raw {r:>8.0} (p50 {:>5.0} us, p99 {:>5.0} us, {} errors)   \
                     raw, JSON per save {j:>8.0}   store/raw {:.2}",
                    store_report.latency_us(0.5),
                    store_report.latency_us(0.99),
                    store_report.errors,
                    raw_report.latency_us(0.5),
                    raw_report.latency_us(0.99),
                    raw_report.errors,
                    s / r
                );
            }
            println!(
                "{tasks} tasks: median store / raw redis-rs {:.2}, store / raw with JSON made per save {:.2}",
                median(&to_raw),
                median(&to_serializing)
            );
        }
    });
    drop(server);
}
