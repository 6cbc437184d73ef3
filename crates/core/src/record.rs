//! What a store keeps for one session: a JSON object of top-level keys plus metadata, and the
//! [`Patch`] that `update` applies to it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Timestamp;

/// The default largest session data a store accepts (1 MiB): a larger write fails with
/// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge) and writes nothing.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_core::DEFAULT_MAX_RECORD_BYTES, 1 << 20);
/// ```
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// A session's data: a JSON object whose top-level keys are the session keys.
///
/// Copy-on-write: cloning a `Data` (and so a [`Record`]) shares the map and costs one atomic
/// increment; the first change through `&mut` (it dereferences to the JSON map) copies it if
/// another clone still shares it. Stores that keep records in memory hand out reads without
/// copying the payload, and the session layer keeps the loaded record without a second copy.
///
/// `Debug` lists the key names only, never the values.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use sessionbank_core::Data;
///
/// let mut a = Data::new();
/// a.insert("user".into(), json!("ada"));
/// let b = a.clone(); // shares the map
/// a.insert("visits".into(), json!(1)); // copies it first: b is unchanged
/// assert_eq!(b.len(), 1);
/// assert_eq!(a["visits"], 1);
/// assert_eq!(serde_json::Value::from(b), json!({"user": "ada"}));
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Data(Arc<Map<String, Value>>);

impl Data {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The JSON map, copied only if another clone shares it.
    pub fn into_map(self) -> Map<String, Value> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Reads a JSON object into session data; any other JSON value is `None`.
    pub fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self::from(map)),
            _ => None,
        }
    }
}

impl std::ops::Deref for Data {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Data {
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.0)
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Self {
        Self(Arc::new(map))
    }
}

impl From<Data> for Value {
    fn from(data: Data) -> Self {
        Value::Object(data.into_map())
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from(Map::from_iter(iter))
    }
}

impl<'a> IntoIterator for &'a Data {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from)
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One stored session: its data and metadata.
///
/// The data is a JSON object of top-level keys, so Node applications can read and write the same
/// sessions. `expires_at` is an absolute time, or `None` for a browser session, which a store
/// keeps until `last_access + browser_idle` (see [`Record::deadline`]) instead of forever.
///
/// `Debug` lists the data's key names only, never their values.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use sessionbank_core::{Record, Timestamp};
///
/// let now = Timestamp::now();
/// let record = Record::new(now)
///     .with_data(sessionbank_core::Data::from_value(json!({"user": "ada", "visits": 3})).unwrap_or_default())
///     .expiring_at(now + Duration::from_secs(60))
///     .owned_by("ada");
/// assert!(record.is_live(now, Duration::from_secs(86_400)));
/// assert_eq!(record.data["visits"], 3);
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The session's keys and values.
    pub data: Data,
    /// When the session expires; `None` for a browser session.
    pub expires_at: Option<Timestamp>,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When the session was last written or touched.
    pub last_access: Timestamp,
    /// The user the session belongs to, for "log this user out everywhere".
    pub owner: Option<String>,
}

impl Record {
    /// An empty browser-session record created at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            data: Data::new(),
            expires_at: None,
            created_at: now,
            last_access: now,
            owner: None,
        }
    }

    /// Replaces the data.
    #[must_use]
    pub fn with_data(mut self, data: Data) -> Self {
        self.data = data;
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expiring_at(mut self, expires_at: Timestamp) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets the owner.
    #[must_use]
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The moment the store may forget this record: `expires_at`, or for a browser session
    /// `last_access + browser_idle`.
    pub fn deadline(&self, browser_idle: Duration) -> Timestamp {
        self.expires_at
            .unwrap_or_else(|| self.last_access.saturating_add(browser_idle))
    }

    /// Whether the record is still live at `now`: its deadline is strictly later than `now`.
    pub fn is_live(&self, now: Timestamp, browser_idle: Duration) -> bool {
        self.deadline(browser_idle) > now
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("last_access", &self.last_access)
            .field("owner", &self.owner.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A change to one session, applied atomically by [`Store::update`](crate::Store::update):
/// keys to set, keys to remove, and optionally a new expiry and owner.
///
/// `set` is applied first, then `unset`, so a key in both ends up removed (the same order as
/// PostgreSQL's `(data || $set) - $unset`). `last_access` becomes the store's "now".
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use sessionbank_core::{Patch, Record, Timestamp};
///
/// let now = Timestamp::now();
/// let mut record = Record::new(now);
/// record.data.insert("a".into(), json!(1));
/// let patch = Patch::new().set("b", json!(2)).unset("a");
/// patch.apply_to(&mut record, now);
/// assert_eq!(serde_json::Value::from(record.data), json!({"b": 2}));
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// Keys to insert or overwrite.
    pub set: Data,
    /// Keys to remove.
    pub unset: BTreeSet<String>,
    /// `Some(new)` moves the expiry (`Some(None)` makes it a browser session); `None` keeps it.
    pub expires_at: Option<Option<Timestamp>>,
    /// `Some(new)` changes the owner (`Some(None)` removes it); `None` keeps it.
    pub owner: Option<Option<String>>,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key to set.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: Value) -> Self {
        self.set.insert(key.into(), value);
        self
    }

    /// Adds a key to remove.
    #[must_use]
    pub fn unset(mut self, key: impl Into<String>) -> Self {
        self.unset.insert(key.into());
        self
    }

    /// Moves the expiry.
    #[must_use]
    pub fn expire_at(mut self, expires_at: Option<Timestamp>) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Changes the owner.
    #[must_use]
    pub fn owner(mut self, owner: Option<String>) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Whether the patch changes nothing but `last_access`.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.unset.is_empty()
            && self.expires_at.is_none()
            && self.owner.is_none()
    }

    /// Folds `later` into this patch: applying the result once leaves a record as applying
    /// `self` and then `later` would (a key set by one and removed by the other ends as the later
    /// one says; a later expiry or owner replaces an earlier one).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use sessionbank_core::{Patch, Record, Timestamp};
    ///
    /// let (first, later) = (Patch::new().set("a", json!(1)).unset("b"), Patch::new().set("b", json!(2)));
    /// let mut merged = first.clone();
    /// merged.then(&later);
    ///
    /// let now = Timestamp::now();
    /// let (mut one_by_one, mut at_once) = (Record::new(now), Record::new(now));
    /// first.apply_to(&mut one_by_one, now);
    /// later.apply_to(&mut one_by_one, now);
    /// merged.apply_to(&mut at_once, now);
    /// assert_eq!(one_by_one, at_once);
    /// ```
    pub fn then(&mut self, later: &Patch) {
        for (k, v) in &later.set {
            self.unset.remove(k);
            self.set.insert(k.clone(), v.clone());
        }
        for k in &later.unset {
            self.set.remove(k);
            self.unset.insert(k.clone());
        }
        if later.expires_at.is_some() {
            self.expires_at = later.expires_at;
        }
        if later.owner.is_some() {
            self.owner.clone_from(&later.owner);
        }
    }

    /// Applies the patch to `record` as a store does, with `now` as the new `last_access`.
    pub fn apply_to(&self, record: &mut Record, now: Timestamp) {
        for (k, v) in &self.set {
            record.data.insert(k.clone(), v.clone());
        }
        for k in &self.unset {
            record.data.remove(k);
        }
        if let Some(expires_at) = self.expires_at {
            record.expires_at = expires_at;
        }
        if let Some(owner) = &self.owner {
            record.owner.clone_from(owner);
        }
        record.last_access = now;
    }
}

impl fmt::Debug for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Patch")
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("unset", &self.unset)
            .field("expires_at", &self.expires_at)
            .field(
                "owner",
                &self.owner.as_ref().map(|o| o.as_ref().map(|_| "<set>")),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every patch of one step over the keys `a` and `b`: each key kept, set (to a value that
    /// names the step) or removed, or both set and removed; the expiry and owner kept or changed.
    fn patches(step: i64) -> Vec<Patch> {
        let mut out = Vec::new();
        for a in 0..4 {
            for b in 0..4 {
                for meta in 0..4 {
                    let mut patch = Patch::new();
                    for (key, choice) in [("a", a), ("b", b)] {
                        if choice & 1 != 0 {
                            patch = patch.set(key, json!(step));
                        }
                        if choice & 2 != 0 {
                            patch = patch.unset(key);
                        }
                    }
                    if meta & 1 != 0 {
                        patch = patch.expire_at(Some(Timestamp::from_millis(step * 1000)));
                    }
                    if meta & 2 != 0 {
                        patch = patch.owner(Some(format!("owner{step}")));
                    }
                    out.push(patch);
                }
            }
        }
        out
    }

    #[test]
    fn a_merged_patch_leaves_what_the_two_in_turn_leave() {
        let now = Timestamp::from_millis(5_000);
        let mut start = Record::new(Timestamp::from_millis(1_000)).owned_by("first");
        start.data.insert("a".into(), json!("old"));
        start.data.insert("b".into(), json!("old"));
        for first in patches(1) {
            for later in patches(2) {
                let (mut in_turn, mut at_once) = (start.clone(), start.clone());
                first.apply_to(&mut in_turn, now);
                later.apply_to(&mut in_turn, now);
                let mut merged = first.clone();
                merged.then(&later);
                merged.apply_to(&mut at_once, now);
                assert!(in_turn == at_once, "{first:?} then {later:?}");
            }
        }
    }
}
