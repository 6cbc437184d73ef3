//! `tower_sessions::SessionStore` over any sessionbank store: a drop-in for tower-sessions
//! users.
//!
//! A tower-sessions application changes one line, the store it gives `SessionManagerLayer`,
//! and its sessions live in any sessionbank backend, chosen by URL:
//!
//! ```text
//! - let store = MemoryStore::default();
//! + let store = TowerSessionsStore::new(sessionbank::connect(&std::env::var("SESSIONBANK_URL")?).await?);
//!   let layer = SessionManagerLayer::new(store);
//! ```
//!
//! Everything else (the `Session` extractor, expiry, `cycle_id`, `flush`) is tower-sessions'
//! own; see [`TowerSessionsStore`] for how ids and records map, and [`session_id_for`] for the
//! id mapping. The sessions are ordinary sessionbank records, so the `sessionbank` CLI lists,
//! counts and clears them like any other.
//!
//! # Examples
//!
//! ```
//! use sessionbank_tower_sessions::TowerSessionsStore;
//! use tower_sessions::{Expiry, SessionManagerLayer};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let url = format!("disk://{}", dir.path().display());
//! let store = TowerSessionsStore::new(sessionbank::connect(&url).await?);
//! let layer = SessionManagerLayer::new(store)
//!     .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod id;
mod store;

pub use id::{ID_PREFIX, session_id_for, tower_id_of};
pub use store::TowerSessionsStore;

/// The tower-sessions core crate this store implements, re-exported so callers name the same
/// version.
pub use tower_sessions_core;
