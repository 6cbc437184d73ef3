//! The shared conformance suite against a real three-master Redis Cluster started for this
//! binary, plus cluster-specific tests. Each trial gets its own key prefix.

use std::time::Duration;

use anyhow::{anyhow, ensure};
use sessionbank_core::{Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::RedisCluster;
use sessionbank_testkit::{Conformance, Namespace, random_name};

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f)
}

fn trial(
    name: &str,
    f: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(format!("redis_cluster_specific::{name}"), move || {
        f().map_err(|e| libtest_mimic::Failed::from(format!("{e:#}")))
    })
}

/// Sessions spread over all three masters; `all`, `length` and `clear` see every one of them.
async fn spreads_over_every_master(url: String, ports: Vec<u16>) -> anyhow::Result<()> {
    let store = RedisStore::connect(&format!("{url}?prefix=sbc:{}:", random_name()))
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    ensure!(store.is_cluster() && !store.capabilities().atomic_rename);
    let now = Timestamp::now();
    for _ in 0..60 {
        store
            .set(
                &SessionId::generate()?,
                &Record::new(now).expiring_at(now + Duration::from_secs(3600)),
            )
            .await?;
    }
    let per_node = keys_per_node(&ports, &format!("{}s:*", store.prefix())).await?;
    ensure!(
        per_node.iter().all(|n| *n > 0),
        "60 random ids land on every master: {per_node:?}"
    );
    ensure!(store.length().await? == 60);
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = store.all(cursor.as_deref(), 7).await?;
        seen += page.sessions.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(seen == 60, "all listed {seen}");
    ensure!(store.clear().await? == 60);
    ensure!(store.length().await? == 0);
    Ok(())
}

/// The hash layout on a cluster: sessions on every master, `update` (a MULTI … EXEC) on each,
/// `all`/`length`/`clear` over all three, and a rename across slots.
async fn hash_spreads_over_every_master(url: String, ports: Vec<u16>) -> anyhow::Result<()> {
    let store = RedisStore::connect(&format!("{url}?prefix=sbch:{}:&layout=hash", random_name()))
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    let now = Timestamp::now();
    let mut ids = Vec::new();
    for _ in 0..60 {
        let id = SessionId::generate()?;
        store
            .create(
                &id,
                &Record::new(now)
                    .expiring_at(now + Duration::from_secs(3600))
                    .owned_by("ada"),
            )
            .await?;
        store
            .update(
                &id,
                &sessionbank_core::Patch::new().set("n", serde_json::json!(1)),
            )
            .await?;
        ids.push(id);
    }
    let per_node = keys_per_node(&ports, &format!("{}h:*", store.prefix())).await?;
    ensure!(
        per_node.iter().all(|n| *n > 0),
        "60 random ids land on every master: {per_node:?}"
    );
    ensure!(store.length().await? == 60);
    ensure!(store.owned_by("ada").await?.len() == 60);
    let renamed = SessionId::generate()?;
    store.rename(&ids[0], &renamed).await?;
    let moved = store
        .get(&renamed)
        .await?
        .ok_or_else(|| anyhow!("the renamed session is there"))?;
    ensure!(moved.data["n"] == 1 && store.get(&ids[0]).await?.is_none());
    ensure!(store.owned_by("ada").await?.len() == 60);
    ensure!(store.clear().await? == 60);
    ensure!(store.length().await? == 0);
    Ok(())
}

/// The registry path: one seed in the authority, the others in `nodes`.
async fn registry_with_nodes(ports: Vec<u16>) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<
        sessionbank_store_redis::RedisStoreBuilder,
    >());
    let url = format!(
        "redis+cluster://127.0.0.1:{}?nodes=127.0.0.1:{},127.0.0.1:{}&prefix=sbr:{}:",
        ports[0],
        ports[1],
        ports[2],
        random_name()
    );
    let store = registry
        .connect(&url)
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    let id = SessionId::generate()?;
    store.set(&id, &Record::new(Timestamp::now())).await?;
    ensure!(store.get(&id).await?.is_some());
    store.clear().await?;
    // And the comma form, which the registry splits before parsing.
    let url = format!(
        "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}?prefix=sbr:{}:",
        ports[0],
        ports[1],
        ports[2],
        random_name()
    );
    let store = registry
        .connect(&url)
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    store.set(&id, &Record::new(Timestamp::now())).await?;
    ensure!(store.get(&id).await?.is_some());
    store.clear().await?;
    // A comma list on a one-server scheme is refused.
    let err = registry
        .connect(&format!(
            "redis://127.0.0.1:{},127.0.0.1:{}/0",
            ports[0], ports[1]
        ))
        .await
        .err()
        .ok_or_else(|| anyhow!("redis:// with two hosts must fail"))?;
    ensure!(err.kind() == sessionbank_core::ErrorKind::Config, "{err}");
    Ok(())
}

/// Every master lost its script cache (`SCRIPT FLUSH`, as after restarts): updates of sessions
/// on every master still apply, each sent again as `EVAL` to its key's master.
async fn updates_after_the_masters_lost_their_scripts(
    url: String,
    ports: Vec<u16>,
) -> anyhow::Result<()> {
    let store = RedisStore::connect(&format!("{url}?prefix=sbcf:{}:", random_name()))
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    let now = Timestamp::now();
    let mut ids = Vec::new();
    for _ in 0..30 {
        let id = SessionId::generate()?;
        store
            .set(
                &id,
                &Record::new(now).expiring_at(now + Duration::from_secs(3600)),
            )
            .await?;
        store
            .update(&id, &Patch::new().set("n", serde_json::json!(1)))
            .await?;
        ids.push(id);
    }
    for port in &ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut conn)
            .await?;
    }
    for id in &ids {
        store
            .update(id, &Patch::new().set("n", serde_json::json!(2)))
            .await
            .map_err(|e| anyhow!("update after SCRIPT FLUSH: {}", e.chain()))?;
        let back = store.get(id).await?;
        ensure!(
            back.as_ref().and_then(|r| r.data.get("n")) == Some(&serde_json::json!(2)),
            "the update after the flush applied: {back:?}"
        );
    }
    ensure!(store.clear().await? == 30);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let ports = cluster.ports().to_vec();
    let tests = vec![
        {
            let (url, ports) = (url.clone(), ports.clone());
            trial("spreads_over_every_master", move || {
                block_on(spreads_over_every_master(url, ports))
            })
        },
        {
            let (url, ports) = (url.clone(), ports.clone());
            trial("hash_layout_spreads_over_every_master", move || {
                block_on(hash_spreads_over_every_master(url, ports))
            })
        },
        {
            let (url, ports) = (url.clone(), ports.clone());
            trial("updates_after_the_masters_lost_their_scripts", move || {
                block_on(updates_after_the_masters_lost_their_scripts(url, ports))
            })
        },
        {
            let ports = ports.clone();
            trial("registry_with_nodes", move || {
                block_on(registry_with_nodes(ports))
            })
        },
    ];
    let hash_url = url.clone();
    let code = Conformance::new()
        .backend("redis_cluster", move |ns: Namespace| {
            let url = format!("{url}?prefix=sbtest:{}:", ns.name);
            async move {
                let store = RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        // The hash layout: its MULTI … EXEC goes to the one master of the key's slot.
        .backend("redis_cluster_hash", move |ns: Namespace| {
            let url = format!("{hash_url}?prefix=sbtest:{}:&layout=hash", ns.name);
            async move {
                let store = RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        .with_tests(tests)
        .run();
    drop(cluster);
    code
}

/// How many keys matching `pattern` each master (by port) holds.
async fn keys_per_node(ports: &[u16], pattern: &str) -> anyhow::Result<Vec<usize>> {
    let mut per_node = Vec::new();
    for port in ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut conn)
            .await?;
        per_node.push(keys.len());
    }
    Ok(per_node)
}
