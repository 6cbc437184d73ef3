//! The session middleware end to end: real actix-web apps over a real MemoryStore (wrapped to
//! count calls and inject failures), driven with `actix_web::test`. The behaviour suite is
//! `sessionbank_testkit::http_suite`, shared with the axum and plain-http adapters; the tests
//! below it are actix-web's own.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

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
fn middleware(options: &AppOptions) -> SessionMiddleware {
    SessionMiddleware::new(options.store.clone(), options.keys.clone())
        .with_cookie(options.cookie.clone())
        .with_policy(options.policy)
        .with_clock(Arc::new(options.clock.clone()))
}

/// An initialised actix-web test service.
struct Actix<S>(S);

/// Names the framework for the suite.
struct ActixWeb;

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
    async fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        send(&self.0, method, path, cookie).await
    }
}

/// One request through `service`, read whole.
async fn send<S, B>(service: &S, method: &str, path: &str, cookie: Option<&str>) -> Reply
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
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = test::read_body(response).await;
    Reply {
        status,
        set_cookies,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

sessionbank_testkit::http_suite!(ActixWeb, #[actix_web::test]);

#[actix_web::test]
async fn the_extractor_without_the_layer_is_a_fixed_500() {
    async fn needs(session: Session) -> String {
        format!("{:?}", session.id().await.ok())
    }
    async fn optional(session: Option<Session>) -> &'static str {
        if session.is_some() { "some" } else { "none" }
    }
    let service = init_service(
        App::new()
            .route("/needs", web::get().to(needs))
            .route("/optional", web::get().to(optional)),
    )
    .await;
    let reply = send(&service, "GET", "/needs", None).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, SESSION_MIDDLEWARE_MISSING_BODY);
    assert_eq!(send(&service, "GET", "/optional", None).await.body, "none");
}

#[test]
fn session_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Session>();
    check::<SessionMiddleware>();
}

/// actix-web only: the session is `Send`, so a handler can hand it to another task (on
/// another thread of a multi-threaded runtime) and the middleware still saves what that task
/// wrote. actix-session's `Session` is `!Send` and cannot do this.
#[actix_web::test]
async fn the_session_works_from_a_spawned_task() {
    async fn spawned(session: Session) -> Result<&'static str, SessionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let task = runtime.spawn(async move {
            let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
            session.insert("visits", n).await
        });
        task.await.unwrap()?;
        runtime.shutdown_background();
        Ok("spawned")
    }
    let app = TestApp::<ActixWeb>::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let middleware = middleware(&app.options(app.keys.clone()));
    let service = init_service(
        App::new()
            .route("/spawned", web::post().to(spawned))
            .wrap(middleware),
    )
    .await;
    let reply = send(&service, "POST", "/spawned", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "spawned"));
    assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "3");
}

/// actix-web only: `SessionExt` reaches the session from the `HttpRequest` (and from a
/// `ServiceRequest` in a middleware inside `SessionMiddleware`).
#[actix_web::test]
async fn the_session_is_reachable_from_the_request() {
    use actix_web::HttpRequest;
    use actix_web::dev::Service as _;
    use sessionbank_actix::SessionExt;

    async fn from_request(request: HttpRequest) -> Result<String, actix_web::Error> {
        let session = request.session()?;
        session
            .insert("via", "request")
            .await
            .map_err(SessionError::from)?;
        Ok("ok".into())
    }
    let app = TestApp::<ActixWeb>::new();
    let service = init_service(
        App::new()
            .route("/from-request", web::post().to(from_request))
            // Runs inside SessionMiddleware (wrapped before it): the session is there.
            .wrap_fn(|request, service| {
                let found = request.session().is_ok();
                let future = service.call(request);
                async move {
                    assert!(found, "no session in the inner middleware");
                    future.await
                }
            })
            .wrap(middleware(&app.options(app.keys.clone()))),
    )
    .await;
    let reply = send(&service, "POST", "/from-request", None).await;
    assert_eq!(reply.body, "ok");
    let id = id_of(&reply.cookie_pair());
    assert_eq!(
        app.handle.get(&id).await.unwrap().unwrap().data["via"],
        "request"
    );

    // Without the middleware: the named error, a fixed 500.
    let service =
        init_service(App::new().route("/from-request", web::post().to(from_request))).await;
    let reply = send(&service, "POST", "/from-request", None).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, SESSION_MIDDLEWARE_MISSING_BODY);
}
