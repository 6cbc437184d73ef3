//! The document layout: one document per session, its keys in an embedded `data` document.
//!
//! ```text
//! { _id: "<session id>", data: { <key>: <value>, ... }, expires_at: Date | null,
//!   created_at: Date, last_access: Date, owner: "<owner>" | null, deadline: Date }
//! ```
//!
//! `deadline` is when the session stops being live: `expires_at`, or for a browser session
//! `last_access + browser_idle`. It carries the TTL index (`expireAfterSeconds: 0`) and every
//! read filters on it.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document, doc};
use sessionbank_core::{Data, Operation, Patch, Record, Result, SessionId, Timestamp};

use crate::error;

/// The field holding the session keys.
pub const DATA_FIELD: &str = "data";
/// The field the TTL index and every read use.
pub const DEADLINE_FIELD: &str = "deadline";
/// The owner field (indexed).
pub const OWNER_FIELD: &str = "owner";
/// The name `setup` gives the TTL index it creates.
pub const TTL_INDEX_NAME: &str = "sessionbank_deadline_ttl";
/// The name `setup` gives the owner index it creates.
pub const OWNER_INDEX_NAME: &str = "sessionbank_owner";

/// A BSON date from a timestamp.
pub(crate) fn date(t: Timestamp) -> DateTime {
    DateTime::from_millis(t.as_millis())
}

/// `{deadline: {$gt: now}}`: the live filter.
pub(crate) fn live(now: Timestamp) -> Document {
    doc! { DEADLINE_FIELD: { "$gt": date(now) } }
}

/// `{_id, deadline: {$gt: now}}`: one live session. `_id` comes first, so that a server whose
/// planner takes the first indexed field uses the `_id` index rather than the TTL index.
pub(crate) fn live_id(id: &SessionId, now: Timestamp) -> Document {
    doc! { "_id": id.as_str(), DEADLINE_FIELD: { "$gt": date(now) } }
}

/// Checks that a session key can be a field of `data` addressed by `$set: {"data.<key>": ..}`:
/// not empty, no `.`, no leading `$`, and not the reserved `_id`.
pub(crate) fn check_key(operation: Operation, target: &str, key: &str) -> Result<()> {
    let why = if key.is_empty() {
        "is empty"
    } else if key.contains('.') {
        "contains a `.`"
    } else if key.starts_with('$') {
        "starts with `$`"
    } else if key == "_id" {
        "is `_id`, which MongoDB reserves (as mongosess does)"
    } else if key.contains('\0') {
        "contains a NUL character"
    } else {
        return Ok(());
    };
    Err(error::invalid(
        operation,
        target,
        format!(
            "the session key {key:?} {why}: the MongoDB store cannot address it as a field of \
             the embedded `data` document"
        ),
    ))
}

/// A JSON value as BSON.
fn to_bson(operation: Operation, target: &str, value: &serde_json::Value) -> Result<Bson> {
    mongodb::bson::to_bson(value).map_err(|e| {
        error::invalid(
            operation,
            target,
            format!("a session value cannot be written as BSON: {e}"),
        )
    })
}

/// The whole document for `record`.
pub(crate) fn to_document(
    operation: Operation,
    target: &str,
    id: &SessionId,
    record: &Record,
    browser_idle: Duration,
) -> Result<Document> {
    let mut data = Document::new();
    for (k, v) in record.data.iter() {
        check_key(operation, target, k)?;
        data.insert(k.clone(), to_bson(operation, target, v)?);
    }
    Ok(doc! {
        "_id": id.as_str(),
        DATA_FIELD: data,
        "expires_at": record.expires_at.map(date),
        "created_at": date(record.created_at),
        "last_access": date(record.last_access),
        OWNER_FIELD: record.owner.clone(),
        DEADLINE_FIELD: date(record.deadline(browser_idle)),
    })
}

/// The `$set` and `$unset` documents of a patch, without the expiry fields. Keys both set and
/// unset are unset, as [`Patch::apply_to`] does.
pub(crate) fn patch_documents(
    operation: Operation,
    target: &str,
    patch: &Patch,
    now: Timestamp,
) -> Result<(Document, Document)> {
    let mut set = doc! { "last_access": date(now) };
    let mut unset = Document::new();
    for (k, v) in patch.set.iter() {
        check_key(operation, target, k)?;
        if !patch.unset.contains(k) {
            set.insert(format!("{DATA_FIELD}.{k}"), to_bson(operation, target, v)?);
        }
    }
    for k in &patch.unset {
        check_key(operation, target, k)?;
        unset.insert(format!("{DATA_FIELD}.{k}"), "");
    }
    if let Some(owner) = &patch.owner {
        set.insert(OWNER_FIELD, owner.clone());
    }
    Ok((set, unset))
}

/// A timestamp field.
fn timestamp(doc: &Document, field: &str) -> std::result::Result<Option<Timestamp>, String> {
    match doc.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(d)) => Ok(Some(Timestamp::from_millis(d.timestamp_millis()))),
        Some(other) => Err(format!(
            "the field `{field}` holds a {:?}, not a date",
            other.element_type()
        )),
    }
}

/// A stored document as a record.
pub(crate) fn from_document(operation: Operation, target: &str, doc: Document) -> Result<Record> {
    let bad = |what: String| error::corrupt(operation, target, what);
    let data = match doc.get(DATA_FIELD) {
        None | Some(Bson::Null) => Data::new(),
        Some(Bson::Document(d)) => {
            Data::from_value(Bson::Document(d.clone()).into_relaxed_extjson())
                .ok_or_else(|| bad("the `data` field is not a JSON object".to_owned()))?
        }
        Some(_) => return Err(bad("the `data` field is not a document".to_owned())),
    };
    let created_at = timestamp(&doc, "created_at")
        .map_err(bad)?
        .ok_or_else(|| bad("the document has no `created_at`".to_owned()))?;
    let last_access = timestamp(&doc, "last_access")
        .map_err(bad)?
        .unwrap_or(created_at);
    let expires_at = timestamp(&doc, "expires_at").map_err(bad)?;
    let owner = match doc.get(OWNER_FIELD) {
        None | Some(Bson::Null) => None,
        Some(Bson::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("the `owner` field is not a string".to_owned())),
    };
    let mut record = Record::new(created_at).with_data(data);
    record.expires_at = expires_at;
    record.last_access = last_access;
    record.owner = owner;
    Ok(record)
}

/// The session id of a stored document.
pub(crate) fn id_of(operation: Operation, target: &str, doc: &Document) -> Result<SessionId> {
    match doc.get("_id") {
        Some(Bson::String(s)) => SessionId::parse(s).map_err(|e| {
            error::corrupt(
                operation,
                target,
                format!("a document's `_id` is not a session id: {e}"),
            )
        }),
        _ => Err(error::corrupt(
            operation,
            target,
            "a document's `_id` is not a string".to_owned(),
        )),
    }
}

/// Whether an index key document is exactly `{deadline: 1}`.
pub(crate) fn is_ttl_shape(keys: &Document, expire_after: Option<Duration>) -> bool {
    let ascending = matches!(
        keys.get(DEADLINE_FIELD),
        Some(Bson::Int32(1)) | Some(Bson::Int64(1))
    ) || matches!(keys.get(DEADLINE_FIELD), Some(Bson::Double(d)) if *d == 1.0);
    keys.len() == 1 && ascending && expire_after == Some(Duration::ZERO)
}
