//! How sessions are laid out in the redb file: three tables, and the encoding of a record.
//!
//! - `sessions`: id (`&str`, the 32-character text form) → encoded record (`&[u8]`).
//! - `expiry`: (`deadline_millis: i64`, id) → `()`: one entry per record, ordered by deadline,
//!   so `cleanup` walks only the expired prefix.
//! - `owners`: (owner, id) → `()`: one entry per record that has an owner.
//!
//! An encoded record is `[FORMAT_VERSION][indexed deadline: i64 big-endian][record JSON]`. The
//! indexed deadline is the key under which the record sits in `expiry`, kept in the value so
//! that the index entry can be found and removed even when the JSON no longer decodes, or when
//! the store was reopened with another `browser_idle`.

use redb::TableDefinition;
use sessionbank_core::{Record, Timestamp};

/// Id → encoded record.
pub(crate) const SESSIONS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("sessions");
/// (deadline millis, id) → nothing.
pub(crate) const EXPIRY: TableDefinition<'static, (i64, &str), ()> = TableDefinition::new("expiry");
/// (owner, id) → nothing.
pub(crate) const OWNERS: TableDefinition<'static, (&str, &str), ()> =
    TableDefinition::new("owners");

/// The first byte of every encoded record.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Bytes before the JSON: the version and the indexed deadline.
pub(crate) const HEADER_LEN: usize = 9;

/// Why a stored value could not be decoded (no secret in it: never the bytes themselves).
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Shorter than the header.
    Truncated(usize),
    /// An unknown format version byte.
    Version(u8),
    /// The JSON does not decode to a record.
    Json(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated(len) => write!(
                f,
                "the stored value has {len} bytes, fewer than the {HEADER_LEN}-byte header"
            ),
            DecodeError::Version(v) => write!(
                f,
                "the stored value has format version {v}; this build reads version {FORMAT_VERSION}"
            ),
            DecodeError::Json(e) => write!(f, "the stored record does not decode: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Encodes `record`, to be indexed under `deadline`.
pub(crate) fn encode(record: &Record, deadline: Timestamp) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&deadline.as_millis().to_be_bytes());
    serde_json::to_writer(&mut out, record)?;
    Ok(out)
}

/// The indexed deadline of an encoded record, when at least the header is intact.
pub(crate) fn indexed_deadline(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < HEADER_LEN || bytes[0] != FORMAT_VERSION {
        return None;
    }
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[1..HEADER_LEN]);
    Some(i64::from_be_bytes(raw))
}

/// The two fields that decide whether a record is live; decoding only these skips the data.
#[derive(serde::Deserialize)]
struct Liveness {
    expires_at: Option<Timestamp>,
    last_access: Timestamp,
}

/// Whether an encoded record is live at `now`, decoding only its expiry and last access.
pub(crate) fn is_live(
    bytes: &[u8],
    now: Timestamp,
    browser_idle: std::time::Duration,
) -> Result<bool, DecodeError> {
    check_header(bytes)?;
    let l: Liveness = serde_json::from_slice(&bytes[HEADER_LEN..]).map_err(DecodeError::Json)?;
    let deadline = l
        .expires_at
        .unwrap_or_else(|| l.last_access.saturating_add(browser_idle));
    Ok(deadline > now)
}

fn check_header(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    Ok(())
}

/// Decodes an encoded record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    check_header(bytes)?;
    serde_json::from_slice(&bytes[HEADER_LEN..]).map_err(DecodeError::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let record = Record::new(now).owned_by("ada");
        let bytes = encode(&record, now).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(indexed_deadline(&bytes), Some(now.as_millis()));
        assert_eq!(decode(&bytes).unwrap(), record);
        let idle = std::time::Duration::from_secs(10);
        assert!(is_live(&bytes, now, idle).unwrap());
        assert!(!is_live(&bytes, now + idle, idle).unwrap());
        let expiring = record.expiring_at(now + idle + idle);
        let bytes = encode(&expiring, now).unwrap();
        assert!(is_live(&bytes, now + idle, idle).unwrap());
        assert!(!is_live(&bytes, now + idle + idle, idle).unwrap());
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        assert!(matches!(decode(b""), Err(DecodeError::Truncated(0))));
        assert!(matches!(decode(&[9; 20]), Err(DecodeError::Version(9))));
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(b"{not json");
        assert!(matches!(decode(&bytes), Err(DecodeError::Json(_))));
        assert_eq!(indexed_deadline(&bytes), Some(0));
        assert_eq!(indexed_deadline(b"xx"), None);
    }
}
