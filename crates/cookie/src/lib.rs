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
//! - [`HeaderConfig`]: for API clients that keep no cookies, the signed token travels in a
//!   request header (`Authorization: Bearer TOKEN`, or a custom header) and a new one comes back
//!   in a response header (`x-session-token`) when it changes; an empty value there means
//!   "forget your token". [`Transport`] is either of the two, as the web adapters hold it.
//!
//! This crate only signs and parses: it knows nothing about stores or HTTP frameworks (saving a
//! session and choosing the response headers is `sessionbank-web`'s job).
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
//!
//! # Header transport for APIs
//!
//! The token is the native `ID.SIG` value signed over `header:<request header name>` instead of
//! a cookie name, so a cookie value is no valid token and a token no valid cookie. It carries no
//! expiry: it is re-sent only when the session is new, gets a new id, or is re-signed after a key
//! rotation. A tampered, malformed or oversized token counts as none (a fresh session), as a bad
//! cookie does.
//!
//! ```
//! use sessionbank_cookie::{HeaderConfig, KeyRing, Transport};
//! use sessionbank_core::{SessionId, Timestamp};
//!
//! let keys = KeyRing::generate()?;
//! let transport = Transport::from(HeaderConfig::bearer());
//! let id = SessionId::generate()?;
//!
//! // Response: `x-session-token: TOKEN`.
//! let issued = transport.issue(&id, None, Timestamp::now(), &keys).remove(0);
//! assert_eq!(issued.name, "x-session-token");
//! // Next request: `Authorization: Bearer TOKEN`.
//! let authorization = format!("Bearer {}", issued.value);
//! assert_eq!(transport.request_header(), "authorization");
//! assert_eq!(transport.read([authorization.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
//! // The same value as a cookie does not verify.
//! let cookie = Transport::default();
//! assert!(cookie.read([format!("id={}", issued.value).as_str()], &keys).is_err());
//! # Ok::<(), sessionbank_core::Error>(())
//! ```

mod config;
mod express;
mod format;
mod key;
mod keygrip;
mod transport;

pub use config::{CookieConfig, DEFAULT_COOKIE_NAME};
pub use express::ExpressFormat;
pub use format::{
    CookieFormat, DEFAULT_MAX_HEADER_LEN, MAX_VALUE_LEN, NativeFormat, Rejection, RequestCookies,
    Verified,
};
pub use key::{GENERATED_KEY_LEN, Key, KeyRing, MIN_KEY_LEN};
pub use keygrip::{KeygripAlgorithm, KeygripFormat};
pub use transport::{
    AUTHORIZATION_HEADER, BEARER_SCHEME, DEFAULT_RESPONSE_HEADER, HeaderConfig, ResponseHeader,
    Transport,
};

/// The `cookie` crate, re-exported so callers name the same [`Cookie`](cookie::Cookie) and
/// [`SameSite`](cookie::SameSite) types.
pub use cookie;

#[cfg(test)]
mod tests;
