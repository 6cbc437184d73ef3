//! PostgreSQL store (postgres://) for sessionbank.
