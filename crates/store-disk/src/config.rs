//! [`DiskStoreBuilder`]: a disk store's directory and options, from code or from a `disk:` URL.
//! Opening it ([`DiskStoreBuilder::open`]) lives with the store, in `store.rs`.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use sessionbank_core::{
    Action, DEFAULT_BROWSER_IDLE, Error, ErrorKind, Result, SharedClock, StoreUrl, parse_builder,
    system_clock,
};
use url::Url;

use crate::error::BACKEND;

/// Default largest encoded record: 1 MiB.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_disk::DEFAULT_MAX_RECORD_BYTES, 1 << 20);
/// ```
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The values the URL option `max_record_bytes` takes: 1 byte to 1 GiB.
const MAX_RECORD_BYTES_RANGE: RangeInclusive<usize> = 1..=(1 << 30);

/// The name of the database file inside the store's directory.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_disk::DATABASE_FILE, "sessions.redb");
/// ```
pub const DATABASE_FILE: &str = "sessions.redb";

/// Builds a [`DiskStore`](crate::DiskStore): the directory, and the options a `disk:` URL can
/// carry. Start from [`DiskStore::builder`](crate::DiskStore::builder) in code or
/// [`DiskStoreBuilder::parse`] for a URL, then [`open`](Self::open) it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_store_disk::DiskStore;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = DiskStore::builder(dir.path().join("sessions"))
///     .max_record_bytes(64 * 1024)
///     .browser_idle(Duration::from_secs(3600))
///     .open()
///     .await?;
/// assert_eq!(store.max_record_bytes(), 64 * 1024);
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DiskStoreBuilder {
    dir: PathBuf,
    max_record_bytes: usize,
    browser_idle: Duration,
    clock: SharedClock,
}

impl DiskStoreBuilder {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            browser_idle: DEFAULT_BROWSER_IDLE,
            clock: system_clock(),
        }
    }

    /// Reads a `disk:` URL: `disk:///absolute/dir` or `disk:relative/dir` (relative to the
    /// working directory), with the options `max_record_bytes` (1 to 1 GiB) and `browser_idle`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for another scheme, a URL with a host, without a path, with a
    /// fragment, a `max_record_bytes` out of its range, or an unknown option (the registry's
    /// own `cleanup_time` and `coalesce` included: a store opened directly runs no janitor).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::ErrorKind;
    /// use sessionbank_store_disk::DiskStoreBuilder;
    ///
    /// let builder = DiskStoreBuilder::parse("disk:///var/lib/app/sessions?max_record_bytes=4096")?;
    /// assert_eq!(builder.get_dir(), std::path::Path::new("/var/lib/app/sessions"));
    /// assert_eq!(builder.get_max_record_bytes(), 4096);
    /// let err = DiskStoreBuilder::parse("disk:///srv/s?cleanup_time=10m").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        parse_builder(text)
    }

    /// Takes the directory and this backend's options from `url` (what is left, the caller
    /// rejects).
    pub(crate) fn read_url(url: &mut StoreUrl) -> Result<Self> {
        let mut builder = Self::new(dir_from_url(url.url())?).browser_idle(url.browser_idle());
        if let Some(max) = url.take_usize("max_record_bytes", MAX_RECORD_BYTES_RANGE)? {
            builder = builder.max_record_bytes(max);
        }
        Ok(builder)
    }

    /// The largest encoded record accepted (default 1 MiB); a larger one is refused with
    /// [`ErrorKind::TooLarge`] and nothing is written.
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder`].
    #[must_use]
    pub fn max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// How long a browser session (no expiry) lives after its last access (default one day).
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder`].
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
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// let builder = DiskStore::builder("sessions").clock(Arc::new(ManualClock::starting_now()));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The directory the store lives in, as given (relative paths are resolved against the
    /// working directory when the store opens).
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder::parse`].
    pub fn get_dir(&self) -> &Path {
        &self.dir
    }

    /// The largest encoded record the store will accept.
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder::parse`].
    pub fn get_max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// How long a browser session will live after its last access.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_store_disk::DiskStoreBuilder;
    ///
    /// let builder = DiskStoreBuilder::parse("disk:s?browser_idle=2h")?;
    /// assert_eq!(builder.get_browser_idle(), Duration::from_secs(7200));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn get_browser_idle(&self) -> Duration {
        self.browser_idle
    }

    /// The clock the store will use.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// let builder = DiskStore::builder("sessions");
    /// assert!(builder.get_clock().now().as_millis() > 0);
    /// ```
    pub fn get_clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The settings as a `disk:` URL that [`parse`](Self::parse) reads back (with the
    /// `browser_idle` in milliseconds). A disk URL holds no secret, so there is nothing to redact.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_disk::DiskStore;
    ///
    /// let builder = DiskStore::builder("/var/lib/app/my sessions").max_record_bytes(4096);
    /// assert_eq!(
    ///     builder.to_url(),
    ///     "disk:///var/lib/app/my%20sessions?max_record_bytes=4096&browser_idle=86400000"
    /// );
    /// assert_eq!(DiskStore::builder("var/s").to_url().split('?').next(), Some("disk:var/s"));
    /// ```
    pub fn to_url(&self) -> String {
        let path = self.dir.to_string_lossy();
        let path = utf8_percent_encode(&path, PATH_ESCAPES);
        let head = if self.dir.has_root() {
            format!("disk://{path}")
        } else {
            format!("disk:{path}")
        };
        format!(
            "{head}?max_record_bytes={}&browser_idle={}",
            self.max_record_bytes,
            self.browser_idle.as_millis()
        )
    }
}

/// Characters escaped in the path of a `disk:` URL.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'?');

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Config, Action::ParseUrl, message).with_backend(BACKEND)
}

/// The directory a `disk:` URL names.
fn dir_from_url(url: &Url) -> Result<PathBuf> {
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(config_error(
            "a disk URL takes no host: write disk:///absolute/dir or disk:relative/dir",
        ));
    }
    if url.fragment().is_some() {
        return Err(config_error("a disk URL takes no #fragment"));
    }
    let raw = url.path();
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| config_error("the path of a disk URL must be UTF-8 once percent-decoded"))?;
    let path = decoded.trim();
    if path.is_empty() || (!url.cannot_be_a_base() && path == "/") {
        return Err(config_error(
            "a disk URL needs a directory: write disk:///absolute/dir or disk:relative/dir",
        ));
    }
    if path.contains('\0') {
        return Err(config_error("the path of a disk URL must not contain NUL"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DiskStoreBuilder> {
        DiskStoreBuilder::parse(text)
    }

    #[test]
    fn to_url_reads_back() {
        for dir in ["/var/lib/a b/s#1", "rel/dir?x", "/tmp/100%"] {
            let builder = DiskStoreBuilder::new(dir.into())
                .max_record_bytes(777)
                .browser_idle(Duration::from_secs(90));
            let back = parse(&builder.to_url()).unwrap();
            assert_eq!(back.get_dir(), Path::new(dir), "{}", builder.to_url());
            assert_eq!(back.max_record_bytes, 777);
            assert_eq!(back.browser_idle, Duration::from_secs(90));
        }
    }

    #[test]
    fn paths_and_options_parse() {
        assert_eq!(
            parse("disk:///srv/s").unwrap().get_dir(),
            Path::new("/srv/s")
        );
        assert_eq!(parse("disk:/srv/s").unwrap().get_dir(), Path::new("/srv/s"));
        assert_eq!(parse("disk:s").unwrap().get_dir(), Path::new("s"));
        assert_eq!(
            parse("disk:./a/../b").unwrap().get_dir(),
            Path::new("./a/../b")
        );
        let b = parse("disk:s?max_record_bytes=10&browser_idle=5m").unwrap();
        assert_eq!(
            (b.max_record_bytes, b.browser_idle),
            (10, Duration::from_secs(300))
        );
        for bad in [
            "disk://h/s",
            "disk:",
            "disk:///",
            "disk://",
            "disk:s#f",
            "disk:s?x=1",
            "disk:s?max_record_bytes=2000000000",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }
}
