//! redb errors → sessionbank's [`Error`], with kind, operation, backend `disk` and the
//! directory as target.

use std::path::Path;

use sessionbank_core::{Action, Error, ErrorKind, Operation};

use crate::layout::DecodeError;

/// The backend name in every error.
pub(crate) const BACKEND: &str = "disk";

/// The target text of errors about the store at `dir`.
pub(crate) fn target(dir: &Path) -> String {
    dir.display().to_string()
}

/// Maps any redb error into a sessionbank error for `operation` (a store operation, or opening
/// and setting up the file) on the store at `dir`, and logs it at warn level.
pub(crate) fn from_redb(
    operation: impl Into<Action>,
    dir: &Path,
    err: impl Into<redb::Error>,
) -> Error {
    let err: redb::Error = err.into();
    let (kind, message) = match &err {
        redb::Error::Io(_) | redb::Error::PreviousIo => (
            ErrorKind::Unavailable,
            "the database file could not be read or written",
        ),
        redb::Error::Corrupted(_) => (ErrorKind::Corrupt, "the database file is corrupted"),
        redb::Error::DatabaseAlreadyOpen => (
            ErrorKind::Unavailable,
            "the store is already open by another process (or another DiskStore in this process)",
        ),
        redb::Error::ValueTooLarge(_) => (ErrorKind::TooLarge, "the record is too large"),
        redb::Error::UpgradeRequired(_) => (
            ErrorKind::Config,
            "the database file was written by another version of redb and needs an upgrade",
        ),
        redb::Error::DatabaseClosed => (ErrorKind::Unavailable, "the database is closed"),
        _ => (ErrorKind::Backend, "the embedded database failed"),
    };
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target(dir))
        .with_source(err);
    tracing::warn!(target: "sessionbank::disk", error = %error.chain(), "disk store error");
    error
}

/// A record under some id does not decode.
pub(crate) fn corrupt(operation: Operation, dir: &Path, err: DecodeError) -> Error {
    let error = Error::new(
        ErrorKind::Corrupt,
        operation,
        "the stored session cannot be decoded",
    )
    .with_backend(BACKEND)
    .with_target(target(dir))
    .with_source(err);
    tracing::warn!(target: "sessionbank::disk", error = %error.chain(), "disk store error");
    error
}

/// The writer thread is gone (it can only stop when the store is dropped, or on a panic).
pub(crate) fn writer_gone(operation: Operation, dir: &Path) -> Error {
    let error = Error::new(
        ErrorKind::Unavailable,
        operation,
        "the disk store's writer thread has stopped",
    )
    .with_backend(BACKEND)
    .with_target(target(dir));
    tracing::warn!(target: "sessionbank::disk", error = %error, "disk store error");
    error
}

/// A blocking read task failed to run (panicked or was cancelled at shutdown).
pub(crate) fn join_failed(operation: Operation, dir: &Path, err: tokio::task::JoinError) -> Error {
    let error = Error::new(
        ErrorKind::Backend,
        operation,
        "the blocking read task did not complete",
    )
    .with_backend(BACKEND)
    .with_target(target(dir))
    .with_source(err);
    tracing::warn!(target: "sessionbank::disk", error = %error.chain(), "disk store error");
    error
}

/// The record, once encoded, is larger than `max` bytes.
pub(crate) fn too_large(operation: Operation, dir: &Path, size: usize, max: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        operation,
        format!("the encoded session has {size} bytes, more than max_record_bytes = {max}"),
    )
    .with_backend(BACKEND)
    .with_target(target(dir))
}

/// The record could not be encoded (serde_json refusing a value).
pub(crate) fn encode_failed(operation: Operation, dir: &Path, err: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        operation,
        "the session cannot be encoded as JSON",
    )
    .with_backend(BACKEND)
    .with_target(target(dir))
    .with_source(err)
}
