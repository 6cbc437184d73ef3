//! sessionbank's framework-neutral web core, which every web adapter (tower/axum, actix-web,
//! plain `http`/hyper) is thin glue over, so they behave alike and a web feature is written
//! once.
//!
//! - [`SessionConfig`]: what every request shares (store, key ring, transport, expiry policy,
//!   clock), with the same constructor and `with_…` setters on each adapter's entry type
//!   ([`session_settings!`]).
//! - [`RequestSession`]: a request's session, [started](RequestSession::start) from its
//!   cookie or token and [finished](RequestSession::finish) into the response's
//!   `Set-Cookie` (or token) headers.
//! - [`ResponseFuture`]: the response future of every service-shaped middleware, over a
//!   framework's response type ([`FrameworkResponse`]).
//! - [`session_extractor!`] and [`session_error!`]: the methods of each adapter's `Session`
//!   extractor and `SessionError`.
//!
//! It knows `http` types but no framework; the cookie crate below it only signs and parses.
//!
//! # Examples
//!
//! A request and its response, without any framework:
//!
//! ```
//! use std::sync::Arc;
//! use sessionbank_core::{MemoryStore, StoreHandle};
//! use sessionbank_web::{KeyRing, RequestSession, SessionConfig, append_http};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = Arc::new(SessionConfig::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?));
//! let request = http::Request::new(());
//! let values = request
//!     .headers()
//!     .get_all(config.transport.request_header())
//!     .iter()
//!     .filter_map(|v| v.to_str().ok());
//! let session = RequestSession::start(&config, values);
//! session.handle().insert("user", "ada").await?;
//! let mut response = http::Response::new(());
//! append_http(response.headers_mut(), &session.finish().await?)?;
//! assert!(response.headers().contains_key("set-cookie"));
//! # Ok::<(), sessionbank_core::Error>(())
//! # })?;
//! # Ok::<(), sessionbank_core::Error>(())
//! ```

mod config;
mod future;
mod glue;
mod request;
mod settings;

pub use config::SessionConfig;
pub use future::{FrameworkResponse, HttpResponse, ResponseFuture, append_http, log_failure};
pub use request::RequestSession;

pub use sessionbank_cookie::{
    CookieConfig, HeaderConfig, Key, KeyRing, ResponseHeader, Transport, cookie::SameSite,
};
pub use sessionbank_core::ExpiryPolicy;
