//! tower_sessions::SessionStore over any sessionbank store (drop-in for tower-sessions users).
