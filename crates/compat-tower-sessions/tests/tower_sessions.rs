//! tower-sessions' own `SessionManagerLayer` in an axum app, over `TowerSessionsStore` on the
//! memory store and on the disk store (`sessionbank::connect("disk://...")` in a temp dir): set,
//! get, expiry, flush and cycle_id round trips, checked at the sessionbank store too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use sessionbank_core::{SessionId, StoreHandle, Timestamp};
use sessionbank_tower_sessions::{TowerSessionsStore, session_id_for};
use tower::ServiceExt;
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// A sessionbank store opened by URL, and the temp dir that must outlive it.
struct Backend {
    store: StoreHandle,
    _dir: Option<tempfile::TempDir>,
}

async fn open(kind: &str) -> Backend {
    match kind {
        "memory" => Backend {
            store: sessionbank::connect("memory://").await.unwrap(),
            _dir: None,
        },
        "disk" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("disk://{}/sessions", dir.path().display());
            Backend {
                store: sessionbank::connect(&url).await.unwrap(),
                _dir: Some(dir),
            }
        }
        other => panic!("unknown backend {other}"),
    }
}

async fn set(session: Session, Path((key, value)): Path<(String, String)>) -> StatusCode {
    match session.insert(&key, value).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn read(session: Session, Path(key): Path<String>) -> String {
    session
        .get::<String>(&key)
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn flush(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "flushed"
}

async fn cycle(session: Session) -> &'static str {
    session.cycle_id().await.unwrap();
    "cycled"
}

fn app(store: &StoreHandle, expiry: Expiry) -> Router {
    let layer = SessionManagerLayer::new(TowerSessionsStore::new(store.clone()))
        .with_secure(false)
        .with_expiry(expiry);
    Router::new()
        .route("/set/{key}/{value}", post(set))
        .route("/get/{key}", get(read))
        .route("/flush", post(flush))
        .route("/cycle", post(cycle))
        .layer(layer)
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Reply {
    /// The `id=...` pair the next request sends.
    fn cookie(&self) -> String {
        let set_cookie = self.set_cookie.as_deref().expect("a Set-Cookie header");
        set_cookie.split(';').next().unwrap().to_owned()
    }
}

async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// The sessionbank id a tower-sessions cookie pair (`id=...`) maps to.
fn stored_id(cookie: &str) -> SessionId {
    let value = cookie.split_once('=').unwrap().1;
    session_id_for(&Id::from_str(value).unwrap())
}

fn minutes(n: i64) -> Expiry {
    Expiry::OnInactivity(time::Duration::minutes(n))
}

async fn set_and_get_round_trip(kind: &str) {
    let backend = open(kind).await;
    let app = app(&backend.store, minutes(30));
    let reply = send(&app, "POST", "/set/name/ada", None).await;
    assert_eq!(reply.status, 200);
    let cookie = reply.cookie();
    let id = stored_id(&cookie);

    // The record in sessionbank: the keys at the top level, the expiry from tower-sessions.
    let record = backend.store.get(&id).await.unwrap().expect("stored");
    assert_eq!(record.data["name"], "ada");
    let expires = record.expires_at.unwrap();
    let expected = Timestamp::now() + Duration::from_secs(30 * 60);
    assert!(
        expires <= expected && expires > expected - Duration::from_secs(60),
        "{expires} vs {expected}"
    );

    assert_eq!(
        send(&app, "GET", "/get/name", Some(&cookie)).await.body,
        "ada"
    );
    let reply = send(&app, "POST", "/set/city/paris", Some(&cookie)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        send(&app, "GET", "/get/city", Some(&cookie)).await.body,
        "paris"
    );
    assert_eq!(
        send(&app, "GET", "/get/name", Some(&cookie)).await.body,
        "ada"
    );
    let record = backend.store.get(&id).await.unwrap().unwrap();
    assert_eq!(record.data.len(), 2);
    assert_eq!(
        backend.store.length().await.unwrap(),
        1,
        "one session, one record"
    );

    // A cookie for an id that was never stored gets nothing.
    let unknown = format!("id={}", Id::default());
    assert_eq!(
        send(&app, "GET", "/get/name", Some(&unknown)).await.body,
        ""
    );
}

async fn expiry_ends_the_session(kind: &str) {
    let backend = open(kind).await;
    let app = app(
        &backend.store,
        Expiry::OnInactivity(time::Duration::milliseconds(800)),
    );
    let cookie = send(&app, "POST", "/set/name/ada", None).await.cookie();
    let id = stored_id(&cookie);
    let expires = backend
        .store
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .expires_at
        .unwrap();
    assert!(expires <= Timestamp::now() + Duration::from_millis(800));
    assert_eq!(
        send(&app, "GET", "/get/name", Some(&cookie)).await.body,
        "ada"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(send(&app, "GET", "/get/name", Some(&cookie)).await.body, "");
    assert!(backend.store.get(&id).await.unwrap().is_none());
    let direct = TowerSessionsStore::new(backend.store.clone());
    let tower_id = Id::from_str(cookie.split_once('=').unwrap().1).unwrap();
    use tower_sessions::SessionStore;
    assert!(
        direct.load(&tower_id).await.unwrap().is_none(),
        "expired: None"
    );
}

async fn flush_deletes_the_session(kind: &str) {
    let backend = open(kind).await;
    let app = app(&backend.store, minutes(30));
    let cookie = send(&app, "POST", "/set/name/ada", None).await.cookie();
    let id = stored_id(&cookie);

    let reply = send(&app, "POST", "/flush", Some(&cookie)).await;
    assert_eq!(reply.body, "flushed");
    let removal = reply.set_cookie.unwrap();
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(backend.store.get(&id).await.unwrap().is_none());
    assert_eq!(backend.store.length().await.unwrap(), 0);
    assert_eq!(send(&app, "GET", "/get/name", Some(&cookie)).await.body, "");
}

async fn cycle_id_moves_the_data_to_a_new_id(kind: &str) {
    let backend = open(kind).await;
    let app = app(&backend.store, minutes(30));
    let old_cookie = send(&app, "POST", "/set/name/ada", None).await.cookie();
    let old = stored_id(&old_cookie);

    let reply = send(&app, "POST", "/cycle", Some(&old_cookie)).await;
    assert_eq!(reply.body, "cycled");
    let new_cookie = reply.cookie();
    let new = stored_id(&new_cookie);
    assert_ne!(new, old);
    assert!(
        backend.store.get(&old).await.unwrap().is_none(),
        "old id gone"
    );
    assert_eq!(
        backend.store.get(&new).await.unwrap().unwrap().data["name"],
        "ada"
    );
    assert_eq!(
        send(&app, "GET", "/get/name", Some(&new_cookie)).await.body,
        "ada"
    );
    assert_eq!(
        send(&app, "GET", "/get/name", Some(&old_cookie)).await.body,
        ""
    );
    assert_eq!(backend.store.length().await.unwrap(), 1);
}

macro_rules! on_backends {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $case() { super::$case("memory").await })*
        }
        mod disk {
            $(#[tokio::test] async fn $case() { super::$case("disk").await })*
        }
    };
}

on_backends!(
    set_and_get_round_trip,
    expiry_ends_the_session,
    flush_deletes_the_session,
    cycle_id_moves_the_data_to_a_new_id,
);
