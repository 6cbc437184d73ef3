//! Session ids: 192 bits from the operating system's CSPRNG, written as 32 URL-safe characters.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Action, Error, ErrorKind};

/// Number of random bytes behind a [`SessionId`] (192 bits).
const ID_BYTES: usize = 24;

/// Length of a session id's text form: 24 bytes in unpadded base64url.
pub const SESSION_ID_LEN: usize = 32;

/// A session id: 192 bits from the operating system's CSPRNG as 32 characters of `[A-Za-z0-9_-]`.
///
/// This is the same shape as the ids express-session and koa-generic-session generate
/// (`uid-safe(24)`), so sessions can be shared with Node applications.
///
/// The id is a bearer secret: its `Debug` form is redacted, and it has no `Display`
/// implementation, so it cannot end up in a log line by accident. Use [`SessionId::as_str`]
/// where the full text is really needed (the cookie, the store key), and
/// [`SessionId::short`] to show a user which session is which.
///
/// # Examples
///
/// ```
/// use sessionbank_core::SessionId;
///
/// let id = SessionId::generate()?;
/// assert_eq!(id.as_str().len(), 32);
/// assert_eq!(SessionId::parse(id.as_str())?, id);
/// assert!(SessionId::parse("not an id").is_err());
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; SESSION_ID_LEN]);

impl SessionId {
    /// Generates a fresh id from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self, Error> {
        let mut raw = [0u8; ID_BYTES];
        getrandom::fill(&mut raw).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                Action::GenerateId,
                format!("the operating system's random source failed: {e}"),
            )
        })?;
        let mut text = [0u8; SESSION_ID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut text)
            .map_err(|e| Error::new(ErrorKind::Backend, Action::GenerateId, e.to_string()))?;
        debug_assert_eq!(written, SESSION_ID_LEN);
        Ok(Self(text))
    }

    /// Parses the text form of an id, rejecting anything that is not exactly 32 characters of
    /// `[A-Za-z0-9_-]`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for the wrong length or any other character (the message
    /// says which rule failed, never echoes the input).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        if bytes.len() != SESSION_ID_LEN {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                Action::ParseId,
                format!(
                    "a session id has {SESSION_ID_LEN} characters, this one has {}",
                    bytes.len()
                ),
            ));
        }
        if let Some(pos) = bytes.iter().position(|b| !is_id_byte(*b)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                Action::ParseId,
                format!(
                    "a session id uses only A-Z, a-z, 0-9, '-' and '_'; character {} is not one of them",
                    pos + 1
                ),
            ));
        }
        let mut out = [0u8; SESSION_ID_LEN];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The full text of the id (32 characters). Treat it as a secret.
    pub fn as_str(&self) -> &str {
        // Every byte was checked to be ASCII in `parse` or written by the base64 encoder.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first eight characters: enough for a person to tell their sessions apart, far too
    /// few to take one over.
    pub fn short(&self) -> &str {
        &self.as_str()[..8]
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl FromStr for SessionId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_and_parse_back() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().bytes().all(is_id_byte));
    }

    #[test]
    fn parse_rejects_wrong_length_alphabet_controls_and_junk() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\0",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA é",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/+",
        ] {
            let err = SessionId::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        let junk = "x".repeat(10 * 1024);
        let err = SessionId::parse(&junk).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.to_string().len() < 300,
            "the message must not echo the input"
        );
    }

    #[test]
    fn debug_never_shows_the_id() {
        let id = SessionId::generate().unwrap();
        assert!(!format!("{id:?}").contains(id.as_str()));
        assert!(!format!("{:?}", Some(id)).contains(id.short()));
    }
}
