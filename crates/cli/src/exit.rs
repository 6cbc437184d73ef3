//! The tool's exit statuses: 0 success, [`EXIT_NOT_FOUND`], [`EXIT_ERROR`].

/// Exit status for "the session was not found" (or a cookie that does not verify).
pub(crate) const EXIT_NOT_FOUND: u8 = 1;

/// Exit status for every other error.
pub(crate) const EXIT_ERROR: u8 = 2;
