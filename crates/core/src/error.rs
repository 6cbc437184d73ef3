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
#[non_exhaustive]
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

/// A store operation, named as the [`Store`](crate::Store) trait names it (the seed's
/// vocabulary plus `create`, `update`, `rename` and the owner index).
///
/// # Examples
///
/// ```
/// use sessionbank_core::Operation;
///
/// assert_eq!(Operation::DestroyOwnedBy.as_str(), "destroy_owned_by");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the `Store` method of the same name
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
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What sessionbank was doing when an [`Error`] happened: a store [`Operation`], or one of
/// the steps around the store (connecting, reading a URL, a cookie, ...).
///
/// Every `Operation` converts into an `Action`, so `Error::new(kind, Operation::Get, …)` and
/// `Error::new(kind, Action::ParseUrl, …)` both work.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Action, Operation};
///
/// assert_eq!(Action::from(Operation::Update).operation(), Some(Operation::Update));
/// assert_eq!(Action::ParseUrl.operation(), None);
/// assert_eq!(Action::ParseUrl.as_str(), "parse_url");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// A store operation.
    Store(Operation),
    /// Opening a connection or a database.
    Connect,
    /// Creating or checking a table, an index, a collection.
    Setup,
    /// Generating a session id.
    GenerateId,
    /// Reading a session id from text.
    ParseId,
    /// Reading a store URL or its options.
    ParseUrl,
    /// Turning a value into JSON or a stored form.
    Encode,
    /// Reading a value back from JSON or a stored form.
    Decode,
    /// Reading, signing or verifying a cookie or a token.
    Cookie,
    /// A session handle's own work (loading, finishing).
    Session,
}

impl Action {
    /// The action's name, e.g. `update` or `parse_url`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Store(operation) => operation.as_str(),
            Action::Connect => "connect",
            Action::Setup => "setup",
            Action::GenerateId => "generate_id",
            Action::ParseId => "parse_id",
            Action::ParseUrl => "parse_url",
            Action::Encode => "encode",
            Action::Decode => "decode",
            Action::Cookie => "cookie",
            Action::Session => "session",
        }
    }

    /// The store operation, when this is one.
    pub fn operation(self) -> Option<Operation> {
        match self {
            Action::Store(operation) => Some(operation),
            _ => None,
        }
    }
}

impl From<Operation> for Action {
    fn from(operation: Operation) -> Self {
        Action::Store(operation)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// sessionbank's error: a [`ErrorKind`], the [`Action`] (a store [`Operation`] or a step
/// around one), the backend, a redacted target and
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
#[error("{action} on {backend}{target} failed ({kind}): {message}", target = TargetText(.target))]
pub struct Error {
    kind: ErrorKind,
    action: Action,
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
        action: impl Into<Action>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            action: action.into(),
            backend: Cow::Borrowed("sessionbank"),
            target: None,
            message: message.into(),
            source: None,
        }
    }

    /// `Gone`: the session was destroyed or expired.
    pub fn gone(operation: impl Into<Action>) -> Self {
        Self::new(
            ErrorKind::Gone,
            operation,
            "the session does not exist or has expired; it was not brought back",
        )
    }

    /// `AlreadyExists`: the id is taken.
    pub fn already_exists(operation: impl Into<Action>) -> Self {
        Self::new(
            ErrorKind::AlreadyExists,
            operation,
            "a live session already has this id",
        )
    }

    /// `Unsupported`: the backend does not offer `operation`.
    pub fn unsupported(operation: impl Into<Action>, why: impl Into<Cow<'static, str>>) -> Self {
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

    /// What sessionbank was doing: a store operation or a step around one.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The store operation that failed, when the error came from one.
    pub fn operation(&self) -> Option<Operation> {
        self.action.operation()
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
            .field("action", &self.action)
            .field("backend", &self.backend)
            .field("target", &self.target)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

/// `Result` with sessionbank's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
