//! save+load pairs through `RedisStore` and through raw redis-rs doing the equivalent (the
//! baseline), in the same run, against one Redis server started for the run, with the same
//! load driver (`sessionbank_cli::load`) and the same ~500-byte payload; at 64 concurrent tasks
//! and at 1.
//!
//! The baseline is a careful hand-written use of redis-rs: one `MultiplexedConnection`, save is
//! `SET key json PX 3600000`, load is `GET key` and reading the payload out of the JSON. The
//! store does `set` (one `SET key value PXAT deadline`) and `get` (one `GET`, decoded into a
//! record, deadline checked), over a `ConnectionManager`; the same raw pair over a
//! `ConnectionManager` is printed too, to separate the connection's cost from the store's.
//!
//! ```text
//! cargo bench -p sessionbank-store-redis --bench redis
//! ```
//!
//! Knobs from the environment: `SESSIONBANK_BENCH_SECONDS` (per run, default 3),
//! `SESSIONBANK_BENCH_CONCURRENCY` (default 64; a run at 1 always follows).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use sessionbank_cli::load::{LoadConfig, LoadTarget, run_load};
use sessionbank_core::{Error, ErrorKind, Operation, Result, SessionId, StoreHandle};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisServer;

/// Raw redis-rs over a multiplexed connection (the baseline) or a `ConnectionManager` (the
/// connection the store uses for a single server: it adds reconnection).
#[derive(Clone)]
struct RawRedis<C>(C, &'static str);

fn fail(e: redis::RedisError) -> Error {
    Error::new(ErrorKind::Backend, Operation::Session, "raw redis failed").with_source(e)
}

impl<C> LoadTarget for RawRedis<C>
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    type Value = Arc<String>;

    fn name(&self) -> String {
        self.1.to_owned()
    }

    fn prepare(&self, payload: &str) -> Arc<String> {
        Arc::new(serde_json::json!({ "payload": payload }).to_string())
    }

    async fn save(&self, id: &SessionId, value: &Arc<String>) -> Result<()> {
        let mut conn = self.0.clone();
        let _: () = redis::cmd("SET")
            .arg(format!("raw:{}", id.as_str()))
            .arg(value.as_str())
            .arg("PX")
            .arg(3_600_000)
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let mut conn = self.0.clone();
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
        let mut conn = self.0.clone();
        let _: i64 = conn
            .del(format!("raw:{}", id.as_str()))
            .await
            .map_err(fail)?;
        Ok(())
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = env("SESSIONBANK_BENCH_SECONDS", 3);
    let concurrency = usize::try_from(env("SESSIONBANK_BENCH_CONCURRENCY", 64)).unwrap();
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect(&format!("{}?prefix=bench:", server.url()))
            .await
            .unwrap();
        let store = Arc::new(StoreHandle::new(store));
        let client = redis::Client::open(server.url()).unwrap();
        let raw = Arc::new(RawRedis(
            client.get_multiplexed_async_connection().await.unwrap(),
            "raw redis-rs",
        ));
        let managed = Arc::new(RawRedis(
            redis::aio::ConnectionManager::new(client.clone()).await.unwrap(),
            "raw redis-rs over ConnectionManager",
        ));
        for tasks in [concurrency, 1] {
            let config = LoadConfig {
                concurrency: tasks,
                duration: Duration::from_secs(secs),
                ids_per_task: 64,
                ..LoadConfig::default()
            };
            println!(
                "{tasks} tasks, {}-byte payload, {secs}s per run, save+load pairs/s",
                config.value_bytes
            );
            // Two rounds, alternating, so neither side always runs on a warmer server.
            for round in 1..=2 {
                let store_report = run_load(store.clone(), &config).await.unwrap();
                let raw_report = run_load(raw.clone(), &config).await.unwrap();
                let managed_report = run_load(managed.clone(), &config).await.unwrap();
                let (s, r) = (store_report.ops_per_sec(), raw_report.ops_per_sec());
                println!(
                    "round {round}: RedisStore {s:>8.0} (p50 {:>6.0} us, p99 {:>6.0} us, {} errors)   \
                     raw redis-rs {r:>8.0} (p50 {:>6.0} us, p99 {:>6.0} us, {} errors)   ratio {:.2}",
                    store_report.latency_us(0.5),
                    store_report.latency_us(0.99),
                    store_report.errors,
                    raw_report.latency_us(0.5),
                    raw_report.latency_us(0.99),
                    raw_report.errors,
                    s / r
                );
                let m = managed_report.ops_per_sec();
                println!(
                    "         raw redis-rs over ConnectionManager {m:>8.0} (p50 {:>6.0} us)   \
                     ratio to raw {:.2}   store / it {:.2}",
                    managed_report.latency_us(0.5),
                    m / r,
                    s / m
                );
            }
        }
    });
    drop(server);
}
