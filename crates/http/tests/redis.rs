//! The behaviour suite (`sessionbank_testkit::http_suite`) through the plain-http adapter on a real Redis: one
//! server for this binary, each store in its own key prefix. Trials are named
//! `redis::<trial>`; the suite's module docs say which trials stay memory-only and why.

mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use common::Plain;
use sessionbank_core::ManualClock;
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::http_suite::Backend;
use sessionbank_testkit::http_suite::libtest_mimic::{Arguments, run};
use sessionbank_testkit::servers::redis::RedisServer;

/// Stores on one Redis server, each under a fresh key prefix.
#[derive(Clone)]
struct Redis {
    url: String,
}

/// Numbers the key prefixes of this process.
static NEXT_PREFIX: AtomicU64 = AtomicU64::new(0);

impl Backend for Redis {
    type Store = RedisStore;

    fn clock(&self) -> ManualClock {
        ManualClock::starting_now()
    }

    async fn open(&self, _clock: &ManualClock) -> RedisStore {
        let n = NEXT_PREFIX.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}?prefix=suite{n}:", self.url);
        RedisStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
    }
}

#[allow(clippy::expect_used)]
fn block_on<T: std::future::Future>(future: T) -> T::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

fn main() -> ExitCode {
    let server = RedisServer::start();
    let backend = Redis { url: server.url() };
    let trials = sessionbank_testkit::http_suite_trials!(Plain, "redis", backend, block_on);
    let conclusion = run(&Arguments::from_args(), trials);
    drop(server);
    conclusion.exit_code()
}
