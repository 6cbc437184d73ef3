//! The session middleware end to end: real actix-web apps over a real MemoryStore (wrapped to
//! count calls and inject failures), driven with `actix_web::test`. The behaviour suite is
//! `sessionbank_testkit::http_suite`, shared with the axum and plain-http adapters; the tests
//! below it are actix-web's own.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

mod common;

use actix_web::test::init_service;
use actix_web::{App, web};
use common::{ActixWeb, middleware, send};
use sessionbank_actix::{
    SESSION_MIDDLEWARE_MISSING_BODY, Session, SessionError, SessionMiddleware,
};
use sessionbank_testkit::http_suite::{TestApp, id_of};

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
