//! [`Sessions`]: what every request shares (store, keys, transport, policy, clock), and where
//! a request's [`Session`] starts.

use std::sync::Arc;

use http::{HeaderMap, Request};
use sessionbank_web::{RequestSession, SessionConfig};

use crate::session::Session;

/// Sessions for a plain `http`/hyper server: the store, the signing keys, the cookie (or, for
/// API clients, the token headers: [`with_header`](Self::with_header)) and the expiry policy. Build one at start-up, then call [`start`](Sessions::start) for each request
/// and [`Session::commit`] on its response.
///
/// Cheap to clone (an `Arc` inside). Defaults, the same as the tower layer's:
/// [`CookieConfig::default`] (cookie `id`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`),
/// [`ExpiryPolicy::default`], the system clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use sessionbank_http::{CookieConfig, ExpiryPolicy, KeyRing, Sessions};
///
/// let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
///     .with_cookie(CookieConfig::new().name("sessionCookie").secure(false))
///     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
/// let session = sessions.start(&http::Request::new(()));
/// assert!(!session.is_loaded(), "nothing is read until the handler asks");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sessions {
    config: Arc<SessionConfig>,
}

sessionbank_web::session_settings!(Sessions, "sessionbank_http");

impl Sessions {
    /// Starts the session of `request`: reads and verifies its `Cookie` headers (or the token
    /// header of the [`HeaderConfig`]), and nothing else. The store is read only when a method of the [`Session`] first needs the data.
    ///
    /// A missing, tampered, malformed or oversized cookie (or token) counts as none (logged at
    /// `debug`):
    /// the request gets a fresh session, which is stored under a server-generated id once it
    /// holds data. The body is not touched, so any body type works.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_core::{MemoryStore, StoreHandle};
    /// # use sessionbank_http::{KeyRing, Sessions};
    /// # let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// let request = http::Request::get("/").header("cookie", "id=forged.value").body(())?;
    /// let session = sessions.start(&request); // a fresh session: the cookie does not verify
    /// assert!(!session.is_loaded());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<B>(&self, request: &Request<B>) -> Session {
        self.start_from_headers(request.headers())
    }

    /// [`start`](Self::start) from the request's headers alone (when the request was already
    /// taken apart).
    pub fn start_from_headers(&self, headers: &HeaderMap) -> Session {
        let values = headers
            .get_all(self.config.transport.request_header())
            .iter()
            .filter_map(|value| value.to_str().ok());
        Session::new(RequestSession::start(&self.config, values))
    }
}
