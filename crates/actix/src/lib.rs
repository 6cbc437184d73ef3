//! actix-web session middleware and extractor for sessionbank.
