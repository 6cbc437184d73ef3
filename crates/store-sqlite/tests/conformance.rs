//! The shared conformance suite (`sessionbank-testkit`) against the SQLite store: each trial in
//! its own file, in its own table of one shared file, by URL, and in memory. Plus one test with
//! several processes on one file: this binary re-runs itself as the child writers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary (harness = false)

use std::collections::BTreeSet;
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde_json::json;
use sessionbank_core::{
    BackendEntry, Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp,
};
use sessionbank_store_sqlite::{SqliteStore, SqliteStoreBuilder};
use sessionbank_testkit::{Conformance, Namespace};

/// Set (to a database file) when this binary runs as a child writer.
const CHILD_ENV: &str = "SESSIONBANK_SQLITE_CHILD_WRITER";
/// Sessions each writer (child or parent) creates.
const PER_WRITER: usize = 150;

fn record() -> Record {
    let now = Timestamp::now();
    Record::new(now).expiring_at(now + Duration::from_secs(3600))
}

/// One writer: creates `PER_WRITER` sessions, updates each, and adds a key of its own to the
/// shared session after each; returns the ids it created.
async fn write(store: &SqliteStore, me: &str, shared: &SessionId) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for i in 0..PER_WRITER {
        let id = SessionId::generate().unwrap();
        store.create(&id, &record()).await.unwrap();
        store
            .update(&id, &Patch::new().set("writer", json!(me)))
            .await
            .unwrap();
        store
            .update(shared, &Patch::new().set(format!("{me}_{i}"), json!(i)))
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// The child writer: prints the ids it created, one a line.
fn child(path: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::builder(path)
            .busy_timeout(Duration::from_secs(30))
            .open()
            .await
            .unwrap();
        let shared =
            SessionId::parse(&std::env::var("SESSIONBANK_SQLITE_SHARED").unwrap()).unwrap();
        let me = format!("p{}", std::process::id());
        for id in write(&store, &me, &shared).await {
            println!("{} {me}", id.as_str());
        }
    });
    ExitCode::SUCCESS
}

fn processes_test() -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(
        "sqlite_specific::three_processes_write_one_file_and_lose_nothing",
        || {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("multi.db");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let store = runtime.block_on(async {
                SqliteStore::builder(&file)
                    .busy_timeout(Duration::from_secs(30))
                    .open()
                    .await
                    .unwrap()
            });
            let shared = SessionId::generate().unwrap();
            runtime.block_on(store.set(&shared, &record())).unwrap();
            let exe = std::env::current_exe().unwrap();
            let children: Vec<_> = (0..2)
                .map(|_| {
                    Command::new(&exe)
                        .env(CHILD_ENV, &file)
                        .env("SESSIONBANK_SQLITE_SHARED", shared.as_str())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let mine = runtime.block_on(write(&store, "parent", &shared));
            let mut expected: Vec<(SessionId, String)> = mine
                .into_iter()
                .map(|id| (id, "parent".to_owned()))
                .collect();
            for child in children {
                let out = child.wait_with_output().unwrap();
                if !out.status.success() {
                    return Err(format!("a child writer failed with {}", out.status).into());
                }
                for line in String::from_utf8(out.stdout).unwrap().lines() {
                    let (id, me) = line.split_once(' ').unwrap();
                    expected.push((SessionId::parse(id).unwrap(), me.to_owned()));
                }
            }
            let writers: BTreeSet<_> = expected.iter().map(|(_, me)| me.clone()).collect();
            if expected.len() != 3 * PER_WRITER || writers.len() != 3 {
                return Err(
                    format!("{} sessions from {} writers", expected.len(), writers.len()).into(),
                );
            }
            runtime.block_on(async {
                for (id, me) in &expected {
                    let back = store.get(id).await.unwrap();
                    match back {
                        Some(r) if r.data["writer"] == json!(me) => {}
                        _ => return Err(format!("a session of {me} was lost or changed").into()),
                    }
                }
                let shared = store.get(&shared).await.unwrap().unwrap();
                for me in &writers {
                    for i in 0..PER_WRITER {
                        if shared.data.get(&format!("{me}_{i}")) != Some(&json!(i)) {
                            return Err(format!("the shared session lost {me}_{i}").into());
                        }
                    }
                }
                if store.length().await.unwrap() != (3 * PER_WRITER + 1) as u64 {
                    return Err("length does not count every session".into());
                }
                Ok(())
            })
        },
    )
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        return child(&path);
    }
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
            registry.register(BackendEntry::of::<SqliteStoreBuilder>());
            let url = format!(
                "sqlite://{}/s.db?table={}&synchronous=normal&cleanup_time=off",
                ns.dir.display(),
                ns.name
            );
            registry.connect(&url).await
        })
        .backend("sqlite_memory", |_ns: Namespace| async move {
            Ok(StoreHandle::new(
                SqliteStore::builder_in_memory().open().await?,
            ))
        })
        .with_tests([processes_test()])
        .run();
    drop(shared);
    code
}
