//! rusqlite errors → sessionbank's [`Error`], with kind, operation, backend `sqlite` and the
//! database file as target.

use rusqlite::ErrorCode;
use sessionbank_core::{Action, Error, ErrorKind, Operation};

/// The backend name in every error.
pub(crate) const BACKEND: &str = "sqlite";

/// Maps a rusqlite error into a sessionbank error for `operation` (a store operation, or
/// connecting and setting up) on the database `target`, and logs it at warn level.
pub(crate) fn from_sqlite(
    operation: impl Into<Action>,
    target: &str,
    err: rusqlite::Error,
) -> Error {
    let (kind, message) = match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
                ErrorKind::Timeout,
                "the database stayed locked by another connection for longer than busy_timeout",
            ),
            ErrorCode::CannotOpen => (ErrorKind::Unavailable, "the database file cannot be opened"),
            ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::ReadOnly => (
                ErrorKind::Unavailable,
                "the database file could not be read or written",
            ),
            ErrorCode::PermissionDenied => (
                ErrorKind::Unavailable,
                "permission denied on the database file",
            ),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => (
                ErrorKind::Corrupt,
                "the database file is corrupted or not a SQLite database",
            ),
            ErrorCode::TooBig => (ErrorKind::TooLarge, "the record is too large for SQLite"),
            ErrorCode::SchemaChanged | ErrorCode::ConstraintViolation => {
                (ErrorKind::Backend, "SQLite refused the statement")
            }
            _ => (ErrorKind::Backend, "SQLite failed"),
        },
        rusqlite::Error::InvalidPath(_) => (ErrorKind::Config, "the database path is invalid"),
        _ => (ErrorKind::Backend, "SQLite failed"),
    };
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
        .with_source(err);
    tracing::warn!(target: "sessionbank::sqlite", error = %error.chain(), "sqlite store error");
    error
}

/// A stored record cannot be decoded.
pub(crate) fn corrupt(operation: Operation, target: &str, err: serde_json::Error) -> Error {
    let error = Error::new(
        ErrorKind::Corrupt,
        operation,
        "the stored session's data is not a JSON object",
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned())
    .with_source(err);
    tracing::warn!(target: "sessionbank::sqlite", error = %error.chain(), "sqlite store error");
    error
}

/// A value could not be encoded as JSON.
pub(crate) fn encode_failed(operation: Operation, target: &str, err: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        operation,
        "the session cannot be encoded as JSON",
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned())
    .with_source(err)
}

/// A blocking task failed to run (panicked, or was cancelled at shutdown).
pub(crate) fn join_failed(
    operation: impl Into<Action>,
    target: &str,
    err: tokio::task::JoinError,
) -> Error {
    let error = Error::new(
        ErrorKind::Backend,
        operation,
        "the blocking database task did not complete",
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned())
    .with_source(err);
    tracing::warn!(target: "sessionbank::sqlite", error = %error.chain(), "sqlite store error");
    error
}
