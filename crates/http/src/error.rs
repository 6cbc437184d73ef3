//! [`error_response`]: the response for a session error, the same as the tower layer's.

use http::{Response, StatusCode};
use sessionbank_core::Error;

/// A bare `500 Internal Server Error` (empty body) for a session error, which is logged with
/// `tracing::error!` and never sent to the client: the tower layer's answer to a store error.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::Unavailable, Operation::Update, "redis is down");
/// let response: http::Response<String> = sessionbank_http::error_response(&err);
/// assert_eq!(response.status(), 500);
/// assert!(response.body().is_empty());
/// ```
pub fn error_response<B: Default>(error: &Error) -> Response<B> {
    sessionbank_web::log_failure(error, "session operation failed");
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
