//! tower/axum session layer and extractor for sessionbank.
//!
//! [`SessionLayer`] verifies the signed session cookie on each request, gives the handler a
//! lazy [`Session`] (nothing is read from the store until the handler asks), writes back only
//! the keys that changed, and sets or clears the cookie. Sessions live in any sessionbank
//! store, chosen by URL.
//!
//! - Cookies: signed with a [`KeyRing`] (rotate keys without logging anyone out), `Secure`,
//!   `HttpOnly`, `SameSite=Lax` and `Path=/` by default; see [`CookieConfig`].
//! - APIs: the same signed token in headers instead (`Authorization: Bearer TOKEN` in,
//!   `x-session-token` out) with [`SessionLayer::with_header`]; see [`HeaderConfig`].
//! - Expiry: idle and absolute timeouts together; see [`ExpiryPolicy`].
//! - Errors: [`SessionError`] makes `?` work in handlers and answers a bare 500; the error is
//!   logged, never sent. Using [`Session`] without the layer is [`SessionLayerMissing`].
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::{get, post}};
//! use sessionbank_core::{MemoryStore, StoreHandle};
//! use sessionbank_tower::{CookieConfig, ExpiryPolicy, Key, KeyRing, Session, SessionError, SessionLayer};
//!
//! async fn count(session: Session) -> Result<String, SessionError> {
//!     let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", visits).await?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! async fn sign_in(session: Session) -> Result<&'static str, SessionError> {
//!     session.cycle_id().await?; // a new id on privilege change: no session fixation
//!     session.set_owner(Some("ada".into())).await?;
//!     Ok("signed in")
//! }
//!
//! async fn sign_out_everywhere(session: Session) -> Result<&'static str, SessionError> {
//!     if let Some(user) = session.owner().await? {
//!         session.store().destroy_owned_by(&user, None).await?;
//!     }
//!     session.destroy().await?;
//!     Ok("signed out")
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // In an application: `sessionbank::connect(&std::env::var("SESSIONBANK_URL")?)` and keys
//! // from a secret store with `Key::from_base64`.
//! let store = StoreHandle::new(MemoryStore::new());
//! let keys = KeyRing::new(Key::generate()?);
//!
//! let layer = SessionLayer::new(store, keys)
//!     .with_cookie(CookieConfig::new().secure(false)) // plain-HTTP localhost only
//!     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
//! let app = Router::new()
//!     .route("/", get(count))
//!     .route("/sign-in", post(sign_in))
//!     .route("/sign-out", post(sign_out_everywhere))
//!     .layer(layer);
//!
//! // Serve it with `axum::serve(listener, app)`; here, one request:
//! use tower::ServiceExt;
//! let response = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! assert!(response.headers()["set-cookie"].to_str().unwrap().starts_with("id="));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod extractor;
mod layer;
mod service;

pub use error::{SESSION_LAYER_MISSING_BODY, SessionError, SessionLayerMissing};
pub use extractor::Session;
pub use layer::SessionLayer;
pub use service::{ResponseFuture, SessionService};

pub use sessionbank_core::SessionHandle;
pub use sessionbank_core::session::Outcome;
pub use sessionbank_web::{
    CookieConfig, ExpiryPolicy, HeaderConfig, Key, KeyRing, SameSite, SessionConfig, Transport,
};
