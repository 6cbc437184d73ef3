//! What the middleware shares with every request: store, keys, transport (cookie or header),
//! policy, clock.

use sessionbank_cookie::{KeyRing, Transport};
use sessionbank_core::{ExpiryPolicy, SharedClock, StoreHandle};

/// The middleware's settings, shared by every request through an `Arc`.
#[derive(Clone, Debug)]
pub(crate) struct SessionConfig {
    pub(crate) store: StoreHandle,
    pub(crate) keys: KeyRing,
    pub(crate) transport: Transport,
    pub(crate) policy: ExpiryPolicy,
    pub(crate) clock: SharedClock,
}
