//! actix_session::storage::SessionStore over any sessionbank store (drop-in for actix-session users).
