//! [`SessionLayer`]: wraps a service so every request gets a [`Session`](crate::Session).

use std::sync::Arc;

use sessionbank_web::SessionConfig;
use tower_layer::Layer;

use crate::service::SessionService;

/// A tower [`Layer`] that gives every request a lazy session, and sets or clears the signed
/// session cookie on the response.
///
/// For each request it parses the `Cookie` header, verifies the session cookie with the key
/// ring (a tampered, unknown or oversized cookie counts as none: the request gets a fresh
/// session), puts a [`Session`](crate::Session) into the request extensions, runs the inner
/// service, then writes what the handler changed and appends `Set-Cookie` as needed. A cookie
/// signed with an older key of the ring is re-signed with the newest.
///
/// For API clients that keep no cookies, [`with_header`](Self::with_header) moves the signed
/// token to a request header (`Authorization: Bearer TOKEN`) and a response header
/// (`x-session-token`, sent when the token changes; an empty value when the session is gone).
///
/// A store error while saving becomes a `500 Internal Server Error` with an empty body; the
/// error is logged with `tracing`, never sent to the client.
///
/// Defaults: [`CookieConfig::default`](crate::CookieConfig::default) (cookie `id`, `Secure`,
/// `HttpOnly`, `SameSite=Lax`), [`ExpiryPolicy::default`](crate::ExpiryPolicy::default), the
/// system clock. The constructor and setters are the same on every sessionbank adapter
/// ([`sessionbank_web::session_settings!`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use sessionbank_tower::{CookieConfig, ExpiryPolicy, KeyRing, SessionLayer};
/// use sessionbank_core::{MemoryStore, StoreHandle};
///
/// let layer = SessionLayer::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
///     .with_cookie(CookieConfig::new().secure(false)) // plain-HTTP localhost
///     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).layer(layer);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    config: Arc<SessionConfig>,
}

sessionbank_web::session_settings!(SessionLayer, "sessionbank_tower");

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.config.clone())
    }
}
