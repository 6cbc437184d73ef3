//! SQLite connections: opening one with the store's pragmas (WAL, busy timeout, synchronous),
//! and the pool of read connections.

use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};
use sessionbank_core::{Action, Error, ErrorKind, Result};

use crate::config::SqliteStoreBuilder;
use crate::error::{self, BACKEND};

/// Locks `mutex`, carrying on past a poisoned lock (a connection stays usable after a panic in
/// another task's statement).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fails when the directory of the database file does not exist (SQLite would only say it
/// cannot open the file).
pub(crate) fn check_directory(builder: &SqliteStoreBuilder, target: &str) -> Result<()> {
    if let Some(path) = builder.get_path()
        && let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        return Err(Error::new(
            ErrorKind::Unavailable,
            Action::Connect,
            "the directory of the database file does not exist",
        )
        .with_backend(BACKEND)
        .with_target(target.to_owned()));
    }
    Ok(())
}

/// Opens one connection to the builder's database with its busy timeout and `synchronous`;
/// the write connection of a file also switches it to WAL mode.
pub(crate) fn open(builder: &SqliteStoreBuilder, target: &str, writer: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match builder.get_path() {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| error::from_sqlite(Action::Connect, target, e))?;
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        conn.busy_timeout(builder.get_busy_timeout())?;
        if writer && builder.get_path().is_some() {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(target: "sessionbank::sqlite", mode, "WAL mode was refused");
            }
        }
        conn.pragma_update(None, "synchronous", builder.get_synchronous().as_str())?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    };
    setup(&conn).map_err(|e| error::from_sqlite(Action::Connect, target, e))?;
    Ok(conn)
}

/// The idle read connections; empty for an in-memory database (reads use the writer).
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    /// Opens the builder's `readers` read connections, or none for an in-memory database.
    pub(crate) fn open(builder: &SqliteStoreBuilder, target: &str) -> Result<Self> {
        let mut idle = Vec::new();
        if builder.get_path().is_some() {
            for _ in 0..builder.get_readers() {
                idle.push(open(builder, target, false)?);
            }
        }
        Ok(Self {
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// Runs `f` with an idle read connection, waiting for one to come back when all are busy.
    /// Blocking: call it on the blocking pool.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let mut idle = lock(&self.idle);
        let conn = loop {
            if let Some(conn) = idle.pop() {
                break conn;
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        drop(idle);
        let result = f(&conn);
        lock(&self.idle).push(conn);
        self.returned.notify_one();
        result
    }
}
