//! How sessions are laid out in a table. Each layout is one file behind the private [`Shape`]
//! trait (`native.rs`, `koa.rs`); this module names them ([`Layout`]), validates identifiers and
//! builds every statement the store runs ([`Sql`]).

mod koa;
mod native;
mod shape;

use std::fmt;
use std::str::FromStr;

use sessionbank_core::{Action, Error, ErrorKind, Result};

use crate::error::BACKEND;
pub(crate) use shape::{Column, Params, Shape};
use shape::{Table, quote};

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
    /// Every layout, in the order the `layout` option lists them.
    const ALL: &'static [Layout] = &[Layout::Native, Layout::Koa];

    /// The implementation the store dispatches through.
    pub(crate) fn shape(self) -> &'static dyn Shape {
        match self {
            Layout::Native => &native::Native,
            Layout::Koa => &koa::Koa,
        }
    }

    /// The layout's name in a URL (`native`, `koa`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sessionbank_store_postgres::Layout::Koa.as_str(), "koa");
    /// ```
    pub fn as_str(self) -> &'static str {
        self.shape().name()
    }

    /// The columns the layout needs, with the types it accepts for each (as
    /// `information_schema.columns.data_type` spells them); the first type is the one it creates.
    pub(crate) fn columns(self) -> &'static [Column] {
        self.shape().columns()
    }

    /// The primary-key column.
    pub(crate) fn key(self) -> &'static str {
        self.shape().key()
    }

    /// For a native store whose table is another program's (its `columns` hold that layout's
    /// marker column): which layout reads it, as a parenthesised hint; empty otherwise.
    pub(crate) fn hint(self, columns: &[(String, String)]) -> String {
        if self != Layout::Native {
            return String::new();
        }
        Layout::ALL
            .iter()
            .find_map(|other| {
                let foreign = other.shape().foreign()?;
                columns
                    .iter()
                    .any(|(name, _)| name == foreign.marker)
                    .then(|| {
                        format!(
                            " (this looks like {}'s table: open it with layout={other})",
                            foreign.origin
                        )
                    })
            })
            .unwrap_or_default()
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
        if let Some(layout) = Layout::ALL.iter().find(|l| l.as_str() == s) {
            return Ok(*layout);
        }
        let names: Vec<String> = Layout::ALL.iter().map(|l| format!("`{l}`")).collect();
        let choices = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        };
        Err(Error::new(
            ErrorKind::Config,
            Action::ParseUrl,
            format!("the store URL option `layout` must be {choices}"),
        )
        .with_backend(BACKEND))
    }
}

/// Checks a schema or table name: 1 to `max` characters of ASCII letters, digits and `_`, not
/// starting with a digit. Anything else (quotes, semicolons, spaces, empty, too long) is
/// [`ErrorKind::InvalidInput`]; the message names the rule, not the text.
pub(crate) fn validate_identifier(what: &'static str, name: &str, max: usize) -> Result<()> {
    sessionbank_core::validate_identifier(what, name, max, Action::Setup)
        .map_err(|e| e.with_backend(BACKEND))
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
    /// `None` when the layout keeps no owner.
    pub(crate) owned_by: Option<String>,
    /// `None` when the layout keeps no owner.
    pub(crate) destroy_owned_by: Option<String>,
}

impl Sql {
    /// The statements for `schema.table` in `layout`; both names must have been validated.
    /// The layout writes its own (see [`shape::Writes`]); the reads, deletes and counts are the
    /// same for every layout, over its key, expiry and read columns.
    pub(crate) fn new(layout: Layout, schema: &str, table: &str) -> Self {
        let shape = layout.shape();
        let table = Table::new(schema, table);
        let t = table.qualified();
        let (key, expiry, reads) = (shape.key(), shape.expiry(), shape.reads());
        let writes = shape.writes(&table);
        Self {
            layout,
            create_schema: format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)),
            create_table: writes.create_table,
            get: format!("SELECT {reads} FROM {t} WHERE {key} = $1 AND {expiry} > now()"),
            create: format!("{} WHERE cur.{expiry} <= now()", writes.set),
            set: writes.set,
            update: writes.update,
            touch: writes.touch,
            destroy: format!("DELETE FROM {t} WHERE {key} = $1"),
            rename_take: format!(
                "DELETE FROM {t} WHERE {key} = $1 AND {expiry} > now() RETURNING {reads}"
            ),
            rename_put: writes.rename_put,
            all_first: format!(
                "SELECT {key}, {reads} FROM {t} WHERE {expiry} > now() ORDER BY {key} LIMIT $1"
            ),
            all_after: format!(
                "SELECT {key}, {reads} FROM {t} WHERE {expiry} > now() AND {key} > $2 \
                 ORDER BY {key} LIMIT $1"
            ),
            length: format!("SELECT count(*) FROM {t} WHERE {expiry} > now()"),
            clear: format!("DELETE FROM {t}"),
            // One batch of cleanup: expired rows found through the expiry index, oldest
            // first, locked with SKIP LOCKED so that several cleaners never wait on (or
            // deadlock with) each other.
            cleanup: format!(
                "DELETE FROM {t} WHERE {key} IN (SELECT {key} FROM {t} WHERE {expiry} <= now() \
                 ORDER BY {expiry} LIMIT {CLEANUP_BATCH} FOR UPDATE SKIP LOCKED)"
            ),
            owned_by: writes.owned_by,
            destroy_owned_by: writes.destroy_owned_by,
        }
    }
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

    #[test]
    fn every_layout_names_itself_and_needs_its_key_and_expiry() {
        for layout in Layout::ALL {
            assert_eq!(layout.as_str().parse::<Layout>().unwrap(), *layout);
            let shape = layout.shape();
            let needs = |column: &str| shape.columns().iter().any(|(name, _)| *name == column);
            assert!(needs(shape.key()) && needs(shape.expiry()), "{layout}");
            let sql = Sql::new(*layout, "s", "t");
            assert!(
                sql.create
                    .ends_with(&format!("WHERE cur.{} <= now()", shape.expiry()))
            );
            assert_eq!(sql.owned_by.is_some(), sql.destroy_owned_by.is_some());
        }
        let err = "mongo".parse::<Layout>().unwrap_err();
        assert!(
            err.to_string().contains("must be `native` or `koa`"),
            "{err}"
        );
    }

    #[test]
    fn a_native_store_on_another_programs_table_gets_a_hint() {
        let koa: Vec<(String, String)> = ["id", "expiry", "session"]
            .iter()
            .map(|n| ((*n).to_owned(), "text".to_owned()))
            .collect();
        assert_eq!(
            Layout::Native.hint(&koa),
            " (this looks like koa-pg-session's table: open it with layout=koa)"
        );
        assert_eq!(Layout::Koa.hint(&koa), "");
    }
}
