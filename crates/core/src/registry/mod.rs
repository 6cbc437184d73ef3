//! URL in, store out: the [`Registry`] of backends, [`StoreUrl`] (one reading of a store URL for
//! every backend), [`FromStoreUrl`] (how a backend reads it) and [`StoreHandle`].

mod from_url;
mod handle;
mod url;

use std::sync::Arc;
use std::time::Duration;

pub use self::from_url::{BackendEntry, FromStoreUrl, OpenFn, OpenFuture, parse_builder};
pub use self::handle::StoreHandle;
pub use self::url::{MAX_DURATION, StoreUrl, parse_duration, parse_store_url, redact_url};

use crate::coalesce::Coalescing;
use crate::error::{Action, Error, ErrorKind, Result};
use crate::janitor::{Janitor, JanitorConfig};

/// Default interval between two janitor runs: 45 minutes, koa-pg-session's `cleanupTime`.
pub const DEFAULT_CLEANUP_TIME: Duration = Duration::from_secs(45 * 60);

/// An explicit list of backends, each under its URL schemes: the connect-databank idea, where
/// the application names a URL and never a backend type.
///
/// The facade crate `sessionbank` builds the default registry from its cargo features; this
/// type lets a program build its own (say, with a backend of its own).
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ErrorKind, Registry, Store};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = Registry::with_memory();
/// let store = registry.connect("memory://?max_entries=1000").await?;
/// assert_eq!(store.backend(), "memory");
///
/// let err = registry.connect("nosuch://x").await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert!(err.to_string().contains("memory"), "lists the known schemes");
///
/// let err = registry.connect("memory://?colour=blue").await.unwrap_err();
/// assert!(err.to_string().contains("colour"));
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: Vec<BackendEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a backend. A later entry with the same scheme takes precedence.
    pub fn register(&mut self, entry: BackendEntry) -> &mut Self {
        self.entries.insert(0, entry);
        self
    }

    /// The backends, compiled in or not.
    pub fn entries(&self) -> &[BackendEntry] {
        &self.entries
    }

    /// Every scheme the registry knows, compiled in or not, sorted.
    pub fn known_schemes(&self) -> Vec<&'static str> {
        let mut schemes: Vec<_> = self
            .entries
            .iter()
            .flat_map(|e| e.schemes().iter().copied())
            .collect();
        schemes.sort_unstable();
        schemes.dedup();
        schemes
    }

    /// Opens the store a URL names, wraps it in [`Coalescing`] unless the URL says
    /// `coalesce=false`, and starts its janitor unless the backend expires records itself or
    /// `cleanup_time=off`. `coalesce` and `cleanup_time` are the registry's own options (a
    /// backend's own `parse` refuses them); `browser_idle` and the rest go to the backend.
    ///
    /// - `cleanup_time`: the janitor's interval (`10m`, `45min`, or milliseconds as in the
    ///   seeds); `off` or `0` starts none; default 45 minutes.
    /// - `coalesce`: `true` (default) or `false`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL that does not parse, an unknown scheme (the message
    /// lists the known ones), a scheme whose cargo feature is off (the message names it), or an
    /// unknown or malformed query option; otherwise whatever the backend's connect returns.
    pub async fn connect(&self, url: &str) -> Result<StoreHandle> {
        let mut url = StoreUrl::parse(url)?;
        let target = url.target().to_owned();
        let scheme = url.scheme().to_owned();
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.schemes().contains(&scheme.as_str()))
        else {
            return Err(Error::new(
                ErrorKind::Config,
                Action::Connect,
                format!(
                    "unknown store URL scheme `{scheme}`; known schemes: {}",
                    self.known_schemes().join(", ")
                ),
            )
            .with_target(target));
        };
        let open = entry.opener().map_err(|feature| {
            Error::new(
                ErrorKind::Config,
                Action::Connect,
                format!(
                    "the `{scheme}` backend was compiled out: enable the cargo feature `{feature}` of sessionbank"
                ),
            )
            .with_target(target.clone())
        })?;
        let in_context = |e: Error| e.with_backend(entry.name()).with_target(target.clone());
        let cleanup_time = take_cleanup_time(&mut url).map_err(in_context)?;
        let coalesce = url
            .take_bool("coalesce")
            .map_err(in_context)?
            .unwrap_or(true);
        let opening = open(&mut url).map_err(in_context)?;
        url.finish(entry.name())?;
        let mut store = opening.await?;
        if coalesce {
            store = Arc::new(Coalescing::new(store));
        }
        let janitor = match cleanup_time {
            Some(interval) if !store.capabilities().native_expiry => Some(Arc::new(
                Janitor::spawn(store.clone(), JanitorConfig::every(interval)),
            )),
            _ => None,
        };
        Ok(StoreHandle::assemble(store, janitor, target))
    }
}

/// `cleanup_time`: `off`/`false`/`0` for none, a duration otherwise, default 45 minutes.
fn take_cleanup_time(url: &mut StoreUrl) -> Result<Option<Duration>> {
    let Some(text) = url.take("cleanup_time") else {
        return Ok(Some(DEFAULT_CLEANUP_TIME));
    };
    match text.as_str() {
        "off" | "false" | "0" => Ok(None),
        _ => parse_duration("cleanup_time", &text).map(Some),
    }
}
