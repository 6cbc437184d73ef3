//! [`SessionMiddleware`]: wraps an actix-web app or scope so every request gets a
//! [`Session`](crate::Session).

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::Error;
use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use sessionbank_cookie::{CookieConfig, HeaderConfig, KeyRing, Transport};
use sessionbank_core::{ExpiryPolicy, SharedClock, StoreHandle, system_clock};

use crate::config::SessionConfig;
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
/// Defaults: [`CookieConfig::default`] (cookie `id`, `Secure`, `HttpOnly`, `SameSite=Lax`),
/// [`ExpiryPolicy::default`], the system clock.
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

impl SessionMiddleware {
    /// A middleware over `store`, signing cookies with `keys`.
    pub fn new(store: StoreHandle, keys: KeyRing) -> Self {
        Self {
            config: Arc::new(SessionConfig {
                store,
                keys,
                transport: Transport::default(),
                policy: ExpiryPolicy::default(),
                clock: system_clock(),
            }),
        }
    }

    /// Sends the session in a cookie with this name, attributes and format (the default
    /// transport).
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        Arc::make_mut(&mut self.config).transport = Transport::Cookie(cookie);
        self
    }

    /// Sends the session as a token in headers instead of a cookie, for API clients.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::{App, web};
    /// use sessionbank_actix::{HeaderConfig, KeyRing, SessionMiddleware};
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    ///
    /// // `Authorization: Bearer TOKEN` in, `x-session-token: TOKEN` out.
    /// let middleware = SessionMiddleware::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
    ///     .with_header(HeaderConfig::bearer());
    /// let app = App::new().wrap(middleware).route("/", web::get().to(|| async { "hi" }));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_header(mut self, header: HeaderConfig) -> Self {
        Arc::make_mut(&mut self.config).transport = Transport::Header(header);
        self
    }

    /// Sets how the session travels: a [`CookieConfig`] or a [`HeaderConfig`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_actix::{CookieConfig, HeaderConfig, KeyRing, SessionMiddleware, Transport};
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    ///
    /// let api = HeaderConfig::custom("x-api-session")?;
    /// let transport: Transport = if std::env::var_os("USE_COOKIES").is_some() {
    ///     CookieConfig::new().into()
    /// } else {
    ///     api.into()
    /// };
    /// let _ = SessionMiddleware::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?).with_transport(transport);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_transport(mut self, transport: impl Into<Transport>) -> Self {
        Arc::make_mut(&mut self.config).transport = transport.into();
        self
    }

    /// Sets the expiry policy.
    #[must_use]
    pub fn with_policy(mut self, policy: ExpiryPolicy) -> Self {
        Arc::make_mut(&mut self.config).policy = policy;
        self
    }

    /// Sets the clock (a [`ManualClock`](sessionbank_core::ManualClock) in tests). Use the same
    /// clock for the store where it takes one.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        Arc::make_mut(&mut self.config).clock = clock;
        self
    }

    /// Replaces the key ring (after a rotation, say).
    #[must_use]
    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        Arc::make_mut(&mut self.config).keys = keys;
        self
    }

    /// The store sessions live in.
    pub fn store(&self) -> &StoreHandle {
        &self.config.store
    }
}

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
