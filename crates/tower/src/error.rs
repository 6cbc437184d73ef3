//! Rejections and errors, each with a fixed status and a body that never carries error text.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// The body [`SessionLayerMissing`] answers with.
pub const SESSION_LAYER_MISSING_BODY: &str =
    "Internal Server Error: the Session extractor needs the SessionLayer";

/// Rejection of the [`Session`](crate::Session) extractor when the route is not wrapped in a
/// [`SessionLayer`](crate::SessionLayer): `500 Internal Server Error` with the fixed body
/// [`SESSION_LAYER_MISSING_BODY`]. A programming error, so it is also logged.
///
/// # Examples
///
/// ```
/// use axum::response::IntoResponse;
/// use sessionbank_tower::SessionLayerMissing;
///
/// let response = SessionLayerMissing.into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("the Session extractor was used on a route without SessionLayer")]
pub struct SessionLayerMissing;

impl IntoResponse for SessionLayerMissing {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            SESSION_LAYER_MISSING_BODY,
        )
            .into_response()
    }
}

/// A session operation failed in a handler: wraps [`sessionbank_core::Error`] so `?` works in
/// axum handlers. As a response it is a bare `500 Internal Server Error` (empty body); the
/// error itself goes to the log (`tracing::error!`), never to the client.
///
/// # Examples
///
/// ```
/// use axum::response::IntoResponse;
/// use sessionbank_core::{Error, ErrorKind, Operation};
/// use sessionbank_tower::SessionError;
///
/// let err: SessionError =
///     Error::new(ErrorKind::Unavailable, Operation::Get, "redis is down").into();
/// assert_eq!(err.inner().kind(), ErrorKind::Unavailable);
/// assert_eq!(err.into_response().status(), 500);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SessionError(#[from] sessionbank_core::Error);

sessionbank_web::session_error!(SessionError);

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        sessionbank_web::log_failure(&self.0, "session operation failed");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}
