//! Driver errors → sessionbank's [`Error`], with kind, operation, backend `mongodb`, the
//! redacted target, and the driver's error behind `source()`.

use std::time::Duration;

use mongodb::error::{ErrorKind as DriverKind, WriteFailure};
use sessionbank_core::{Action, Error, ErrorKind};

/// The backend name in every error.
pub(crate) const BACKEND: &str = "mongodb";

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;

/// The server error code of a driver error, if it carries one.
fn code(err: &mongodb::error::Error) -> Option<i32> {
    match err.kind.as_ref() {
        DriverKind::Command(c) => Some(c.code),
        DriverKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        DriverKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// Whether `err` is a duplicate key error (`_id` taken).
pub(crate) fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    code(err) == Some(DUPLICATE_KEY)
}

/// The kind and message for a driver error.
fn classify(err: &mongodb::error::Error) -> (ErrorKind, &'static str) {
    if err.contains_label("TransientTransactionError") || err.contains_label("RetryableWriteError")
    {
        return (
            ErrorKind::Unavailable,
            "the server refused the write for now (transient)",
        );
    }
    match err.kind.as_ref() {
        DriverKind::ServerSelection { .. }
        | DriverKind::Io(_)
        | DriverKind::ConnectionPoolCleared { .. }
        | DriverKind::Shutdown => (
            ErrorKind::Unavailable,
            "the MongoDB server could not be reached or stopped answering",
        ),
        DriverKind::Authentication { .. } => (
            ErrorKind::Config,
            "MongoDB refused the credentials in the URL",
        ),
        DriverKind::InvalidArgument { message, .. } if message.contains("too large") => (
            ErrorKind::TooLarge,
            "the session is larger than a MongoDB document may be (16 MiB)",
        ),
        DriverKind::InvalidArgument { .. }
        | DriverKind::DnsResolve { .. }
        | DriverKind::InvalidTlsConfig { .. } => (
            ErrorKind::Config,
            "the MongoDB connection string or an option is invalid",
        ),
        DriverKind::BsonSerialization(_) => {
            (ErrorKind::InvalidInput, "a value cannot be written as BSON")
        }
        DriverKind::BsonDeserialization(_) => {
            (ErrorKind::Corrupt, "a stored document cannot be read")
        }
        _ => match code(err) {
            Some(50) => (
                ErrorKind::Timeout,
                "the server cancelled the operation (maxTimeMS)",
            ),
            Some(10334 | 17419 | 17420) => (
                ErrorKind::TooLarge,
                "the session is larger than a MongoDB document may be (16 MiB)",
            ),
            Some(13 | 18 | 8000) => (
                ErrorKind::Config,
                "the user in the URL is not allowed to do this",
            ),
            Some(6 | 7 | 89 | 91 | 189 | 91_000 | 10107 | 13435 | 11600 | 11602) => (
                ErrorKind::Unavailable,
                "the server is not available for writes now (shutdown, stepdown, or unreachable)",
            ),
            _ => (ErrorKind::Backend, "MongoDB reported an error"),
        },
    }
}

/// Maps a driver error for `operation` and logs it at warn level.
pub(crate) fn from_driver(
    operation: impl Into<Action>,
    target: &str,
    err: mongodb::error::Error,
) -> Error {
    let (kind, message) = classify(&err);
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
        .with_source(err);
    tracing::warn!(target: "sessionbank::mongodb", error = %error.chain(), "mongodb store error");
    error
}

/// The operation did not finish within the store's timeout.
pub(crate) fn timed_out(operation: impl Into<Action>, target: &str, after: Duration) -> Error {
    let error = Error::new(
        ErrorKind::Timeout,
        operation,
        format!("the MongoDB server did not answer within {after:?}"),
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::mongodb", error = %error, "mongodb store error");
    error
}

/// A stored document holds something the layout cannot read.
pub(crate) fn corrupt(operation: impl Into<Action>, target: &str, what: String) -> Error {
    let error = Error::new(ErrorKind::Corrupt, operation, what)
        .with_backend(BACKEND)
        .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::mongodb", error = %error, "mongodb store error");
    error
}

/// The input cannot be stored in this layout.
pub(crate) fn invalid(operation: impl Into<Action>, target: &str, what: String) -> Error {
    Error::new(ErrorKind::InvalidInput, operation, what)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
}

/// A configuration error (URL, options, indexes).
pub(crate) fn config(operation: impl Into<Action>, target: &str, what: String) -> Error {
    Error::new(ErrorKind::Config, operation, what)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
}
