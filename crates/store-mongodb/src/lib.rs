//! The MongoDB store (`mongodb://`, `mongodb+srv://`) for sessionbank, after mongosess.
//!
//! One collection, by default `sessions`, through the official `mongodb` driver (public API
//! only). A session is one document: `_id` is the session id, its keys live in an embedded
//! `data` document so `update` is one `update_one` with `$set`/`$unset` on `data.<key>`,
//! filtered by `{_id, deadline > now}` and never an upsert. `deadline` (a BSON date) carries a
//! TTL index (`expireAfterSeconds: 0`) that [`MongoStore::setup`] creates, and every read
//! filters on it, since MongoDB's TTL monitor runs about once a minute. The owner is an indexed
//! field.
//!
//! URLs: `mongodb://user:password@host1:27017,host2:27017/database?replicaSet=rs0&collection=sessions`,
//! plus the store's `timeout` and the common `browser_idle`, and the driver's own connection
//! string options (`authSource`, `tls`, `readPreference`, … see [`DRIVER_OPTIONS`]). See
//! `docs.md` in this crate for the layout and every option.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sessionbank_core::{BackendEntry, Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_mongodb::MongoStoreBuilder;
//!
//! # async fn demo() -> sessionbank_core::Result<()> {
//! let mut registry = Registry::new();
//! registry.register(BackendEntry::of::<MongoStoreBuilder>());
//! let store = registry.connect("mongodb://127.0.0.1:27017/app?collection=sessions").await?;
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600)).owned_by("ada")).await?;
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! assert_eq!(store.owned_by("ada").await?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod layout;
mod store;

pub use config::{
    DEFAULT_COLLECTION, DEFAULT_SERVER_SELECTION_TIMEOUT, DEFAULT_TIMEOUT, DRIVER_OPTIONS,
    MongoStoreBuilder,
};
pub use layout::{DATA_FIELD, DEADLINE_FIELD, OWNER_FIELD, OWNER_INDEX_NAME, TTL_INDEX_NAME};
pub use store::MongoStore;

/// Re-exported: the driver, for [`MongoStore::from_client`].
pub use mongodb;

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

/// `mongodb:` and `mongodb+srv:` URLs: the registry's entry is
/// `BackendEntry::of::<MongoStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_mongodb::MongoStoreBuilder;
///
/// assert_eq!(MongoStoreBuilder::BACKEND, "mongodb");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<MongoStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["mongodb", "mongodb+srv"]);
/// ```
impl FromStoreUrl for MongoStoreBuilder {
    type Store = MongoStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["mongodb", "mongodb+srv"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<MongoStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The MongoDB store's reference: URL and options, document layout, indexes, concurrency,
/// example (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
