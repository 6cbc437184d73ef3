//! tower/axum session layer and extractor for sessionbank.
