//! Client errors → sessionbank's [`Error`], with kind, operation, backend `memcached` and the
//! server's address as target.

use sessionbank_core::{Action, Error, ErrorKind, Operation};

use crate::client::ClientError;
use crate::layout::DecodeError;

/// The backend name in every error.
pub(crate) const BACKEND: &str = "memcached";

/// The target text of errors about the server at `addr` (`host:port`; memcached's text
/// protocol has no password).
pub(crate) fn target(addr: &str) -> String {
    format!("memcached://{addr}")
}

/// Maps a client error for `operation` on the server at `addr`, and logs it at warn level.
pub(crate) fn from_client(operation: impl Into<Action>, addr: &str, err: ClientError) -> Error {
    let (kind, message) = match &err {
        ClientError::Connect(_) => (ErrorKind::Unavailable, "cannot connect to the server"),
        ClientError::Io(_) => (
            ErrorKind::Unavailable,
            "the connection to the server failed",
        ),
        ClientError::Timeout(_) => (ErrorKind::Timeout, "the server did not answer in time"),
        ClientError::Server(m) if m.contains("too large") => (
            ErrorKind::TooLarge,
            "the server refused the session as larger than its item size limit (-I)",
        ),
        ClientError::Server(m) if m.contains("out of memory") => (
            ErrorKind::Unavailable,
            "the server is out of memory for an item of this size",
        ),
        ClientError::Server(_) => (ErrorKind::Backend, "the server reported an error"),
        ClientError::Client(_) | ClientError::Protocol(_) => (
            ErrorKind::Backend,
            "the server and the client disagree on the protocol",
        ),
    };
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target(addr))
        .with_source(err);
    tracing::warn!(target: "sessionbank::memcached", error = %error.chain(), "memcached store error");
    error
}

/// A stored value does not decode.
pub(crate) fn corrupt(operation: Operation, addr: &str, err: DecodeError) -> Error {
    let error = Error::new(
        ErrorKind::Corrupt,
        operation,
        "the stored session cannot be decoded",
    )
    .with_backend(BACKEND)
    .with_target(target(addr))
    .with_source(err);
    tracing::warn!(target: "sessionbank::memcached", error = %error.chain(), "memcached store error");
    error
}

/// The record could not be encoded.
pub(crate) fn encode_failed(operation: Operation, err: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        operation,
        "the session cannot be encoded as JSON",
    )
    .with_backend(BACKEND)
    .with_source(err)
}

/// Key plus value plus item header exceed the item size limit.
pub(crate) fn too_large(operation: Operation, size: usize, max: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        operation,
        format!(
            "the item would take {size} bytes (key, encoded session and item header), more \
             than max_item_bytes = {max}"
        ),
    )
    .with_backend(BACKEND)
}

/// The server answered in a way the command does not allow.
pub(crate) fn unexpected(operation: impl Into<Action>, addr: &str) -> Error {
    Error::new(
        ErrorKind::Backend,
        operation,
        "the server gave a reply this command does not allow",
    )
    .with_backend(BACKEND)
    .with_target(target(addr))
}

/// `cas` kept losing to other writers.
pub(crate) fn contention(operation: Operation, addr: &str, attempts: usize) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        operation,
        format!("gave up after {attempts} attempts: other writers kept changing the session"),
    )
    .with_backend(BACKEND)
    .with_target(target(addr))
}

/// An operation memcached cannot offer (it cannot list keys).
pub(crate) fn unsupported(operation: Operation) -> Error {
    Error::unsupported(
        operation,
        "memcached cannot list keys, so all, length, clear and the owner index are unsupported \
         (see capabilities())",
    )
    .with_backend(BACKEND)
}
