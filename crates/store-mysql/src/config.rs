//! [`MySqlStoreBuilder`]: a MySQL/MariaDB store's server and options, from code or from a
//! `mysql://`/`mariadb://` URL. Opening it ([`MySqlStoreBuilder::open`]) lives with the store,
//! in `store.rs`.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use sessionbank_core::{
    Action, DEFAULT_BROWSER_IDLE, Error, ErrorKind, Result, SharedClock, StoreUrl, parse_builder,
    redact_url, system_clock,
};
use url::Url;

use crate::error::BACKEND;
use crate::schema::{DEFAULT_TABLE, validate_table};

/// The range of `pool_max`.
const POOL_MAX_RANGE: RangeInclusive<usize> = 1..=1024;

/// Default longest wait for one operation (connecting included) before it fails with
/// `Timeout`: 10 seconds.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_mysql::DEFAULT_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default most connections in the pool.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_mysql::DEFAULT_POOL_MAX, 16);
/// ```
pub const DEFAULT_POOL_MAX: usize = 16;

/// Builds a [`MySqlStore`]: the server, and the options a `mysql://` URL can carry.
///
/// `Debug` never shows the password.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_mysql::MySqlStore;
///
/// let builder = MySqlStore::builder("db.internal", 3306)
///     .user("app")
///     .password("s3cret")
///     .database("app")
///     .table("web_sessions")
///     .timeout(Duration::from_secs(5));
/// assert!(!format!("{builder:?}").contains("s3cret"));
/// assert_eq!(builder.to_url(), "mysql://app:***@db.internal:3306/app?table=web_sessions");
/// ```
#[derive(Clone)]
pub struct MySqlStoreBuilder {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) table: String,
    pub(crate) create: bool,
    pub(crate) timeout: Duration,
    pub(crate) pool_max: usize,
    pub(crate) browser_idle: Duration,
    pub(crate) clock: SharedClock,
}

impl fmt::Debug for MySqlStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStoreBuilder")
            .field("target", &self.to_url())
            .field("create", &self.create)
            .field("timeout", &self.timeout)
            .field("pool_max", &self.pool_max)
            .field("browser_idle", &self.browser_idle)
            .finish_non_exhaustive()
    }
}

impl MySqlStoreBuilder {
    pub(crate) fn new(host: String, port: u16) -> Self {
        Self {
            host,
            port,
            user: None,
            password: None,
            database: None,
            table: DEFAULT_TABLE.to_owned(),
            create: true,
            timeout: DEFAULT_TIMEOUT,
            pool_max: DEFAULT_POOL_MAX,
            browser_idle: DEFAULT_BROWSER_IDLE,
            clock: system_clock(),
        }
    }

    /// Reads a `mysql://user:password@host:port/database` (or `mariadb://`) URL with the
    /// options `table`, `create`, `timeout`, `pool_max` (1–1024) and `browser_idle`. The
    /// registry's own options (`cleanup_time`, `coalesce`) belong to
    /// [`Registry::connect`](sessionbank_core::Registry::connect) and are refused here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL without host or database, a fragment, an unknown option
    /// or a value out of range; [`ErrorKind::InvalidInput`] for a table name that is not a
    /// plain identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_mysql::MySqlStoreBuilder;
    ///
    /// let builder = MySqlStoreBuilder::parse("mysql://app:secret@db:3306/app?table=web_sessions")?;
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// assert!(MySqlStoreBuilder::parse("mysql://db/app?pool_max=100000").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Reads the URL's server and options (see [`parse`](Self::parse)); the registry calls
    /// this through [`FromStoreUrl`](sessionbank_core::FromStoreUrl).
    pub(crate) fn read_url(options: &mut StoreUrl) -> Result<Self> {
        let url = &options.url().clone();
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            config_error("a mysql URL needs a host: mysql://user:password@host:port/database")
        })?;
        if url.fragment().is_some() {
            return Err(config_error("a mysql URL takes no #fragment"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut builder =
            Self::new(host, url.port().unwrap_or(3306)).browser_idle(options.browser_idle());
        let decode = |text: &str, what: &'static str| -> Result<String> {
            percent_decode_str(text)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| config_error(what))
        };
        if !url.username().is_empty() {
            builder.user = Some(decode(
                url.username(),
                "the user of a mysql URL must be UTF-8",
            )?);
        }
        if let Some(password) = url.password() {
            builder.password = Some(decode(
                password,
                "the password of a mysql URL must be UTF-8",
            )?);
        }
        let database = decode(
            url.path().trim_start_matches('/'),
            "the database name must be UTF-8",
        )?;
        if database.is_empty() || database.contains('/') {
            return Err(config_error(
                "a mysql URL names one database: mysql://user:password@host:port/database",
            ));
        }
        builder.database = Some(database);
        if let Some(table) = options.take("table") {
            validate_table(&table, Action::ParseUrl)?;
            builder.table = table;
        }
        if let Some(create) = options.take_bool("create")? {
            builder.create = create;
        }
        if let Some(timeout) = options.take_duration("timeout")? {
            if timeout.is_zero() {
                return Err(config_error(
                    "the store URL option `timeout` must be above zero",
                ));
            }
            builder.timeout = timeout;
        }
        if let Some(max) = options.take_usize("pool_max", POOL_MAX_RANGE)? {
            builder.pool_max = max;
        }
        Ok(builder)
    }

    /// The user to log in as.
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The password (never shown by `Debug`, [`to_url`](Self::to_url) or errors).
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The database (schema) the table lives in.
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    #[must_use]
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The table (default `sessions`): ASCII letters, digits and `_`, starting with a letter
    /// or `_`; [`open`](Self::open) refuses anything else with [`ErrorKind::InvalidInput`].
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Whether to create the table and its indexes when missing (default `true`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_mysql::MySqlStore::builder("db", 3306).create(false);
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// The longest one operation may take, waiting for a connection included, before it
    /// fails with [`ErrorKind::Timeout`] (default 10 s).
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections the pool opens (default 16).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_mysql::MySqlStore::builder("db", 3306).pool_max(32);
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn pool_max(mut self, max: usize) -> Self {
        self.pool_max = max.max(1);
        self
    }

    /// How long a browser session (no expiry) lives after its last access (default one day).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_mysql::MySqlStore::builder("db", 3306)
    ///     .browser_idle(std::time::Duration::from_secs(3600));
    /// # let _ = b;
    /// ```
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
    ///
    /// let b = sessionbank_store_mysql::MySqlStore::builder("db", 3306)
    ///     .clock(Arc::new(ManualClock::starting_now()));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The settings as a `mysql://` URL with the password as `***` (for logs and errors).
    ///
    /// # Examples
    ///
    /// See [`MySqlStoreBuilder`].
    pub fn to_url(&self) -> String {
        let mut text = String::from("mysql://");
        if let Some(user) = &self.user {
            text.push_str(
                &percent_encoding::utf8_percent_encode(user, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
            if self.password.is_some() {
                text.push_str(":***");
            }
            text.push('@');
        }
        if self.host.contains(':') {
            text.push_str(&format!("[{}]", self.host));
        } else {
            text.push_str(&self.host);
        }
        text.push_str(&format!(":{}/", self.port));
        if let Some(db) = &self.database {
            text.push_str(db);
        }
        let mut query = Vec::new();
        if self.table != DEFAULT_TABLE {
            query.push(format!("table={}", self.table));
        }
        if !self.create {
            query.push("create=false".to_owned());
        }
        if !query.is_empty() {
            text.push('?');
            text.push_str(&query.join("&"));
        }
        match Url::parse(&text) {
            Ok(url) => redact_url(&url),
            Err(_) => text,
        }
    }
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MySqlStoreBuilder> {
        MySqlStoreBuilder::parse(text)
    }

    #[test]
    fn urls_and_options_parse() {
        let b =
            parse("mysql://u%40x:p%3Aw@h:3310/db?table=t&create=0&timeout=3s&pool_max=4").unwrap();
        assert_eq!(b.user.as_deref(), Some("u@x"));
        assert_eq!(b.password.as_deref(), Some("p:w"));
        assert_eq!((b.host.as_str(), b.port), ("h", 3310));
        assert_eq!(b.database.as_deref(), Some("db"));
        assert_eq!(b.table, "t");
        assert!(!b.create);
        assert_eq!(b.timeout, Duration::from_secs(3));
        assert_eq!(b.pool_max, 4);
        assert!(!format!("{b:?}").contains("p:w"));
        assert!(!b.to_url().contains("p%3Aw"));
        let b = parse("mariadb://h/db").unwrap();
        assert_eq!(b.port, 3306);
        for bad in [
            "mysql:///db",
            "mysql://h",
            "mysql://h/",
            "mysql://h/a/b",
            "mysql://h/db#x",
            "mysql://h/db?x=1",
            "mysql://h/db?timeout=0",
            "mysql://h/db?pool_max=0",
            "mysql://h/db?pool_max=18446744073709551615",
            "mysql://h/db?cleanup_time=10m",
        ] {
            assert_eq!(parse(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
        }
        let err = parse("mysql://h/db?table=a%60b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    /// Every number has a range; out of range is a `Config` error naming the option and the
    /// range, never a panic or a silent clamp.
    #[test]
    fn numbers_out_of_range_name_the_option() {
        for url in [
            "mysql://h/db?pool_max=0",
            "mysql://h/db?pool_max=1025",
            "mysql://h/db?pool_max=18446744073709551615",
        ] {
            let err = parse(url).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}");
            assert!(err.to_string().contains("pool_max"), "{url}: {err}");
            assert!(err.to_string().contains("1024"), "{url}: {err}");
        }
        assert_eq!(parse("mysql://h/db?pool_max=1024").unwrap().pool_max, 1024);
    }
}
