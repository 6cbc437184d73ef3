//! Shared test harness: a real MemoryStore behind a wrapper that counts calls and fails on
//! demand, and an actix-web app with the session middleware. The cases mirror
//! `crates/tower/tests/common/mod.rs`, route for route.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test, web};
use sessionbank_actix::{CookieConfig, KeyRing, Session, SessionError, SessionMiddleware};
use sessionbank_core::{ExpiryPolicy, ManualClock, MemoryStore, SessionId, StoreHandle, Timestamp};
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

async fn count(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(n.to_string())
}

async fn ignore() -> &'static str {
    "ignored"
}

async fn read(session: Session, key: web::Path<String>) -> Result<String, SessionError> {
    Ok(session
        .get_value(&key)
        .await?
        .map(|v| v.to_string())
        .unwrap_or_default())
}

async fn set(
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    let (key, value) = path.into_inner();
    session.insert(&key, value).await?;
    Ok("ok")
}

/// Loads the session, waits for every party of the barrier, then sets the key.
async fn barrier_set(
    session: Session,
    barrier: web::Data<Barrier>,
    path: web::Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    let (key, value) = path.into_inner();
    session.get_value("visits").await?;
    barrier.wait().await;
    session.insert(&key, value).await?;
    Ok("ok")
}

/// Loads the session, tells the test, waits for its go, then sets the key.
async fn gated_set(
    session: Session,
    gate: web::Data<Gate>,
    path: web::Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    let (key, value) = path.into_inner();
    session.get_value("visits").await?;
    gate.loaded.notify_one();
    gate.go.notified().await;
    session.insert(&key, value).await?;
    Ok("ok")
}

async fn cycle(session: Session) -> Result<&'static str, SessionError> {
    session.cycle_id().await?;
    Ok("cycled")
}

async fn destroy(session: Session) -> Result<&'static str, SessionError> {
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

/// The app's routes, for `App::configure`.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/count", web::get().to(count))
        .route("/ignore", web::get().to(ignore))
        .route("/get/{key}", web::get().to(read))
        .route("/set/{key}/{value}", web::post().to(set))
        .route("/barrier-set/{key}/{value}", web::post().to(barrier_set))
        .route("/gated-set/{key}/{value}", web::post().to(gated_set))
        .route("/cycle", web::post().to(cycle))
        .route("/destroy", web::post().to(destroy));
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

    pub fn middleware_with_keys(&self, keys: KeyRing) -> SessionMiddleware {
        SessionMiddleware::new(self.handle.clone(), keys)
            .with_cookie(self.cookie.clone())
            .with_policy(self.policy)
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// The app, ready to serve test requests.
    pub async fn service(
        &self,
    ) -> impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    > {
        self.service_with_keys(self.keys.clone()).await
    }

    pub async fn service_with_keys(
        &self,
        keys: KeyRing,
    ) -> impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    > {
        test::init_service(
            App::new()
                .app_data(web::Data::from(self.barrier.clone()))
                .app_data(web::Data::from(self.gate.clone()))
                .configure(routes)
                .wrap(self.middleware_with_keys(keys)),
        )
        .await
    }

    pub async fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        send(&self.service().await, method, path, cookie).await
    }

    /// The session id behind a `name=ID.SIG` cookie pair.
    pub fn id_of(cookie: &str) -> SessionId {
        let value = cookie.split_once('=').unwrap().1;
        SessionId::parse(value.split('.').next().unwrap()).unwrap()
    }
}

pub async fn send<S, B>(service: &S, method: &str, path: &str, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = test::TestRequest::default()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(cookie) = cookie {
        request = request.insert_header(("cookie", cookie));
    }
    let response = test::call_service(service, request.to_request()).await;
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
    async fn read<B: MessageBody>(response: ServiceResponse<B>) -> Self {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body = test::read_body(response).await;
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
