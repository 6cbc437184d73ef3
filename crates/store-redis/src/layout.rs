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

use sessionbank_core::{Data, Record, SessionId, Timestamp};

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    session_start: String,
    owner_start: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            session_start: format!("{prefix}s:"),
            owner_start: format!("{prefix}o:"),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PREFIX s:ID`.
    pub(crate) fn session(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.session_start.len() + id.as_str().len());
        key.push_str(&self.session_start);
        key.push_str(id.as_str());
        key
    }

    /// `PREFIX o:{OWNER}`.
    pub(crate) fn owner(&self, owner: &str) -> String {
        format!("{}{{{owner}}}", self.owner_start)
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
            .is_some_and(|rest| rest.starts_with('{') && rest.ends_with('}') && rest.len() >= 2)
    }
}

/// The format token every session value starts with.
pub(crate) const FORMAT: &str = "sb1";

fn token(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A record as the session value.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(64 + 32 * record.data.len());
    token(&mut out, FORMAT.as_bytes());
    token(
        &mut out,
        record.created_at.as_millis().to_string().as_bytes(),
    );
    token(
        &mut out,
        record.last_access.as_millis().to_string().as_bytes(),
    );
    match record.expires_at {
        Some(e) => token(&mut out, e.as_millis().to_string().as_bytes()),
        None => token(&mut out, b""),
    }
    match &record.owner {
        Some(o) => {
            let mut owner = Vec::with_capacity(o.len() + 1);
            owner.push(b'=');
            owner.extend_from_slice(o.as_bytes());
            token(&mut out, &owner);
        }
        None => token(&mut out, b""),
    }
    for (k, v) in &record.data {
        token(&mut out, k.as_bytes());
        let json = serde_json::to_vec(v).map_err(|_| "a value does not encode as JSON")?;
        token(&mut out, &json);
    }
    Ok(out)
}

/// Splits a value into its tokens.
fn tokens(mut bytes: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut items = Vec::new();
    while !bytes.is_empty() {
        let colon = bytes
            .iter()
            .position(|b| *b == b':')
            .ok_or("a stored session is truncated")?;
        let len: usize = std::str::from_utf8(&bytes[..colon])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("a stored session has a bad length")?;
        let rest = &bytes[colon + 1..];
        if rest.len() < len {
            return Err("a stored session is truncated");
        }
        items.push(&rest[..len]);
        bytes = &rest[len..];
    }
    Ok(items)
}

fn millis(bytes: &[u8]) -> Result<Timestamp, &'static str> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.parse().ok())
        .map(Timestamp::from_millis)
        .ok_or("a stored timestamp is not a number")
}

/// The owner token: empty for none, `=` then the owner.
fn owner_of(bytes: &[u8]) -> Result<Option<String>, &'static str> {
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
    let items = tokens(value)?;
    if items.len() < 5 || items[0] != FORMAT.as_bytes() || items.len() % 2 == 0 {
        return Err("a stored session is not in this store's format");
    }
    let created_at = millis(items[1])?;
    let last_access = millis(items[2])?;
    let expires_at = if items[3].is_empty() {
        None
    } else {
        Some(millis(items[3])?)
    };
    let owner = owner_of(items[4])?;
    let mut data = serde_json::Map::new();
    for pair in items[5..].chunks_exact(2) {
        let key = String::from_utf8(pair[0].to_vec()).map_err(|_| "a stored key is not UTF-8")?;
        let value = serde_json::from_slice(pair[1]).map_err(|_| "a stored value is not JSON")?;
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
        let keys = Keys::new("app:");
        let other = Keys::new("app:s:");
        let id = SessionId::generate().unwrap();
        assert_eq!(keys.id_of_session(&keys.session(&id)), Some(id));
        assert_eq!(keys.id_of_session(&other.session(&id)), None);
        assert!(keys.is_owner_key(&keys.owner("x}y")));
        assert!(!keys.is_owner_key(&Keys::new("app:o:").owner("x")));
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
