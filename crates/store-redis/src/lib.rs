//! The Redis store (`redis://`, `rediss://`, `redis+cluster://`, `redis+sentinel://`) for
//! sessionbank.
//!
//! One string per session, expired by Redis itself at the session's deadline (`PXAT`, in
//! milliseconds), so `cleanup` has nothing to do and no janitor runs. `set` is one `SET`,
//! `create` one `SET NX`, `get` one `GET`; `update`, `touch` and `rename` are Lua scripts on
//! the server, sent with EVALSHA (and as EVAL after NOSCRIPT, which caches them), so each is
//! atomic and takes one round trip. Each command and script touches one hash slot, so the same
//! code runs on a Redis Cluster; only `rename` there is a copy-then-delete (see `docs.md`). Owners are
//! indexed in a set per owner. `all`, `length` and `clear` walk every master with `SCAN`,
//! restricted to the store's key prefix.
//!
//! A second layout, `layout=hash` ([`Layout::Hash`]), keeps a hash per session instead, so that
//! `update` and `touch` are native commands in one `MULTI … EXEC` rather than a script.
//!
//! The connection is redis-rs's multiplexed one, opened on first use and replaced after an
//! error that means it is gone (for Sentinel: the master moved, so the sentinels are asked
//! again); for a cluster, redis-rs's cluster connection, which follows MOVED and ASK.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sessionbank_core::{Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_redis::RedisStoreBuilder;
//!
//! # async fn run() -> sessionbank_core::Result<()> {
//! let mut registry = Registry::new();
//! registry.register(sessionbank_core::BackendEntry::of::<RedisStoreBuilder>());
//! let store = registry.connect("redis://127.0.0.1:6379/0?prefix=app:").await?;
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
mod conn;
mod error;
mod hash;
mod layout;
mod scripts;
mod store;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RESPONSE_TIMEOUT, Layout, RedisStoreBuilder,
};
pub use store::{RedisStore, SCAN_COUNT};

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

/// `redis:`, `rediss:`, `redis+cluster:` and `redis+sentinel:` URLs: the registry's entry is
/// `BackendEntry::of::<RedisStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_redis::RedisStoreBuilder;
///
/// assert_eq!(RedisStoreBuilder::BACKEND, "redis");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<RedisStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["redis", "redis+cluster", "redis+sentinel", "rediss"]);
/// ```
impl FromStoreUrl for RedisStoreBuilder {
    type Store = RedisStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] =
        &["redis", "rediss", "redis+cluster", "redis+sentinel"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<RedisStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The Redis store's reference: topologies and URLs, options, the string and hash layouts,
/// scripts, Cluster routing, example (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
