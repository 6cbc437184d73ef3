//! `disk://` URLs and options, and the builder that opens a [`DiskStore`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use sessionbank_core::{Action, CommonOptions, DEFAULT_BROWSER_IDLE, Error, ErrorKind, OpenFuture, Result,
    SharedClock, Store, UrlOptions, system_clock,
};
use url::Url;

use crate::error::{self, BACKEND};
use crate::layout::{EXPIRY, OWNERS, SESSIONS};
use crate::store::{DiskStore, Inner};
use crate::writer::Writer;

/// Default largest encoded record: 1 MiB.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_disk::DEFAULT_MAX_RECORD_BYTES, 1 << 20);
/// ```
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The name of the database file inside the store's directory.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_store_disk::DATABASE_FILE, "sessions.redb");
/// ```
pub const DATABASE_FILE: &str = "sessions.redb";

/// Builds a [`DiskStore`]: the directory, and the options a `disk://` URL can carry.
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

    /// Reads a `disk:` URL and its options: `disk:///absolute/dir` or `disk:relative/dir`
    /// (relative to the working directory), with `max_record_bytes` taken from `options` and
    /// `browser_idle` from `common`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a URL with a host, without a path, with a fragment, or a
    /// `max_record_bytes` that is not a whole number above zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_core::{CommonOptions, UrlOptions};
    /// use sessionbank_store_disk::DiskStoreBuilder;
    ///
    /// let url = url::Url::parse("disk:///var/lib/app/sessions?max_record_bytes=4096")?;
    /// let mut options = UrlOptions::from_url(&url)?;
    /// let builder = DiskStoreBuilder::from_url(&url, &mut options, &CommonOptions::default())?;
    /// assert_eq!(builder.dir(), std::path::Path::new("/var/lib/app/sessions"));
    /// options.finish("disk")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_url(url: &Url, options: &mut UrlOptions, common: &CommonOptions) -> Result<Self> {
        let mut builder = Self::new(dir_from_url(url)?).browser_idle(common.browser_idle);
        if let Some(max) = options.take_u64("max_record_bytes")? {
            if max == 0 {
                return Err(config_error(
                    "the store URL option `max_record_bytes` must be above zero",
                ));
            }
            builder = builder.max_record_bytes(usize::try_from(max).unwrap_or(usize::MAX));
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
    /// See [`DiskStoreBuilder::from_url`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings as a `disk:` URL that [`from_url`](Self::from_url) reads back (with the
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

    /// Creates the directory if missing, opens (or creates) the database file in it and starts
    /// the writer thread.
    ///
    /// # Examples
    ///
    /// See [`DiskStoreBuilder`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the directory or file cannot be created or opened, or when
    /// another process (or another `DiskStore` in this process) has the store open; the message
    /// says so and the error's target is the directory. [`ErrorKind::Corrupt`] when the file is
    /// not a database redb can read.
    pub async fn open(self) -> Result<DiskStore> {
        tokio::task::spawn_blocking(move || self.open_blocking())
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    Action::Connect,
                    "the blocking open task did not complete",
                )
                .with_backend(BACKEND)
                .with_source(e)
            })?
    }

    fn open_blocking(self) -> Result<DiskStore> {
        let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                Action::Connect,
                "cannot create the store's directory",
            )
            .with_backend(BACKEND)
            .with_target(error::target(&dir))
            .with_source(e)
        })?;
        let file = dir.join(DATABASE_FILE);
        let db = redb::Database::builder()
            .create(&file)
            .map_err(|e| open_error(&dir, e))?;
        let tx = db
            .begin_write()
            .map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
        {
            let created = tx
                .open_table(SESSIONS)
                .and_then(|_| tx.open_table(EXPIRY))
                .and_then(|_| tx.open_table(OWNERS));
            created.map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
        }
        tx.commit()
            .map_err(|e| error::from_redb(Action::Setup, &dir, e))?;
        let db = Arc::new(db);
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            dir: dir.clone(),
            browser_idle: self.browser_idle,
            clock: self.clock.clone(),
            max_record_bytes: self.max_record_bytes,
        };
        let thread = std::thread::Builder::new()
            .name("sessionbank-disk-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    Action::Connect,
                    "cannot start the writer thread",
                )
                .with_backend(BACKEND)
                .with_target(error::target(&dir))
                .with_source(e)
            })?;
        tracing::debug!(target: "sessionbank::disk", dir = %dir.display(), "disk store opened");
        Ok(DiskStore {
            inner: Arc::new(Inner {
                db,
                dir,
                file,
                max_record_bytes: self.max_record_bytes,
                browser_idle: self.browser_idle,
                clock: self.clock,
                sender: Some(sender),
                thread: Some(thread),
            }),
        })
    }
}

fn open_error(dir: &Path, err: redb::DatabaseError) -> Error {
    if matches!(err, redb::DatabaseError::DatabaseAlreadyOpen) {
        let error = Error::new(
            ErrorKind::Unavailable,
            Action::Connect,
            format!(
                "the disk store at {} is already open by another process (or by another DiskStore \
                 in this process); only one may have it open at a time",
                dir.display()
            ),
        )
        .with_backend(BACKEND)
        .with_target(error::target(dir))
        .with_source(err);
        tracing::warn!(target: "sessionbank::disk", error = %error, "disk store error");
        return error;
    }
    error::from_redb(Action::Connect, dir, err)
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

/// The opener registered under `disk`.
pub(crate) fn open_disk(
    url: &Url,
    options: &mut UrlOptions,
    common: &CommonOptions,
) -> Result<OpenFuture> {
    let builder = DiskStoreBuilder::from_url(url, options, common)?;
    Ok(Box::pin(async move {
        let store: Arc<dyn Store> = Arc::new(builder.open().await?);
        Ok(store)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DiskStoreBuilder> {
        let url = Url::parse(text).unwrap();
        let mut options = UrlOptions::from_url(&url)?;
        let common = CommonOptions::take_from(&mut options)?;
        let builder = DiskStoreBuilder::from_url(&url, &mut options, &common)?;
        options.finish("disk")?;
        Ok(builder)
    }

    #[test]
    fn to_url_reads_back() {
        for dir in ["/var/lib/a b/s#1", "rel/dir?x", "/tmp/100%"] {
            let builder = DiskStoreBuilder::new(dir.into())
                .max_record_bytes(777)
                .browser_idle(Duration::from_secs(90));
            let back = parse(&builder.to_url()).unwrap();
            assert_eq!(back.dir(), Path::new(dir), "{}", builder.to_url());
            assert_eq!(back.max_record_bytes, 777);
            assert_eq!(back.browser_idle, Duration::from_secs(90));
        }
    }

    #[test]
    fn paths_and_options_parse() {
        assert_eq!(parse("disk:///srv/s").unwrap().dir(), Path::new("/srv/s"));
        assert_eq!(parse("disk:/srv/s").unwrap().dir(), Path::new("/srv/s"));
        assert_eq!(parse("disk:s").unwrap().dir(), Path::new("s"));
        assert_eq!(parse("disk:./a/../b").unwrap().dir(), Path::new("./a/../b"));
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
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }
}
