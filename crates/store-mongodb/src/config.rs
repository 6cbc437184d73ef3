//! `mongodb://` URLs and the store's options.

use std::fmt;
use std::time::Duration;

use sessionbank_core::{Action, CommonOptions, OpenFuture, Result, Store, UrlOptions, redact_url,
};
use url::Url;

use crate::error::{self, BACKEND};
use crate::store::MongoStore;

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
/// use sessionbank_store_mongodb::MongoConfig;
///
/// let config = MongoConfig::parse("mongodb://app:secret@a:27017,b:27017/app?replicaSet=rs0&collection=web")?;
/// assert_eq!(config.database(), "app");
/// assert_eq!(config.collection_name(), "web");
/// assert!(config.connection_string().starts_with("mongodb://app:secret@a:27017,b:27017/app?"));
/// assert!(!config.to_string().contains("secret"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct MongoConfig {
    connection_string: String,
    database: String,
    collection: String,
    browser_idle: Duration,
    timeout: Duration,
    target: String,
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("target", &self.target)
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("browser_idle", &self.browser_idle)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Display for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)
    }
}

impl MongoConfig {
    /// Parses a `mongodb://` or `mongodb+srv://` URL on its own (without a registry): the hosts
    /// may be a comma-separated list.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for a malformed URL, a missing
    /// database, or an unknown option.
    pub fn parse(text: &str) -> Result<Self> {
        let (url, extra) = split_hosts(text)?;
        let mut options = UrlOptions::from_url(&url)?;
        let common = CommonOptions::take_from(&mut options)?;
        let mut config = Self::from_parts(&url, extra, &mut options, &common)?;
        // The janitor interval means nothing here: MongoDB expires documents itself.
        let _ = common.cleanup_time;
        options.finish(BACKEND)?;
        config.browser_idle = common.browser_idle;
        Ok(config)
    }

    /// Reads the URL as the registry hands it over: the first host in `url`, the others in
    /// [`UrlOptions::take_extra_hosts`].
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
        let extra = options.take_extra_hosts();
        let mut config = Self::from_parts(url, extra, options, common)?;
        config.browser_idle = common.browser_idle;
        Ok(config)
    }

    fn from_parts(
        url: &Url,
        extra_hosts: Vec<String>,
        options: &mut UrlOptions,
        common: &CommonOptions,
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
            browser_idle: common.browser_idle,
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
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The collection.
    pub fn collection_name(&self) -> &str {
        &self.collection
    }

    /// The connection string handed to the driver (it holds the password: do not log it).
    pub fn connection_string(&self) -> &str {
        &self.connection_string
    }

    /// The redacted URL, for logs and errors.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn browser_idle_value(&self) -> Duration {
        self.browser_idle
    }

    pub(crate) fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// Connects, and runs [`MongoStore::setup`] (the TTL and owner indexes).
    ///
    /// # Errors
    ///
    /// `Config` for a connection string the driver refuses or an index of another shape on
    /// `deadline`; `Unavailable` or `Timeout` when the server cannot be reached.
    pub async fn connect(self) -> Result<MongoStore> {
        let store = MongoStore::from_config(self).await?;
        store.setup().await?;
        Ok(store)
    }
}

/// Splits `mongodb://a:1,b:2/db` into a URL with the first host and the other hosts.
fn split_hosts(text: &str) -> Result<(Url, Vec<String>)> {
    let bad = |what: String| error::config(Action::ParseUrl, "mongodb://", what);
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad("not a URL: it has no scheme://".to_owned()))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let mut list = hosts.split(',');
    let first = list.next().unwrap_or_default();
    let extra: Vec<String> = list.map(str::to_owned).collect();
    let url = Url::parse(&format!("{scheme}://{userinfo}{first}{tail}"))
        .map_err(|e| bad(format!("malformed URL: {e}")))?;
    Ok((url, extra))
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

/// The registry's opener for `mongodb://` and `mongodb+srv://`.
pub(crate) fn open_mongo(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let config = MongoConfig::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(config.connect().await?);
        Ok(store)
    }))
}
