//! Two measurements against a real PostgreSQL server started for the run:
//!
//! 1. save+load pairs at 64 concurrent tasks through `PostgresStore` (set + get), and through
//!    raw tokio-postgres doing the equivalent (a prepared upsert of the same row + a prepared
//!    select of the live row, pipelined over as many shared connections as the store's pool
//!    has), in the same run, with the ratio;
//! 2. `cleanup` removing 1,000 expired sessions from a table of 2,000,000 (generated with one
//!    `INSERT … SELECT generate_series`), median of 5 rounds.
//!
//! Run: `cargo bench -p sessionbank-store-postgres --bench postgres [-- SECONDS [POOL_SIZE]]`
//! (defaults: 5 seconds per target, 16 connections).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sessionbank_core::{Result, SessionId, Store, StoreHandle};
use sessionbank_load::{LoadConfig, LoadTarget, SESSION_TTL, VALUE_KEY, run_load};
use sessionbank_store_postgres::PostgresStoreBuilder;
use sessionbank_testkit::servers::postgres::PostgresServer;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, NoTls, Statement};

/// The baseline: raw tokio-postgres, `n` connections shared by all tasks (pipelined), each with
/// the two statements prepared once.
struct Raw {
    clients: Vec<(Client, Statement, Statement)>,
    next: AtomicUsize,
}

impl Raw {
    async fn connect(url: &str, table: &str, n: usize) -> Self {
        let mut clients = Vec::new();
        for _ in 0..n {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
            tokio::spawn(connection);
            let upsert = client
                .prepare(&format!(
                    "INSERT INTO \"{table}\" (id, data, expiry, expires_at, created_at, last_access, owner) \
                     VALUES ($1, $2, $3, $3, $4, $4, NULL) ON CONFLICT (id) DO UPDATE SET \
                     data = EXCLUDED.data, expiry = EXCLUDED.expiry, expires_at = EXCLUDED.expires_at, \
                     created_at = EXCLUDED.created_at, last_access = EXCLUDED.last_access, owner = EXCLUDED.owner"
                ))
                .await
                .unwrap();
            let select = client
                .prepare(&format!(
                    "SELECT data FROM \"{table}\" WHERE id = $1 AND expiry > now()"
                ))
                .await
                .unwrap();
            clients.push((client, upsert, select));
        }
        Self {
            clients,
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> &(Client, Statement, Statement) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        &self.clients[i]
    }
}

fn driver_error(e: tokio_postgres::Error) -> sessionbank_core::Error {
    sessionbank_core::Error::new(
        sessionbank_core::ErrorKind::Backend,
        sessionbank_core::Operation::Set,
        "raw driver",
    )
    .with_source(e)
}

impl LoadTarget for Raw {
    type Value = (Value, SystemTime);

    fn name(&self) -> String {
        "tokio-postgres".into()
    }

    fn prepare(&self, payload: &str) -> (Value, SystemTime) {
        (
            serde_json::json!({ VALUE_KEY: payload }),
            SystemTime::now() + SESSION_TTL,
        )
    }

    async fn save(&self, id: &SessionId, value: &(Value, SystemTime)) -> Result<()> {
        let (client, upsert, _) = self.pick();
        let now = SystemTime::now();
        client
            .execute(upsert, &[&id.as_str(), &Json(&value.0), &value.1, &now])
            .await
            .map_err(driver_error)?;
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let (client, _, select) = self.pick();
        let row = client
            .query_opt(select, &[&id.as_str()])
            .await
            .map_err(driver_error)?;
        Ok(row.and_then(|row| {
            let Json(data): Json<Value> = row.get(0);
            data.get(VALUE_KEY).and_then(Value::as_str).map(str::len)
        }))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        let _ = id;
        Ok(())
    }
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let secs = args.next().unwrap_or(5);
    let pool = usize::try_from(args.next().unwrap_or(16)).unwrap();
    let server = PostgresServer::start();
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = LoadConfig {
            concurrency: 64,
            duration: Duration::from_secs(secs),
            ..LoadConfig::default()
        };
        println!(
            "save+load pairs, {} tasks, {secs}s each, {}-byte payload, {pool} connections",
            config.concurrency, config.value_bytes
        );
        let store = PostgresStoreBuilder::parse(&url)
            .unwrap()
            .table("bench_store")
            .pool_size(pool)
            .open()
            .await
            .unwrap();
        // The baseline writes the same table shape (its own table).
        let _ = PostgresStoreBuilder::parse(&url)
            .unwrap()
            .table("bench_raw")
            .open()
            .await
            .unwrap();
        let raw = Arc::new(Raw::connect(&url, "bench_raw", pool).await);
        let handle = Arc::new(StoreHandle::new(store.clone()));

        // Warm up both (connections, plans), then alternate raw and store three times each, so a
        // busy neighbour on the machine hits both alike.
        let warm = LoadConfig {
            duration: Duration::from_secs(1),
            ..config.clone()
        };
        run_load(raw.clone(), &warm).await.unwrap();
        run_load(handle.clone(), &warm).await.unwrap();
        let mut raw_rates = Vec::new();
        let mut store_rates = Vec::new();
        for _ in 0..3 {
            let r = run_load(raw.clone(), &config).await.unwrap();
            assert_eq!(r.errors, 0);
            raw_rates.push(r.ops_per_sec());
            println!("  tokio-postgres (raw, pipelined): {}", r.to_json_line());
            let s = run_load(handle.clone(), &config).await.unwrap();
            assert_eq!(s.errors, 0);
            store_rates.push(s.ops_per_sec());
            println!("  PostgresStore:                   {}", s.to_json_line());
        }
        let raw_rate = median(&mut raw_rates);
        let store_rate = median(&mut store_rates);
        println!("raw tokio-postgres: {raw_rate:>9.0} pairs/s (median of 3)");
        println!("PostgresStore:      {store_rate:>9.0} pairs/s (median of 3)");
        println!("ratio store/raw:    {:>9.2}x", store_rate / raw_rate);

        // Cleanup: 1,000 expired among 2,000,000.
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let table = "bench_cleanup";
        let cleaner = PostgresStoreBuilder::parse(&url)
            .unwrap()
            .table(table)
            .open()
            .await
            .unwrap();
        let started = Instant::now();
        client
            .execute(
                &format!(
                    "INSERT INTO \"{table}\" (id, data, expiry, expires_at, created_at, last_access) \
                     SELECT 'live' || g, '{{\"payload\": \"x\"}}', now() + interval '1 day', \
                     now() + interval '1 day', now(), now() FROM generate_series(1, 2000000) g"
                ),
                &[],
            )
            .await
            .unwrap();
        client
            .batch_execute(&format!("VACUUM ANALYZE \"{table}\""))
            .await
            .unwrap();
        println!(
            "generated 2,000,000 live rows in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let mut times = Vec::new();
        for round in 0..5 {
            client
                .execute(
                    &format!(
                        "INSERT INTO \"{table}\" (id, data, expiry, expires_at, created_at, last_access) \
                         SELECT 'dead{round}_' || g, '{{}}', now() - interval '1 minute', \
                         now() - interval '1 minute', now(), now() FROM generate_series(1, 1000) g"
                    ),
                    &[],
                )
                .await
                .unwrap();
            let total: i64 = client
                .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(total, 2_001_000);
            let t = Instant::now();
            let removed = cleaner.cleanup().await.unwrap();
            let took = t.elapsed();
            assert_eq!(removed, 1000);
            times.push(took);
            println!(
                "  cleanup round {round}: removed {removed} of {total} rows in {:.1} ms",
                took.as_secs_f64() * 1000.0
            );
        }
        times.sort();
        println!(
            "cleanup of 1,000 expired in 2,000,000: median {:.1} ms, worst {:.1} ms",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    });
    drop(runtime);
    drop(server);
}
