//! The framework-independent session handle (filled in by the session layer work).
