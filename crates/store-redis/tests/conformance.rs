//! The shared conformance suite (`sessionbank-testkit`) against a real standalone Redis server
//! (both layouts, and the string layout opened through the registry, which wraps it in
//! `Coalescing`), plus Redis-specific tests in the same binary (so on the same server). Each
//! trial gets its own key prefix on the one server.

mod common;

use sessionbank_core::{Registry, StoreHandle};
use sessionbank_testkit::servers::redis::RedisServer;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    let server = RedisServer::start();
    let url = server.url();
    let tests = common::standalone_tests(&server);
    let hash_url = url.clone();
    let by_url = url.clone();
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
        // Through the registry, as applications open it: wrapped in `Coalescing`, so the
        // concurrent trials run with shared reads and merged updates against a real server.
        .backend("redis_by_url", move |ns: Namespace| {
            let url = format!("{by_url}?prefix=sbtest:{}:", ns.name);
            async move {
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<
                    sessionbank_store_redis::RedisStoreBuilder,
                >());
                registry.connect(&url).await
            }
        })
        .with_tests(tests)
        .run();
    drop(server);
    code
}
