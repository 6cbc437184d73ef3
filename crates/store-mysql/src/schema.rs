//! The table, its indexes, and every SQL statement the store runs, built once per table name.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS `sessions` (
//!     id          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
//!     data        JSON NOT NULL,       -- MariaDB: LONGTEXT CHECK (JSON_VALID(data))
//!     expires_at  BIGINT NULL,         -- ms since the UNIX epoch (UTC); NULL = browser session
//!     created_at  BIGINT NOT NULL,
//!     last_access BIGINT NOT NULL,
//!     owner       VARCHAR(255) NULL,
//!     deadline    BIGINT NOT NULL,     -- ms: expires_at, or last_access + browser_idle
//!     PRIMARY KEY (id),
//!     KEY `sessions_deadline` (deadline),
//!     KEY `sessions_owner` (owner)
//! ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
//! ```

use sessionbank_core::{Action, Error, validate_identifier};

use crate::error::BACKEND;

/// The default table name.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// The longest table name accepted (MySQL allows 64; the index names append `_deadline`).
const MAX_TABLE_LEN: usize = 54;

/// Checks a table name: an ASCII letter or `_`, then letters, digits or `_`, at most 54
/// characters. Anything else never reaches SQL.
pub(crate) fn validate_table(name: &str, operation: impl Into<Action>) -> Result<(), Error> {
    validate_identifier("table", name, MAX_TABLE_LEN, operation)
        .map_err(|e| e.with_backend(BACKEND))
}

/// The columns every read selects, in this order.
const COLUMNS: &str = "id, data, expires_at, created_at, last_access, owner";

/// "This row is live": takes two parameters, `idle` then `now`.
const LIVE: &str = "COALESCE(expires_at, last_access + ?) > ?";

/// The SQL of one table, built once when the store opens.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) table: String,
    pub(crate) create_table: String,
    pub(crate) check_table: String,
    /// id, idle, now
    pub(crate) get: String,
    /// the 7 columns
    pub(crate) set: String,
    /// the 7 columns
    pub(crate) insert: String,
    /// id, idle, now
    pub(crate) delete_expired: String,
    /// expires_at, now, now, idle, id, idle, now
    pub(crate) touch: String,
    /// id
    pub(crate) destroy: String,
    /// new, now, now, idle, old, idle, now
    pub(crate) rename: String,
    /// idle, now, limit
    pub(crate) all_first: String,
    /// after, idle, now, limit
    pub(crate) all_after: String,
    /// idle, now
    pub(crate) length: String,
    pub(crate) clear: String,
    /// now, idle, now, limit
    pub(crate) cleanup_select: String,
    /// owner, idle, now
    pub(crate) owned_by: String,
    /// owner, except, idle, now
    pub(crate) destroy_owned_live: String,
    /// owner, except
    pub(crate) destroy_owned_rest: String,
    /// id, idle, now
    pub(crate) read_for_update: String,
    /// data, expires_at, owner, now, now, idle, id
    pub(crate) write_after_update: String,
}

impl Statements {
    /// The statements for `table`, which [`validate_table`] accepted.
    pub(crate) fn new(table: &str) -> Self {
        let t = format!("`{table}`");
        let columns_in = "(id, data, expires_at, created_at, last_access, owner, deadline)";
        Self {
            table: table.to_owned(),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    data JSON NOT NULL,
                    expires_at BIGINT NULL,
                    created_at BIGINT NOT NULL,
                    last_access BIGINT NOT NULL,
                    owner VARCHAR(255) NULL,
                    deadline BIGINT NOT NULL,
                    PRIMARY KEY (id),
                    KEY `{table}_deadline` (deadline),
                    KEY `{table}_owner` (owner)
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            ),
            check_table: format!(
                "SELECT id, data, expires_at, created_at, last_access, owner, deadline \
                 FROM {t} LIMIT 0"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE id = ? AND {LIVE}"),
            set: format!(
                "INSERT INTO {t} {columns_in} VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE data = VALUES(data), expires_at = VALUES(expires_at), \
                 created_at = VALUES(created_at), last_access = VALUES(last_access), \
                 owner = VALUES(owner), deadline = VALUES(deadline)"
            ),
            insert: format!("INSERT INTO {t} {columns_in} VALUES (?, ?, ?, ?, ?, ?, ?)"),
            delete_expired: format!("DELETE FROM {t} WHERE id = ? AND NOT ({LIVE})"),
            // MySQL assigns left to right, so `deadline` sees the new `expires_at`.
            touch: format!(
                "UPDATE {t} SET expires_at = ?, last_access = ?, \
                 deadline = COALESCE(expires_at, ? + ?) WHERE id = ? AND {LIVE}"
            ),
            destroy: format!("DELETE FROM {t} WHERE id = ?"),
            rename: format!(
                "UPDATE {t} SET id = ?, last_access = ?, deadline = COALESCE(expires_at, ? + ?) \
                 WHERE id = ? AND {LIVE}"
            ),
            all_first: format!("SELECT {COLUMNS} FROM {t} WHERE {LIVE} ORDER BY id LIMIT ?"),
            all_after: format!(
                "SELECT {COLUMNS} FROM {t} WHERE id > ? AND {LIVE} ORDER BY id LIMIT ?"
            ),
            length: format!("SELECT COUNT(*) FROM {t} WHERE {LIVE}"),
            clear: format!("DELETE FROM {t}"),
            cleanup_select: format!(
                "SELECT id, expires_at IS NULL AND {LIVE} FROM {t} WHERE deadline <= ? \
                 ORDER BY deadline LIMIT ?"
            ),
            owned_by: format!(
                "SELECT {COLUMNS} FROM {t} WHERE owner = ? AND {LIVE} ORDER BY created_at, id"
            ),
            destroy_owned_live: format!(
                "DELETE FROM {t} WHERE owner = ? AND NOT (id <=> ?) AND {LIVE}"
            ),
            destroy_owned_rest: format!("DELETE FROM {t} WHERE owner = ? AND NOT (id <=> ?)"),
            read_for_update: format!(
                "SELECT data, expires_at, owner FROM {t} WHERE id = ? AND {LIVE} FOR UPDATE"
            ),
            write_after_update: format!(
                "UPDATE {t} SET data = ?, expires_at = ?, owner = ?, last_access = ?, \
                 deadline = COALESCE(expires_at, ? + ?) WHERE id = ?"
            ),
        }
    }

    /// `DELETE … WHERE id IN (…) AND NOT <live>` for `n` ids: ids, then idle, now.
    pub(crate) fn cleanup_delete(&self, n: usize) -> String {
        format!(
            "DELETE FROM `{}` WHERE id IN ({}) AND NOT ({LIVE})",
            self.table,
            vec!["?"; n].join(", ")
        )
    }

    /// Moves the deadline of browser sessions that a larger `browser_idle` keeps alive:
    /// idle, ids, idle, now.
    pub(crate) fn cleanup_reindex(&self, n: usize) -> String {
        format!(
            "UPDATE `{}` SET deadline = last_access + ? WHERE id IN ({}) AND expires_at IS NULL \
             AND {LIVE}",
            self.table,
            vec!["?"; n].join(", ")
        )
    }

    /// The one-statement `update`: `JSON_SET` for the set keys, then `JSON_REMOVE` for the
    /// removed ones, guarded by liveness. Parameters: (path, JSON text) × `sets`, path ×
    /// `unsets`, then expires_flag, expires_at, owner_flag, owner, now, now, idle, id, idle, now.
    pub(crate) fn update(&self, sets: usize, unsets: usize) -> String {
        let mut data = String::from("data");
        if sets > 0 {
            let pairs = vec!["?, JSON_EXTRACT(?, '$')"; sets].join(", ");
            data = format!("JSON_SET({data}, {pairs})");
        }
        if unsets > 0 {
            let paths = vec!["?"; unsets].join(", ");
            data = format!("JSON_REMOVE({data}, {paths})");
        }
        format!(
            "UPDATE `{}` SET data = {data}, \
             expires_at = IF(?, ?, expires_at), \
             owner = IF(?, ?, owner), \
             last_access = ?, \
             deadline = COALESCE(expires_at, ? + ?) \
             WHERE id = ? AND {LIVE}",
            self.table
        )
    }
}

/// The JSON path of a top-level key for `JSON_SET`/`JSON_REMOVE`, or `None` when the path
/// syntax cannot name it safely (a key holding `"`, `\` or a control character): such patches
/// take the read-modify-write path inside one transaction (`SELECT … FOR UPDATE`) instead.
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
        for good in ["sessions", "_s", "S1_x"] {
            assert!(validate_table(good, Action::Setup).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a`b",
            "a;drop table x",
            "a.b",
            "tablé",
            "a-b",
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
        assert_eq!(key_path(""), None);
    }
}
