//! [`SqliteStoreBuilder`]: a SQLite store's database file and options, from code or from a
//! `sqlite:` URL. Opening it ([`SqliteStoreBuilder::open`]) lives with the store, in `store.rs`;
//! the connections it opens, in `conn.rs`.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use sessionbank_core::{
    Action, DEFAULT_BROWSER_IDLE, Error, ErrorKind, Result, SharedClock, StoreUrl, parse_builder,
    system_clock,
};
use url::Url;

use crate::error::BACKEND;
use crate::schema::{DEFAULT_TABLE, validate_table};

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

/// How many read connections a store may keep: 1 to 64 (the URL option `readers` and the
/// setter alike).
const READERS_RANGE: RangeInclusive<usize> = 1..=64;

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
    /// The value of `PRAGMA synchronous`.
    pub(crate) fn as_str(self) -> &'static str {
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

/// Builds a [`SqliteStore`](crate::SqliteStore): the database file, and the options a `sqlite:`
/// URL can carry. Start from [`SqliteStore::builder`](crate::SqliteStore::builder) (or
/// [`builder_in_memory`](crate::SqliteStore::builder_in_memory)) in code or
/// [`SqliteStoreBuilder::parse`] for a URL, then [`open`](Self::open) it.
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

    /// Reads a `sqlite:` URL: `sqlite:///absolute/file.db`, `sqlite:relative.db` (relative to
    /// the working directory) or `sqlite::memory:`, with the options `table`, `create`,
    /// `busy_timeout`, `readers` (1 to 64), `synchronous` and `browser_idle`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for another scheme, a URL with a host, without a path, with a
    /// fragment, a malformed or out-of-range option, or an unknown one (the registry's own
    /// `cleanup_time` and `coalesce` included: a store opened directly runs no janitor);
    /// [`ErrorKind::InvalidInput`] for a table name that is not a plain identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::ErrorKind;
    /// use sessionbank_store_sqlite::SqliteStoreBuilder;
    ///
    /// let builder = SqliteStoreBuilder::parse("sqlite:///var/lib/app/sessions.db?table=web&create=false")?;
    /// assert_eq!(builder.get_path(), Some(std::path::Path::new("/var/lib/app/sessions.db")));
    /// assert_eq!(builder.get_table(), "web");
    /// assert!(!builder.get_create());
    /// let err = SqliteStoreBuilder::parse("sqlite:s.db?cleanup_time=off").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Takes the database and this backend's options from `url` (what is left, the caller
    /// rejects).
    pub(crate) fn read_url(url: &mut StoreUrl) -> Result<Self> {
        let mut builder = Self::at(location_from_url(url.url())?).browser_idle(url.browser_idle());
        if let Some(table) = url.take("table") {
            validate_table(&table, Action::ParseUrl)?;
            builder.table = table;
        }
        if let Some(create) = url.take_bool("create")? {
            builder.create = create;
        }
        if let Some(timeout) = url.take_duration("busy_timeout")? {
            builder.busy_timeout = timeout;
        }
        if let Some(readers) = url.take_usize("readers", READERS_RANGE)? {
            builder.readers = readers;
        }
        if let Some(sync) = url.take("synchronous") {
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

    /// How many read connections to keep (default 4, from 1 to 64). Writes share one connection
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
        self.readers = readers.clamp(*READERS_RANGE.start(), *READERS_RANGE.end());
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
    /// See [`SqliteStoreBuilder::parse`].
    pub fn get_path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
        }
    }

    /// The table the sessions will live in.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::parse`].
    pub fn get_table(&self) -> &str {
        &self.table
    }

    /// Whether opening creates the table and its indexes when missing.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::parse`].
    pub fn get_create(&self) -> bool {
        self.create
    }

    /// How long a statement will wait for another connection's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_store_sqlite::{DEFAULT_BUSY_TIMEOUT, DEFAULT_READERS, SqliteStore, Synchronous};
    ///
    /// let builder = SqliteStore::builder("s.db");
    /// assert_eq!(builder.get_busy_timeout(), DEFAULT_BUSY_TIMEOUT);
    /// assert_eq!(builder.get_readers(), DEFAULT_READERS);
    /// assert_eq!(builder.get_synchronous(), Synchronous::Full);
    /// assert_eq!(builder.get_browser_idle(), sessionbank_core::DEFAULT_BROWSER_IDLE);
    /// assert_eq!(SqliteStore::builder("s.db").readers(500).get_readers(), 64);
    /// ```
    pub fn get_busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// How many read connections the store will keep (an in-memory database uses none).
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::get_busy_timeout`].
    pub fn get_readers(&self) -> usize {
        self.readers
    }

    /// `PRAGMA synchronous` for the write connection.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::get_busy_timeout`].
    pub fn get_synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// How long a browser session will live after its last access.
    ///
    /// # Examples
    ///
    /// See [`SqliteStoreBuilder::get_busy_timeout`].
    pub fn get_browser_idle(&self) -> Duration {
        self.browser_idle
    }

    /// The clock the store will use.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_sqlite::SqliteStore::builder("s.db");
    /// assert!(builder.get_clock().now().as_millis() > 0);
    /// ```
    pub fn get_clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The database as errors and logs show it: `sqlite:<path>` or `sqlite::memory:`.
    pub(crate) fn target(&self) -> String {
        match &self.location {
            Location::File(path) => format!("sqlite:{}", path.display()),
            Location::Memory => "sqlite::memory:".to_owned(),
        }
    }
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SqliteStoreBuilder> {
        SqliteStoreBuilder::parse(text)
    }

    #[test]
    fn paths_and_options_parse() {
        assert_eq!(
            parse("sqlite:///srv/s.db").unwrap().get_path(),
            Some(Path::new("/srv/s.db"))
        );
        assert_eq!(
            parse("sqlite:rel/s.db").unwrap().get_path(),
            Some(Path::new("rel/s.db"))
        );
        assert_eq!(
            parse("sqlite:///srv/my%20s.db").unwrap().get_path(),
            Some(Path::new("/srv/my s.db"))
        );
        assert_eq!(parse("sqlite::memory:").unwrap().get_path(), None);
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
            "sqlite:s.db?readers=65",
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
