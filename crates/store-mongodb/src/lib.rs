//! MongoDB store (mongodb://) for sessionbank.
