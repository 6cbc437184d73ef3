//! One error type for every backend and layer: a kind to match on, the operation, the backend,
//! a redacted target and the driver's error behind `source()`.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, in terms a caller can act on.
///
/// # Examples
///
/// ```
/// use sessionbank_core::ErrorKind;
///
/// assert!(ErrorKind::Unavailable.is_retryable());
/// assert!(!ErrorKind::Gone.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The session does not exist (where absence is an error, e.g. the CLI's `get`).
    NotFound,
    /// The session was destroyed or expired; the operation would have brought it back.
    Gone,
    /// `create` or `rename` found the target id taken.
    AlreadyExists,
    /// This backend does not offer the operation (see `capabilities()`).
    Unsupported,
    /// The input is malformed: an id, a cookie, a name, a value.
    InvalidInput,
    /// A record or value is larger than the backend (or a configured limit) accepts.
    TooLarge,
    /// The backend cannot be reached or refused service for now; retrying may help.
    Unavailable,
    /// The backend did not answer in time; retrying may help.
    Timeout,
    /// Stored data cannot be read back.
    Corrupt,
    /// The configuration (URL, options, schema) is wrong.
    Config,
    /// Any other failure reported by the backend.
    Backend,
}

impl ErrorKind {
    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// A short lowercase name, e.g. `gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Gone => "gone",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Config => "configuration",
            ErrorKind::Backend => "backend",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation that failed. Store operations use the seed's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the operation of the same name
pub enum Operation {
    Get,
    Set,
    Create,
    Update,
    Touch,
    Destroy,
    Rename,
    All,
    Length,
    Clear,
    Cleanup,
    OwnedBy,
    DestroyOwnedBy,
    Connect,
    Setup,
    GenerateId,
    ParseId,
    ParseUrl,
    Encode,
    Decode,
    Cookie,
    Session,
}

impl Operation {
    /// The operation's name as the API spells it, e.g. `destroy_owned_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Touch => "touch",
            Operation::Destroy => "destroy",
            Operation::Rename => "rename",
            Operation::All => "all",
            Operation::Length => "length",
            Operation::Clear => "clear",
            Operation::Cleanup => "cleanup",
            Operation::OwnedBy => "owned_by",
            Operation::DestroyOwnedBy => "destroy_owned_by",
            Operation::Connect => "connect",
            Operation::Setup => "setup",
            Operation::GenerateId => "generate_id",
            Operation::ParseId => "parse_id",
            Operation::ParseUrl => "parse_url",
            Operation::Encode => "encode",
            Operation::Decode => "decode",
            Operation::Cookie => "cookie",
            Operation::Session => "session",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// sessionbank's error: a [`ErrorKind`], the [`Operation`], the backend, a redacted target and
/// the underlying error behind [`std::error::Error::source`].
///
/// The message never contains a session id, a signing key or a password: constructors take
/// already-redacted text, and backends pass targets through
/// [`redact_url`](crate::redact_url).
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Error, ErrorKind, Operation};
///
/// let err = Error::new(ErrorKind::Gone, Operation::Update, "the session was destroyed or expired")
///     .with_backend("memory");
/// assert_eq!(err.kind(), ErrorKind::Gone);
/// assert_eq!(
///     err.to_string(),
///     "update on memory failed (gone): the session was destroyed or expired"
/// );
/// ```
#[derive(thiserror::Error)]
#[error("{operation} on {backend}{target} failed ({kind}): {message}", target = TargetText(.target))]
pub struct Error {
    kind: ErrorKind,
    operation: Operation,
    backend: Cow<'static, str>,
    target: Option<String>,
    message: Cow<'static, str>,
    #[source]
    source: Option<Source>,
}

struct TargetText<'a>(&'a Option<String>);

impl fmt::Display for TargetText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, " ({t})"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A new error. `message` must already be free of secrets.
    pub fn new(
        kind: ErrorKind,
        operation: Operation,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            operation,
            backend: Cow::Borrowed("sessionbank"),
            target: None,
            message: message.into(),
            source: None,
        }
    }

    /// `Gone`: the session was destroyed or expired.
    pub fn gone(operation: Operation) -> Self {
        Self::new(
            ErrorKind::Gone,
            operation,
            "the session does not exist or has expired; it was not brought back",
        )
    }

    /// `AlreadyExists`: the id is taken.
    pub fn already_exists(operation: Operation) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            operation,
            "a live session already has this id",
        )
    }

    /// `Unsupported`: the backend does not offer `operation`.
    pub fn unsupported(operation: Operation, why: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unsupported, operation, why)
    }

    /// Names the backend, e.g. `disk`.
    #[must_use]
    pub fn with_backend(mut self, backend: impl Into<Cow<'static, str>>) -> Self {
        self.backend = backend.into();
        self
    }

    /// Names the target (a redacted URL, a path, a table). Must be free of secrets.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Attaches the underlying error. Its `Display` becomes part of no message: callers that
    /// want it walk `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The backend's name.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The redacted target, if any.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The message, without operation, backend or target.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The message followed by every `source()` in the chain, separated by `: `.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            text.push_str(": ");
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("backend", &self.backend)
            .field("target", &self.target)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

/// `Result` with sessionbank's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
