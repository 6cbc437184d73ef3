#![doc = include_str!("../README.md")]

pub use sessionbank_core::*;

/// Signed session cookies: the key ring and the signing formats (`sessionbank-cookie`).
pub use sessionbank_cookie as cookie;

/// The tower layer and axum extractor (`sessionbank-tower`; cargo feature `tower`).
#[cfg(feature = "tower")]
pub use sessionbank_tower as tower;

/// The default registry: every backend compiled into this build of sessionbank, and the schemes
/// of those that were compiled out (connecting to one names the cargo feature to enable).
///
/// # Examples
///
/// ```
/// let schemes = sessionbank::registry().known_schemes();
/// assert!(schemes.contains(&"memory"));
/// assert!(schemes.contains(&"disk"));
/// ```
pub fn registry() -> Registry {
    let mut registry = Registry::with_memory();
    registry.register(BackendEntry {
        name: "disk",
        schemes: &["disk"],
        feature: "disk",
        open: disk_opener(),
    });
    registry
}

#[cfg(feature = "disk")]
fn disk_opener() -> Option<OpenFn> {
    sessionbank_store_disk::DiskStore::REGISTRY_ENTRY.open
}

#[cfg(not(feature = "disk"))]
fn disk_opener() -> Option<OpenFn> {
    None
}

/// Opens the store a URL names, from the default [`registry`]: `memory://`,
/// `disk:///var/lib/app/sessions`, … The application never names a backend type.
///
/// Every URL accepts `cleanup_time` (the janitor's interval, default 45 minutes, `off` for
/// none) and `browser_idle` (how long a browser session lives after its last access, default
/// one day), plus the backend's own options.
///
/// # Errors
///
/// [`ErrorKind::Config`] for a malformed URL, an unknown scheme (the message lists the known
/// ones), a compiled-out backend (the message names the cargo feature) or an unknown option;
/// otherwise the backend's connection error.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = sessionbank::connect("memory://?cleanup_time=10m").await?;
/// assert_eq!(store.backend(), "memory");
/// # Ok::<(), sessionbank::Error>(())
/// # })?;
/// # Ok::<(), sessionbank::Error>(())
/// ```
pub async fn connect(url: &str) -> Result<StoreHandle> {
    registry().connect(url).await
}
