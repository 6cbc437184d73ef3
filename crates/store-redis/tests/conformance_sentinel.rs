//! The shared conformance suite against a real Redis master with one replica, watched by three
//! sentinels, all started for this binary; the store finds the master through the sentinels.

use sessionbank_core::StoreHandle;
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisSentinel;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    let group = RedisSentinel::start();
    let url = group.url();
    let code = Conformance::new()
        .backend("redis_sentinel", move |ns: Namespace| {
            let url = format!("{url}?prefix=sbtest:{}:", ns.name);
            async move {
                let store = RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        .run();
    drop(group);
    code
}
