//! [`FromStoreUrl`]: how a backend reads its URL and opens, and [`BackendEntry`], the registry's
//! record of one backend.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::error::{Action, Error, ErrorKind, Result};
use crate::registry::url::{StoreUrl, parse_store_url};
use crate::store::Store;

/// A backend's builder, as a store URL makes it: every backend implements this once, on its
/// `XStoreBuilder`, and both [`Registry::connect`](crate::Registry::connect) and the builder's
/// own `parse` go through it.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{FromStoreUrl, MemoryStoreBuilder, Store, parse_builder};
///
/// assert_eq!(MemoryStoreBuilder::SCHEMES, ["memory"]);
/// let builder: MemoryStoreBuilder = parse_builder("memory://?max_entries=10")?;
/// assert_eq!(builder.build().max_entries(), Some(10));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub trait FromStoreUrl: Sized + Send + 'static {
    /// The store the builder opens.
    type Store: Store;

    /// The backend's name in errors and logs, e.g. `postgres`.
    const BACKEND: &'static str;

    /// The URL schemes it answers to, e.g. `["postgres", "postgresql"]`.
    const SCHEMES: &'static [&'static str];

    /// Reads the URL: host, path, and the options the backend knows, taken from `url` (the
    /// caller rejects what is left over).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL or option the backend cannot use.
    fn from_url(url: &mut StoreUrl) -> Result<Self>;

    /// Connects (or opens files) and returns the store: the builder's `open`.
    fn open_store(self) -> BoxFuture<'static, Result<Self::Store>>;
}

/// Reads a store URL into a backend's builder: [`parse_store_url`], a check that the scheme is
/// one of `B::SCHEMES`, [`FromStoreUrl::from_url`], and [`StoreUrl::finish`] (no option left
/// over; the registry's own options such as `coalesce` are refused by name). Every backend's
/// `XStoreBuilder::parse` is this.
///
/// # Errors
///
/// [`ErrorKind::Config`] for a URL that does not parse, another scheme, or an unknown or
/// malformed option.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ErrorKind, MemoryStoreBuilder, parse_builder};
///
/// let err = parse_builder::<MemoryStoreBuilder>("memory://?coalesce=false").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert!(err.to_string().contains("registry"));
/// assert!(parse_builder::<MemoryStoreBuilder>("disk:///tmp").is_err());
/// ```
pub fn parse_builder<B: FromStoreUrl>(text: &str) -> Result<B> {
    let mut url = parse_store_url(text)?;
    if !B::SCHEMES.contains(&url.scheme()) {
        return Err(Error::new(
            ErrorKind::Config,
            Action::ParseUrl,
            format!(
                "a {} URL starts with {}",
                B::BACKEND,
                B::SCHEMES
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )
        .with_backend(B::BACKEND)
        .with_target(url.target().to_owned()));
    }
    let target = url.target().to_owned();
    let builder =
        B::from_url(&mut url).map_err(|e| e.with_backend(B::BACKEND).with_target(target))?;
    url.finish(B::BACKEND)?;
    Ok(builder)
}

/// The future an [`OpenFn`] returns: connects and yields the store.
pub type OpenFuture = BoxFuture<'static, Result<Arc<dyn Store>>>;

/// A backend's opener in a [`BackendEntry`]: reads its options from the URL synchronously (so
/// the registry can reject leftovers before connecting), then returns the future that connects.
pub type OpenFn = fn(&mut StoreUrl) -> Result<OpenFuture>;

fn open_with<B: FromStoreUrl>(url: &mut StoreUrl) -> Result<OpenFuture> {
    let builder = B::from_url(url)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(builder.open_store().await?);
        Ok(store)
    }))
}

/// One backend in a [`Registry`](crate::Registry): its name, its schemes, and its opener, or the
/// cargo feature that would compile it in.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{BackendEntry, MemoryStoreBuilder, Registry};
///
/// let mut registry = Registry::new();
/// registry.register(BackendEntry::of::<MemoryStoreBuilder>());
/// registry.register(BackendEntry::compiled_out("redis", &["redis"], "redis"));
/// assert_eq!(registry.known_schemes(), ["memory", "redis"]);
/// ```
#[derive(Clone, Copy)]
pub struct BackendEntry {
    name: &'static str,
    schemes: &'static [&'static str],
    open: Result<OpenFn, &'static str>,
}

impl BackendEntry {
    /// The entry of a backend whose builder is `B`.
    pub fn of<B: FromStoreUrl>() -> Self {
        Self {
            name: B::BACKEND,
            schemes: B::SCHEMES,
            open: Ok(open_with::<B>),
        }
    }

    /// The entry of a backend this build leaves out: connecting to one of its schemes fails
    /// with an error that names `feature`, the cargo feature to enable.
    pub const fn compiled_out(
        name: &'static str,
        schemes: &'static [&'static str],
        feature: &'static str,
    ) -> Self {
        Self {
            name,
            schemes,
            open: Err(feature),
        }
    }

    /// The backend's name, e.g. `postgres`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The URL schemes it answers to.
    pub fn schemes(&self) -> &'static [&'static str] {
        self.schemes
    }

    /// Whether it is compiled in.
    pub fn is_compiled_in(&self) -> bool {
        self.open.is_ok()
    }

    /// The opener, or the cargo feature that would compile the backend in.
    pub(crate) fn opener(&self) -> Result<OpenFn, &'static str> {
        self.open
    }
}

impl fmt::Debug for BackendEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackendEntry");
        d.field("name", &self.name).field("schemes", &self.schemes);
        match self.open {
            Ok(_) => d.field("compiled_in", &true),
            Err(feature) => d.field("feature", &feature),
        };
        d.finish()
    }
}
