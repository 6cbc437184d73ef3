//! The shared conformance suite (`sessionbank-testkit`) against a real standalone Redis server,
//! plus Redis-specific tests in the same binary (so on the same server). Each trial gets its
//! own key prefix on the one server.

mod common;

use sessionbank_core::StoreHandle;
use sessionbank_testkit::servers::redis::RedisServer;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    let server = RedisServer::start();
    let url = server.url();
    let tests = common::standalone_tests(&server);
    let hash_url = url.clone();
    let code = Conformance::new()
        .backend("redis", move |ns: Namespace| {
            let url = format!("{url}?prefix=sbtest:{}:", ns.name);
            async move {
                let store = sessionbank_store_redis::RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        // The same suite against the hash layout, on the same server.
        .backend("redis_hash", move |ns: Namespace| {
            let url = format!("{hash_url}?prefix=sbtest:{}:&layout=hash", ns.name);
            async move {
                let store = sessionbank_store_redis::RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        .with_tests(tests)
        .run();
    drop(server);
    code
}
