//! What the store keeps in Redis: key names, the encoding of one session, and the page cursor
//! of `all`.
//!
//! - `PREFIX s:ID`: a string per session, whose Redis TTL is the session's deadline
//!   (`PXAT`). The value is a list of length-prefixed tokens, `LEN:BYTES` each (LEN in decimal
//!   bytes): `sb1` (the format), created (ms since the epoch), last access (ms), expiry (ms, or
//!   empty for a browser session), owner (empty for none, `=` then the owner), then for each
//!   top-level data key its name and its JSON text. The Lua scripts split and rebuild it with
//!   plain string functions, so a value is never re-encoded: it round-trips byte for byte.
//! - `PREFIX o:{OWNER}`: a set of the owner's session ids (a hash tag, so one slot), whose TTL
//!   reaches the deadline of its longest-lived session; ids of sessions that died or changed
//!   owner are pruned when the set is read.
//!
//! The hash layout (`hash.rs`) names its keys `PREFIX h:ID` and `PREFIX o:{OWNER}:h`: a store
//! of either layout reads only its own keys, whatever the other's prefix.

use sessionbank_core::{Data, Record, SessionId, Timestamp};

use crate::config::Layout;

/// Key names under one prefix, for one layout.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    session_start: String,
    owner_start: String,
    /// What follows `{OWNER}` in an owner set's key: nothing (string layout) or `:h` (hash
    /// layout). A string-layout owner key ends in `}` and a hash-layout one in `}:h`, and no
    /// prefix holds a `{`, so no two stores (of any prefixes and layouts) share an owner set.
    owner_end: &'static str,
}

impl Keys {
    pub(crate) fn new(prefix: &str, layout: Layout) -> Self {
        let (session, owner_end) = match layout {
            Layout::String => ("s:", ""),
            Layout::Hash => ("h:", ":h"),
        };
        Self {
            prefix: prefix.to_owned(),
            session_start: format!("{prefix}{session}"),
            owner_start: format!("{prefix}o:"),
            owner_end,
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PREFIX s:ID` (string layout) or `PREFIX h:ID` (hash layout).
    pub(crate) fn session(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.session_start.len() + id.as_str().len());
        key.push_str(&self.session_start);
        key.push_str(id.as_str());
        key
    }

    /// `PREFIX o:{OWNER}` (string layout) or `PREFIX o:{OWNER}:h` (hash layout).
    pub(crate) fn owner(&self, owner: &str) -> String {
        format!("{}{{{owner}}}{}", self.owner_start, self.owner_end)
    }

    /// The `SCAN MATCH` pattern of session keys (the prefix holds no glob character).
    pub(crate) fn session_pattern(&self) -> String {
        format!("{}*", self.session_start)
    }

    /// The `SCAN MATCH` pattern of every key of this store.
    pub(crate) fn owner_pattern(&self) -> String {
        format!("{}*", self.owner_start)
    }

    /// The id of a session key of this store, or `None` for any other key (another store
    /// whose prefix starts with ours writes keys that match our pattern but not this shape).
    pub(crate) fn id_of_session(&self, key: &str) -> Option<SessionId> {
        SessionId::parse(key.strip_prefix(&self.session_start)?).ok()
    }

    /// Whether `key` is an owner set of this store.
    pub(crate) fn is_owner_key(&self, key: &str) -> bool {
        key.strip_prefix(&self.owner_start)
            .and_then(|rest| rest.strip_suffix(self.owner_end))
            .is_some_and(|rest| rest.starts_with('{') && rest.ends_with('}') && rest.len() >= 2)
    }
}

/// The format token every session value starts with.
pub(crate) const FORMAT: &str = "sb1";

/// Appends one `LEN:BYTES` token.
fn token(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends a number as a token.
fn number_token(out: &mut Vec<u8>, n: i64) {
    token(out, itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a JSON value as a token, serialized in place: the JSON text is written first, then
/// its length prefix is appended and rotated in front of it (no temporary buffer).
fn json_token(out: &mut Vec<u8>, value: &serde_json::Value) -> Result<(), &'static str> {
    let start = out.len();
    sessionbank_core::json::write_compact(out, value)
        .map_err(|_| "a value does not encode as JSON")?;
    let mut length = itoa::Buffer::new();
    let prefix = length.format(out.len() - start).as_bytes();
    out.extend_from_slice(prefix);
    out.push(b':');
    out[start..].rotate_right(prefix.len() + 1);
    Ok(())
}

/// A record as the session value.
#[cfg(test)]
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    encode_into(record, &mut out)?;
    Ok(out)
}

/// Appends a record, as the session value, to `out`.
pub(crate) fn encode_into(record: &Record, out: &mut Vec<u8>) -> Result<(), &'static str> {
    token(out, FORMAT.as_bytes());
    number_token(out, record.created_at.as_millis());
    number_token(out, record.last_access.as_millis());
    match record.expires_at {
        Some(e) => number_token(out, e.as_millis()),
        None => token(out, b""),
    }
    match &record.owner {
        Some(o) => write_owner_token(out, o),
        None => token(out, b""),
    }
    for (k, v) in &record.data {
        token(out, k.as_bytes());
        json_token(out, v)?;
    }
    Ok(())
}

thread_local! {
    /// The buffer a session value is encoded into before it is copied into a command.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `record` into this thread's scratch buffer and hands the bytes to `use_bytes`
/// (which copies them, e.g. into a command): no allocation per call once the buffer has grown.
pub(crate) fn with_encoded<T>(
    record: &Record,
    use_bytes: impl FnOnce(&[u8]) -> T,
) -> Result<T, &'static str> {
    with_scratch(|out| encode_into(record, out), use_bytes)
}

/// A number as a token (`LEN:DIGITS`), for the update script, on the stack.
pub(crate) struct NumberToken {
    bytes: [u8; 24],
    len: usize,
}

impl NumberToken {
    pub(crate) fn new(n: i64) -> Self {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        let mut length = itoa::Buffer::new();
        let length = length.format(digits.len()).as_bytes();
        // At most 20 digits (`i64::MIN`), so 2 + 1 + 20 bytes.
        let mut bytes = [0; 24];
        let len = length.len() + 1 + digits.len();
        bytes[..length.len()].copy_from_slice(length);
        bytes[length.len()] = b':';
        bytes[length.len() + 1..len].copy_from_slice(digits);
        Self { bytes, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Appends an owner's token: `LEN:=OWNER`.
fn write_owner_token(out: &mut Vec<u8>, owner: &str) {
    out.extend_from_slice(itoa::Buffer::new().format(owner.len() + 1).as_bytes());
    out.extend_from_slice(b":=");
    out.extend_from_slice(owner.as_bytes());
}

/// An owner as its token (`LEN:=OWNER`), for the update script, in this thread's scratch
/// buffer, handed to `use_bytes`.
pub(crate) fn with_owner_token<T>(
    owner: &str,
    use_bytes: impl FnOnce(&[u8]) -> T,
) -> Result<T, &'static str> {
    with_scratch(
        |out| {
            write_owner_token(out, owner);
            Ok(())
        },
        use_bytes,
    )
}

/// The tokens of one data key and its JSON value, together, in this thread's scratch buffer,
/// handed to `use_bytes` (the update script splices them in as they are).
pub(crate) fn with_pair_tokens<T>(
    key: &str,
    value: &serde_json::Value,
    use_bytes: impl FnOnce(&[u8]) -> T,
) -> Result<T, &'static str> {
    with_scratch(
        |out| {
            token(out, key.as_bytes());
            json_token(out, value)
        },
        use_bytes,
    )
}

fn with_scratch<T>(
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), &'static str>,
    use_bytes: impl FnOnce(&[u8]) -> T,
) -> Result<T, &'static str> {
    /// A buffer grown past this by a large session is let go afterwards.
    const KEEP: usize = 64 * 1024;
    SCRATCH.with(|cell| {
        let Ok(mut out) = cell.try_borrow_mut() else {
            // Re-entered (`use_bytes` does not fill another buffer, so this cannot happen).
            let mut out = Vec::new();
            fill(&mut out)?;
            return Ok(use_bytes(&out));
        };
        out.clear();
        let result = fill(&mut out).map(|()| use_bytes(&out));
        if out.capacity() > KEEP {
            *out = Vec::new();
        }
        result
    })
}

/// The tokens of a value, in order.
struct Tokens<'a>(&'a [u8]);

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<&'a [u8], &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.split())
    }
}

impl<'a> Tokens<'a> {
    fn split(&mut self) -> Result<&'a [u8], &'static str> {
        let bytes = self.0;
        let colon = bytes
            .iter()
            .position(|b| *b == b':')
            .ok_or("a stored session is truncated")?;
        let len = digits(&bytes[..colon])
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("a stored session has a bad length")?;
        let rest = &bytes[colon + 1..];
        if rest.len() < len {
            return Err("a stored session is truncated");
        }
        self.0 = &rest[len..];
        Ok(&rest[..len])
    }

    /// The next token, which must be there.
    fn required(&mut self) -> Result<&'a [u8], &'static str> {
        self.next()
            .unwrap_or(Err("a stored session is not in this store's format"))
    }
}

/// A decimal number of 1 to 19 ASCII digits (what `itoa` wrote), without going through
/// `str` (this runs several times per `get`).
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

pub(crate) fn millis(bytes: &[u8]) -> Result<Timestamp, &'static str> {
    let (negative, magnitude) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let n = digits(magnitude)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or("a stored timestamp is not a number")?;
    Ok(Timestamp::from_millis(if negative { -n } else { n }))
}

/// The owner token: empty for none, `=` then the owner.
pub(crate) fn owner_of(bytes: &[u8]) -> Result<Option<String>, &'static str> {
    match bytes.split_first() {
        None => Ok(None),
        Some((b'=', rest)) => String::from_utf8(rest.to_vec())
            .map(Some)
            .map_err(|_| "a stored owner is not UTF-8"),
        Some(_) => Err("a stored owner is malformed"),
    }
}

/// The owner token a script returned (`''` or `=OWNER`).
pub(crate) fn owner_token(bytes: &[u8]) -> Option<String> {
    owner_of(bytes).ok().flatten()
}

/// A session value back into a record.
pub(crate) fn decode(value: &[u8]) -> Result<Record, &'static str> {
    let mut tokens = Tokens(value);
    if tokens.required()? != FORMAT.as_bytes() {
        return Err("a stored session is not in this store's format");
    }
    let created_at = millis(tokens.required()?)?;
    let last_access = millis(tokens.required()?)?;
    let expiry = tokens.required()?;
    let expires_at = if expiry.is_empty() {
        None
    } else {
        Some(millis(expiry)?)
    };
    let owner = owner_of(tokens.required()?)?;
    let mut data = serde_json::Map::new();
    while let Some(key) = tokens.next() {
        let key = String::from_utf8(key?.to_vec()).map_err(|_| "a stored key is not UTF-8")?;
        let value =
            serde_json::from_slice(tokens.required()?).map_err(|_| "a stored value is not JSON")?;
        data.insert(key, value);
    }
    Ok(Record {
        data: Data::from(data),
        expires_at,
        created_at,
        last_access,
        owner,
    })
}

/// Where `all` stopped: which master (by index in the sorted list), its `SCAN` cursor, and the
/// last id already returned from that `SCAN` batch (batches are sorted by id, so a page that
/// ends inside a batch resumes after that id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) node: usize,
    pub(crate) scan: u64,
    pub(crate) after: Option<String>,
}

impl Cursor {
    pub(crate) fn start() -> Self {
        Self {
            node: 0,
            scan: 0,
            after: None,
        }
    }

    /// `NODE.SCAN.AFTER` (AFTER empty when none).
    pub(crate) fn render(&self) -> String {
        format!(
            "{}.{}.{}",
            self.node,
            self.scan,
            self.after.as_deref().unwrap_or_default()
        )
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '.');
        let node = parts.next()?.parse().ok()?;
        let scan = parts.next()?.parse().ok()?;
        let after = parts.next()?;
        let after = if after.is_empty() {
            None
        } else {
            Some(SessionId::parse(after).ok()?.as_str().to_owned())
        };
        Some(Self { node, scan, after })
    }
}

/// Sorted copy of a map, for tests.
#[cfg(test)]
fn sorted(data: &Data) -> std::collections::BTreeMap<String, serde_json::Value> {
    data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_and_owner_tokens_match_the_encoder() {
        for n in [0, 7, -1, 1_700_000_000_123, i64::MAX, i64::MIN] {
            let mut want = Vec::new();
            number_token(&mut want, n);
            assert_eq!(NumberToken::new(n).as_bytes(), want.as_slice(), "{n}");
        }
        assert_eq!(
            NumberToken::new(i64::MIN).as_bytes(),
            b"20:-9223372036854775808"
        );
        let token = with_owner_token("ada:1", <[u8]>::to_vec).unwrap();
        assert_eq!(token, b"6:=ada:1");
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(digits(b"0"), Some(0));
        assert_eq!(digits(b"1700000000123"), Some(1_700_000_000_123));
        assert_eq!(
            digits(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"12345678901234567890",
            b"1a",
            b"+1",
            b" 1",
            b"-1",
            b"1.5",
        ] {
            assert_eq!(digits(bad), None, "{bad:?}");
        }
        assert_eq!(millis(b"-5"), Ok(Timestamp::from_millis(-5)));
        assert!(millis(b"9999999999999999999").is_err());
        assert!(millis(b"--5").is_err());
        let old = Record::new(Timestamp::from_millis(-86_400_000));
        assert_eq!(decode(&encode(&old).unwrap()).unwrap(), old);
    }

    #[test]
    fn a_record_round_trips_through_hash_fields() {
        let now = Timestamp::from_millis(1_700_000_000_123);
        let record = Record::new(now)
            .with_data(
                Data::from_value(json!({"a": [], "b": {}, "c": 1.5, "big": 9_007_199_254_740_993_u64, "d:x": "y", "": "empty key", "colon:7:": "3:a"}))
                    .unwrap_or_default(),
            )
            .expiring_at(Timestamp::from_millis(1_700_000_060_000))
            .owned_by("ada");
        let value = encode(&record).unwrap();
        let back = decode(&value).unwrap();
        let browser = Record::new(now).owned_by("");
        assert_eq!(decode(&encode(&browser).unwrap()).unwrap(), browser);
        assert!(decode(b"3:sb1").is_err());
        assert!(decode(b"3:sb11:1").is_err());
        assert!(decode(b"garbage").is_err());
        assert_eq!(back, record);
        assert_eq!(sorted(&back.data), sorted(&record.data));
    }

    #[test]
    fn keys_of_a_longer_prefix_are_not_ours() {
        let keys = Keys::new("app:", Layout::String);
        let other = Keys::new("app:s:", Layout::String);
        let id = SessionId::generate().unwrap();
        assert_eq!(keys.id_of_session(&keys.session(&id)), Some(id));
        assert_eq!(keys.id_of_session(&other.session(&id)), None);
        assert!(keys.is_owner_key(&keys.owner("x}y")));
        assert!(!keys.is_owner_key(&Keys::new("app:o:", Layout::String).owner("x")));
    }

    #[test]
    fn the_layouts_never_share_a_key() {
        let id = SessionId::generate().unwrap();
        let string = Keys::new("app:", Layout::String);
        let hash = Keys::new("app:", Layout::Hash);
        assert_eq!(hash.session(&id), format!("app:h:{}", id.as_str()));
        assert_eq!(hash.owner("ada"), "app:o:{ada}:h");
        assert_eq!(hash.id_of_session(&string.session(&id)), None);
        assert_eq!(string.id_of_session(&hash.session(&id)), None);
        assert!(!string.is_owner_key(&hash.owner("ada")));
        assert!(!hash.is_owner_key(&string.owner("ada")));
        assert!(hash.is_owner_key(&hash.owner("a}b")));
        // A string store whose prefix ends where the hash layout's kind letter starts.
        for other in ["app:h", "app:h:", "app:o:", "app:o"] {
            let string = Keys::new(other, Layout::String);
            assert_ne!(string.owner("ada"), hash.owner("ada"));
            assert_ne!(string.owner("ada:h"), hash.owner("ada"));
            assert_eq!(hash.id_of_session(&string.session(&id)), None);
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = SessionId::generate().unwrap();
        let c = Cursor {
            node: 2,
            scan: 123,
            after: Some(id.as_str().to_owned()),
        };
        assert_eq!(Cursor::parse(&c.render()), Some(c));
        assert_eq!(
            Cursor::parse(&Cursor::start().render()),
            Some(Cursor::start())
        );
        assert_eq!(Cursor::parse("x.1."), None);
        assert_eq!(Cursor::parse("1.2.not-an-id"), None);
    }
}
