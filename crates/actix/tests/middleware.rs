//! The session middleware end to end: real actix-web apps over a real MemoryStore (wrapped to
//! count calls and inject failures), driven with `actix_web::test`. Each case has the name
//! and the assertions of its twin in `crates/tower/tests/layer.rs`.

mod common;

use std::sync::Arc;

use actix_web::test::init_service;
use actix_web::{App, web};
use common::{MIN, SECRET_ERROR_TEXT, TestApp, send};
use sessionbank_actix::{
    CookieConfig, Key, KeyRing, SESSION_MIDDLEWARE_MISSING_BODY, Session, SessionError,
    SessionMiddleware,
};
use sessionbank_core::{Clock, Operation, SessionId};

#[actix_web::test]
async fn visit_counter_increments_with_the_returned_cookie() {
    let app = TestApp::new();
    let first = app.send("GET", "/count", None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, "1");
    let mut cookie = first.cookie_pair();
    let id = TestApp::id_of(&cookie);

    for expected in 2..=4 {
        app.clock.advance(MIN);
        let reply = app.send("GET", "/count", Some(&cookie)).await;
        assert_eq!(reply.body, expected.to_string());
        if !reply.set_cookies.is_empty() {
            cookie = reply.cookie_pair();
            assert_eq!(TestApp::id_of(&cookie), id, "same session, same id");
        }
    }
    let record = app.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(record.data["visits"], 4);
    assert_eq!(app.store.calls(Operation::Create), 1);
    assert_eq!(app.store.calls(Operation::Update), 3);
}

#[actix_web::test]
async fn a_handler_that_ignores_the_session_costs_nothing() {
    let app = TestApp::new();
    let reply = app.send("GET", "/ignore", None).await;
    assert_eq!(reply.body, "ignored");
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.store.total_calls(), 0);

    // Also with a valid session cookie.
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    app.store.reset_calls();
    let reply = app.send("GET", "/ignore", Some(&cookie)).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.store.total_calls(), 0);

    // A read-only visit well within the idle timeout: one get, no write, no cookie.
    app.clock.advance(MIN);
    let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.store.calls(Operation::Get), 1);
    assert_eq!(app.store.total_calls(), 1);

    // A new visitor who only reads gets no session stored and no cookie.
    let reply = app.send("GET", "/get/visits", None).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.store.calls(Operation::Create), 0);
}

#[actix_web::test]
async fn concurrent_requests_changing_different_keys_both_keep_their_change() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&cookie);

    // Both handlers load the session, then wait for each other before writing.
    let service = app.service().await;
    let (a, b) = tokio::join!(
        send(&service, "POST", "/barrier-set/a/from-a", Some(&cookie)),
        send(&service, "POST", "/barrier-set/b/from-b", Some(&cookie)),
    );
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
    let data = app.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(data["a"], "from-a");
    assert_eq!(data["b"], "from-b");
    assert_eq!(data["visits"], 1);
}

#[actix_web::test]
async fn tampered_unknown_and_expired_cookies_get_a_fresh_session() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&cookie);

    // Tampered: one character of the id changed.
    let (name, value) = cookie.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'x' { b'y' } else { b'x' };
    let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    let tampered_id = &tampered[name.len() + 1..name.len() + 33];
    let reply = app.send("GET", "/count", Some(&tampered)).await;
    assert_eq!(reply.body, "1", "fresh session");
    let fresh = TestApp::id_of(&reply.cookie_pair());
    assert_ne!(fresh, id);
    assert_ne!(fresh.as_str(), tampered_id);

    // Unknown: correctly signed, but no such session in the store.
    let unknown = SessionId::generate().unwrap();
    let forged = app
        .cookie
        .set_cookies(&unknown, None, app.clock.now(), &app.keys)
        .remove(0)
        .stripped()
        .to_string();
    let reply = app.send("GET", "/count", Some(&forged)).await;
    assert_eq!(reply.body, "1");
    let fresh = TestApp::id_of(&reply.cookie_pair());
    assert_ne!(fresh, unknown, "never adopts the client's id");
    assert!(app.handle.get(&unknown).await.unwrap().is_none());

    // Expired: 31 minutes idle with a 30-minute idle timeout.
    app.clock.advance(31 * MIN);
    let reply = app.send("GET", "/count", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    let fresh = TestApp::id_of(&reply.cookie_pair());
    assert_ne!(fresh, id);

    // Garbage and oversized headers: fresh session, no error.
    let huge = format!("id={}", "A".repeat(20_000));
    for junk in ["id=", "id=....", "id=%ff%00", huge.as_str()] {
        let reply = app.send("GET", "/count", Some(junk)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, "1"),
            "{junk:.40}"
        );
    }
}

#[actix_web::test]
async fn cycle_id_sends_a_new_cookie_and_kills_the_old_id() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let old = TestApp::id_of(&cookie);

    let reply = app.send("POST", "/cycle", Some(&cookie)).await;
    assert_eq!(reply.body, "cycled");
    let new_cookie = reply.cookie_pair();
    let new = TestApp::id_of(&new_cookie);
    assert_ne!(new, old);
    assert!(app.handle.get(&old).await.unwrap().is_none(), "old id gone");
    assert_eq!(
        app.handle.get(&new).await.unwrap().unwrap().data["visits"],
        1
    );

    // The new cookie carries on; the old one starts over.
    assert_eq!(app.send("GET", "/count", Some(&new_cookie)).await.body, "2");
    assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "1");
}

#[actix_web::test]
async fn destroy_clears_the_cookie_and_the_session() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&cookie);

    let reply = app.send("POST", "/destroy", Some(&cookie)).await;
    let removal = reply.set_cookie();
    assert!(removal.starts_with("id=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(removal.contains("Path=/"), "{removal}");
    assert!(app.handle.get(&id).await.unwrap().is_none());
    assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "1");
}

#[actix_web::test]
async fn a_request_in_flight_does_not_bring_a_destroyed_session_back() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&cookie);

    let service = app.service().await;
    let slow = send(&service, "POST", "/gated-set/cart/full", Some(&cookie));
    let logout = async {
        app.gate.loaded.notified().await; // the slow request has loaded the session
        let reply = send(&service, "POST", "/destroy", Some(&cookie)).await;
        assert!(reply.set_cookie().contains("Max-Age=0"));
        app.gate.go.notify_one();
    };
    let (slow, ()) = tokio::join!(slow, logout);

    assert_eq!(slow.status, 200);
    assert!(slow.set_cookie().contains("Max-Age=0"), "clears the cookie");
    assert!(
        app.handle.get(&id).await.unwrap().is_none(),
        "not resurrected"
    );
    assert_eq!(
        app.handle.length().await.unwrap(),
        0,
        "nor re-created elsewhere"
    );
}

#[actix_web::test]
async fn touch_only_when_the_policy_says_so() {
    let app = TestApp::new(); // idle 30 minutes, touch below half
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&cookie);
    app.store.reset_calls();

    app.clock.advance(5 * MIN); // 25 minutes left: plenty
    let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
    assert!(reply.set_cookies.is_empty());
    assert_eq!(app.store.calls(Operation::Touch), 0);
    assert_eq!(app.store.calls(Operation::Update), 0);

    app.clock.advance(11 * MIN); // 14 minutes left: below the threshold
    let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
    assert_eq!(app.store.calls(Operation::Touch), 1);
    assert_eq!(
        app.store.calls(Operation::Update),
        0,
        "a touch writes no data"
    );
    let refreshed = reply.set_cookie();
    assert!(refreshed.contains("Max-Age=1800"), "{refreshed}");
    assert_eq!(TestApp::id_of(&reply.cookie_pair()), id);
    let record = app.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(app.clock.now() + 30 * MIN));
}

#[actix_web::test]
async fn store_failures_are_a_bare_500() {
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();

    // Failing while the handler reads: SessionError.
    app.store.fail(&[Operation::Get]);
    let reply = app.send("GET", "/count", Some(&cookie)).await;
    assert_eq!(reply.status, 500);
    assert!(!reply.body.contains("hunter2"), "{}", reply.body);
    assert!(!reply.body.contains(SECRET_ERROR_TEXT));
    assert!(reply.body.is_empty(), "bare 500: {}", reply.body);
    app.store.heal();

    // Failing while the middleware saves after the handler.
    app.store.fail(&[Operation::Update, Operation::Create]);
    for cookie in [Some(cookie.as_str()), None] {
        let reply = app.send("GET", "/count", cookie).await;
        assert_eq!(reply.status, 500, "{reply:?}");
        assert!(reply.body.is_empty(), "{}", reply.body);
        assert!(
            reply.set_cookies.is_empty(),
            "no cookie for an unsaved session"
        );
    }
    app.store.heal();
    assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "2");
}

#[actix_web::test]
async fn an_old_key_gets_the_cookie_re_signed_a_retired_key_starts_over() {
    let app = TestApp::new();
    let old_cookie = app.send("GET", "/count", None).await.cookie_pair();
    let id = TestApp::id_of(&old_cookie);

    let mut rotated = app.keys.clone();
    rotated.rotate(Key::generate().unwrap());
    let service = app.service_with_keys(rotated.clone()).await;

    // A request that never touches the session still gets the cookie re-signed.
    let reply = send(&service, "GET", "/ignore", Some(&old_cookie)).await;
    let new_cookie = reply.cookie_pair();
    assert_ne!(new_cookie, old_cookie);
    assert_eq!(TestApp::id_of(&new_cookie), id, "same session");
    assert!(
        reply.set_cookie().contains("Max-Age="),
        "{}",
        reply.set_cookie()
    );
    let newest_only = KeyRing::new(rotated.newest().clone());
    let verified = app
        .cookie
        .read([new_cookie.as_str()], &newest_only)
        .unwrap()
        .unwrap();
    assert_eq!(verified.id, id);

    // The data is all there, under either cookie while the old key is in the ring.
    assert_eq!(
        send(&service, "GET", "/count", Some(&old_cookie))
            .await
            .body,
        "2"
    );
    assert_eq!(
        send(&service, "GET", "/count", Some(&new_cookie))
            .await
            .body,
        "3"
    );

    // Retire the old key: its cookie no longer verifies.
    let mut retired = rotated;
    retired.retire_oldest();
    let service = app.service_with_keys(retired).await;
    let reply = send(&service, "GET", "/count", Some(&old_cookie)).await;
    assert_eq!(reply.body, "1");
    assert_ne!(TestApp::id_of(&reply.cookie_pair()), id);
    assert_eq!(
        send(&service, "GET", "/count", Some(&new_cookie))
            .await
            .body,
        "4"
    );
}

#[actix_web::test]
async fn cookie_attributes() {
    let app = TestApp::new();
    let reply = app.send("GET", "/count", None).await;
    let set_cookie = reply.set_cookie();
    assert!(set_cookie.starts_with("id="), "{set_cookie}");
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=1800",
    ] {
        assert!(
            set_cookie.split("; ").any(|a| a == attr),
            "{attr} missing: {set_cookie}"
        );
    }

    let mut app = TestApp::new();
    app.cookie = CookieConfig::new().name("sb").secure(false);
    let reply = app.send("GET", "/count", None).await;
    let set_cookie = reply.set_cookie();
    assert!(set_cookie.starts_with("sb="), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"));

    // Browser-session cookies: no Max-Age, and not re-sent when only the expiry moves.
    let mut app = TestApp::new();
    app.cookie = CookieConfig::new().persistent(false);
    let first = app.send("GET", "/count", None).await;
    assert!(
        !first.set_cookie().contains("Max-Age"),
        "{}",
        first.set_cookie()
    );
    app.clock.advance(MIN);
    let second = app.send("GET", "/count", Some(&first.cookie_pair())).await;
    assert_eq!(second.body, "2");
    assert!(second.set_cookies.is_empty(), "{second:?}");
}

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

#[actix_web::test]
async fn session_gives_access_to_the_store() {
    async fn count_all(session: Session) -> String {
        session.store().length().await.unwrap().to_string()
    }
    let app = TestApp::new();
    app.send("GET", "/count", None).await;
    app.send("GET", "/count", None).await;
    let middleware = SessionMiddleware::new(app.handle.clone(), app.keys.clone())
        .with_clock(Arc::new(app.clock.clone()));
    let service = init_service(
        App::new()
            .route("/n", web::get().to(count_all))
            .wrap(middleware),
    )
    .await;
    assert_eq!(send(&service, "GET", "/n", None).await.body, "2");
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
    let app = TestApp::new();
    let cookie = app.send("GET", "/count", None).await.cookie_pair();
    let middleware = app.middleware_with_keys(app.keys.clone());
    let service = init_service(
        App::new()
            .route("/spawned", web::post().to(spawned))
            .wrap(middleware),
    )
    .await;
    let reply = send(&service, "POST", "/spawned", Some(&cookie)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "spawned")
    );
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
    let app = TestApp::new();
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
            .wrap(app.middleware_with_keys(app.keys.clone())),
    )
    .await;
    let reply = send(&service, "POST", "/from-request", None).await;
    assert_eq!(reply.body, "ok");
    let id = TestApp::id_of(&reply.cookie_pair());
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
