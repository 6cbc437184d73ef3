//! [`MemoryStoreBuilder`]: the memory store's options, from code or from a `memory://` URL.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Action, Error, ErrorKind, Result};
use crate::expiry::DEFAULT_BROWSER_IDLE;
use crate::memory::MemoryStore;
use crate::record::DEFAULT_MAX_RECORD_BYTES;
use crate::registry::{BackendEntry, FromStoreUrl, Registry, StoreUrl, parse_builder};
use crate::time::{SharedClock, system_clock};

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    max_entries: Option<usize>,
    max_record_bytes: usize,
    browser_idle: Duration,
    clock: SharedClock,
}

impl MemoryStoreBuilder {
    /// Refuse new sessions (with [`ErrorKind::Unavailable`]) once `max` live sessions are held,
    /// after first removing expired ones. Unbounded by default.
    #[must_use]
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = Some(max);
        self
    }

    /// The largest session data, as JSON, a write may leave (default
    /// [`DEFAULT_MAX_RECORD_BYTES`], 1 MiB; URL option `max_record_bytes`): a larger `set`,
    /// `create` or `update` fails with [`ErrorKind::TooLarge`] naming the limit and the size,
    /// and writes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use sessionbank_core::{ErrorKind, MemoryStore, Patch, Record, SessionId, Store, Timestamp};
    ///
    /// let store = MemoryStore::builder().max_record_bytes(16).build();
    /// let id = SessionId::generate()?;
    /// store.create(&id, &Record::new(Timestamp::now())).await?;
    /// let big = Patch::new().set("note", "x".repeat(100).into());
    /// assert_eq!(store.update(&id, &big).await.unwrap_err().kind(), ErrorKind::TooLarge);
    /// assert!(store.get(&id).await?.unwrap().data.is_empty(), "nothing written");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// How long a browser session lives after its last access (default one day).
    #[must_use]
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// The clock that decides what has expired (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore::from_parts(
            self.max_entries,
            self.max_record_bytes,
            self.browser_idle,
            self.clock,
        )
    }

    /// Builds the store (the same as [`build`](Self::build); the name every backend's builder
    /// shares).
    pub async fn open(self) -> Result<MemoryStore> {
        Ok(self.build())
    }

    /// Reads a `memory://` URL (options `max_entries`, `max_record_bytes` and `browser_idle`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a host, a path, or an unknown or
    /// malformed option.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::MemoryStoreBuilder;
    ///
    /// assert_eq!(MemoryStoreBuilder::parse("memory://?max_entries=5")?.build().max_entries(), Some(5));
    /// assert!(MemoryStoreBuilder::parse("memory://somewhere").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_entries: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            browser_idle: DEFAULT_BROWSER_IDLE,
            clock: system_clock(),
        }
    }
}

impl FromStoreUrl for MemoryStoreBuilder {
    type Store = MemoryStore;
    const BACKEND: &'static str = "memory";
    const SCHEMES: &'static [&'static str] = &["memory"];

    fn from_url(url: &mut StoreUrl) -> Result<Self> {
        let parsed = url.url();
        if parsed.host_str().is_some_and(|h| !h.is_empty()) || !matches!(parsed.path(), "" | "/") {
            return Err(Error::new(
                ErrorKind::Config,
                Action::ParseUrl,
                "memory:// takes no host or path; write `memory://`",
            ));
        }
        let mut builder = Self::default().browser_idle(url.browser_idle());
        if let Some(max) = url.take_usize("max_entries", 1..=usize::MAX)? {
            builder = builder.max_entries(max);
        }
        if let Some(max) = url.take_usize("max_record_bytes", 1..=(1 << 30))? {
            builder = builder.max_record_bytes(max);
        }
        Ok(builder)
    }

    fn open_store(self) -> BoxFuture<'static, Result<MemoryStore>> {
        Box::pin(self.open())
    }
}

impl Registry {
    /// A registry with `memory://` only.
    pub fn with_memory() -> Self {
        let mut registry = Self::new();
        registry.register(BackendEntry::of::<MemoryStoreBuilder>());
        registry
    }
}
