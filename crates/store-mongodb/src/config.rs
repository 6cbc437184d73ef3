//! [`MongoStoreBuilder`]: a MongoDB store's connection string and options, from a `mongodb://`
//! URL. Opening it ([`MongoStoreBuilder::open`]) lives with the store, in `store.rs`.

use std::fmt;
use std::time::Duration;

use sessionbank_core::{Action, Result, StoreUrl, parse_builder, redact_url};

use crate::error;

/// The collection used when the URL names none: `sessions`, as in mongosess.
pub const DEFAULT_COLLECTION: &str = "sessions";
/// How long one operation may take before it fails with `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The driver's server selection and connect timeout, unless the URL sets
/// `serverSelectionTimeoutMS` / `connectTimeoutMS`.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection-string options passed through to the driver unchanged (MongoDB's own names).
pub const DRIVER_OPTIONS: &[&str] = &[
    "appName",
    "authMechanism",
    "authMechanismProperties",
    "authSource",
    "compressors",
    "connectTimeoutMS",
    "directConnection",
    "heartbeatFrequencyMS",
    "journal",
    "loadBalanced",
    "localThresholdMS",
    "maxConnecting",
    "maxIdleTimeMS",
    "maxPoolSize",
    "maxStalenessSeconds",
    "minPoolSize",
    "readConcernLevel",
    "readPreference",
    "readPreferenceTags",
    "replicaSet",
    "retryReads",
    "retryWrites",
    "serverSelectionTimeoutMS",
    "socketTimeoutMS",
    "srvMaxHosts",
    "srvServiceName",
    "ssl",
    "tls",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
    "tlsInsecure",
    "w",
    "waitQueueTimeoutMS",
    "wTimeoutMS",
    "zlibCompressionLevel",
];

/// A MongoDB store's configuration: the driver's connection string, the database and
/// collection, and the store's own options. Prints as a redacted URL.
///
/// # Examples
///
/// ```
/// use sessionbank_store_mongodb::MongoStoreBuilder;
///
/// let config = MongoStoreBuilder::parse("mongodb://app:secret@a:27017,b:27017/app?replicaSet=rs0&collection=web")?;
/// assert_eq!(config.get_database(), "app");
/// assert_eq!(config.get_collection(), "web");
/// assert!(config.get_connection_string().starts_with("mongodb://app:secret@a:27017,b:27017/app?"));
/// assert!(!config.to_string().contains("secret"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct MongoStoreBuilder {
    connection_string: String,
    database: String,
    collection: String,
    browser_idle: Duration,
    timeout: Duration,
    target: String,
}

impl fmt::Debug for MongoStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStoreBuilder")
            .field("target", &self.target)
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("browser_idle", &self.browser_idle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Display for MongoStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)
    }
}

impl MongoStoreBuilder {
    /// Reads a `mongodb://` or `mongodb+srv://` URL: the hosts may be a comma-separated list;
    /// the options are `collection`, `timeout`, `browser_idle` and the driver's own (passed
    /// on). The registry's own options (`cleanup_time`, `coalesce`) belong to
    /// [`Registry::connect`](sessionbank_core::Registry::connect) and are refused here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for a malformed URL, a missing
    /// database, or an unknown option.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_mongodb::MongoStoreBuilder;
    ///
    /// let builder = MongoStoreBuilder::parse("mongodb://u:pw@a:27017,b:27018/app?collection=web&replicaSet=rs0")?;
    /// assert_eq!((builder.get_database(), builder.get_collection()), ("app", "web"));
    /// assert!(builder.get_connection_string().contains("a:27017,b:27018"));
    /// assert!(!builder.get_target().contains("pw"));
    /// assert!(MongoStoreBuilder::parse("mongodb://a/app?cleanup_time=1m").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Reads the URL's hosts and options (see [`parse`](Self::parse)); the registry calls this
    /// through [`FromStoreUrl`](sessionbank_core::FromStoreUrl).
    pub(crate) fn read_url(url: &mut StoreUrl) -> Result<Self> {
        let extra = url.take_extra_hosts();
        let parsed = url.url().clone();
        Self::from_parts(&parsed, extra, url)
    }

    fn from_parts(
        url: &url::Url,
        extra_hosts: Vec<String>,
        options: &mut StoreUrl,
    ) -> Result<Self> {
        let target = redact_url(url);
        let fail = |what: String| error::config(Action::ParseUrl, &target, what);
        if url.scheme() != "mongodb" && url.scheme() != "mongodb+srv" {
            return Err(fail(format!(
                "the MongoDB store takes mongodb:// or mongodb+srv:// URLs, not {}://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| fail("the URL names no host".to_owned()))?;
        let database = url.path().trim_start_matches('/').to_owned();
        let database = percent_decode(&database);
        if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
            return Err(fail(format!(
                "the URL path must name the database (mongodb://host/DATABASE), without / \\ . \
                 space \" $; got {database:?}"
            )));
        }
        let collection = options
            .take("collection")
            .unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
        if collection.is_empty()
            || collection.starts_with("system.")
            || collection.contains(['$', '\0'])
        {
            return Err(fail(format!(
                "the collection {collection:?} is not a valid MongoDB collection name"
            )));
        }
        let timeout = options.take_duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
        let mut query = Vec::new();
        for key in DRIVER_OPTIONS {
            if let Some(value) = options.take(key) {
                query.push(format!("{key}={}", encode(&value)));
            }
        }
        let selection_ms = DEFAULT_SERVER_SELECTION_TIMEOUT.as_millis();
        if !query
            .iter()
            .any(|q| q.starts_with("serverSelectionTimeoutMS="))
        {
            query.push(format!("serverSelectionTimeoutMS={selection_ms}"));
        }
        if !query.iter().any(|q| q.starts_with("connectTimeoutMS=")) {
            query.push(format!("connectTimeoutMS={selection_ms}"));
        }
        let mut hosts = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        for extra in extra_hosts {
            hosts.push(',');
            hosts.push_str(&extra);
        }
        let userinfo = match (url.username(), url.password()) {
            ("", None) => String::new(),
            (user, None) => format!("{user}@"),
            (user, Some(password)) => format!("{user}:{password}@"),
        };
        let connection_string = format!(
            "{}://{userinfo}{hosts}/{}?{}",
            url.scheme(),
            encode(&database),
            query.join("&")
        );
        Ok(Self {
            connection_string,
            database,
            collection,
            browser_idle: options.browser_idle(),
            timeout,
            target,
        })
    }

    /// Sets the collection (default [`DEFAULT_COLLECTION`]).
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    /// Sets how long a browser session lives after its last access (default one day).
    pub fn browser_idle(mut self, idle: Duration) -> Self {
        self.browser_idle = idle;
        self
    }

    /// Sets how long one operation may take before it fails with `Timeout` (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The database (the URL path).
    pub fn get_database(&self) -> &str {
        &self.database
    }

    /// The collection.
    pub fn get_collection(&self) -> &str {
        &self.collection
    }

    /// The connection string handed to the driver (it holds the password: do not log it).
    pub fn get_connection_string(&self) -> &str {
        &self.connection_string
    }

    /// The redacted URL, for logs and errors.
    pub fn get_target(&self) -> &str {
        &self.target
    }

    /// How long a browser session lives after its last access.
    pub fn get_browser_idle(&self) -> Duration {
        self.browser_idle
    }

    /// How long one operation may take.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }
}

/// Percent-decodes a URL path segment.
fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Percent-encodes a value for the connection string.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
