//! SQLite store (sqlite://) for sessionbank.
