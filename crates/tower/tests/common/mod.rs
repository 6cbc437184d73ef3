//! The suite's framework for axum: the routes of `sessionbank_testkit::http_suite` on an axum
//! router behind [`SessionLayer`], driven with `tower::ServiceExt::oneshot`. Shared by the
//! memory suite (`layer.rs`) and the Redis suite (`redis.rs`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path};
use axum::routing::{get, post};
use http::Request;
use sessionbank_testkit::http_suite::{AppOptions, Framework, Gate, Reply, SessionApp};
use sessionbank_tower::{Session, SessionError, SessionLayer};
use tokio::sync::Barrier;
use tower::ServiceExt;

async fn count(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(n.to_string())
}

async fn ignore() -> &'static str {
    "ignored"
}

async fn read(session: Session, Path(key): Path<String>) -> Result<String, SessionError> {
    Ok(session
        .get_value(&key)
        .await?
        .map(|v| v.to_string())
        .unwrap_or_default())
}

async fn set(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    session.insert(&key, value).await?;
    Ok("ok")
}

/// Loads the session, waits for every party of the barrier, then sets the key.
async fn barrier_set(
    session: Session,
    Extension(barrier): Extension<Arc<Barrier>>,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, SessionError> {
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
) -> Result<&'static str, SessionError> {
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

async fn count_all(session: Session) -> Result<String, SessionError> {
    Ok(session.store().length().await?.to_string())
}

/// The axum router of the suite's routes behind [`SessionLayer`].
pub struct Axum(Router);

impl Framework for Axum {
    async fn app(options: AppOptions) -> impl SessionApp {
        let layer = SessionLayer::new(options.store, options.keys)
            .with_transport(options.transport)
            .with_policy(options.policy)
            .with_clock(Arc::new(options.clock));
        Axum(
            Router::new()
                .route("/count", get(count))
                .route("/ignore", get(ignore))
                .route("/get/{key}", get(read))
                .route("/set/{key}/{value}", post(set))
                .route("/barrier-set/{key}/{value}", post(barrier_set))
                .route("/gated-set/{key}/{value}", post(gated_set))
                .route("/cycle", post(cycle))
                .route("/destroy", post(destroy))
                .route("/n", get(count_all))
                .layer(Extension(options.barrier))
                .layer(Extension(options.gate))
                .layer(layer),
        )
    }
}

impl SessionApp for Axum {
    async fn send_headers(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        send_headers(self.0.clone(), method, path, headers).await
    }
}

/// One request through `router`, read whole.
pub async fn send(router: Router, method: &str, path: &str, cookie: Option<&str>) -> Reply {
    match cookie {
        Some(cookie) => send_headers(router, method, path, &[("cookie", cookie)]).await,
        None => send_headers(router, method, path, &[]).await,
    }
}

/// One request with `headers` through `router`, read whole.
pub async fn send_headers(
    router: Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
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
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        set_cookies,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}
