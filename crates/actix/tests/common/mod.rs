//! The suite's framework for actix-web: the routes of `sessionbank_testkit::http_suite` in an
//! actix-web app behind [`SessionMiddleware`], driven with `actix_web::test`. Shared by the
//! memory suite (`middleware.rs`) and the Redis suite (`redis.rs`).
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::Method;
use actix_web::test::{self, init_service};
use actix_web::{App, web};
use sessionbank_actix::{
    SESSION_MIDDLEWARE_MISSING_BODY, Session, SessionError, SessionMiddleware,
};
use sessionbank_testkit::http_suite::{
    AppOptions, Framework, Gate, Reply, SessionApp, TestApp, id_of,
};
use tokio::sync::Barrier;

pub async fn count(session: Session) -> Result<String, SessionError> {
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

async fn count_all(session: Session) -> Result<String, SessionError> {
    Ok(session.store().length().await?.to_string())
}

/// The suite's routes, for `App::configure`.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/count", web::get().to(count))
        .route("/ignore", web::get().to(ignore))
        .route("/get/{key}", web::get().to(read))
        .route("/set/{key}/{value}", web::post().to(set))
        .route("/barrier-set/{key}/{value}", web::post().to(barrier_set))
        .route("/gated-set/{key}/{value}", web::post().to(gated_set))
        .route("/cycle", web::post().to(cycle))
        .route("/destroy", web::post().to(destroy))
        .route("/n", web::get().to(count_all));
}

/// The middleware as the suite configures it.
pub fn middleware(options: &AppOptions) -> SessionMiddleware {
    SessionMiddleware::new(options.store.clone(), options.keys.clone())
        .with_transport(options.transport.clone())
        .with_policy(options.policy)
        .with_clock(Arc::new(options.clock.clone()))
}

/// An initialised actix-web test service.
pub struct Actix<S>(S);

/// Names the framework for the suite.
pub struct ActixWeb;

impl Framework for ActixWeb {
    async fn app(options: AppOptions) -> impl SessionApp {
        Actix(
            init_service(
                App::new()
                    .app_data(web::Data::from(options.barrier.clone()))
                    .app_data(web::Data::from(options.gate.clone()))
                    .configure(routes)
                    .wrap(middleware(&options)),
            )
            .await,
        )
    }
}

impl<S, B> SessionApp for Actix<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn send_headers(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        send_headers(&self.0, method, path, headers).await
    }
}

/// One request through `service`, read whole.
pub async fn send<S, B>(service: &S, method: &str, path: &str, cookie: Option<&str>) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    match cookie {
        Some(cookie) => send_headers(service, method, path, &[("cookie", cookie)]).await,
        None => send_headers(service, method, path, &[]).await,
    }
}

/// One request with `headers` through `service`, read whole.
pub async fn send_headers<S, B>(
    service: &S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = test::TestRequest::default()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    for (name, value) in headers {
        request = request.append_header((*name, *value));
    }
    let response = test::call_service(service, request.to_request()).await;
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let body = test::read_body(response).await;
    Reply {
        status,
        set_cookies,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}
