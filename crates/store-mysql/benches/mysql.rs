//! save+load pairs at 64 concurrent tasks through `MySqlStore` and through raw `mysql_async`
//! doing the equivalent (the baseline), in the same run, against a MariaDB started for the
//! run (testkit's harness), with the same load driver (`sessionbank_load`) and the same
//! ~500-byte payload.
//!
//! The baseline: the same pool size and connection settings, a table `(id VARCHAR(64) PRIMARY KEY, data JSON, expires
//! BIGINT)`, save is one `INSERT … ON DUPLICATE KEY UPDATE`, load one `SELECT data … WHERE id
//! = ? AND expires > ?` and a JSON parse of it. The store does the same plus its bookkeeping
//! (created/last access/owner/deadline columns, the deadline index, the record's JSON).
//!
//! ```text
//! cargo bench -p sessionbank-store-mysql --bench mysql
//! ```
//!
//! Knobs from the environment: `SESSIONBANK_BENCH_SECONDS` (per run, default 3),
//! `SESSIONBANK_BENCH_CONCURRENCY` (default 64), `SESSIONBANK_BENCH_ROUNDS` (default 3; store and
//! baseline alternate, and the median ratio is printed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts};
use sessionbank_core::{Result, SessionId, StoreHandle, Timestamp};
use sessionbank_load::{LoadConfig, LoadTarget, knob, run_load};
use sessionbank_store_mysql::{DEFAULT_POOL_MAX, MySqlStore};
use sessionbank_testkit::servers::mariadb::{DATABASE, MariaDbServer};

#[derive(Clone)]
struct RawMysql(Pool);

impl LoadTarget for RawMysql {
    type Value = Arc<String>;

    fn name(&self) -> String {
        "raw mysql_async".to_owned()
    }

    fn prepare(&self, payload: &str) -> Arc<String> {
        Arc::new(serde_json::json!({ "payload": payload }).to_string())
    }

    async fn save(&self, id: &SessionId, value: &Arc<String>) -> Result<()> {
        let mut conn = self.0.get_conn().await.unwrap();
        let expires = (Timestamp::now() + Duration::from_secs(3600)).as_millis();
        conn.exec_drop(
            "INSERT INTO raw (id, data, expires) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE data = VALUES(data), expires = VALUES(expires)",
            (id.as_str(), value.as_str(), expires),
        )
        .await
        .unwrap();
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let mut conn = self.0.get_conn().await.unwrap();
        let data: Option<Vec<u8>> = conn
            .exec_first(
                "SELECT data FROM raw WHERE id = ? AND expires > ?",
                (id.as_str(), Timestamp::now().as_millis()),
            )
            .await
            .unwrap();
        Ok(data.map(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d).unwrap();
            v["payload"].as_str().map_or(0, str::len)
        }))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        let mut conn = self.0.get_conn().await.unwrap();
        conn.exec_drop("DELETE FROM raw WHERE id = ?", (id.as_str(),))
            .await
            .unwrap();
        Ok(())
    }
}

fn main() {
    let server = MariaDbServer::start();
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
        println!(
            "MariaDB, {} tasks, {}-byte payload, {secs}s per run, pool of {DEFAULT_POOL_MAX}, \
             save+load pairs/s",
            config.concurrency, config.value_bytes
        );
        let opts = OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(server.port())
            .user(Some("root"))
            .db_name(Some(DATABASE))
            // The same connection settings as the store: TCP as the URL says, found rows.
            .prefer_socket(false)
            .client_found_rows(true)
            .stmt_cache_size(64)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(PoolConstraints::new(0, DEFAULT_POOL_MAX).unwrap())
                    .with_reset_connection(false),
            );
        let pool = Pool::new(opts);
        pool.get_conn()
            .await
            .unwrap()
            .query_drop(
                "CREATE TABLE raw (id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin \
                 PRIMARY KEY, data JSON NOT NULL, expires BIGINT NOT NULL) ENGINE=InnoDB",
            )
            .await
            .unwrap();
        let raw = RawMysql(pool.clone());
        let store = MySqlStore::builder("127.0.0.1", server.port())
            .user("root")
            .database(DATABASE)
            .open()
            .await
            .unwrap();
        let rounds = knob("SESSIONBANK_BENCH_ROUNDS", 3_u64);
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let store_report = run_load(Arc::new(StoreHandle::new(store.clone())), &config)
                .await
                .unwrap();
            let raw_report = run_load(Arc::new(raw.clone()), &config).await.unwrap();
            let (s, r) = (store_report.ops_per_sec(), raw_report.ops_per_sec());
            println!(
                "round {round}: MySqlStore {s:>8.0} (p99 {:>7.0} us, {} errors)   \
                 raw mysql_async {r:>8.0} (p99 {:>7.0} us, {} errors)   ratio {:.2}",
                store_report.latency_us(0.99),
                store_report.errors,
                raw_report.latency_us(0.99),
                raw_report.errors,
                s / r
            );
            ratios.push(s / r);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "median ratio MySqlStore / raw mysql_async: {:.2}",
            ratios[ratios.len() / 2]
        );
        store.close().await;
        pool.disconnect().await.unwrap();
    });
    drop(server);
}
