//! What the store keeps in Redis: key names, the hash fields of one session, and the page
//! cursor of `all`.
//!
//! - `PREFIX s:ID`: a hash per session. Fields `c` (created, ms since the epoch), `a` (last
//!   access, ms), `e` (expiry, ms; absent for a browser session), `o` (owner; absent when none),
//!   and `d:KEY` = the JSON text of each top-level data key. Its Redis TTL is the session's
//!   deadline (`PEXPIREAT`).
//! - `PREFIX o:{OWNER}`: a set of the owner's session ids (a hash tag, so one slot), whose TTL
//!   reaches the deadline of its longest-lived session; ids of dead sessions are pruned when read.

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

/// The hash field of a data key.
pub(crate) fn data_field(key: &str) -> String {
    let mut field = String::with_capacity(key.len() + 2);
    field.push_str("d:");
    field.push_str(key);
    field
}

/// A record as hash field/value pairs, flattened.
pub(crate) fn encode(record: &Record) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::with_capacity(8 + 2 * record.data.len());
    fields.push("c".to_owned());
    fields.push(record.created_at.as_millis().to_string());
    fields.push("a".to_owned());
    fields.push(record.last_access.as_millis().to_string());
    if let Some(e) = record.expires_at {
        fields.push("e".to_owned());
        fields.push(e.as_millis().to_string());
    }
    if let Some(o) = &record.owner {
        fields.push("o".to_owned());
        fields.push(o.clone());
    }
    for (k, v) in &record.data {
        fields.push(data_field(k));
        fields.push(serde_json::to_string(v).map_err(|_| "a value does not encode as JSON")?);
    }
    Ok(fields)
}

fn millis(text: &str) -> Result<Timestamp, &'static str> {
    text.parse()
        .map(Timestamp::from_millis)
        .map_err(|_| "a stored timestamp is not a number")
}

/// A session's hash fields back into a record.
pub(crate) fn decode(fields: Vec<(String, String)>) -> Result<Record, &'static str> {
    let mut data = serde_json::Map::new();
    let mut created = None;
    let mut last_access = None;
    let mut expires = None;
    let mut owner = None;
    for (field, value) in fields {
        match field.as_str() {
            "c" => created = Some(millis(&value)?),
            "a" => last_access = Some(millis(&value)?),
            "e" => expires = Some(millis(&value)?),
            "o" => owner = Some(value),
            other => {
                let Some(key) = other.strip_prefix("d:") else {
                    return Err("a stored session has an unknown field");
                };
                let value =
                    serde_json::from_str(&value).map_err(|_| "a stored value is not JSON")?;
                data.insert(key.to_owned(), value);
            }
        }
    }
    let created_at = created.ok_or("a stored session has no created time")?;
    let last_access = last_access.ok_or("a stored session has no last access time")?;
    Ok(Record {
        data: Data::from(data),
        expires_at: expires,
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
                Data::from_value(json!({"a": [], "b": {}, "c": 1.5, "big": 9_007_199_254_740_993_u64, "d:x": "y"}))
                    .unwrap_or_default(),
            )
            .expiring_at(Timestamp::from_millis(1_700_000_060_000))
            .owned_by("ada");
        let fields = encode(&record).unwrap();
        let pairs: Vec<(String, String)> = fields
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        let back = decode(pairs).unwrap();
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
