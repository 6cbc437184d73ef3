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
//! options `table`, `create`, `busy_timeout`, `readers`, `synchronous` and the common
//! `browser_idle` and `cleanup_time`. See `docs.md` in this crate for the storage layout.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use sessionbank_core::{Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let mut registry = Registry::new();
//! registry.register(SqliteStore::REGISTRY_ENTRY);
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
mod error;
mod schema;
mod store;

pub use config::{DEFAULT_BUSY_TIMEOUT, DEFAULT_READERS, SqliteStoreBuilder, Synchronous};
pub use store::{CLEANUP_BATCH, SqliteStore};

/// The examples in `docs.md` compile (checked by `cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../docs.md")]
pub struct DocsMd;
