//! Shared test harness: a real MemoryStore behind a wrapper that counts calls and fails on
//! demand, and a plain `async fn` request handler (no framework) with the same routes as the
//! tower tests' axum app, written with `Sessions::start` and `Session::commit`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use serde_json::json;
use sessionbank_core::{ExpiryPolicy, ManualClock, MemoryStore, SessionId, StoreHandle, Timestamp};
use sessionbank_http::{CookieConfig, KeyRing, Session, Sessions, error_response};
use sessionbank_testkit::InstrumentedStore;
use tokio::sync::{Barrier, Notify};

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

/// The application: sessions plus the test's synchronisation points.
#[derive(Clone)]
pub struct App {
    pub sessions: Sessions,
    pub barrier: Arc<Barrier>,
    pub gate: Arc<Gate>,
}

/// What a route does with the session; `Err` becomes `error_response`.
async fn route(
    app: &App,
    session: &Session,
    method: &str,
    path: &str,
) -> Result<(StatusCode, String), sessionbank_core::Error> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ok = |body: &str| Ok((StatusCode::OK, body.to_owned()));
    match (method, parts.as_slice()) {
        ("GET", ["count"]) => {
            let n: u64 = session.get_as("visits").await?.unwrap_or(0) + 1;
            session.set(json!({ "visits": n })).await?;
            ok(&n.to_string())
        }
        ("GET", ["ignore"]) => ok("ignored"),
        ("GET", ["get", key]) => Ok((
            StatusCode::OK,
            session
                .get(key)
                .await?
                .map(|v| v.to_string())
                .unwrap_or_default(),
        )),
        ("POST", ["set", key, value]) => {
            session.set(json!({ *key: value })).await?;
            ok("ok")
        }
        ("POST", ["barrier-set", key, value]) => {
            session.get("visits").await?;
            app.barrier.wait().await;
            session.set(json!({ *key: value })).await?;
            ok("ok")
        }
        ("POST", ["gated-set", key, value]) => {
            session.get("visits").await?;
            app.gate.loaded.notify_one();
            app.gate.go.notified().await;
            session.set(json!({ *key: value })).await?;
            ok("ok")
        }
        ("POST", ["cycle"]) => {
            session.cycle_id().await?;
            ok("cycled")
        }
        ("POST", ["destroy"]) => {
            session.end().await?;
            ok("destroyed")
        }
        ("POST", ["expire"]) => {
            session.expire();
            ok("expired")
        }
        ("GET", ["n"]) => ok(&session.store().length().await?.to_string()),
        _ => Ok((StatusCode::NOT_FOUND, String::new())),
    }
}

impl App {
    /// Handles one request the way a hyper `service_fn` would.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<String> {
        let session = self.sessions.start(&request);
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let (status, body) = match route(self, &session, &method, &path).await {
            Ok(reply) => reply,
            Err(e) => return error_response(&e),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        match session.commit(&mut response).await {
            Ok(()) => response,
            Err(e) => error_response(&e),
        }
    }
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

    pub fn sessions(&self) -> Sessions {
        self.sessions_with_keys(self.keys.clone())
    }

    pub fn sessions_with_keys(&self, keys: KeyRing) -> Sessions {
        Sessions::new(self.handle.clone(), keys)
            .with_cookie(self.cookie.clone())
            .with_policy(self.policy)
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// The app (the tower tests' "router").
    pub fn router(&self) -> App {
        self.router_with_keys(self.keys.clone())
    }

    pub fn router_with_keys(&self, keys: KeyRing) -> App {
        App {
            sessions: self.sessions_with_keys(keys),
            barrier: self.barrier.clone(),
            gate: self.gate.clone(),
        }
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

pub fn request(method: &str, path: &str, cookie: Option<&str>) -> Request<()> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(()).unwrap()
}

pub async fn send(app: App, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    Reply::read(app.handle(request(method, path, cookie)).await)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Reply {
    pub fn read(response: Response<String>) -> Self {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Self {
            status,
            set_cookies,
            body: response.into_body(),
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

    /// Every `name=value` pair, joined as a `Cookie` header (for multi-cookie formats).
    pub fn cookie_header(&self) -> String {
        self.set_cookies
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
