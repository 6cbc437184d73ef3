//! Signed session cookies: a key ring and signing formats.
