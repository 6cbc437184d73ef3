//! The SQLite store (`sqlite:`) for sessionbank.
//!
//! One table in a SQLite database file, in WAL mode with a busy timeout, so several processes
//! (and several stores in one process) can share the file. Blocking SQLite calls run on
//! tokio's blocking pool, never on a runtime worker. `update` is one statement
//! (`json_set`/`json_remove` guarded by `WHERE id = ? AND <live>`), so concurrent updates of
//! different keys all survive and a destroyed session is never brought back. Expired sessions
//! are never returned; `cleanup` deletes them in batches through an index on the deadline, and
//! an index on the owner serves `owned_by`.
//!
//! URLs: `sqlite:///absolute/file.db`, `sqlite:relative.db` or `sqlite::memory:`, with the
//! options `table`, `create`, `busy_timeout`, `readers`, `synchronous` and `browser_idle`,
//! plus, through a [`Registry`](sessionbank_core::Registry), the registry's `cleanup_time` and
//! `coalesce`. The [`docs`] module has the storage layout.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sessionbank_core::{BackendEntry, Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_sqlite::SqliteStoreBuilder;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let mut registry = Registry::new();
//! registry.register(BackendEntry::of::<SqliteStoreBuilder>());
//! let url = format!("sqlite://{}/sessions.db?table=web_sessions", dir.path().display());
//! let store = registry.connect(&url).await?;
//!
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! let record = Record::new(now).expiring_at(now + Duration::from_secs(3600)).owned_by("ada");
//! store.create(&id, &record).await?;
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! assert_eq!(store.get(&id).await?.unwrap().data["cart"][0], "book");
//! assert_eq!(store.owned_by("ada").await?.len(), 1);
//! # Ok::<(), sessionbank_core::Error>(())
//! # })?;
//! # Ok::<(), sessionbank_core::Error>(())
//! ```

mod config;
mod conn;
mod error;
mod schema;
mod store;

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

pub use config::{DEFAULT_BUSY_TIMEOUT, DEFAULT_READERS, SqliteStoreBuilder, Synchronous};
pub use store::{CLEANUP_BATCH, SqliteStore};

/// `sqlite:` URLs: the registry's entry is `BackendEntry::of::<SqliteStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_sqlite::SqliteStoreBuilder;
///
/// assert_eq!(SqliteStoreBuilder::BACKEND, "sqlite");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<SqliteStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["sqlite"]);
/// ```
impl FromStoreUrl for SqliteStoreBuilder {
    type Store = SqliteStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["sqlite"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<SqliteStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The SQLite store's reference: capabilities, URL and options, storage layout (DDL), example
/// (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
