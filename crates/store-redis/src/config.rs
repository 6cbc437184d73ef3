//! [`RedisStoreBuilder`]: a Redis store's topology (standalone, Sentinel, Cluster), TLS and
//! options, from code or from a `redis://`, `rediss://`, `redis+cluster://` or
//! `redis+sentinel://` URL. Making the clients lives in `client.rs`, opening the store
//! ([`RedisStoreBuilder::open`]) in `store.rs`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sessionbank_core::{DEFAULT_BROWSER_IDLE, Result, StoreUrl, parse_builder, redact_url};

use crate::error;

/// The default key prefix.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_redis::DEFAULT_PREFIX, "sessionbank:");
/// ```
pub const DEFAULT_PREFIX: &str = "sessionbank:";

/// The default time allowed to open a TCP connection: 5 seconds.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_redis::DEFAULT_CONNECT_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default time allowed for one answer: 5 seconds.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_redis::DEFAULT_RESPONSE_TIMEOUT.as_secs(), 5);
/// ```
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest key prefix accepted.
const MAX_PREFIX: usize = 128;

/// How sessions are kept in Redis: the URL option `layout=string` (the default) or
/// `layout=hash`, or [`RedisStoreBuilder::layout`].
///
/// The two layouts write different keys (`PREFIX s:ID` and `PREFIX h:ID`, and owner sets of
/// their own), so two stores with the same prefix and different layouts never see each other's
/// sessions. See `docs.md` ("Storage layout") for both.
///
/// # Examples
///
/// ```
/// use sessionbank_store_redis::{Layout, RedisStoreBuilder};
///
/// let b = RedisStoreBuilder::parse("redis://127.0.0.1:6379/0?layout=hash")?;
/// assert_eq!(b.get_layout(), Layout::Hash);
/// assert_eq!(Layout::default(), Layout::String);
/// assert_eq!("hash".parse::<Layout>().ok(), Some(Layout::Hash));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One string per session (`PREFIX s:ID`) holding length-prefixed tokens; `update` and
    /// `touch` are one Lua script (`EVALSHA`).
    #[default]
    String,
    /// One hash per session (`PREFIX h:ID`): meta fields `c`, `a`, `e`, `o` and a field `.KEY`
    /// per data key; `update` and `touch` are one `MULTI … EXEC` of native commands, no Lua.
    Hash,
}

impl Layout {
    /// The option's value: `string` or `hash`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sessionbank_store_redis::Layout::Hash.as_str(), "hash");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::String => "string",
            Layout::Hash => "hash",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Layout {
    type Err = sessionbank_core::Error;

    /// `string` or `hash`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) naming the option and the
    /// values it accepts.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "string" => Ok(Layout::String),
            "hash" => Ok(Layout::Hash),
            other => Err(error::config(format!(
                "the layout option must be `string` or `hash`, not `{other}`"
            ))),
        }
    }
}

/// Which kind of deployment the store talks to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    /// One server (`redis://`, `rediss://`): its address and database index.
    Standalone { host: String, port: u16, db: i64 },
    /// A cluster (`redis+cluster://`): seed nodes.
    Cluster { nodes: Vec<(String, u16)> },
    /// A master named by sentinels (`redis+sentinel://`).
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        db: i64,
    },
}

/// Builds a [`RedisStore`]: where Redis is, and the options a Redis URL can carry.
///
/// `Debug` never shows the password.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_redis::RedisStoreBuilder;
///
/// let builder = RedisStoreBuilder::parse("redis://:hunter2@127.0.0.1:6379/2?prefix=app:")?
///     .response_timeout(Duration::from_secs(2));
/// assert_eq!(builder.get_prefix(), "app:");
/// assert!(!format!("{builder:?}").contains("hunter2"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    pub(crate) topology: Topology,
    pub(crate) tls: bool,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) tls_insecure: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) connections: usize,
    pub(crate) browser_idle: Duration,
    pub(crate) layout: Layout,
    pub(crate) target: String,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .field("tls_insecure", &self.tls_insecure)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("connections", &self.connections)
            .field("browser_idle", &self.browser_idle)
            .field("layout", &self.layout)
            .finish()
    }
}

/// The most connections a store opens (`connections`).
const MAX_CONNECTIONS: usize = 64;

/// Splits `h1:p1,h2:p2` into addresses (default port 6379, or 26379 for sentinels).
fn parse_hosts(text: &str, default_port: u16) -> Result<Vec<(String, u16)>> {
    let mut hosts = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(error::config("an empty host in the store URL"));
        }
        let (host, port) = if let Some(rest) = part.strip_prefix('[') {
            // [ipv6]:port
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| error::config("an unclosed [ in a host of the store URL"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => default_port,
                None => return Err(error::config("a malformed host in the store URL")),
            };
            (h.to_owned(), port)
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), parse_port(p)?),
                None => (part.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(error::config("an empty host in the store URL"));
        }
        hosts.push((host, port));
    }
    Ok(hosts)
}

fn parse_port(text: &str) -> Result<u16> {
    text.parse()
        .map_err(|_| error::config("a port in the store URL is not a number from 1 to 65535"))
}

fn parse_db(text: &str) -> Result<i64> {
    let db: i64 = text
        .parse()
        .map_err(|_| error::config("the database in a redis:// URL path must be a number"))?;
    if db < 0 {
        return Err(error::config("the database index must not be negative"));
    }
    Ok(db)
}

fn percent_decoded(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Checks a key prefix: 1 to 128 ASCII letters, digits or `:_-./`, so it is never a glob
/// pattern (it goes into `SCAN MATCH`) nor a hash tag.
///
/// # Errors
///
/// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) otherwise.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX {
        return Err(error::config(
            "the key prefix must be 1 to 128 characters long",
        ));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":_-./".contains(&b))
    {
        return Err(error::config(
            "the key prefix may hold only ASCII letters, digits and : _ - . /",
        ));
    }
    Ok(())
}

impl RedisStoreBuilder {
    /// A builder for a standalone server at `host:port`, database 0, with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = sessionbank_store_redis::RedisStoreBuilder::standalone("127.0.0.1", 6379);
    /// assert_eq!(builder.get_prefix(), "sessionbank:");
    /// ```
    pub fn standalone(host: &str, port: u16) -> Self {
        Self {
            topology: Topology::Standalone {
                host: host.to_owned(),
                port,
                db: 0,
            },
            tls: false,
            tls_ca: None,
            tls_insecure: false,
            username: None,
            password: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connections: 1,
            browser_idle: DEFAULT_BROWSER_IDLE,
            layout: Layout::String,
            target: format!("redis://{host}:{port}/0"),
        }
    }

    /// Reads a Redis store URL: `redis://[user:password@]host:port/DB`, `rediss://…` (TLS),
    /// `redis+cluster://h1:p1,h2:p2` or `redis+sentinel://s1:p1,s2:p2/MASTER[/DB]`, with the
    /// options `nodes` (more hosts), `prefix` (default `sessionbank:`), `layout` (`string`, the
    /// default, or `hash`), `connect_timeout`, `response_timeout`, `connections` (1–64),
    /// `tls_ca` (a PEM file of the CAs to trust instead of the system's roots),
    /// `tls_insecure` (a boolean: no certificate check) and `browser_idle`. The registry's own
    /// options (`cleanup_time`, `coalesce`) belong to
    /// [`Registry::connect`](sessionbank_core::Registry::connect) and are refused here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for a malformed URL or host,
    /// several hosts on `redis://`, a bad database, prefix or timeout, `tls_ca`/`tls_insecure`
    /// on a URL that is not `rediss://`, an unknown option or a value out of range.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_redis::{Layout, RedisStoreBuilder};
    ///
    /// let b = RedisStoreBuilder::parse("redis+cluster://:pw@n1:7000,n2:7001?prefix=app:&layout=hash")?;
    /// assert_eq!((b.get_prefix(), b.get_layout()), ("app:", Layout::Hash));
    /// assert!(!format!("{b:?}").contains("pw"));
    /// assert!(RedisStoreBuilder::parse("redis://h?tls_insecure=maybe").is_err());
    /// assert!(RedisStoreBuilder::parse("redis://h?connections=65").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Reads the URL's topology and options (see [`parse`](Self::parse)); the registry calls
    /// this through [`FromStoreUrl`](sessionbank_core::FromStoreUrl).
    pub(crate) fn read_url(options: &mut StoreUrl) -> Result<Self> {
        let url = &options.url().clone();
        let scheme = url.scheme();
        let default_port = if scheme == "redis+sentinel" {
            26379
        } else {
            6379
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| error::config("the store URL has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut addrs = vec![(host.to_owned(), url.port().unwrap_or(default_port))];
        // `redis+cluster://h1:p1,h2:p2`: core's one URL reader split off the hosts after the
        // first.
        let listed = options.take_extra_hosts();
        if !listed.is_empty() {
            addrs.extend(parse_hosts(&listed.join(","), default_port)?);
        }
        let mut target = redact_url(url);
        if !listed.is_empty() {
            let first = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            target = target.replacen(&first, &format!("{first},{}", listed.join(",")), 1);
        }
        if let Some(extra) = options.take("nodes") {
            addrs.extend(parse_hosts(&extra, default_port)?);
        }
        let segments: Vec<String> = url
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decoded)
            .collect();
        let (topology, tls) = match scheme {
            "redis" | "rediss" => {
                if addrs.len() != 1 {
                    return Err(error::config(
                        "a redis:// URL names one server; use redis+cluster:// or redis+sentinel:// for several",
                    ));
                }
                let db = match segments.as_slice() {
                    [] => 0,
                    [db] => parse_db(db)?,
                    _ => return Err(error::config("a redis:// URL path is /DATABASE")),
                };
                let (host, port) = addrs.remove(0);
                (Topology::Standalone { host, port, db }, scheme == "rediss")
            }
            "redis+cluster" => {
                if !segments.is_empty() {
                    return Err(error::config(
                        "a redis+cluster:// URL has no path: a cluster has database 0 only",
                    ));
                }
                (Topology::Cluster { nodes: addrs }, false)
            }
            "redis+sentinel" => {
                let (master, db) = match segments.as_slice() {
                    [master] => (master.clone(), 0),
                    [master, db] => (master.clone(), parse_db(db)?),
                    _ => {
                        return Err(error::config(
                            "a redis+sentinel:// URL path is /MASTERNAME or /MASTERNAME/DATABASE",
                        ));
                    }
                };
                (
                    Topology::Sentinel {
                        sentinels: addrs,
                        master,
                        db,
                    },
                    false,
                )
            }
            other => {
                return Err(error::config(format!(
                    "`{other}` is not a Redis URL scheme (redis, rediss, redis+cluster, redis+sentinel)"
                )));
            }
        };
        let username = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(percent_decoded);
        let password = url.password().map(percent_decoded);
        let mut builder = Self {
            topology,
            tls,
            tls_ca: None,
            tls_insecure: false,
            username,
            password,
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connections: 1,
            browser_idle: options.browser_idle(),
            layout: Layout::String,
            target,
        };
        if let Some(layout) = options.take("layout") {
            builder.layout = layout.parse()?;
        }
        if let Some(prefix) = options.take("prefix") {
            validate_prefix(&prefix)?;
            builder.prefix = prefix;
        }
        if let Some(d) = options.take_duration("connect_timeout")? {
            builder.connect_timeout = d;
        }
        if let Some(d) = options.take_duration("response_timeout")? {
            builder.response_timeout = d;
        }
        if let Some(n) = options.take_usize("connections", 1..=MAX_CONNECTIONS)? {
            builder = builder.connections(n)?;
        }
        if let Some(path) = options.take("tls_ca") {
            if path.is_empty() {
                return Err(error::config("tls_ca must name a PEM file"));
            }
            builder.tls_ca = Some(PathBuf::from(path));
        }
        if let Some(insecure) = options.take_bool("tls_insecure")? {
            builder.tls_insecure = insecure;
        }
        if !builder.tls && (builder.tls_ca.is_some() || builder.tls_insecure) {
            return Err(error::config(
                "tls_ca and tls_insecure need a rediss:// URL (TLS)",
            ));
        }
        if builder.tls_ca.is_some() && builder.tls_insecure {
            return Err(error::config(
                "tls_ca and tls_insecure=true contradict each other: pick one",
            ));
        }
        Ok(builder)
    }

    /// The key prefix (default `sessionbank:`): every key this store writes starts with it.
    /// Stores with different prefixes on one server never see each other's sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_redis::RedisStoreBuilder::standalone("h", 6379).prefix("app:");
    /// assert_eq!(b.get_prefix(), "app:");
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// See [`key_prefix`](Self::prefix).
    pub fn get_prefix(&self) -> &str {
        &self.prefix
    }

    /// How long opening a connection may take (default 5 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = sessionbank_store_redis::RedisStoreBuilder::standalone("h", 6379)
    ///     .connect_timeout(Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one answer may take (default 5 s); past it the operation fails with
    /// [`ErrorKind::Timeout`](sessionbank_core::ErrorKind::Timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = sessionbank_store_redis::RedisStoreBuilder::standalone("h", 6379)
    ///     .response_timeout(Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How sessions are kept: [`Layout::String`] (the default; URL option `layout=string`) or
    /// [`Layout::Hash`] (`layout=hash`): a hash per session whose `update` and `touch` are
    /// native commands in one `MULTI … EXEC` instead of a Lua script.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_redis::{Layout, RedisStoreBuilder};
    ///
    /// let b = RedisStoreBuilder::standalone("h", 6379).layout(Layout::Hash);
    /// assert_eq!(b.get_layout(), Layout::Hash);
    /// ```
    #[must_use]
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The layout (see [`layout`](Self::layout)).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_redis::{Layout, RedisStoreBuilder};
    ///
    /// assert_eq!(RedisStoreBuilder::parse("redis://h")?.get_layout(), Layout::String);
    /// assert_eq!(RedisStoreBuilder::parse("redis://h?layout=hash")?.get_layout(), Layout::Hash);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_layout(&self) -> Layout {
        self.layout
    }

    /// How many multiplexed connections to open (default 1, at most 64; the pool size):
    /// requests go round-robin over them. One connection pipelines every concurrent request
    /// and was the fastest in `benches/redis.rs`; more can help when one client core cannot
    /// keep up with a faster server. Standalone and Sentinel only.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for 0, more than 64, or a
    /// cluster (whose connection already holds one connection per master).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_redis::RedisStoreBuilder::standalone("h", 6379).connections(4)?;
    /// # let _ = b;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn connections(mut self, connections: usize) -> Result<Self> {
        if !(1..=MAX_CONNECTIONS).contains(&connections) {
            return Err(error::config(format!(
                "connections must be 1 to {MAX_CONNECTIONS}, not {connections}"
            )));
        }
        if connections > 1 && matches!(self.topology, Topology::Cluster { .. }) {
            return Err(error::config(
                "connections applies to redis:// and redis+sentinel://: a cluster connection keeps one connection per master",
            ));
        }
        self.connections = connections;
        Ok(self)
    }

    /// How long a browser session (no expiry) lives after its last access (default one day):
    /// its Redis TTL.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = sessionbank_store_redis::RedisStoreBuilder::standalone("h", 6379)
    ///     .browser_idle(Duration::from_secs(3600));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// Trusts only the CA certificates in this PEM file for `rediss://` (instead of the
    /// system's roots): for a server whose certificate a private CA signed. The URL option
    /// `tls_ca=/path/ca.pem` sets it.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = sessionbank_store_redis::RedisStoreBuilder::parse(
    ///     "rediss://cache.internal:6380/0?tls_ca=/etc/redis/ca.pem",
    /// )?;
    /// # let _ = b;
    /// // The same with the setter:
    /// let b = sessionbank_store_redis::RedisStoreBuilder::parse("rediss://cache.internal:6380/0")?
    ///     .tls_ca("/etc/redis/ca.pem");
    /// # let _ = b;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn tls_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(path.into());
        self
    }

    /// The redacted target, for messages.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }
}
