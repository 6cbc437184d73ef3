//! The conformance suite against the memory store (the reference backend), with the default
//! options and bounded.

use sessionbank_core::{MemoryStore, StoreHandle};
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    Conformance::new()
        .backend("memory", |_ns: Namespace| async move {
            Ok(StoreHandle::new(MemoryStore::new()))
        })
        .backend("memory_bounded", |_ns: Namespace| async move {
            Ok(StoreHandle::new(
                MemoryStore::builder().max_entries(10_000).build(),
            ))
        })
        .backend("memory_by_url", |_ns: Namespace| async move {
            sessionbank_core::Registry::with_memory()
                .connect("memory://?cleanup_time=off&max_entries=100000")
                .await
        })
        .run()
}
