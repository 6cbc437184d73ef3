//! [`SessionConfig`]: what every request of an application shares.

use sessionbank_cookie::{KeyRing, Transport};
use sessionbank_core::{ExpiryPolicy, SharedClock, StoreHandle, system_clock};

/// The settings every request shares: where sessions live, how cookies are signed, how the
/// session travels (cookie or header token), when it expires, and the clock.
///
/// Each web adapter (`SessionLayer`, `SessionMiddleware`, `Sessions`) holds one behind an
/// `Arc` and offers the same `with_…` setters for it (see [`session_settings!`](crate::session_settings)).
/// Fields may be added in later versions: start from [`SessionConfig::new`].
///
/// Defaults: [`Transport::default`] (cookie `id`, `Secure`, `HttpOnly`, `SameSite=Lax`,
/// `Path=/`), [`ExpiryPolicy::default`], the system clock.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieConfig, KeyRing};
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use sessionbank_web::SessionConfig;
///
/// let mut config = SessionConfig::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
/// config.transport = CookieConfig::new().name("sid").into();
/// assert_eq!(config.transport.request_header(), "cookie");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Where sessions live.
    pub store: StoreHandle,
    /// The keys that sign cookies and tokens, newest first.
    pub keys: KeyRing,
    /// How the session id travels: a cookie or a header token.
    pub transport: Transport,
    /// Idle and absolute timeouts, and when a touch is due.
    pub policy: ExpiryPolicy,
    /// The clock (a [`ManualClock`](sessionbank_core::ManualClock) in tests).
    pub clock: SharedClock,
}

impl SessionConfig {
    /// Sessions in `store`, signed with `keys`, with the defaults.
    pub fn new(store: StoreHandle, keys: KeyRing) -> Self {
        Self {
            store,
            keys,
            transport: Transport::default(),
            policy: ExpiryPolicy::default(),
            clock: system_clock(),
        }
    }
}
