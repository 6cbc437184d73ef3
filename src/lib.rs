//! sessionbank facade (placeholder while the crates land).
pub use sessionbank_core::*;
