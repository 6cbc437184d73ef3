//! actix-web session middleware and extractor for sessionbank.
//!
//! [`SessionMiddleware`] verifies the signed session cookie on each request, gives the handler
//! a lazy [`Session`] (nothing is read from the store until the handler asks), writes back only
//! the keys that changed, and sets or clears the cookie. Sessions live in any sessionbank
//! store, chosen by URL. It behaves exactly like the tower layer (`sessionbank-tower`).
//!
//! - Cookies: signed with a [`KeyRing`] (rotate keys without logging anyone out), `Secure`,
//!   `HttpOnly`, `SameSite=Lax` and `Path=/` by default; see [`CookieConfig`].
//! - APIs: the same signed token in headers instead (`Authorization: Bearer TOKEN` in,
//!   `x-session-token` out) with [`SessionMiddleware::with_header`]; see [`HeaderConfig`].
//! - Expiry: idle and absolute timeouts together; see [`ExpiryPolicy`].
//! - `Send`: the [`Session`] is `Send + Sync` (actix-session's is not), so it can be moved
//!   into `tokio::spawn` or held in a `Send` future.
//! - Errors: [`SessionError`] makes `?` work in handlers and answers a bare 500; the error is
//!   logged, never sent. Using [`Session`] without the middleware is
//!   [`SessionMiddlewareMissing`].
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use actix_web::{App, test, web};
//! use sessionbank_actix::{
//!     CookieConfig, ExpiryPolicy, Key, KeyRing, Session, SessionError, SessionMiddleware,
//! };
//! use sessionbank_core::{MemoryStore, StoreHandle};
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
//! # actix_web::rt::System::new().block_on(async {
//! // In an application: `sessionbank::connect(&std::env::var("SESSIONBANK_URL")?)` and keys
//! // from a secret store with `Key::from_base64`.
//! let store = StoreHandle::new(MemoryStore::new());
//! let keys = KeyRing::new(Key::generate()?);
//!
//! let middleware = SessionMiddleware::new(store, keys)
//!     .with_cookie(CookieConfig::new().secure(false)) // plain-HTTP localhost only
//!     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
//! let app = App::new()
//!     .wrap(middleware)
//!     .route("/", web::get().to(count))
//!     .route("/sign-in", web::post().to(sign_in))
//!     .route("/sign-out", web::post().to(sign_out_everywhere));
//!
//! // Serve it with `HttpServer::new(move || App::new().wrap(middleware.clone())...)`; here,
//! // one request:
//! let app = test::init_service(app).await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
//! let set_cookie = response.headers().get("set-cookie").ok_or("no cookie")?;
//! assert!(set_cookie.to_str()?.starts_with("id="));
//! assert_eq!(test::read_body(response).await, "visit number 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod extractor;
mod middleware;
mod response;
mod service;

pub use error::{SESSION_MIDDLEWARE_MISSING_BODY, SessionError, SessionMiddlewareMissing};
pub use extractor::{Session, SessionExt};
pub use middleware::SessionMiddleware;
pub use response::{ActixResponse, ResponseFuture};
pub use service::SessionService;

pub use sessionbank_core::SessionHandle;
pub use sessionbank_core::session::Outcome;
pub use sessionbank_web::{
    CookieConfig, ExpiryPolicy, HeaderConfig, Key, KeyRing, SameSite, SessionConfig, Transport,
};
