//! [`Session`]: the actix-web extractor (and request extension) that hands a handler its session.

use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use sessionbank_core::{SessionHandle, StoreHandle};

use crate::error::SessionMiddlewareMissing;

/// The request's session, as an actix-web extractor: derefs to the core [`SessionHandle`], so
/// it has the same methods (`get`, `insert`, `remove`, `cycle_id`, `destroy`, ...), plus
/// [`store`](Session::store) for operations beyond this session ("log this user out
/// everywhere").
///
/// [`SessionMiddleware`](crate::SessionMiddleware) puts one into every request's extensions;
/// without the middleware, extraction fails with [`SessionMiddlewareMissing`] (a fixed 500).
/// `Option<Session>` extracts `None` instead of failing.
///
/// Unlike `actix_session::Session`, it is `Send + Sync`: a handler can move it into
/// `tokio::spawn` or hold it across an await in a `Send` future. Cheap to clone; clones share
/// the session.
///
/// Methods return `sessionbank_core::Result`; in a handler returning
/// `Result<_, `[`SessionError`](crate::SessionError)`>`, `?` turns a store error into a logged,
/// bare 500.
///
/// # Examples
///
/// ```
/// use sessionbank_actix::{Session, SessionError};
///
/// async fn visits(session: Session) -> Result<String, SessionError> {
///     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", n).await?;
///     Ok(format!("visit number {n}"))
/// }
///
/// fn is_send<T: Send + Sync>() {}
/// is_send::<Session>();
/// ```
#[derive(Clone, Debug)]
pub struct Session {
    handle: SessionHandle,
}

impl Session {
    /// Wraps a core handle (the middleware does this for each request).
    pub fn new(handle: SessionHandle) -> Self {
        Self { handle }
    }

    /// The store sessions live in, for operations on other sessions, e.g.
    /// `session.store().destroy_owned_by(user, except)`.
    pub fn store(&self) -> &StoreHandle {
        self.handle.store()
    }

    /// The core handle.
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The core handle, by value.
    pub fn into_handle(self) -> SessionHandle {
        self.handle
    }
}

impl Deref for Session {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.handle
    }
}

impl FromRequest for Session {
    type Error = SessionMiddlewareMissing;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Session>()
                .cloned()
                .ok_or(SessionMiddlewareMissing),
        )
    }
}
