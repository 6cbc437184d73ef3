//! Shared test harness: a real MemoryStore behind a wrapper that counts calls and fails on
//! demand, and an axum app with the session layer.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::routing::{get, post};
use http::{Request, Response, StatusCode};
use sessionbank_core::{ExpiryPolicy, ManualClock, MemoryStore, SessionId, StoreHandle, Timestamp};
use sessionbank_testkit::InstrumentedStore;
use sessionbank_tower::{CookieConfig, KeyRing, Session, SessionError, SessionLayer};
use tokio::sync::{Barrier, Notify};
use tower::ServiceExt;

/// Text planted in injected failures; it must never reach a response.
pub const SECRET_ERROR_TEXT: &str = "db-password=hunter2 at 10.0.0.7";

pub const MIN: Duration = Duration::from_secs(60);

/// A real MemoryStore that counts calls per operation and fails chosen operations on demand.
pub type Instrumented = InstrumentedStore<MemoryStore>;

/// An instrumented MemoryStore on `clock`, whose injected failures carry [`SECRET_ERROR_TEXT`].
pub fn instrumented(clock: ManualClock) -> Instrumented {
    InstrumentedStore::new(MemoryStore::builder().clock(Arc::new(clock)).build())
        .with_failure_message(&format!("injected failure: {SECRET_ERROR_TEXT}"))
}

/// Lets a test hold a handler between loading its session and writing to it.
#[derive(Default)]
pub struct Gate {
    pub loaded: Notify,
    pub go: Notify,
}

async fn count(session: Session) -> std::result::Result<String, SessionError> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(n.to_string())
}

async fn ignore() -> &'static str {
    "ignored"
}

async fn read(
    session: Session,
    Path(key): Path<String>,
) -> std::result::Result<String, SessionError> {
    Ok(session
        .get_value(&key)
        .await?
        .map(|v| v.to_string())
        .unwrap_or_default())
}

async fn set(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> std::result::Result<&'static str, SessionError> {
    session.insert(&key, value).await?;
    Ok("ok")
}

/// Loads the session, waits for every party of the barrier, then sets the key.
async fn barrier_set(
    session: Session,
    Extension(barrier): Extension<Arc<Barrier>>,
    Path((key, value)): Path<(String, String)>,
) -> std::result::Result<&'static str, SessionError> {
    session.get_value("visits").await?;
    barrier.wait().await;
    session.insert(&key, value).await?;
    Ok("ok")
}

/// Loads the session, tells the test, waits for its go, then sets the key.
async fn gated_set(
    session: Session,
    Extension(gate): Extension<Arc<Gate>>,
    Path((key, value)): Path<(String, String)>,
) -> std::result::Result<&'static str, SessionError> {
    session.get_value("visits").await?;
    gate.loaded.notify_one();
    gate.go.notified().await;
    session.insert(&key, value).await?;
    Ok("ok")
}

async fn cycle(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.cycle_id().await?;
    Ok("cycled")
}

async fn destroy(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("destroyed")
}

pub struct TestApp {
    pub clock: ManualClock,
    pub store: Instrumented,
    pub handle: StoreHandle,
    pub keys: KeyRing,
    pub cookie: CookieConfig,
    pub policy: ExpiryPolicy,
    pub barrier: Arc<Barrier>,
    pub gate: Arc<Gate>,
}

impl TestApp {
    pub fn new() -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let store = instrumented(clock.clone());
        Self {
            handle: StoreHandle::new(store.clone()),
            clock,
            store,
            keys: KeyRing::generate().unwrap(),
            cookie: CookieConfig::new(),
            policy: ExpiryPolicy::new().idle(30 * MIN).no_absolute(),
            barrier: Arc::new(Barrier::new(2)),
            gate: Arc::new(Gate::default()),
        }
    }

    pub fn router(&self) -> Router {
        self.router_with_keys(self.keys.clone())
    }

    pub fn router_with_keys(&self, keys: KeyRing) -> Router {
        let layer = SessionLayer::new(self.handle.clone(), keys)
            .with_cookie(self.cookie.clone())
            .with_policy(self.policy)
            .with_clock(Arc::new(self.clock.clone()));
        Router::new()
            .route("/count", get(count))
            .route("/ignore", get(ignore))
            .route("/get/{key}", get(read))
            .route("/set/{key}/{value}", post(set))
            .route("/barrier-set/{key}/{value}", post(barrier_set))
            .route("/gated-set/{key}/{value}", post(gated_set))
            .route("/cycle", post(cycle))
            .route("/destroy", post(destroy))
            .layer(Extension(self.barrier.clone()))
            .layer(Extension(self.gate.clone()))
            .layer(layer)
    }

    pub async fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        send(self.router(), method, path, cookie).await
    }

    /// The session id behind a `name=ID.SIG` cookie pair.
    pub fn id_of(cookie: &str) -> SessionId {
        let value = cookie.split_once('=').unwrap().1;
        SessionId::parse(value.split('.').next().unwrap()).unwrap()
    }
}

pub async fn send(router: Router, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Reply::read(response).await
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Reply {
    async fn read(response: Response<Body>) -> Self {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Self {
            status,
            set_cookies,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// The single `Set-Cookie` header, which must be there.
    pub fn set_cookie(&self) -> &str {
        assert_eq!(self.set_cookies.len(), 1, "{self:?}");
        &self.set_cookies[0]
    }

    /// The `name=value` pair of the single `Set-Cookie`, as the next request sends it.
    pub fn cookie_pair(&self) -> String {
        self.set_cookie().split(';').next().unwrap().to_owned()
    }
}
