//! Compact JSON text of a [`serde_json::Value`], byte for byte what `serde_json::to_writer`
//! writes, with a fast path for strings that need no escaping.
//!
//! serde_json checks every byte of a string against its escape table one at a time; session
//! values are mostly long plain strings (tokens, serialized objects), and that loop was the
//! largest single cost of a Redis `set` in `benches/redis.rs`. Here a string is first checked
//! for the three things JSON escapes (`"`, `\` and control characters below U+0020) with a
//! branch-free scan the compiler vectorizes, and copied as it is when it has none; a string
//! that does is handed to serde_json.

use serde_json::Value;

use crate::record::Record;
use crate::time::Timestamp;

/// Appends the compact JSON text of `value` to `out`: the same bytes as
/// `serde_json::to_writer(&mut out, value)`.
///
/// # Errors
///
/// Never in practice (a `Vec` cannot fail to grow short of running out of memory, and every
/// `Value` has a JSON text); the `Result` carries serde_json's error type for its fallback
/// paths.
///
/// # Examples
///
/// ```
/// let value = serde_json::json!({"user": "ada", "cart": [1, 2.5, null], "note": "a \"quote\""});
/// let mut out = Vec::new();
/// sessionbank_core::json::write_compact(&mut out, &value)?;
/// assert_eq!(out, serde_json::to_vec(&value)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn write_compact(out: &mut Vec<u8>, value: &Value) -> Result<(), serde_json::Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => serde_json::to_writer(&mut *out, n)?,
        Value::String(s) => write_string(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

/// Appends a JSON object.
fn write_object(
    out: &mut Vec<u8>,
    map: &serde_json::Map<String, Value>,
) -> Result<(), serde_json::Error> {
    out.push(b'{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key)?;
        out.push(b':');
        write_compact(out, item)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends the compact JSON text of `record`: the same bytes as
/// `serde_json::to_writer(&mut out, record)`,
/// `{"data":{…},"expires_at":MS|null,"created_at":MS,"last_access":MS,"owner":"…"|null}`,
/// with the data written by [`write_compact`].
///
/// # Errors
///
/// As [`write_compact`]: never in practice.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{Record, Timestamp};
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let record = Record::new(now).owned_by("ada");
/// let mut out = Vec::new();
/// sessionbank_core::json::write_record(&mut out, &record)?;
/// assert_eq!(out, serde_json::to_vec(&record)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn write_record(out: &mut Vec<u8>, record: &Record) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b"{\"data\":");
    write_object(out, &record.data)?;
    out.extend_from_slice(b",\"expires_at\":");
    write_time(out, record.expires_at);
    out.extend_from_slice(b",\"created_at\":");
    write_time(out, Some(record.created_at));
    out.extend_from_slice(b",\"last_access\":");
    write_time(out, Some(record.last_access));
    out.extend_from_slice(b",\"owner\":");
    match &record.owner {
        Some(owner) => write_string(out, owner)?,
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(())
}

/// Appends a timestamp as its milliseconds, or `null`.
fn write_time(out: &mut Vec<u8>, time: Option<Timestamp>) {
    match time {
        Some(t) => out.extend_from_slice(itoa::Buffer::new().format(t.as_millis()).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `s` as a JSON string.
fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if needs_escaping(s.as_bytes()) {
        return serde_json::to_writer(&mut *out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether `bytes` hold a `"`, a `\` or a control character (what JSON strings escape).
fn needs_escaping(bytes: &[u8]) -> bool {
    // No early exit inside a chunk, so the loop compiles to vector compares.
    bytes.chunks(64).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde(value: &Value) {
        let mut ours = Vec::new();
        assert!(write_compact(&mut ours, value).is_ok());
        let theirs = serde_json::to_vec(value).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn every_kind_of_value_matches_serde_json() {
        for value in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!(1e300),
            json!(-2.5e-8),
            json!(""),
            json!("plain"),
            json!("quote \" backslash \\ slash /"),
            json!("controls \u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} and DEL \u{7f}"),
            json!("unicode é ☃ 😀 \u{2028}\u{2029}"),
            json!([]),
            json!({}),
            json!([[], {}, [[null]], {"a": {"b": []}}]),
            json!({"": "", "k\"ey": "v\nalue", "ünï": [1, "two", 3.0]}),
            json!("x".repeat(500)),
            json!(format!("{}\"{}", "y".repeat(100), "z".repeat(100))),
        ] {
            same_as_serde(&value);
        }
    }

    #[test]
    fn records_match_serde_json() {
        let now = Timestamp::from_millis(1_700_000_000_123);
        let data =
            json!({"user": "ada", "n": -3, "cart": ["a", "b\"c"], "": null, "ü\n": {"x": 1.5}});
        let records = [
            Record::new(now),
            Record::new(Timestamp::from_millis(-5)).expiring_at(Timestamp::from_millis(i64::MAX)),
            Record::new(now)
                .with_data(data.as_object().cloned().unwrap_or_default().into())
                .expiring_at(now + std::time::Duration::from_secs(60))
                .owned_by("o\"wner\u{1}"),
        ];
        for record in &records {
            let mut ours = Vec::new();
            assert!(write_record(&mut ours, record).is_ok());
            let theirs = serde_json::to_vec(record).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            let back: Record = serde_json::from_slice(&ours).unwrap_or_else(|_| Record::new(now));
            assert!(back == *record);
        }
    }

    #[test]
    fn every_byte_in_every_position_matches_serde_json() {
        // Each ASCII character at the start, in the middle and at the end of strings that span
        // one, two and three 64-byte chunks.
        for c in (0u8..0x80).map(char::from) {
            for len in [1, 63, 64, 65, 130] {
                for at in [0, len / 2, len - 1] {
                    let s: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                    same_as_serde(&json!(s));
                    same_as_serde(&json!({ s.clone(): s }));
                }
            }
        }
    }
}
