//! Errors with a fixed status and a body that never carries error text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// The body [`SessionMiddlewareMissing`] answers with.
pub const SESSION_MIDDLEWARE_MISSING_BODY: &str =
    "Internal Server Error: the Session extractor needs the SessionMiddleware";

/// Error of the [`Session`](crate::Session) extractor when the route is not wrapped in a
/// [`SessionMiddleware`](crate::SessionMiddleware): `500 Internal Server Error` with the fixed
/// body [`SESSION_MIDDLEWARE_MISSING_BODY`]. A programming error, so it is also logged.
///
/// # Examples
///
/// ```
/// use actix_web::ResponseError;
/// use sessionbank_actix::SessionMiddlewareMissing;
///
/// let response = SessionMiddlewareMissing.error_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, thiserror::Error)]
#[error("the Session extractor was used on a route without SessionMiddleware")]
pub struct SessionMiddlewareMissing;

impl ResponseError for SessionMiddlewareMissing {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!("{self}");
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(SESSION_MIDDLEWARE_MISSING_BODY)
    }
}

/// A session operation failed in a handler: wraps [`sessionbank_core::Error`] so `?` works in
/// actix-web handlers. As a response it is a bare `500 Internal Server Error` (empty body); the
/// error itself goes to the log (`tracing::error!`), never to the client.
///
/// # Examples
///
/// ```
/// use actix_web::ResponseError;
/// use sessionbank_actix::SessionError;
/// use sessionbank_core::{Error, ErrorKind, Operation};
///
/// let err: SessionError =
///     Error::new(ErrorKind::Unavailable, Operation::Get, "redis is down").into();
/// assert_eq!(err.inner().kind(), ErrorKind::Unavailable);
/// assert_eq!(err.error_response().status(), 500);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SessionError(#[from] sessionbank_core::Error);

sessionbank_web::session_error!(SessionError);

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        sessionbank_web::log_failure(&self.0, "session operation failed");
        HttpResponse::InternalServerError().finish()
    }
}
