//! sessionbank's core: the pieces every backend and web adapter share.
//!
//! - [`SessionId`], 192 random bits, URL-safe, redacted in `Debug`.
//! - [`Record`] and [`Patch`], a session's JSON keys plus expiry, created, last access, owner.
//! - [`Store`], the storage contract, with a `# Contract` section on every method that the
//!   conformance suite (`sessionbank-testkit`) checks sentence by sentence.
//! - [`Error`], one error type with an [`ErrorKind`], the [`Operation`] and the backend.
//! - [`Registry`] and [`StoreHandle`], URL in, store out; [`parse_store_url`] and
//!   [`FromStoreUrl`], the one way every backend reads its URL.
//! - [`Coalescing`], which lets concurrent requests on one session share one read and one
//!   merged write; the registry wraps every store in it.
//! - [`ExpiryPolicy`], idle and absolute timeouts together.
//! - [`Janitor`], periodic `cleanup` with jitter.
//! - [`MemoryStore`], the `memory://` backend.
//! - [`json::write_compact`], serde_json's compact text, faster for plain strings.
//!
//! Nothing here knows about cookies, HTTP or a database driver.

mod coalesce;
mod error;
mod expiry;
mod id;
mod identifier;
mod janitor;
pub mod json;
mod memory;
mod record;
mod registry;
pub mod session;
mod store;
mod time;

pub use coalesce::{Coalescing, DEFAULT_MAX_WAITERS};
pub use error::{Action, Error, ErrorKind, Operation, Result};
pub use expiry::{DEFAULT_BROWSER_IDLE, ExpiryPolicy};
pub use id::{SESSION_ID_LEN, SessionId};
pub use identifier::validate_identifier;
pub use janitor::{Janitor, JanitorConfig};
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use record::{DEFAULT_MAX_RECORD_BYTES, Data, Patch, Record};
pub use registry::{
    BackendEntry, DEFAULT_CLEANUP_TIME, FromStoreUrl, MAX_DURATION, OpenFn, OpenFuture, Registry,
    StoreHandle, StoreUrl, parse_builder, parse_duration, parse_store_url, redact_url,
};
pub use session::{Outcome, SessionHandle};
pub use store::{Capabilities, Page, SessionStream, Store, StoreExt};
pub use time::{Clock, ManualClock, SharedClock, SystemClock, Timestamp, system_clock};

/// Re-exported so backends and adapters use the same version.
pub use async_trait::async_trait;
pub use serde_json;
