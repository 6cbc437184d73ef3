//! tokio-postgres and pool errors → sessionbank's [`Error`], with kind, operation, backend
//! `postgres`, the redacted target, and the driver's error behind `source()`.

use std::time::Duration;

use deadpool_postgres::PoolError;
use sessionbank_core::{Action, Error, ErrorKind};
use tokio_postgres::error::SqlState;

/// The backend name in every error.
pub(crate) const BACKEND: &str = "postgres";

/// The kind and message for a driver error.
fn classify(err: &tokio_postgres::Error) -> (ErrorKind, &'static str) {
    if err.is_closed() {
        return (
            ErrorKind::Unavailable,
            "the connection to the database was closed",
        );
    }
    let Some(code) = err.code() else {
        // No SQLSTATE: an I/O or protocol failure on the way to or from the server.
        return (
            ErrorKind::Unavailable,
            "the database could not be reached or stopped answering",
        );
    };
    let text = code.code();
    if text.starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        (
            ErrorKind::Unavailable,
            "the database refused service for now",
        )
    } else if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
        (ErrorKind::Timeout, "the statement was cancelled (timeout)")
    } else if *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        (
            ErrorKind::TooLarge,
            "the session is larger than PostgreSQL accepts",
        )
    } else if text.starts_with("22") {
        (
            ErrorKind::InvalidInput,
            "PostgreSQL refused a value (a time out of range, or a string with \\u0000, which jsonb cannot hold)",
        )
    } else if *code == SqlState::UNDEFINED_TABLE
        || *code == SqlState::UNDEFINED_COLUMN
        || *code == SqlState::INVALID_SCHEMA_NAME
        || text.starts_with("28")
        || text.starts_with("3D")
        || text.starts_with("42")
    {
        (
            ErrorKind::Config,
            "the table, schema, database or credentials do not match the configuration",
        )
    } else {
        (ErrorKind::Backend, "PostgreSQL reported an error")
    }
}

/// Maps a driver error for `operation` and logs it at warn level.
pub(crate) fn from_pg(
    operation: impl Into<Action>,
    target: &str,
    err: tokio_postgres::Error,
) -> Error {
    let (kind, message) = classify(&err);
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
        .with_source(err);
    tracing::warn!(target: "sessionbank::postgres", error = %error.chain(), "postgres store error");
    error
}

/// Maps a failure to get a pooled connection.
pub(crate) fn from_pool(operation: impl Into<Action>, target: &str, err: PoolError) -> Error {
    let error = match err {
        PoolError::Backend(e) => return from_pg(operation, target, e),
        PoolError::Timeout(_) => Error::new(
            ErrorKind::Timeout,
            operation,
            "no database connection became available in time",
        )
        .with_source(err),
        PoolError::Closed => Error::new(
            ErrorKind::Unavailable,
            operation,
            "the connection pool was closed",
        ),
        other => Error::new(
            ErrorKind::Unavailable,
            operation,
            "could not get a database connection",
        )
        .with_source(other),
    };
    let error = error.with_backend(BACKEND).with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::postgres", error = %error.chain(), "postgres store error");
    error
}

/// The operation did not finish within the store's `statement_timeout`.
pub(crate) fn timed_out(operation: impl Into<Action>, target: &str, after: Duration) -> Error {
    let error = Error::new(
        ErrorKind::Timeout,
        operation,
        format!("the database did not answer within {after:?}"),
    )
    .with_backend(BACKEND)
    .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::postgres", error = %error, "postgres store error");
    error
}

/// A row holds something the layout cannot read.
pub(crate) fn corrupt(operation: impl Into<Action>, target: &str, what: &'static str) -> Error {
    let error = Error::new(ErrorKind::Corrupt, operation, what)
        .with_backend(BACKEND)
        .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::postgres", error = %error, "postgres store error");
    error
}

/// A configuration error found by `setup`.
pub(crate) fn setup(message: String, target: &str) -> Error {
    Error::new(ErrorKind::Config, Action::Setup, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
}
