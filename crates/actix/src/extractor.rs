//! [`Session`]: the actix-web extractor (and request extension) that hands a handler its session.

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use sessionbank_core::SessionHandle;
use std::future::{Ready, ready};

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

sessionbank_web::session_extractor!(Session);

impl FromRequest for Session {
    type Error = SessionMiddlewareMissing;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(req.session())
    }
}

/// The request's [`Session`] where no extractor runs: in a guard, in another middleware, in an
/// error handler.
///
/// A middleware sees the session only if it runs inside [`SessionMiddleware`](crate::SessionMiddleware),
/// that is, if it was `.wrap`ped *before* it (actix-web runs the last `.wrap` first).
///
/// # Examples
///
/// ```
/// use actix_web::HttpRequest;
/// use sessionbank_actix::{SessionError, SessionExt};
///
/// async fn whoami(request: HttpRequest) -> actix_web::Result<String> {
///     let session = request.session()?;
///     let user: Option<String> = session.get("user").await.map_err(SessionError::from)?;
///     Ok(user.unwrap_or_else(|| "nobody".into()))
/// }
/// ```
pub trait SessionExt {
    /// The request's session.
    ///
    /// # Errors
    ///
    /// [`SessionMiddlewareMissing`] when the request did not pass through
    /// [`SessionMiddleware`](crate::SessionMiddleware).
    fn session(&self) -> Result<Session, SessionMiddlewareMissing>;
}

impl SessionExt for HttpRequest {
    fn session(&self) -> Result<Session, SessionMiddlewareMissing> {
        self.extensions()
            .get::<Session>()
            .cloned()
            .ok_or(SessionMiddlewareMissing)
    }
}

impl SessionExt for ServiceRequest {
    fn session(&self) -> Result<Session, SessionMiddlewareMissing> {
        self.extensions()
            .get::<Session>()
            .cloned()
            .ok_or(SessionMiddlewareMissing)
    }
}
