//! Sessions without a framework: the mongosess API over http::Request/Response (hyper 1) for sessionbank.
