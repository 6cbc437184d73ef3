//! Signed session cookies: a key ring and signing formats.
//!
//! - [`Key`] and [`KeyRing`]: secret keys, newest first; sign with the newest, verify with any,
//!   so keys rotate without logging anyone out.
//! - [`CookieFormat`]: how an id travels in one or more signed cookies. [`NativeFormat`] is
//!   sessionbank's own (`ID.SIG`, HMAC-SHA256 over the cookie name and the id);
//!   [`ExpressFormat`] and [`KeygripFormat`] read and write the cookies Express and Koa apps use,
//!   so a Rust service can share their sessions.
//! - [`CookieConfig`]: the cookie's name and attributes (secure defaults), parsing the `Cookie`
//!   header and building `Set-Cookie` cookies with the [`cookie`] crate.
//!
//! This crate knows nothing about stores or HTTP frameworks.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sessionbank_cookie::{CookieConfig, Key, KeyRing};
//! use sessionbank_core::{SessionId, Timestamp};
//!
//! let mut keys = KeyRing::new(Key::generate()?);
//! let config = CookieConfig::new();
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//!
//! // Response: Set-Cookie.
//! let cookie = config.set_cookies(&id, Some(now + Duration::from_secs(3600)), now, &keys).remove(0);
//! // Next request: Cookie.
//! let header = cookie.stripped().to_string();
//! assert_eq!(config.read([header.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
//!
//! // After a rotation the cookie still verifies, and asks to be re-signed.
//! keys.rotate(Key::generate()?);
//! assert!(config.read([header.as_str()], &keys).unwrap().is_some_and(|v| v.needs_resign()));
//! # Ok::<(), sessionbank_core::Error>(())
//! ```

mod config;
mod express;
mod format;
mod key;
mod keygrip;
mod response;

pub use config::{CookieConfig, DEFAULT_COOKIE_NAME};
pub use express::ExpressFormat;
pub use format::{
    CookieFormat, DEFAULT_MAX_HEADER_LEN, MAX_VALUE_LEN, NativeFormat, Rejection, RequestCookies,
    Verified,
};
pub use key::{GENERATED_KEY_LEN, Key, KeyRing, MIN_KEY_LEN};
pub use keygrip::{KeygripAlgorithm, KeygripFormat};
pub use response::SessionResponse;

/// The `cookie` crate, re-exported so callers name the same [`Cookie`](cookie::Cookie) and
/// [`SameSite`](cookie::SameSite) types.
pub use cookie;

#[cfg(test)]
mod tests;
