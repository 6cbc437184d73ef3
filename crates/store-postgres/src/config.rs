//! [`PostgresStoreBuilder`]: a PostgreSQL store's connection (URL, driver config or an
//! application's pool) and options. Building the pool ([`crate::conn`]) and opening the store
//! ([`PostgresStoreBuilder::open`], in `store.rs`) live elsewhere.

use std::ops::RangeInclusive;
use std::time::Duration;

use deadpool_postgres::Pool;
use sessionbank_core::{
    Action, DEFAULT_BROWSER_IDLE, Error, ErrorKind, Result, StoreUrl, parse_builder, redact_url,
};

use crate::error::BACKEND;
use crate::layout::{Layout, MAX_SCHEMA_LEN, MAX_TABLE_LEN, validate_identifier};

/// The range of `pool_size`.
const POOL_SIZE_RANGE: RangeInclusive<usize> = 1..=1024;

/// Default schema: `public`, as koa-pg-session.
pub const DEFAULT_SCHEMA: &str = "public";

/// Default table: `session`, as koa-pg-session.
pub const DEFAULT_TABLE: &str = "session";

/// Default largest number of pooled connections.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Default time one store operation may take, waiting for a connection included, before it
/// fails with [`ErrorKind::Timeout`].
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time to open one connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the store's connections come from.
pub(crate) enum Source {
    /// A driver configuration (from a URL or given directly): the store builds its own pool.
    Config(Box<tokio_postgres::Config>),
    /// A pool the application already has.
    Pool(Pool),
}

/// Builds a [`PostgresStore`](crate::PostgresStore): where to connect, and the options a `postgres://` URL can carry.
///
/// Three ways in, as koa-pg-session's constructor: a URL ([`PostgresStoreBuilder::parse`]), a
/// driver configuration ([`PostgresStore::builder`](crate::PostgresStore::builder)), or a `deadpool-postgres` pool the
/// application already has
/// ([`PostgresStore::builder_from_pool`](crate::PostgresStore::builder_from_pool), the Rust form of the seed's
/// "pass in your own query function").
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_postgres::{Layout, PostgresStore};
///
/// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://app:secret@db.internal:5432/app")?
///     .schema("auth")
///     .table("sessions")
///     .create(false)
///     .layout(Layout::Native)
///     .browser_idle(Duration::from_secs(3600))
///     .pool_size(32);
/// assert_eq!(builder.get_table(), "sessions");
/// assert!(!format!("{builder:?}").contains("secret"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub struct PostgresStoreBuilder {
    pub(crate) source: Source,
    pub(crate) target: String,
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) create: bool,
    pub(crate) layout: Layout,
    pub(crate) browser_idle: Duration,
    pub(crate) pool_size: usize,
    pub(crate) statement_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("create", &self.create)
            .field("layout", &self.layout)
            .field("browser_idle", &self.browser_idle)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

/// The text shown for a driver configuration: user, hosts, port and database, no password.
fn config_target(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{}:{port}/{db}", hosts.join(","))
}

impl PostgresStoreBuilder {
    fn with_source(source: Source, target: String) -> Self {
        Self {
            source,
            target,
            schema: DEFAULT_SCHEMA.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            create: true,
            layout: Layout::Native,
            browser_idle: DEFAULT_BROWSER_IDLE,
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    pub(crate) fn from_driver_config(config: tokio_postgres::Config) -> Self {
        let target = config_target(&config);
        Self::with_source(Source::Config(Box::new(config)), target)
    }

    pub(crate) fn from_pool(pool: Pool) -> Self {
        Self::with_source(
            Source::Pool(pool),
            "postgres://(application pool)".to_owned(),
        )
    }

    /// Reads a `postgres://` or `postgresql://` URL (several hosts allowed:
    /// `postgres://u@h1:5432,h2:5432/db`) with the driver's `application_name`, `options` and
    /// `sslmode`, and the store's `schema`, `table`, `create`, `layout`, `pool_size` (1–1024),
    /// `statement_timeout`, `connect_timeout` and `browser_idle`. The registry's own options
    /// (`cleanup_time`, `coalesce`) belong to
    /// [`Registry::connect`](sessionbank_core::Registry::connect) and are refused here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL the driver cannot read, an unknown option or a value out
    /// of range; [`ErrorKind::InvalidInput`] for a schema or table name that is not a plain
    /// identifier.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_postgres::PostgresStoreBuilder;
    ///
    /// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://app:secret@db/app?table=web&pool_size=4")?;
    /// assert_eq!(builder.get_table(), "web");
    /// assert!(!format!("{builder:?}").contains("secret"));
    /// assert!(sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://db/app?pool_size=0").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Reads the URL's connection and options (see [`parse`](Self::parse)); the registry
    /// calls this through [`FromStoreUrl`](sessionbank_core::FromStoreUrl).
    pub(crate) fn read_url(options: &mut StoreUrl) -> Result<Self> {
        let url = &options.url().clone();
        let extra_hosts = options.take_extra_hosts();
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(config_error(
                "a PostgreSQL store URL starts with postgres:// or postgresql://",
            ));
        }
        let mut bare = url.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        let mut config: tokio_postgres::Config = bare.as_str().parse().map_err(|e| {
            config_error("the PostgreSQL URL cannot be read by the driver").with_source(e)
        })?;
        if !extra_hosts.is_empty() {
            // One port per host: the first host's (or 5432), then each extra host's.
            if config.get_ports().is_empty() {
                config.port(5432);
            }
            for host in &extra_hosts {
                let (name, port) = match host.rsplit_once(':') {
                    Some((name, port)) if !name.ends_with(':') => {
                        let port = port.parse::<u16>().map_err(|_| {
                            config_error(format!("`{host}` in the host list has no valid port"))
                        })?;
                        (name, port)
                    }
                    _ => (host.as_str(), 5432),
                };
                config.host(name.trim_start_matches('[').trim_end_matches(']'));
                config.port(port);
            }
        }
        if let Some(name) = options.take("application_name") {
            config.application_name(&name);
        }
        if let Some(server_options) = options.take("options") {
            config.options(&server_options);
        }
        match options.take("sslmode").as_deref() {
            None | Some("disable") | Some("prefer") | Some("allow") => {}
            Some(_) => {
                return Err(config_error(
                    "sslmode: this build of the PostgreSQL store connects without TLS; use \
                     sslmode=disable (or prefer) or connect through a pool you configured with TLS",
                ));
            }
        }
        let mut target = redact_url(url);
        if !extra_hosts.is_empty() {
            target.push_str(&format!(" (+{} more hosts)", extra_hosts.len()));
        }
        let mut builder = Self::with_source(Source::Config(Box::new(config)), target)
            .browser_idle(options.browser_idle());
        if let Some(schema) = options.take("schema") {
            builder = builder.schema(schema);
        }
        if let Some(table) = options.take("table") {
            builder = builder.table(table);
        }
        if let Some(create) = options.take_bool("create")? {
            builder = builder.create(create);
        }
        if let Some(layout) = options.take("layout") {
            builder = builder.layout(layout.parse()?);
        }
        if let Some(size) = options.take_usize("pool_size", POOL_SIZE_RANGE)? {
            builder = builder.pool_size(size);
        }
        if let Some(t) = options.take_duration("statement_timeout")? {
            builder = builder.statement_timeout(t);
        }
        if let Some(t) = options.take_duration("connect_timeout")? {
            builder = builder.connect_timeout(t);
        }
        builder.validate()?;
        Ok(builder)
    }

    /// The schema the table lives in (default `public`).
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The table's name (default `session`).
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Whether `setup` may create the schema and table when they are missing (default `true`).
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// The table shape (default [`Layout::Native`]).
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// How long a browser session (no expiry) lives after its last access (default one day).
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// How many connections single-statement operations share (default 16); concurrent
    /// statements are pipelined on them. The store's pool holds two more, for `rename`'s
    /// transaction and `cleanup`. With
    /// [`PostgresStore::builder_from_pool`](crate::PostgresStore::builder_from_pool) the store shares
    /// half of the application's pool instead.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long one store operation may take, waiting for a connection included (default 30 s);
    /// past it the operation fails with [`ErrorKind::Timeout`] instead of hanging.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db")?
    ///     .statement_timeout(std::time::Duration::from_secs(5));
    /// # let _ = builder;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// How long opening one connection may take (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db")?
    ///     .connect_timeout(std::time::Duration::from_secs(2));
    /// # let _ = builder;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The schema name as configured.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db?schema=auth")?;
    /// assert_eq!(builder.get_schema(), "auth");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_schema(&self) -> &str {
        &self.schema
    }

    /// The table name as configured.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    pub fn get_table(&self) -> &str {
        &self.table
    }

    /// Whether `setup` may create the table.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_postgres::PostgresStoreBuilder::parse("postgres://h/db")?;
    /// assert!(builder.get_create());
    /// assert!(!builder.create(false).get_create());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_create(&self) -> bool {
        self.create
    }

    /// The layout as configured.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_postgres::{Layout, PostgresStoreBuilder};
    ///
    /// let builder = PostgresStoreBuilder::parse("postgres://h/db?layout=koa")?;
    /// assert_eq!(builder.get_layout(), Layout::Koa);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_layout(&self) -> Layout {
        self.layout
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_identifier("schema", &self.schema, MAX_SCHEMA_LEN)?;
        validate_identifier("table", &self.table, MAX_TABLE_LEN)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PostgresStoreBuilder> {
        PostgresStoreBuilder::parse(text)
    }

    #[test]
    fn defaults_are_the_seeds() {
        let b = parse("postgres://u@h/db").unwrap();
        assert_eq!(b.get_schema(), "public");
        assert_eq!(b.get_table(), "session");
        assert!(b.get_create());
        assert_eq!(b.get_layout(), Layout::Native);
    }

    #[test]
    fn options_parse() {
        let b = parse(
            "postgresql://u:pw@h:5433/db?schema=s1&table=t1&create=false\
             &browser_idle=2h&pool_size=4&statement_timeout=5s&layout=koa&application_name=x",
        )
        .unwrap();
        assert_eq!((b.get_schema(), b.get_table()), ("s1", "t1"));
        assert!(!b.get_create());
        assert_eq!(b.browser_idle, Duration::from_secs(7200));
        assert_eq!(b.pool_size, 4);
        assert_eq!(b.statement_timeout, Duration::from_secs(5));
        assert_eq!(b.get_layout(), Layout::Koa);
        assert!(!b.target.contains("pw"), "{}", b.target);
        assert!(!format!("{b:?}").contains("pw"));
    }

    #[test]
    fn host_lists_reach_the_driver() {
        let b = parse("postgres://u@h1:5433,h2,[::1]:5435/db").unwrap();
        let Source::Config(config) = &b.source else {
            panic!("a URL builds its own pool");
        };
        assert_eq!(config.get_hosts().len(), 3);
        assert_eq!(config.get_ports(), [5433, 5432, 5435]);
        assert!(b.target.contains("+2 more hosts"), "{}", b.target);
    }

    #[test]
    fn bad_options_are_config_errors() {
        for bad in [
            "postgres://h/db?colour=blue",
            "postgres://h/db?create=maybe",
            "postgres://h/db?layout=mongo",
            "postgres://h/db?pool_size=0",
            "postgres://h/db?pool_size=18446744073709551615",
            "postgres://h/db?cleanup_time=10m",
            "postgres://h/db?sslmode=require",
            "postgres://h/db?statement_timeout=soon",
        ] {
            assert_eq!(parse(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn an_out_of_range_pool_size_is_a_config_error_naming_it() {
        for bad in ["0", "1025"] {
            let err = parse(&format!("postgres://h/db?pool_size={bad}")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
            assert!(err.to_string().contains("pool_size"), "{err}");
        }
        assert_eq!(
            parse("postgres://h/db?pool_size=1024").unwrap().pool_size,
            1024
        );
        assert_eq!(parse("postgres://h/db?pool_size=1").unwrap().pool_size, 1);
    }

    #[test]
    fn hostile_names_are_invalid_input() {
        let long = "x".repeat(200);
        for bad in [
            "postgres://h/db?table=a%22b",
            "postgres://h/db?table=s%3B%20DROP%20TABLE%20t",
            "postgres://h/db?table=",
            "postgres://h/db?schema=",
            "postgres://h/db?schema=a%27b",
        ] {
            assert_eq!(
                parse(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
        let url = format!("postgres://h/db?table={long}");
        assert_eq!(parse(&url).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
