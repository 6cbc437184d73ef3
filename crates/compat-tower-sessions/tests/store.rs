//! `TowerSessionsStore` called directly, as tower-sessions calls it: the id mapping, create on a
//! taken id, save replacing the record, load of an expired record, delete, errors.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sessionbank_core::{ManualClock, MemoryStore, Operation, SessionId, StoreHandle, Timestamp};
use sessionbank_testkit::InstrumentedStore;
use sessionbank_tower_sessions::{ID_PREFIX, TowerSessionsStore, session_id_for, tower_id_of};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::ExpiredDeletion;

fn record(id: Id, key: &str, value: serde_json::Value, expiry: OffsetDateTime) -> Record {
    Record {
        id,
        data: HashMap::from([(key.to_owned(), value)]),
        expiry_date: expiry,
    }
}

fn at(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000).unwrap()
}

#[test]
fn the_id_mapping_is_injective_reversible_and_prefixed() {
    let samples = [
        0,
        1,
        -1,
        i128::MIN,
        i128::MAX,
        1 << 64,
        0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
    ];
    let mut seen = std::collections::HashSet::new();
    for raw in samples
        .into_iter()
        .chain((0..1000).map(|_| Id::default().0))
    {
        let id = Id(raw);
        let ours = session_id_for(&id);
        assert!(ours.as_str().starts_with(ID_PREFIX));
        assert_eq!(
            &ours.as_str()[ID_PREFIX.len()..],
            id.to_string(),
            "tower's own text"
        );
        assert_eq!(SessionId::parse(ours.as_str()).unwrap(), ours);
        assert_eq!(tower_id_of(&ours), Some(id));
        assert!(seen.insert(ours), "two ids mapped to one");
    }
    // Neighbouring ids map to different records.
    assert_ne!(session_id_for(&Id(0)), session_id_for(&Id(1)));
    // Native ids are not tower ids; neither is non-canonical base64.
    assert_eq!(tower_id_of(&SessionId::generate().unwrap()), None);
    let last = session_id_for(&Id(0))
        .as_str()
        .replace("AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAB");
    assert_eq!(tower_id_of(&SessionId::parse(&last).unwrap()), None);
}

#[tokio::test]
async fn create_on_a_taken_id_draws_a_new_one_and_keeps_the_other() {
    let store = StoreHandle::new(MemoryStore::new());
    let tower = TowerSessionsStore::new(store.clone());
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);

    let mut first = record(Id(42), "who", "first".into(), later);
    tower.create(&mut first).await.unwrap();
    assert_eq!(first.id, Id(42), "a free id is kept");

    let mut second = record(Id(42), "who", "second".into(), later);
    tower.create(&mut second).await.unwrap();
    assert_ne!(second.id, Id(42), "a taken id is replaced");
    assert_eq!(
        tower.load(&Id(42)).await.unwrap().unwrap().data["who"],
        "first"
    );
    assert_eq!(
        tower.load(&second.id).await.unwrap().unwrap().data["who"],
        "second"
    );
    assert_eq!(store.length().await.unwrap(), 2);
}

#[tokio::test]
async fn save_replaces_the_record_and_load_reads_it_back() {
    let store = StoreHandle::new(MemoryStore::new());
    let tower = TowerSessionsStore::new(store.clone());
    let expiry = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let id = Id::default();

    let mut rec = record(id, "a", 1.into(), expiry);
    rec.data
        .insert("b".into(), serde_json::json!({"nested": [1, 2]}));
    tower.save(&rec).await.unwrap(); // never inserts: a save of an unknown id writes nothing
    assert!(tower.load(&id).await.unwrap().is_none());
    let mut created = rec.clone();
    tower.create(&mut created).await.unwrap();
    let id = created.id;
    rec.id = id;
    let loaded = tower.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.id, id);
    assert_eq!(loaded.data, rec.data);
    // sessionbank keeps milliseconds.
    let truncated = expiry
        .replace_nanosecond(expiry.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap();
    assert_eq!(loaded.expiry_date, truncated);

    let replacement = record(id, "c", 3.into(), expiry + time::Duration::hours(1));
    tower.save(&replacement).await.unwrap();
    let loaded = tower.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.data.len(), 1, "save replaces the whole record");
    assert_eq!(loaded.data["c"], 3);
    assert!(loaded.expiry_date > truncated);

    tower.delete(&id).await.unwrap();
    assert!(tower.load(&id).await.unwrap().is_none());
    tower.delete(&id).await.unwrap(); // idempotent
}

/// A save racing a logout (the request loaded the session, another destroyed it, then this
/// one saves) writes nothing: the session stays gone. And a save keeps the session's creation
/// time, so an absolute timeout counts from its start.
#[tokio::test]
async fn save_never_brings_a_destroyed_session_back_and_keeps_created() {
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    let store = StoreHandle::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let tower = TowerSessionsStore::new(store.clone());
    let expiry = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut rec = record(Id::default(), "user", "ada".into(), expiry);
    tower.create(&mut rec).await.unwrap();
    let ours = session_id_for(&rec.id);
    let created = store.get(&ours).await.unwrap().unwrap().created_at;

    clock.advance(Duration::from_secs(30));
    rec.data.insert("cart".into(), "full".into());
    tower.save(&rec).await.unwrap();
    let saved = store.get(&ours).await.unwrap().unwrap();
    assert_eq!(saved.created_at, created, "save keeps the creation time");
    assert_eq!(saved.data["cart"], "full");

    // The request in flight loaded `rec`; a logout destroys the session; then it saves.
    let loaded = tower.load(&rec.id).await.unwrap().unwrap();
    tower.delete(&rec.id).await.unwrap();
    tower.save(&loaded).await.unwrap();
    assert!(store.get(&ours).await.unwrap().is_none(), "not resurrected");
    assert_eq!(store.length().await.unwrap(), 0, "nothing written anywhere");
}

#[tokio::test]
async fn an_expired_record_loads_as_none_and_delete_expired_removes_it() {
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    let store = StoreHandle::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let tower = TowerSessionsStore::new(store.clone());
    let now = Timestamp::from_millis(1_700_000_000_000);
    let (id, untouched, live) = (Id::default(), Id::default(), Id::default());
    let soon = at(now + Duration::from_secs(60));
    tower
        .create(&mut record(id, "a", 1.into(), soon))
        .await
        .unwrap();
    tower
        .create(&mut record(untouched, "a", 1.into(), soon))
        .await
        .unwrap();
    let later = at(now + Duration::from_secs(3600));
    tower
        .create(&mut record(live, "a", 1.into(), later))
        .await
        .unwrap();
    assert!(tower.load(&id).await.unwrap().is_some());

    clock.advance(Duration::from_secs(61));
    assert!(tower.load(&id).await.unwrap().is_none(), "expired: None");
    assert!(tower.load(&live).await.unwrap().is_some());
    tower.delete_expired().await.unwrap();
    // `clear` counts what is left, live or expired: only the live one.
    assert_eq!(
        store.clear().await.unwrap(),
        1,
        "delete_expired removed both expired"
    );
}

#[tokio::test]
async fn store_errors_become_backend_errors_without_the_id() {
    let inner = InstrumentedStore::new(MemoryStore::new());
    let tower = TowerSessionsStore::new(StoreHandle::new(inner.clone()));
    let id = Id::default();
    inner.fail(&[
        Operation::Get,
        Operation::Set,
        Operation::Create,
        Operation::Destroy,
    ]);
    let rec = record(
        id,
        "a",
        1.into(),
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let errors = [
        tower.load(&id).await.unwrap_err(),
        tower.save(&rec).await.unwrap_err(),
        tower.create(&mut rec.clone()).await.unwrap_err(),
        tower.delete(&id).await.unwrap_err(),
    ];
    let ours = session_id_for(&id);
    for err in errors {
        assert!(
            matches!(err, tower_sessions::session_store::Error::Backend(_)),
            "{err:?}"
        );
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&id.to_string()), "{text}");
        assert!(!text.contains(ours.as_str()), "{text}");
    }
    assert!(!format!("{tower:?}").contains(&id.to_string()));
}
