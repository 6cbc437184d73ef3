//! `SessionbankStore` under actix-session's own `SessionMiddleware` and `Session`, in real
//! actix-web apps driven with `actix_web::test`, over a MemoryStore (on a manual clock, wrapped
//! to count calls and inject failures) and over the disk store opened by URL
//! (`sessionbank::connect("disk://…")`, on the real clock). Every case runs on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::storage::{SaveError, SessionKey, SessionStore};
use actix_session::{Session, SessionMiddleware};
use actix_web::body::{MessageBody, to_bytes};
use actix_web::cookie::{Key, time::Duration as Ttl};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::test::{TestRequest, init_service, try_call_service};
use actix_web::{App, web};
use futures::TryStreamExt;
use sessionbank_actix_session::SessionbankStore;
use sessionbank_core::serde_json::{Value, json};
use sessionbank_core::{
    ExpiryPolicy, ManualClock, MemoryStore, Operation, Record, SessionHandle, SessionId,
    SharedClock, StoreExt, StoreHandle, Timestamp, system_clock,
};
use sessionbank_testkit::InstrumentedStore;
use tempfile::TempDir;
use tokio::sync::Notify;

/// Text planted in injected failures; it must never reach a response.
const SECRET_ERROR_TEXT: &str = "db-password=hunter2 at 10.0.0.7";

/// The session TTL of the apps here: short, because the disk store runs on the real clock, yet
/// long enough that each "still live" check has 0.4 × TTL (800 ms) of slack for a slow,
/// fsyncing request on a busy machine. ("Expired" checks cannot be early: real time only
/// moves on.)
const TTL_MS: u64 = 2_000;

/// Lets a test hold a handler between actix-session's load and its write.
#[derive(Default)]
struct Gate {
    loaded: Notify,
    go: Notify,
}

/// One backend under test.
struct Backend {
    handle: StoreHandle,
    store: SessionbankStore,
    /// actix-session's cookie key, the same for every app built here.
    key: Key,
    gate: Arc<Gate>,
    /// The memory backend's clock; `None` for the disk store, which runs on the real clock.
    clock: Option<ManualClock>,
    /// The memory backend's fault injection.
    instrumented: Option<InstrumentedStore<MemoryStore>>,
    _dir: Option<TempDir>,
}

impl Backend {
    fn memory() -> Self {
        let clock = ManualClock::new(Timestamp::now());
        let instrumented = InstrumentedStore::new(
            MemoryStore::builder()
                .clock(Arc::new(clock.clone()))
                .build(),
        )
        .with_failure_message(&format!("injected failure: {SECRET_ERROR_TEXT}"));
        let handle = StoreHandle::new(instrumented.clone());
        Self {
            store: SessionbankStore::new(handle.clone()).with_clock(Arc::new(clock.clone())),
            handle,
            key: Key::generate(),
            gate: Arc::default(),
            clock: Some(clock),
            instrumented: Some(instrumented),
            _dir: None,
        }
    }

    async fn disk() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("disk://{}", dir.path().display());
        let handle = sessionbank::connect(&url).await.unwrap();
        assert_eq!(handle.backend(), "disk");
        Self {
            store: SessionbankStore::new(handle.clone()),
            handle,
            key: Key::generate(),
            gate: Arc::default(),
            clock: None,
            instrumented: None,
            _dir: Some(dir),
        }
    }

    fn clock(&self) -> SharedClock {
        match &self.clock {
            Some(clock) => Arc::new(clock.clone()),
            None => system_clock(),
        }
    }

    /// Lets `millis` pass: on the manual clock, or for real.
    async fn pass(&self, millis: u64) {
        let d = Duration::from_millis(millis);
        match &self.clock {
            Some(clock) => clock.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }

    async fn all(&self) -> Vec<(SessionId, Record)> {
        self.handle.stream_all(100).try_collect().await.unwrap()
    }

    /// The only session in the store.
    async fn only_session(&self) -> (SessionId, Record) {
        let mut all = self.all().await;
        assert_eq!(all.len(), 1, "expected exactly one session");
        all.remove(0)
    }

    /// An actix-web app with actix-session's middleware over this backend: persistent
    /// sessions of [`TTL_MS`], extended as `extension` says.
    async fn app(
        &self,
        extension: TtlExtensionPolicy,
    ) -> impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    > {
        let middleware = SessionMiddleware::builder(self.store.clone(), self.key.clone())
            .cookie_secure(false)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(Ttl::milliseconds(TTL_MS as i64))
                    .session_ttl_extension_policy(extension),
            )
            .build();
        init_service(
            App::new()
                .app_data(web::Data::from(self.gate.clone()))
                .route("/count", web::get().to(count))
                .route("/get/{key}", web::get().to(read))
                .route("/set/{key}/{value}", web::post().to(set))
                .route("/gated-set/{key}/{value}", web::post().to(gated_set))
                .route("/purge", web::post().to(purge))
                .route("/renew", web::post().to(renew))
                .wrap(middleware),
        )
        .await
    }
}

async fn count(session: Session) -> actix_web::Result<String> {
    let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", n)?;
    Ok(n.to_string())
}

/// The JSON text under `key`, or nothing.
async fn read(session: Session, key: web::Path<String>) -> actix_web::Result<String> {
    Ok(session
        .get::<Value>(&key)?
        .map(|v| v.to_string())
        .unwrap_or_default())
}

async fn set(session: Session, path: web::Path<(String, String)>) -> actix_web::Result<String> {
    let (key, value) = path.into_inner();
    session.insert(key, value)?;
    Ok("ok".into())
}

/// actix-session loaded the session before the handler; tell the test, wait, then write.
async fn gated_set(
    session: Session,
    gate: web::Data<Gate>,
    path: web::Path<(String, String)>,
) -> actix_web::Result<String> {
    let (key, value) = path.into_inner();
    gate.loaded.notify_one();
    gate.go.notified().await;
    session.insert(key, value)?;
    Ok("ok".into())
}

async fn purge(session: Session) -> &'static str {
    session.purge();
    "purged"
}

async fn renew(session: Session) -> &'static str {
    session.renew();
    "renewed"
}

async fn send<S, B>(service: &S, method: &str, path: &str, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = TestRequest::default()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header(("cookie", cookie));
    }
    // actix-session answers a store failure with an `Err` carrying an opaque response: the
    // server sends `error_response()`, so the test does too.
    match try_call_service(service, request.to_request()).await {
        Ok(response) => {
            let (status, set_cookies) = (response.status(), set_cookies(response.headers()));
            let body = to_bytes(response.into_body()).await.ok().unwrap();
            Reply::new(status, set_cookies, &body)
        }
        Err(error) => {
            let response = error.error_response();
            let (status, set_cookies) = (response.status(), set_cookies(response.headers()));
            let body = to_bytes(response.into_body()).await.ok().unwrap();
            Reply::new(status, set_cookies, &body)
        }
    }
}

fn set_cookies(headers: &actix_web::http::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    body: String,
}

impl Reply {
    fn new(status: StatusCode, set_cookies: Vec<String>, body: &[u8]) -> Self {
        Self {
            status,
            set_cookies,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// The single `Set-Cookie` header, which must be there.
    fn set_cookie(&self) -> &str {
        assert_eq!(self.set_cookies.len(), 1, "{self:?}");
        &self.set_cookies[0]
    }

    /// The `name=value` pair of the single `Set-Cookie`, as the next request sends it.
    fn cookie_pair(&self) -> String {
        self.set_cookie().split(';').next().unwrap().to_owned()
    }
}

fn key(text: &str) -> SessionKey {
    SessionKey::try_from(text.to_owned()).unwrap()
}

fn state(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ttl_secs(secs: i64) -> Ttl {
    Ttl::seconds(secs)
}

// ---------------------------------------------------------------------------------------------
// The cases, each run on both backends.

/// Set, get and a counter through actix-session; the record holds the values as JSON values.
async fn set_and_get_round_trip(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let reply = send(&app, "POST", "/set/user/ada", None).await;
    assert_eq!(reply.status, 200);
    let cookie = reply.cookie_pair();
    assert!(cookie.starts_with("id="), "{cookie}");

    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        r#""ada""#
    );
    assert_eq!(send(&app, "GET", "/count", Some(&cookie)).await.body, "1");
    assert_eq!(send(&app, "GET", "/count", Some(&cookie)).await.body, "2");

    let (_, record) = b.only_session().await;
    assert_eq!(
        Value::from(record.data.clone()),
        json!({"user": "ada", "visits": 2})
    );
    let now = b.clock().now();
    let expires_at = record.expires_at.expect("a TTL gives an expiry");
    assert!(expires_at > now, "live");
    assert!(
        expires_at <= now + Duration::from_millis(TTL_MS),
        "now + TTL at most"
    );
    // Without a cookie: a new visitor, a new session.
    assert_eq!(send(&app, "GET", "/count", None).await.body, "1");
    assert_eq!(b.all().await.len(), 2);
}

/// The TTL becomes the record's expiry, and the store enforces it.
async fn the_ttl_expires_the_session(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();
    b.pass(TTL_MS * 6 / 10).await;
    // Reading changes nothing, and with OnStateChanges does not extend.
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        r#""ada""#
    );
    b.pass(TTL_MS / 2).await;
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        "",
        "expired"
    );
    assert!(b.all().await.is_empty(), "never listed once expired");
}

/// `update_ttl` (actix-session's OnEveryRequest) is a touch that moves the expiry.
async fn update_ttl_extends_the_session(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnEveryRequest).await;
    let cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();
    b.pass(TTL_MS * 6 / 10).await;
    let reply = send(&app, "GET", "/get/user", Some(&cookie)).await;
    assert_eq!(reply.body, r#""ada""#);
    b.pass(TTL_MS * 6 / 10).await; // past the first expiry, not past the extended one
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        r#""ada""#,
        "extended"
    );
    if let Some(store) = &b.instrumented {
        assert_eq!(store.calls(Operation::Touch), 2);
        assert_eq!(store.calls(Operation::Update), 0, "a touch writes no data");
    }
    b.pass(TTL_MS * 11 / 10).await;
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        "",
        "expired"
    );
}

/// `Session::purge` deletes the session from the store and the cookie from the browser.
async fn purge_deletes_the_session(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();
    let (id, _) = b.only_session().await;

    let reply = send(&app, "POST", "/purge", Some(&cookie)).await;
    assert_eq!(reply.body, "purged");
    let removal = reply.set_cookie();
    assert!(removal.starts_with("id=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(b.handle.get(&id).await.unwrap().is_none());
    assert!(b.all().await.is_empty());
    assert_eq!(send(&app, "GET", "/get/user", Some(&cookie)).await.body, "");
}

/// `Session::renew` moves the state to a fresh key; the old key is dead.
async fn renew_cycles_the_key(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let old_cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();
    let (old, _) = b.only_session().await;

    let reply = send(&app, "POST", "/renew", Some(&old_cookie)).await;
    assert_eq!(reply.body, "renewed");
    let new_cookie = reply.cookie_pair();
    assert_ne!(new_cookie, old_cookie);
    let (new, record) = b.only_session().await;
    assert_ne!(new, old);
    assert_eq!(record.data["user"], "ada");
    assert!(b.handle.get(&old).await.unwrap().is_none(), "old id gone");

    assert_eq!(
        send(&app, "GET", "/get/user", Some(&new_cookie)).await.body,
        r#""ada""#
    );
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&old_cookie)).await.body,
        ""
    );
}

/// A request that loaded the session before another destroyed it (a logout racing a slow
/// request) writes nothing: the old id stays gone, no new session appears, and the cookie it
/// gets back loads as no session.
async fn an_update_never_brings_a_vanished_session_back(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();
    let (old, _) = b.only_session().await;

    let slow = send(&app, "POST", "/gated-set/cart/full", Some(&cookie));
    let logout = async {
        b.gate.loaded.notified().await; // actix-session has loaded the state
        b.handle.destroy(&old).await.unwrap();
        b.gate.go.notify_one();
    };
    let (slow, ()) = tokio::join!(slow, logout);

    assert_eq!(slow.status, 200);
    assert!(
        b.handle.get(&old).await.unwrap().is_none(),
        "not resurrected"
    );
    assert!(
        b.all().await.is_empty(),
        "the slow request's state is not saved anywhere: the logout wins"
    );
    let after = slow.cookie_pair();
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&after)).await.body,
        "",
        "the cookie the slow request got back is logged out"
    );
}

/// The record is sessionbank's JSON object: the native session handle reads and writes the
/// same values actix-session does.
async fn values_are_shared_with_native_sessionbank(b: Backend) {
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let cookie = send(&app, "GET", "/count", None).await.cookie_pair();
    let (id, _) = b.only_session().await;

    let native = SessionHandle::new(b.handle.clone(), ExpiryPolicy::new(), b.clock(), Some(id));
    assert_eq!(native.get::<u64>("visits").await.unwrap(), Some(1));
    native.insert("theme", "dark").await.unwrap();
    native.finish().await.unwrap();

    assert_eq!(
        send(&app, "GET", "/get/theme", Some(&cookie)).await.body,
        r#""dark""#
    );
    assert_eq!(send(&app, "GET", "/count", Some(&cookie)).await.body, "2");
}

/// The `SessionStore` methods called directly: key mapping, whole-state update, TTL, delete.
async fn the_store_methods_directly(b: Backend) {
    let store = &b.store;

    // Keys that are not sessionbank ids, or unknown ones: no session, no error.
    assert_eq!(
        store.load(&key("not-a-sessionbank-id")).await.unwrap(),
        None
    );
    let unknown = SessionId::generate().unwrap();
    assert_eq!(store.load(&key(unknown.as_str())).await.unwrap(), None);
    store
        .update_ttl(&key("not-a-sessionbank-id"), &ttl_secs(60))
        .await
        .unwrap();
    store.delete(&key("not-a-sessionbank-id")).await.unwrap();

    // save: a fresh sessionbank id as the key.
    let first = state(&[("a", "1"), ("b", r#""x""#)]);
    let k = store.save(first.clone(), &ttl_secs(60)).await.unwrap();
    let id = SessionId::parse(k.as_ref()).expect("the key is a SessionId");
    assert_eq!(store.load(&k).await.unwrap(), Some(first));
    let record = b.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(Value::from(record.data), json!({"a": 1, "b": "x"}));

    // update: the stored state becomes the given one, under the same key.
    let second = state(&[("b", r#""y""#), ("c", "[1,2]"), ("d", r#"{"z":null}"#)]);
    let same = store
        .update(key(k.as_ref()), second.clone(), &ttl_secs(60))
        .await
        .unwrap();
    assert_eq!(same, k);
    assert_eq!(store.load(&k).await.unwrap(), Some(second.clone()));

    // update_ttl: only the expiry moves.
    let before = b.handle.get(&id).await.unwrap().unwrap();
    store.update_ttl(&k, &ttl_secs(3600)).await.unwrap();
    let after = b.handle.get(&id).await.unwrap().unwrap();
    assert!(
        after.expires_at.unwrap() >= before.expires_at.unwrap() + Duration::from_secs(3000),
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.data, before.data);

    // delete: gone, idempotent, and neither update_ttl nor update brings it back.
    store.delete(&k).await.unwrap();
    assert_eq!(store.load(&k).await.unwrap(), None);
    store.delete(&k).await.unwrap();
    store.update_ttl(&k, &ttl_secs(60)).await.unwrap();
    assert!(b.handle.get(&id).await.unwrap().is_none());
    let sessions_before = b.all().await.len();
    let returned = store
        .update(key(k.as_ref()), second.clone(), &ttl_secs(60))
        .await
        .unwrap();
    assert_eq!(returned, k, "the dead key, not a new one");
    assert_eq!(store.load(&k).await.unwrap(), None, "not resurrected");
    assert_eq!(b.all().await.len(), sessions_before, "nothing written");

    // update of a foreign key: nothing written either.
    let foreign = store
        .update(key("not-a-sessionbank-id"), second, &ttl_secs(60))
        .await
        .unwrap();
    assert_eq!(foreign.as_ref(), "not-a-sessionbank-id");
    assert_eq!(b.all().await.len(), sessions_before, "nothing written");

    // Values must be JSON texts; the error names the key, never the value.
    let err = store
        .save(state(&[("token", "hunter2 is not json")]), &ttl_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::Serialization(_)), "{err:?}");
    let chain = format!("{:#}", anyhow_chain(&err));
    assert!(chain.contains("token"), "{chain}");
    assert!(!chain.contains("hunter2"), "{chain}");
}

/// The error and its sources, as one line.
fn anyhow_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[actix_web::test]
                async fn $case() {
                    super::$case(super::Backend::memory()).await;
                }
            )*
        }
        mod disk {
            $(
                #[actix_web::test]
                async fn $case() {
                    super::$case(super::Backend::disk().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    set_and_get_round_trip,
    the_ttl_expires_the_session,
    update_ttl_extends_the_session,
    purge_deletes_the_session,
    renew_cycles_the_key,
    an_update_never_brings_a_vanished_session_back,
    values_are_shared_with_native_sessionbank,
    the_store_methods_directly,
);

/// A store error is actix-session's opaque 500: no error text reaches the client.
#[actix_web::test]
async fn store_failures_are_an_opaque_500() {
    let b = Backend::memory();
    let store = b.instrumented.clone().unwrap();
    let app = b.app(TtlExtensionPolicy::OnStateChanges).await;
    let cookie = send(&app, "POST", "/set/user/ada", None)
        .await
        .cookie_pair();

    for (failing, cookie) in [
        (Operation::Get, Some(cookie.as_str())),
        (Operation::Update, Some(cookie.as_str())),
        (Operation::Create, None),
    ] {
        store.fail(&[failing]);
        let reply = send(&app, "POST", "/set/cart/full", cookie).await;
        assert_eq!(reply.status, 500, "{failing:?}: {reply:?}");
        assert!(reply.body.is_empty(), "{failing:?}: {}", reply.body);
        assert!(reply.set_cookies.is_empty(), "{failing:?}: {reply:?}");
        store.heal();
    }
    assert_eq!(
        send(&app, "GET", "/get/cart", Some(&cookie)).await.body,
        "",
        "the failed writes left nothing"
    );
    assert_eq!(
        send(&app, "GET", "/get/user", Some(&cookie)).await.body,
        r#""ada""#
    );
}
