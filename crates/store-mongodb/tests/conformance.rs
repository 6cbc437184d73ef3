//! The shared conformance suite against a real MongoDB wire-protocol server (SecantusDB, see
//! `../shared/SERVERS.md`), each trial in its own collection, plus the MongoDB-specific tests:
//! reserved and unaddressable keys, the TTL index, an index of another shape, a server that
//! goes away, the registry, and connection strings.
//!
//! The server is started once, here in `main`, and stopped when the run ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;

use futures::TryStreamExt;
use libtest_mimic::{Failed, Trial};
use serde_json::json;
use sessionbank_core::{
    Data, ErrorKind, Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp,
};
use sessionbank_store_mongodb::mongodb::bson::{Document, doc};
use sessionbank_store_mongodb::mongodb::options::IndexOptions;
use sessionbank_store_mongodb::mongodb::{Client, IndexModel};
use sessionbank_store_mongodb::{MongoStore, MongoStoreBuilder, TTL_INDEX_NAME};
use sessionbank_testkit::servers::mongo::MongoServer;
use sessionbank_testkit::{Conformance, Namespace, random_name};

fn main() -> std::process::ExitCode {
    // Two deployments, each through the whole suite: a replica-set member (transactions, so
    // `rename` is one transaction) and a standalone server (`rename` in two steps).
    let server = MongoServer::start();
    let standalone = MongoServer::start_standalone();
    let base = server.url("sessionbank");
    let suite_base = base.clone();
    let standalone_base = standalone.url("sessionbank");
    let code = Conformance::new()
        .backend("mongodb", move |ns: Namespace| {
            let url = format!("{suite_base}?collection={}", ns.name);
            async move { Ok(StoreHandle::new(MongoStore::connect(&url).await?)) }
        })
        .backend("mongodb-standalone", move |ns: Namespace| {
            let url = format!("{standalone_base}?collection={}", ns.name);
            async move { Ok(StoreHandle::new(MongoStore::connect(&url).await?)) }
        })
        .with_tests(extra_tests(&base))
        .with_tests(vec![with_url(
            &standalone.url("sessionbank"),
            "a_standalone_server_renames_in_two_steps",
            rename_in_two_steps,
        )])
        .run();
    drop(standalone);
    drop(server);
    code
}

fn extra_tests(base: &str) -> Vec<Trial> {
    vec![
        with_url(
            base,
            "the_reserved_id_key_is_refused",
            reserved_id_is_refused,
        ),
        with_url(
            base,
            "keys_mongodb_cannot_address_are_refused",
            unaddressable_keys,
        ),
        with_url(
            base,
            "setup_creates_the_ttl_and_owner_indexes",
            ttl_index_exists,
        ),
        with_url(
            base,
            "an_index_of_another_shape_on_deadline_is_reported",
            other_index_shape,
        ),
        with_url(base, "the_registry_opens_mongodb_urls", registry_opens),
        with_url(
            base,
            "a_replica_set_member_renames_in_a_transaction",
            rename_in_transaction,
        ),
        with_url(base, "from_client_shares_an_existing_client", from_client),
        with_url(
            base,
            "rename_racing_a_destroy_never_resurrects",
            rename_racing_destroy,
        ),
        with_url(
            base,
            "browser_sessions_move_their_deadline_on_update",
            browser_deadline_moves,
        ),
        with_url(
            base,
            "a_seed_list_with_a_dead_server_reaches_the_live_one",
            seed_list_with_a_dead_server,
        ),
        trial("a_server_that_goes_away_is_unavailable", server_goes_away),
        trial(
            "connection_strings_keep_hosts_and_options",
            connection_strings,
        ),
    ]
}

fn trial<F, Fut>(name: &str, f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    Trial::test(format!("mongodb::extra::{name}"), move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            match tokio::time::timeout(Duration::from_secs(90), f()).await {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the test hung for 90 s")),
            }
        })
        .map_err(|e| Failed::from(format!("{e:#}")))
    })
}

fn with_url<F, Fut>(base: &str, name: &str, f: F) -> Trial
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let url = format!("{base}?collection={}", random_name());
    trial(name, move || f(url))
}

fn record_with(data: serde_json::Value) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(Data::from_value(data).unwrap())
        .expiring_at(now + Duration::from_secs(3600))
}

async fn reserved_id_is_refused(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    let err = store
        .create(&id, &record_with(json!({"_id": "mine"})))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "create: {err}");
    anyhow::ensure!(err.to_string().contains("_id"), "names the key: {err}");
    let err = store
        .set(&id, &record_with(json!({"_id": 1})))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "set: {err}");
    store.create(&id, &record_with(json!({"a": 1}))).await?;
    let err = store
        .update(&id, &Patch::new().set("_id", json!("x")))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "update set: {err}");
    let err = store
        .update(&id, &Patch::new().unset("_id"))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "update unset: {err}");
    let got = store.get(&id).await?.unwrap();
    anyhow::ensure!(got.data["a"] == json!(1), "the session is unchanged");
    Ok(())
}

async fn unaddressable_keys(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"a": 1}))).await?;
    for key in ["a.b", "$where", ""] {
        let err = store
            .update(&id, &Patch::new().set(key, json!(1)))
            .await
            .unwrap_err();
        anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "{key:?}: {err}");
        let other = SessionId::generate()?;
        let err = store
            .create(&other, &record_with(json!({ key: 1 })))
            .await
            .unwrap_err();
        anyhow::ensure!(
            err.kind() == ErrorKind::InvalidInput,
            "create {key:?}: {err}"
        );
    }
    // BSON has no unsigned 64-bit integer.
    let err = store
        .update(&id, &Patch::new().set("big", json!(u64::MAX)))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::InvalidInput, "u64::MAX: {err}");
    // Nested values may hold any key: only top-level keys are addressed.
    store
        .update(
            &id,
            &Patch::new().set("nested", json!({"b": {"c": [1, 2]}})),
        )
        .await?;
    let got = store.get(&id).await?.unwrap();
    anyhow::ensure!(got.data["nested"] == json!({"b": {"c": [1, 2]}}));
    Ok(())
}

async fn ttl_index_exists(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url).await?;
    // A second setup finds the indexes and changes nothing.
    store.setup().await?;
    let indexes: Vec<IndexModel> = store
        .collection()
        .list_indexes()
        .await?
        .try_collect()
        .await?;
    let ttl: Vec<_> = indexes
        .iter()
        .filter(|i| i.keys.contains_key("deadline"))
        .collect();
    anyhow::ensure!(ttl.len() == 1, "one index on deadline: {indexes:?}");
    let options = ttl[0].options.as_ref().unwrap();
    anyhow::ensure!(options.expire_after == Some(Duration::ZERO), "{options:?}");
    anyhow::ensure!(options.name.as_deref() == Some(TTL_INDEX_NAME));
    anyhow::ensure!(
        indexes.iter().any(|i| i.keys == doc! {"owner": 1}),
        "an owner index: {indexes:?}"
    );
    anyhow::ensure!(store.capabilities().native_expiry);
    Ok(())
}

async fn other_index_shape(url: String) -> anyhow::Result<()> {
    let config = MongoStoreBuilder::parse(&url)?;
    let client = Client::with_uri_str(config.get_connection_string()).await?;
    let coll = client
        .database(config.get_database())
        .collection::<Document>(config.get_collection());
    coll.create_index(
        IndexModel::builder()
            .keys(doc! {"deadline": 1})
            .options(
                IndexOptions::builder()
                    .name("deadline_plain".to_owned())
                    .build(),
            )
            .build(),
    )
    .await?;
    let err = MongoStore::connect(&url).await.unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::Config, "{err}");
    anyhow::ensure!(
        err.to_string().contains("deadline_plain"),
        "names it: {err}"
    );
    anyhow::ensure!(err.to_string().contains("expireAfterSeconds"), "{err}");
    Ok(())
}

/// Several servers in the URL, the first of them down (nothing listens on its port): the
/// driver finds the replica set's primary through the live seed, and the store works.
async fn seed_list_with_a_dead_server(url: String) -> anyhow::Result<()> {
    let dead = sessionbank_testkit::servers::free_port();
    let rest = url.strip_prefix("mongodb://").context("a mongodb:// URL")?;
    let url = format!("mongodb://127.0.0.1:{dead},{rest}&replicaSet=secantus");
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"n": 1}))).await?;
    let back = store.get(&id).await?.context("the session reads back")?;
    anyhow::ensure!(back.data.get("n") == Some(&json!(1)));
    store.destroy(&id).await?;
    anyhow::ensure!(store.get(&id).await?.is_none());
    Ok(())
}

/// SecantusDB answers `hello` as the primary of the one-member replica set `secantus` (unless
/// started with `--standalone`), so the store takes its replica-set path: `rename` in a
/// multi-document transaction, `atomic_rename` in its capabilities.
async fn rename_in_transaction(url: String) -> anyhow::Result<()> {
    let url = format!("{url}&replicaSet=secantus");
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store
        .create(&id, &record_with(json!({"cart": ["book"]})).owned_by("ada"))
        .await?;
    anyhow::ensure!(
        store.capabilities().atomic_rename,
        "a replica-set member renames atomically: {store:?}"
    );
    let new = SessionId::generate()?;
    store.rename(&id, &new).await?;
    anyhow::ensure!(store.get(&id).await?.is_none(), "the old id is gone");
    let moved = store
        .get(&new)
        .await?
        .context("the new id holds the session")?;
    anyhow::ensure!(moved.data.get("cart") == Some(&json!(["book"])));
    anyhow::ensure!(moved.owner.as_deref() == Some("ada"));
    // Onto a live id: AlreadyExists, and the transaction leaves both as they were.
    let other = SessionId::generate()?;
    store.create(&other, &record_with(json!({"x": 1}))).await?;
    let err = store
        .rename(&new, &other)
        .await
        .err()
        .context("rename onto a live id")?;
    anyhow::ensure!(err.kind() == ErrorKind::AlreadyExists, "{}", err.chain());
    anyhow::ensure!(store.get(&new).await?.is_some() && store.get(&other).await?.is_some());
    // Twenty renames racing one another: exactly one wins, the session is never lost.
    let (won, live) = race_renames(&store, &new).await?;
    anyhow::ensure!(won == 1, "exactly one rename wins: {won}");
    anyhow::ensure!(
        live == 1 && store.get(&new).await?.is_none(),
        "one copy, under the winner"
    );
    Ok(())
}

/// With `--standalone`, `hello` names no replica set: no transactions, so `rename` is the
/// two-step copy-then-delete and `atomic_rename` is false; of racing renames exactly one wins
/// and exactly one copy stays (the losers take their copies back).
async fn rename_in_two_steps(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"x": 1}))).await?;
    anyhow::ensure!(
        !store.capabilities().atomic_rename,
        "a standalone server has no transactions: {store:?}"
    );
    let (won, live) = race_renames(&store, &id).await?;
    anyhow::ensure!(won == 1, "exactly one rename wins: {won}");
    anyhow::ensure!(store.get(&id).await?.is_none(), "the old id is gone");
    anyhow::ensure!(live == 1, "one copy, never lost: {live} copies");
    Ok(())
}

/// Renames `from` to 20 fresh ids at once; returns how many renames succeeded and how many of
/// the targets hold a session afterwards.
async fn race_renames(store: &MongoStore, from: &SessionId) -> anyhow::Result<(usize, usize)> {
    let targets: Vec<SessionId> = (0..20)
        .map(|_| SessionId::generate())
        .collect::<Result<_, _>>()?;
    let racing = targets.iter().map(|t| {
        let (store, from, t) = (store.clone(), *from, *t);
        async move { store.rename(&from, &t).await }
    });
    let results = futures::future::join_all(racing).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let mut live = 0;
    for t in &targets {
        live += usize::from(store.get(t).await?.is_some());
    }
    Ok((won, live))
}

async fn registry_opens(url: String) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<MongoStoreBuilder>());
    let store = registry
        .connect(&format!("{url}&browser_idle=1h&timeout=5s"))
        .await?;
    anyhow::ensure!(store.backend() == "mongodb");
    anyhow::ensure!(store.janitor().is_none(), "native expiry: no janitor");
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"x": 1}))).await?;
    anyhow::ensure!(store.get(&id).await?.is_some());
    let err = registry
        .connect(&format!("{url}&colour=blue"))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::Config && err.to_string().contains("colour"));
    Ok(())
}

async fn from_client(url: String) -> anyhow::Result<()> {
    let config = MongoStoreBuilder::parse(&url)?;
    let client = Client::with_uri_str(config.get_connection_string()).await?;
    let store = MongoStore::from_client(client, config.get_database(), config.get_collection());
    store.setup().await?;
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"x": 1}))).await?;
    let other = MongoStore::connect(&url).await?;
    anyhow::ensure!(other.get(&id).await?.is_some(), "same collection");
    Ok(())
}

async fn rename_racing_destroy(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url).await?;
    for _ in 0..20 {
        let old = SessionId::generate()?;
        let new = SessionId::generate()?;
        store.create(&old, &record_with(json!({"n": 1}))).await?;
        let (renamed, _) = tokio::join!(store.rename(&old, &new), store.destroy(&old));
        let old_there = store.get(&old).await?.is_some();
        let new_there = store.get(&new).await?.is_some();
        anyhow::ensure!(!old_there, "destroyed old never comes back");
        match renamed {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Gone => {
                anyhow::ensure!(!new_there, "a failed rename leaves no copy")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn browser_deadline_moves(url: String) -> anyhow::Result<()> {
    let store = MongoStore::connect(&url)
        .await?
        .with_browser_idle(Duration::from_secs(3));
    let id = SessionId::generate()?;
    let now = Timestamp::now();
    store
        .create(
            &id,
            &Record::new(now).with_data(Data::from_value(json!({"a": 1})).unwrap()),
        )
        .await?;
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        store.update(&id, &Patch::new().set("i", json!(i))).await?;
    }
    anyhow::ensure!(store.get(&id).await?.is_some(), "kept alive by updates");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    anyhow::ensure!(store.get(&id).await?.is_none(), "idle past browser_idle");
    Ok(())
}

async fn server_goes_away() -> anyhow::Result<()> {
    let server = MongoServer::start();
    let url = format!("{}?collection=c&timeout=5s", server.url("sessionbank"));
    let store = MongoStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.create(&id, &record_with(json!({"a": 1}))).await?;
    server.stop();
    let started = Instant::now();
    let err = store.get(&id).await.unwrap_err();
    anyhow::ensure!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    anyhow::ensure!(err.kind().is_retryable());
    anyhow::ensure!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let err = MongoStore::connect(&url).await.unwrap_err();
    anyhow::ensure!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    Ok(())
}

async fn connection_strings() -> anyhow::Result<()> {
    let config = MongoStoreBuilder::parse(
        "mongodb://u:p%40ss@a:1,b:2,c/app?replicaSet=rs0&authSource=admin&collection=web&timeout=3s",
    )?;
    let cs = config.get_connection_string();
    anyhow::ensure!(cs.starts_with("mongodb://u:p%40ss@a:1,b:2,c/app?"), "{cs}");
    anyhow::ensure!(
        cs.contains("replicaSet=rs0") && cs.contains("authSource=admin"),
        "{cs}"
    );
    anyhow::ensure!(!config.to_string().contains("p%40ss"), "redacted: {config}");
    anyhow::ensure!(config.get_collection() == "web");
    let srv = MongoStoreBuilder::parse("mongodb+srv://cluster0.example.net/app")?;
    anyhow::ensure!(
        srv.get_connection_string()
            .starts_with("mongodb+srv://cluster0.example.net/app?")
    );
    for bad in [
        "mongodb://h/",
        "mongodb://h/a.b",
        "mongodb://h/app?collection=",
        "mongodb://h/app?nosuch=1",
        "mongodb://h/app?cleanup_time=1m",
    ] {
        let err = MongoStoreBuilder::parse(bad).unwrap_err();
        anyhow::ensure!(err.kind() == ErrorKind::Config, "{bad}: {err}");
    }
    Ok(())
}
