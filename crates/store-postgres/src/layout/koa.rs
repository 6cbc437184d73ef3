//! The koa layout: koa-pg-session's table, `id TEXT PRIMARY KEY, expiry timestamp NOT NULL,
//! session JSON`. It keeps no owner, created or last-access time.
//!
//! Its `expiry` is a `timestamp` (no time zone): values are written from a `timestamptz`
//! parameter and compared with `now()`, both converted through the connection's `TimeZone`, as
//! koa-pg-session's `to_timestamp(...)` does.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use sessionbank_core::{Data, Patch, Record, SessionId, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::shape::{Column, Foreign, Params, Shape, TEXT, Table, Writes};
use crate::time::{st, ts};

/// koa-pg-session's table.
#[derive(Debug)]
pub(crate) struct Koa;

/// The session and its deadline, as the store reads them.
const COLS: &str = "session::jsonb, expiry::timestamptz";

/// The deadline of a browser session written now.
fn idle_deadline(browser_idle: Duration) -> Timestamp {
    Timestamp::now().saturating_add(browser_idle)
}

impl Shape for Koa {
    fn name(&self) -> &'static str {
        "koa"
    }

    fn foreign(&self) -> Option<Foreign> {
        Some(Foreign {
            origin: "koa-pg-session",
            marker: "session",
        })
    }

    fn columns(&self) -> &'static [Column] {
        &[
            ("id", TEXT),
            ("expiry", &["timestamp without time zone"]),
            ("session", &["json", "jsonb"]),
        ]
    }

    fn key(&self) -> &'static str {
        "id"
    }

    fn expiry(&self) -> &'static str {
        "expiry"
    }

    fn reads(&self) -> &'static str {
        COLS
    }

    fn writes(&self, table: &Table) -> Writes {
        let t = table.qualified();
        let expiry_idx = table.index("expiry_idx");
        Writes {
            create_table: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\n    id TEXT NOT NULL PRIMARY KEY,\n    \
                     expiry timestamp NOT NULL,\n    session JSON\n)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {expiry_idx} ON {t} (expiry)"),
            ],
            // $1 id, $2 deadline, $3 session.
            set: format!(
                "INSERT INTO {t} AS cur (id, expiry, session) VALUES ($1, $2::timestamptz, $3::jsonb::json) \
                 ON CONFLICT (id) DO UPDATE SET expiry = EXCLUDED.expiry, session = EXCLUDED.session"
            ),
            // $1 id, $2 set, $3 unset, $4 change expiry?, $5 new deadline.
            update: format!(
                "UPDATE {t} SET session = ((coalesce(session::jsonb, '{{}}') || $2) - $3::text[])::json, \
                 expiry = CASE WHEN $4 THEN $5::timestamptz ELSE expiry END \
                 WHERE id = $1 AND expiry > now()"
            ),
            // $1 id, $2 new deadline.
            touch: format!(
                "UPDATE {t} SET expiry = $2::timestamptz WHERE id = $1 AND expiry > now()"
            ),
            // $1 new id, $2 session, $3 deadline.
            rename_put: format!(
                "INSERT INTO {t} AS cur (id, expiry, session) VALUES ($1, $3::timestamptz, $2::jsonb::json) \
                 ON CONFLICT (id) DO UPDATE SET expiry = EXCLUDED.expiry, session = EXCLUDED.session \
                 WHERE cur.expiry <= now()"
            ),
            owned_by: None,
            destroy_owned_by: None,
        }
    }

    fn read(&self, row: &Row, at: usize) -> Result<Record, &'static str> {
        const UNREADABLE: &str = "a stored session's columns cannot be read";
        let session: Option<Json<Value>> = row.try_get(at).map_err(|_| UNREADABLE)?;
        let data = match session {
            None | Some(Json(Value::Null)) => Data::new(),
            Some(Json(value)) => {
                Data::from_value(value).ok_or("a stored session is not a JSON object")?
            }
        };
        let expiry: SystemTime = row.try_get(at + 1).map_err(|_| UNREADABLE)?;
        // koa-pg-session keeps no created or last-access time: both read as now.
        let now = Timestamp::now();
        Ok(Record {
            data,
            expires_at: Some(ts(expiry)),
            created_at: now,
            last_access: now,
            owner: None,
        })
    }

    fn write<'a>(
        &self,
        id: &'a SessionId,
        record: &'a Record,
        browser_idle: Duration,
    ) -> Params<'a> {
        vec![
            Box::new(id.as_str()),
            Box::new(st(record.deadline(browser_idle))),
            Box::new(Json(&record.data)),
        ]
    }

    fn update<'a>(
        &self,
        id: &'a SessionId,
        patch: &'a Patch,
        browser_idle: Duration,
    ) -> Params<'a> {
        let unset: Vec<&str> = patch.unset.iter().map(String::as_str).collect();
        let deadline = patch
            .expires_at
            .map(|e| st(e.unwrap_or_else(|| idle_deadline(browser_idle))));
        vec![
            Box::new(id.as_str()),
            Box::new(Json(&patch.set)),
            Box::new(unset),
            Box::new(patch.expires_at.is_some()),
            Box::new(deadline),
        ]
    }

    fn touch<'a>(
        &self,
        id: &'a SessionId,
        expires_at: Option<Timestamp>,
        browser_idle: Duration,
    ) -> Params<'a> {
        let deadline = st(expires_at.unwrap_or_else(|| idle_deadline(browser_idle)));
        vec![Box::new(id.as_str()), Box::new(deadline)]
    }

    fn rename<'a>(
        &self,
        new: &'a SessionId,
        record: &'a Record,
        _browser_idle: Duration,
    ) -> Params<'a> {
        vec![
            Box::new(new.as_str()),
            Box::new(Json(&record.data)),
            Box::new(record.expires_at.map(st)),
        ]
    }
}
