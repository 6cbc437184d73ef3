//! How a session is laid out in memcached: the key, the item flags, the value bytes and the
//! expiry (`exptime`).

use sessionbank_core::{Record, SessionId, Timestamp};

/// memcached's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 250;

/// The item flags of every value this crate writes: the layout's version. A value with other
/// flags is not ours (or from a later version) and reads as `Corrupt`.
pub(crate) const FORMAT_FLAGS: u32 = 1;

/// Bytes of an item that are not key or value, as counted against the server's item size limit
/// (`-I`): memcached's item header (48 bytes on 64-bit builds), the cas unique (8), the key's
/// terminator and the value's `\r\n`, rounded up generously so that a value that passes our
/// check is never refused by the server.
pub(crate) const ITEM_OVERHEAD: usize = 96;

/// Longest relative `exptime` memcached accepts; a larger number is read as a UNIX time.
const MAX_RELATIVE_SECS: i64 = 30 * 24 * 3600;

/// The key of session `id`: the prefix followed by the id's 32 characters.
pub(crate) fn key(prefix: &str, id: &SessionId) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + id.as_str().len());
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// Checks a key prefix: printable ASCII without spaces (memcached keys end at a space or a
/// control character), and short enough that prefix plus a 32-character id fits in 250 bytes.
/// The error message does not echo the prefix.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    let longest = MAX_KEY_BYTES - sessionbank_core::SESSION_ID_LEN;
    if prefix.len() > longest {
        return Err(format!(
            "the key prefix has {} bytes; memcached keys are at most {MAX_KEY_BYTES} bytes, so \
             with the 32-character id the prefix may have at most {longest}",
            prefix.len()
        ));
    }
    if let Some(bad) = prefix.bytes().find(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "the key prefix contains byte 0x{bad:02x}; memcached keys allow printable ASCII \
             without spaces or control characters"
        ));
    }
    Ok(())
}

/// The value of a record: the record as JSON,
/// `{"data":{…},"expires_at":…,"created_at":…,"last_access":…,"owner":…}` (the bytes
/// `serde_json::to_vec` writes, by `sessionbank_core::json::write_record`, whose strings skip
/// serde_json's byte-at-a-time escaping when they need none).
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    sessionbank_core::json::write_record(&mut out, record)?;
    Ok(out)
}

/// Why a stored value does not read back as a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("the item has flags {0}, not {FORMAT_FLAGS}: it was not written by this layout")]
    Flags(u32),
    #[error("the value is not a JSON record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a value back.
pub(crate) fn decode(flags: u32, value: &[u8]) -> Result<Record, DecodeError> {
    if flags != FORMAT_FLAGS {
        return Err(DecodeError::Flags(flags));
    }
    Ok(serde_json::from_slice(value)?)
}

/// The `exptime` for an item whose record dies at `deadline`, written at `now`:
///
/// - `-1` when the deadline has passed (memcached drops such an item at once);
/// - up to 30 days ahead: the seconds left, rounded up, plus one (memcached's clock ticks
///   once a second, so without the extra second an item could vanish up to a second early);
/// - further ahead: the deadline as a UNIX time in seconds, rounded up, plus one;
/// - past 2038 (memcached's exptime is 32-bit): `0`, no expiry on the server (reads still
///   check the deadline, and memcached's LRU evicts it eventually).
pub(crate) fn exptime(deadline: Timestamp, now: Timestamp) -> i64 {
    let left_ms = deadline.as_millis().saturating_sub(now.as_millis());
    if left_ms <= 0 {
        return -1;
    }
    let left_secs = left_ms.div_euclid(1000) + i64::from(left_ms.rem_euclid(1000) != 0) + 1;
    if left_secs <= MAX_RELATIVE_SECS {
        return left_secs;
    }
    let ms = deadline.as_millis();
    let absolute = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0) + 1;
    if absolute > i64::from(i32::MAX) {
        0
    } else {
        absolute
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn exptime_rounds_up_and_switches_to_absolute_after_30_days() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        assert_eq!(exptime(now, now), -1);
        assert_eq!(exptime(now - Duration::from_secs(5), now), -1);
        assert_eq!(exptime(now + Duration::from_millis(1), now), 2);
        assert_eq!(exptime(now + Duration::from_millis(800), now), 2);
        assert_eq!(exptime(now + Duration::from_secs(1), now), 2);
        assert_eq!(exptime(now + Duration::from_millis(1001), now), 3);
        let thirty_days = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(
            exptime(now + thirty_days - Duration::from_secs(1), now),
            30 * 24 * 3600
        );
        let later = now + thirty_days + Duration::from_millis(500);
        assert_eq!(exptime(later, now), 1_700_000_000 + 30 * 24 * 3600 + 1 + 1);
        assert_eq!(exptime(Timestamp::from_millis(i64::MAX), now), 0);
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("sessionbank:").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix(&"p".repeat(218)).is_ok());
        assert!(check_prefix(&"p".repeat(219)).is_err());
        for bad in ["a b", "a\nb", "a\rb", "a\0", "ž"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_round_trip_and_foreign_items_are_refused() {
        let now = Timestamp::now();
        let record = Record::new(now)
            .expiring_at(now + Duration::from_secs(60))
            .owned_by("ada");
        let bytes = encode(&record).unwrap();
        assert_eq!(decode(FORMAT_FLAGS, &bytes).unwrap(), record);
        assert!(matches!(decode(0, &bytes), Err(DecodeError::Flags(0))));
        assert!(matches!(
            decode(FORMAT_FLAGS, b"{"),
            Err(DecodeError::Json(_))
        ));
    }
}
