//! redis-rs errors → sessionbank's [`Error`], with kind, operation, backend `redis` and the
//! redacted URL as target.

use redis::{ErrorKind as RedisKind, RedisError, ServerErrorKind};
use sessionbank_core::{Action, Error, ErrorKind, Operation};

/// The backend name in every error.
pub(crate) const BACKEND: &str = "redis";

/// The kind a caller can act on for a driver error.
pub(crate) fn kind_of(err: &RedisError) -> ErrorKind {
    if is_certificate_error(err) {
        return ErrorKind::Config;
    }
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
    {
        return ErrorKind::Unavailable;
    }
    if is_malformed_session(err) {
        return ErrorKind::Corrupt;
    }
    match err.kind() {
        RedisKind::Server(
            ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::NoScript,
        )
        | RedisKind::ClusterConnectionNotFound
        | RedisKind::MasterNameNotFoundBySentinel
        | RedisKind::NoValidReplicasFoundBySentinel
        | RedisKind::Io => ErrorKind::Unavailable,
        RedisKind::AuthenticationFailed | RedisKind::InvalidClientConfig => ErrorKind::Config,
        RedisKind::Parse | RedisKind::UnexpectedReturnType => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    }
}

/// The error reply of a script that found a stored session it cannot parse (`scripts.rs`):
/// `sessionbank: a stored session is malformed`, whose first word Redis clients take as the
/// error code.
fn is_malformed_session(err: &RedisError) -> bool {
    err.code() == Some("sessionbank:")
        && err
            .detail()
            .is_some_and(|d| d.contains("a stored session is malformed"))
}

/// Whether a TLS handshake failed because the server's certificate is not trusted (unknown CA,
/// another host's name, expired): the settings are wrong, and retrying will not help.
///
/// redis-rs keeps the rustls error behind an `Arc<dyn Error>` inside an `io::Error`, where no
/// downcast reaches it, so this reads rustls's message (`invalid peer certificate: …`).
fn is_certificate_error(err: &RedisError) -> bool {
    err.is_io_error() && err.to_string().contains("invalid peer certificate")
}

/// Maps a driver error for `operation` on the store at `target` (already redacted), and logs it
/// at warn level.
pub(crate) fn from_redis(operation: impl Into<Action>, target: &str, err: RedisError) -> Error {
    let kind = kind_of(&err);
    let message = match kind {
        ErrorKind::Config if is_certificate_error(&err) => {
            "the Redis server's TLS certificate is not trusted (set tls_ca to its CA's PEM file) or does not name this host"
        }
        ErrorKind::Timeout => "Redis did not answer in time",
        ErrorKind::Unavailable => "Redis cannot be reached or refused service for now",
        ErrorKind::Config => "Redis refused the connection settings (authentication?)",
        ErrorKind::Corrupt if is_malformed_session(&err) => {
            "a stored session is malformed (not in this store's format); it was left as it is"
        }
        ErrorKind::Corrupt => "Redis answered something this store cannot read",
        _ => "Redis reported an error",
    };
    let error = Error::new(kind, operation, message)
        .with_backend(BACKEND)
        .with_target(target.to_owned())
        .with_source(err);
    tracing::warn!(target: "sessionbank::redis", error = %error.chain(), "redis store error");
    error
}

/// A stored session does not decode.
pub(crate) fn corrupt(operation: Operation, target: &str, what: &'static str) -> Error {
    let error = Error::new(ErrorKind::Corrupt, operation, what)
        .with_backend(BACKEND)
        .with_target(target.to_owned());
    tracing::warn!(target: "sessionbank::redis", error = %error.chain(), "redis store error");
    error
}

/// A configuration error (bad URL, bad option).
pub(crate) fn config(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}
