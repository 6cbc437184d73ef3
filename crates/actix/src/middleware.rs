//! [`SessionMiddleware`]: wraps an actix-web app or scope so every request gets a
//! [`Session`](crate::Session).

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::Error;
use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use sessionbank_web::SessionConfig;

use crate::service::SessionService;

/// actix-web middleware (a [`Transform`]) that gives every request a lazy session, and sets or
/// clears the signed session cookie on the response.
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
/// use actix_web::{App, web};
/// use sessionbank_actix::{CookieConfig, ExpiryPolicy, KeyRing, SessionMiddleware};
/// use sessionbank_core::{MemoryStore, StoreHandle};
///
/// let middleware = SessionMiddleware::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
///     .with_cookie(CookieConfig::new().secure(false)) // plain-HTTP localhost
///     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
/// let app = App::new()
///     .wrap(middleware)
///     .route("/", web::get().to(|| async { "hi" }));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    config: Arc<SessionConfig>,
}

sessionbank_web::session_settings!(SessionMiddleware, "sessionbank_actix");

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService::new(service, self.config.clone())))
    }
}
