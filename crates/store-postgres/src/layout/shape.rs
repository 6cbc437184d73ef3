//! [`Shape`], the private trait every table layout implements (`native.rs`, `koa.rs`, one file
//! each), and what a layout hands the store: the statements that differ by layout and the
//! parameters it binds to them.

use std::time::Duration;

use sessionbank_core::{Patch, Record, SessionId, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The parameters of one statement, owned or borrowed from the caller's id, record or patch.
pub(crate) type Params<'a> = Vec<Box<dyn ToSql + Sync + Send + 'a>>;

/// A column a layout needs, with the types it accepts (as `information_schema.columns.data_type`
/// spells them); the first type is the one it creates.
pub(crate) type Column = (&'static str, &'static [&'static str]);

/// Column types accepted for text.
pub(crate) const TEXT: &[&str] = &["text", "character varying"];

/// A double-quoted identifier. Names are validated before (letters, digits, `_`), which leaves
/// nothing to escape; they are quoted anyway so that case is kept and no keyword can clash.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The table a layout's statements name, from validated names.
#[derive(Debug)]
pub(crate) struct Table {
    qualified: String,
    name: String,
}

impl Table {
    /// `schema.table`; both names must have been validated.
    pub(crate) fn new(schema: &str, table: &str) -> Self {
        Self {
            qualified: format!("{}.{}", quote(schema), quote(table)),
            name: table.to_owned(),
        }
    }

    /// `"schema"."table"`.
    pub(crate) fn qualified(&self) -> &str {
        &self.qualified
    }

    /// The quoted name of one of the table's indexes: `"<table>_<suffix>"`. `MAX_TABLE_LEN`
    /// leaves room for the longest suffix, `expiry_idx`.
    pub(crate) fn index(&self, suffix: &str) -> String {
        quote(&format!("{}_{suffix}", self.name))
    }
}

/// Where a layout comes from when another program defines its table, and a column only that
/// table has: a native store opened on such a table says which layout reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Foreign {
    /// The program, as a user knows it (`koa-pg-session`).
    pub(crate) origin: &'static str,
    /// A column of its table that the native one lacks.
    pub(crate) marker: &'static str,
}

/// The statements that differ by layout. The others (get, destroy, rename's first half, the
/// listing, counting, clearing and cleanup statements, create) are built in `mod.rs` from
/// [`Shape::key`], [`Shape::expiry`] and [`Shape::reads`].
#[derive(Debug)]
pub(crate) struct Writes {
    /// Creates the table and its indexes (`IF NOT EXISTS`), in order.
    pub(crate) create_table: Vec<String>,
    /// An upsert, `INSERT INTO <table> AS cur … ON CONFLICT (<key>) DO UPDATE SET …`, with
    /// [`Shape::write`]'s parameters; `create` is this plus `WHERE cur.<expiry> <= now()`.
    pub(crate) set: String,
    /// Applies a patch to a live row, with [`Shape::update`]'s parameters.
    pub(crate) update: String,
    /// Moves a live row's expiry, with [`Shape::touch`]'s parameters.
    pub(crate) touch: String,
    /// Rename's second half: writes the taken record under the new id unless that one is live,
    /// with [`Shape::rename`]'s parameters.
    pub(crate) rename_put: String,
    /// `owned_by` (`$1` owner; rows as `SELECT <key>, <reads>`), when the layout keeps owners.
    pub(crate) owned_by: Option<String>,
    /// `destroy_owned_by` (`$1` owner, `$2` the id to keep; one row: how many live rows went),
    /// when the layout keeps owners.
    pub(crate) destroy_owned_by: Option<String>,
}

/// One table layout: its columns and DDL, the statements that differ, how a row reads as a
/// [`Record`] and what each write binds.
pub(crate) trait Shape: Sync {
    /// The layout's name in a URL (`layout=…`).
    fn name(&self) -> &'static str;

    /// The program whose table this is, if not sessionbank's.
    fn foreign(&self) -> Option<Foreign> {
        None
    }

    /// The columns the layout needs; setup checks them.
    fn columns(&self) -> &'static [Column];

    /// The primary-key column (session ids).
    fn key(&self) -> &'static str;

    /// The deadline column: a row is live while it is after `now()`.
    fn expiry(&self) -> &'static str;

    /// The column list every read selects, in the order [`read`](Self::read) expects.
    fn reads(&self) -> &'static str;

    /// The statements that differ by layout, on `table`.
    fn writes(&self, table: &Table) -> Writes;

    /// Reads the record in the [`reads`](Self::reads) columns of `row`, starting at `at`; the
    /// error says what could not be read.
    fn read(&self, row: &Row, at: usize) -> Result<Record, &'static str>;

    /// The parameters of [`Writes::set`] (and so of `create`).
    fn write<'a>(
        &self,
        id: &'a SessionId,
        record: &'a Record,
        browser_idle: Duration,
    ) -> Params<'a>;

    /// The parameters of [`Writes::update`].
    fn update<'a>(&self, id: &'a SessionId, patch: &'a Patch, browser_idle: Duration)
    -> Params<'a>;

    /// The parameters of [`Writes::touch`].
    fn touch<'a>(
        &self,
        id: &'a SessionId,
        expires_at: Option<Timestamp>,
        browser_idle: Duration,
    ) -> Params<'a>;

    /// The parameters of [`Writes::rename_put`], for `record` as [`read`](Self::read) returned
    /// it from the old id.
    fn rename<'a>(
        &self,
        new: &'a SessionId,
        record: &'a Record,
        browser_idle: Duration,
    ) -> Params<'a>;
}
