//! [`StoreUrl`] and [`parse_store_url`]: a store URL read once, for the registry and for every
//! backend's own `parse`, so host lists, options and redaction work the same everywhere.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use url::Url;

use crate::error::{Action, Error, ErrorKind, Result};
use crate::expiry::DEFAULT_BROWSER_IDLE;

/// Options that only [`Registry::connect`](crate::Registry::connect) reads; a backend opened
/// directly refuses them by name.
pub(crate) const REGISTRY_OPTIONS: &[&str] = &["cleanup_time", "coalesce"];

/// A store URL, read once: the URL itself (with the first host of a multi-host URL), the hosts
/// after the first, its query options and `browser_idle`, the one option every backend shares.
///
/// A backend takes the options it knows ([`take`](Self::take) and its typed forms) in its
/// [`FromStoreUrl::from_url`](crate::FromStoreUrl::from_url); [`finish`](Self::finish) then
/// rejects any option left over, naming the ones the backend knows.
///
/// Its `Debug` and [`target`](Self::target) show the URL with its password and secret-looking
/// options redacted.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::parse_store_url;
///
/// let mut url = parse_store_url("redis+sentinel://:pw@s1:26379,s2:26379/mymaster?prefix=app:&browser_idle=2h")?;
/// assert_eq!(url.scheme(), "redis+sentinel");
/// assert_eq!(url.url().host_str(), Some("s1"));
/// assert_eq!(url.take_extra_hosts(), ["s2:26379"]);
/// assert_eq!(url.take("prefix").as_deref(), Some("app:"));
/// assert_eq!(url.browser_idle(), Duration::from_secs(2 * 3600));
/// assert!(!url.target().contains("pw"));
/// url.finish("redis")?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct StoreUrl {
    url: Url,
    extra_hosts: Vec<String>,
    extra_hosts_taken: bool,
    values: BTreeMap<String, String>,
    known: Vec<&'static str>,
    browser_idle: Duration,
    target: String,
}

/// Reads a store URL: splits a host list (`scheme://h1:p1,h2:p2/…`, which a URL cannot hold)
/// off before parsing, reads the query (a key given twice is an error) and `browser_idle`.
///
/// # Errors
///
/// [`ErrorKind::Config`] when the text does not parse as a URL, the host list has an empty or
/// malformed entry, an option appears twice, or `browser_idle` is not a duration.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ErrorKind, parse_store_url};
///
/// let url = parse_store_url("memcached://a:1,b:2/?prefix=x:")?;
/// assert_eq!(url.url().as_str(), "memcached://a:1/?prefix=x:");
/// assert_eq!(parse_store_url("memcached://a:1,,b").unwrap_err().kind(), ErrorKind::Config);
/// assert_eq!(parse_store_url("redis://h/?prefix=a&prefix=b").unwrap_err().kind(), ErrorKind::Config);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub fn parse_store_url(text: &str) -> Result<StoreUrl> {
    StoreUrl::parse(text)
}

impl StoreUrl {
    /// See [`parse_store_url`].
    ///
    /// # Errors
    ///
    /// As [`parse_store_url`].
    pub fn parse(text: &str) -> Result<Self> {
        let (text, extra_hosts) = split_host_list(text)?;
        let url = Url::parse(&text)
            .map_err(|e| config_error(format!("the store URL does not parse: {e}")))?;
        let mut target = redact_url(&url);
        if !extra_hosts.is_empty() {
            target.push_str(&format!(" (+{} more hosts)", extra_hosts.len()));
        }
        let mut values = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            if values.insert(k.to_string(), v.to_string()).is_some() {
                return Err(config_error(format!(
                    "the store URL option `{k}` appears more than once"
                ))
                .with_target(target));
            }
        }
        let mut parsed = Self {
            url,
            extra_hosts,
            extra_hosts_taken: false,
            values,
            known: Vec::new(),
            browser_idle: DEFAULT_BROWSER_IDLE,
            target,
        };
        if let Some(idle) = parsed.take_duration("browser_idle")? {
            parsed.browser_idle = idle;
        }
        Ok(parsed)
    }

    /// The URL, with the first host of a multi-host URL as its host.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL's scheme, e.g. `redis+cluster`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The URL as logs and errors may show it: password and secret-looking options as `***`,
    /// and `(+N more hosts)` for a host list.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// How long a browser session (no expiry) lives after its last access: the URL's
    /// `browser_idle`, or one day.
    pub fn browser_idle(&self) -> Duration {
        self.browser_idle
    }

    /// The hosts after the first in a multi-host URL such as
    /// `redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster` (`s2:26379` and `s3:26379`). A
    /// backend that takes several hosts calls this; for one that does not, [`finish`](Self::finish)
    /// rejects such a URL.
    pub fn take_extra_hosts(&mut self) -> Vec<String> {
        self.extra_hosts_taken = true;
        std::mem::take(&mut self.extra_hosts)
    }

    /// Takes a string option.
    pub fn take(&mut self, key: &'static str) -> Option<String> {
        self.known.push(key);
        self.values.remove(key)
    }

    /// Takes a boolean option (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
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

    /// Takes a whole-number option that must lie in `range`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the option and the range when the value is not a whole
    /// number in it.
    pub fn take_u64(
        &mut self,
        key: &'static str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<u64>> {
        let Some(text) = self.take(key) else {
            return Ok(None);
        };
        match text.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(option_error(
                key,
                &format!("a whole number from {} to {}", range.start(), range.end()),
            )),
        }
    }

    /// Takes a whole-number option in `range` as a `usize`.
    ///
    /// # Errors
    ///
    /// As [`take_u64`](Self::take_u64).
    pub fn take_usize(
        &mut self,
        key: &'static str,
        range: RangeInclusive<usize>,
    ) -> Result<Option<usize>> {
        let wide = (*range.start() as u64)..=(*range.end() as u64);
        Ok(self
            .take_u64(key, wide)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    }

    /// Takes a duration option (`30s`, `10m`, `1h 30m`, or a bare number of milliseconds), which
    /// must not exceed [`MAX_DURATION`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the value is not a duration or is too long.
    pub fn take_duration(&mut self, key: &'static str) -> Result<Option<Duration>> {
        self.take(key).map(|v| parse_duration(key, &v)).transpose()
    }

    /// Fails when an option was not taken, or a host list was not, by anyone.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the unknown keys and the known ones.
    pub fn finish(self, backend: &str) -> Result<()> {
        let target = self.target;
        if !self.extra_hosts.is_empty() && !self.extra_hosts_taken {
            return Err(config_error(format!(
                "the {backend} backend takes one host; this URL lists {}",
                self.extra_hosts.len() + 1
            ))
            .with_backend(backend.to_owned())
            .with_target(target));
        }
        if self.values.is_empty() {
            return Ok(());
        }
        let registry_only: Vec<_> = self
            .values
            .keys()
            .filter(|k| REGISTRY_OPTIONS.contains(&k.as_str()))
            .map(|k| format!("`{k}`"))
            .collect();
        if !registry_only.is_empty() {
            return Err(config_error(format!(
                "{} is an option of the registry (`sessionbank::connect`, `Registry::connect`), \
                 which wraps and looks after the store; a {backend} store opened directly \
                 takes no such option",
                registry_only.join(", ")
            ))
            .with_backend(backend.to_owned())
            .with_target(target));
        }
        let unknown: Vec<_> = self.values.keys().map(|k| format!("`{k}`")).collect();
        let mut known = self.known;
        known.sort_unstable();
        known.dedup();
        Err(config_error(format!(
            "unknown store URL option {} for {backend}; known options: {}",
            unknown.join(", "),
            known.join(", ")
        ))
        .with_backend(backend.to_owned())
        .with_target(target))
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUrl")
            .field("target", &self.target)
            .field("extra_hosts", &self.extra_hosts.len())
            .field("options_left", &self.values.keys().collect::<Vec<_>>())
            .field("browser_idle", &self.browser_idle)
            .finish()
    }
}

/// Splits `scheme://[userinfo@]h1[:p1],h2[:p2],…/rest` into the URL with its first host and the
/// other hosts; a URL without a comma in its authority comes back unchanged.
fn split_host_list(url: &str) -> Result<(String, Vec<String>)> {
    let Some(scheme_end) = url.find("://") else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    if !authority.contains(',') {
        return Ok((url.to_owned(), Vec::new()));
    }
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
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
        return Err(config_error(
            "the store URL's host list has an empty or malformed entry",
        ));
    }
    Ok((format!("{head}{userinfo}{first}{tail}"), extra))
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message)
}

fn option_error(key: &str, expected: &str) -> Error {
    config_error(format!("the store URL option `{key}` must be {expected}"))
}

/// The longest duration an option takes: 100 years. Longer values are an error, not a
/// timer that overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses `30s`, `10m`, `1h 30m`, or a bare number of milliseconds (the seeds' unit), up to
/// [`MAX_DURATION`].
///
/// # Errors
///
/// [`ErrorKind::Config`] naming `what` when the text is not a duration or is longer than
/// [`MAX_DURATION`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::parse_duration;
///
/// assert_eq!(parse_duration("timeout", "1500")?, Duration::from_millis(1500));
/// assert_eq!(parse_duration("timeout", "2m")?, Duration::from_secs(120));
/// assert!(parse_duration("cleanup_time", "580000000000y").is_err());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub fn parse_duration(what: &str, text: &str) -> Result<Duration> {
    let text = text.trim();
    let parsed = match text.parse::<u64>() {
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => humantime::parse_duration(text).ok(),
    };
    match parsed {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(option_error(
            what,
            "a duration such as 30s, 10m or 2h, or milliseconds, of at most 100 years",
        )),
    }
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
        let mut text = String::new();
        for (i, (k, v)) in url.query_pairs().enumerate() {
            let secret = ["pass", "secret", "token", "key"]
                .iter()
                .any(|s| k.to_ascii_lowercase().contains(s));
            if i > 0 {
                text.push('&');
            }
            text.push_str(&k);
            text.push('=');
            text.push_str(if secret { "***" } else { &v });
        }
        shown.set_query(Some(&text));
    }
    shown.to_string()
}
