//! Redis-specific tests, run in the conformance binary beside the shared suite.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use serde_json::json;
use sessionbank_core::{
    Data, ErrorKind, Patch, Record, Registry, SessionId, Store, StoreExt, Timestamp,
};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::random_name;
use sessionbank_testkit::servers::redis::RedisServer;

/// A multi-threaded runtime for one test.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<()> {
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
    libtest_mimic::Trial::test(format!("redis_specific::{name}"), move || {
        f().map_err(|e| libtest_mimic::Failed::from(format!("{e:#}")))
    })
}

/// A trial that runs `f` with its own copy of the server's URL.
fn url_trial<F, Fut>(url: &str, name: &str, f: F) -> libtest_mimic::Trial
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let url = url.to_owned();
    trial(name, move || block_on(f(url)))
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

/// A raw redis-rs connection, to look at what the store wrote.
pub(crate) async fn raw(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    Ok(client.get_multiplexed_async_connection().await?)
}

/// The tests that need one standalone server.
pub(crate) fn standalone_tests(server: &RedisServer) -> Vec<libtest_mimic::Trial> {
    let url = server.url();
    let mut tests = Vec::new();
    tests.push(url_trial(
        &url,
        "ttl_is_the_deadline_in_milliseconds",
        ttl_is_the_deadline,
    ));
    tests.push(url_trial(
        &url,
        "registry_entry_connects_and_rejects_bad_options",
        registry_entry,
    ));
    tests.push(url_trial(
        &url,
        "a_longer_prefix_is_another_store",
        longer_prefix,
    ));
    tests.push(url_trial(
        &url,
        "owner_sets_are_pruned_and_expire",
        owner_sets,
    ));
    tests.push(url_trial(
        &url,
        "paging_resumes_inside_a_scan_batch",
        paging,
    ));
    tests.push(url_trial(
        &url,
        "update_and_rename_keep_every_value_exactly",
        exact_values,
    ));
    tests.push(url_trial(
        &url,
        "hash_destroy_racing_50_updates_leaves_no_session",
        hash_destroy_races_updates,
    ));
    tests.push(url_trial(
        &url,
        "hash_update_of_a_missing_id_is_gone_and_its_zombie_expires",
        hash_zombie,
    ));
    tests.push(url_trial(
        &url,
        "hash_and_string_layouts_with_one_prefix_do_not_see_each_other",
        two_layouts,
    ));
    tests.push(url_trial(
        &url,
        "hash_ttl_is_the_deadline_and_follows_browser_use",
        hash_ttl,
    ));
    tests.push(trial(
        "hash_writes_to_a_replica_are_unavailable_not_backend_errors",
        || block_on(hash_on_a_replica()),
    ));
    tests.push(trial("layout_option_accepts_string_and_hash_only", || {
        block_on(layout_option())
    }));
    tests.push(trial("hash_update_is_one_transaction_without_lua", || {
        block_on(hash_one_transaction())
    }));
    tests.push(url_trial(
        &url,
        "malformed_stored_sessions_are_corrupt_errors_and_stay_as_they_are",
        malformed_values,
    ));
    tests.push(trial("coalesced_requests_share_round_trips", || {
        block_on(coalesced_requests_share_round_trips())
    }));
    tests.push(trial("update_is_one_round_trip", || {
        block_on(one_round_trip())
    }));
    tests.push(trial(
        "a_server_that_goes_away_gives_unavailable_not_a_hang",
        || block_on(server_goes_away()),
    ));
    tests.push(trial("reconnects_after_the_server_restarts", || {
        block_on(reconnects_after_restart())
    }));
    tests.push(trial(
        "connections_opens_that_many_and_spreads_requests",
        || block_on(several_connections()),
    ));
    tests.push(trial(
        "hostile_prefixes_and_bad_urls_are_config_errors",
        || block_on(hostile()),
    ));
    tests.push(trial("passwords_never_appear_in_errors_or_debug", || {
        block_on(passwords())
    }));
    tests
}

async fn store(url: &str) -> anyhow::Result<RedisStore> {
    let url = format!("{url}?prefix=sbx:{}:", random_name());
    RedisStore::connect(&url)
        .await
        .map_err(|e| anyhow!("connect: {}", e.chain()))
}

async fn ttl_is_the_deadline(url: String) -> anyhow::Result<()> {
    let store = store(&url).await?;
    let mut conn = raw(&url).await?;
    let id = SessionId::generate()?;
    let now = Timestamp::now();
    let deadline = now + hour();
    store
        .set(&id, &Record::new(now).expiring_at(deadline).owned_by("ada"))
        .await?;
    let key = format!("{}s:{}", store.prefix(), id.as_str());
    let at = expire_time(&mut conn, &key).await?;
    ensure!(
        at == deadline.as_millis(),
        "PEXPIRETIME {at} vs deadline {}",
        deadline.as_millis()
    );
    let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
    ensure!(kind == "string", "a session is a string, got {kind}");

    // A browser session's TTL is last_access + browser_idle (one day by default).
    let browser = SessionId::generate()?;
    let mut record = Record::new(now);
    record.last_access = now - Duration::from_secs(60);
    store.set(&browser, &record).await?;
    let key = format!("{}s:{}", store.prefix(), browser.as_str());
    let at = expire_time(&mut conn, &key).await?;
    let want = (record.last_access + Duration::from_secs(86_400)).as_millis();
    ensure!(at == want, "browser session PEXPIRETIME {at} vs {want}");
    ensure!(
        store.get(&browser).await? == Some(record),
        "browser session round trip"
    );

    // update moves a browser session's deadline with last_access; touch sets a new one.
    store
        .update(&browser, &Patch::new().set("k", json!(1)))
        .await?;
    let back = store
        .get(&browser)
        .await?
        .context("browser session after update")?;
    let at = expire_time(&mut conn, &key).await?;
    ensure!(
        at == (back.last_access + Duration::from_secs(86_400)).as_millis(),
        "update moved the browser deadline"
    );
    let later = now + 2 * hour();
    store.touch(&browser, Some(later)).await?;
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == later.as_millis(), "touch set the TTL");

    // The owner set expires no earlier than its session.
    let owner_key = format!("{}o:{{ada}}", store.prefix());
    let at = expire_time(&mut conn, &owner_key).await?;
    ensure!(
        at >= deadline.as_millis() - 1000,
        "owner set expires at {at}, session at {}",
        deadline.as_millis()
    );
    ensure!(store.cleanup().await? == 0, "cleanup has nothing to do");
    Ok(())
}

async fn registry_entry(url: String) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<
        sessionbank_store_redis::RedisStoreBuilder,
    >());
    let prefix = format!("sbr:{}:", random_name());
    let handle = registry
        .connect(&format!(
            "{url}?prefix={prefix}&response_timeout=3s&connect_timeout=2s&browser_idle=1h"
        ))
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    ensure!(handle.backend() == "redis");
    ensure!(handle.janitor().is_none(), "native expiry: no janitor");
    ensure!(handle.capabilities().native_expiry && handle.capabilities().atomic_rename);
    let id = SessionId::generate()?;
    handle.set(&id, &Record::new(Timestamp::now())).await?;
    ensure!(handle.length().await? == 1);
    let err = registry
        .connect(&format!("{url}?colour=blue"))
        .await
        .err()
        .context("an unknown option must fail")?;
    ensure!(
        err.kind() == ErrorKind::Config && err.to_string().contains("colour"),
        "{err}"
    );
    let err = registry
        .connect(&format!("{url}?response_timeout=soon"))
        .await
        .err()
        .context("a bad duration must fail")?;
    ensure!(err.kind() == ErrorKind::Config, "{err}");
    // The registry's URL parser refuses comma-separated hosts; `nodes=` carries more seeds.
    let port = url
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches("/0");
    let err = registry
        .connect(&format!("redis://127.0.0.1:{port}/0?nodes=127.0.0.1:1"))
        .await
        .err()
        .context("nodes= on a redis:// URL must fail")?;
    ensure!(err.kind() == ErrorKind::Config, "{err}");
    Ok(())
}

async fn longer_prefix(url: String) -> anyhow::Result<()> {
    let base = format!("sbp:{}:", random_name());
    let short = RedisStore::connect(&format!("{url}?prefix={base}")).await?;
    let long = RedisStore::connect(&format!("{url}?prefix={base}s:")).await?;
    let longer = RedisStore::connect(&format!("{url}?prefix={base}o:")).await?;
    let rec = Record::new(Timestamp::now())
        .expiring_at(Timestamp::now() + hour())
        .owned_by("x");
    short.set(&SessionId::generate()?, &rec).await?;
    long.set(&SessionId::generate()?, &rec).await?;
    longer.set(&SessionId::generate()?, &rec).await?;
    ensure!(
        short.length().await? == 1,
        "the short prefix counts only its own"
    );
    ensure!(short.clear().await? == 1);
    ensure!(
        long.length().await? == 1,
        "clear of the short prefix left the longer one alone"
    );
    ensure!(longer.length().await? == 1);
    ensure!(longer.owned_by("x").await?.len() == 1, "and its owner sets");
    ensure!(long.owned_by("x").await?.len() == 1);
    long.clear().await?;
    longer.clear().await?;
    Ok(())
}

async fn owner_sets(url: String) -> anyhow::Result<()> {
    let store = store(&url).await?;
    let mut conn = raw(&url).await?;
    let now = Timestamp::now();
    let short = SessionId::generate()?;
    let long = SessionId::generate()?;
    store
        .set(
            &short,
            &Record::new(now)
                .expiring_at(now + Duration::from_millis(300))
                .owned_by("bob"),
        )
        .await?;
    store
        .set(
            &long,
            &Record::new(now).expiring_at(now + hour()).owned_by("bob"),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let owner_key = format!("{}o:{{bob}}", store.prefix());
    let before: usize = redis::cmd("SCARD")
        .arg(&owner_key)
        .query_async(&mut conn)
        .await?;
    ensure!(
        before == 2,
        "the expired id is still in the set until read, got {before}"
    );
    let owned = store.owned_by("bob").await?;
    ensure!(
        owned.len() == 1 && owned[0].0 == long,
        "only the live session is listed"
    );
    let after: usize = redis::cmd("SCARD")
        .arg(&owner_key)
        .query_async(&mut conn)
        .await?;
    ensure!(after == 1, "reading pruned the expired id, left {after}");
    // Hostile owner names are just bytes in one key.
    for owner in ["}{", "*", "a b\nc", "{x}", ""] {
        let id = SessionId::generate()?;
        store
            .set(
                &id,
                &Record::new(now).expiring_at(now + hour()).owned_by(owner),
            )
            .await?;
        let owned = store.owned_by(owner).await?;
        ensure!(owned.len() == 1 && owned[0].0 == id, "owner {owner:?}");
    }
    store.clear().await?;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.prefix()))
        .query_async(&mut conn)
        .await?;
    ensure!(
        left.is_empty(),
        "clear removed the owner sets too, left {}",
        left.len()
    );
    Ok(())
}

async fn paging(url: String) -> anyhow::Result<()> {
    let store = store(&url).await?;
    let mut written = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let id = SessionId::generate()?;
        store
            .set(
                &id,
                &Record::new(Timestamp::now()).expiring_at(Timestamp::now() + hour()),
            )
            .await?;
        written.insert(id);
    }
    for limit in [1, 3, 49, 50, 51] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store.all(cursor.as_deref(), limit).await?;
            ensure!(page.sessions.len() <= limit);
            seen.extend(page.sessions.into_iter().map(|(id, _)| id));
            pages += 1;
            ensure!(pages < 1000, "paging does not end");
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().copied().collect();
        ensure!(unique.len() == seen.len(), "limit {limit}: duplicates");
        ensure!(
            unique == written,
            "limit {limit}: listed {} of {}",
            unique.len(),
            written.len()
        );
    }
    let err = store
        .all(Some("garbage"), 10)
        .await
        .err()
        .context("a bad cursor fails")?;
    ensure!(err.kind() == ErrorKind::InvalidInput);
    store.clear().await?;
    Ok(())
}

async fn exact_values(url: String) -> anyhow::Result<()> {
    let store = store(&url).await?;
    let tricky = json!({
        "empty_list": [], "empty_obj": {}, "big": 9_007_199_254_740_993_u64, "neg": -12_345_678_901_234_i64,
        "float": 0.1, "tiny": 1e-300, "": "empty key", "3:ab": "4:abcd", "colon:": ":", "uni": "žluť 🐴\n\u{0}",
        "nested": {"a": [[], {}, null, true]}
    });
    let now = Timestamp::now();
    let id = SessionId::generate()?;
    let record = Record::new(now)
        .with_data(Data::from_value(tricky.clone()).unwrap_or_default())
        .expiring_at(now + hour())
        .owned_by("own:3:er");
    store.set(&id, &record).await?;
    ensure!(
        store.get(&id).await? == Some(record.clone()),
        "set/get round trip"
    );
    let patch = Patch::new()
        .set("added", json!({"x": []}))
        .set("3:ab", json!(18_446_744_073_709_551_615_u64))
        .unset("colon:");
    store.update(&id, &patch).await?;
    let mut expected = record.clone();
    patch.apply_to(&mut expected, now);
    let back = store.get(&id).await?.context("after update")?;
    ensure!(
        back.data == expected.data,
        "update kept every value: {:?}",
        back.data
    );
    ensure!(back.owner == expected.owner && back.expires_at == expected.expires_at);
    let new = SessionId::generate()?;
    store.rename(&id, &new).await?;
    let moved = store.get(&new).await?.context("after rename")?;
    ensure!(moved.data == expected.data && moved.owner == expected.owner);
    ensure!(store.get(&id).await?.is_none());
    ensure!(store.owned_by("own:3:er").await?.len() == 1);
    store.clear().await?;
    Ok(())
}

/// Values under a session key that the store did not write (or that were damaged): every
/// operation that reads one answers `Corrupt` at once (no script loops until Redis's script
/// timeout, as the first update script did on a negative length) and leaves it untouched.
async fn malformed_values(url: String) -> anyhow::Result<()> {
    let store = store(&url).await?;
    let mut conn = raw(&url).await?;
    let header = "3:sb113:170000000000013:170000000000013:18000000000000:";
    let values = [
        String::new(),
        "x".to_owned(),
        "3:sb1".to_owned(),
        "3:sb213:170000000000013:170000000000013:18000000000000:".to_owned(),
        format!("{header}6:visits1:"),
        format!("{header}-9:visits1:5"),
        format!("{header}1.5:ab1:5"),
        format!("{header}a:visits1:5"),
        format!("{header}6:visits99:5"),
    ];
    for value in values {
        let id = SessionId::generate()?;
        let key = format!("{}s:{}", store.prefix(), id.as_str());
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(&value)
            .arg("EX")
            .arg(600)
            .query_async(&mut conn)
            .await?;
        let started = Instant::now();
        let get = store.get(&id).await;
        let update = store
            .update(&id, &Patch::new().set("visits", json!(6)))
            .await;
        let touch = store.touch(&id, Some(Timestamp::now() + hour())).await;
        let renamed = store.rename(&id, &SessionId::generate()?).await;
        for (what, result) in [
            ("get", get.map(|_| ())),
            ("update", update),
            ("touch", touch),
            ("rename", renamed),
        ] {
            let err = result
                .err()
                .with_context(|| format!("{what} of {value:?} must fail"))?;
            ensure!(
                err.kind() == ErrorKind::Corrupt,
                "{what} of {value:?}: {}",
                err.chain()
            );
        }
        ensure!(
            started.elapsed() < Duration::from_secs(2),
            "{value:?}: the store answered in {:?}",
            started.elapsed()
        );
        let kept: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        ensure!(
            kept.as_deref() == Some(value.as_str()),
            "{value:?} was changed to {kept:?}"
        );
    }
    Ok(())
}

async fn one_round_trip() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let url = server.url();
    let store = store(&url).await?;
    let mut conn = raw(&url).await?;
    let id = SessionId::generate()?;
    let now = Timestamp::now();
    store
        .set(&id, &Record::new(now).expiring_at(now + hour()))
        .await?;
    // The first use loads the script (NOSCRIPT, then SCRIPT LOAD); later ones are one EVALSHA.
    store.update(&id, &Patch::new()).await?;
    reset_stats(&mut conn).await?;
    store
        .update(&id, &Patch::new().set("a", json!(1)).unset("b"))
        .await?;
    store.touch(&id, Some(now + 2 * hour())).await?;
    store.get(&id).await?;
    let stats = command_stats(&mut conn).await?;
    let calls = |name: &str| command_calls(&stats, name);
    ensure!(
        calls("evalsha") == 2,
        "update and touch: one EVALSHA each\n{stats}"
    );
    ensure!(
        calls("get") == 3,
        "get: one GET (and one inside each script)\n{stats}"
    );
    ensure!(
        calls("eval") == 0 && calls("script") == 0,
        "the scripts were cached\n{stats}"
    );
    let others: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .filter(|l| {
            !["config", "info", "evalsha", "get:", "set:"]
                .iter()
                .any(|c| l.starts_with(&format!("cmdstat_{c}")))
        })
        .collect();
    ensure!(others.is_empty(), "no other command ran: {others:?}");
    // set is one SET; create one SET NX.
    reset_stats(&mut conn).await?;
    store
        .set(&id, &Record::new(now).expiring_at(now + hour()))
        .await?;
    store
        .create(&SessionId::generate()?, &Record::new(now))
        .await?;
    let stats = command_stats(&mut conn).await?;
    let calls = |name: &str| command_calls(&stats, name);
    ensure!(
        calls("set") == 2 && calls("evalsha") == 0,
        "set and create: one SET each\n{stats}"
    );
    // A server that lost its script cache (a restart, `SCRIPT FLUSH`): the update answers
    // NOSCRIPT to EVALSHA, runs as one EVAL (which caches it), and the next is an EVALSHA again.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await?;
    reset_stats(&mut conn).await?;
    store
        .update(&id, &Patch::new().set("after_flush", json!(1)))
        .await?;
    store
        .update(&id, &Patch::new().set("after_flush", json!(2)))
        .await?;
    let stats = command_stats(&mut conn).await?;
    let calls = |name: &str| command_calls(&stats, name);
    ensure!(
        calls("eval") == 1 && calls("evalsha") == 2 && calls("script") == 0,
        "after SCRIPT FLUSH: EVALSHA (NOSCRIPT), EVAL, then EVALSHA\n{stats}"
    );
    let back = store.get(&id).await?.context("after the flush")?;
    ensure!(
        back.data.get("after_flush") == Some(&json!(2)),
        "the updates after the flush applied: {:?}",
        back.data
    );
    drop(server);
    Ok(())
}

/// Through the registry (which wraps the store in `Coalescing` unless `coalesce=false`): twenty
/// updates of one session started together are one EVALSHA for the first and one for the
/// nineteen that waited for it, and twenty gets are two GETs; without coalescing, twenty each.
async fn coalesced_requests_share_round_trips() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let mut conn = raw(&server.url()).await?;
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<
        sessionbank_store_redis::RedisStoreBuilder,
    >());
    for (options, round_trips) in [("", 2), ("&coalesce=false", 20)] {
        let store = registry
            .connect(&format!(
                "{}?prefix=coalesce:{round_trips}:{options}",
                server.url()
            ))
            .await?;
        let id = SessionId::generate()?;
        let now = Timestamp::now();
        store
            .set(&id, &Record::new(now).expiring_at(now + hour()))
            .await?;
        store.update(&id, &Patch::new()).await?; // loads the script
        reset_stats(&mut conn).await?;
        // `join_all` polls every future once before any can finish: the first update is in
        // flight while the other nineteen arrive.
        let patches: Vec<_> = (0..20)
            .map(|i| Patch::new().set(format!("k{i}"), json!(i)))
            .collect();
        for result in
            futures::future::join_all(patches.iter().map(|patch| store.update(&id, patch))).await
        {
            result?;
        }
        let stats = command_stats(&mut conn).await?;
        ensure!(
            command_calls(&stats, "evalsha") == round_trips,
            "{options:?}: {round_trips} EVALSHA for twenty updates\n{stats}"
        );
        reset_stats(&mut conn).await?;
        let reads = futures::future::join_all((0..20).map(|_| store.get(&id))).await;
        let stats = command_stats(&mut conn).await?;
        ensure!(
            command_calls(&stats, "get") == round_trips,
            "{options:?}: {round_trips} GET for twenty gets\n{stats}"
        );
        for read in reads {
            let record = read?.context("the session is live")?;
            let missing: Vec<_> = (0..20)
                .filter(|i| record.data.get(&format!("k{i}")) != Some(&json!(i)))
                .collect();
            ensure!(missing.is_empty(), "{options:?}: lost keys {missing:?}");
        }
    }
    // `coalesce` is the registry's option: the store's own `connect` opens the bare store, so it
    // refuses the option instead of ignoring it.
    let err = RedisStore::connect(&format!("{}?coalesce=true", server.url()))
        .await
        .err()
        .context("RedisStore::connect must refuse `coalesce`")?;
    ensure!(
        err.kind() == ErrorKind::Config && err.to_string().contains("coalesce"),
        "{err}"
    );
    drop(server);
    Ok(())
}

async fn server_goes_away() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let url = format!("{}?response_timeout=2s&connect_timeout=1s", server.url());
    let store = RedisStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.set(&id, &Record::new(Timestamp::now())).await?;
    drop(server);
    let started = Instant::now();
    for _ in 0..3 {
        let err = store
            .get(&id)
            .await
            .err()
            .context("get on a stopped server must fail")?;
        ensure!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "got {}",
            err.chain()
        );
        ensure!(err.backend() == "redis");
    }
    ensure!(
        started.elapsed() < Duration::from_secs(60),
        "errors come in bounded time"
    );
    // Connecting to nothing fails the same way.
    let port = sessionbank_testkit::servers::free_port();
    let err = RedisStore::connect(&format!("redis://127.0.0.1:{port}/0?connect_timeout=1s"))
        .await
        .err()
        .context("connect to a closed port must fail")?;
    ensure!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "got {}",
        err.chain()
    );
    Ok(())
}

async fn reconnects_after_restart() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let port = server.port();
    let url = format!("{}?response_timeout=2s&connect_timeout=1s", server.url());
    let store = RedisStore::connect(&url).await?;
    let id = SessionId::generate()?;
    store.set(&id, &Record::new(Timestamp::now())).await?;
    drop(server);
    // Down: every request fails with a retryable error (connection refused, quickly).
    for _ in 0..5 {
        let err = store
            .get(&id)
            .await
            .err()
            .context("get on a stopped server")?;
        ensure!(
            matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
            "got {}",
            err.chain()
        );
    }
    // Back on the same port (empty: persistence is off): the same store works again.
    let server = RedisServer::start_on_port(port, &[]);
    let started = Instant::now();
    let recovered = loop {
        match store.set(&id, &Record::new(Timestamp::now())).await {
            Ok(()) => break started.elapsed(),
            Err(e) if started.elapsed() > Duration::from_secs(10) => {
                return Err(anyhow!("not recovered after 10 s: {}", e.chain()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    ensure!(
        store.get(&id).await?.is_some(),
        "the write after recovery reads back"
    );
    eprintln!("recovered {recovered:?} after the restart");
    drop(server);
    Ok(())
}

/// `connected_clients` of the server.
async fn clients(url: &str) -> anyhow::Result<i64> {
    let mut conn = raw(url).await?;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse::<i64>().ok())
        .map(|n| n - 1)
        .context("INFO clients has connected_clients")
}

async fn several_connections() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let before = clients(&server.url()).await?;
    let store = RedisStore::connect(&format!("{}?connections=3", server.url())).await?;
    ensure!(
        clients(&server.url()).await? - before == 3,
        "connections=3 opens three connections"
    );
    // Concurrent per-key updates over the three connections all land.
    let id = SessionId::generate()?;
    store.create(&id, &Record::new(Timestamp::now())).await?;
    let writes = (0..30).map(|i| {
        let store = store.clone();
        async move {
            store
                .update(
                    &id,
                    &Patch::new().set(format!("k{i}"), serde_json::json!(i)),
                )
                .await
        }
    });
    for result in futures::future::join_all(writes).await {
        result?;
    }
    let record = store.get(&id).await?.context("the session is there")?;
    ensure!(
        record.data.len() == 30,
        "every update landed: {}",
        record.data.len()
    );
    for bad in ["connections=0", "connections=65", "connections=many"] {
        let err = RedisStore::connect(&format!("{}?{bad}", server.url()))
            .await
            .err()
            .context("a bad connections value is refused")?;
        ensure!(err.kind() == ErrorKind::Config, "{bad}: {}", err.chain());
    }
    let err = RedisStore::connect("redis+cluster://127.0.0.1:1,127.0.0.1:2?connections=2")
        .await
        .err()
        .context("connections on a cluster is refused")?;
    ensure!(
        err.kind() == ErrorKind::Config && err.to_string().contains("connections"),
        "{}",
        err.chain()
    );
    drop(server);
    Ok(())
}

async fn hostile() -> anyhow::Result<()> {
    for prefix in ["*", "a%7Bb%7D", "", "a%20b", "x%5B"] {
        let err = RedisStore::connect(&format!("redis://127.0.0.1:1/0?prefix={prefix}"))
            .await
            .err()
            .with_context(|| format!("prefix {prefix:?} must be refused"))?;
        ensure!(
            err.kind() == ErrorKind::Config,
            "prefix {prefix:?}: {}",
            err.chain()
        );
    }
    for url in [
        "redis://127.0.0.1:1/notanumber",
        "redis://127.0.0.1:1/0/1",
        "redis://127.0.0.1:99999/0",
        "redis+cluster://127.0.0.1:1/3",
        "redis+sentinel://127.0.0.1:1",
        "redis://127.0.0.1:1,127.0.0.1:2/0",
        // TLS options: only on rediss://, well-formed, not both, and a CA file that exists.
        "redis://127.0.0.1:1/0?tls_ca=/etc/hostname",
        "redis://127.0.0.1:1/0?tls_insecure=true",
        "rediss://127.0.0.1:1/0?tls_insecure=maybe",
        "rediss://127.0.0.1:1/0?tls_ca=",
        "rediss://127.0.0.1:1/0?tls_ca=/etc/hostname&tls_insecure=true",
        "rediss://127.0.0.1:1/0?tls_ca=/nonexistent/sessionbank-ca.pem",
        "redis+cluster://127.0.0.1:1?tls_insecure=true",
    ] {
        let err = RedisStore::connect(url)
            .await
            .err()
            .with_context(|| format!("{url} must be refused"))?;
        ensure!(err.kind() == ErrorKind::Config, "{url}: {}", err.chain());
    }
    Ok(())
}

async fn passwords() -> anyhow::Result<()> {
    let port = sessionbank_testkit::servers::free_port();
    let url = format!("redis://user:hunter2secret@127.0.0.1:{port}/0?connect_timeout=1s");
    let builder = sessionbank_store_redis::RedisStoreBuilder::parse(&url)?;
    ensure!(!format!("{builder:?}").contains("hunter2secret"));
    let err = builder.open().await.err().context("nothing listens")?;
    let text = format!("{} {:?} {}", err, err, err.chain());
    ensure!(
        !text.contains("hunter2secret"),
        "the password leaked: {text}"
    );
    ensure!(text.contains("***"), "the target is shown redacted: {text}");
    Ok(())
}

/// Some data of several JSON types.
pub(crate) fn data() -> Data {
    Data::from_value(json!({"user": "ada", "n": 1, "list": [], "obj": {}})).unwrap_or_default()
}

/// Reads every session through `stream_all`.
pub(crate) async fn count_all(store: &RedisStore) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let all: Vec<_> = store.stream_all(100).try_collect().await?;
    Ok(all.len())
}

async fn hash_store(url: &str, prefix: &str) -> anyhow::Result<RedisStore> {
    RedisStore::connect(&format!("{url}?prefix={prefix}&layout=hash"))
        .await
        .map_err(|e| anyhow!("connect: {}", e.chain()))
}

/// Every key of `prefix` and its PTTL.
async fn keys_and_ttls(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<Vec<(String, i64)>> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(conn).await?;
        out.push((key, ttl));
    }
    Ok(out)
}

/// `destroy` races 50 updates (some moving the expiry): afterwards the session is gone for
/// good, and whatever hash the late updates left has a TTL of 10 s at most.
async fn hash_destroy_races_updates(url: String) -> anyhow::Result<()> {
    let prefix = format!("sbh:{}:", random_name());
    let store = hash_store(&url, &prefix).await?;
    let mut conn = raw(&url).await?;
    for round in 0..5 {
        let id = SessionId::generate()?;
        let now = Timestamp::now();
        store
            .create(
                &id,
                &Record::new(now).expiring_at(now + hour()).owned_by("ada"),
            )
            .await?;
        let updates = (0..50).map(|i| {
            let store = store.clone();
            async move {
                let mut patch = Patch::new().set(format!("k{i}"), json!(i));
                if i % 3 == 0 {
                    patch.expires_at = Some(Some(Timestamp::now() + 2 * hour()));
                }
                if i % 7 == 0 {
                    patch.expires_at = Some(None);
                }
                store.update(&id, &patch).await
            }
        });
        let destroy = {
            let store = store.clone();
            async move {
                tokio::time::sleep(Duration::from_micros(200 * round)).await;
                store.destroy(&id).await
            }
        };
        let (results, destroyed) =
            futures::future::join(futures::future::join_all(updates), destroy).await;
        destroyed?;
        for result in results {
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Gone => {}
                Err(e) => return Err(anyhow!("an update failed: {}", e.chain())),
            }
        }
        ensure!(store.get(&id).await?.is_none(), "round {round}: destroyed");
        ensure!(
            store
                .update(&id, &Patch::new().set("late", json!(1)))
                .await
                .err()
                .map(|e| e.kind())
                == Some(ErrorKind::Gone),
            "round {round}: an update afterwards is Gone"
        );
        ensure!(store.get(&id).await?.is_none());
        ensure!(
            store.length().await? == 0,
            "round {round}: no session counted"
        );
        ensure!(store.owned_by("ada").await?.is_empty());
        for (key, ttl) in keys_and_ttls(&mut conn, &prefix).await? {
            if key.contains(":h:") {
                ensure!(
                    (0..=10_000).contains(&ttl),
                    "round {round}: {key} left with PTTL {ttl}"
                );
            }
        }
    }
    store.clear().await?;
    Ok(())
}

/// `update` and `touch` of an id that never existed: `Gone`, nothing readable, and the hash
/// they wrote (a zombie) has a TTL of 10 s at most, even after an expiry-moving update met it.
async fn hash_zombie(url: String) -> anyhow::Result<()> {
    let prefix = format!("sbz:{}:", random_name());
    let store = hash_store(&url, &prefix).await?;
    let mut conn = raw(&url).await?;
    let id = SessionId::generate()?;
    let key = format!("{prefix}h:{}", id.as_str());
    let err = store
        .update(&id, &Patch::new().set("a", json!(1)))
        .await
        .err()
        .context("an update of a missing id fails")?;
    ensure!(err.kind() == ErrorKind::Gone, "{}", err.chain());
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await?;
    ensure!((1..=10_000).contains(&ttl), "the zombie's PTTL is {ttl}");
    // A second update that moves the expiry meets the zombie (which has a TTL, so
    // PEXPIREAT … XX applies): the TTL goes back to 10 s at most.
    let far = Timestamp::now() + 5 * hour();
    let err = store
        .touch(&id, Some(far))
        .await
        .err()
        .context("a touch of a missing id fails")?;
    ensure!(err.kind() == ErrorKind::Gone, "{}", err.chain());
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await?;
    ensure!((1..=10_000).contains(&ttl), "after touch, PTTL {ttl}");
    let mut patch = Patch::new().set("b", json!(2));
    patch.expires_at = Some(None);
    patch.owner = Some(Some("eve".to_owned()));
    ensure!(store.update(&id, &patch).await.err().map(|e| e.kind()) == Some(ErrorKind::Gone));
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await?;
    ensure!(
        (1..=10_000).contains(&ttl),
        "after a browser patch, PTTL {ttl}"
    );
    // Invisible to every read.
    ensure!(store.get(&id).await?.is_none());
    ensure!(store.length().await? == 0);
    ensure!(count_all(&store).await? == 0);
    ensure!(store.owned_by("eve").await?.is_empty());
    // `create` over the zombie succeeds and inherits none of its fields.
    let now = Timestamp::now();
    store
        .create(&id, &Record::new(now).expiring_at(now + hour()))
        .await?;
    let record = store.get(&id).await?.context("created over the zombie")?;
    ensure!(
        record.data.is_empty(),
        "nothing inherited: {:?}",
        record.data
    );
    ensure!(store.length().await? == 1);
    // And `create` on the live id is refused.
    let err = store
        .create(&id, &Record::new(now))
        .await
        .err()
        .context("create on a live id")?;
    ensure!(err.kind() == ErrorKind::AlreadyExists);
    // A zombie is removed by clear but not counted.
    let other = SessionId::generate()?;
    let _ = store.update(&other, &Patch::new()).await;
    ensure!(
        store.clear().await? == 1,
        "clear counts the session, not the zombie"
    );
    ensure!(keys_and_ttls(&mut conn, &prefix).await?.is_empty());
    Ok(())
}

/// A string store and a hash store with one prefix on one server: each sees only its own
/// sessions and owner sets, and `clear` of one leaves the other.
async fn two_layouts(url: String) -> anyhow::Result<()> {
    let prefix = format!("sbl:{}:", random_name());
    let string = RedisStore::connect(&format!("{url}?prefix={prefix}&layout=string")).await?;
    let hash = hash_store(&url, &prefix).await?;
    let now = Timestamp::now();
    let id = SessionId::generate()?;
    let rec = |v: i64| {
        Record::new(now)
            .with_data(Data::from_value(json!({"v": v})).unwrap_or_default())
            .expiring_at(now + hour())
            .owned_by("ada")
    };
    string.set(&id, &rec(1)).await?;
    ensure!(
        hash.get(&id).await?.is_none(),
        "hash does not read the string"
    );
    ensure!(
        hash.update(&id, &Patch::new())
            .await
            .err()
            .map(|e| e.kind())
            == Some(ErrorKind::Gone)
    );
    hash.create(&id, &rec(2)).await?;
    for _ in 0..3 {
        hash.set(&SessionId::generate()?, &rec(3)).await?;
    }
    ensure!(string.get(&id).await?.context("string")?.data["v"] == 1);
    ensure!(hash.get(&id).await?.context("hash")?.data["v"] == 2);
    ensure!(string.length().await? == 1, "string counts its own");
    ensure!(hash.length().await? == 4, "hash counts its own");
    ensure!(count_all(&string).await? == 1 && count_all(&hash).await? == 4);
    ensure!(string.owned_by("ada").await?.len() == 1);
    ensure!(hash.owned_by("ada").await?.len() == 4);
    // Reading each owner set again (which prunes dead members) still lists each side's own.
    ensure!(string.owned_by("ada").await?.len() == 1);
    string.destroy(&id).await?;
    ensure!(
        hash.get(&id).await?.is_some(),
        "destroy of one layout leaves the other"
    );
    ensure!(hash.owned_by("ada").await?.len() == 4);
    string.set(&id, &rec(1)).await?;
    ensure!(string.clear().await? == 1);
    ensure!(hash.length().await? == 4 && hash.owned_by("ada").await?.len() == 4);
    ensure!(hash.clear().await? == 4);
    let mut conn = raw(&url).await?;
    ensure!(
        keys_and_ttls(&mut conn, &prefix).await?.is_empty(),
        "both cleared everything"
    );
    Ok(())
}

/// The hash's TTL is the deadline; a keep-expiry update of a browser session moves it; the
/// key is a hash with the documented fields.
async fn hash_ttl(url: String) -> anyhow::Result<()> {
    let prefix = format!("sbt:{}:", random_name());
    let store = hash_store(&url, &prefix).await?;
    let mut conn = raw(&url).await?;
    let now = Timestamp::now();
    let id = SessionId::generate()?;
    let deadline = now + hour();
    store
        .set(
            &id,
            &Record::new(now)
                .with_data(data())
                .expiring_at(deadline)
                .owned_by("ada"),
        )
        .await?;
    let key = format!("{prefix}h:{}", id.as_str());
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == deadline.as_millis(), "PEXPIRETIME {at}");
    let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
    ensure!(kind == "hash", "a session is a hash, got {kind}");
    let fields: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut conn)
        .await?;
    ensure!(fields["c"] == now.as_millis().to_string());
    ensure!(fields["e"] == deadline.as_millis().to_string());
    ensure!(fields["o"] == "=ada" && fields[".user"] == "\"ada\"" && fields[".list"] == "[]");
    // A keep-expiry update of a dated session leaves its TTL alone.
    store.update(&id, &Patch::new().set("x", json!(1))).await?;
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == deadline.as_millis(), "a dated TTL stays: {at}");

    // A browser session: TTL last_access + browser_idle, moved by every update.
    let browser = SessionId::generate()?;
    let mut record = Record::new(now);
    record.last_access = now - Duration::from_secs(60);
    store.set(&browser, &record).await?;
    let key = format!("{prefix}h:{}", browser.as_str());
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == (record.last_access + Duration::from_secs(86_400)).as_millis());
    ensure!(store.get(&browser).await? == Some(record));
    store
        .update(&browser, &Patch::new().set("k", json!(1)))
        .await?;
    let back = store.get(&browser).await?.context("after update")?;
    let at = expire_time(&mut conn, &key).await?;
    ensure!(
        at == (back.last_access + Duration::from_secs(86_400)).as_millis(),
        "update moved the browser deadline"
    );
    let later = now + 2 * hour();
    store.touch(&browser, Some(later)).await?;
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == later.as_millis(), "touch set the TTL");
    ensure!(store.get(&browser).await?.context("touched")?.expires_at == Some(later));
    store.touch(&browser, None).await?;
    let back = store
        .get(&browser)
        .await?
        .context("made a browser session")?;
    ensure!(back.expires_at.is_none());
    let at = expire_time(&mut conn, &key).await?;
    ensure!(at == (back.last_access + Duration::from_secs(86_400)).as_millis());
    // A touch into the past ends the session.
    store
        .touch(&browser, Some(now - Duration::from_secs(1)))
        .await?;
    ensure!(store.get(&browser).await?.is_none());
    // A large session: `create` writes its fields in chunks (Lua's unpack has a limit), and
    // `rename` moves it whole.
    let big = SessionId::generate()?;
    let mut data = serde_json::Map::new();
    for i in 0..450 {
        data.insert(format!("key{i}"), json!({"i": i, "s": "x".repeat(i % 7)}));
    }
    let record = Record::new(now)
        .with_data(Data::from(data))
        .expiring_at(now + hour());
    store.create(&big, &record).await?;
    ensure!(store.get(&big).await?.as_ref() == Some(&record), "450 keys");
    let renamed = SessionId::generate()?;
    store.rename(&big, &renamed).await?;
    let back = store.get(&renamed).await?.context("renamed")?;
    ensure!(back.data == record.data && back.expires_at == record.expires_at);
    store.clear().await?;
    Ok(())
}

async fn layout_option() -> anyhow::Result<()> {
    use sessionbank_store_redis::{Layout, RedisStoreBuilder};
    let b =
        sessionbank_store_redis::RedisStoreBuilder::parse("redis://127.0.0.1:1/0?layout=string")?;
    ensure!(b.get_layout() == Layout::String);
    let b = sessionbank_store_redis::RedisStoreBuilder::parse("redis://127.0.0.1:1/0?layout=hash")?;
    ensure!(b.get_layout() == Layout::Hash);
    ensure!(RedisStoreBuilder::parse("redis://127.0.0.1:1/0")?.get_layout() == Layout::String);
    let err = RedisStore::connect("redis://127.0.0.1:1/0?layout=bogus")
        .await
        .err()
        .context("layout=bogus must fail")?;
    let text = err.to_string();
    ensure!(err.kind() == ErrorKind::Config, "{}", err.chain());
    ensure!(
        text.contains("layout")
            && text.contains("string")
            && text.contains("hash")
            && text.contains("bogus"),
        "the error names the option and its values: {text}"
    );
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<
        sessionbank_store_redis::RedisStoreBuilder,
    >());
    let err = registry
        .connect("redis://127.0.0.1:1/0?layout=HASH")
        .await
        .err()
        .context("layout=HASH through the registry must fail")?;
    ensure!(err.kind() == ErrorKind::Config, "{}", err.chain());
    Ok(())
}

/// `update` and `touch` in the hash layout: one MULTI … EXEC each, no script.
async fn hash_one_transaction() -> anyhow::Result<()> {
    let server = RedisServer::start();
    let url = server.url();
    let store = hash_store(&url, &format!("sbo:{}:", random_name())).await?;
    let mut conn = raw(&url).await?;
    let id = SessionId::generate()?;
    let now = Timestamp::now();
    store
        .set(&id, &Record::new(now).expiring_at(now + hour()))
        .await?;
    reset_stats(&mut conn).await?;
    store
        .update(&id, &Patch::new().set("a", json!(1)).unset("b"))
        .await?;
    store.touch(&id, Some(now + 2 * hour())).await?;
    store.get(&id).await?;
    let stats = command_stats(&mut conn).await?;
    let calls = |name: &str| command_calls(&stats, name);
    ensure!(
        calls("multi") == 2 && calls("exec") == 2,
        "one transaction each\n{stats}"
    );
    ensure!(calls("hmget") == 2 && calls("hset") == 2 && calls("hdel") == 1);
    ensure!(calls("pexpire") == 2 && calls("pexpireat") == 1, "{stats}");
    ensure!(calls("hgetall") == 1, "get is one HGETALL\n{stats}");
    ensure!(
        calls("evalsha") == 0 && calls("eval") == 0,
        "no Lua on the hot path\n{stats}"
    );
    drop(server);
    Ok(())
}

/// A hash-layout store pointed at a replica (what a connection sees right after a Sentinel
/// failover demoted its master): the transaction's commands answer READONLY, which must come
/// out as a retryable `Unavailable`, as a single command's READONLY does, not as "transaction
/// aborted".
async fn hash_on_a_replica() -> anyhow::Result<()> {
    let master = RedisServer::start();
    let replica = RedisServer::start();
    let out = replica.cli(&["replicaof", "127.0.0.1", &master.port().to_string()]);
    ensure!(out.contains("OK"), "replicaof: {out}");
    let store = hash_store(&replica.url(), &format!("sbr:{}:", random_name())).await?;
    let id = SessionId::generate()?;
    let now = Timestamp::now();
    let err = store
        .set(&id, &Record::new(now).expiring_at(now + hour()))
        .await
        .err()
        .context("a write to a replica fails")?;
    ensure!(
        err.kind() == ErrorKind::Unavailable && err.kind().is_retryable(),
        "set: {}",
        err.chain()
    );
    let err = store
        .update(&id, &Patch::new().set("a", json!(1)))
        .await
        .err()
        .context("an update on a replica fails")?;
    ensure!(
        err.kind() == ErrorKind::Unavailable,
        "update: {}",
        err.chain()
    );
    ensure!(
        err.chain().contains("READONLY") || err.chain().to_lowercase().contains("read only"),
        "the cause is named: {}",
        err.chain()
    );
    drop(replica);
    drop(master);
    Ok(())
}

/// How many times `INFO commandstats` (in `stats`) says command `name` ran.
/// `PEXPIRETIME key`: when Redis will expire `key`, in ms since the epoch (-1: no TTL, -2: no
/// key).
async fn expire_time(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> anyhow::Result<i64> {
    Ok(redis::cmd("PEXPIRETIME").arg(key).query_async(conn).await?)
}

/// `CONFIG RESETSTAT`: the command counters start again from zero.
async fn reset_stats(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<()> {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await?;
    Ok(())
}

/// `INFO commandstats`, for [`command_calls`].
async fn command_stats(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<String> {
    Ok(redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?)
}

fn command_calls(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
