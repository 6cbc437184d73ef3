//! Rejections and errors, each with a fixed status and a body that never carries error text.

use std::fmt;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLayerMissing;

impl fmt::Display for SessionLayerMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Session extractor was used on a route without SessionLayer")
    }
}

impl std::error::Error for SessionLayerMissing {}

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
#[derive(Debug)]
pub struct SessionError(sessionbank_core::Error);

impl SessionError {
    /// The underlying error.
    pub fn inner(&self) -> &sessionbank_core::Error {
        &self.0
    }

    /// The underlying error, by value.
    pub fn into_inner(self) -> sessionbank_core::Error {
        self.0
    }
}

impl From<sessionbank_core::Error> for SessionError {
    fn from(e: sessionbank_core::Error) -> Self {
        Self(e)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        tracing::error!(
            error = %self.0.chain(),
            kind = %self.0.kind(),
            backend = self.0.backend(),
            "session operation failed; answering 500"
        );
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}
