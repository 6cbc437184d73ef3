//! `mysql://` and `mariadb://` URLs and options, and the builder that opens a [`MySqlStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts};
use percent_encoding::percent_decode_str;
use sessionbank_core::{Action, CommonOptions, DEFAULT_BROWSER_IDLE, Error, ErrorKind, OpenFuture, Result,
    SharedClock, Store, UrlOptions, redact_url, system_clock,
};
use url::Url;

use crate::error::{self, BACKEND};
use crate::schema::{DEFAULT_TABLE, Statements, validate_table};
use crate::store::{Inner, MySqlStore};

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
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    table: String,
    create: bool,
    timeout: Duration,
    pool_max: usize,
    browser_idle: Duration,
    clock: SharedClock,
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

    /// Reads a `mysql://user:password@host:port/database` (or `mariadb://…`) URL and its
    /// options: `table`, `create`, `timeout` and `pool_max` from `options`, `browser_idle` from
    /// `common`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL without a host or database, with a fragment, or a
    /// malformed option; [`ErrorKind::InvalidInput`] for a table name that is not a plain
    /// identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{CommonOptions, UrlOptions};
    /// use sessionbank_store_mysql::MySqlStoreBuilder;
    ///
    /// let url = url::Url::parse("mariadb://app:pw@db:3307/app?table=web&create=false")?;
    /// let mut options = UrlOptions::from_url(&url)?;
    /// let builder = MySqlStoreBuilder::from_url(&url, &mut options, &CommonOptions::default())?;
    /// options.finish("mysql")?;
    /// assert_eq!(builder.to_url(), "mysql://app:***@db:3307/app?table=web&create=false");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
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
            Self::new(host, url.port().unwrap_or(3306)).browser_idle(common.browser_idle);
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
        if let Some(max) = options.take_u64("pool_max")? {
            if max == 0 {
                return Err(config_error(
                    "the store URL option `pool_max` must be above zero",
                ));
            }
            builder.pool_max = usize::try_from(max).unwrap_or(usize::MAX).min(1000);
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

    /// Connects, creates the table and indexes unless `create(false)`, and checks the table.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a bad table name; [`ErrorKind::Unavailable`] when the
    /// server cannot be reached; [`ErrorKind::Timeout`] when it does not answer in time;
    /// [`ErrorKind::Config`] when it refuses the login or the table is missing or lacks a
    /// column.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_mysql::MySqlStore::builder("127.0.0.1", 3306)
    ///     .user("root")
    ///     .database("app")
    ///     .open()
    ///     .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<MySqlStore> {
        validate_table(&self.table, Action::Connect)?;
        let target = self.to_url();
        let constraints = PoolConstraints::new(0, self.pool_max)
            .unwrap_or_else(|| PoolConstraints::new(0, DEFAULT_POOL_MAX).unwrap_or_default());
        let opts = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.database.clone())
            .client_found_rows(true)
            .prefer_socket(false)
            .stmt_cache_size(64)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(false),
            );
        let pool = Pool::new(opts);
        let statements = Statements::new(&self.table);
        let setup = async {
            let mut conn = pool.get_conn().await?;
            if self.create {
                conn.query_drop(&statements.create_table).await?;
            }
            conn.query_drop(&statements.check_table).await?;
            Ok::<_, mysql_async::Error>(())
        };
        let result = match tokio::time::timeout(self.timeout, setup).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error::from_mysql(Action::Setup, &target, e)),
            Err(_) => Err(error::timed_out(Action::Connect, &target, self.timeout)),
        };
        if let Err(e) = result {
            let _ = tokio::time::timeout(Duration::from_secs(1), pool.disconnect()).await;
            return Err(e);
        }
        tracing::debug!(target: "sessionbank::mysql", target = %target, table = %self.table, "mysql store opened");
        Ok(MySqlStore {
            inner: Arc::new(Inner {
                pool,
                target,
                statements,
                timeout: self.timeout,
                browser_idle: self.browser_idle,
                clock: self.clock,
            }),
        })
    }
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

/// The opener registered under `mysql` and `mariadb`.
pub(crate) fn open_mysql(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let builder = MySqlStoreBuilder::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(builder.open().await?);
        Ok(store)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MySqlStoreBuilder> {
        let url = Url::parse(text).unwrap();
        let mut options = UrlOptions::from_url(&url)?;
        let common = CommonOptions::take_from(&mut options)?;
        let builder = MySqlStoreBuilder::from_url(&url, &mut options, &common)?;
        options.finish("mysql")?;
        Ok(builder)
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
        ] {
            assert_eq!(parse(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
        }
        let err = parse("mysql://h/db?table=a%60b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
