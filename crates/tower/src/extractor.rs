//! [`Session`]: the axum extractor (and request extension) that hands a handler its session.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use sessionbank_core::SessionHandle;

use crate::error::SessionLayerMissing;

/// The request's session, as an axum extractor: derefs to the core
/// [`SessionHandle`], so it has the same methods (`get`, `insert`, `remove`, `cycle_id`,
/// `destroy`, ...), plus [`store`](Session::store) for operations beyond this session ("log
/// this user out everywhere").
///
/// [`SessionLayer`](crate::SessionLayer) puts one into every request's extensions; without the
/// layer, extraction fails with [`SessionLayerMissing`] (a fixed 500). Cheap to clone; clones
/// share the session. `Option<Session>` extracts `None` instead of failing.
///
/// Methods return `sessionbank_core::Result`; in a handler returning
/// `Result<_, `[`SessionError`](crate::SessionError)`>`, `?` turns a store error into a logged,
/// bare 500.
///
/// # Examples
///
/// ```
/// use sessionbank_tower::{Session, SessionError};
///
/// async fn visits(session: Session) -> Result<String, SessionError> {
///     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", n).await?;
///     Ok(format!("visit number {n}"))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Session {
    handle: SessionHandle,
}

sessionbank_web::session_extractor!(Session);

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionLayerMissing;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionLayerMissing)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}
