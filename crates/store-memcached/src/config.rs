//! [`MemcachedStoreBuilder`]: the servers and options of a memcached store, from code or from a
//! `memcached://` URL. Opening it ([`MemcachedStoreBuilder::open`]) lives with the store, in
//! `store.rs`.

use std::ops::RangeInclusive;
use std::time::Duration;

use sessionbank_core::{
    Action, DEFAULT_BROWSER_IDLE, Error, ErrorKind, Result, SharedClock, StoreUrl, parse_builder,
    system_clock,
};

use crate::error::BACKEND;
use crate::layout;

/// The range of `pool_size`: connections per server.
const POOL_SIZE_RANGE: RangeInclusive<usize> = 1..=1024;

/// The range of `max_item_bytes`: above the item overhead and the longest key, at most 1 GiB
/// (memcached's own ceiling for `-I`).
const MAX_ITEM_BYTES_RANGE: RangeInclusive<usize> =
    (layout::ITEM_OVERHEAD + layout::MAX_KEY_BYTES + 1)..=(1 << 30);

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
/// use sessionbank_store_memcached::MemcachedStoreBuilder;
///
/// let config = MemcachedStoreBuilder::parse("memcached://10.0.0.1:11211,10.0.0.2?prefix=app:")?
///     .timeout(Duration::from_secs(1))
///     .pool_size(8);
/// assert_eq!(config.get_servers(), ["10.0.0.1:11211", "10.0.0.2:11211"]);
/// assert_eq!(config.get_prefix(), "app:");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemcachedStoreBuilder {
    servers: Vec<String>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    pool_size: usize,
    max_item_bytes: usize,
    browser_idle: Duration,
    clock: SharedClock,
}

impl MemcachedStoreBuilder {
    /// Settings for these servers (`host:port`, or `host` for port 11211) with the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedStoreBuilder;
    ///
    /// let config = MemcachedStoreBuilder::new(["127.0.0.1:11211", "cache-2"]);
    /// assert_eq!(config.get_servers(), ["127.0.0.1:11211", "cache-2:11211"]);
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

    /// Reads a `memcached://` URL, including the multi-server form
    /// `memcached://host1:port1,host2:port2/?options`: the servers from the host list plus the
    /// `servers` option (a comma list of `host:port`), and the options `prefix`, `timeout`,
    /// `connect_timeout`, `pool_size` (1–1024), `max_item_bytes` and `browser_idle`. The
    /// registry's own options (`cleanup_time`, `coalesce`) belong to
    /// [`Registry::connect`](sessionbank_core::Registry::connect) and are refused here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL that does not parse, another scheme, a user or password
    /// (memcached's text protocol has no authentication), a path, a fragment, no server, a
    /// prefix memcached keys cannot carry, an unknown option or a value out of its range.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedStoreBuilder;
    ///
    /// let builder = MemcachedStoreBuilder::parse("memcached://a:1,b:2,c?max_item_bytes=2097152")?;
    /// assert_eq!(builder.get_servers(), ["a:1", "b:2", "c:11211"]);
    /// assert!(MemcachedStoreBuilder::parse("memcached://a?colour=blue").is_err());
    /// assert!(MemcachedStoreBuilder::parse("memcached://a?pool_size=18446744073709551615").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Reads the URL's servers and options (see [`parse`](Self::parse)); the registry calls
    /// this through [`FromStoreUrl`](sessionbank_core::FromStoreUrl).
    pub(crate) fn read_url(url: &mut StoreUrl) -> Result<Self> {
        let parsed = url.url();
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(config_error(
                "memcached's text protocol has no authentication: remove the user and password \
                 from the URL",
            ));
        }
        if !matches!(parsed.path(), "" | "/") {
            return Err(config_error(
                "a memcached URL takes no path: write memcached://host:port,host2:port/?options",
            ));
        }
        if parsed.fragment().is_some() {
            return Err(config_error("a memcached URL takes no #fragment"));
        }
        let mut servers = Vec::new();
        if let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) {
            servers.push(match parsed.port() {
                Some(port) => format!("{host}:{port}"),
                None => with_port(host),
            });
        }
        servers.extend(url.take_extra_hosts().iter().map(|h| with_port(h.trim())));
        if let Some(more) = url.take("servers") {
            servers.extend(
                more.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| with_port(s.trim())),
            );
        }
        let mut builder = Self::new(servers).browser_idle(url.browser_idle());
        if let Some(prefix) = url.take("prefix") {
            builder.prefix = prefix;
        }
        if let Some(timeout) = url.take_duration("timeout")? {
            builder.timeout = timeout;
        }
        if let Some(timeout) = url.take_duration("connect_timeout")? {
            builder.connect_timeout = timeout;
        }
        if let Some(size) = url.take_usize("pool_size", POOL_SIZE_RANGE)? {
            builder.pool_size = size;
        }
        if let Some(max) = url.take_usize("max_item_bytes", MAX_ITEM_BYTES_RANGE)? {
            builder.max_item_bytes = max;
        }
        builder.check()?;
        Ok(builder)
    }

    /// The key prefix (default `sessionbank:`): every key is the prefix followed by the
    /// session id. Printable ASCII without spaces, at most 218 bytes.
    ///
    /// # Examples
    ///
    /// See [`MemcachedStoreBuilder`].
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
    /// See [`MemcachedStoreBuilder`].
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
    /// let config = sessionbank_store_memcached::MemcachedStoreBuilder::new(["cache"])
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
    /// See [`MemcachedStoreBuilder`].
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
    /// let config = sessionbank_store_memcached::MemcachedStoreBuilder::new(["cache"])
    ///     .max_item_bytes(4 << 20); // servers started with -I 4m
    /// assert_eq!(config.get_max_item_bytes(), 4 << 20);
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
    /// let config = sessionbank_store_memcached::MemcachedStoreBuilder::new(["cache"])
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
    /// let config = sessionbank_store_memcached::MemcachedStoreBuilder::new(["cache"])
    ///     .clock(Arc::new(ManualClock::starting_now()));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The timeout of one call to a server.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_store_memcached::MemcachedStoreBuilder;
    ///
    /// let builder = MemcachedStoreBuilder::parse("memcached://a?timeout=2s&connect_timeout=100")?;
    /// assert_eq!(builder.get_timeout(), Duration::from_secs(2));
    /// assert_eq!(builder.get_connect_timeout(), Duration::from_millis(100));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// The timeout of opening one TCP connection.
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How many connections each server's pool holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::{DEFAULT_POOL_SIZE, MemcachedStoreBuilder};
    ///
    /// assert_eq!(MemcachedStoreBuilder::parse("memcached://a")?.get_pool_size(), DEFAULT_POOL_SIZE);
    /// assert_eq!(MemcachedStoreBuilder::parse("memcached://a?pool_size=4")?.get_pool_size(), 4);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// How long a browser session (no expiry) lives after its last access.
    pub fn get_browser_idle(&self) -> Duration {
        self.browser_idle
    }

    /// The clock the store reads.
    pub fn get_clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The servers, as `host:port`.
    ///
    /// # Examples
    ///
    /// See [`MemcachedStoreBuilder::new`].
    pub fn get_servers(&self) -> &[String] {
        &self.servers
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// See [`MemcachedStoreBuilder`].
    pub fn get_prefix(&self) -> &str {
        &self.prefix
    }

    /// The item size limit.
    ///
    /// # Examples
    ///
    /// See [`MemcachedStoreBuilder::max_item_bytes`].
    pub fn get_max_item_bytes(&self) -> usize {
        self.max_item_bytes
    }

    /// The settings as a URL that [`parse`](Self::parse) reads back (durations in
    /// milliseconds). memcached URLs hold no secret.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_memcached::MemcachedStoreBuilder;
    ///
    /// let config = MemcachedStoreBuilder::new(["a:1", "b:2"]).prefix("app:");
    /// let back = MemcachedStoreBuilder::parse(&config.to_url())?;
    /// assert_eq!(back.get_servers(), config.get_servers());
    /// assert_eq!(back.get_prefix(), "app:");
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

    /// Checks the settings as a whole (servers, prefix, sizes, timeouts).
    pub(crate) fn check(&self) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let c = MemcachedStoreBuilder::parse("memcached://a:1,b:2,[::1]:3,c,[::2]").unwrap();
        assert_eq!(
            c.get_servers(),
            ["a:1", "b:2", "[::1]:3", "c:11211", "[::2]:11211"]
        );
        let c = MemcachedStoreBuilder::parse(
            "memcached://a:1/?prefix=x:&timeout=2s&connect_timeout=100&pool_size=3&max_item_bytes=2000000&browser_idle=1h",
        )
        .unwrap();
        assert_eq!(c.get_prefix(), "x:");
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.connect_timeout, Duration::from_millis(100));
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.max_item_bytes, 2_000_000);
        assert_eq!(c.browser_idle, Duration::from_secs(3600));
        let c = MemcachedStoreBuilder::parse("memcached://a,b?servers=c:5,d").unwrap();
        assert_eq!(c.get_servers(), ["a:11211", "b:11211", "c:5", "d:11211"]);
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
            "memcached://a?cleanup_time=off",
            "memcached://a?pool_size=18446744073709551615",
            "memcached://a?pool_size=1025",
            "memcached://a?max_item_bytes=1099511627776",
            "memcached://a:1,:2",
            "memcached://a:1#f",
            "redis://a",
        ] {
            let err = MemcachedStoreBuilder::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    /// `pool_size=18446744073709551615` once panicked at connect; every number has a range,
    /// and out of range is a `Config` error naming the option and the range.
    #[test]
    fn numbers_out_of_range_name_the_option() {
        for (url, option) in [
            ("memcached://a?pool_size=18446744073709551615", "pool_size"),
            ("memcached://a?pool_size=0", "pool_size"),
            (
                "memcached://a?max_item_bytes=1099511627776",
                "max_item_bytes",
            ),
        ] {
            let err = MemcachedStoreBuilder::parse(url).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}");
            assert!(err.to_string().contains(option), "{url}: {err}");
            assert!(
                err.to_string().contains("1024") || option != "pool_size",
                "{err}"
            );
        }
    }

    #[test]
    fn to_url_reads_back() {
        let c = MemcachedStoreBuilder::new(["a:1", "[::1]:2"])
            .prefix("p/q:&=")
            .timeout(Duration::from_millis(1500))
            .pool_size(2)
            .max_item_bytes(5000)
            .browser_idle(Duration::from_secs(90));
        let back = MemcachedStoreBuilder::parse(&c.to_url()).unwrap();
        assert_eq!(back.get_servers(), c.get_servers());
        assert_eq!(back.get_prefix(), "p/q:&=");
        assert_eq!(back.timeout, c.timeout);
        assert_eq!(back.pool_size, 2);
        assert_eq!(back.max_item_bytes, 5000);
        assert_eq!(back.browser_idle, c.browser_idle);
    }
}
