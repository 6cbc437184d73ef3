//! `sqlite:` URLs and options, and the builder that opens a [`SqliteStore`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rusqlite::{Connection, OpenFlags};
use sessionbank_core::{Action, CommonOptions, DEFAULT_BROWSER_IDLE, Error, ErrorKind, OpenFuture, Result,
    SharedClock, Store, UrlOptions, system_clock,
};
use url::Url;

use crate::error::{self, BACKEND};
use crate::schema::{DEFAULT_TABLE, Statements, validate_table};
use crate::store::{Inner, Readers, SqliteStore};

/// Default time a statement waits for another connection's lock before it fails with
/// `Timeout`: 5 seconds.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_sqlite::DEFAULT_BUSY_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of read connections (writes share one connection per store).
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_sqlite::DEFAULT_READERS, 4);
/// ```
pub const DEFAULT_READERS: usize = 4;

/// How hard SQLite pushes a commit to disk (`PRAGMA synchronous`).
///
/// # Examples
///
/// ```
/// use sessionbank_store_sqlite::Synchronous;
///
/// assert_eq!(Synchronous::default(), Synchronous::Full);
/// assert_eq!("normal".parse::<Synchronous>().ok(), Some(Synchronous::Normal));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync on every commit: an acknowledged write survives a power cut (the default).
    #[default]
    Full,
    /// fsync at checkpoints only: an acknowledged write survives a crash of the process, and
    /// the last commits may be lost on a power cut. Several times faster on slow disks.
    Normal,
}

impl Synchronous {
    fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

impl std::str::FromStr for Synchronous {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            _ => Err(config_error(
                "the store URL option `synchronous` must be `full` or `normal`",
            )),
        }
    }
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    Memory,
}

/// Builds a [`SqliteStore`]: the database file, and the options a `sqlite:` URL can carry.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_sqlite::SqliteStore;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::builder(dir.path().join("sessions.db"))
///     .table("web_sessions")
///     .busy_timeout(Duration::from_secs(10))
///     .browser_idle(Duration::from_secs(3600))
///     .open()
///     .await?;
/// assert_eq!(store.table(), "web_sessions");
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStoreBuilder {
    location: Location,
    table: String,
    create: bool,
    busy_timeout: Duration,
    readers: usize,
    synchronous: Synchronous,
    browser_idle: Duration,
    clock: SharedClock,
}

impl SqliteStoreBuilder {
    pub(crate) fn file(path: PathBuf) -> Self {
        Self::at(Location::File(path))
    }

    pub(crate) fn memory() -> Self {
        Self::at(Location::Memory)
    }

    fn at(location: Location) -> Self {
        Self {
            location,
            table: DEFAULT_TABLE.to_owned(),
            create: true,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            readers: DEFAULT_READERS,
            synchronous: Synchronous::default(),
            browser_idle: DEFAULT_BROWSER_IDLE,
            clock: system_clock(),
        }
    }

    /// Reads a `sqlite:` URL and its options: `sqlite:///absolute/file.db`,
    /// `sqlite:relative.db` (relative to the working directory) or `sqlite::memory:`, with
    /// `table`, `create`, `busy_timeout`, `readers` and `synchronous` taken from `options` and
    /// `browser_idle` from `common`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL with a host, without a path, with a fragment, or a
    /// malformed option; [`ErrorKind::InvalidInput`] for a table name that is not a plain
    /// identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{CommonOptions, UrlOptions};
    /// use sessionbank_store_sqlite::SqliteStoreBuilder;
    ///
    /// let url = url::Url::parse("sqlite:///var/lib/app/sessions.db?table=web&create=false")?;
    /// let mut options = UrlOptions::from_url(&url)?;
    /// let builder = SqliteStoreBuilder::from_url(&url, &mut options, &CommonOptions::default())?;
    /// assert_eq!(builder.path(), Some(std::path::Path::new("/var/lib/app/sessions.db")));
    /// options.finish("sqlite")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
        let mut builder = Self::at(location_from_url(url)?).browser_idle(common.browser_idle);
        if let Some(table) = options.take("table") {
            validate_table(&table, Action::ParseUrl)?;
            builder.table = table;
        }
        if let Some(create) = options.take_bool("create")? {
            builder.create = create;
        }
        if let Some(timeout) = options.take_duration("busy_timeout")? {
            builder.busy_timeout = timeout;
        }
        if let Some(readers) = options.take_u64("readers")? {
            if readers == 0 {
                return Err(config_error(
                    "the store URL option `readers` must be above zero",
                ));
            }
            builder.readers = usize::try_from(readers).unwrap_or(usize::MAX).min(64);
        }
        if let Some(sync) = options.take("synchronous") {
            builder.synchronous = sync.parse()?;
        }
        Ok(builder)
    }

    /// The table to keep sessions in (default `sessions`). It must be a plain identifier:
    /// ASCII letters, digits and `_`, starting with a letter or `_`; [`open`](Self::open)
    /// refuses anything else with [`ErrorKind::InvalidInput`].
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Whether to create the table and its indexes when missing (default `true`). With
    /// `false`, [`open`](Self::open) checks that the table exists with the expected columns.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_sqlite::SqliteStore::builder("s.db").create(false);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// How long a statement waits for a lock held by another connection or process before it
    /// fails with [`ErrorKind::Timeout`] (default 5 s).
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many read connections to keep (default 4, at least 1). Writes share one connection
    /// per store; an in-memory database uses that one connection for everything.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_sqlite::SqliteStore::builder("s.db").readers(2);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.clamp(1, 64);
        self
    }

    /// `PRAGMA synchronous` for the write connection (default [`Synchronous::Full`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_sqlite::{SqliteStore, Synchronous};
    ///
    /// let builder = SqliteStore::builder("s.db").synchronous(Synchronous::Normal);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a browser session (no expiry) lives after its last access (default one day).
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    #[must_use]
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// The clock that decides what has expired (default: the system clock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sessionbank_core::ManualClock;
    /// use sessionbank_store_sqlite::SqliteStore;
    ///
    /// let builder = SqliteStore::builder("s.db").clock(Arc::new(ManualClock::starting_now()));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The database file, or `None` for an in-memory database.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::from_url`].
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    /// Opens (or creates) the database file, switches it to WAL mode, creates the table and
    /// its indexes unless `create(false)`, and opens the connections.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a bad table name; [`ErrorKind::Config`] when
    /// `create(false)` and the table is missing or lacks a column; [`ErrorKind::Unavailable`]
    /// when the file cannot be opened; [`ErrorKind::Corrupt`] when it is not a SQLite database.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder`].
    pub async fn open(self) -> Result<SqliteStore> {
        validate_table(&self.table, Action::Connect)?;
        tokio::task::spawn_blocking(move || self.open_blocking())
            .await
            .map_err(|e| error::join_failed(Action::Connect, "sqlite", e))?
    }

    fn target(&self) -> String {
        match &self.location {
            Location::File(path) => format!("sqlite:{}", path.display()),
            Location::Memory => "sqlite::memory:".to_owned(),
        }
    }

    fn connection(&self, target: &str, writer: bool) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match &self.location {
            Location::File(path) => Connection::open_with_flags(path, flags),
            Location::Memory => Connection::open_in_memory(),
        }
        .map_err(|e| error::from_sqlite(Action::Connect, target, e))?;
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            conn.busy_timeout(self.busy_timeout)?;
            if writer && matches!(self.location, Location::File(_)) {
                let mode: String =
                    conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(target: "sessionbank::sqlite", mode, "WAL mode was refused");
                }
            }
            conn.pragma_update(None, "synchronous", self.synchronous.as_str())?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok(())
        };
        setup(&conn).map_err(|e| error::from_sqlite(Action::Connect, target, e))?;
        Ok(conn)
    }

    fn open_blocking(self) -> Result<SqliteStore> {
        let target = self.target();
        if let Location::File(path) = &self.location
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
            .with_target(target));
        }
        let writer = self.connection(&target, true)?;
        let statements = Statements::new(&self.table);
        if self.create {
            writer
                .execute_batch(&statements.create_table)
                .map_err(|e| error::from_sqlite(Action::Setup, &target, e))?;
        }
        if let Err(e) = writer.prepare(&statements.check_table) {
            return Err(Error::new(
                ErrorKind::Config,
                Action::Setup,
                format!(
                    "the table `{}` is missing or lacks a column (id, data, expires_at, \
                     created_at, last_access, owner, deadline); open with create=true to create it",
                    self.table
                ),
            )
            .with_backend(BACKEND)
            .with_target(target)
            .with_source(e));
        }
        let mut readers = Vec::new();
        if matches!(self.location, Location::File(_)) {
            for _ in 0..self.readers {
                readers.push(self.connection(&target, false)?);
            }
        }
        tracing::debug!(target: "sessionbank::sqlite", target = %target, table = %self.table, "sqlite store opened");
        let path = self.path().map(Path::to_path_buf);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                target,
                statements,
                writer: Mutex::new(writer),
                readers: Readers {
                    idle: Mutex::new(readers),
                    returned: Condvar::new(),
                },
                browser_idle: self.browser_idle,
                clock: self.clock,
                path,
            }),
        })
    }
}

pub(crate) fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

/// The database a `sqlite:` URL names.
fn location_from_url(url: &Url) -> Result<Location> {
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(config_error(
            "a sqlite URL takes no host: write sqlite:///absolute/file.db, sqlite:relative.db \
             or sqlite::memory:",
        ));
    }
    if url.fragment().is_some() {
        return Err(config_error("a sqlite URL takes no #fragment"));
    }
    let decoded = percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| config_error("the path of a sqlite URL must be UTF-8 once percent-decoded"))?;
    let path = decoded.trim();
    if path == ":memory:" {
        return Ok(Location::Memory);
    }
    if path.is_empty() || path.ends_with('/') {
        return Err(config_error(
            "a sqlite URL needs a database file: write sqlite:///absolute/file.db, \
             sqlite:relative.db or sqlite::memory:",
        ));
    }
    if path.contains('\0') {
        return Err(config_error(
            "the path of a sqlite URL must not contain NUL",
        ));
    }
    Ok(Location::File(PathBuf::from(path)))
}

/// The opener registered under `sqlite`.
pub(crate) fn open_sqlite(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let builder = SqliteStoreBuilder::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(builder.open().await?);
        Ok(store)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SqliteStoreBuilder> {
        let url = Url::parse(text).unwrap();
        let mut options = UrlOptions::from_url(&url)?;
        let common = CommonOptions::take_from(&mut options)?;
        let builder = SqliteStoreBuilder::from_url(&url, &mut options, &common)?;
        options.finish("sqlite")?;
        Ok(builder)
    }

    #[test]
    fn paths_and_options_parse() {
        assert_eq!(
            parse("sqlite:///srv/s.db").unwrap().path(),
            Some(Path::new("/srv/s.db"))
        );
        assert_eq!(
            parse("sqlite:rel/s.db").unwrap().path(),
            Some(Path::new("rel/s.db"))
        );
        assert_eq!(
            parse("sqlite:///srv/my%20s.db").unwrap().path(),
            Some(Path::new("/srv/my s.db"))
        );
        assert_eq!(parse("sqlite::memory:").unwrap().path(), None);
        let b = parse(
            "sqlite:s.db?table=web&create=no&busy_timeout=2s&readers=2&synchronous=normal&browser_idle=5m",
        )
        .unwrap();
        assert_eq!(b.table, "web");
        assert!(!b.create);
        assert_eq!(b.busy_timeout, Duration::from_secs(2));
        assert_eq!(b.readers, 2);
        assert_eq!(b.synchronous, Synchronous::Normal);
        assert_eq!(b.browser_idle, Duration::from_secs(300));
        for bad in [
            "sqlite://h/s.db",
            "sqlite:",
            "sqlite:///",
            "sqlite:///dir/",
            "sqlite:s.db#f",
            "sqlite:s.db?x=1",
            "sqlite:s.db?readers=0",
            "sqlite:s.db?synchronous=off",
            "sqlite:s.db?create=maybe",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
        for hostile in [
            "sqlite:s.db?table=a%22b",
            "sqlite:s.db?table=x;drop%20table%20y",
            "sqlite:s.db?table=",
        ] {
            let err = parse(hostile).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{hostile}");
        }
    }
}
