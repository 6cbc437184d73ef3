//! HTTP-level tests of the demo binary: the visit counter, sign-in validation, and that "sign out
//! this one" only ever reaches the signed-in user's own sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Demo, HttpClient, Place, session_rows, signed_in_as, visits};

fn sign_in(client: &mut HttpClient, name: &str) {
    let reply = client.post_form("/sign-in", &[("name", name)]);
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/"));
}

#[test]
fn counter_counts_per_browser_and_pages_are_html() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut a = demo.client();
    let mut b = demo.client();
    let first = a.get("/");
    let set_cookie = first
        .header("set-cookie")
        .expect("a new session sets its cookie");
    assert!(set_cookie.starts_with("sessionbank_demo="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain http on loopback: not Secure, or the browser would drop it: {set_cookie}"
    );
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(visits(&first.body), 1);
    for expected in 2..=3 {
        let reply = a.get("/");
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(reply.body.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(reply.body.contains("<title>"));
        assert_eq!(visits(&reply.body), expected);
        assert_eq!(signed_in_as(&reply.body), None);
    }
    assert_eq!(
        visits(&b.get("/").body),
        1,
        "another cookie jar, another session"
    );
    assert_eq!(visits(&a.get("/").body), 4);
    let cookie = a
        .jar
        .get("sessionbank_demo")
        .expect("the session cookie is set");
    assert!(
        cookie.len() > 32,
        "a signed cookie, longer than the bare id"
    );

    let missing = a.get("/no/such/page");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));
}

#[test]
fn bad_names_are_rejected_with_400_and_good_ones_are_trimmed() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut client = demo.client();
    client.get("/");
    let too_long = "a".repeat(65);
    for (name, message) in [
        ("", "cannot be empty"),
        ("    ", "cannot be empty"),
        (too_long.as_str(), "at most 64 characters"),
        ("ada\nlovelace", "control characters"),
        ("ada\u{7}", "control characters"),
        ("a\tb", "control characters"),
    ] {
        let reply = client.post_form("/sign-in", &[("name", name)]);
        assert_eq!(reply.status, 400, "{name:?}: {reply:?}");
        assert!(reply.body.contains(message), "{name:?}: {}", reply.body);
        assert!(reply.body.contains("<html lang=\"en\">"));
        assert_eq!(
            signed_in_as(&client.get("/").body),
            None,
            "{name:?} did not sign in"
        );
    }
    let reply = client.post_form("/sign-in", &[("nom", "ada")]);
    assert_eq!(reply.status, 400, "a missing field: {reply:?}");
    let reply = client.request("POST", "/sign-in", Some(("text/plain", "name=ada")));
    assert_eq!(reply.status, 400, "not a form: {reply:?}");

    let longest = "é".repeat(64);
    sign_in(&mut client, &format!("  {longest}\u{20} "));
    assert_eq!(signed_in_as(&client.get("/").body), Some(longest));

    sign_in(&mut client, "<script>alert(1)</script>");
    let page = client.get("/").body;
    assert_eq!(
        signed_in_as(&page).as_deref(),
        Some("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!page.contains("<script>"));
}

#[test]
fn sign_in_rotates_the_id_and_sign_out_ends_the_session() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut client = demo.client();
    client.get("/");
    let before = client.jar["sessionbank_demo"].clone();
    sign_in(&mut client, "ada");
    let after = client.jar["sessionbank_demo"].clone();
    assert_ne!(before, after, "sign-in issues a new id");
    let page = client.get("/").body;
    assert_eq!(signed_in_as(&page).as_deref(), Some("ada"));
    assert_eq!(visits(&page), 2, "the data moved to the new id");

    // The cookie from before sign-in is worthless now.
    let mut planted = demo.client();
    planted.jar.insert("sessionbank_demo".into(), before);
    let page = planted.get("/").body;
    assert_eq!(signed_in_as(&page), None);
    assert_eq!(visits(&page), 1);

    let reply = client.post_form("/sign-out", &[]);
    assert_eq!(reply.status, 303);
    let page = client.get("/").body;
    assert_eq!(signed_in_as(&page), None);
    assert_eq!(visits(&page), 1, "a fresh session");
    let mut replay = demo.client();
    replay.jar.insert("sessionbank_demo".into(), after);
    assert_eq!(
        signed_in_as(&replay.get("/").body),
        None,
        "the old cookie is dead"
    );

    let reply = demo.client().get("/sessions");
    assert_eq!(reply.status, 303, "not signed in: back home");
    assert_eq!(reply.header("location"), Some("/"));
}

#[test]
fn sign_out_this_one_reaches_only_the_users_own_sessions() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut ada_1 = demo.client();
    ada_1.user_agent = "ada-laptop".into();
    let mut ada_2 = demo.client();
    ada_2.user_agent = "ada-phone".into();
    let mut ada_3 = demo.client();
    let mut eve = demo.client();
    for c in [&mut ada_1, &mut ada_2, &mut ada_3] {
        sign_in(c, "ada");
    }
    sign_in(&mut eve, "eve");

    let page = ada_1.get("/sessions").body;
    let rows = session_rows(&page);
    assert_eq!(rows.len(), 3, "{page}");
    assert_eq!(rows.iter().filter(|(_, current)| *current).count(), 1);
    assert!(page.contains("ada-laptop") && page.contains("ada-phone"));
    let ada_own = rows.iter().find(|(_, c)| *c).unwrap().0.clone();
    let ada_others: Vec<String> = rows
        .iter()
        .filter(|(_, c)| !c)
        .map(|(s, _)| s.clone())
        .collect();
    let eve_page = eve.get("/sessions").body;
    let eve_rows = session_rows(&eve_page);
    assert_eq!(eve_rows.len(), 1, "eve sees only her own: {eve_page}");
    assert!(!eve_page.contains("ada-laptop"));
    let eve_short = eve_rows[0].0.clone();

    // Eve learned ada's short ids: using them does nothing.
    for short in ada_others.iter().chain([&ada_own]) {
        let reply = eve.post_form("/sessions/sign-out", &[("session", short)]);
        assert_eq!(reply.status, 404, "{reply:?}");
    }
    // Ada cannot reach eve's session either.
    let reply = ada_1.post_form("/sessions/sign-out", &[("session", &eve_short)]);
    assert_eq!(reply.status, 404);
    let reply = ada_1.post_form("/sessions/sign-out", &[("session", "not-a-short-id")]);
    assert_eq!(reply.status, 400);
    for c in [&mut ada_1, &mut ada_2, &mut ada_3] {
        assert_eq!(signed_in_as(&c.get("/").body).as_deref(), Some("ada"));
    }
    assert_eq!(signed_in_as(&eve.get("/").body).as_deref(), Some("eve"));
    assert_eq!(session_rows(&ada_1.get("/sessions").body).len(), 3);

    // Ada signs out her phone from the laptop: only the phone is signed out.
    let phone = {
        let page = ada_2.get("/sessions").body;
        session_rows(&page).into_iter().find(|(_, c)| *c).unwrap().0
    };
    let reply = ada_1.post_form("/sessions/sign-out", &[("session", &phone)]);
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/sessions"));
    assert_eq!(signed_in_as(&ada_2.get("/").body), None);
    assert_eq!(signed_in_as(&ada_1.get("/").body).as_deref(), Some("ada"));
    assert_eq!(signed_in_as(&ada_3.get("/").body).as_deref(), Some("ada"));
    assert_eq!(signed_in_as(&eve.get("/").body).as_deref(), Some("eve"));
    let rows = session_rows(&ada_1.get("/sessions").body);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(s, _)| *s != phone));

    // Signing out everywhere leaves eve alone.
    let reply = ada_3.post_form("/sign-out-everywhere", &[]);
    assert_eq!(reply.status, 303);
    assert_eq!(signed_in_as(&ada_1.get("/").body), None);
    assert_eq!(signed_in_as(&ada_3.get("/").body), None);
    assert_eq!(signed_in_as(&eve.get("/").body).as_deref(), Some("eve"));
    assert_eq!(session_rows(&eve.get("/sessions").body).len(), 1);
}

#[test]
fn posts_need_a_signed_in_session() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut ada = demo.client();
    sign_in(&mut ada, "ada");
    let short = session_rows(&ada.get("/sessions").body)[0].0.clone();
    let mut stranger = demo.client();
    for (path, fields) in [
        ("/sessions/sign-out", vec![("session", short.as_str())]),
        ("/sign-out-everywhere", vec![]),
    ] {
        let reply = stranger.post_form(path, &fields);
        assert_eq!(reply.status, 303, "{path}: {reply:?}");
        assert_eq!(reply.header("location"), Some("/"));
    }
    assert_eq!(signed_in_as(&ada.get("/").body).as_deref(), Some("ada"));
}
