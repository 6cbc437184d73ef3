//! URL -> store: the registry of backends, URL options, and [`StoreHandle`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use url::Url;

use crate::coalesce::Coalescing;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::janitor::{Janitor, JanitorConfig};
use crate::memory::{DEFAULT_BROWSER_IDLE, MemoryStore};
use crate::store::Store;

/// Default interval between two janitor runs: 45 minutes, koa-pg-session's `cleanupTime`.
pub const DEFAULT_CLEANUP_TIME: Duration = Duration::from_secs(45 * 60);

/// The future a backend's opener returns: connects and yields the store.
pub type OpenFuture = BoxFuture<'static, Result<Arc<dyn Store>>>;

/// A backend's opener. It reads its options from `options` (every key it knows, with
/// [`UrlOptions::take`]) synchronously, then returns the future that connects. The registry
/// rejects the URL when a key is left over, before the future runs.
pub type OpenFn = fn(&Url, &mut UrlOptions, &CommonOptions) -> Result<OpenFuture>;

/// One backend in a [`Registry`].
#[derive(Clone, Copy)]
pub struct BackendEntry {
    /// The backend's name, e.g. `postgres`.
    pub name: &'static str,
    /// The URL schemes it answers to, e.g. `["postgres", "postgresql"]`.
    pub schemes: &'static [&'static str],
    /// The cargo feature of the `sessionbank` crate that compiles it in.
    pub feature: &'static str,
    /// The opener, or `None` when the feature was compiled out.
    pub open: Option<OpenFn>,
}

impl fmt::Debug for BackendEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendEntry")
            .field("name", &self.name)
            .field("schemes", &self.schemes)
            .field("feature", &self.feature)
            .field("compiled_in", &self.open.is_some())
            .finish()
    }
}

/// An explicit list of backends, each under its URL schemes: the connect-databank idea, where
/// the application names a URL and never a backend type.
///
/// The facade crate `sessionbank` builds the default registry from its cargo features; this
/// type lets a program build its own (say, with a backend of its own).
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ErrorKind, Registry, Store};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = Registry::with_memory();
/// let store = registry.connect("memory://?max_entries=1000").await?;
/// assert_eq!(store.backend(), "memory");
///
/// let err = registry.connect("nosuch://x").await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert!(err.to_string().contains("memory"), "lists the known schemes");
///
/// let err = registry.connect("memory://?colour=blue").await.unwrap_err();
/// assert!(err.to_string().contains("colour"));
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: Vec<BackendEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with `memory://` only.
    pub fn with_memory() -> Self {
        let mut registry = Self::new();
        registry.register(MemoryStore::REGISTRY_ENTRY);
        registry
    }

    /// Adds a backend. A later entry with the same scheme takes precedence.
    pub fn register(&mut self, entry: BackendEntry) -> &mut Self {
        self.entries.insert(0, entry);
        self
    }

    /// The backends, compiled in or not.
    pub fn entries(&self) -> &[BackendEntry] {
        &self.entries
    }

    /// Every scheme the registry knows, compiled in or not, sorted.
    pub fn known_schemes(&self) -> Vec<&'static str> {
        let mut schemes: Vec<_> = self
            .entries
            .iter()
            .flat_map(|e| e.schemes.iter().copied())
            .collect();
        schemes.sort_unstable();
        schemes.dedup();
        schemes
    }

    /// Opens the store a URL names, wraps it in [`Coalescing`] unless the URL says
    /// `coalesce=false` (an option of the registry: a backend's own `connect(url)` opens the
    /// bare store and refuses it), and starts its janitor unless the backend expires records
    /// itself or `cleanup_time=off`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL that does not parse, an unknown scheme (the message
    /// lists the known ones), a scheme whose cargo feature is off (the message names it), or an
    /// unknown or malformed query option; otherwise whatever the backend's connect returns.
    pub async fn connect(&self, url: &str) -> Result<StoreHandle> {
        let (url, extra_hosts) = split_host_list(url)?;
        let parsed = Url::parse(&url).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                Operation::ParseUrl,
                format!("the store URL does not parse: {e}"),
            )
        })?;
        let mut target = redact_url(&parsed);
        if !extra_hosts.is_empty() {
            target.push_str(&format!(" (+{} more hosts)", extra_hosts.len()));
        }
        let scheme = parsed.scheme();
        let Some(entry) = self.entries.iter().find(|e| e.schemes.contains(&scheme)) else {
            return Err(Error::new(
                ErrorKind::Config,
                Operation::Connect,
                format!(
                    "unknown store URL scheme `{scheme}`; known schemes: {}",
                    self.known_schemes().join(", ")
                ),
            )
            .with_target(target));
        };
        let Some(open) = entry.open else {
            return Err(Error::new(
                ErrorKind::Config,
                Operation::Connect,
                format!(
                    "the `{scheme}` backend was compiled out: enable the cargo feature `{}` of sessionbank",
                    entry.feature
                ),
            )
            .with_target(target));
        };
        let mut options = UrlOptions::from_url(&parsed)?;
        options.extra_hosts = extra_hosts;
        let common = CommonOptions::take_from(&mut options)?;
        let coalesce = options.take_bool("coalesce")?.unwrap_or(true);
        let opening = open(&parsed, &mut options, &common)
            .map_err(|e| e.with_backend(entry.name).with_target(target.clone()))?;
        options
            .finish(entry.name)
            .map_err(|e| e.with_target(target.clone()))?;
        let mut store = opening.await?;
        if coalesce {
            store = Arc::new(Coalescing::new(store));
        }
        let janitor = match common.cleanup_time {
            Some(interval) if !store.capabilities().native_expiry => Some(Arc::new(
                Janitor::spawn(store.clone(), JanitorConfig::every(interval)),
            )),
            _ => None,
        };
        Ok(StoreHandle {
            store,
            janitor,
            target: target.into(),
        })
    }
}

/// Options every backend understands, read from the URL query by the registry.
///
/// - `browser_idle`: how long a browser session (no expiry) lives after its last access;
///   default one day.
/// - `cleanup_time`: the janitor's interval (`10m`, `45min`, or milliseconds as in the seeds);
///   `off` or `0` starts none; default 45 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonOptions {
    /// How long a browser session lives after its last access.
    pub browser_idle: Duration,
    /// The janitor's interval, or `None` for no janitor.
    pub cleanup_time: Option<Duration>,
}

impl Default for CommonOptions {
    fn default() -> Self {
        Self {
            browser_idle: DEFAULT_BROWSER_IDLE,
            cleanup_time: Some(DEFAULT_CLEANUP_TIME),
        }
    }
}

impl CommonOptions {
    /// Takes `browser_idle` and `cleanup_time` out of `options`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when a value is not a duration.
    pub fn take_from(options: &mut UrlOptions) -> Result<Self> {
        let mut common = Self::default();
        if let Some(d) = options.take_duration("browser_idle")? {
            common.browser_idle = d;
        }
        if let Some(text) = options.take("cleanup_time") {
            common.cleanup_time = match text.as_str() {
                "off" | "false" | "0" => None,
                _ => Some(parse_duration("cleanup_time", &text)?),
            };
        }
        Ok(common)
    }
}

/// The query options of a store URL. A backend takes the keys it knows; the registry then
/// rejects any key left over, naming the keys the backend does know.
///
/// # Examples
///
/// ```
/// use sessionbank_core::UrlOptions;
///
/// let url = url::Url::parse("postgres://h/db?table=s&create=false")?;
/// let mut options = UrlOptions::from_url(&url)?;
/// assert_eq!(options.take("table").as_deref(), Some("s"));
/// assert_eq!(options.take_bool("create")?, Some(false));
/// options.finish("postgres")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct UrlOptions {
    values: BTreeMap<String, String>,
    known: Vec<&'static str>,
    extra_hosts: Vec<String>,
    extra_hosts_taken: bool,
}

impl UrlOptions {
    /// Reads the query of `url`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when a key appears twice.
    pub fn from_url(url: &Url) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            if values.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Error::new(
                    ErrorKind::Config,
                    Operation::ParseUrl,
                    format!("the store URL option `{k}` appears more than once"),
                ));
            }
        }
        Ok(Self {
            values,
            known: Vec::new(),
            extra_hosts: Vec::new(),
            extra_hosts_taken: false,
        })
    }

    /// The hosts after the first in a multi-host URL such as
    /// `redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster` or `memcached://a:11211,b:11211`
    /// (`s2:26379` and `s3:26379`; the first host is the URL's own). [`Registry::connect`]
    /// splits them off before parsing, because a URL has one host; a backend that takes several
    /// calls this, and for one that does not, the registry rejects such a URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::Registry;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A URL has one host: the registry splits the list off before parsing, so backends
    /// // see a well-formed URL (memory:// then refuses any host at all).
    /// let err = Registry::with_memory().connect("memory://a:1,b:2").await.unwrap_err();
    /// assert_eq!(err.kind(), sessionbank_core::ErrorKind::Config);
    /// # });
    /// ```
    pub fn take_extra_hosts(&mut self) -> Vec<String> {
        self.extra_hosts_taken = true;
        std::mem::take(&mut self.extra_hosts)
    }

    /// Takes a string option.
    pub fn take(&mut self, key: &'static str) -> Option<String> {
        self.known.push(key);
        self.values.remove(key)
    }

    /// Takes a boolean option (`true`/`false`/`1`/`0`/`yes`/`no`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for any other value.
    pub fn take_bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        self.take(key)
            .map(|v| match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(option_error(key, "true or false")),
            })
            .transpose()
    }

    /// Takes a whole-number option.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the value is not a non-negative whole number.
    pub fn take_u64(&mut self, key: &'static str) -> Result<Option<u64>> {
        self.take(key)
            .map(|v| v.parse().map_err(|_| option_error(key, "a whole number")))
            .transpose()
    }

    /// Takes a duration option: `30s`, `10m`, `1h 30m`, or a bare number of milliseconds.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the value is not a duration.
    pub fn take_duration(&mut self, key: &'static str) -> Result<Option<Duration>> {
        self.take(key).map(|v| parse_duration(key, &v)).transpose()
    }

    /// Fails when an option was not taken by anyone.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the unknown keys and the known ones.
    pub fn finish(self, backend: &str) -> Result<()> {
        if !self.extra_hosts.is_empty() && !self.extra_hosts_taken {
            return Err(Error::new(
                ErrorKind::Config,
                Operation::ParseUrl,
                format!(
                    "the {backend} backend takes one host; this URL lists {}",
                    self.extra_hosts.len() + 1
                ),
            )
            .with_backend(backend.to_owned()));
        }
        if self.values.is_empty() {
            return Ok(());
        }
        let unknown: Vec<_> = self.values.keys().map(|k| format!("`{k}`")).collect();
        let mut known = self.known;
        known.sort_unstable();
        known.dedup();
        Err(Error::new(
            ErrorKind::Config,
            Operation::ParseUrl,
            format!(
                "unknown store URL option {} for {backend}; known options: {}",
                unknown.join(", "),
                known.join(", ")
            ),
        )
        .with_backend(backend.to_owned()))
    }
}

/// Splits `scheme://[userinfo@]h1[:p1],h2[:p2],…/rest` into the URL with its first host and the
/// other hosts; a URL without a comma in its authority comes back unchanged.
fn split_host_list(url: &str) -> Result<(String, Vec<String>)> {
    let Some(scheme_end) = url.find("://") else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - authority_start);
    let authority = &url[authority_start..authority_start + authority_len];
    if !authority.contains(',') {
        return Ok((url.to_owned(), Vec::new()));
    }
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let mut hosts = hosts.split(',').map(str::trim);
    let first = hosts.next().unwrap_or_default();
    let extra: Vec<String> = hosts.map(str::to_owned).collect();
    if first.is_empty()
        || extra
            .iter()
            .any(|h| h.is_empty() || h.contains(char::is_whitespace))
    {
        return Err(Error::new(
            ErrorKind::Config,
            Operation::ParseUrl,
            "the store URL's host list has an empty or malformed entry",
        ));
    }
    let rebuilt = format!(
        "{}{userinfo}{first}{}",
        &url[..authority_start],
        &url[authority_start + authority_len..]
    );
    Ok((rebuilt, extra))
}

fn option_error(key: &str, expected: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        Operation::ParseUrl,
        format!("the store URL option `{key}` must be {expected}"),
    )
}

/// Parses `30s`, `10m`, `1h 30m`, or a bare number of milliseconds (the seeds' unit).
///
/// # Errors
///
/// [`ErrorKind::Config`] naming `what` when the text is not a duration.
pub fn parse_duration(what: &str, text: &str) -> Result<Duration> {
    if let Ok(ms) = text.trim().parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(text.trim())
        .map_err(|_| option_error(what, "a duration such as 30s, 10m or 2h, or milliseconds"))
}

/// A URL as it may appear in logs and errors: the password becomes `***`, and so does the value
/// of any query option whose name suggests a secret.
///
/// # Examples
///
/// ```
/// let url = url::Url::parse("redis://app:hunter2@cache:6379/0?password=x&prefix=s:")?;
/// assert_eq!(
///     sessionbank_core::redact_url(&url),
///     "redis://app:***@cache:6379/0?password=***&prefix=s:"
/// );
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = ["pass", "secret", "token", "key"]
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                let v = if secret {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        let mut text = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                text.push('&');
            }
            text.push_str(k);
            text.push('=');
            text.push_str(v);
        }
        shown.set_query(Some(&text));
    }
    shown.to_string()
}

/// A cheap-to-clone handle over an `Arc<dyn Store>`, as [`Registry::connect`] returns: the
/// application holds this and never names a backend type. It dereferences to the
/// [`Store`] trait object, and keeps the janitor running for as long as a clone lives.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{MemoryStore, Store, StoreHandle};
///
/// let handle = StoreHandle::new(MemoryStore::new());
/// let copy = handle.clone();
/// assert_eq!(copy.backend(), "memory");
/// ```
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<dyn Store>,
    janitor: Option<Arc<Janitor>>,
    target: Arc<str>,
}

impl StoreHandle {
    /// Wraps a store, with no janitor.
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Wraps a shared store, with no janitor.
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        let target = format!("{}://", store.backend()).into();
        Self {
            store,
            janitor: None,
            target,
        }
    }

    /// Starts a janitor for this handle; it stops when the last clone is dropped.
    #[must_use]
    pub fn with_janitor(mut self, config: JanitorConfig) -> Self {
        self.janitor = Some(Arc::new(Janitor::spawn(self.store.clone(), config)));
        self
    }

    /// The shared store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The janitor, if one runs.
    pub fn janitor(&self) -> Option<&Janitor> {
        self.janitor.as_deref()
    }

    /// The store's URL with secrets redacted.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Deref for StoreHandle {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreHandle")
            .field("backend", &self.store.backend())
            .field("target", &self.target)
            .field("janitor", &self.janitor.is_some())
            .finish()
    }
}

impl MemoryStore {
    /// The registry entry for `memory://` (options: `max_entries`).
    pub const REGISTRY_ENTRY: BackendEntry = BackendEntry {
        name: "memory",
        schemes: &["memory"],
        feature: "memory",
        open: Some(open_memory),
    };
}

fn open_memory(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<OpenFuture> {
    if url.host_str().is_some_and(|h| !h.is_empty()) || !matches!(url.path(), "" | "/") {
        return Err(Error::new(
            ErrorKind::Config,
            Operation::ParseUrl,
            "memory:// takes no host or path; write `memory://`",
        ));
    }
    let mut builder = MemoryStore::builder().browser_idle(common.browser_idle);
    if let Some(max) = options.take_u64("max_entries")? {
        builder = builder.max_entries(usize::try_from(max).unwrap_or(usize::MAX));
    }
    let store: Arc<dyn Store> = Arc::new(builder.build());
    Ok(Box::pin(async move { Ok(store) }))
}
