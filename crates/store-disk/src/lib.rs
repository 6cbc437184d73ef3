//! The embedded disk store (disk://), sessionbank's default backend. (Placeholder: the real
//! store replaces this file.)

use sessionbank_core::BackendEntry;

/// The disk store.
#[derive(Debug)]
pub struct DiskStore;

impl DiskStore {
    /// The registry entry for `disk://`.
    pub const REGISTRY_ENTRY: BackendEntry = BackendEntry {
        name: "disk",
        schemes: &["disk"],
        feature: "disk",
        open: None,
    };
}
