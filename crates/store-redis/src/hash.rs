//! The hash layout (`layout=hash`): one Redis hash per session, whose `update` and `touch` are
//! native commands in one `MULTI … EXEC` (no Lua on the hot path).
//!
//! - `PREFIX h:ID`: a hash with the meta fields `c` (created, ms since the epoch), `a` (last
//!   access, ms), `e` (expiry, ms, or empty for a browser session) and `o` (owner: empty, or
//!   `=` then the owner), and a field `.KEY` per data key holding the value's JSON text (the
//!   dot keeps data fields apart from meta fields whatever the key). Its TTL is the session's
//!   deadline (`PEXPIREAT`), as in the string layout.
//! - A hash is a live session only if it has `c`. An `update` of a session that is gone still
//!   writes its fields (the transaction cannot branch), leaving a hash without `c`: a *zombie*,
//!   invisible to every read and given a TTL of [`ZOMBIE_TTL_MS`] at most.
//! - `PREFIX o:{OWNER}:h`: the owner sets, kept as in the string layout (`store.rs`), under
//!   keys of their own so that two stores with one prefix and different layouts never prune
//!   each other's members.
//!
//! `create`, `rename` and the zombie cap are Lua scripts (`scripts.rs`): rare operations.

use redis::Value;
use sessionbank_core::{
    Data, Error, ErrorKind, Operation, Patch, Record, Result, SessionId, Timestamp,
};

use crate::error::BACKEND;
use crate::layout;
use crate::scripts;
use crate::store::RedisStore;

/// The most a zombie (a hash without `c`) lives, in milliseconds.
pub(crate) const ZOMBIE_TTL_MS: i64 = 10_000;

/// A data key's field: `.KEY`.
fn data_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 1);
    field.push(b'.');
    field.extend_from_slice(key.as_bytes());
    field
}

/// A value's compact JSON text.
fn json_text(value: &serde_json::Value) -> std::result::Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    sessionbank_core::json::write_compact(&mut out, value)
        .map_err(|_| "a value does not encode as JSON")?;
    Ok(out)
}

/// The owner field's value: empty, or `=OWNER`.
fn owner_value(owner: Option<&str>) -> Vec<u8> {
    match owner {
        None => Vec::new(),
        Some(o) => {
            let mut out = Vec::with_capacity(o.len() + 1);
            out.push(b'=');
            out.extend_from_slice(o.as_bytes());
            out
        }
    }
}

/// A whole record as fields and values, flat: `c`, created, `a`, last access, `e`, expiry,
/// `o`, owner, then `.KEY`, JSON for each data key.
pub(crate) fn record_fields(record: &Record) -> std::result::Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::with_capacity(8 + 2 * record.data.len());
    out.push(b"c".to_vec());
    out.push(
        itoa::Buffer::new()
            .format(record.created_at.as_millis())
            .into(),
    );
    out.push(b"a".to_vec());
    out.push(
        itoa::Buffer::new()
            .format(record.last_access.as_millis())
            .into(),
    );
    out.push(b"e".to_vec());
    out.push(match record.expires_at {
        Some(e) => itoa::Buffer::new().format(e.as_millis()).into(),
        None => Vec::new(),
    });
    out.push(b"o".to_vec());
    out.push(owner_value(record.owner.as_deref()));
    for (k, v) in &record.data {
        out.push(data_field(k));
        out.push(json_text(v)?);
    }
    Ok(out)
}

/// The bytes of one bulk string of an answer.
fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

/// A hash's fields and values, in `HGETALL` order.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The field/value pairs of an `HGETALL` answer (RESP2 array or RESP3 map).
pub(crate) fn answer_pairs(value: Value) -> std::result::Result<Pairs, &'static str> {
    const BAD: &str = "Redis answered HGETALL with something other than fields and values";
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(BAD);
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(f), Some(v)) = (items.next(), items.next()) {
                pairs.push((into_bytes(f).ok_or(BAD)?, into_bytes(v).ok_or(BAD)?));
            }
            Ok(pairs)
        }
        Value::Map(entries) => entries
            .into_iter()
            .map(|(f, v)| Ok((into_bytes(f).ok_or(BAD)?, into_bytes(v).ok_or(BAD)?)))
            .collect(),
        _ => Err(BAD),
    }
}

/// A session's fields back into a record; `None` for a zombie (no `c`) or no hash at all.
/// Fields this version does not know are ignored.
pub(crate) fn decode(
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> std::result::Result<Option<Record>, &'static str> {
    let (mut created, mut accessed, mut expires, mut owner) = (None, None, None, None);
    let mut data = serde_json::Map::new();
    for (field, value) in pairs {
        match field.as_slice() {
            b"c" => created = Some(layout::millis(value)?),
            b"a" => accessed = Some(layout::millis(value)?),
            b"e" if value.is_empty() => expires = None,
            b"e" => expires = Some(layout::millis(value)?),
            b"o" => owner = layout::owner_of(value)?,
            [b'.', key @ ..] => {
                let key =
                    String::from_utf8(key.to_vec()).map_err(|_| "a stored key is not UTF-8")?;
                let value =
                    serde_json::from_slice(value).map_err(|_| "a stored value is not JSON")?;
                data.insert(key, value);
            }
            _ => {}
        }
    }
    let Some(created_at) = created else {
        return Ok(None);
    };
    Ok(Some(Record {
        data: Data::from(data),
        expires_at: expires,
        created_at,
        last_access: accessed.ok_or("a stored session has no last access")?,
        owner,
    }))
}

fn invalid(operation: Operation) -> impl Fn(&'static str) -> Error {
    move |what| Error::new(ErrorKind::InvalidInput, operation, what).with_backend(BACKEND)
}

impl RedisStore {
    /// `HGETALL`: the session, or `None` when absent, a zombie, or past its deadline.
    pub(crate) async fn hash_read(
        &self,
        operation: Operation,
        id: &SessionId,
    ) -> Result<Option<Record>> {
        let key = self.keys().session(id);
        let value: Value = self
            .query(operation, redis::cmd("HGETALL").arg(&key))
            .await?;
        let pairs = answer_pairs(value).map_err(|what| self.corrupt(operation, what))?;
        let record = decode(&pairs).map_err(|what| self.corrupt(operation, what))?;
        Ok(record.filter(|r| r.is_live(Timestamp::now(), self.browser_idle())))
    }

    /// `set`: `MULTI DEL; HSET (every field); PEXPIREAT deadline; EXEC`. `create`: the
    /// create script, which refuses a live id and replaces a zombie. Then the owner's set.
    pub(crate) async fn hash_write(
        &self,
        operation: Operation,
        id: &SessionId,
        record: &Record,
    ) -> Result<()> {
        let key = self.keys().session(id);
        let deadline = record.deadline(self.browser_idle()).as_millis();
        let fields = record_fields(record).map_err(invalid(operation))?;
        if operation == Operation::Create {
            let now = Timestamp::now().as_millis();
            let created: i64 = self
                .eval_as(operation, &scripts::HASH_CREATE, |cmd| {
                    cmd.arg(1)
                        .arg(&key)
                        .arg(now)
                        .arg(millis_of(self.browser_idle()))
                        .arg(deadline);
                    for f in &fields {
                        cmd.arg(f.as_slice());
                    }
                })
                .await?;
            if created == 0 {
                return Err(Error::already_exists(operation).with_backend(BACKEND));
            }
        } else {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("DEL").arg(&key);
            pipe.cmd("HSET").arg(&key);
            for f in &fields {
                pipe.arg(f.as_slice());
            }
            pipe.cmd("PEXPIREAT").arg(&key).arg(deadline);
            self.transaction(operation, &pipe).await?;
        }
        self.owner_add(operation, record.owner.as_deref(), id, deadline)
            .await
    }

    /// `update` and `touch`: one `MULTI … EXEC` of native commands.
    ///
    /// `HMGET c e o` (whether the session was live, its stored expiry and owner);
    /// `PEXPIREAT deadline XX` when the patch moves the expiry (XX: a missing key gets no TTL
    /// from it); `HSET a NOW [.KEY JSON]… [e …] [o …]`; `HDEL .KEY…` for removed keys;
    /// `PEXPIRE 10000 NX` (a hash that `HSET` just created because the session was gone gets a
    /// 10 s TTL; a live session always has a TTL, which NX leaves alone). No `c` in the answer
    /// means `Gone`, whatever the later commands did: they wrote a zombie.
    ///
    /// A patch that keeps the expiry of a browser session moves its TTL with last access in a
    /// second command, `PEXPIREAT now+browser_idle XX GT` (the transaction cannot know the kind
    /// before it ran). GT never shortens a TTL: if a concurrent write made the session dated in
    /// between, the worst outcome is a TTL later than its expiry, and reads check the expiry.
    pub(crate) async fn hash_patch(
        &self,
        operation: Operation,
        id: &SessionId,
        patch: &Patch,
    ) -> Result<()> {
        let now = Timestamp::now();
        let now_ms = now.as_millis();
        let key = self.keys().session(id);
        let browser_deadline = self.browser_deadline(now);
        let new_deadline = match patch.expires_at {
            None => None,
            Some(None) => Some(browser_deadline),
            Some(Some(t)) => Some(t.as_millis()),
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HMGET").arg(&key).arg("c").arg("e").arg("o");
        if let Some(deadline) = new_deadline {
            pipe.cmd("PEXPIREAT").arg(&key).arg(deadline).arg("XX");
        }
        pipe.cmd("HSET").arg(&key).arg("a").arg(now_ms);
        for (k, v) in &patch.set {
            pipe.arg(data_field(k))
                .arg(json_text(v).map_err(invalid(operation))?);
        }
        match patch.expires_at {
            None => {}
            Some(None) => {
                pipe.arg("e").arg("");
            }
            Some(Some(t)) => {
                pipe.arg("e").arg(t.as_millis());
            }
        }
        if let Some(owner) = &patch.owner {
            pipe.arg("o").arg(owner_value(owner.as_deref()));
        }
        if !patch.unset.is_empty() {
            pipe.cmd("HDEL").arg(&key);
            for k in &patch.unset {
                pipe.arg(data_field(k));
            }
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(ZOMBIE_TTL_MS).arg("NX");
        let answers = self.transaction(operation, &pipe).await?;
        let meta: Vec<Option<Vec<u8>>> = answers
            .into_iter()
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(|_| self.corrupt(operation, "Redis answered HMGET with something else"))?
            .unwrap_or_default();
        let mut meta = meta.into_iter();
        let (created, expires, owner) = (
            meta.next().flatten(),
            meta.next().flatten(),
            meta.next().flatten(),
        );
        if created.is_none() {
            if new_deadline.is_some() {
                // The PEXPIREAT … XX met a zombie left by an earlier update (it has a TTL) and
                // moved its TTL to the session's deadline: bring it back to 10 s.
                let _: i64 = self
                    .eval_as(operation, &scripts::HASH_CAP_ZOMBIE, |cmd| {
                        cmd.arg(1).arg(&key).arg(ZOMBIE_TTL_MS);
                    })
                    .await?;
            }
            return Err(Error::gone(operation).with_backend(BACKEND));
        }
        let stored_expiry = expires.unwrap_or_default();
        let (deadline, browser) = match patch.expires_at {
            Some(Some(t)) => (t.as_millis(), false),
            Some(None) => (browser_deadline, true),
            None if stored_expiry.is_empty() => (browser_deadline, true),
            None => (
                layout::millis(&stored_expiry)
                    .map_err(|what| self.corrupt(operation, what))?
                    .as_millis(),
                false,
            ),
        };
        if browser && patch.expires_at.is_none() {
            let _: i64 = self
                .query(
                    operation,
                    redis::cmd("PEXPIREAT")
                        .arg(&key)
                        .arg(browser_deadline)
                        .arg("XX")
                        .arg("GT"),
                )
                .await?;
        }
        let owner = match &patch.owner {
            Some(owner) => owner.clone(),
            None => layout::owner_of(&owner.unwrap_or_default())
                .map_err(|what| self.corrupt(operation, what))?,
        };
        self.owner_after_update(operation, patch, browser, owner.as_deref(), id, deadline)
            .await
    }

    /// Rename on a cluster in the hash layout: as the string layout's (`rename_cluster`), copy
    /// (the create script at the new id), then delete the old id only if its fields are still
    /// what was copied; if a write changed it in between, copy again (up to three times).
    /// Returns the new deadline and the owner.
    pub(crate) async fn hash_rename_cluster(
        &self,
        old: &SessionId,
        new: &SessionId,
    ) -> Result<(i64, Option<String>)> {
        let op = Operation::Rename;
        let old_key = self.keys().session(old);
        let mut first = true;
        let mut result = None;
        for _ in 0..3 {
            let value: Value = self.query(op, redis::cmd("HGETALL").arg(&old_key)).await?;
            let pairs = answer_pairs(value).map_err(|what| self.corrupt(op, what))?;
            let Some(mut record) = decode(&pairs).map_err(|what| self.corrupt(op, what))? else {
                if first {
                    return Err(Error::gone(op).with_backend(BACKEND));
                }
                // Destroyed or expired after the copy: the copy stands.
                return result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"));
            };
            let now = Timestamp::now();
            record.last_access = now;
            let deadline = record.deadline(self.browser_idle()).as_millis();
            // The first copy must not overwrite a live session; later ones replace our copy.
            // `hash_write` also adds the new id to the owner's set.
            let write = if first {
                Operation::Create
            } else {
                Operation::Set
            };
            match self.hash_write(write, new, &record).await {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(Error::already_exists(op).with_backend(BACKEND));
                }
                other => other?,
            }
            first = false;
            result = Some((deadline, record.owner.clone()));
            let deleted: i64 = self
                .eval_as(op, &scripts::HASH_DELETE_IF_UNCHANGED, |cmd| {
                    cmd.arg(1).arg(&old_key);
                    for (f, v) in &pairs {
                        cmd.arg(f.as_slice()).arg(v.as_slice());
                    }
                })
                .await?;
            if deleted >= 0 {
                return result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"));
            }
        }
        // Three writes raced three copies: the old id goes now, whatever it holds.
        let _: i64 = self.query(op, redis::cmd("DEL").arg(&old_key)).await?;
        result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"))
    }

    /// How many of `keys` (hashes of this store) are sessions rather than zombies.
    pub(crate) async fn hash_count_live(
        &self,
        operation: Operation,
        keys: &[String],
    ) -> Result<u64> {
        let checks = keys.iter().map(|k| async move {
            let live: i64 = self
                .query(operation, redis::cmd("HEXISTS").arg(k).arg("c"))
                .await?;
            Ok::<_, Error>(live)
        });
        let mut count = 0;
        for live in futures::future::join_all(checks).await {
            if live? == 1 {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Unlinks one hash of this store; whether it was a session (not a zombie).
    pub(crate) async fn hash_unlink(&self, operation: Operation, key: &str) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HEXISTS").arg(key).arg("c");
        pipe.cmd("UNLINK").arg(key);
        let answers = self.transaction(operation, &pipe).await?;
        Ok(matches!(answers.as_slice(), [Value::Int(1), Value::Int(n)] if *n > 0))
    }
}

/// A duration in whole milliseconds, for a script argument.
fn millis_of(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(fields: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut it = fields.into_iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            out.push((f, v));
        }
        out
    }

    #[test]
    fn a_record_round_trips_through_hash_fields() {
        let now = Timestamp::from_millis(1_700_000_000_123);
        let record = Record::new(now)
            .with_data(
                Data::from_value(json!({"a": [], "c": 1.5, "big": 9_007_199_254_740_993_u64, "": "empty key", "e": "not meta", ".x": "dot"}))
                    .unwrap_or_default(),
            )
            .expiring_at(Timestamp::from_millis(1_700_000_060_000))
            .owned_by("ada");
        let back = decode(&pairs(record_fields(&record).unwrap())).unwrap();
        assert_eq!(back, Some(record));
        let browser = Record::new(now).owned_by("");
        let back = decode(&pairs(record_fields(&browser).unwrap())).unwrap();
        assert_eq!(back, Some(browser));
    }

    #[test]
    fn a_hash_without_c_is_no_session() {
        let zombie = vec![
            (b"a".to_vec(), b"1700000000000".to_vec()),
            (b".k".to_vec(), b"1".to_vec()),
        ];
        assert_eq!(decode(&zombie).unwrap(), None);
        assert_eq!(decode(&[]).unwrap(), None);
        let no_access = vec![(b"c".to_vec(), b"1".to_vec())];
        assert!(decode(&no_access).is_err());
        let bad_json = vec![
            (b"c".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"1".to_vec()),
            (b".k".to_vec(), b"{".to_vec()),
        ];
        assert!(decode(&bad_json).is_err());
    }

    #[test]
    fn hgetall_answers_of_both_protocols_are_read() {
        let array = Value::Array(vec![
            Value::BulkString(b"c".to_vec()),
            Value::BulkString(b"5".to_vec()),
        ]);
        assert_eq!(
            answer_pairs(array).unwrap(),
            vec![(b"c".to_vec(), b"5".to_vec())]
        );
        let map = Value::Map(vec![(
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"6".to_vec()),
        )]);
        assert_eq!(
            answer_pairs(map).unwrap(),
            vec![(b"a".to_vec(), b"6".to_vec())]
        );
        assert!(answer_pairs(Value::Array(vec![Value::Nil])).is_err());
        assert!(answer_pairs(Value::Int(1)).is_err());
    }
}
