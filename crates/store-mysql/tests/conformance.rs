//! The shared conformance suite (`sessionbank-testkit`) and the MySQL-specific tests, against a
//! real MariaDB started once for this binary; every trial and test in its own table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary (harness = false)

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use serde_json::json;
use sessionbank_core::{
    ErrorKind, ManualClock, Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp,
};
use sessionbank_store_mysql::{CLEANUP_BATCH, MySqlStore, MySqlStoreBuilder};
use sessionbank_testkit::servers::mariadb::MariaDbServer;
use sessionbank_testkit::{Conformance, Namespace, random_name};

fn main() -> ExitCode {
    let server = MariaDbServer::start();
    let url = server.url();
    let tests = extra_tests(&url);
    let by_url = url.replacen("mysql://", "mariadb://", 1);
    let code = Conformance::new()
        .backend("mysql", {
            let url = url.clone();
            move |ns: Namespace| {
                let url = url.clone();
                async move { open(&url, &ns.name).await.map(StoreHandle::new) }
            }
        })
        .backend("mariadb_by_url", move |ns: Namespace| {
            let url = format!("{by_url}?table={}&cleanup_time=off&pool_max=8", ns.name);
            async move {
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<MySqlStoreBuilder>());
                registry.connect(&url).await
            }
        })
        .with_tests(tests)
        .run();
    drop(server);
    code
}

async fn open(url: &str, table: &str) -> sessionbank_core::Result<MySqlStore> {
    MySqlStoreBuilder::parse(url)?.table(table).open().await
}

fn test<F, Fut>(name: &str, url: &str, body: F) -> Trial
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = url.to_owned();
    Trial::test(format!("mysql_specific::{name}"), move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failed::from(e.to_string()))?;
        runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(120), tokio::spawn(body(url)))
                .await
                .map_err(|_| Failed::from("the test did not finish within 120 s"))?
                .map_err(|e| Failed::from(format!("the test panicked: {e}")))
        })
    })
}

fn live(ttl: Duration) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(
            json!({"user": "ada"})
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into(),
        )
        .expiring_at(now + ttl)
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

fn extra_tests(url: &str) -> Vec<Trial> {
    vec![
        test("unchanged_values_are_not_gone", url, |url| async move {
            // Without CLIENT_FOUND_ROWS MySQL reports 0 affected rows when nothing changed,
            // which would read as Gone: freeze the clock so last_access does not change either.
            let clock = ManualClock::starting_now();
            let store = MySqlStoreBuilder::parse(&url)
                .unwrap()
                .table(random_name())
                .clock(Arc::new(clock.clone()))
                .open()
                .await
                .unwrap();
            let id = SessionId::generate().unwrap();
            let mut record = live(hour());
            record.last_access = sessionbank_core::Clock::now(&clock);
            record.expires_at = Some(sessionbank_core::Clock::now(&clock) + hour());
            store.set(&id, &record).await.unwrap();
            let patch = Patch::new().set("user", json!("ada"));
            store.update(&id, &patch).await.unwrap();
            store.update(&id, &patch).await.unwrap();
            store.touch(&id, record.expires_at).await.unwrap();
            store.touch(&id, record.expires_at).await.unwrap();
            assert_eq!(store.get(&id).await.unwrap().unwrap().data["user"], "ada");
        }),
        test(
            "hostile_table_names_never_reach_sql",
            url,
            |url| async move {
                for hostile in ["s`; DROP TABLE x; --", "a b", "sess.ions", "", "1x", "t'"] {
                    let err = open(&url, hostile).await.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{hostile:?}");
                }
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<MySqlStoreBuilder>());
                let err = registry
                    .connect(&format!("{url}?table=x%60%3B%20DROP%20TABLE%20y"))
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput);
            },
        ),
        test(
            "keys_json_paths_cannot_name_still_update",
            url,
            |url| async move {
                let store = open(&url, &random_name()).await.unwrap();
                let id = SessionId::generate().unwrap();
                let mut record = live(hour());
                record.data.insert("q\"uote".into(), json!(1));
                record.data.insert("back\\slash".into(), json!(2));
                record.data.insert("dot.ted key".into(), json!(3));
                record.data.insert("ünï 🐴".into(), json!(4));
                store.set(&id, &record).await.unwrap();
                store
                    .update(
                        &id,
                        &Patch::new()
                            .set("q\"uote", json!("one"))
                            .set("new\"key", json!({"a": [1, true, null]}))
                            .unset("back\\slash"),
                    )
                    .await
                    .unwrap();
                store
                    .update(
                        &id,
                        &Patch::new()
                            .set("dot.ted key", json!(false))
                            .set("s", json!("a \"quoted\" string"))
                            .set("n", json!(null))
                            .set("$.weird[0]", json!(0.25))
                            .unset("ünï 🐴"),
                    )
                    .await
                    .unwrap();
                let back = store.get(&id).await.unwrap().unwrap();
                let expected = json!({
                    "user": "ada",
                    "q\"uote": "one",
                    "new\"key": {"a": [1, true, null]},
                    "dot.ted key": false,
                    "s": "a \"quoted\" string",
                    "n": null,
                    "$.weird[0]": 0.25,
                });
                assert_eq!(serde_json::Value::from(back.data), expected);
                store.destroy(&id).await.unwrap();
                let err = store
                    .update(&id, &Patch::new().set("q\"x", json!(1)))
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Gone);
                assert!(store.get(&id).await.unwrap().is_none());
            },
        ),
        test("two_cleaners_and_writers_at_once", url, |url| async move {
            let table = random_name();
            let a = open(&url, &table).await.unwrap();
            let b = open(&url, &table).await.unwrap();
            let expired = CLEANUP_BATCH * 3 + 7;
            let mut old = live(hour());
            old.expires_at = Some(Timestamp::now() - Duration::from_secs(1));
            let writes = (0..expired).map(|_| {
                let (a, old) = (a.clone(), old.clone());
                async move { a.set(&SessionId::generate().unwrap(), &old).await.unwrap() }
            });
            futures::future::join_all(writes).await;
            let live_ids: Vec<SessionId> =
                (0..40).map(|_| SessionId::generate().unwrap()).collect();
            let writers = live_ids.iter().copied().map(|id| {
                let store = if id.as_str().as_bytes()[0] % 2 == 0 {
                    a.clone()
                } else {
                    b.clone()
                };
                tokio::spawn(async move {
                    store.create(&id, &live(hour())).await.unwrap();
                    for i in 0..5 {
                        store
                            .update(&id, &Patch::new().set("i", json!(i)))
                            .await
                            .unwrap();
                    }
                })
            });
            let writers: Vec<_> = writers.collect();
            let (ra, rb) = tokio::join!(a.cleanup(), b.cleanup());
            for w in writers {
                w.await.unwrap();
            }
            let removed = ra.unwrap() + rb.unwrap();
            assert_eq!(
                removed, expired as u64,
                "each expired row removed exactly once"
            );
            assert_eq!(a.cleanup().await.unwrap(), 0);
            assert_eq!(a.length().await.unwrap(), live_ids.len() as u64);
            for id in &live_ids {
                assert_eq!(a.get(id).await.unwrap().unwrap().data["i"], json!(4));
            }
        }),
        test("create_false_needs_the_table", url, |url| async move {
            let mut registry = Registry::new();
            registry.register(sessionbank_core::BackendEntry::of::<MySqlStoreBuilder>());
            let err = registry
                .connect(&format!("{url}?table={}&create=false", random_name()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{}", err.chain());
        }),
        test(
            "a_database_that_goes_away_is_unavailable",
            url,
            |_url| async move {
                let mut server = tokio::task::spawn_blocking(MariaDbServer::start)
                    .await
                    .unwrap();
                let mut registry = Registry::new();
                registry.register(sessionbank_core::BackendEntry::of::<MySqlStoreBuilder>());
                let store = registry
                    .connect(&format!("{}?timeout=5s&cleanup_time=off", server.url()))
                    .await
                    .unwrap();
                let id = SessionId::generate().unwrap();
                store.set(&id, &live(hour())).await.unwrap();
                let server_stopped = tokio::task::spawn_blocking(move || {
                    server.stop();
                    server
                });
                let server = server_stopped.await.unwrap();
                for _ in 0..3 {
                    let err = store.get(&id).await.unwrap_err();
                    assert!(
                        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                        "{}",
                        err.chain()
                    );
                    assert!(err.is_retryable());
                    assert_eq!(err.backend(), "mysql");
                    let err = store.set(&id, &live(hour())).await.unwrap_err();
                    assert!(err.is_retryable(), "{}", err.chain());
                }
                tokio::task::spawn_blocking(move || drop(server))
                    .await
                    .unwrap();
            },
        ),
        test(
            "an_unreachable_server_is_unavailable",
            url,
            |_url| async move {
                let port = sessionbank_testkit::servers::free_port();
                let err = MySqlStore::builder("127.0.0.1", port)
                    .user("root")
                    .password("hunter2")
                    .database("x")
                    .timeout(Duration::from_secs(5))
                    .open()
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                    "{}",
                    err.chain()
                );
                assert!(!format!("{err:?}").contains("hunter2"));
                assert!(!err.chain().contains("hunter2"));
            },
        ),
    ]
}
