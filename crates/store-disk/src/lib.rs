//! The embedded disk store (`disk://`), sessionbank's default backend.
//!
//! One [redb](https://docs.rs/redb) file in a directory: pure Rust, ACID, readers that never
//! block the writer (MVCC), and a file lock so only one process has the store open. Every write
//! is acknowledged only after its transaction is on disk (fsync), and writes queued at the same
//! time share one commit (group commit), so an application gets durability without paying one
//! fsync per request. Expired sessions are never returned, and `cleanup` walks an index ordered
//! by deadline, so its cost grows with the number of expired sessions, not the total.
//!
//! URLs: `disk:///absolute/path/to/dir` or `disk:relative/dir` (relative to the working
//! directory); options `max_record_bytes` (default 1 MiB) and `browser_idle`, plus, through a
//! [`Registry`](sessionbank_core::Registry), the registry's `cleanup_time` and `coalesce`. The
//! [`docs`] module has the storage layout.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sessionbank_core::{BackendEntry, Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_disk::DiskStoreBuilder;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let mut registry = Registry::new();
//! registry.register(BackendEntry::of::<DiskStoreBuilder>());
//! let url = format!("disk://{}/sessions?max_record_bytes=65536", dir.path().display());
//! let store = registry.connect(&url).await?;
//!
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! let record = Record::new(now).expiring_at(now + Duration::from_secs(3600)).owned_by("ada");
//! store.create(&id, &record).await?; // durable once this returns
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! assert_eq!(store.get(&id).await?.unwrap().data["cart"][0], "book");
//! assert_eq!(store.owned_by("ada").await?.len(), 1);
//! # Ok::<(), sessionbank_core::Error>(())
//! # })?;
//! # Ok::<(), sessionbank_core::Error>(())
//! ```

mod config;
mod error;
mod layout;
mod store;
mod writer;

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

pub use config::{DATABASE_FILE, DEFAULT_MAX_RECORD_BYTES, DiskStoreBuilder};
pub use store::{CLEANUP_BATCH, DiskStore};

/// `disk:` URLs: the registry's entry is `BackendEntry::of::<DiskStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_disk::DiskStoreBuilder;
///
/// assert_eq!(DiskStoreBuilder::BACKEND, "disk");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<DiskStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["disk"]);
/// ```
impl FromStoreUrl for DiskStoreBuilder {
    type Store = DiskStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["disk"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<DiskStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The disk store's reference: capabilities, URL and options, storage layout, durability and
/// concurrency, example (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
