//! The shared conformance suite (`sessionbank-testkit`) against the SQLite store: each trial in
//! its own file, in its own table of one shared file, by URL, and in memory.

use std::process::ExitCode;

use sessionbank_core::{Registry, StoreHandle};
use sessionbank_store_sqlite::SqliteStore;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> ExitCode {
    // One database file shared by the `sqlite_shared_file` trials, each in its own table.
    let shared = match tempfile::Builder::new()
        .prefix("sessionbank-sqlite-shared-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::from(101);
        }
    };
    let shared_file = shared.path().join("shared.db");
    let code = Conformance::new()
        .backend("sqlite", |ns: Namespace| async move {
            let store = SqliteStore::open(ns.dir.join("sessions.db")).await?;
            Ok(StoreHandle::new(store))
        })
        .backend("sqlite_shared_file", move |ns: Namespace| {
            let file = shared_file.clone();
            async move {
                let store = SqliteStore::builder(file)
                    .table(format!("s_{}", ns.name))
                    .open()
                    .await?;
                Ok(StoreHandle::new(store))
            }
        })
        .backend("sqlite_by_url", |ns: Namespace| async move {
            let mut registry = Registry::new();
            registry.register(SqliteStore::REGISTRY_ENTRY);
            let url = format!(
                "sqlite://{}/s.db?table={}&synchronous=normal&cleanup_time=off",
                ns.dir.display(),
                ns.name
            );
            registry.connect(&url).await
        })
        .backend("sqlite_memory", |_ns: Namespace| async move {
            Ok(StoreHandle::new(SqliteStore::in_memory().open().await?))
        })
        .run();
    drop(shared);
    code
}
