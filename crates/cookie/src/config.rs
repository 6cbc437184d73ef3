//! [`CookieConfig`]: the session cookie's name, attributes and format.

use std::fmt;
use std::sync::Arc;

use cookie::{Cookie, SameSite};
use sessionbank_core::{SessionId, Timestamp};

use crate::format::{
    CookieFormat, DEFAULT_MAX_HEADER_LEN, NativeFormat, Rejection, RequestCookies, Verified,
};
use crate::key::KeyRing;

/// The default cookie name: `id`. A name that says nothing about the framework behind it, as
/// OWASP's session management guide recommends (Express uses `connect.sid`, Koa `koa.sess`;
/// set those with [`CookieConfig::name`] when sharing sessions with such an app).
pub const DEFAULT_COOKIE_NAME: &str = "id";

/// The session cookie: name, attributes, signing format and parsing limits.
///
/// Defaults: name [`DEFAULT_COOKIE_NAME`] (`id`), `Path=/`, no `Domain`, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, persistent (`Max-Age` follows the session's expiry), [`NativeFormat`], and
/// `Cookie` headers up to [`DEFAULT_MAX_HEADER_LEN`] bytes.
///
/// Browsers do not send `Secure` cookies over plain HTTP, so for a development server on
/// `http://localhost` switch it off with `.secure(false)`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_cookie::{CookieConfig, KeyRing};
/// use sessionbank_core::{SessionId, Timestamp};
///
/// let config = CookieConfig::new().name("sid").secure(false);
/// let keys = KeyRing::generate()?;
/// let now = Timestamp::now();
/// let cookies = config.set_cookies(&SessionId::generate()?, Some(now + Duration::from_secs(60)), now, &keys);
/// let text = cookies[0].to_string();
/// assert!(text.starts_with("sid="));
/// assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax") && text.contains("Max-Age=60"));
/// assert!(!text.contains("Secure"));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CookieConfig {
    /// The name on the wire: `base_name`, behind `__Host-` when `host_prefix` is on.
    name: String,
    base_name: String,
    host_prefix: bool,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    persistent: bool,
    format: Arc<dyn CookieFormat>,
    max_header_len: usize,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_COOKIE_NAME.to_owned(),
            base_name: DEFAULT_COOKIE_NAME.to_owned(),
            host_prefix: false,
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
            format: Arc::new(NativeFormat),
            max_header_len: DEFAULT_MAX_HEADER_LEN,
        }
    }
}

impl CookieConfig {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the cookie name. It must be an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.base_name = name.into();
        self.name = self.wire_name();
        self
    }

    /// Puts the cookie behind the `__Host-` prefix (default off): browsers then accept it only
    /// with `Secure`, `Path=/` and no `Domain`, from a secure origin, so a sibling subdomain or a
    /// plain-HTTP page cannot plant or overwrite it. While it is on, those three attributes are
    /// forced whatever [`secure`](Self::secure), [`path`](Self::path) and
    /// [`domain`](Self::domain) say.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{CookieConfig, KeyRing};
    /// use sessionbank_core::{SessionId, Timestamp};
    ///
    /// let config = CookieConfig::new().name("sid").host_prefix(true).secure(false).path("/app");
    /// assert_eq!(config.cookie_name(), "__Host-sid");
    /// let keys = KeyRing::generate()?;
    /// let cookie = config.set_cookies(&SessionId::generate()?, None, Timestamp::now(), &keys).remove(0);
    /// assert_eq!((cookie.name(), cookie.secure(), cookie.path()), ("__Host-sid", Some(true), Some("/")));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    #[must_use]
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = on;
        self.name = self.wire_name();
        self
    }

    fn wire_name(&self) -> String {
        if self.host_prefix {
            format!("__Host-{}", self.base_name)
        } else {
            self.base_name.clone()
        }
    }

    /// Sets the `Path` attribute (default `/`).
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the `Domain` attribute (default none: the cookie goes back to this host only).
    #[must_use]
    pub fn domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    /// Sets the `Secure` attribute (default on). Switch it off only for plain-HTTP development.
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the `HttpOnly` attribute (default on: scripts cannot read the cookie).
    #[must_use]
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets the `SameSite` attribute (default `Lax`).
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// `true` (the default): the cookie carries `Max-Age` from the session's expiry and survives
    /// a browser restart. `false`: a browser-session cookie without `Max-Age`, gone when the
    /// browser closes (the session in the store still expires by its policy).
    #[must_use]
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Whether the cookie format signs with short legacy secrets (the Node formats).
    pub(crate) fn accepts_legacy_keys(&self) -> bool {
        self.format.accepts_legacy_keys()
    }

    /// Sets the signing format (default [`NativeFormat`]).
    #[must_use]
    pub fn format(mut self, format: impl CookieFormat + 'static) -> Self {
        self.format = Arc::new(format);
        self
    }

    /// Sets the longest `Cookie` header parsed at all (default [`DEFAULT_MAX_HEADER_LEN`]).
    #[must_use]
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.max_header_len = max;
        self
    }

    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.name
    }

    /// Whether cookies are marked `Secure` (always, behind the `__Host-` prefix).
    pub fn is_secure(&self) -> bool {
        self.secure || self.host_prefix
    }

    /// Whether cookies carry `Max-Age`.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The signing format.
    pub fn cookie_format(&self) -> &dyn CookieFormat {
        &*self.format
    }

    /// Parses a request's `Cookie` header values and verifies the session cookie: `Ok(None)`
    /// when none was sent.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when the headers are too large, or the session cookie is malformed or
    /// does not verify with any key of `keys`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{CookieConfig, KeyRing};
    /// use sessionbank_core::SessionId;
    ///
    /// let config = CookieConfig::new();
    /// let keys = KeyRing::generate()?;
    /// let id = SessionId::generate()?;
    /// let cookie = config.set_cookies(&id, None, sessionbank_core::Timestamp::now(), &keys).remove(0);
    /// let header = format!("theme=dark; {}", cookie.stripped());
    /// assert_eq!(config.read([header.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
    /// assert_eq!(config.read(["theme=dark"], &keys), Ok(None));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn read<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a str>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection> {
        let cookies = RequestCookies::parse(headers, self.max_header_len)?;
        self.format.decode(&self.name, &cookies, keys)
    }

    /// The `Set-Cookie` cookies that carry `id`, signed with the newest key of `keys`. With
    /// persistent cookies and an `expires_at`, `Max-Age` is the whole seconds from `now` to it.
    pub fn set_cookies(
        &self,
        id: &SessionId,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        keys: &KeyRing,
    ) -> Vec<Cookie<'static>> {
        let max_age = match expires_at {
            Some(at) if self.persistent => {
                let secs = i64::try_from(at.duration_since(now).as_secs()).unwrap_or(i64::MAX);
                Some(cookie::time::Duration::seconds(secs))
            }
            _ => None,
        };
        self.format
            .encode(&self.name, id, keys)
            .into_iter()
            .map(|(name, value)| {
                let mut cookie = self.base(name, value);
                if let Some(max_age) = max_age {
                    cookie.set_max_age(max_age);
                }
                cookie
            })
            .collect()
    }

    /// Cookies that make the browser drop the session cookie(s): empty value, `Max-Age=0` and an
    /// `Expires` in the past, with the same path and domain.
    ///
    /// # Examples
    ///
    /// ```
    /// let removal = sessionbank_cookie::CookieConfig::new().removal_cookies().remove(0).to_string();
    /// assert!(removal.starts_with("id=;") && removal.contains("Max-Age=0"));
    /// ```
    pub fn removal_cookies(&self) -> Vec<Cookie<'static>> {
        self.format
            .cookie_names(&self.name)
            .into_iter()
            .map(|name| {
                let mut cookie = self.base(name, String::new());
                cookie.make_removal();
                cookie
            })
            .collect()
    }

    fn base(&self, name: String, value: String) -> Cookie<'static> {
        let path = if self.host_prefix {
            "/"
        } else {
            self.path.as_str()
        };
        let mut builder = Cookie::build((name, value))
            .path(path.to_owned())
            .secure(self.is_secure())
            .http_only(self.http_only)
            .same_site(self.same_site);
        if let (Some(domain), false) = (&self.domain, self.host_prefix) {
            builder = builder.domain(domain.clone());
        }
        builder.build()
    }
}

impl fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("host_prefix", &self.host_prefix)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("persistent", &self.persistent)
            .field("format", &self.format)
            .field("max_header_len", &self.max_header_len)
            .finish()
    }
}
