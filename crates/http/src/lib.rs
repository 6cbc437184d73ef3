//! Sessions without a framework: the mongosess API over `http::Request` / `http::Response`
//! (the types hyper 1 uses), for any sessionbank store.
//!
//! [`Sessions`] holds the store, the signing keys, the cookie (or, for API clients, a
//! [`HeaderConfig`]: `Authorization: Bearer TOKEN` in, `x-session-token` out) and the expiry
//! policy. For each
//! request, [`Sessions::start`] verifies the session cookie and returns a lazy [`Session`]:
//!
//! | mongosess | here |
//! |---|---|
//! | `session.set({a: 1, b: 2})` | [`session.set(json!({"a": 1, "b": 2})).await?`](Session::set) |
//! | `session.get('a')` / `session.get()` | [`get("a")`](Session::get) / [`get_all()`](Session::get_all) |
//! | `session.del('a', 'b')` | [`del(&["a", "b"])`](Session::del) |
//! | `session.end()` | [`end()`](Session::end): deleted from the store, cookies removed |
//! | `session.expire()` | [`expire()`](Session::expire): a browser-session cookie, store expiry unchanged |
//!
//! After the handler, [`Session::commit`] writes what changed (only the changed keys) and
//! appends `Set-Cookie` to the response. A store error is returned to the caller, who picks
//! the response; [`error_response`] gives the tower layer's (a logged, bare 500).
//!
//! The behaviour is that of the tower layer (`sessionbank-tower`), over the same
//! [`SessionHandle`]: nothing is read from the store until the handler asks; a tampered,
//! unknown or expired cookie gets a fresh session under a server-generated id; a cookie signed
//! with an older key is re-signed; `touch` by the [`ExpiryPolicy`]; [`Session::cycle_id`]
//! against session fixation. Keys `_id`, `$…` and `_sessionbank…` are reserved
//! ([`is_reserved_key`]).
//!
//! # Examples
//!
//! A visit counter as a hyper `service_fn` body (see `examples/hyper_server.rs` for the
//! server around it):
//!
//! ```
//! use serde_json::json;
//! use sessionbank_core::{MemoryStore, StoreHandle};
//! use sessionbank_http::{CookieConfig, KeyRing, Sessions, error_response};
//!
//! async fn handle<B>(sessions: &Sessions, request: http::Request<B>) -> http::Response<String> {
//!     let session = sessions.start(&request);
//!     let visits = match session.get_as::<u64>("visits").await {
//!         Ok(n) => n.unwrap_or(0) + 1,
//!         Err(e) => return error_response(&e),
//!     };
//!     if let Err(e) = session.set(json!({ "visits": visits })).await {
//!         return error_response(&e);
//!     }
//!     let mut response = http::Response::new(format!("visit number {visits}"));
//!     match session.commit(&mut response).await {
//!         Ok(()) => response,
//!         Err(e) => error_response(&e),
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In an application: `sessionbank::connect(&std::env::var("SESSIONBANK_URL")?)`, and keys
//! // from a secret store.
//! let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
//!     .with_cookie(CookieConfig::new().secure(false)); // plain-HTTP localhost only
//!
//! let first = handle(&sessions, http::Request::new(())).await;
//! assert_eq!(first.body(), "visit number 1");
//! let cookie = first.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or_default();
//! let again = http::Request::get("/").header("cookie", cookie).body(())?;
//! assert_eq!(handle(&sessions, again).await.body(), "visit number 2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod session;
mod sessions;

pub use error::error_response;
pub use session::{BROWSER_COOKIE_KEY, Session, is_reserved_key};
pub use sessions::Sessions;

pub use sessionbank_cookie::{ExpressFormat, KeygripFormat, NativeFormat};
pub use sessionbank_core::SessionHandle;
pub use sessionbank_core::session::Outcome;
pub use sessionbank_web::{
    CookieConfig, ExpiryPolicy, HeaderConfig, Key, KeyRing, SameSite, SessionConfig, Transport,
};
