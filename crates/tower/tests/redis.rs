//! The behaviour suite (`sessionbank_testkit::http_suite`) through axum on a real Redis: one
//! server for this binary, each store in its own key prefix. Trials are named
//! `redis::<trial>`, and `redis_coalescing::<trial>` for the same store wrapped in
//! `Coalescing` as the registry opens it; the suite's module docs say which trials stay
//! memory-only and why.

mod common;

use std::process::ExitCode;
use std::sync::Arc;

use common::Axum;
use sessionbank_core::Coalescing;
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::http_suite::Prefixed;
use sessionbank_testkit::http_suite::libtest_mimic::{Arguments, run};
use sessionbank_testkit::servers::redis::RedisServer;

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
    let backend = Prefixed::new(server.url(), |url| {
        Box::pin(async move { RedisStore::connect(&url).await })
    });
    let coalescing = Prefixed::new(server.url(), |url| {
        Box::pin(async move {
            let store = RedisStore::connect(&url).await?;
            Ok(Coalescing::new(Arc::new(store)))
        })
    });
    let mut trials = sessionbank_testkit::http_suite_trials!(Axum, "redis", backend, block_on);
    trials.extend(sessionbank_testkit::http_suite_trials!(
        Axum,
        "redis_coalescing",
        coalescing,
        block_on
    ));
    let conclusion = run(&Arguments::from_args(), trials);
    drop(server);
    conclusion.exit_code()
}
