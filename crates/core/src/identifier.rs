//! Names a backend builds into statements or keys (tables, schemas, collections).

use crate::error::{Action, Error, ErrorKind, Result};

/// Checks a name that a backend puts into SQL or a key: 1 to `max_len` characters of ASCII
/// letters, digits and `_`, not starting with a digit. Anything else (quotes, semicolons, dots,
/// spaces, empty, too long) is [`ErrorKind::InvalidInput`], and never reaches a query; the
/// message names the rule that failed, never the text.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] for a name outside the rule.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Action, validate_identifier};
///
/// assert!(validate_identifier("table", "sessions_v2", 54, Action::Setup).is_ok());
/// for bad in ["", "2fast", "a;drop table x", "a\"b", "x.y"] {
///     assert!(validate_identifier("table", bad, 54, Action::Setup).is_err(), "{bad}");
/// }
/// ```
pub fn validate_identifier(
    what: &str,
    name: &str,
    max_len: usize,
    action: impl Into<Action>,
) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > max_len {
        "is too long"
    } else if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        "starts with a digit"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        "has a character that is not allowed"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::InvalidInput,
        action,
        format!(
            "the {what} name {why}; it must be 1 to {max_len} characters of ASCII letters, digits \
             and `_`, not starting with a digit"
        ),
    ))
}
