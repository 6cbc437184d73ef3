//! The shared conformance suite (`sessionbank-testkit`) against the disk store.

use sessionbank_core::StoreHandle;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    Conformance::new()
        .backend("disk", |ns: Namespace| async move {
            // ns.dir: a fresh empty directory for this trial.
            let store = sessionbank_store_disk::DiskStore::open(ns.dir.join("sessions")).await?;
            Ok(StoreHandle::new(store))
        })
        .run()
}
