//! The handle's unit tests, over a store that counts its calls.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::memory::MemoryStore;
use crate::record::Patch;
use crate::store::{Capabilities, Page, Store};
use crate::time::{Clock, ManualClock};

const MIN: Duration = Duration::from_secs(60);

/// A real MemoryStore that counts the calls made to it.
#[derive(Debug, Clone)]
struct Counting {
    inner: MemoryStore,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Counting {
    fn new(clock: SharedClock) -> Self {
        Self {
            inner: MemoryStore::builder().clock(clock).build(),
            calls: Arc::default(),
        }
    }
    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }
    fn calls(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
}

#[async_trait]
impl Store for Counting {
    fn backend(&self) -> &'static str {
        "counting"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        self.count("get");
        self.inner.get(id).await
    }
    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.count("set");
        self.inner.set(id, record).await
    }
    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.count("create");
        self.inner.create(id, record).await
    }
    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        self.count("update");
        self.inner.update(id, patch).await
    }
    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        self.count("touch");
        self.inner.touch(id, expires_at).await
    }
    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.count("destroy");
        self.inner.destroy(id).await
    }
    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        self.count("rename");
        self.inner.rename(old, new).await
    }
    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        self.inner.all(cursor, limit).await
    }
    async fn length(&self) -> Result<u64> {
        self.inner.length().await
    }
    async fn clear(&self) -> Result<u64> {
        self.inner.clear().await
    }
    async fn cleanup(&self) -> Result<u64> {
        self.inner.cleanup().await
    }
    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        self.inner.owned_by(owner).await
    }
    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        self.inner.destroy_owned_by(owner, except).await
    }
}

struct Fixture {
    clock: ManualClock,
    store: Counting,
    handle: StoreHandle,
    policy: ExpiryPolicy,
}

impl Fixture {
    fn new(policy: ExpiryPolicy) -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let store = Counting::new(Arc::new(clock.clone()));
        let handle = StoreHandle::new(store.clone());
        Self {
            clock,
            store,
            handle,
            policy,
        }
    }
    fn session(&self, incoming: Option<SessionId>) -> SessionHandle {
        SessionHandle::new(
            self.handle.clone(),
            self.policy,
            Arc::new(self.clock.clone()),
            incoming,
        )
    }
    /// A stored session holding `key = value`, by way of a first request.
    async fn saved(&self, key: &str, value: i64) -> SessionId {
        let s = self.session(None);
        s.insert(key, value).await.unwrap();
        match s.finish().await.unwrap() {
            Outcome::SetCookie { id, .. } => id,
            other => panic!("expected SetCookie, got {other:?}"),
        }
    }
}

fn idle_policy() -> ExpiryPolicy {
    ExpiryPolicy::new().idle(30 * MIN).no_absolute()
}

#[test]
fn handle_and_its_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    let f = Fixture::new(idle_policy());
    let s = f.session(None);
    send_sync(&s);
    send(s.insert("a", 1));
    send(s.get::<u32>("a"));
    send(s.cycle_id());
    send(s.destroy());
    send(s.finish());
}

#[tokio::test]
async fn untouched_session_makes_no_store_call() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let before = f.store.total();
    let s = f.session(Some(id));
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    assert!(!s.is_loaded());
    assert_eq!(f.store.total(), before);
}

#[tokio::test]
async fn new_session_is_stored_only_with_data_and_under_a_fresh_id() {
    let f = Fixture::new(idle_policy());
    let s = f.session(None);
    assert_eq!(s.get_value("x").await.unwrap(), None);
    assert_eq!(s.id().await.unwrap(), None);
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    assert_eq!(f.store.calls("create"), 0, "no empty session stored");

    let unknown = SessionId::generate().unwrap();
    let s = f.session(Some(unknown));
    s.insert("x", 1).await.unwrap();
    let Outcome::SetCookie { id, expires_at } = s.finish().await.unwrap() else {
        panic!("expected SetCookie")
    };
    assert_ne!(id, unknown, "never the client's id");
    assert_eq!(expires_at, Some(f.clock.now() + 30 * MIN));
    assert!(f.handle.get(&unknown).await.unwrap().is_none());
    let record = f.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(record.data["x"], 1);
    assert_eq!(record.expires_at, expires_at);

    // An owner alone is enough to store a session.
    let s = f.session(None);
    s.set_owner(Some("ada".into())).await.unwrap();
    assert!(matches!(
        s.finish().await.unwrap(),
        Outcome::SetCookie { .. }
    ));
}

#[tokio::test]
async fn expired_by_store_or_policy_starts_fresh() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    f.clock.advance(31 * MIN);
    let s = f.session(Some(id));
    assert_eq!(s.get_value("a").await.unwrap(), None);
    assert_eq!(s.id().await.unwrap(), None);

    // Still live in the store, but the policy's absolute timeout is over.
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    f.clock.advance(20 * MIN);
    let strict = SessionHandle::new(
        f.handle.clone(),
        ExpiryPolicy::new().idle(30 * MIN).absolute(10 * MIN),
        Arc::new(f.clock.clone()),
        Some(id),
    );
    assert_eq!(strict.data().await.unwrap().len(), 0);
    assert!(f.handle.get(&id).await.unwrap().is_none(), "destroyed");
}

#[tokio::test]
async fn finish_writes_only_changed_keys_and_concurrent_changes_survive() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("shared", 0).await;
    let a = f.session(Some(id));
    let b = f.session(Some(id));
    // Both load before either writes.
    assert_eq!(a.get::<i64>("shared").await.unwrap(), Some(0));
    assert_eq!(b.get::<i64>("shared").await.unwrap(), Some(0));
    a.insert("a", "from a").await.unwrap();
    b.insert("b", "from b").await.unwrap();
    b.remove("shared").await.unwrap();
    a.finish().await.unwrap();
    b.finish().await.unwrap();
    let data = f.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(data.get("a"), Some(&"from a".into()));
    assert_eq!(data.get("b"), Some(&"from b".into()));
    assert_eq!(data.get("shared"), None);
    assert_eq!(f.store.calls("update"), 2);
    assert_eq!(f.store.calls("set"), 0, "never a whole-record overwrite");
}

#[tokio::test]
async fn writing_the_same_value_is_no_change() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let s = f.session(Some(id));
    s.insert("a", 1).await.unwrap();
    assert_eq!(s.remove("missing").await.unwrap(), None);
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    assert_eq!(f.store.calls("update"), 0);
    assert_eq!(f.store.calls("touch"), 0);
}

#[tokio::test]
async fn update_after_another_request_destroyed_does_not_resurrect() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let slow = f.session(Some(id));
    assert_eq!(slow.get::<i64>("a").await.unwrap(), Some(1));
    let logout = f.session(Some(id));
    logout.destroy().await.unwrap();
    assert_eq!(logout.finish().await.unwrap(), Outcome::ClearCookie);

    slow.insert("b", 2).await.unwrap();
    assert_eq!(slow.finish().await.unwrap(), Outcome::ClearCookie);
    assert!(f.handle.get(&id).await.unwrap().is_none());
    assert_eq!(f.store.calls("create"), 1, "only the first request created");

    // A touch that finds the session gone clears too.
    let id = f.saved("a", 1).await;
    let idle = f.session(Some(id));
    idle.get_value("a").await.unwrap();
    f.handle.destroy(&id).await.unwrap();
    f.clock.advance(20 * MIN);
    assert_eq!(idle.finish().await.unwrap(), Outcome::ClearCookie);
    assert!(f.handle.get(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn touch_only_below_the_threshold() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;

    f.clock.advance(5 * MIN);
    let s = f.session(Some(id));
    s.get_value("a").await.unwrap();
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    assert_eq!(f.store.calls("touch"), 0);

    f.clock.advance(11 * MIN); // 16 minutes after the write: 14 left of 30
    let s = f.session(Some(id));
    s.get_value("a").await.unwrap();
    let expected = f.clock.now() + 30 * MIN;
    assert_eq!(
        s.finish().await.unwrap(),
        Outcome::SetCookie {
            id,
            expires_at: Some(expected)
        }
    );
    assert_eq!(f.store.calls("touch"), 1);
    assert_eq!(f.store.calls("update"), 0);
    let record = f.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(expected));
}

#[tokio::test]
async fn writes_move_the_expiry_only_below_the_threshold() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let first_expiry = f.handle.get(&id).await.unwrap().unwrap().expires_at;

    f.clock.advance(5 * MIN); // 25 of 30 minutes left: the data is written, the expiry kept
    let s = f.session(Some(id));
    s.insert("a", 2).await.unwrap();
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    let record = f.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (record.data["a"].clone(), record.expires_at),
        (2.into(), first_expiry)
    );
    assert_eq!(record.last_access, f.clock.now());

    f.clock.advance(11 * MIN); // 14 left: the expiry moves and the cookie is sent again
    let s = f.session(Some(id));
    s.insert("a", 3).await.unwrap();
    let expected = Some(f.clock.now() + 30 * MIN);
    assert_eq!(
        s.finish().await.unwrap(),
        Outcome::SetCookie {
            id,
            expires_at: expected
        }
    );
    let record = f.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (record.data["a"].clone(), record.expires_at),
        (3.into(), expected)
    );
    assert_eq!(f.store.calls("update"), 2);
    assert_eq!(f.store.calls("touch"), 0);

    // A shorter idle timeout than the stored expiry allows moves it sooner at once.
    let strict = Fixture {
        policy: ExpiryPolicy::new().idle(10 * MIN).no_absolute(),
        ..f
    };
    let s = strict.session(Some(id));
    s.insert("a", 4).await.unwrap();
    let sooner = Some(strict.clock.now() + 10 * MIN);
    assert_eq!(
        s.finish().await.unwrap(),
        Outcome::SetCookie {
            id,
            expires_at: sooner
        }
    );
    let stored = strict.handle.get(&id).await.unwrap().unwrap().expires_at;
    assert_eq!(stored, sooner);
}

#[tokio::test]
async fn absolute_only_policy_does_not_resend_the_cookie_on_writes() {
    let f = Fixture::new(ExpiryPolicy::new().no_idle().absolute(60 * MIN));
    let id = f.saved("a", 1).await;
    f.clock.advance(MIN);
    let s = f.session(Some(id));
    s.insert("a", 2).await.unwrap();
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
    assert_eq!(f.handle.get(&id).await.unwrap().unwrap().data["a"], 2);
}

#[tokio::test]
async fn cycle_id_moves_data_and_pending_changes() {
    let f = Fixture::new(idle_policy());
    let old = f.saved("a", 1).await;
    let s = f.session(Some(old));
    s.insert("user", "ada").await.unwrap();
    s.cycle_id().await.unwrap();
    let new = s.id().await.unwrap().unwrap();
    assert_ne!(new, old);
    assert!(f.handle.get(&old).await.unwrap().is_none());
    let Outcome::SetCookie { id, .. } = s.finish().await.unwrap() else {
        panic!("expected SetCookie")
    };
    assert_eq!(id, new);
    let data = f.handle.get(&new).await.unwrap().unwrap().data;
    assert_eq!(data["a"], 1);
    assert_eq!(data["user"], "ada");

    // Without other changes, the new cookie is still sent.
    let s = f.session(Some(new));
    s.cycle_id().await.unwrap();
    let newer = s.id().await.unwrap().unwrap();
    assert!(matches!(s.finish().await.unwrap(), Outcome::SetCookie { id, .. } if id == newer));

    // A new session has nothing to rename.
    let s = f.session(None);
    s.cycle_id().await.unwrap();
    assert_eq!(s.finish().await.unwrap(), Outcome::Unchanged);
}

#[tokio::test]
async fn cycle_id_of_a_destroyed_session_keeps_it_destroyed() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let s = f.session(Some(id));
    s.get_value("a").await.unwrap();
    f.handle.destroy(&id).await.unwrap();
    s.cycle_id().await.unwrap();
    s.insert("b", 2).await.unwrap();
    assert_eq!(s.finish().await.unwrap(), Outcome::ClearCookie);
    assert_eq!(f.handle.length().await.unwrap(), 0);
}

#[tokio::test]
async fn destroy_needs_no_read_and_later_data_starts_a_new_session() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let gets = f.store.calls("get");
    let s = f.session(Some(id));
    s.destroy().await.unwrap();
    assert_eq!(f.store.calls("get"), gets, "no read to destroy");
    assert!(f.handle.get(&id).await.unwrap().is_none());
    assert_eq!(s.finish().await.unwrap(), Outcome::ClearCookie);

    let id = f.saved("a", 1).await;
    let s = f.session(Some(id));
    s.destroy().await.unwrap();
    s.insert("flash", "signed out").await.unwrap();
    let Outcome::SetCookie { id: fresh, .. } = s.finish().await.unwrap() else {
        panic!("expected SetCookie")
    };
    assert_ne!(fresh, id);
    let record = f.handle.get(&fresh).await.unwrap().unwrap();
    assert_eq!(record.data.len(), 1);
    assert_eq!(record.data["flash"], "signed out");
}

#[tokio::test]
async fn owner_and_record() {
    let f = Fixture::new(idle_policy());
    let id = f.saved("a", 1).await;
    let s = f.session(Some(id));
    assert_eq!(s.owner().await.unwrap(), None);
    s.set_owner(Some("ada".into())).await.unwrap();
    s.finish().await.unwrap();
    let owned = f.handle.owned_by("ada").await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].0, id);

    let s = f.session(Some(id));
    let record = s.record().await.unwrap().unwrap();
    assert_eq!(record.owner.as_deref(), Some("ada"));
    assert!(record.expires_at.is_some());
    assert!(f.session(None).record().await.unwrap().is_none());
}

#[tokio::test]
async fn bad_types_name_the_key_not_the_value() {
    let f = Fixture::new(idle_policy());
    let s = f.session(None);
    s.insert("token", "hunter2-secret").await.unwrap();
    let err = s.get::<u64>("token").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.chain().contains("token"));
    assert!(!err.chain().contains("hunter2"), "{}", err.chain());
    assert!(!format!("{s:?}").contains("hunter2"));
}
