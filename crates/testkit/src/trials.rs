//! The trials: one per sentence of the Store contract.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sessionbank_core::{
    Data, ErrorKind, Operation, Patch, Record, SessionId, StoreHandle, Timestamp,
};

use crate::{Namespace, StoreFactory, random_name};

/// One trial of the conformance suite.
#[derive(Debug, Clone, Copy)]
pub struct Trial {
    /// The store operation it checks, e.g. `update`.
    pub operation: &'static str,
    /// Its name, e.g. `concurrent_updates_of_different_keys_all_survive`.
    pub name: &'static str,
    /// The contract sentence it checks.
    pub sentence: &'static str,
    /// The check.
    pub run: fn(TrialContext) -> BoxFuture<'static, anyhow::Result<()>>,
}

/// What a trial gets: a store in its own namespace, and a way to open another namespace.
pub struct TrialContext {
    /// The store under test, in a fresh namespace.
    pub store: StoreHandle,
    factory: StoreFactory,
    root: PathBuf,
}

impl std::fmt::Debug for TrialContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrialContext")
            .field("store", &self.store)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl TrialContext {
    pub(crate) async fn new(factory: StoreFactory, root: PathBuf) -> anyhow::Result<Self> {
        let store = open(&factory, &root).await?;
        Ok(Self {
            store,
            factory,
            root,
        })
    }

    /// Opens the same backend in another fresh namespace.
    ///
    /// # Errors
    ///
    /// When the factory fails.
    pub async fn other_namespace(&self) -> anyhow::Result<StoreHandle> {
        open(&self.factory, &self.root).await
    }
}

async fn open(factory: &StoreFactory, root: &std::path::Path) -> anyhow::Result<StoreHandle> {
    let name = random_name();
    let dir = root.join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    factory(Namespace { name, dir })
        .await
        .map_err(|e| anyhow!("opening the store under test failed: {}", e.chain()))
}

macro_rules! trials {
    ($( $op:literal $name:ident : $sentence:literal ; )*) => {
        /// Every trial, in contract order.
        pub static TRIALS: &[Trial] = &[
            $( Trial {
                operation: $op,
                name: stringify!($name),
                sentence: $sentence,
                run: |ctx| Box::pin($name(ctx)),
            }, )*
        ];
    };
}

trials! {
    "get" returns_what_set_wrote: "Returns the record last written for id, with the same data, expiry, created time, last access and owner.";
    "get" returns_none_for_an_unknown_id: "Returns None for an id that was never written.";
    "get" hides_an_expired_record_before_cleanup: "Returns None for an expired record, even before cleanup ran.";
    "get" returns_none_after_destroy: "Returns None after destroy.";
    "get" sees_every_update_that_returned_before_it: "Returns the record last written for id (under concurrency: a get sees every update that returned before the get was called).";
    "set" inserts_a_new_id_and_overwrites_an_existing_one: "Works for a new id and overwrites an existing one.";
    "set" replaces_the_whole_record: "Replaces the whole record: keys absent from record are gone afterwards.";
    "set" keeps_a_browser_session_while_recently_used: "Stores a browser session and keeps it while last_access + browser_idle is in the future.";
    "create" stores_a_new_session: "Stores the record when no live session has id.";
    "create" refuses_a_live_id_and_leaves_it_untouched: "Fails with AlreadyExists when a live session has id, and leaves that session untouched.";
    "create" succeeds_over_an_expired_record: "Succeeds over an expired record with the same id.";
    "create" concurrent_creates_of_one_id_have_one_winner: "Fails with AlreadyExists when a live session has id (under concurrency: exactly one create wins).";
    "update" changes_only_the_named_keys: "Changes only the keys named in the patch; other keys keep their values.";
    "update" concurrent_updates_of_different_keys_all_survive: "Concurrent updates of different keys of one session all survive.";
    "update" missing_destroyed_or_expired_is_gone_and_not_resurrected: "Fails with Gone for a missing, destroyed or expired id, and does not bring the session back.";
    "update" racing_a_destroy_never_resurrects: "Fails with Gone for a destroyed id, and does not bring the session back (updates racing a destroy).";
    "update" new_expiry_takes_effect_and_is_kept_otherwise: "A new expiry in the patch takes effect; a patch without one keeps the old expiry.";
    "update" sets_last_access_and_owner: "Applies the patch atomically, including a new owner; last_access becomes now.";
    "touch" moves_expiry_and_keeps_data: "The new expiry is what get returns afterwards; the data is unchanged.";
    "touch" touch_missing_destroyed_or_expired_is_gone_and_not_resurrected: "Fails with Gone for a missing, destroyed or expired id, and does not bring the session back.";
    "destroy" removes_the_session: "get returns None afterwards.";
    "destroy" is_idempotent: "Succeeds whether or not the session exists.";
    "rename" moves_the_data_and_kills_the_old_id: "Afterwards new holds the data and old is gone.";
    "rename" missing_or_expired_old_id_is_gone: "Fails with Gone when old is missing or expired.";
    "rename" onto_a_live_id_is_already_exists_changing_neither: "Fails with AlreadyExists when new is a live session, changing neither.";
    "all" pages_list_every_live_session_exactly_once: "Pages together list every live session exactly once.";
    "all" never_lists_an_expired_session: "Never lists an expired session.";
    "all" a_page_holds_at_most_limit_sessions: "A page holds at most limit sessions.";
    "length" counts_live_sessions_only: "Equals the number of sessions all lists; expired ones do not count.";
    "clear" empties_the_store: "length is 0 afterwards.";
    "clear" leaves_other_namespaces_alone: "A store in another namespace keeps its sessions.";
    "capabilities" list_flag_is_honest: "Without the list capability, all, length and clear return Unsupported.";
    "capabilities" owner_index_flag_is_honest: "Without the owner_index capability, owned_by and destroy_owned_by return Unsupported.";
    "cleanup" removes_expired_and_keeps_live: "Removes expired records and keeps live ones.";
    "cleanup" removes_idle_browser_sessions: "Removes browser sessions idle for longer than browser_idle.";
    "cleanup" short_lifetimes_expire_on_time: "A record with a short lifetime is live before its expiry and gone after it.";
    "owned_by" lists_exactly_the_owners_live_sessions: "Lists every live session whose owner is owner, and no other.";
    "owned_by" follows_owner_changes_and_destroys: "Follows owner changes made by set, update and rename, and forgets destroyed sessions.";
    "destroy_owned_by" keeps_only_the_excepted_session: "Afterwards owned_by(owner) lists only except, if it was owned by owner.";
    "destroy_owned_by" keeps_other_owners_sessions: "Sessions of other owners stay.";
    "errors" name_the_kind_operation_and_backend: "Errors carry the kind, the operation and the backend's name.";
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn id() -> anyhow::Result<SessionId> {
    SessionId::generate().map_err(|e| anyhow!("generating an id: {e}"))
}

fn data(value: Value) -> Data {
    Data::from_value(value).unwrap_or_default()
}

/// A record expiring in `ttl` with some data of several JSON types.
fn live_record(ttl: Duration) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(data(json!({
            "user": "ada",
            "visits": 3,
            "admin": false,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "nested": {"k": null, "unicode": "žluťoučký 🐴"}
        })))
        .expiring_at(now + ttl)
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

/// A record whose expiry passed a minute ago.
fn expired_record() -> Record {
    let now = Timestamp::now();
    let mut record =
        Record::new(now - Duration::from_secs(7200)).with_data(data(json!({"old": true})));
    record.expires_at = Some(now - Duration::from_secs(60));
    record
}

fn expect_kind<T: std::fmt::Debug>(
    result: sessionbank_core::Result<T>,
    kind: ErrorKind,
    what: &str,
) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(anyhow!("{what}: expected {kind}, got {}", e.chain())),
        Ok(v) => Err(anyhow!("{what}: expected {kind}, got Ok({v:?})")),
    }
}

async fn get(store: &StoreHandle, id: &SessionId) -> anyhow::Result<Option<Record>> {
    store
        .get(id)
        .await
        .map_err(|e| anyhow!("get: {}", e.chain()))
}

async fn must_get(store: &StoreHandle, id: &SessionId) -> anyhow::Result<Record> {
    get(store, id)
        .await?
        .ok_or_else(|| anyhow!("get returned None for a live session"))
}

macro_rules! ok {
    ($e:expr) => {
        $e.await
            .map_err(|e| anyhow!("{} failed: {}", stringify!($e), e.chain()))?
    };
}

fn caps(store: &StoreHandle) -> sessionbank_core::Capabilities {
    store.capabilities()
}

// ---------------------------------------------------------------------------------------------
// get

async fn returns_what_set_wrote(ctx: TrialContext) -> anyhow::Result<()> {
    let store = &ctx.store;
    let id = id()?;
    let record = live_record(hour()).owned_by("ada@example.com");
    ok!(store.set(&id, &record));
    let back = must_get(store, &id).await?;
    ensure!(
        back == record,
        "read back {back:?} with data {:?}, wrote {record:?} with data {:?}",
        back.data,
        record.data
    );
    let browser = Record::new(Timestamp::now()).with_data(data(json!({"b": 1})));
    let id2 = self::id()?;
    ok!(store.set(&id2, &browser));
    ensure!(
        must_get(store, &id2).await? == browser,
        "a browser session reads back unchanged"
    );
    Ok(())
}

async fn returns_none_for_an_unknown_id(ctx: TrialContext) -> anyhow::Result<()> {
    ensure!(
        get(&ctx.store, &id()?).await?.is_none(),
        "an unknown id must read as None"
    );
    Ok(())
}

async fn hides_an_expired_record_before_cleanup(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &expired_record()));
    ensure!(
        get(&ctx.store, &id).await?.is_none(),
        "an expired record must read as None"
    );
    Ok(())
}

async fn returns_none_after_destroy(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &live_record(hour())));
    ok!(ctx.store.destroy(&id));
    ensure!(
        get(&ctx.store, &id).await?.is_none(),
        "a destroyed session must read as None"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// set

async fn inserts_a_new_id_and_overwrites_an_existing_one(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let first = live_record(hour());
    ok!(ctx.store.set(&id, &first));
    ensure!(must_get(&ctx.store, &id).await? == first, "set of a new id");
    let mut second = live_record(2 * hour());
    second.data.insert("visits".into(), json!(4));
    ok!(ctx.store.set(&id, &second));
    ensure!(
        must_get(&ctx.store, &id).await? == second,
        "set over an existing id"
    );
    Ok(())
}

async fn replaces_the_whole_record(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &live_record(hour()).owned_by("x")));
    let replacement = Record::new(Timestamp::now())
        .with_data(data(json!({"only": 1})))
        .expiring_at(Timestamp::now() + hour());
    ok!(ctx.store.set(&id, &replacement));
    let back = must_get(&ctx.store, &id).await?;
    ensure!(
        back.data == replacement.data,
        "old keys must be gone: {:?}",
        back.data
    );
    ensure!(back.owner.is_none(), "the old owner must be gone");
    Ok(())
}

async fn keeps_a_browser_session_while_recently_used(ctx: TrialContext) -> anyhow::Result<()> {
    let recent = self::id()?;
    let stale = self::id()?;
    let now = Timestamp::now();
    ok!(ctx.store.set(
        &recent,
        &Record::new(now - Duration::from_secs(600)).with_data(data(json!({"a": 1})))
    ));
    let mut old = Record::new(now - Duration::from_secs(3 * 86_400));
    old.last_access = now - Duration::from_secs(2 * 86_400);
    ok!(ctx.store.set(&stale, &old));
    ensure!(
        get(&ctx.store, &recent).await?.is_some(),
        "a browser session used 10 minutes ago is live"
    );
    ensure!(
        get(&ctx.store, &stale).await?.is_none(),
        "a browser session idle for two days is past the default browser_idle of one day"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// create

async fn stores_a_new_session(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let record = live_record(hour());
    ok!(ctx.store.create(&id, &record));
    ensure!(
        must_get(&ctx.store, &id).await? == record,
        "create then get"
    );
    Ok(())
}

async fn refuses_a_live_id_and_leaves_it_untouched(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let record = live_record(hour());
    ok!(ctx.store.create(&id, &record));
    let intruder = live_record(hour()).owned_by("mallory");
    expect_kind(
        ctx.store.create(&id, &intruder).await,
        ErrorKind::AlreadyExists,
        "second create",
    )?;
    ensure!(
        must_get(&ctx.store, &id).await? == record,
        "the first session must be untouched"
    );
    Ok(())
}

async fn succeeds_over_an_expired_record(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &expired_record()));
    let fresh = live_record(hour());
    ok!(ctx.store.create(&id, &fresh));
    ensure!(
        must_get(&ctx.store, &id).await? == fresh,
        "create over an expired record"
    );
    Ok(())
}

async fn concurrent_creates_of_one_id_have_one_winner(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let attempts = (0..20).map(|i| {
        let store = ctx.store.clone();
        let record = Record::new(Timestamp::now())
            .with_data(data(json!({ "writer": i })))
            .expiring_at(Timestamp::now() + hour());
        tokio::spawn(async move { (i, store.create(&id, &record).await) })
    });
    let mut winners = Vec::new();
    for joined in futures::future::join_all(attempts).await {
        let (i, result) = joined?;
        match result {
            Ok(()) => winners.push(i),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(anyhow!("create {i}: unexpected {}", e.chain())),
        }
    }
    ensure!(
        winners.len() == 1,
        "exactly one create must win, got {winners:?}"
    );
    let stored = must_get(&ctx.store, &id).await?;
    ensure!(
        stored.data["writer"] == json!(winners[0]),
        "the winner's data is stored"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// update

async fn changes_only_the_named_keys(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let record = live_record(hour());
    ok!(ctx.store.set(&id, &record));
    let patch = Patch::new()
        .set("visits", json!(4))
        .set("new", json!({"deep": [1, 2]}))
        .unset("admin")
        .unset("never-there");
    ok!(ctx.store.update(&id, &patch));
    let back = must_get(&ctx.store, &id).await?;
    let mut expected = record.data.clone();
    expected.insert("visits".into(), json!(4));
    expected.insert("new".into(), json!({"deep": [1, 2]}));
    expected.remove("admin");
    ensure!(
        back.data == expected,
        "got {:?}",
        Value::from(back.data.clone())
    );
    ensure!(back.expires_at == record.expires_at, "the expiry is kept");
    ensure!(back.created_at == record.created_at, "created_at is kept");
    Ok(())
}

async fn sees_every_update_that_returned_before_it(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &live_record(hour())));
    // Forty requests at once on one session, each writing its own key and reading it back: a
    // read that shared an answer fetched before its own write returned would miss the write.
    let tasks = (0..40).map(|i| {
        let store = ctx.store.clone();
        tokio::spawn(async move {
            for round in 0..3 {
                let key = format!("key{i}");
                store
                    .update(&id, &Patch::new().set(key.clone(), json!(round)))
                    .await
                    .map_err(|e| anyhow!("update {i}/{round}: {}", e.chain()))?;
                let back = store
                    .get(&id)
                    .await
                    .map_err(|e| anyhow!("get {i}/{round}: {}", e.chain()))?
                    .with_context(|| format!("get {i}/{round}: the session is gone"))?;
                ensure!(
                    back.data.get(&key) == Some(&json!(round)),
                    "get {i}/{round} missed its own update: {key} is {:?}",
                    back.data.get(&key)
                );
            }
            anyhow::Ok(())
        })
    });
    for joined in futures::future::join_all(tasks).await {
        joined??;
    }
    Ok(())
}

async fn concurrent_updates_of_different_keys_all_survive(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.set(&id, &live_record(hour())));
    let tasks = (0..50).map(|i| {
        let store = ctx.store.clone();
        tokio::spawn(async move {
            store
                .update(&id, &Patch::new().set(format!("key{i}"), json!(i)))
                .await
        })
    });
    for (i, joined) in futures::future::join_all(tasks)
        .await
        .into_iter()
        .enumerate()
    {
        joined?.map_err(|e| anyhow!("update {i}: {}", e.chain()))?;
    }
    let back = must_get(&ctx.store, &id).await?;
    let missing: Vec<_> = (0..50)
        .filter(|i| back.data.get(&format!("key{i}")) != Some(&json!(i)))
        .collect();
    ensure!(missing.is_empty(), "lost updates for keys {missing:?}");
    ensure!(
        back.data["user"] == json!("ada"),
        "the untouched key survives"
    );
    Ok(())
}

async fn missing_destroyed_or_expired_is_gone_and_not_resurrected(
    ctx: TrialContext,
) -> anyhow::Result<()> {
    let store = &ctx.store;
    let patch = Patch::new().set("x", json!(1));
    let missing = id()?;
    expect_kind(
        store.update(&missing, &patch).await,
        ErrorKind::Gone,
        "update of a missing id",
    )?;
    ensure!(
        get(store, &missing).await?.is_none(),
        "a missing id stays missing"
    );

    let destroyed = id()?;
    ok!(store.set(&destroyed, &live_record(hour())));
    ok!(store.destroy(&destroyed));
    expect_kind(
        store.update(&destroyed, &patch).await,
        ErrorKind::Gone,
        "update after destroy",
    )?;
    ensure!(
        get(store, &destroyed).await?.is_none(),
        "a destroyed session stays gone"
    );

    let expired = id()?;
    ok!(store.set(&expired, &expired_record()));
    let resurrect = Patch::new().expire_at(Some(Timestamp::now() + hour()));
    expect_kind(
        store.update(&expired, &resurrect).await,
        ErrorKind::Gone,
        "update of an expired id",
    )?;
    ensure!(
        get(store, &expired).await?.is_none(),
        "an expired session stays gone"
    );
    Ok(())
}

async fn racing_a_destroy_never_resurrects(ctx: TrialContext) -> anyhow::Result<()> {
    for round in 0..5 {
        let id = id()?;
        ok!(ctx.store.set(&id, &live_record(hour())));
        let updates = (0..20).map(|i| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                store
                    .update(&id, &Patch::new().set(format!("k{i}"), json!(i)))
                    .await
            })
        });
        let destroyer = {
            let store = ctx.store.clone();
            tokio::spawn(async move { store.destroy(&id).await })
        };
        for joined in futures::future::join_all(updates).await {
            match joined? {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Gone => {}
                Err(e) => return Err(anyhow!("round {round}: update failed: {}", e.chain())),
            }
        }
        destroyer
            .await?
            .map_err(|e| anyhow!("destroy: {}", e.chain()))?;
        ensure!(
            get(&ctx.store, &id).await?.is_none(),
            "round {round}: the destroyed session came back"
        );
        expect_kind(
            ctx.store.update(&id, &Patch::new()).await,
            ErrorKind::Gone,
            "update after the race",
        )?;
        expect_kind(
            ctx.store.touch(&id, Some(Timestamp::now() + hour())).await,
            ErrorKind::Gone,
            "touch after the race",
        )?;
        ensure!(
            get(&ctx.store, &id).await?.is_none(),
            "round {round}: still gone"
        );
    }
    Ok(())
}

async fn new_expiry_takes_effect_and_is_kept_otherwise(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let record = live_record(hour());
    ok!(ctx.store.set(&id, &record));
    let later = Timestamp::now() + 5 * hour();
    ok!(ctx
        .store
        .update(&id, &Patch::new().set("a", json!(1)).expire_at(Some(later))));
    ensure!(
        must_get(&ctx.store, &id).await?.expires_at == Some(later),
        "the new expiry takes effect"
    );
    ok!(ctx.store.update(&id, &Patch::new().set("b", json!(2))));
    ensure!(
        must_get(&ctx.store, &id).await?.expires_at == Some(later),
        "a patch without expiry keeps it"
    );
    ok!(ctx.store.update(&id, &Patch::new().expire_at(None)));
    let back = must_get(&ctx.store, &id).await?;
    ensure!(
        back.expires_at.is_none(),
        "Some(None) makes it a browser session"
    );
    ensure!(back.data["b"] == json!(2), "data kept");
    Ok(())
}

async fn sets_last_access_and_owner(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let mut record = live_record(hour());
    record.last_access = Timestamp::now() - Duration::from_secs(600);
    ok!(ctx.store.set(&id, &record));
    let before = Timestamp::now() - Duration::from_secs(5);
    ok!(ctx
        .store
        .update(&id, &Patch::new().owner(Some("grace".into()))));
    let back = must_get(&ctx.store, &id).await?;
    ensure!(back.owner.as_deref() == Some("grace"), "the owner changes");
    ensure!(
        back.last_access >= before,
        "last_access becomes now, got {:?}",
        back.last_access
    );
    ok!(ctx.store.update(&id, &Patch::new().owner(None)));
    ensure!(
        must_get(&ctx.store, &id).await?.owner.is_none(),
        "the owner is removed"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// touch

async fn moves_expiry_and_keeps_data(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let record = live_record(hour());
    ok!(ctx.store.set(&id, &record));
    let later = Timestamp::now() + 3 * hour();
    ok!(ctx.store.touch(&id, Some(later)));
    let back = must_get(&ctx.store, &id).await?;
    ensure!(
        back.expires_at == Some(later),
        "touch moved the expiry to {later:?}, got {:?}",
        back.expires_at
    );
    ensure!(back.data == record.data, "touch must not change the data");
    ensure!(
        back.owner == record.owner && back.created_at == record.created_at,
        "metadata kept"
    );
    Ok(())
}

async fn touch_missing_destroyed_or_expired_is_gone_and_not_resurrected(
    ctx: TrialContext,
) -> anyhow::Result<()> {
    let store = &ctx.store;
    let later = Some(Timestamp::now() + hour());
    let missing = id()?;
    expect_kind(
        store.touch(&missing, later).await,
        ErrorKind::Gone,
        "touch of a missing id",
    )?;
    ensure!(
        get(store, &missing).await?.is_none(),
        "a missing id stays missing"
    );
    let destroyed = id()?;
    ok!(store.set(&destroyed, &live_record(hour())));
    ok!(store.destroy(&destroyed));
    expect_kind(
        store.touch(&destroyed, later).await,
        ErrorKind::Gone,
        "touch after destroy",
    )?;
    ensure!(
        get(store, &destroyed).await?.is_none(),
        "a destroyed session stays gone"
    );
    let expired = id()?;
    ok!(store.set(&expired, &expired_record()));
    expect_kind(
        store.touch(&expired, later).await,
        ErrorKind::Gone,
        "touch of an expired id",
    )?;
    ensure!(
        get(store, &expired).await?.is_none(),
        "an expired session stays gone"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// destroy

async fn removes_the_session(ctx: TrialContext) -> anyhow::Result<()> {
    let keep = id()?;
    let drop_id = id()?;
    ok!(ctx.store.set(&keep, &live_record(hour())));
    ok!(ctx.store.set(&drop_id, &live_record(hour())));
    ok!(ctx.store.destroy(&drop_id));
    ensure!(get(&ctx.store, &drop_id).await?.is_none(), "destroyed");
    ensure!(
        get(&ctx.store, &keep).await?.is_some(),
        "another session is untouched"
    );
    Ok(())
}

async fn is_idempotent(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    ok!(ctx.store.destroy(&id));
    ok!(ctx.store.set(&id, &live_record(hour())));
    ok!(ctx.store.destroy(&id));
    ok!(ctx.store.destroy(&id));
    ensure!(get(&ctx.store, &id).await?.is_none(), "gone");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rename

async fn moves_the_data_and_kills_the_old_id(ctx: TrialContext) -> anyhow::Result<()> {
    let old = id()?;
    let new = id()?;
    let record = live_record(hour()).owned_by("ada");
    ok!(ctx.store.set(&old, &record));
    ok!(ctx.store.rename(&old, &new));
    ensure!(
        get(&ctx.store, &old).await?.is_none(),
        "the old id must be gone"
    );
    let moved = must_get(&ctx.store, &new).await?;
    ensure!(moved.data == record.data, "data moved");
    ensure!(moved.expires_at == record.expires_at, "expiry kept");
    ensure!(moved.created_at == record.created_at, "created_at kept");
    ensure!(moved.owner == record.owner, "owner kept");
    expect_kind(
        ctx.store.update(&old, &Patch::new()).await,
        ErrorKind::Gone,
        "update of the old id",
    )?;
    Ok(())
}

async fn missing_or_expired_old_id_is_gone(ctx: TrialContext) -> anyhow::Result<()> {
    let new = id()?;
    expect_kind(
        ctx.store.rename(&id()?, &new).await,
        ErrorKind::Gone,
        "rename of a missing id",
    )?;
    let expired = id()?;
    ok!(ctx.store.set(&expired, &expired_record()));
    expect_kind(
        ctx.store.rename(&expired, &new).await,
        ErrorKind::Gone,
        "rename of an expired id",
    )?;
    ensure!(
        get(&ctx.store, &new).await?.is_none(),
        "nothing appears under the new id"
    );
    Ok(())
}

async fn onto_a_live_id_is_already_exists_changing_neither(
    ctx: TrialContext,
) -> anyhow::Result<()> {
    let a = id()?;
    let b = id()?;
    let ra = live_record(hour()).owned_by("a");
    let rb = Record::new(Timestamp::now())
        .with_data(data(json!({"b": true})))
        .expiring_at(Timestamp::now() + hour());
    ok!(ctx.store.set(&a, &ra));
    ok!(ctx.store.set(&b, &rb));
    expect_kind(
        ctx.store.rename(&a, &b).await,
        ErrorKind::AlreadyExists,
        "rename onto a live id",
    )?;
    ensure!(
        must_get(&ctx.store, &a).await?.data == ra.data,
        "the old session is unchanged"
    );
    ensure!(
        must_get(&ctx.store, &b).await? == rb,
        "the target session is unchanged"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// all / length / clear

async fn list_ids(store: &StoreHandle, limit: usize) -> anyhow::Result<Vec<SessionId>> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page = ok!(store.all(cursor.as_deref(), limit));
        ensure!(
            page.sessions.len() <= limit,
            "a page of {} exceeds limit {limit}",
            page.sessions.len()
        );
        ids.extend(page.sessions.iter().map(|(id, _)| *id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
    Err(anyhow!("all did not finish paging after 10,000 pages"))
}

async fn pages_list_every_live_session_exactly_once(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.all(None, 10).await,
            ErrorKind::Unsupported,
            "all without the list capability",
        );
    }
    let mut written = BTreeSet::new();
    for _ in 0..23 {
        let id = id()?;
        ok!(ctx.store.set(&id, &live_record(hour())));
        written.insert(id);
    }
    for limit in [1, 7, 23, 100] {
        let listed = list_ids(&ctx.store, limit).await?;
        let unique: BTreeSet<_> = listed.iter().copied().collect();
        ensure!(
            unique.len() == listed.len(),
            "limit {limit}: a session was listed twice"
        );
        ensure!(
            unique == written,
            "limit {limit}: listed {} sessions, wrote {}",
            unique.len(),
            written.len()
        );
    }
    let page = ok!(ctx.store.all(None, 5));
    for (id, record) in &page.sessions {
        ensure!(
            record.data["user"] == json!("ada") && written.contains(id),
            "all returns the records"
        );
    }
    Ok(())
}

async fn never_lists_an_expired_session(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.all(None, 10).await,
            ErrorKind::Unsupported,
            "all without the list capability",
        );
    }
    let live = id()?;
    ok!(ctx.store.set(&live, &live_record(hour())));
    for _ in 0..5 {
        ok!(ctx.store.set(&id()?, &expired_record()));
    }
    let listed = list_ids(&ctx.store, 2).await?;
    ensure!(
        listed == vec![live],
        "only the live session is listed, got {} sessions",
        listed.len()
    );
    Ok(())
}

async fn a_page_holds_at_most_limit_sessions(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.all(None, 3).await,
            ErrorKind::Unsupported,
            "all without the list capability",
        );
    }
    for _ in 0..10 {
        ok!(ctx.store.set(&id()?, &live_record(hour())));
    }
    let page = ok!(ctx.store.all(None, 3));
    ensure!(
        page.sessions.len() <= 3,
        "a page of {} for limit 3",
        page.sessions.len()
    );
    ensure!(
        page.next.is_some(),
        "10 sessions in pages of 3 need a next page"
    );
    Ok(())
}

async fn counts_live_sessions_only(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.length().await,
            ErrorKind::Unsupported,
            "length without the list capability",
        );
    }
    ensure!(ok!(ctx.store.length()) == 0, "a fresh namespace is empty");
    for _ in 0..7 {
        ok!(ctx.store.set(&id()?, &live_record(hour())));
    }
    for _ in 0..3 {
        ok!(ctx.store.set(&id()?, &expired_record()));
    }
    let length = ok!(ctx.store.length());
    ensure!(length == 7, "length counts 7 live sessions, got {length}");
    ensure!(
        list_ids(&ctx.store, 4).await?.len() == 7,
        "all lists as many as length counts"
    );
    Ok(())
}

async fn empties_the_store(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.clear().await,
            ErrorKind::Unsupported,
            "clear without the list capability",
        );
    }
    let ids: Vec<_> = (0..6).map(|_| id()).collect::<anyhow::Result<_>>()?;
    for id in &ids {
        ok!(ctx.store.set(id, &live_record(hour()).owned_by("ada")));
    }
    ok!(ctx.store.clear());
    ensure!(ok!(ctx.store.length()) == 0, "length is 0 after clear");
    for id in &ids {
        ensure!(
            get(&ctx.store, id).await?.is_none(),
            "a cleared session reads as None"
        );
    }
    if caps(&ctx.store).owner_index {
        ensure!(
            ok!(ctx.store.owned_by("ada")).is_empty(),
            "the owner index is cleared too"
        );
    }
    Ok(())
}

async fn leaves_other_namespaces_alone(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).list {
        return expect_kind(
            ctx.store.clear().await,
            ErrorKind::Unsupported,
            "clear without the list capability",
        );
    }
    let other = ctx.other_namespace().await?;
    let theirs = id()?;
    ok!(other.set(&theirs, &live_record(hour())));
    ok!(ctx.store.set(&id()?, &live_record(hour())));
    ok!(ctx.store.clear());
    ensure!(
        get(&other, &theirs).await?.is_some(),
        "the other namespace keeps its session"
    );
    ensure!(
        ok!(other.length()) == 1,
        "the other namespace still counts one"
    );
    Ok(())
}

async fn list_flag_is_honest(ctx: TrialContext) -> anyhow::Result<()> {
    if caps(&ctx.store).list {
        ok!(ctx.store.all(None, 1));
        ok!(ctx.store.length());
        ok!(ctx.store.clear());
        return Ok(());
    }
    expect_kind(ctx.store.all(None, 1).await, ErrorKind::Unsupported, "all")?;
    expect_kind(ctx.store.length().await, ErrorKind::Unsupported, "length")?;
    expect_kind(ctx.store.clear().await, ErrorKind::Unsupported, "clear")
}

async fn owner_index_flag_is_honest(ctx: TrialContext) -> anyhow::Result<()> {
    if caps(&ctx.store).owner_index {
        ok!(ctx.store.owned_by("nobody"));
        ok!(ctx.store.destroy_owned_by("nobody", None));
        return Ok(());
    }
    expect_kind(
        ctx.store.owned_by("x").await,
        ErrorKind::Unsupported,
        "owned_by",
    )?;
    expect_kind(
        ctx.store.destroy_owned_by("x", None).await,
        ErrorKind::Unsupported,
        "destroy_owned_by",
    )
}

// ---------------------------------------------------------------------------------------------
// cleanup

async fn removes_expired_and_keeps_live(ctx: TrialContext) -> anyhow::Result<()> {
    let live: Vec<_> = (0..5).map(|_| id()).collect::<anyhow::Result<_>>()?;
    let dead: Vec<_> = (0..4).map(|_| id()).collect::<anyhow::Result<_>>()?;
    for id in &live {
        ok!(ctx.store.set(id, &live_record(hour())));
    }
    for id in &dead {
        ok!(ctx.store.set(id, &expired_record().owned_by("ghost")));
    }
    let removed = ok!(ctx.store.cleanup());
    if !caps(&ctx.store).native_expiry {
        ensure!(
            removed == 4,
            "cleanup removed {removed}, expected the 4 expired records"
        );
        ensure!(
            ok!(ctx.store.cleanup()) == 0,
            "a second cleanup finds nothing"
        );
    }
    for id in &live {
        ensure!(
            get(&ctx.store, id).await?.is_some(),
            "cleanup kept live sessions"
        );
    }
    for id in &dead {
        ensure!(
            get(&ctx.store, id).await?.is_none(),
            "expired sessions are gone"
        );
    }
    if caps(&ctx.store).owner_index {
        ensure!(
            ok!(ctx.store.owned_by("ghost")).is_empty(),
            "expired sessions leave the owner index"
        );
    }
    Ok(())
}

async fn removes_idle_browser_sessions(ctx: TrialContext) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let fresh = id()?;
    let idle = id()?;
    ok!(ctx.store.set(&fresh, &Record::new(now)));
    let mut old = Record::new(now - Duration::from_secs(5 * 86_400));
    old.last_access = now - Duration::from_secs(3 * 86_400);
    ok!(ctx.store.set(&idle, &old));
    let removed = ok!(ctx.store.cleanup());
    if !caps(&ctx.store).native_expiry {
        ensure!(
            removed == 1,
            "cleanup removed {removed}, expected the one idle browser session"
        );
    }
    ensure!(
        get(&ctx.store, &fresh).await?.is_some(),
        "a fresh browser session stays"
    );
    ensure!(
        get(&ctx.store, &idle).await?.is_none(),
        "an idle browser session is removed"
    );
    Ok(())
}

async fn short_lifetimes_expire_on_time(ctx: TrialContext) -> anyhow::Result<()> {
    let id = id()?;
    let now = Timestamp::now();
    let record = Record::new(now)
        .with_data(data(json!({"short": true})))
        .expiring_at(now + Duration::from_millis(800));
    ok!(ctx.store.create(&id, &record));
    ensure!(
        get(&ctx.store, &id).await?.is_some(),
        "live before its expiry"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    ensure!(
        get(&ctx.store, &id).await?.is_none(),
        "gone after its expiry"
    );
    expect_kind(
        ctx.store
            .update(&id, &Patch::new().set("x", json!(1)))
            .await,
        ErrorKind::Gone,
        "update after expiry",
    )?;
    ok!(ctx.store.cleanup());
    ensure!(
        get(&ctx.store, &id).await?.is_none(),
        "still gone after cleanup"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// owner index

async fn owned_ids(store: &StoreHandle, owner: &str) -> anyhow::Result<BTreeSet<SessionId>> {
    let sessions = store
        .owned_by(owner)
        .await
        .map_err(|e| anyhow!("owned_by: {}", e.chain()))?;
    for (_, record) in &sessions {
        ensure!(
            record.owner.as_deref() == Some(owner),
            "owned_by returned another owner's session"
        );
    }
    Ok(sessions.into_iter().map(|(id, _)| id).collect())
}

async fn lists_exactly_the_owners_live_sessions(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).owner_index {
        return expect_kind(
            ctx.store.owned_by("ada").await,
            ErrorKind::Unsupported,
            "owned_by",
        );
    }
    let mine: BTreeSet<_> = (0..3).map(|_| id()).collect::<anyhow::Result<_>>()?;
    for id in &mine {
        ok!(ctx.store.set(id, &live_record(hour()).owned_by("ada")));
    }
    ok!(ctx
        .store
        .set(&id()?, &live_record(hour()).owned_by("grace")));
    ok!(ctx.store.set(&id()?, &live_record(hour())));
    ok!(ctx.store.set(&id()?, &expired_record().owned_by("ada")));
    ensure!(
        owned_ids(&ctx.store, "ada").await? == mine,
        "owned_by lists exactly ada's live sessions"
    );
    ensure!(
        owned_ids(&ctx.store, "nobody").await?.is_empty(),
        "an unknown owner has none"
    );
    Ok(())
}

async fn follows_owner_changes_and_destroys(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).owner_index {
        return expect_kind(
            ctx.store.owned_by("ada").await,
            ErrorKind::Unsupported,
            "owned_by",
        );
    }
    let store = &ctx.store;
    let a = id()?;
    ok!(store.set(&a, &live_record(hour()).owned_by("ada")));
    ok!(store.set(&a, &live_record(hour()).owned_by("grace")));
    ensure!(
        owned_ids(store, "ada").await?.is_empty(),
        "set moved the session away from ada"
    );
    ensure!(
        owned_ids(store, "grace").await? == BTreeSet::from([a]),
        "set gave it to grace"
    );

    ok!(store.update(&a, &Patch::new().owner(Some("ada".into()))));
    ensure!(
        owned_ids(store, "ada").await? == BTreeSet::from([a]),
        "update gave it back to ada"
    );
    ensure!(
        owned_ids(store, "grace").await?.is_empty(),
        "update took it from grace"
    );

    let b = id()?;
    ok!(store.rename(&a, &b));
    ensure!(
        owned_ids(store, "ada").await? == BTreeSet::from([b]),
        "rename keeps the owner under the new id"
    );

    ok!(store.destroy(&b));
    ensure!(
        owned_ids(store, "ada").await?.is_empty(),
        "destroy removes it from the index"
    );
    Ok(())
}

async fn keeps_only_the_excepted_session(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).owner_index {
        return expect_kind(
            ctx.store.destroy_owned_by("ada", None).await,
            ErrorKind::Unsupported,
            "destroy_owned_by",
        );
    }
    let ids: Vec<_> = (0..4).map(|_| id()).collect::<anyhow::Result<_>>()?;
    for id in &ids {
        ok!(ctx.store.set(id, &live_record(hour()).owned_by("ada")));
    }
    let destroyed = ok!(ctx.store.destroy_owned_by("ada", Some(&ids[0])));
    ensure!(destroyed == 3, "destroyed {destroyed}, expected 3");
    ensure!(
        owned_ids(&ctx.store, "ada").await? == BTreeSet::from([ids[0]]),
        "only the excepted session is left"
    );
    for id in &ids[1..] {
        ensure!(
            get(&ctx.store, id).await?.is_none(),
            "the others are destroyed"
        );
        expect_kind(
            ctx.store.update(id, &Patch::new().set("x", json!(1))).await,
            ErrorKind::Gone,
            "update after log-out-everywhere",
        )?;
    }
    let all = ok!(ctx.store.destroy_owned_by("ada", None));
    ensure!(
        all == 1,
        "without except every session goes, destroyed {all}"
    );
    ensure!(owned_ids(&ctx.store, "ada").await?.is_empty(), "none left");
    Ok(())
}

async fn keeps_other_owners_sessions(ctx: TrialContext) -> anyhow::Result<()> {
    if !caps(&ctx.store).owner_index {
        return expect_kind(
            ctx.store.destroy_owned_by("ada", None).await,
            ErrorKind::Unsupported,
            "destroy_owned_by",
        );
    }
    let ada = id()?;
    let grace = id()?;
    let anonymous = id()?;
    ok!(ctx.store.set(&ada, &live_record(hour()).owned_by("ada")));
    ok!(ctx
        .store
        .set(&grace, &live_record(hour()).owned_by("grace")));
    ok!(ctx.store.set(&anonymous, &live_record(hour())));
    ok!(ctx.store.destroy_owned_by("ada", None));
    ensure!(
        get(&ctx.store, &ada).await?.is_none(),
        "ada's session is destroyed"
    );
    ensure!(
        get(&ctx.store, &grace).await?.is_some(),
        "grace's session stays"
    );
    ensure!(
        get(&ctx.store, &anonymous).await?.is_some(),
        "the anonymous session stays"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// errors

async fn name_the_kind_operation_and_backend(ctx: TrialContext) -> anyhow::Result<()> {
    let missing = id()?;
    let err = match ctx.store.update(&missing, &Patch::new()).await {
        Err(e) => e,
        Ok(()) => return Err(anyhow!("update of a missing id succeeded")),
    };
    ensure!(err.kind() == ErrorKind::Gone, "kind {:?}", err.kind());
    ensure!(
        err.operation() == Some(Operation::Update),
        "operation {:?}",
        err.operation()
    );
    ensure!(
        err.backend() == ctx.store.backend(),
        "backend {:?} vs {:?}",
        err.backend(),
        ctx.store.backend()
    );
    let text = format!("{err} {err:?}");
    ensure!(
        !text.contains(missing.as_str()),
        "the error text must not contain the session id"
    );
    Ok(())
}
