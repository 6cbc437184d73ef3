//! The native layout: sessionbank's own table, `jsonb` data, a `timestamptz` deadline with an
//! index, the owner with a partial index, created and last-access times.

use std::time::{Duration, SystemTime};

use sessionbank_core::{Data, Patch, Record, SessionId, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::shape::{Column, Params, Shape, TEXT, Table, Writes};
use crate::time::{millis, st, ts};

/// sessionbank's own table.
#[derive(Debug)]
pub(crate) struct Native;

const TSTZ: &[&str] = &["timestamp with time zone"];

/// Every column but the key, in the order of a full write after the deadline.
const COLS: &str = "data, expires_at, created_at, last_access, owner";

impl Shape for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn columns(&self) -> &'static [Column] {
        &[
            ("id", TEXT),
            ("data", &["jsonb"]),
            ("expiry", TSTZ),
            ("expires_at", TSTZ),
            ("created_at", TSTZ),
            ("last_access", TSTZ),
            ("owner", TEXT),
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
        let owner_idx = table.index("owner_idx");
        Writes {
            create_table: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\n    id text PRIMARY KEY,\n    \
                     data jsonb NOT NULL,\n    expiry timestamptz NOT NULL,\n    \
                     expires_at timestamptz,\n    created_at timestamptz NOT NULL,\n    \
                     last_access timestamptz NOT NULL,\n    owner text\n)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {expiry_idx} ON {t} (expiry)"),
                format!(
                    "CREATE INDEX IF NOT EXISTS {owner_idx} ON {t} (owner) WHERE owner IS NOT NULL"
                ),
            ],
            // Parameters of a full write: $1 id, $2 data, $3 expiry (deadline), $4 expires_at,
            // $5 created_at, $6 last_access, $7 owner.
            set: format!(
                "INSERT INTO {t} AS cur (id, data, expiry, expires_at, created_at, last_access, owner) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry, \
                 expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, \
                 last_access = EXCLUDED.last_access, owner = EXCLUDED.owner"
            ),
            // $1 id, $2 set (jsonb object), $3 unset keys, $4 change expiry?, $5 new
            // expires_at, $6 change owner?, $7 new owner, $8 browser_idle in ms.
            // In SET, column names are the old values.
            update: format!(
                "UPDATE {t} SET data = (data || $2) - $3::text[], \
                 expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END, \
                 owner = CASE WHEN $6 THEN $7 ELSE owner END, \
                 last_access = now(), \
                 expiry = COALESCE(CASE WHEN $4 THEN $5 ELSE expires_at END, \
                 now() + $8::bigint * interval '1 millisecond') \
                 WHERE id = $1 AND expiry > now()"
            ),
            // $1 id, $2 expires_at, $3 browser_idle in ms.
            touch: format!(
                "UPDATE {t} SET expires_at = $2, last_access = now(), \
                 expiry = COALESCE($2, now() + $3::bigint * interval '1 millisecond') \
                 WHERE id = $1 AND expiry > now()"
            ),
            // $1 new id, $2 data, $3 expires_at, $4 created_at, $5 owner, $6 idle ms.
            rename_put: format!(
                "INSERT INTO {t} AS cur (id, data, expiry, expires_at, created_at, last_access, owner) \
                 VALUES ($1, $2, COALESCE($3, now() + $6::bigint * interval '1 millisecond'), \
                 $3, $4, now(), $5) \
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry, \
                 expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, \
                 last_access = EXCLUDED.last_access, owner = EXCLUDED.owner \
                 WHERE cur.expiry <= now()"
            ),
            owned_by: Some(format!(
                "SELECT id, {COLS} FROM {t} WHERE owner = $1 AND expiry > now()"
            )),
            destroy_owned_by: Some(format!(
                "WITH gone AS (DELETE FROM {t} WHERE owner = $1 AND id IS DISTINCT FROM $2 \
                 RETURNING expiry) SELECT count(*) FILTER (WHERE expiry > now()) FROM gone"
            )),
        }
    }

    fn read(&self, row: &Row, at: usize) -> Result<Record, &'static str> {
        const UNREADABLE: &str = "a stored session's columns cannot be read";
        let Json(data) = row.try_get::<_, Json<Data>>(at).map_err(|_| UNREADABLE)?;
        Ok(Record {
            data,
            expires_at: row
                .try_get::<_, Option<SystemTime>>(at + 1)
                .map_err(|_| UNREADABLE)?
                .map(ts),
            created_at: ts(row.try_get(at + 2).map_err(|_| UNREADABLE)?),
            last_access: ts(row.try_get(at + 3).map_err(|_| UNREADABLE)?),
            owner: row.try_get(at + 4).map_err(|_| UNREADABLE)?,
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
            Box::new(Json(&record.data)),
            Box::new(st(record.deadline(browser_idle))),
            Box::new(record.expires_at.map(st)),
            Box::new(st(record.created_at)),
            Box::new(st(record.last_access)),
            Box::new(record.owner.as_deref()),
        ]
    }

    fn update<'a>(
        &self,
        id: &'a SessionId,
        patch: &'a Patch,
        browser_idle: Duration,
    ) -> Params<'a> {
        let unset: Vec<&str> = patch.unset.iter().map(String::as_str).collect();
        vec![
            Box::new(id.as_str()),
            Box::new(Json(&patch.set)),
            Box::new(unset),
            Box::new(patch.expires_at.is_some()),
            Box::new(patch.expires_at.flatten().map(st)),
            Box::new(patch.owner.is_some()),
            Box::new(patch.owner.as_ref().and_then(Option::as_deref)),
            Box::new(millis(browser_idle)),
        ]
    }

    fn touch<'a>(
        &self,
        id: &'a SessionId,
        expires_at: Option<Timestamp>,
        browser_idle: Duration,
    ) -> Params<'a> {
        vec![
            Box::new(id.as_str()),
            Box::new(expires_at.map(st)),
            Box::new(millis(browser_idle)),
        ]
    }

    fn rename<'a>(
        &self,
        new: &'a SessionId,
        record: &'a Record,
        browser_idle: Duration,
    ) -> Params<'a> {
        vec![
            Box::new(new.as_str()),
            Box::new(Json(&record.data)),
            Box::new(record.expires_at.map(st)),
            Box::new(st(record.created_at)),
            Box::new(record.owner.as_deref()),
            Box::new(millis(browser_idle)),
        ]
    }
}
