//! `postgres://` URLs and options, and the builder that makes a [`PostgresStore`].

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sessionbank_core::{Action, CommonOptions, DEFAULT_BROWSER_IDLE, Error, ErrorKind, OpenFuture, Result, Store,
    UrlOptions, redact_url,
};
use tokio_postgres::NoTls;
use url::Url;

use crate::error::BACKEND;
use crate::layout::{Layout, MAX_SCHEMA_LEN, MAX_TABLE_LEN, Sql, validate_identifier};
use crate::store::{Inner, PostgresStore};

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
enum Source {
    /// A driver configuration (from a URL or given directly): the store builds its own pool.
    Config(Box<tokio_postgres::Config>),
    /// A pool the application already has.
    Pool(Pool),
}

/// Builds a [`PostgresStore`]: where to connect, and the options a `postgres://` URL can carry.
///
/// Three ways in, as koa-pg-session's constructor: a URL ([`PostgresStore::builder`]), a driver
/// configuration ([`PostgresStore::builder_from_config`]), or a `deadpool-postgres` pool the
/// application already has ([`PostgresStore::builder_from_pool`], the Rust form of the seed's
/// "pass in your own query function").
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_postgres::{Layout, PostgresStore};
///
/// let builder = PostgresStore::builder("postgres://app:secret@db.internal:5432/app")?
///     .schema("auth")
///     .table("sessions")
///     .create(false)
///     .layout(Layout::Native)
///     .browser_idle(Duration::from_secs(3600))
///     .pool_size(32);
/// assert_eq!(builder.table_name(), "sessions");
/// assert!(!format!("{builder:?}").contains("secret"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub struct PostgresStoreBuilder {
    source: Source,
    target: String,
    schema: String,
    table: String,
    create: bool,
    layout: Layout,
    browser_idle: Duration,
    pool_size: usize,
    statement_timeout: Duration,
    connect_timeout: Duration,
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

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
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

    pub(crate) fn from_url_text(url: &str) -> Result<Self> {
        let parsed = Url::parse(url)
            .map_err(|e| config_error(format!("the store URL does not parse: {e}")))?;
        let mut options = UrlOptions::from_url(&parsed)?;
        let common = CommonOptions::take_from(&mut options)?;
        let builder = Self::from_url(&parsed, &mut options, &common)?;
        options.finish(BACKEND)?;
        Ok(builder)
    }

    /// Reads a `postgres://` (or `postgresql://`) URL: user, password, host, port and database
    /// go to the driver; `schema`, `table`, `create`, `layout`, `pool_size`,
    /// `statement_timeout`, `connect_timeout`, `application_name`, `options` and `sslmode`
    /// are taken from `options`; `browser_idle` comes from `common` (`cleanup_time` is the
    /// registry's janitor).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL the driver cannot read, a malformed option, or
    /// `sslmode=require` (TLS is not built in yet); [`ErrorKind::InvalidInput`] for a schema or
    /// table name that is not 1–63 (table: 1–52) ASCII letters, digits or `_`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{CommonOptions, UrlOptions};
    /// use sessionbank_store_postgres::{Layout, PostgresStoreBuilder};
    ///
    /// let url = url::Url::parse("postgres://u:pw@h/db?schema=app&table=s&create=false&layout=koa&cleanup_time=10m")?;
    /// let mut options = UrlOptions::from_url(&url)?;
    /// let common = CommonOptions::take_from(&mut options)?;
    /// let builder = PostgresStoreBuilder::from_url(&url, &mut options, &common)?;
    /// options.finish("postgres")?;
    /// assert_eq!((builder.schema_name(), builder.table_name()), ("app", "s"));
    /// assert!(!builder.creates_table());
    /// assert_eq!(builder.layout_kind(), Layout::Koa);
    /// assert_eq!(common.cleanup_time, Some(std::time::Duration::from_secs(600)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
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
        let mut builder = Self::with_source(Source::Config(Box::new(config)), redact_url(url))
            .browser_idle(common.browser_idle);
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
        if let Some(size) = options.take_u64("pool_size")? {
            if size == 0 {
                return Err(config_error(
                    "the store URL option `pool_size` must be above zero",
                ));
            }
            builder = builder.pool_size(usize::try_from(size).unwrap_or(usize::MAX));
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
    /// transaction and `cleanup`. With [`PostgresStore::builder_from_pool`] the store shares
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
    /// let builder = sessionbank_store_postgres::PostgresStore::builder("postgres://h/db")?
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
    /// let builder = sessionbank_store_postgres::PostgresStore::builder("postgres://h/db")?
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
    /// See [`PostgresStoreBuilder::from_url`].
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The table name as configured.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder`].
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Whether `setup` may create the table.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder::from_url`].
    pub fn creates_table(&self) -> bool {
        self.create
    }

    /// The layout as configured.
    ///
    /// # Examples
    ///
    /// See [`PostgresStoreBuilder::from_url`].
    pub fn layout_kind(&self) -> Layout {
        self.layout
    }

    fn validate(&self) -> Result<()> {
        validate_identifier("schema", &self.schema, MAX_SCHEMA_LEN)?;
        validate_identifier("table", &self.table, MAX_TABLE_LEN)?;
        Ok(())
    }

    /// Makes the store without touching the network: names are checked and the pool is built,
    /// but no connection is opened. The first operation runs [`PostgresStore::setup`] (and any
    /// operation issued meanwhile waits for it), so no session is written before the table is
    /// checked. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a bad schema or table name; [`ErrorKind::Config`] when
    /// the pool cannot be built.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = sessionbank_store_postgres::PostgresStore::builder("postgres://h/db")?.build()?;
    /// assert!(!store.is_ready());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn build(self) -> Result<PostgresStore> {
        self.validate()?;
        // Own pool: `pool_size` shared connections for single statements, plus two for the
        // operations that need one to themselves (rename's transaction, cleanup, setup).
        // An application's pool: half of it, so the application keeps the rest.
        let (pool, shared) = match self.source {
            Source::Pool(pool) => {
                let shared = (pool.status().max_size / 2).max(1);
                (pool, shared)
            }
            Source::Config(mut config) => {
                config.connect_timeout(self.connect_timeout);
                config.keepalives(true);
                config.keepalives_idle(Duration::from_secs(60));
                let manager = Manager::from_config(
                    *config,
                    NoTls,
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                let pool = Pool::builder(manager)
                    .max_size(self.pool_size.saturating_add(2))
                    .runtime(Runtime::Tokio1)
                    .wait_timeout(Some(self.statement_timeout))
                    .create_timeout(Some(self.connect_timeout))
                    .recycle_timeout(Some(self.connect_timeout))
                    .build()
                    .map_err(|e| {
                        config_error("the connection pool cannot be built").with_source(e)
                    })?;
                (pool, self.pool_size)
            }
        };
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(self.layout, &self.schema, &self.table),
                target: self.target,
                schema: self.schema,
                table: self.table,
                create: self.create,
                browser_idle: self.browser_idle,
                timeout: self.statement_timeout,
                ready: tokio::sync::OnceCell::new(),
                shared: (0..shared).map(|_| std::sync::Mutex::new(None)).collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// [`build`](Self::build), then [`PostgresStore::setup`]: connects, creates the table if
    /// allowed and missing, and checks its columns.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build) and [`PostgresStore::setup`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_postgres::PostgresStore::builder("postgres://app@db/app")?
    ///     .table("sessions")
    ///     .open()
    ///     .await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<PostgresStore> {
        let store = self.build()?;
        store.setup().await?;
        Ok(store)
    }
}

/// The opener registered under `postgres` and `postgresql`.
pub(crate) fn open_postgres(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let builder = PostgresStoreBuilder::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(builder.open().await?);
        Ok(store)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PostgresStoreBuilder> {
        PostgresStoreBuilder::from_url_text(text)
    }

    #[test]
    fn defaults_are_the_seeds() {
        let b = parse("postgres://u@h/db").unwrap();
        assert_eq!(b.schema_name(), "public");
        assert_eq!(b.table_name(), "session");
        assert!(b.creates_table());
        assert_eq!(b.layout_kind(), Layout::Native);
    }

    #[test]
    fn options_parse() {
        let b = parse(
            "postgresql://u:pw@h:5433/db?schema=s1&table=t1&create=false&cleanup_time=10m\
             &browser_idle=2h&pool_size=4&statement_timeout=5s&layout=koa&application_name=x",
        )
        .unwrap();
        assert_eq!((b.schema_name(), b.table_name()), ("s1", "t1"));
        assert!(!b.creates_table());
        assert_eq!(b.browser_idle, Duration::from_secs(7200));
        assert_eq!(b.pool_size, 4);
        assert_eq!(b.statement_timeout, Duration::from_secs(5));
        assert_eq!(b.layout_kind(), Layout::Koa);
        assert!(!b.target.contains("pw"), "{}", b.target);
        assert!(!format!("{b:?}").contains("pw"));
    }

    #[test]
    fn bad_options_are_config_errors() {
        for bad in [
            "postgres://h/db?colour=blue",
            "postgres://h/db?create=maybe",
            "postgres://h/db?layout=mongo",
            "postgres://h/db?pool_size=0",
            "postgres://h/db?sslmode=require",
            "postgres://h/db?statement_timeout=soon",
        ] {
            assert_eq!(parse(bad).unwrap_err().kind(), ErrorKind::Config, "{bad}");
        }
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
