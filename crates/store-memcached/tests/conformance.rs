//! The shared conformance suite against two real memcached servers (so every trial goes through
//! the consistent hashing), plus the memcached-specific tests: a stopped server, a server that
//! never answers, item size limits, long expiries, native expiry, foreign values, the registry.
//!
//! The servers are started once, here in `main`, and stopped when the run ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use libtest_mimic::{Failed, Trial};
use serde_json::json;
use sessionbank_core::{
    Data, ErrorKind, ManualClock, Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp,
};
use sessionbank_store_memcached::{MemcachedStore, MemcachedStoreBuilder};
use sessionbank_testkit::servers::memcached::MemcachedServer;
use sessionbank_testkit::{Conformance, Namespace, random_name};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn main() -> std::process::ExitCode {
    let a = MemcachedServer::start();
    let b = MemcachedServer::start();
    let servers = format!("{},{}", a.addr(), b.addr());
    let url_servers = servers.clone();
    let code = Conformance::new()
        .backend("memcached", move |ns: Namespace| {
            let url = format!("memcached://{url_servers}/?prefix=sessionbank:{}:", ns.name);
            async move { Ok(StoreHandle::new(MemcachedStore::connect(&url).await?)) }
        })
        .with_tests(extra_tests(&servers))
        .run();
    drop((a, b));
    code
}

fn extra_tests(servers: &str) -> Vec<Trial> {
    let s = servers.to_owned();
    vec![
        trial(
            "stopping_one_server_makes_only_its_keys_unavailable",
            stopping_one_server,
        ),
        trial(
            "a_server_that_never_answers_times_out",
            a_server_that_never_answers,
        ),
        with_servers(
            &s,
            "values_over_the_item_limit_are_too_large_and_the_limit_is_exact",
            item_limit_is_exact,
        ),
        with_servers(
            &s,
            "the_servers_too_large_reply_is_too_large",
            server_too_large_reply,
        ),
        with_servers(
            &s,
            "expiries_beyond_30_days_use_absolute_times",
            long_expiries,
        ),
        with_servers(
            &s,
            "memcached_expires_items_itself",
            memcached_expires_items_itself,
        ),
        with_servers(&s, "a_foreign_value_is_corrupt", foreign_value_is_corrupt),
        with_servers(&s, "the_registry_opens_memcached_urls", registry_opens),
        with_servers(
            &s,
            "rename_racing_a_destroy_never_resurrects",
            rename_racing_destroy,
        ),
        with_servers(&s, "sessions_spread_over_both_servers", sessions_spread),
        with_servers(
            &s,
            "cancelled_calls_never_leave_a_stale_reply_in_the_pool",
            cancelled_calls,
        ),
        with_servers(
            &s,
            "rename_racing_updates_keeps_every_acknowledged_write",
            rename_racing_updates,
        ),
    ]
}

fn trial<F, Fut>(name: &str, f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    Trial::test(format!("memcached::extra::{name}"), move || {
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

fn with_servers<F, Fut>(servers: &str, name: &str, f: F) -> Trial
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let servers = servers.to_owned();
    trial(name, move || f(servers))
}

fn ns_config(servers: &str) -> MemcachedStoreBuilder {
    MemcachedStoreBuilder::parse(&format!("memcached://{servers}"))
        .unwrap()
        .prefix(format!("sessionbank:{}:", random_name()))
}

fn record_with(data: serde_json::Value, ttl: Duration) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(Data::from_value(data).unwrap())
        .expiring_at(now + ttl)
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

async fn stopping_one_server() -> anyhow::Result<()> {
    let a = MemcachedServer::start();
    let b = MemcachedServer::start();
    let store = MemcachedStoreBuilder::new([a.addr(), b.addr()])
        .timeout(Duration::from_secs(5))
        .open()
        .await?;
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    while on_a.len() < 10 || on_b.len() < 10 {
        let id = SessionId::generate()?;
        store
            .set(&id, &record_with(json!({"n": 1}), hour()))
            .await?;
        if store.server_for(&id) == a.addr() {
            on_a.push(id);
        } else {
            on_b.push(id);
        }
    }
    let b_addr = b.addr();
    b.stop();
    for id in &on_a {
        anyhow::ensure!(store.get(id).await?.is_some(), "a key on the live server");
        store.update(id, &Patch::new().set("m", json!(2))).await?;
    }
    for id in &on_b {
        anyhow::ensure!(store.server_for(id) == b_addr, "the ring did not change");
        for (what, result) in [
            ("get", store.get(id).await.map(|_| ())),
            ("set", store.set(id, &record_with(json!({}), hour())).await),
            ("update", store.update(id, &Patch::new()).await),
            ("destroy", store.destroy(id).await),
        ] {
            match result {
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    anyhow::ensure!(
                        e.target().is_some_and(|t| t.contains(&b_addr)),
                        "the error names the server"
                    );
                    anyhow::ensure!(!e.chain().contains(id.as_str()), "no id in the error");
                }
                other => anyhow::bail!(
                    "{what} on the stopped server: expected Unavailable, got {other:?}"
                ),
            }
        }
    }
    drop(a);
    Ok(())
}

async fn a_server_that_never_answers() -> anyhow::Result<()> {
    let real = MemcachedServer::start();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent = listener.local_addr()?.to_string();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let store = MemcachedStoreBuilder::new([real.addr(), silent.clone()])
        .timeout(Duration::from_secs(3))
        .open()
        .await?;
    let mut checked = 0;
    while checked < 3 {
        let id = SessionId::generate()?;
        if store.server_for(&id) != silent {
            continue;
        }
        match store.get(&id).await {
            Err(e) if e.kind() == ErrorKind::Timeout => checked += 1,
            other => anyhow::bail!("expected Timeout from a silent server, got {other:?}"),
        }
    }
    held.abort();
    Ok(())
}

/// A record whose item (key + encoded value + 96 bytes of header) is exactly `size` bytes.
fn record_of_item_size(prefix: &str, size: usize) -> Record {
    let base = record_with(json!({"pad": ""}), hour());
    let empty = serde_json::to_vec(&base).unwrap().len();
    let pad = size - 96 - prefix.len() - 32 - empty;
    let mut record = base;
    record.data.insert("pad".into(), json!("x".repeat(pad)));
    record
}

async fn item_limit_is_exact(servers: String) -> anyhow::Result<()> {
    let config = ns_config(&servers);
    let prefix = config.get_prefix().to_owned();
    let store = config.open().await?;
    let limit = sessionbank_store_memcached::DEFAULT_MAX_ITEM_BYTES;
    // The largest item we accept is one the server (-I 1m) accepts too, on either server.
    for _ in 0..4 {
        let id = SessionId::generate()?;
        let fits = record_of_item_size(&prefix, limit);
        store.set(&id, &fits).await?;
        anyhow::ensure!(store.get(&id).await?.as_ref() == Some(&fits), "read back");
        store
            .update(&id, &Patch::new().set("a", json!(1)))
            .await
            .map(|_| ())
            .or_else(|e| {
                anyhow::ensure!(
                    e.kind() == ErrorKind::TooLarge,
                    "one more key is too large: {e}"
                );
                Ok(())
            })?;
    }
    let id = SessionId::generate()?;
    let small = record_with(json!({"small": true}), hour());
    store.set(&id, &small).await?;
    let over = record_of_item_size(&prefix, limit + 1);
    for (what, result) in [
        ("set", store.set(&id, &over).await),
        ("create", store.create(&SessionId::generate()?, &over).await),
        (
            "update",
            store
                .update(&id, &Patch::new().set("pad", over.data["pad"].clone()))
                .await,
        ),
    ] {
        match result {
            Err(e) if e.kind() == ErrorKind::TooLarge => {}
            other => anyhow::bail!("{what} over the limit: expected TooLarge, got {other:?}"),
        }
    }
    anyhow::ensure!(
        store.get(&id).await?.as_ref() == Some(&small),
        "a refused write leaves the old session as it was"
    );
    Ok(())
}

async fn server_too_large_reply(servers: String) -> anyhow::Result<()> {
    // We believe the servers take 8 MiB; they take 1 MiB: the server's refusal is TooLarge too,
    // and the connection stays usable.
    let store = ns_config(&servers)
        .max_item_bytes(8 << 20)
        .pool_size(1)
        .open()
        .await?;
    let id = SessionId::generate()?;
    let big = record_with(json!({"pad": "y".repeat(2 << 20)}), hour());
    match store.set(&id, &big).await {
        Err(e) if e.kind() == ErrorKind::TooLarge => {}
        other => anyhow::bail!("expected TooLarge from the server, got {other:?}"),
    }
    let small = record_with(json!({"after": true}), hour());
    store.set(&id, &small).await?;
    anyhow::ensure!(
        store.get(&id).await?.as_ref() == Some(&small),
        "still works"
    );
    Ok(())
}

async fn long_expiries(servers: String) -> anyhow::Result<()> {
    let store = ns_config(&servers)
        .browser_idle(Duration::from_secs(40 * 86_400))
        .open()
        .await?;
    let far = record_with(json!({"far": 1}), Duration::from_secs(45 * 86_400));
    let id = SessionId::generate()?;
    store.set(&id, &far).await?;
    let browser =
        Record::new(Timestamp::now()).with_data(Data::from_value(json!({"b": 1})).unwrap());
    let bid = SessionId::generate()?;
    store.create(&bid, &browser).await?;
    let year_3000 = Timestamp::from_millis(32_503_680_000_000);
    let forever = Record::new(Timestamp::now()).expiring_at(year_3000);
    let fid = SessionId::generate()?;
    store.set(&fid, &forever).await?;
    // Past memcached's next clock tick: a relative exptime over 30 days would have been read
    // as a time in 1970, and the item would be gone by now.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    anyhow::ensure!(store.get(&id).await?.as_ref() == Some(&far), "45 days");
    anyhow::ensure!(
        store.get(&bid).await?.as_ref() == Some(&browser),
        "browser_idle 40 days"
    );
    anyhow::ensure!(
        store.get(&fid).await?.as_ref() == Some(&forever),
        "year 3000"
    );
    store
        .touch(
            &id,
            Some(Timestamp::now() + Duration::from_secs(60 * 86_400)),
        )
        .await?;
    anyhow::ensure!(store.get(&id).await?.is_some(), "touched to 60 days");
    Ok(())
}

async fn memcached_expires_items_itself(servers: String) -> anyhow::Result<()> {
    // A clock that never moves: reads would still show the record, so only memcached's own
    // expiry can make it disappear.
    let clock = ManualClock::starting_now();
    let store = ns_config(&servers)
        .clock(Arc::new(clock.clone()))
        .open()
        .await?;
    let now = Timestamp::now();
    let id = SessionId::generate()?;
    let record = Record::new(now).expiring_at(now + Duration::from_millis(1500));
    store.set(&id, &record).await?;
    anyhow::ensure!(store.get(&id).await?.is_some(), "live at first");
    tokio::time::sleep(Duration::from_secs(6)).await;
    anyhow::ensure!(
        store.get(&id).await?.is_none(),
        "memcached dropped the item after its exptime"
    );
    anyhow::ensure!(store.cleanup().await? == 0, "cleanup has nothing to do");
    Ok(())
}

async fn raw_set(addr: &str, key: &str, flags: u32, value: &[u8]) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let mut stream = BufReader::new(stream);
    let mut command = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
    command.extend_from_slice(value);
    command.extend_from_slice(b"\r\n");
    stream.get_mut().write_all(&command).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    anyhow::ensure!(line == "STORED\r\n", "raw set: {line:?}");
    Ok(())
}

async fn foreign_value_is_corrupt(servers: String) -> anyhow::Result<()> {
    let config = ns_config(&servers);
    let prefix = config.get_prefix().to_owned();
    let store = config.open().await?;
    let not_json = SessionId::generate()?;
    let other_flags = SessionId::generate()?;
    let key = |id: &SessionId| format!("{prefix}{}", id.as_str());
    raw_set(
        store.server_for(&not_json),
        &key(&not_json),
        1,
        b"{not json",
    )
    .await?;
    let valid = serde_json::to_vec(&record_with(json!({}), hour()))?;
    raw_set(
        store.server_for(&other_flags),
        &key(&other_flags),
        7,
        &valid,
    )
    .await?;
    for id in [&not_json, &other_flags] {
        for (what, result) in [
            ("get", store.get(id).await.map(|_| ())),
            ("update", store.update(id, &Patch::new()).await),
            ("touch", store.touch(id, None).await),
        ] {
            match result {
                Err(e) if e.kind() == ErrorKind::Corrupt => {
                    anyhow::ensure!(
                        !format!("{e:?} {}", e.chain()).contains(id.as_str()),
                        "no id"
                    );
                }
                other => anyhow::bail!("{what}: expected Corrupt, got {other:?}"),
            }
        }
        // set replaces it, destroy removes it.
        store
            .set(id, &record_with(json!({"ok": 1}), hour()))
            .await?;
        anyhow::ensure!(store.get(id).await?.is_some(), "set over a foreign value");
        store.destroy(id).await?;
    }
    Ok(())
}

async fn registry_opens(servers: String) -> anyhow::Result<()> {
    let (first, second) = servers.split_once(',').unwrap();
    let mut registry = Registry::with_memory();
    registry.register(sessionbank_core::BackendEntry::of::<MemcachedStoreBuilder>());
    let prefix = format!("r{}:", random_name());
    let url =
        format!("memcached://{first}?servers={second}&prefix={prefix}&timeout=3s&cleanup_time=10m");
    let store = registry.connect(&url).await?;
    assert_eq!(store.backend(), "memcached");
    assert!(store.janitor().is_none(), "native expiry: no janitor");
    let caps = store.capabilities();
    anyhow::ensure!(
        caps.native_expiry && !caps.list && !caps.owner_index && !caps.atomic_rename,
        "{caps:?}"
    );
    let id = SessionId::generate()?;
    store
        .set(&id, &record_with(json!({"r": 1}), hour()))
        .await?;
    anyhow::ensure!(
        store.get(&id).await?.is_some(),
        "works through the registry"
    );
    // The host-list form works through the registry too, in either order.
    let listed = registry
        .connect(&format!(
            "memcached://{second},{first}/?prefix={prefix}&cleanup_time=off"
        ))
        .await?;
    anyhow::ensure!(
        listed.get(&id).await?.is_some(),
        "memcached://b,a through the registry reaches the same sessions"
    );
    // The same prefix through the multi-server URL form sees the same sessions.
    let direct =
        MemcachedStore::connect(&format!("memcached://{second},{first}/?prefix={prefix}")).await?;
    anyhow::ensure!(
        direct.get(&id).await?.is_some(),
        "server order does not matter"
    );
    let err = registry
        .connect(&format!("memcached://{first}?colour=blue"))
        .await
        .unwrap_err();
    anyhow::ensure!(
        err.kind() == ErrorKind::Config && err.to_string().contains("colour"),
        "{err}"
    );
    let err = registry
        .connect(&format!("memcached://{first}?prefix=a%20b"))
        .await
        .unwrap_err();
    anyhow::ensure!(err.kind() == ErrorKind::Config, "{err}");
    let err = registry
        .connect("memcached://127.0.0.1:1")
        .await
        .unwrap_err();
    anyhow::ensure!(
        err.kind() == ErrorKind::Unavailable,
        "no server answers: {err}"
    );
    Ok(())
}

async fn rename_racing_destroy(servers: String) -> anyhow::Result<()> {
    let store = ns_config(&servers).open().await?;
    for _ in 0..20 {
        let old = SessionId::generate()?;
        let new = SessionId::generate()?;
        store
            .set(&old, &record_with(json!({"v": 1}), hour()))
            .await?;
        let (s1, s2) = (store.clone(), store.clone());
        let rename = tokio::spawn(async move { s1.rename(&old, &new).await });
        let destroy = tokio::spawn(async move { s2.destroy(&old).await });
        destroy.await??;
        match rename.await? {
            Ok(()) => {
                // The rename finished before the destroy reached the old id: new holds it.
                anyhow::ensure!(store.get(&new).await?.is_some(), "new holds the session");
            }
            Err(e) if e.kind() == ErrorKind::Gone => {
                anyhow::ensure!(
                    store.get(&new).await?.is_none(),
                    "a failed rename leaves nothing under new"
                );
            }
            Err(e) => anyhow::bail!("rename: {e}"),
        }
        anyhow::ensure!(
            store.get(&old).await?.is_none(),
            "the destroyed id stays gone"
        );
    }
    Ok(())
}

/// A rename racing 20 updates of the old id (issue 14, defect 4: the rename read without
/// `cas`, added the new id and deleted the old one, so an update acknowledged in between was
/// lost): every update that returned `Ok` is in the session under the id that holds it.
async fn rename_racing_updates(servers: String) -> anyhow::Result<()> {
    let store = ns_config(&servers).open().await?;
    for round in 0..10 {
        let old = SessionId::generate()?;
        let new = SessionId::generate()?;
        store
            .set(&old, &record_with(json!({"v": 1}), hour()))
            .await?;
        let mut updates = Vec::new();
        for i in 0..20 {
            let writer = store.clone();
            updates.push(tokio::spawn(async move {
                let key = format!("k{i}");
                let result = writer.update(&old, &Patch::new().set(&key, json!(i))).await;
                (key, result)
            }));
            if i == 10 {
                let renamer = store.clone();
                updates.push(tokio::spawn(async move {
                    let result = renamer.rename(&old, &new).await;
                    ("rename".to_owned(), result)
                }));
            }
        }
        let mut acknowledged = Vec::new();
        let mut renamed = None;
        for task in updates {
            let (key, result) = task.await?;
            if key == "rename" {
                renamed = Some(result);
            } else {
                match result {
                    Ok(()) => acknowledged.push(key),
                    Err(e) if e.kind() == ErrorKind::Gone => {} // after the rename: old is gone
                    Err(e) => anyhow::bail!("update {key}: {e}"),
                }
            }
        }
        let holder = match renamed.context("the rename ran")? {
            Ok(()) => {
                anyhow::ensure!(
                    store.get(&old).await?.is_none(),
                    "round {round}: old is gone"
                );
                new
            }
            Err(e) => anyhow::bail!("round {round}: rename: {e}"),
        };
        let record = store
            .get(&holder)
            .await?
            .context("the renamed session is live")?;
        for key in &acknowledged {
            anyhow::ensure!(
                record.data.get(key).is_some(),
                "round {round}: the acknowledged update of {key} was lost by the rename"
            );
        }
    }
    Ok(())
}

async fn sessions_spread(servers: String) -> anyhow::Result<()> {
    let store = ns_config(&servers).open().await?;
    let (first, second) = servers.split_once(',').unwrap();
    let mut counts = [0usize; 2];
    for _ in 0..200 {
        let id = SessionId::generate()?;
        let server = store.server_for(&id);
        counts[usize::from(server == second)] += 1;
        anyhow::ensure!(server == first || server == second, "{server}");
    }
    anyhow::ensure!(
        counts[0] > 50 && counts[1] > 50,
        "200 ids spread {counts:?}"
    );
    Ok(())
}

async fn cancelled_calls(servers: String) -> anyhow::Result<()> {
    // One connection per server, so every call reuses the connection a cancelled call used: a
    // half-read reply left in it would show up as another session's data.
    let store = ns_config(&servers).pool_size(1).open().await?;
    let ids: Vec<SessionId> = (0..8)
        .map(|_| SessionId::generate())
        .collect::<Result<_, _>>()?;
    let records: Vec<Record> = (0..8)
        .map(|i| record_with(json!({"i": i, "pad": "p".repeat(20_000 * i)}), hour()))
        .collect();
    for (id, record) in ids.iter().zip(&records) {
        store.set(id, record).await?;
    }
    let mut cancelled = 0;
    for round in 0..300u64 {
        let i = usize::try_from(round % 8)?;
        // Poll the call a few times (it writes the request, then reads part of the reply),
        // then drop it half-way.
        let mut call = Box::pin(store.get(&ids[i]));
        let mut outcome = futures::poll!(call.as_mut());
        for _ in 0..round % 5 {
            if outcome.is_ready() {
                break;
            }
            tokio::task::yield_now().await;
            outcome = futures::poll!(call.as_mut());
        }
        match outcome {
            std::task::Poll::Pending => {
                drop(call);
                cancelled += 1;
            }
            std::task::Poll::Ready(result) => {
                anyhow::ensure!(result?.as_ref() == Some(&records[i]), "round {round}");
            }
        }
        let j = (i + 3) % 8;
        let back = store.get(&ids[j]).await?;
        anyhow::ensure!(
            back.as_ref() == Some(&records[j]),
            "round {round}: another session's reply"
        );
    }
    anyhow::ensure!(cancelled > 0, "some calls were cancelled half-way");
    Ok(())
}
