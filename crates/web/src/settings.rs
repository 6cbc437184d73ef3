//! [`session_settings!`](crate::session_settings): the constructor and `with_…` setters every
//! adapter's entry type shares, written once.

/// Gives an adapter's entry type (`SessionLayer`, `SessionMiddleware`, `Sessions`: a struct
/// with one field `config: Arc<SessionConfig>`) the shared constructor and setters: `new`,
/// `from_config`, `with_cookie`, `with_header`, `with_transport`, `with_policy`, `with_clock`,
/// `with_keys`, and the getters `store`, `transport` and `config`.
///
/// `$crate_name` is the adapter crate's name as code spells it (e.g. `"sessionbank_tower"`);
/// it must re-export `CookieConfig`, `HeaderConfig`, `KeyRing`, `Transport` and `ExpiryPolicy`,
/// which the generated documentation examples use.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sessionbank_web::SessionConfig;
///
/// /// The entry type of a (hypothetical) adapter.
/// #[derive(Clone, Debug)]
/// pub struct MyLayer {
///     config: Arc<SessionConfig>,
/// }
///
/// sessionbank_web::session_settings!(MyLayer, "sessionbank_web");
///
/// let layer = MyLayer::new(
///     sessionbank_core::StoreHandle::new(sessionbank_core::MemoryStore::new()),
///     sessionbank_web::KeyRing::generate()?,
/// )
/// .with_cookie(sessionbank_web::CookieConfig::new().secure(false));
/// assert_eq!(layer.store().backend(), "memory");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[macro_export]
macro_rules! session_settings {
    ($adapter:ident, $crate_name:literal) => {
        impl $adapter {
            /// Sessions in `store`, with cookies (or tokens) signed by `keys`, and the defaults:
            /// cookie `id` (`Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`), the default
            /// expiry policy, the system clock.
            ///
            /// # Examples
            ///
            /// ```
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{KeyRing, ", stringify!($adapter), "};")]
            ///
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);")]
            /// assert_eq!(x.store().backend(), "memory");
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            pub fn new(
                store: sessionbank_core::StoreHandle,
                keys: $crate::KeyRing,
            ) -> Self {
                Self::from_config($crate::SessionConfig::new(store, keys))
            }

            /// From settings built elsewhere (shared between several adapters, say).
            pub fn from_config(config: $crate::SessionConfig) -> Self {
                Self {
                    config: ::std::sync::Arc::new(config),
                }
            }

            /// Sends the session in a cookie with this name, attributes and format (native,
            /// Express, Keygrip): the default transport.
            ///
            /// # Examples
            ///
            /// ```
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{CookieConfig, KeyRing, ", stringify!($adapter), "};")]
            ///
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)")]
            ///     .with_cookie(CookieConfig::new().name("sid").secure(false));
            /// assert_eq!(x.transport().as_cookie().map(|c| c.cookie_name()), Some("sid"));
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_cookie(self, cookie: $crate::CookieConfig) -> Self {
                self.with_transport(cookie)
            }

            /// Sends the session as a token in headers instead of a cookie, for API clients:
            /// read from the request header (`Authorization: Bearer TOKEN` for
            /// `HeaderConfig::bearer`), sent in the response header (`x-session-token`) when it
            /// changes, and sent there with an empty value when the session ends.
            ///
            /// # Examples
            ///
            /// ```
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{HeaderConfig, KeyRing, ", stringify!($adapter), "};")]
            ///
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)")]
            ///     .with_header(HeaderConfig::bearer());
            /// assert_eq!(x.transport().request_header(), "authorization");
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_header(self, header: $crate::HeaderConfig) -> Self {
                self.with_transport(header)
            }

            /// Sets how the session travels: a `CookieConfig` or a `HeaderConfig`.
            ///
            /// # Examples
            ///
            /// ```
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{CookieConfig, HeaderConfig, KeyRing, Transport, ", stringify!($adapter), "};")]
            ///
            /// let api = HeaderConfig::custom("x-api-session")?;
            /// let transport: Transport = if std::env::var_os("USE_COOKIES").is_some() {
            ///     CookieConfig::new().into()
            /// } else {
            ///     api.into()
            /// };
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)")]
            ///     .with_transport(transport);
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_transport(mut self, transport: impl Into<$crate::Transport>) -> Self {
                ::std::sync::Arc::make_mut(&mut self.config).transport = transport.into();
                self
            }

            /// Sets the expiry policy: idle and absolute timeouts, and when a touch is due.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{ExpiryPolicy, KeyRing, ", stringify!($adapter), "};")]
            ///
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)")]
            ///     .with_policy(ExpiryPolicy::new().idle(Duration::from_secs(30 * 60)));
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_policy(mut self, policy: sessionbank_core::ExpiryPolicy) -> Self {
                ::std::sync::Arc::make_mut(&mut self.config).policy = policy;
                self
            }

            /// Sets the clock (a `ManualClock` in tests). Use the same clock for the store where
            /// it takes one.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::sync::Arc;
            /// use sessionbank_core::{ManualClock, MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{KeyRing, ", stringify!($adapter), "};")]
            ///
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)")]
            ///     .with_clock(Arc::new(ManualClock::starting_now()));
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_clock(mut self, clock: sessionbank_core::SharedClock) -> Self {
                ::std::sync::Arc::make_mut(&mut self.config).clock = clock;
                self
            }

            /// Replaces the key ring (after a rotation, say).
            ///
            /// # Examples
            ///
            /// ```
            /// use sessionbank_core::{MemoryStore, StoreHandle};
            #[doc = concat!("use ", $crate_name, "::{Key, KeyRing, ", stringify!($adapter), "};")]
            ///
            /// let mut keys = KeyRing::generate()?;
            #[doc = concat!("let x = ", stringify!($adapter), "::new(StoreHandle::new(MemoryStore::new()), keys.clone());")]
            /// keys.rotate(Key::generate()?);
            /// let x = x.with_keys(keys);
            /// # Ok::<(), sessionbank_core::Error>(())
            /// ```
            #[must_use]
            pub fn with_keys(mut self, keys: $crate::KeyRing) -> Self {
                ::std::sync::Arc::make_mut(&mut self.config).keys = keys;
                self
            }

            /// The store sessions live in, for operations beyond one session ("log this user
            /// out everywhere", counting sessions).
            pub fn store(&self) -> &sessionbank_core::StoreHandle {
                &self.config.store
            }

            /// How the session travels: the cookie settings, or the token headers.
            pub fn transport(&self) -> &$crate::Transport {
                &self.config.transport
            }

            /// All the settings.
            pub fn config(&self) -> &$crate::SessionConfig {
                &self.config
            }
        }
    };
}
