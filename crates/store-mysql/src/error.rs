//! mysql_async errors → sessionbank's [`Error`], with kind, operation, backend `mysql` and the
//! redacted URL as target.

use sessionbank_core::{Action, Error, ErrorKind, Operation};

/// The backend name in every error.
pub(crate) const BACKEND: &str = "mysql";

/// MySQL's "duplicate entry for key" (`ER_DUP_ENTRY`).
pub(crate) const DUPLICATE_KEY: u16 = 1062;
/// `ER_LOCK_DEADLOCK`.
pub(crate) const DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`.
pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;

/// The server error code, if `err` is one.
pub(crate) fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(e) => Some(e.code),
        _ => None,
    }
}

/// Maps a mysql_async error into a sessionbank error for `operation` on `target`, and logs it
/// at warn level.
pub(crate) fn from_mysql(
    operation: impl Into<Action>,
    target: &str,
    err: mysql_async::Error,
) -> Error {
    let (kind, message) = match &err {
        mysql_async::Error::Io(_) => (
            ErrorKind::Unavailable,
            "the connection to the database failed",
        ),
        mysql_async::Error::Driver(_) => (
            ErrorKind::Unavailable,
            "the database connection was closed or broke",
        ),
        mysql_async::Error::Server(e) => match e.code {
            DEADLOCK | LOCK_WAIT_TIMEOUT => (
                ErrorKind::Timeout,
                "the database gave up waiting for a row lock",
            ),
            1040 | 1053 | 1927 | 2002 | 2003 | 2006 | 2013 => (
                ErrorKind::Unavailable,
                "the database is shutting down, refused the connection or went away",
            ),
            1044 | 1045 | 1049 | 1142 => (
                ErrorKind::Config,
                "the database refused the user, password or database name",
            ),
            1146 | 1054 => (
                ErrorKind::Config,
                "the session table is missing or lacks a column; open with create=true to create it",
            ),
            1153 | 1406 | 3152 => (ErrorKind::TooLarge, "the value is too large for the table"),
            3140 | 4038 | 4025 => (ErrorKind::Corrupt, "the stored data is not valid JSON"),
            _ => (ErrorKind::Backend, "the database refused the statement"),
        },
        mysql_async::Error::Url(_) => (ErrorKind::Config, "the database URL is invalid"),
        mysql_async::Error::Other(_) => (ErrorKind::Backend, "the database driver failed"),
    };
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
        .with_source(err);
    tracing::warn!(target: "sessionbank::mysql", error = %error.chain(), "mysql store error");
    error
}

/// The database did not answer within the configured timeout.
pub(crate) fn timed_out(
    operation: impl Into<Action>,
    target: &str,
    after: std::time::Duration,
) -> Error {
    let error = Error::new(
        ErrorKind::Timeout,
        operation,
        format!("the database did not answer within {after:?}"),
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::mysql", error = %error, "mysql store error");
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
    tracing::warn!(target: "sessionbank::mysql", error = %error.chain(), "mysql store error");
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
