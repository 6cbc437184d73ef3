//! The table, its indexes, and every SQL statement the store runs, built once per table name.
//!
//! One row per session:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "sessions" (
//!     id          TEXT    NOT NULL PRIMARY KEY,  -- the 32-character session id
//!     data        TEXT    NOT NULL,              -- the session's keys: a JSON object
//!     expires_at  INTEGER,                       -- ms since the UNIX epoch; NULL = browser session
//!     created_at  INTEGER NOT NULL,              -- ms
//!     last_access INTEGER NOT NULL,              -- ms
//!     owner       TEXT,                          -- for owned_by / destroy_owned_by
//!     deadline    INTEGER NOT NULL               -- ms: expires_at, or last_access + browser_idle
//! ) WITHOUT ROWID;
//! CREATE INDEX IF NOT EXISTS "sessions_deadline" ON "sessions" (deadline);
//! CREATE INDEX IF NOT EXISTS "sessions_owner" ON "sessions" (owner) WHERE owner IS NOT NULL;
//! ```

use sessionbank_core::{Action, Error, validate_identifier};

use crate::error::BACKEND;

/// The default table name.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// The longest table name accepted (the index names append `_deadline`).
const MAX_TABLE_LEN: usize = 54;

/// Checks a table name: an ASCII letter or `_`, then letters, digits or `_`, at most 54
/// characters. Anything else (quotes, dots, spaces, semicolons…) never reaches SQL.
pub(crate) fn validate_table(name: &str, action: impl Into<Action>) -> Result<(), Error> {
    validate_identifier("table", name, MAX_TABLE_LEN, action).map_err(|e| e.with_backend(BACKEND))
}

/// The columns every read selects, in this order.
pub(crate) const COLUMNS: &str = "id, data, expires_at, created_at, last_access, owner";

/// "This row is live at ?now (with ?idle as browser_idle)": exact, whatever browser_idle the
/// row's `deadline` was computed with. Takes the named parameters `:now` and `:idle`.
pub(crate) const LIVE: &str = "COALESCE(expires_at, last_access + :idle) > :now";

/// The SQL of one table, built once when the store opens.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) table: String,
    pub(crate) create_table: String,
    pub(crate) check_table: String,
    pub(crate) get: String,
    pub(crate) set: String,
    pub(crate) create: String,
    pub(crate) touch: String,
    pub(crate) destroy: String,
    pub(crate) rename_check_new: String,
    pub(crate) rename_copy: String,
    pub(crate) all_first: String,
    pub(crate) all_after: String,
    pub(crate) length: String,
    pub(crate) clear: String,
    pub(crate) cleanup_batch: String,
    pub(crate) cleanup_reindex: String,
    pub(crate) owned_by: String,
    pub(crate) destroy_owned_by: String,
    pub(crate) read_for_update: String,
    pub(crate) write_after_update: String,
}

impl Statements {
    /// The statements for `table`, which [`validate_table`] accepted.
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let deadline_index = format!("\"{table}_deadline\"");
        let owner_index = format!("\"{table}_owner\"");
        Self {
            table: table.to_owned(),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id TEXT NOT NULL PRIMARY KEY,
                    data TEXT NOT NULL,
                    expires_at INTEGER,
                    created_at INTEGER NOT NULL,
                    last_access INTEGER NOT NULL,
                    owner TEXT,
                    deadline INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS {deadline_index} ON {t} (deadline);
                CREATE INDEX IF NOT EXISTS {owner_index} ON {t} (owner) WHERE owner IS NOT NULL;"
            ),
            check_table: format!(
                "SELECT id, data, expires_at, created_at, last_access, owner, deadline \
                 FROM {t} LIMIT 0"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE id = :id AND {LIVE}"),
            set: format!(
                "INSERT INTO {t} (id, data, expires_at, created_at, last_access, owner, deadline) \
                 VALUES (:id, :data, :expires_at, :created_at, :last_access, :owner, :deadline) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 expires_at = excluded.expires_at, created_at = excluded.created_at, \
                 last_access = excluded.last_access, owner = excluded.owner, \
                 deadline = excluded.deadline"
            ),
            create: format!(
                "INSERT INTO {t} (id, data, expires_at, created_at, last_access, owner, deadline) \
                 VALUES (:id, :data, :expires_at, :created_at, :last_access, :owner, :deadline) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 expires_at = excluded.expires_at, created_at = excluded.created_at, \
                 last_access = excluded.last_access, owner = excluded.owner, \
                 deadline = excluded.deadline \
                 WHERE NOT ({LIVE})"
            ),
            touch: format!(
                "UPDATE {t} SET expires_at = :expires_at, last_access = :now, \
                 deadline = COALESCE(:expires_at, :now + :idle) \
                 WHERE id = :id AND {LIVE}"
            ),
            destroy: format!("DELETE FROM {t} WHERE id = :id"),
            rename_check_new: format!("SELECT 1 FROM {t} WHERE id = :id AND {LIVE}"),
            rename_copy: format!(
                "INSERT OR REPLACE INTO {t} \
                 (id, data, expires_at, created_at, last_access, owner, deadline) \
                 SELECT :new, data, expires_at, created_at, :now, owner, \
                 COALESCE(expires_at, :now + :idle) FROM {t} WHERE id = :id AND {LIVE}"
            ),
            all_first: format!("SELECT {COLUMNS} FROM {t} WHERE {LIVE} ORDER BY id LIMIT :limit"),
            all_after: format!(
                "SELECT {COLUMNS} FROM {t} WHERE id > :after AND {LIVE} ORDER BY id LIMIT :limit"
            ),
            length: format!("SELECT count(*) FROM {t} WHERE {LIVE}"),
            clear: format!("DELETE FROM {t}"),
            cleanup_batch: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE deadline <= :now \
                 AND NOT ({LIVE}) ORDER BY deadline LIMIT :limit)"
            ),
            cleanup_reindex: format!(
                "UPDATE {t} SET deadline = last_access + :idle \
                 WHERE deadline <= :now AND expires_at IS NULL AND {LIVE}"
            ),
            owned_by: format!(
                "SELECT {COLUMNS} FROM {t} WHERE owner = :owner AND {LIVE} ORDER BY created_at, id"
            ),
            destroy_owned_by: format!(
                "DELETE FROM {t} WHERE owner = :owner AND id IS NOT :except RETURNING {LIVE}"
            ),
            read_for_update: format!(
                "SELECT data, expires_at, owner FROM {t} WHERE id = :id AND {LIVE}"
            ),
            write_after_update: format!(
                "UPDATE {t} SET data = :data, expires_at = :expires_at, owner = :owner, \
                 last_access = :now, deadline = COALESCE(:expires_at, :now + :idle) \
                 WHERE id = :id"
            ),
        }
    }

    /// The one-statement `update`: `json_set` for the set keys, then `json_remove` for the
    /// removed ones, guarded by liveness. Positional parameters, in order: the `set` pairs
    /// (path, JSON text) ×`sets`, the `unset` paths ×`unsets`, then `:expires_flag`,
    /// `:expires_at`, `:owner_flag`, `:owner`, `:now`, `:idle`, `:id`.
    pub(crate) fn update(&self, sets: usize, unsets: usize) -> String {
        let mut data = String::from("data");
        if sets > 0 {
            let pairs = vec!["?, json(?)"; sets].join(", ");
            data = format!("json_set({data}, {pairs})");
        }
        if unsets > 0 {
            let paths = vec!["?"; unsets].join(", ");
            data = format!("json_remove({data}, {paths})");
        }
        let t = format!("\"{}\"", self.table);
        // Positional `?` parameters come first and take numbers 1..=n; the named ones after.
        format!(
            "UPDATE {t} SET data = {data}, \
             expires_at = CASE WHEN :expires_flag THEN :expires_at ELSE expires_at END, \
             owner = CASE WHEN :owner_flag THEN :owner ELSE owner END, \
             last_access = :now, \
             deadline = COALESCE(CASE WHEN :expires_flag THEN :expires_at ELSE expires_at END, \
             :now + :idle) \
             WHERE id = :id AND {LIVE}"
        )
    }
}

/// The JSON path of a top-level key for `json_set`/`json_remove`, or `None` when SQLite's path
/// syntax cannot name it (a key holding `"`, `\` or a control character): such patches take
/// the read-modify-write path inside one `BEGIN IMMEDIATE` transaction instead. So does the
/// empty key.
pub(crate) fn key_path(key: &str) -> Option<String> {
    if key.is_empty() || key.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return None;
    }
    Some(format!("$.\"{key}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionbank_core::ErrorKind;

    #[test]
    fn table_names_are_checked() {
        for good in ["sessions", "_s", "S1_x", &"a".repeat(54)] {
            assert!(validate_table(good, Action::Setup).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a\"b",
            "a;drop table x",
            "a.b",
            "tablé",
            "a-b",
            &"a".repeat(55),
        ] {
            let err = validate_table(bad, Action::Setup).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn odd_keys_have_no_path() {
        assert_eq!(key_path("a.b c").as_deref(), Some("$.\"a.b c\""));
        assert_eq!(key_path("q\"uote"), None);
        assert_eq!(key_path("back\\slash"), None);
        assert_eq!(key_path("nl\n"), None);
        assert_eq!(key_path(""), None);
    }
}
