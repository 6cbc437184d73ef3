//! How sessions are laid out in a table: validated identifiers, the DDL, the expected columns,
//! and every SQL statement the store runs.

use std::fmt;
use std::str::FromStr;

use sessionbank_core::{Action, Error, ErrorKind, Result};

use crate::error::BACKEND;

/// The longest schema name accepted (PostgreSQL's identifier limit).
pub const MAX_SCHEMA_LEN: usize = 63;

/// The longest table name accepted: PostgreSQL's 63 bytes less the longest suffix the store
/// adds for its index names (`_expiry_idx`, `_owner_idx`), so no name is ever truncated.
pub const MAX_TABLE_LEN: usize = 63 - "_expiry_idx".len();

/// Rows `cleanup` deletes per statement.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_postgres::CLEANUP_BATCH, 1000);
/// ```
pub const CLEANUP_BATCH: i64 = 1000;

/// Which table shape the store reads and writes.
///
/// # Examples
///
/// ```
/// use sessionbank_store_postgres::Layout;
///
/// assert_eq!("koa".parse::<Layout>()?, Layout::Koa);
/// assert_eq!(Layout::default(), Layout::Native);
/// assert!("mongo".parse::<Layout>().is_err());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// sessionbank's own table: `jsonb` data, `timestamptz` deadline with an index, owner with an
    /// index, created and last-access times.
    #[default]
    Native,
    /// koa-pg-session's table: `id TEXT PRIMARY KEY, expiry timestamp NOT NULL, session JSON`.
    /// No owner index; created and last-access times are not stored.
    Koa,
}

impl Layout {
    /// The layout's name in a URL (`native`, `koa`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sessionbank_store_postgres::Layout::Koa.as_str(), "koa");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Koa => "koa",
        }
    }

    /// The columns the layout needs, with the types it accepts for each (as
    /// `information_schema.columns.data_type` spells them); the first type is the one it creates.
    pub(crate) fn columns(self) -> &'static [(&'static str, &'static [&'static str])] {
        const TEXT: &[&str] = &["text", "character varying"];
        const TSTZ: &[&str] = &["timestamp with time zone"];
        match self {
            Layout::Native => &[
                ("id", TEXT),
                ("data", &["jsonb"]),
                ("expiry", TSTZ),
                ("expires_at", TSTZ),
                ("created_at", TSTZ),
                ("last_access", TSTZ),
                ("owner", TEXT),
            ],
            Layout::Koa => &[
                ("id", TEXT),
                ("expiry", &["timestamp without time zone"]),
                ("session", &["json", "jsonb"]),
            ],
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layout {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Layout::Native),
            "koa" => Ok(Layout::Koa),
            _ => Err(Error::new(
                ErrorKind::Config,
                Action::ParseUrl,
                "the store URL option `layout` must be `native` or `koa`",
            )
            .with_backend(BACKEND)),
        }
    }
}

/// Checks a schema or table name: 1 to `max` characters of ASCII letters, digits and `_`, not
/// starting with a digit. Anything else (quotes, semicolons, spaces, empty, too long) is
/// [`ErrorKind::InvalidInput`]; the message names the rule, not the text.
pub(crate) fn validate_identifier(what: &'static str, name: &str, max: usize) -> Result<()> {
    sessionbank_core::validate_identifier(what, name, max, Action::Setup)
        .map_err(|e| e.with_backend(BACKEND))
}

/// A validated identifier, double-quoted (the validation leaves nothing to escape, but it is
/// quoted anyway so that case is kept and no keyword can clash).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every statement the store runs against one table, built once from validated names.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub(crate) layout: Layout,
    pub(crate) create_schema: String,
    pub(crate) create_table: Vec<String>,
    pub(crate) get: String,
    pub(crate) set: String,
    pub(crate) create: String,
    pub(crate) update: String,
    pub(crate) touch: String,
    pub(crate) destroy: String,
    pub(crate) rename_take: String,
    pub(crate) rename_put: String,
    pub(crate) all_first: String,
    pub(crate) all_after: String,
    pub(crate) length: String,
    pub(crate) clear: String,
    pub(crate) cleanup: String,
    pub(crate) owned_by: String,
    pub(crate) destroy_owned_by: String,
}

impl Sql {
    /// The statements for `schema.table` in `layout`; both names must have been validated.
    pub(crate) fn new(layout: Layout, schema: &str, table: &str) -> Self {
        let t = format!("{}.{}", quote(schema), quote(table));
        let expiry_idx = quote(&format!("{table}_expiry_idx"));
        let owner_idx = quote(&format!("{table}_owner_idx"));
        let create_schema = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema));
        match layout {
            Layout::Native => {
                const COLS: &str = "data, expires_at, created_at, last_access, owner";
                // Parameters of a full write: $1 id, $2 data, $3 expiry (deadline), $4 expires_at,
                // $5 created_at, $6 last_access, $7 owner.
                let insert = format!(
                    "INSERT INTO {t} AS cur (id, data, expiry, expires_at, created_at, last_access, owner) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry, \
                     expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, \
                     last_access = EXCLUDED.last_access, owner = EXCLUDED.owner"
                );
                Self {
                    layout,
                    create_schema,
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
                    get: format!("SELECT {COLS} FROM {t} WHERE id = $1 AND expiry > now()"),
                    create: format!("{insert} WHERE cur.expiry <= now()"),
                    set: insert,
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
                    destroy: format!("DELETE FROM {t} WHERE id = $1"),
                    rename_take: format!(
                        "DELETE FROM {t} WHERE id = $1 AND expiry > now() RETURNING {COLS}"
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
                    all_first: format!(
                        "SELECT id, {COLS} FROM {t} WHERE expiry > now() ORDER BY id LIMIT $1"
                    ),
                    all_after: format!(
                        "SELECT id, {COLS} FROM {t} WHERE expiry > now() AND id > $2 ORDER BY id LIMIT $1"
                    ),
                    length: format!("SELECT count(*) FROM {t} WHERE expiry > now()"),
                    clear: format!("DELETE FROM {t}"),
                    cleanup: cleanup_sql(&t),
                    owned_by: format!(
                        "SELECT id, {COLS} FROM {t} WHERE owner = $1 AND expiry > now()"
                    ),
                    destroy_owned_by: format!(
                        "WITH gone AS (DELETE FROM {t} WHERE owner = $1 AND id IS DISTINCT FROM $2 \
                         RETURNING expiry) SELECT count(*) FILTER (WHERE expiry > now()) FROM gone"
                    ),
                }
            }
            Layout::Koa => {
                // koa-pg-session's `expiry` is a `timestamp` (no time zone): values are written
                // from a `timestamptz` parameter and compared with now(), both converted through
                // the connection's TimeZone, as koa-pg-session's `to_timestamp(...)` does.
                const COLS: &str = "session::jsonb, expiry::timestamptz";
                let insert = format!(
                    "INSERT INTO {t} AS cur (id, expiry, session) VALUES ($1, $2::timestamptz, $3::jsonb::json) \
                     ON CONFLICT (id) DO UPDATE SET expiry = EXCLUDED.expiry, session = EXCLUDED.session"
                );
                Self {
                    layout,
                    create_schema,
                    create_table: vec![
                        format!(
                            "CREATE TABLE IF NOT EXISTS {t} (\n    id TEXT NOT NULL PRIMARY KEY,\n    \
                             expiry timestamp NOT NULL,\n    session JSON\n)"
                        ),
                        format!("CREATE INDEX IF NOT EXISTS {expiry_idx} ON {t} (expiry)"),
                    ],
                    get: format!("SELECT {COLS} FROM {t} WHERE id = $1 AND expiry > now()"),
                    create: format!("{insert} WHERE cur.expiry <= now()"),
                    set: insert,
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
                    destroy: format!("DELETE FROM {t} WHERE id = $1"),
                    rename_take: format!(
                        "DELETE FROM {t} WHERE id = $1 AND expiry > now() RETURNING {COLS}"
                    ),
                    // $1 new id, $2 session, $3 deadline.
                    rename_put: format!(
                        "INSERT INTO {t} AS cur (id, expiry, session) VALUES ($1, $3::timestamptz, $2::jsonb::json) \
                         ON CONFLICT (id) DO UPDATE SET expiry = EXCLUDED.expiry, session = EXCLUDED.session \
                         WHERE cur.expiry <= now()"
                    ),
                    all_first: format!(
                        "SELECT id, {COLS} FROM {t} WHERE expiry > now() ORDER BY id LIMIT $1"
                    ),
                    all_after: format!(
                        "SELECT id, {COLS} FROM {t} WHERE expiry > now() AND id > $2 ORDER BY id LIMIT $1"
                    ),
                    length: format!("SELECT count(*) FROM {t} WHERE expiry > now()"),
                    clear: format!("DELETE FROM {t}"),
                    cleanup: cleanup_sql(&t),
                    owned_by: String::new(),
                    destroy_owned_by: String::new(),
                }
            }
        }
    }
}

/// One batch of cleanup: expired rows found through the expiry index, oldest first, locked with
/// SKIP LOCKED so that several cleaners never wait on (or deadlock with) each other.
fn cleanup_sql(t: &str) -> String {
    format!(
        "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expiry <= now() \
         ORDER BY expiry LIMIT {CLEANUP_BATCH} FOR UPDATE SKIP LOCKED)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_identifiers_are_refused() {
        let long = "a".repeat(200);
        for bad in [
            "",
            "a\"b",
            "s; DROP TABLE x",
            "a b",
            "1abc",
            long.as_str(),
            "é",
            "a-b",
            "a.b",
        ] {
            let err = validate_identifier("table", bad, MAX_TABLE_LEN).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        for good in ["session", "Sessions_2", "_x", "a"] {
            validate_identifier("table", good, MAX_TABLE_LEN).unwrap();
        }
        let max = "t".repeat(MAX_TABLE_LEN);
        validate_identifier("table", &max, MAX_TABLE_LEN).unwrap();
    }

    #[test]
    fn statements_quote_the_names() {
        let sql = Sql::new(Layout::Native, "app", "Sess");
        assert!(sql.get.contains("\"app\".\"Sess\""));
        assert!(sql.create_table[1].contains("\"Sess_expiry_idx\""));
    }
}
