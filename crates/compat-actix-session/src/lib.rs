//! actix-session's `SessionStore` over any sessionbank store: a drop-in for actix-session users.
//!
//! Keep `actix_session::{Session, SessionMiddleware}` as they are and replace the store with
//! [`SessionbankStore`]: sessions then live in any sessionbank backend (memory, disk, SQLite,
//! PostgreSQL, MySQL, Redis, Memcached, ...) chosen by URL, with expiry enforced on every read,
//! and operators get sessionbank's tools (count, list, "log this user out everywhere",
//! cleanup, the `sessionbank` CLI).
//!
//! The record is stored as sessionbank's own JSON object of top-level keys, so the native
//! adapters (`sessionbank-actix`, `sessionbank-tower`) and Node apps read the same values.
//! (The cookie formats differ: actix-session signs or encrypts its cookie with its own key.)
//!
//! For new code, `sessionbank-actix` is the native middleware: lazy loading, per-key writes
//! (concurrent requests keep each other's changes), a `Send` session handle, key rotation.
//!
//! # Examples
//!
//! ```
//! use actix_session::{Session, SessionMiddleware};
//! use actix_web::{App, cookie::Key, test, web};
//! use sessionbank_actix_session::SessionbankStore;
//!
//! async fn count(session: Session) -> actix_web::Result<String> {
//!     let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", n)?;
//!     Ok(n.to_string())
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! // `SESSIONBANK_URL=disk:///var/lib/app/sessions`, `redis://…`, `postgres://…`
//! let store = SessionbankStore::new(sessionbank::connect("memory://").await?);
//! let app = test::init_service(
//!     App::new()
//!         .wrap(SessionMiddleware::new(store.clone(), Key::generate()))
//!         .route("/", web::get().to(count)),
//! )
//! .await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
//! assert!(response.headers().contains_key("set-cookie"));
//! assert_eq!(store.store().length().await?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod store;

pub use store::SessionbankStore;
