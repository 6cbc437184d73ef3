//! [`Sessions`]: what every request shares (store, keys, transport, policy, clock), and where
//! a request's [`Session`] starts.

use std::sync::Arc;

use http::{HeaderMap, Request};
use sessionbank_cookie::{CookieConfig, HeaderConfig, KeyRing, Transport};
use sessionbank_core::{ExpiryPolicy, SessionHandle, SharedClock, StoreHandle, system_clock};

use crate::session::Session;

/// The settings shared by every request, behind an `Arc`.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) store: StoreHandle,
    pub(crate) keys: KeyRing,
    pub(crate) transport: Transport,
    pub(crate) policy: ExpiryPolicy,
    pub(crate) clock: SharedClock,
}

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
    config: Arc<Config>,
}

impl Sessions {
    /// Sessions in `store`, with cookies signed by `keys`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    /// use sessionbank_http::{KeyRing, Sessions};
    ///
    /// let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// assert_eq!(sessions.store().backend(), "memory");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn new(store: StoreHandle, keys: KeyRing) -> Self {
        Self {
            config: Arc::new(Config {
                store,
                keys,
                transport: Transport::default(),
                policy: ExpiryPolicy::default(),
                clock: system_clock(),
            }),
        }
    }

    /// Sends the session in a cookie with this name, attributes and format (native, Express,
    /// Keygrip): the default transport.
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        Arc::make_mut(&mut self.config).transport = Transport::Cookie(cookie);
        self
    }

    /// Sends the session as a token in headers instead of a cookie, for API clients: read from
    /// the request header (`Authorization: Bearer TOKEN` for [`HeaderConfig::bearer`]), sent in
    /// the response header (`x-session-token`) when it changes, and sent there with an empty
    /// value when the session ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    /// use sessionbank_http::{HeaderConfig, KeyRing, Sessions};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
    ///     .with_header(HeaderConfig::bearer());
    /// let session = sessions.start(&http::Request::new(()));
    /// session.set(json!({"visits": 1})).await?;
    /// let mut response = http::Response::new(());
    /// session.commit(&mut response).await?;
    /// let token = response.headers()["x-session-token"].to_str()?;
    /// assert!(!response.headers().contains_key("set-cookie"));
    ///
    /// let request = http::Request::get("/").header("authorization", format!("Bearer {token}")).body(())?;
    /// assert_eq!(sessions.start(&request).get("visits").await?, Some(json!(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
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
    /// use sessionbank_http::{CookieConfig, HeaderConfig, KeyRing, Sessions, Transport};
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    ///
    /// let api = HeaderConfig::custom("x-api-session")?;
    /// let transport: Transport = if std::env::var_os("USE_COOKIES").is_some() {
    ///     CookieConfig::new().into()
    /// } else {
    ///     api.into()
    /// };
    /// let _ = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?).with_transport(transport);
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

    /// The store sessions live in, for operations beyond one session ("log this user out
    /// everywhere", counting sessions).
    pub fn store(&self) -> &StoreHandle {
        &self.config.store
    }

    /// How the session travels: the cookie settings, or the token headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    /// use sessionbank_http::{KeyRing, Sessions};
    ///
    /// let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// let cookie = sessions.transport().as_cookie().map(|c| c.cookie_name());
    /// assert_eq!(cookie, Some("id"));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn transport(&self) -> &Transport {
        &self.config.transport
    }

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
        let config = &self.config;
        let cookies = headers
            .get_all(config.transport.request_header())
            .iter()
            .filter_map(|value| value.to_str().ok());
        let incoming = match config.transport.read(cookies, &config.keys) {
            Ok(verified) => verified,
            Err(rejection) => {
                tracing::debug!(%rejection, "session cookie or token rejected; starting a fresh session");
                None
            }
        };
        let handle = SessionHandle::new(
            config.store.clone(),
            config.policy,
            config.clock.clone(),
            incoming.map(|v| v.id),
        );
        Session::new(handle, self.config.clone(), incoming)
    }
}
