//! The session layer end to end: real axum routers over a real MemoryStore (wrapped to count
//! calls and inject failures), driven with `tower::ServiceExt::oneshot`. The behaviour suite is
//! `sessionbank_testkit::http_suite`, shared with the actix-web and plain-http adapters; the
//! tests below it are axum's own.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

mod common;

use axum::Router;
use axum::routing::get;
use common::{Axum, send};
use sessionbank_tower::{SESSION_LAYER_MISSING_BODY, Session, SessionLayer};

sessionbank_testkit::http_suite!(Axum, #[tokio::test]);

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_fixed_500() {
    async fn needs(session: Session) -> String {
        format!("{:?}", session.id().await.ok())
    }
    async fn optional(session: Option<Session>) -> &'static str {
        if session.is_some() { "some" } else { "none" }
    }
    let router = Router::new()
        .route("/needs", get(needs))
        .route("/optional", get(optional));
    let reply = send(router.clone(), "GET", "/needs", None).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, SESSION_LAYER_MISSING_BODY);
    assert_eq!(send(router, "GET", "/optional", None).await.body, "none");
}

#[test]
fn session_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Session>();
    check::<SessionLayer>();
}
