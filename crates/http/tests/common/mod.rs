//! Shared test harness: a plain `async fn` request handler (no framework) with the routes of
//! `sessionbank_testkit::http_suite`, written with `Sessions::start` and `Session::commit`, over
//! the suite's instrumented MemoryStore.
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use serde_json::json;
use sessionbank_http::{Session, Sessions, error_response};
use sessionbank_testkit::http_suite::{AppOptions, Framework, Gate, SessionApp};
use tokio::sync::Barrier;

pub use sessionbank_testkit::http_suite::{MIN, Reply, id_of};

/// The suite's world, with this adapter's app.
pub type TestApp = sessionbank_testkit::http_suite::TestApp<Plain>;

/// The plain-http adapter, for the suite.
pub struct Plain;

impl Plain {
    /// `Sessions` configured as the suite asks.
    pub fn sessions(options: &AppOptions) -> Sessions {
        Sessions::new(options.store.clone(), options.keys.clone())
            .with_transport(options.transport.clone())
            .with_policy(options.policy)
            .with_clock(Arc::new(options.clock.clone()))
    }
}

impl Framework for Plain {
    async fn app(options: AppOptions) -> impl SessionApp {
        App {
            sessions: Self::sessions(&options),
            barrier: options.barrier,
            gate: options.gate,
        }
    }
}

/// `Sessions` for a [`TestApp`], as its fields say now.
pub trait SessionsOf {
    fn sessions(&self) -> Sessions;
}

impl SessionsOf for TestApp {
    fn sessions(&self) -> Sessions {
        Plain::sessions(&self.options(self.keys.clone()))
    }
}

/// The application: sessions plus the test's synchronisation points.
#[derive(Clone)]
pub struct App {
    pub sessions: Sessions,
    pub barrier: Arc<Barrier>,
    pub gate: Arc<Gate>,
}

impl SessionApp for App {
    async fn send_headers(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        read(self.handle(request_with(method, path, headers)).await)
    }
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

pub fn request(method: &str, path: &str, cookie: Option<&str>) -> Request<()> {
    match cookie {
        Some(cookie) => request_with(method, path, &[("cookie", cookie)]),
        None => request_with(method, path, &[]),
    }
}

/// A request with `headers`, each appended as given.
pub fn request_with(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

/// A response, read whole.
pub fn read(response: Response<String>) -> Reply {
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    Reply {
        status,
        set_cookies,
        headers,
        body: response.into_body(),
    }
}
