//! The demo keeps its sessions across a restart: a disk store and a key file that survive it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{Demo, Place, signed_in_as, visits};

#[test]
fn a_restart_keeps_the_cookie_signed_in_and_the_counter() {
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let mut client = demo.client();
    assert_eq!(visits(&client.get("/").body), 1);
    let reply = client.post_form("/sign-in", &[("name", "ada")]);
    assert_eq!(reply.status, 303);
    assert_eq!(visits(&client.get("/").body), 2);
    let page = client.get("/").body;
    assert_eq!(visits(&page), 3);
    assert_eq!(signed_in_as(&page).as_deref(), Some("ada"));
    let cookie = client.jar["sessionbank_demo"].clone();

    let key_before = std::fs::read(place.key()).expect("the demo wrote its key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(place.key()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let status = demo.terminate();
    assert!(status.success(), "SIGTERM is a graceful stop: {status:?}");

    let demo = Demo::start(&place.store(), &place.key());
    assert_eq!(std::fs::read(place.key()).unwrap(), key_before, "same key");
    let mut client = client.with_addr(demo.addr);
    let page = client.get("/").body;
    assert_eq!(signed_in_as(&page).as_deref(), Some("ada"), "{page}");
    assert_eq!(visits(&page), 4, "the counter kept its value");
    assert_eq!(client.jar["sessionbank_demo"], cookie, "the same cookie");

    // A different key makes every cookie worthless: the key really is what keeps them valid.
    let status = demo.terminate();
    assert!(status.success());
    let other_key = place.dir.path().join("other.key");
    let demo = Demo::start(&place.store(), &other_key);
    let mut client = client.with_addr(demo.addr);
    let page = client.get("/").body;
    assert_eq!(signed_in_as(&page), None);
    assert_eq!(visits(&page), 1);
}
