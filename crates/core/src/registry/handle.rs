//! [`StoreHandle`]: what the application holds, a shared store plus its janitor.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::janitor::{Janitor, JanitorConfig};
use crate::store::Store;

/// A cheap-to-clone handle over an `Arc<dyn Store>`, as [`Registry::connect`](crate::Registry::connect) returns: the
/// application holds this and never names a backend type. It dereferences to the
/// [`Store`] trait object, and keeps the janitor running for as long as a clone lives.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{MemoryStore, Store, StoreHandle};
///
/// let handle = StoreHandle::new(MemoryStore::new());
/// let copy = handle.clone();
/// assert_eq!(copy.backend(), "memory");
/// ```
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<dyn Store>,
    janitor: Option<Arc<Janitor>>,
    target: Arc<str>,
}

impl StoreHandle {
    /// Wraps a store, with no janitor.
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Wraps a shared store, with no janitor.
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        let target = format!("{}://", store.backend()).into();
        Self {
            store,
            janitor: None,
            target,
        }
    }

    /// What the registry hands out: the (possibly wrapped) store, its janitor, its redacted URL.
    pub(crate) fn assemble(
        store: Arc<dyn Store>,
        janitor: Option<Arc<Janitor>>,
        target: String,
    ) -> Self {
        Self {
            store,
            janitor,
            target: target.into(),
        }
    }

    /// Starts a janitor for this handle; it stops when the last clone is dropped.
    #[must_use]
    pub fn with_janitor(mut self, config: JanitorConfig) -> Self {
        self.janitor = Some(Arc::new(Janitor::spawn(self.store.clone(), config)));
        self
    }

    /// The shared store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The janitor, if one runs.
    pub fn janitor(&self) -> Option<&Janitor> {
        self.janitor.as_deref()
    }

    /// The store's URL with secrets redacted.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Deref for StoreHandle {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreHandle")
            .field("backend", &self.store.backend())
            .field("target", &self.target)
            .field("janitor", &self.janitor.is_some())
            .finish()
    }
}
