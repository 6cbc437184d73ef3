//! The PostgreSQL store (`postgres://`, `postgresql://`) for sessionbank.
//!
//! One table, by default `public.session`, read and written through `tokio-postgres`
//! connections from a `deadpool-postgres` pool, shared by concurrent operations (their
//! statements are pipelined), with prepared statements: one round trip per operation.
//! The native layout keeps the data as `jsonb`, so `update` merges keys on the server in one
//! statement that never brings back a destroyed or expired session; the expiry is a
//! `timestamptz` deadline with an index, so reads filter expired rows and `cleanup` removes
//! them in batches whose cost grows with the expired rows, not the table. The seed's own table
//! (koa-pg-session: `id TEXT PRIMARY KEY, expiry timestamp NOT NULL, session JSON`) works with
//! `layout=koa`.
//!
//! URLs: `postgres://user:password@host:5432/database?schema=public&table=session&create=true`,
//! plus `layout`, `pool_size`, `statement_timeout`, `connect_timeout`, `application_name`,
//! `options`, `sslmode` and the common `browser_idle` and `cleanup_time`. See `docs.md` in this
//! crate for the DDL and every option.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use sessionbank_core::{BackendEntry, Patch, Record, Registry, SessionId, Store, Timestamp};
//! use sessionbank_store_postgres::PostgresStoreBuilder;
//!
//! # async fn demo() -> sessionbank_core::Result<()> {
//! let mut registry = Registry::new();
//! registry.register(BackendEntry::of::<PostgresStoreBuilder>());
//! let store = registry
//!     .connect("postgres://app:secret@db.internal/app?table=sessions&cleanup_time=10m")
//!     .await?;
//! let id = SessionId::generate()?;
//! let now = Timestamp::now();
//! store.create(&id, &Record::new(now).expiring_at(now + Duration::from_secs(3600)).owned_by("ada")).await?;
//! store.update(&id, &Patch::new().set("cart", serde_json::json!(["book"]))).await?;
//! assert_eq!(store.owned_by("ada").await?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod config;
mod conn;
mod error;
mod layout;
mod setup;
mod store;
mod time;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT,
    DEFAULT_TABLE, PostgresStoreBuilder,
};
pub use layout::{CLEANUP_BATCH, Layout, MAX_SCHEMA_LEN, MAX_TABLE_LEN};
pub use store::PostgresStore;

/// Re-exported: the pool type [`PostgresStore::builder_from_pool`] takes.
pub use deadpool_postgres;
/// Re-exported: the driver configuration [`PostgresStore::builder`] takes.
pub use tokio_postgres;

use std::future::Future;
use std::pin::Pin;

use sessionbank_core::{FromStoreUrl, Result, StoreUrl};

/// `postgres:` and `postgresql:` URLs: the registry's entry is
/// `BackendEntry::of::<PostgresStoreBuilder>()`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, FromStoreUrl, Registry};
/// use sessionbank_store_postgres::PostgresStoreBuilder;
///
/// assert_eq!(PostgresStoreBuilder::BACKEND, "postgres");
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<PostgresStoreBuilder>());
/// assert_eq!(registry.known_schemes(), ["postgres", "postgresql"]);
/// ```
impl FromStoreUrl for PostgresStoreBuilder {
    type Store = PostgresStore;
    const BACKEND: &'static str = error::BACKEND;
    const SCHEMES: &'static [&'static str] = &["postgres", "postgresql"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        Self::read_url(url)
    }

    fn open_store(self) -> Pin<Box<dyn Future<Output = Result<PostgresStore>> + Send + 'static>> {
        Box::pin(self.open())
    }
}

/// The PostgreSQL store's reference: URL and options, the native and koa-pg-session table
/// layouts, setup, concurrency, example (this crate's `docs.md`).
#[doc = include_str!("../docs.md")]
pub mod docs {}
