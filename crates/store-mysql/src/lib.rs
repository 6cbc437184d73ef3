//! The MySQL / MariaDB store (`mysql://`, `mariadb://`) for sessionbank.
//!
//! One InnoDB table with a JSON column (on MariaDB, `JSON` is `LONGTEXT` with a
//! `JSON_VALID` check), over a [`mysql_async`](https://docs.rs/mysql_async) pool. `update` is
//! one `JSON_SET`/`JSON_REMOVE` statement guarded by liveness, on connections with
//! `CLIENT_FOUND_ROWS`, so "0 rows" reliably means the session is gone and it is never brought
//! back. Expiry is stored as BIGINT milliseconds since the UNIX epoch from the application's
//! clock: no server time zone is involved. `cleanup` selects small batches by the deadline
//! index and deletes them by primary key, so two cleaners and concurrent writers do not
//! deadlock (and a lock conflict is retried). Every operation is bounded by a timeout, so a
//! database that goes away gives `Unavailable` or `Timeout`, never a hang.
//!
//! URL: `mysql://user:password@host:port/database` (or `mariadb://…`), options `table`,
//! `create`, `timeout`, `pool_max` and the common `browser_idle` and `cleanup_time`. See
//! `docs.md` in this crate for the table layout.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sessionbank_core::{BackendEntry, Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_mysql::MySqlStoreBuilder;
//!
//! # async fn demo() -> sessionbank_core::Result<()> {
//! let mut registry = Registry::new();
//! registry.register(BackendEntry::of::<MySqlStoreBuilder>());
//! let store = registry.connect("mariadb://app:secret@127.0.0.1:3306/app?table=web_sessions").await?;
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600))).await?;
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod schema;
mod store;

pub use config::{DEFAULT_POOL_MAX, DEFAULT_TIMEOUT, MySqlStoreBuilder};
pub use store::{CLEANUP_BATCH, MySqlStore};

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

/// `mysql:` and `mariadb:` URLs: the registry's entry is
/// `BackendEntry::of::<MySqlStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_mysql::MySqlStoreBuilder;
///
/// assert_eq!(MySqlStoreBuilder::BACKEND, "mysql");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<MySqlStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["mariadb", "mysql"]);
/// ```
impl FromStoreUrl for MySqlStoreBuilder {
    type Store = MySqlStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["mysql", "mariadb"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<MySqlStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The MySQL/MariaDB store's reference: URL and options, table layout, concurrency, example
/// (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
