//! `memcached://` URLs and options, and the builder that opens a [`MemcachedStore`].

use std::sync::Arc;
use std::time::Duration;

use sessionbank_core::{Action, CommonOptions, DEFAULT_BROWSER_IDLE, Error, ErrorKind, OpenFuture, Result,
    SharedClock, Store, UrlOptions, system_clock,
};
use url::Url;

use crate::client::{Cluster, Reply, Request, Server};
use crate::error::{self, BACKEND};
use crate::layout;
use crate::store::{Inner, MemcachedStore};

/// memcached's default port.
pub const DEFAULT_PORT: u16 = 11211;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "sessionbank:";

/// memcached's default item size limit (`-I`): 1 MiB.
pub const DEFAULT_MAX_ITEM_BYTES: usize = 1024 * 1024;

/// Default timeout of one call (waiting for a pooled connection, connecting, the round trip).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default timeout of opening one TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default number of connections per server.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The settings of a [`MemcachedStore`]: the servers, and the options a `memcached://` URL can
/// carry.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_memcached::MemcachedConfig;
///
/// let config = MemcachedConfig::parse("memcached://10.0.0.1:11211,10.0.0.2?prefix=app:")?
///     .timeout(Duration::from_secs(1))
///     .pool_size(8);
/// assert_eq!(config.servers(), ["10.0.0.1:11211", "10.0.0.2:11211"]);
/// assert_eq!(config.key_prefix(), "app:");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemcachedConfig {
    servers: Vec<String>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    pool_size: usize,
    max_item_bytes: usize,
    browser_idle: Duration,
    clock: SharedClock,
}

impl MemcachedConfig {
    /// Settings for these servers (`host:port`, or `host` for port 11211) with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedConfig;
    ///
    /// let config = MemcachedConfig::new(["127.0.0.1:11211", "cache-2"]);
    /// assert_eq!(config.servers(), ["127.0.0.1:11211", "cache-2:11211"]);
    /// ```
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|s| with_port(s.into().trim()))
                .collect(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            browser_idle: DEFAULT_BROWSER_IDLE,
            clock: system_clock(),
        }
    }

    /// Reads a URL given as text, including the multi-server form
    /// `memcached://host1:port1,host2:port2/?options` (which the `url` crate alone does not
    /// parse: it reads `port1,host2:port2` as one port). The common options `browser_idle` and
    /// `cleanup_time` are accepted; any other unknown option is an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL that does not parse, another scheme, a path, an empty
    /// server list, an unknown option or an invalid value (see [`from_url`](Self::from_url)).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedConfig;
    ///
    /// let config = MemcachedConfig::parse("memcached://a:1,b:2,c?max_item_bytes=2097152")?;
    /// assert_eq!(config.servers(), ["a:1", "b:2", "c:11211"]);
    /// assert!(MemcachedConfig::parse("memcached://a?colour=blue").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let (head, rest) = text
            .split_once("://")
            .ok_or_else(|| config_error("a memcached URL starts with memcached://"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let hosts: Vec<&str> = authority.split(',').collect();
        let first = hosts.first().copied().unwrap_or_default();
        let url = Url::parse(&format!("{head}://{first}{tail}"))
            .map_err(|e| config_error(format!("the store URL does not parse: {e}")))?;
        let mut options = UrlOptions::from_url(&url)?;
        let common = CommonOptions::take_from(&mut options)?;
        let mut config = Self::from_url(&url, &mut options, &common)?;
        options.finish(BACKEND)?;
        for (i, host) in hosts.iter().enumerate().skip(1) {
            config.servers.insert(i, with_port(host.trim()));
        }
        config.check()?;
        Ok(config)
    }

    /// Reads a parsed `memcached://` URL and its options: the servers from the host (a comma
    /// list of hosts on port 11211, or one `host:port`) plus the `servers` option (a comma list
    /// of `host:port`), and `prefix`, `timeout`, `connect_timeout`, `pool_size` and
    /// `max_item_bytes` taken from `options`; `browser_idle` from `common`.
    ///
    /// Through [`Registry::connect`](sessionbank_core::Registry::connect) a host list such as
    /// `memcached://a:1,b:2` works as written: the registry passes the hosts after the first in
    /// [`UrlOptions::take_extra_hosts`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for another scheme, a user or password (memcached's text protocol
    /// has no authentication), a path, a fragment, no server, a prefix memcached keys cannot
    /// carry, or an option value that does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{CommonOptions, UrlOptions};
    /// use sessionbank_store_memcached::MemcachedConfig;
    ///
    /// let url = url::Url::parse("memcached://10.0.0.1:11211?servers=10.0.0.2:11211&timeout=2s")?;
    /// let mut options = UrlOptions::from_url(&url)?;
    /// let config = MemcachedConfig::from_url(&url, &mut options, &CommonOptions::default())?;
    /// options.finish("memcached")?;
    /// assert_eq!(config.servers(), ["10.0.0.1:11211", "10.0.0.2:11211"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
        if url.scheme() != "memcached" {
            return Err(config_error("a memcached URL starts with memcached://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                "memcached's text protocol has no authentication: remove the user and password \
                 from the URL",
            ));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(config_error(
                "a memcached URL takes no path: write memcached://host:port,host2:port/?options",
            ));
        }
        if url.fragment().is_some() {
            return Err(config_error("a memcached URL takes no #fragment"));
        }
        let mut servers = Vec::new();
        if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
            let hosts: Vec<&str> = host.split(',').collect();
            match url.port() {
                Some(port) if hosts.len() == 1 => servers.push(format!("{host}:{port}")),
                Some(_) => {
                    return Err(config_error(
                        "write a port for every memcached server, or for none",
                    ));
                }
                None => servers.extend(hosts.iter().map(|h| with_port(h.trim()))),
            }
        }
        // `memcached://a:1,b:2`: the registry hands over the hosts after the first.
        servers.extend(options.take_extra_hosts().iter().map(|h| with_port(h)));
        if let Some(more) = options.take("servers") {
            servers.extend(
                more.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| with_port(s.trim())),
            );
        }
        let mut config = Self::new(servers).browser_idle(common.browser_idle);
        if let Some(prefix) = options.take("prefix") {
            config.prefix = prefix;
        }
        if let Some(timeout) = options.take_duration("timeout")? {
            config.timeout = timeout;
        }
        if let Some(timeout) = options.take_duration("connect_timeout")? {
            config.connect_timeout = timeout;
        }
        if let Some(size) = options.take_u64("pool_size")? {
            config.pool_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        if let Some(max) = options.take_u64("max_item_bytes")? {
            config.max_item_bytes = usize::try_from(max).unwrap_or(usize::MAX);
        }
        config.check()?;
        Ok(config)
    }

    /// The key prefix (default `sessionbank:`): every key is the prefix followed by the
    /// session id. Printable ASCII without spaces, at most 218 bytes.
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig`].
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The timeout of one call to a server (default 5 s): waiting for a pooled connection,
    /// connecting and the round trip. Past it the operation fails with
    /// [`ErrorKind::Timeout`].
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of opening one TCP connection (default 2 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sessionbank_store_memcached::MemcachedConfig::new(["cache"])
    ///     .connect_timeout(Duration::from_millis(500));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connections per server (default 16), opened on demand and kept.
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig`].
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The servers' item size limit, memcached's `-I` (default 1 MiB). A session whose key,
    /// encoded value and item header (96 bytes) exceed it is refused with
    /// [`ErrorKind::TooLarge`] before anything is sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = sessionbank_store_memcached::MemcachedConfig::new(["cache"])
    ///     .max_item_bytes(4 << 20); // servers started with -I 4m
    /// assert_eq!(config.item_limit(), 4 << 20);
    /// ```
    #[must_use]
    pub fn max_item_bytes(mut self, max: usize) -> Self {
        self.max_item_bytes = max;
        self
    }

    /// How long a browser session (no expiry) lives after its last access (default one day).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sessionbank_store_memcached::MemcachedConfig::new(["cache"])
    ///     .browser_idle(Duration::from_secs(2 * 3600));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// The clock that decides what has expired on read (default: the system clock). memcached
    /// expires items by its own clock; this one only decides what reads hide.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sessionbank_core::ManualClock;
    /// let config = sessionbank_store_memcached::MemcachedConfig::new(["cache"])
    ///     .clock(Arc::new(ManualClock::starting_now()));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The servers, as `host:port`.
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig::new`].
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig`].
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The item size limit.
    ///
    /// # Examples
    ///
    /// See [`MemcachedConfig::max_item_bytes`].
    pub fn item_limit(&self) -> usize {
        self.max_item_bytes
    }

    /// The settings as a URL that [`parse`](Self::parse) reads back (durations in
    /// milliseconds). memcached URLs hold no secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedConfig;
    ///
    /// let config = MemcachedConfig::new(["a:1", "b:2"]).prefix("app:");
    /// let back = MemcachedConfig::parse(&config.to_url())?;
    /// assert_eq!(back.servers(), config.servers());
    /// assert_eq!(back.key_prefix(), "app:");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn to_url(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("prefix", &self.prefix)
            .append_pair("timeout", &self.timeout.as_millis().to_string())
            .append_pair(
                "connect_timeout",
                &self.connect_timeout.as_millis().to_string(),
            )
            .append_pair("pool_size", &self.pool_size.to_string())
            .append_pair("max_item_bytes", &self.max_item_bytes.to_string())
            .append_pair("browser_idle", &self.browser_idle.as_millis().to_string());
        format!("memcached://{}/?{}", self.servers.join(","), query.finish())
    }

    fn check(&self) -> Result<()> {
        if self.servers.is_empty() {
            return Err(config_error(
                "a memcached URL needs at least one server: memcached://host:port",
            ));
        }
        for server in &self.servers {
            let ok = server.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && port.parse::<u16>().is_ok_and(|p| p != 0)
                    && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
            });
            if !ok {
                return Err(config_error(format!(
                    "`{server}` is not a memcached server address: write host:port"
                )));
            }
        }
        layout::check_prefix(&self.prefix).map_err(config_error)?;
        if self.pool_size == 0 {
            return Err(config_error("pool_size must be at least 1"));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(config_error("timeouts must be above zero"));
        }
        if self.max_item_bytes <= layout::ITEM_OVERHEAD + layout::MAX_KEY_BYTES {
            return Err(config_error(format!(
                "max_item_bytes must be above {}",
                layout::ITEM_OVERHEAD + layout::MAX_KEY_BYTES
            )));
        }
        Ok(())
    }

    /// Checks the settings, builds the connection pools and asks every server for its version.
    /// Servers that do not answer are logged and tried again on each call (their keys fail
    /// with [`ErrorKind::Unavailable`] meanwhile); the store opens as long as one answers.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for invalid settings; [`ErrorKind::Unavailable`] or
    /// [`ErrorKind::Timeout`] when no server answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_store_memcached::MemcachedConfig;
    ///
    /// # async fn demo() -> sessionbank_core::Result<()> {
    /// let store = MemcachedConfig::parse("memcached://127.0.0.1:11211")?.connect().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(self) -> Result<MemcachedStore> {
        self.check()?;
        let servers = self
            .servers
            .iter()
            .map(|addr| {
                Server::new(
                    addr.clone(),
                    self.pool_size,
                    self.connect_timeout,
                    self.timeout,
                )
            })
            .collect();
        let cluster = Cluster::new(servers);
        let mut last_error = None;
        let mut answered = 0;
        for server in cluster.servers() {
            match server.call(&Request::Version).await {
                Ok(Reply::Version(version)) => {
                    answered += 1;
                    tracing::debug!(target: "sessionbank::memcached", server = server.addr(), %version, "memcached server answered");
                }
                Ok(_) => last_error = Some(error::unexpected(Action::Connect, server.addr())),
                Err(e) => {
                    last_error = Some(error::from_client(Action::Connect, server.addr(), e))
                }
            }
        }
        if answered == 0
            && let Some(e) = last_error
        {
            return Err(e);
        }
        Ok(MemcachedStore {
            inner: Arc::new(Inner {
                cluster,
                prefix: self.prefix,
                max_item_bytes: self.max_item_bytes,
                browser_idle: self.browser_idle,
                clock: self.clock,
            }),
        })
    }
}

/// `host` → `host:11211`; `host:port` and `[v6]:port` unchanged.
fn with_port(server: &str) -> String {
    let has_port = match server.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        server.to_owned()
    } else {
        format!("{server}:{DEFAULT_PORT}")
    }
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

/// The opener registered under `memcached`.
pub(crate) fn open_memcached(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let config = MemcachedConfig::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(config.connect().await?);
        Ok(store)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let c = MemcachedConfig::parse("memcached://a:1,b:2,[::1]:3,c,[::2]").unwrap();
        assert_eq!(
            c.servers(),
            ["a:1", "b:2", "[::1]:3", "c:11211", "[::2]:11211"]
        );
        let c = MemcachedConfig::parse(
            "memcached://a:1/?prefix=x:&timeout=2s&connect_timeout=100&pool_size=3&max_item_bytes=2000000&browser_idle=1h&cleanup_time=off",
        )
        .unwrap();
        assert_eq!(c.key_prefix(), "x:");
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.connect_timeout, Duration::from_millis(100));
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.max_item_bytes, 2_000_000);
        assert_eq!(c.browser_idle, Duration::from_secs(3600));
        let c = MemcachedConfig::parse("memcached://a,b?servers=c:5,d").unwrap();
        assert_eq!(c.servers(), ["a:11211", "b:11211", "c:5", "d:11211"]);
        for bad in [
            "memcached://",
            "memcached://a/path",
            "memcached://u:p@a:1",
            "memcached://a?prefix=has%20space",
            "memcached://a?prefix=%0A",
            "memcached://a?pool_size=0",
            "memcached://a?timeout=soon",
            "memcached://a?max_item_bytes=10",
            "memcached://a?colour=blue",
            "memcached://a:1,:2",
            "memcached://a:1#f",
            "redis://a",
        ] {
            let err = MemcachedConfig::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn to_url_reads_back() {
        let c = MemcachedConfig::new(["a:1", "[::1]:2"])
            .prefix("p/q:&=")
            .timeout(Duration::from_millis(1500))
            .pool_size(2)
            .max_item_bytes(5000)
            .browser_idle(Duration::from_secs(90));
        let back = MemcachedConfig::parse(&c.to_url()).unwrap();
        assert_eq!(back.servers(), c.servers());
        assert_eq!(back.key_prefix(), "p/q:&=");
        assert_eq!(back.timeout, c.timeout);
        assert_eq!(back.pool_size, 2);
        assert_eq!(back.max_item_bytes, 5000);
        assert_eq!(back.browser_idle, c.browser_idle);
    }
}
