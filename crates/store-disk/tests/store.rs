//! Disk-store specific behaviour: URLs, limits, the file lock, damaged records, the expiry
//! index, group commit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::TableDefinition;
use serde_json::json;
use sessionbank_core::{
    BackendEntry, Clock, ErrorKind, ManualClock, Patch, Record, Registry, SessionId, Store,
    StoreExt, Timestamp,
};
use sessionbank_store_disk::{DATABASE_FILE, DiskStore, DiskStoreBuilder};

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(BackendEntry::of::<DiskStoreBuilder>());
    registry
}

fn id() -> SessionId {
    SessionId::generate().unwrap()
}

fn record_for(n: u64, ttl: Duration) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(
            json!({"n": n, "user": format!("user-{n}")})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        )
        .expiring_at(now + ttl)
}

const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// URLs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_url_creates_the_directory_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/sessions");
    let url = format!("disk://{}?cleanup_time=off", dir.display());
    let store = registry().connect(&url).await.unwrap();
    assert_eq!(store.backend(), "disk");
    assert!(store.capabilities().durable);
    assert!(
        dir.join(DATABASE_FILE).is_file(),
        "the database file lives in the directory"
    );
    let id = id();
    store.set(&id, &record_for(1, HOUR)).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().data["n"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_url_is_relative_to_the_working_directory() {
    // Parsing: a cannot-be-a-base URL keeps its path relative.
    let builder = DiskStoreBuilder::parse("disk:var/sessions%20dir?max_record_bytes=2048").unwrap();
    assert_eq!(builder.get_dir(), Path::new("var/sessions dir"));

    // Opening: the directory appears under the working directory (the crate's, under cargo).
    let name = format!("target-disk-test-{}", &id().as_str()[..10]);
    let rel = format!("{name}/sessions");
    let cwd = std::env::current_dir().unwrap();
    let result = async {
        let store = registry()
            .connect(&format!("disk:{rel}?cleanup_time=off"))
            .await?;
        let id = id();
        store.set(&id, &record_for(2, HOUR)).await?;
        assert!(store.get(&id).await?.is_some());
        Ok::<_, sessionbank_core::Error>(())
    }
    .await;
    let created = cwd.join(&rel).join(DATABASE_FILE).is_file();
    let _ = std::fs::remove_dir_all(cwd.join(&name));
    result.unwrap();
    assert!(
        created,
        "disk:{rel} must create {rel}/{DATABASE_FILE} under {}",
        cwd.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_option_and_bad_paths_are_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = registry()
        .connect(&format!("disk://{}/s?colour=blue", tmp.path().display()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(text.contains("colour"), "{text}");
    assert!(
        text.contains("max_record_bytes"),
        "names the known options: {text}"
    );

    for bad in [
        "disk://somehost/var/sessions",
        "disk:",
        "disk:///",
        "disk:///x#frag",
    ] {
        let err = registry().connect(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
    }
    for bad in [
        "max_record_bytes=lots",
        "max_record_bytes=0",
        "browser_idle=forever",
    ] {
        let url = format!("disk://{}/s?{bad}", tmp.path().display());
        let err = registry().connect(&url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
    }
    // None of these opened a store.
    assert!(!tmp.path().join("s").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_a_file_is_unavailable_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = DiskStore::open(file.join("sessions")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("plain-file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_max_record_bytes_are_too_large_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "disk://{}/s?max_record_bytes=1024&cleanup_time=off",
        tmp.path().display()
    );
    let store = registry().connect(&url).await.unwrap();
    let big = Record::new(Timestamp::now()).with_data(
        json!({"blob": "x".repeat(2000)})
            .as_object()
            .cloned()
            .unwrap()
            .into(),
    );
    let id1 = id();
    for result in [store.set(&id1, &big).await, store.create(&id1, &big).await] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
        assert!(err.to_string().contains("1024"), "{err}");
    }
    assert!(
        store.get(&id1).await.unwrap().is_none(),
        "nothing was written"
    );

    // An update that would grow a record past the limit is refused; the record is unchanged.
    let small = record_for(7, HOUR);
    store.set(&id1, &small).await.unwrap();
    let err = store
        .update(&id1, &Patch::new().set("blob", json!("y".repeat(2000))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert_eq!(store.get(&id1).await.unwrap().unwrap(), small);
}

// ---------------------------------------------------------------------------------------------
// The file lock

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_directory_is_refused_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("locked-sessions");
    let first = DiskStore::open(&dir).await.unwrap();
    let id = id();
    first.set(&id, &record_for(1, HOUR)).await.unwrap();

    let err = DiskStore::open(&dir).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains("already open by another process"), "{text}");
    assert!(
        text.contains(&dir.display().to_string()),
        "names the path: {text}"
    );
    assert_eq!(err.target(), Some(dir.display().to_string().as_str()));
    assert_eq!(err.backend(), "disk");

    // Through the registry too.
    let err = registry()
        .connect(&format!("disk://{}", dir.display()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");

    // Dropping the first store releases the lock at once.
    drop(first);
    let second = DiskStore::open(&dir).await.unwrap();
    assert_eq!(second.get(&id).await.unwrap().unwrap().data["n"], 1);
}

// ---------------------------------------------------------------------------------------------
// Damaged records

const RAW_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decode_is_corrupt_and_others_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let good = id();
    let good_record = record_for(1, HOUR);
    {
        let store = DiskStore::open(&dir).await.unwrap();
        store.set(&good, &good_record).await.unwrap();
    }
    let (garbage, bad_json, bad_version) = (id(), id(), id());
    {
        let db = redb::Database::create(dir.join(DATABASE_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(RAW_SESSIONS).unwrap();
            table
                .insert(garbage.as_str(), &b"\xff\x00garbage"[..])
                .unwrap();
            let mut header = vec![1u8];
            header.extend_from_slice(&i64::MAX.to_be_bytes());
            header.extend_from_slice(b"{\"data\": not json");
            table.insert(bad_json.as_str(), header.as_slice()).unwrap();
            table
                .insert(bad_version.as_str(), &[200u8; 40][..])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = DiskStore::open(&dir).await.unwrap();
    for bad in [&garbage, &bad_json, &bad_version] {
        let err = store.get(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(
            !err.to_string().contains(bad.as_str()),
            "no id in the message"
        );
        let err = store
            .update(bad, &Patch::new().set("a", json!(1)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        let err = store.touch(bad, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    }
    // Other ids keep working, and listing skips what cannot be read.
    assert_eq!(store.get(&good).await.unwrap().unwrap(), good_record);
    assert_eq!(store.length().await.unwrap(), 1);
    let all: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(store.stream_all(2))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, good);
    let other = id();
    store.set(&other, &record_for(2, HOUR)).await.unwrap();
    assert!(store.get(&other).await.unwrap().is_some());
    // A damaged record can be overwritten by set, and destroyed.
    store.set(&garbage, &record_for(3, HOUR)).await.unwrap();
    assert_eq!(store.get(&garbage).await.unwrap().unwrap().data["n"], 3);
    store.destroy(&bad_json).await.unwrap();
    assert!(store.get(&bad_json).await.unwrap().is_none());
    assert_eq!(store.cleanup().await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// The expiry index

async fn fill(store: &DiskStore, count: u64, ttl_from_now: Option<Duration>, expired: bool) {
    let store = Arc::new(store.clone());
    // Many concurrent writers: big group commits make filling fast.
    const FILLERS: u64 = 256;
    let per_task = count.div_ceil(FILLERS);
    let mut tasks = Vec::new();
    for t in 0..FILLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t * per_task)..((t + 1) * per_task).min(count) {
                let now = Timestamp::now();
                let mut record = Record::new(now)
                    .with_data(json!({"n": i}).as_object().cloned().unwrap().into());
                record.expires_at = match (ttl_from_now, expired) {
                    (_, true) => Some(now - Duration::from_secs(1)),
                    (Some(ttl), false) => Some(now + ttl),
                    (None, false) => None,
                };
                store
                    .set(&SessionId::generate().unwrap(), &record)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_only_the_expired_and_keeps_the_live() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DiskStore::open(tmp.path().join("s")).await.unwrap();
    fill(&store, 10_000, Some(HOUR), false).await;
    fill(&store, 100, None, true).await;
    assert_eq!(
        store.length().await.unwrap(),
        10_000,
        "expired ones never count"
    );
    assert_eq!(store.cleanup().await.unwrap(), 100);
    assert_eq!(store.length().await.unwrap(), 10_000);
    assert_eq!(store.cleanup().await.unwrap(), 0, "nothing left to clean");
    let page = store.all(None, 10_001).await.unwrap();
    assert_eq!(page.sessions.len(), 10_000);
    assert!(page.next.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_cost_follows_the_expired_not_the_total() {
    // A printed figure, not an assertion on time: 100 expired among 1,000 live vs among 100,000.
    let mut figures = Vec::new();
    for live in [1_000u64, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        let store = DiskStore::open(tmp.path().join("s")).await.unwrap();
        let started = Instant::now();
        fill(&store, live, Some(HOUR), false).await;
        let filled = started.elapsed();
        fill(&store, 100, None, true).await;
        let started = Instant::now();
        let removed = store.cleanup().await.unwrap();
        let took = started.elapsed();
        assert_eq!(removed, 100);
        let started = Instant::now();
        assert_eq!(store.length().await.unwrap(), live);
        let scan = started.elapsed();
        println!(
            "cleanup of 100 expired among {live} live: {took:?} (for comparison, a full scan \
             by length: {scan:?}; filling took {filled:?})"
        );
        figures.push(took);
    }
    println!(
        "cleanup time ratio (100,000 live / 1,000 live): {:.2}",
        figures[1].as_secs_f64() / figures[0].as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_touch_update_rename_and_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let store = DiskStore::builder(tmp.path().join("s"))
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .unwrap();
    let now = clock.now();
    let soon = now + Duration::from_secs(10);
    let (a, b, c, d, renamed) = (id(), id(), id(), id(), id());
    for x in [&a, &b, &c, &d] {
        store
            .set(x, &Record::new(now).expiring_at(soon))
            .await
            .unwrap();
    }
    // a: touched far out; b: updated far out; c: renamed (old id leaves the index); d: destroyed.
    store.touch(&a, Some(now + HOUR)).await.unwrap();
    store
        .update(&b, &Patch::new().expire_at(Some(now + HOUR)))
        .await
        .unwrap();
    store.rename(&c, &renamed).await.unwrap();
    store.destroy(&d).await.unwrap();
    clock.advance(Duration::from_secs(20));
    assert!(
        store.get(&renamed).await.unwrap().is_none(),
        "expired before cleanup"
    );
    assert_eq!(
        store.cleanup().await.unwrap(),
        1,
        "only the renamed session expired"
    );
    assert!(store.get(&a).await.unwrap().is_some());
    assert!(store.get(&b).await.unwrap().is_some());
    // Touching a back into the past makes cleanup find it.
    store
        .touch(&a, Some(clock.now() - Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(store.get(&a).await.unwrap().is_none());
    assert_eq!(store.cleanup().await.unwrap(), 1);
    assert_eq!(store.length().await.unwrap(), 1, "b is left");
    // An owner set by update is followed by the owner index; a destroyed session is forgotten.
    store
        .update(&b, &Patch::new().owner(Some("ada".into())))
        .await
        .unwrap();
    assert_eq!(store.owned_by("ada").await.unwrap().len(), 1);
    store.destroy(&b).await.unwrap();
    assert!(store.owned_by("ada").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_browser_idle_after_reopening_keeps_browser_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let clock = ManualClock::starting_now();
    let browser = id();
    {
        let store = DiskStore::builder(&dir)
            .browser_idle(Duration::from_secs(5))
            .clock(Arc::new(clock.clone()))
            .open()
            .await
            .unwrap();
        store
            .set(&browser, &Record::new(clock.now()))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(10));
    let store = DiskStore::builder(&dir)
        .browser_idle(HOUR)
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .unwrap();
    assert!(store.get(&browser).await.unwrap().is_some());
    assert_eq!(
        store.cleanup().await.unwrap(),
        0,
        "live under the new browser_idle"
    );
    assert!(store.get(&browser).await.unwrap().is_some());
    clock.advance(HOUR);
    assert_eq!(
        store.cleanup().await.unwrap(),
        1,
        "re-indexed under its new deadline"
    );
}

// ---------------------------------------------------------------------------------------------
// Group commit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_writers_are_all_acknowledged_and_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DiskStore::open(tmp.path().join("s")).await.unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..20u64 {
                let id = SessionId::generate().unwrap();
                let record = record_for(t * 1000 + i, HOUR).owned_by(format!("owner-{t}"));
                store.set(&id, &record).await.unwrap();
                // A refused operation in the same batches must not fail the others.
                let err = store
                    .update(
                        &SessionId::generate().unwrap(),
                        &Patch::new().set("x", json!(1)),
                    )
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Gone);
                written.push((id, record));
            }
            written
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    println!(
        "64 writers x 20 sets (+20 refused updates each): {:?}",
        started.elapsed()
    );
    assert_eq!(all.len(), 1280);
    for (id, record) in &all {
        assert_eq!(store.get(id).await.unwrap().as_ref(), Some(record));
    }
    assert_eq!(store.length().await.unwrap(), 1280);
    assert_eq!(store.owned_by("owner-7").await.unwrap().len(), 20);
    assert_eq!(store.destroy_owned_by("owner-7", None).await.unwrap(), 20);
    assert_eq!(store.length().await.unwrap(), 1260);
    assert_eq!(store.clear().await.unwrap(), 1260);
    assert_eq!(store.length().await.unwrap(), 0);
}
