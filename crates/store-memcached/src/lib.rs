//! The Memcached store (`memcached://`) for sessionbank.
//!
//! Sessions live in one or more memcached servers. Each key goes to one server chosen by
//! rendezvous hashing of the key over the server list, so a key always goes to the same server
//! while the list is unchanged, and removing a server moves only its keys. Expiry is memcached's
//! own `exptime`; reads also check each record's deadline, so an expired session is never
//! returned. `update` and `touch` are `gets` + `cas` with retries, so concurrent updates of
//! different keys all survive and a destroyed session is never brought back; `create` is `add`.
//!
//! memcached cannot list its keys: `all`, `length`, `clear` and the owner index are
//! unsupported, and say so in [`capabilities`](sessionbank_core::Store::capabilities).
//!
//! The client is memcached's text protocol over tokio, with a small connection pool per server
//! and a timeout on every call: a server that goes away makes its keys fail with
//! `ErrorKind::Unavailable` (or `Timeout`), never a hang.
//!
//! URLs: `memcached://host1:11211,host2:11211/?prefix=app:`; options `servers`, `prefix`,
//! `timeout`, `connect_timeout`, `pool_size`, `max_item_bytes` and the common `browser_idle`.
//! See `docs.md` in this crate for the storage layout.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sessionbank_core::{Patch, Record, SessionId, Store, Timestamp};
//! use sessionbank_store_memcached::MemcachedStore;
//!
//! # async fn demo() -> sessionbank_core::Result<()> {
//! let store = MemcachedStore::connect("memcached://127.0.0.1:11211,127.0.0.1:11212").await?;
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600))).await?;
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! assert_eq!(store.get(&id).await?.unwrap().data["cart"][0], "book");
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
mod layout;
mod store;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ITEM_BYTES, DEFAULT_POOL_SIZE, DEFAULT_PORT,
    DEFAULT_PREFIX, DEFAULT_TIMEOUT, MemcachedStoreBuilder,
};
pub use layout::MAX_KEY_BYTES;
pub use store::{MAX_CAS_ATTEMPTS, MemcachedStore};

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

/// `memcached:` URLs: the registry's entry is `BackendEntry::of::<MemcachedStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_memcached::MemcachedStoreBuilder;
///
/// assert_eq!(MemcachedStoreBuilder::BACKEND, "memcached");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<MemcachedStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["memcached"]);
/// ```
impl FromStoreUrl for MemcachedStoreBuilder {
    type Store = MemcachedStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["memcached"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<MemcachedStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The memcached store's reference: URL and options, storage layout, consistency, example
/// (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
