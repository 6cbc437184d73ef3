//! The mongosess verbs one by one: set (several keys, all or nothing), get, get_all, del, end,
//! expire, and the reserved keys.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

mod common;

use common::{MIN, SessionsOf, TestApp, id_of, request};
use serde_json::json;
use sessionbank_core::{Clock, ErrorKind, Operation};
use sessionbank_http::{BROWSER_COOKIE_KEY, CookieConfig, KeygripFormat, Session};

/// Commits `session` into an empty response and reads it back.
async fn commit(session: Session) -> common::Reply {
    let mut response = http::Response::new(String::new());
    session.commit(&mut response).await.unwrap();
    common::read(response)
}

/// A stored session holding `{"a": 1, "b": 2, "c": 3}`; returns its cookie header.
async fn seeded(app: &TestApp) -> String {
    let session = app.sessions().start(&request("GET", "/", None));
    session.set(json!({"a": 1, "b": 2, "c": 3})).await.unwrap();
    commit(session).await.cookie_header()
}

#[tokio::test]
async fn set_writes_several_keys_in_one_create_or_update() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);
    assert_eq!(app.store.calls(Operation::Create), 1);
    let data = app.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(
        serde_json::Value::from(data),
        json!({"a": 1, "b": 2, "c": 3})
    );

    app.store.reset_calls();
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session
        .set(json!({"b": 20, "d": {"nested": [1, 2]}}))
        .await
        .unwrap();
    commit(session).await;
    assert_eq!(
        app.store.calls(Operation::Update),
        1,
        "one write for both keys"
    );
    let data = app.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(
        serde_json::Value::from(data),
        json!({"a": 1, "b": 20, "c": 3, "d": {"nested": [1, 2]}})
    );

    // Any serializable map works, not only `json!`.
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    let map: std::collections::BTreeMap<&str, u32> = [("e", 5)].into();
    session.set(&map).await.unwrap();
    assert_eq!(session.get("e").await.unwrap(), Some(json!(5)));

    // Not an object: an error, nothing changes.
    for bad in [json!(1), json!("x"), json!([1]), json!(null)] {
        let err = session.set(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn get_and_get_all_read_the_stored_session_once() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    app.store.reset_calls();

    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    assert_eq!(app.store.total_calls(), 0, "start reads nothing");
    assert_eq!(session.get("a").await.unwrap(), Some(json!(1)));
    assert_eq!(session.get("missing").await.unwrap(), None);
    assert_eq!(session.get_as::<u64>("b").await.unwrap(), Some(2));
    assert!(session.get_as::<String>("b").await.is_err());
    let all = session.get_all().await.unwrap();
    assert_eq!(
        serde_json::Value::from(all),
        json!({"a": 1, "b": 2, "c": 3})
    );
    assert_eq!(app.store.calls(Operation::Get), 1, "loaded once");
    let reply = commit(session).await;
    assert!(reply.set_cookies.is_empty(), "read only: no cookie");
    assert_eq!(app.store.total_calls(), 1, "and no write");

    // A new visitor's session is empty, and reading it stores nothing.
    let session = app.sessions().start(&request("GET", "/", None));
    assert!(session.get_all().await.unwrap().is_empty());
    assert!(commit(session).await.set_cookies.is_empty());
    assert_eq!(app.store.calls(Operation::Create), 0);
}

#[tokio::test]
async fn del_removes_only_the_named_keys() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);

    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    assert_eq!(session.del(&["a", "c", "never-set"]).await.unwrap(), 2);
    assert_eq!(session.get("a").await.unwrap(), None);
    app.store.reset_calls();
    commit(session).await;
    assert_eq!(app.store.calls(Operation::Update), 1);
    let data = app.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(serde_json::Value::from(data), json!({"b": 2}));

    // Owned strings work too.
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    assert_eq!(session.del(&[String::from("b")]).await.unwrap(), 1);
    commit(session).await;
    assert!(app.handle.get(&id).await.unwrap().unwrap().data.is_empty());
}

#[tokio::test]
async fn reserved_keys_are_refused_and_nothing_changes() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));

    for key in ["_id", "$set", "$", "_sessionbank", BROWSER_COOKIE_KEY] {
        let err = session.set(json!({"z": 26, key: 1})).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key}");
        assert!(err.to_string().contains(key), "names the key: {err}");
        assert_eq!(
            session.get("z").await.unwrap(),
            None,
            "all or nothing ({key})"
        );

        let err = session.del(&["a", key]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key}");
        assert_eq!(
            session.get("a").await.unwrap(),
            Some(json!(1)),
            "all or nothing ({key})"
        );

        assert_eq!(
            session.get(key).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    // mongosess allows createdAt, and so do we; `id` is an ordinary key.
    session
        .set(json!({"createdAt": 0, "id": "x"}))
        .await
        .unwrap();
    app.store.reset_calls();
    commit(session).await;
    let data = app.handle.get(&id).await.unwrap().unwrap().data;
    assert_eq!(data["createdAt"], 0);
    assert!(!data.contains_key("_id") && !data.contains_key("z"));
}

#[tokio::test]
async fn end_deletes_the_session_and_expires_its_cookies() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);
    app.store.reset_calls();

    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.end().await.unwrap();
    assert_eq!(app.store.calls(Operation::Get), 0, "ending needs no read");
    assert!(
        app.handle.get(&id).await.unwrap().is_none(),
        "gone right away"
    );
    let reply = commit(session).await;
    let removal = reply.set_cookie();
    assert!(removal.starts_with("id=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(removal.contains("Expires="), "{removal}");

    // The old cookie now starts over.
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    assert!(session.get_all().await.unwrap().is_empty());
}

#[tokio::test]
async fn end_with_the_keygrip_format_removes_both_cookies() {
    let mut app = TestApp::new();
    app.transport = CookieConfig::new()
        .name("koa.sid")
        .format(KeygripFormat::new())
        .into();
    let session = app.sessions().start(&request("GET", "/", None));
    session.set(json!({"user": "ada"})).await.unwrap();
    let reply = commit(session).await;
    assert_eq!(reply.set_cookies.len(), 2, "{reply:?}");
    assert!(reply.set_cookies[0].starts_with("koa.sid="));
    assert!(reply.set_cookies[1].starts_with("koa.sid.sig="));
    let cookie = reply.cookie_header();

    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    assert_eq!(
        session.get("user").await.unwrap(),
        Some(json!("ada")),
        "keygrip cookie reads back"
    );
    session.end().await.unwrap();
    let reply = commit(session).await;
    let names: Vec<&str> = reply
        .set_cookies
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(names, ["koa.sid", "koa.sid.sig"]);
    for removal in &reply.set_cookies {
        assert!(removal.contains("=;"), "empty value: {removal}");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert!(removal.contains("Path=/"), "{removal}");
    }
    assert_eq!(app.handle.length().await.unwrap(), 0);
}

#[tokio::test]
async fn expire_makes_a_browser_session_cookie_and_keeps_the_store_expiry() {
    let app = TestApp::new(); // idle 30 minutes
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);
    let expiry = app.handle.get(&id).await.unwrap().unwrap().expires_at;
    assert_eq!(expiry, Some(app.clock.now() + 30 * MIN));

    // expire() alone, with nothing else changed: the cookie is re-sent without an expiry.
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.expire();
    let reply = commit(session).await;
    let set_cookie = reply.set_cookie();
    assert_eq!(id_of(&reply.cookie_pair()), id, "same session");
    assert!(!set_cookie.contains("Max-Age"), "{set_cookie}");
    assert!(!set_cookie.contains("Expires"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    let record = app.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(record.expires_at, expiry, "the store's expiry did not move");
    assert_eq!(
        serde_json::Value::from(record.data.clone())["a"],
        1,
        "data kept"
    );

    // The choice sticks: a later write that moves the expiry (16 minutes on, under half the
    // idle timeout left) refreshes the cookie still without Max-Age; the marker stays out of
    // get_all.
    app.clock.advance(16 * MIN);
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.set(json!({"a": 100})).await.unwrap();
    assert_eq!(
        serde_json::Value::from(session.get_all().await.unwrap()),
        json!({"a": 100, "b": 2, "c": 3})
    );
    let reply = commit(session).await;
    assert!(
        reply.set_cookies.is_empty(),
        "the browser-session cookie needs no refresh, and gets no Max-Age: {reply:?}"
    );
    let record = app.handle.get(&id).await.unwrap().unwrap();
    assert_eq!(
        record.expires_at,
        Some(app.clock.now() + 30 * MIN),
        "the policy still applies"
    );

    // A new id (sign-in) keeps the cookie a browser-session one.
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.cycle_id().await.unwrap();
    let reply = commit(session).await;
    assert_ne!(id_of(&reply.cookie_pair()), id);
    assert!(!reply.set_cookie().contains("Max-Age"), "{reply:?}");

    // A visitor without a session who calls expire() gets no session and no cookie.
    let session = app.sessions().start(&request("GET", "/", None));
    session.expire();
    assert!(commit(session).await.set_cookies.is_empty());

    // And a new session that also gets data: created, with a browser-session cookie.
    let session = app.sessions().start(&request("GET", "/", None));
    session.set(json!({"n": 1})).await.unwrap();
    session.expire();
    let reply = commit(session).await;
    assert!(!reply.set_cookie().contains("Max-Age"), "{reply:?}");
    let new_id = id_of(&reply.cookie_pair());
    assert!(
        app.handle
            .get(&new_id)
            .await
            .unwrap()
            .unwrap()
            .expires_at
            .is_some()
    );
}

#[tokio::test]
async fn a_persistent_session_keeps_max_age_without_expire() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    // A write with most of the idle timeout left keeps the expiry: no new cookie.
    app.clock.advance(MIN);
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.set(json!({"a": 2})).await.unwrap();
    let reply = commit(session).await;
    assert!(reply.set_cookies.is_empty(), "{reply:?}");
    // One with less than half left moves it, and the cookie comes again with Max-Age.
    app.clock.advance(15 * MIN);
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session.set(json!({"a": 3})).await.unwrap();
    let reply = commit(session).await;
    assert!(reply.set_cookie().contains("Max-Age=1800"), "{reply:?}");
}

#[tokio::test]
async fn debug_never_shows_the_id_or_values() {
    let app = TestApp::new();
    let cookie = seeded(&app).await;
    let id = id_of(&cookie);
    let session = app.sessions().start(&request("GET", "/", Some(&cookie)));
    session
        .set(json!({"token": "hunter2-secret"}))
        .await
        .unwrap();
    let debug = format!("{session:?} {:?}", app.sessions());
    assert!(!debug.contains(id.as_str()), "{debug}");
    assert!(!debug.contains(id.short()), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
