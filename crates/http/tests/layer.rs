//! The behaviour suite of the web adapters (`sessionbank_testkit::http_suite`, shared with the
//! axum and actix-web adapters) for the plain-http adapter: a framework-less handler over a real
//! MemoryStore (wrapped to count calls and inject failures). The tests below it are its own.
//!
//! `the_extractor_without_the_layer_is_a_fixed_500` has no counterpart: without a framework
//! there is no extractor, and a `Session` only comes from `Sessions::start`.

mod common;

use common::{Plain, TestApp};
use sessionbank_http::{Session, Sessions};

sessionbank_testkit::http_suite!(Plain, #[tokio::test]);

/// `Sessions::store` reaches the same store as the handlers' sessions.
#[tokio::test]
async fn sessions_give_access_to_the_store() {
    let app = TestApp::new();
    app.send("GET", "/count", None).await;
    app.send("GET", "/count", None).await;
    let sessions = Sessions::new(app.handle.clone(), app.keys.clone());
    assert_eq!(sessions.store().length().await.unwrap(), 2);
}

#[test]
fn session_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Session>();
    check::<Sessions>();
}
