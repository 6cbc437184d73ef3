//! The shared conformance suite against a real Redis master with one replica, watched by three
//! sentinels, all started for this binary; the store finds the master through the sentinels.
//! Stores are opened through the registry, with the sentinels listed in the URL's authority.

use sessionbank_core::Registry;
use sessionbank_store_redis::RedisStoreBuilder;
use sessionbank_testkit::servers::redis::RedisSentinel;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    let group = RedisSentinel::start();
    let url = group.url();
    let hash_url = url.clone();
    let code = Conformance::new()
        .backend("redis_sentinel", move |ns: Namespace| {
            let url = format!("{url}?prefix=sbtest:{}:", ns.name);
            async move {
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<RedisStoreBuilder>());
                registry.connect(&url).await
            }
        })
        .backend("redis_sentinel_hash", move |ns: Namespace| {
            let url = format!("{hash_url}?prefix=sbtest:{}:&layout=hash", ns.name);
            async move {
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<RedisStoreBuilder>());
                registry.connect(&url).await
            }
        })
        .run();
    drop(group);
    code
}
