//! The behaviour suite (`sessionbank_testkit::http_suite`) through actix-web on a real Redis: one
//! server for this binary, each store in its own key prefix. Trials are named
//! `redis::<trial>`; the suite's module docs say which trials stay memory-only and why.

mod common;

use std::process::ExitCode;

use common::ActixWeb;
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::http_suite::Prefixed;
use sessionbank_testkit::http_suite::libtest_mimic::{Arguments, run};
use sessionbank_testkit::servers::redis::RedisServer;

/// Runs one trial on a fresh actix-web system (its own single-threaded runtime).
fn block_on<T: std::future::Future>(future: T) -> T::Output {
    actix_web::rt::System::new().block_on(future)
}

fn main() -> ExitCode {
    let server = RedisServer::start();
    let backend = Prefixed::new(server.url(), |url| {
        Box::pin(async move { RedisStore::connect(&url).await })
    });
    let trials = sessionbank_testkit::http_suite_trials!(ActixWeb, "redis", backend, block_on);
    let conclusion = run(&Arguments::from_args(), trials);
    drop(server);
    conclusion.exit_code()
}
