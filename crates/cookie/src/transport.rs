//! [`Transport`]: how the signed session id travels, in a cookie ([`CookieConfig`]) or in a
//! request/response header for API clients that keep no cookies ([`HeaderConfig`]).

use std::fmt;

use sessionbank_core::{Action, Error, ErrorKind, Result, SessionId, Timestamp};

use crate::config::CookieConfig;
use crate::format::{Rejection, Verified, first_verified, sign_native, verify_native};
use crate::key::KeyRing;

/// The request header [`HeaderConfig::bearer`] reads: `authorization`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The scheme [`HeaderConfig::bearer`] expects before the token: `Bearer` (matched
/// case-insensitively).
pub const BEARER_SCHEME: &str = "Bearer";

/// The response header [`HeaderConfig::bearer`] sends a new token in: `x-session-token`.
pub const DEFAULT_RESPONSE_HEADER: &str = "x-session-token";

/// A header-based transport for API clients: the signed session token comes in a request
/// header and a new one goes out in a response header, whenever it changes.
///
/// The token is the native signed value `ID.SIG` (see [`NativeFormat`](crate::NativeFormat)),
/// signed over the context `header:<request header name>` instead of a cookie name: a session
/// cookie's value does not verify as a header token, nor a token as a cookie.
///
/// - Request: every value of the request header is looked at; with a scheme (`Bearer`), values
///   of another scheme (`Basic ...`) are not tokens and are skipped; empty values too. The first
///   token that verifies wins. A token longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN),
///   malformed, or with a bad signature is a [`Rejection`], and the adapters start a fresh
///   session, as for a bad cookie.
/// - Response: the response header carries the token when the session is new, got a new id or
///   was re-signed with the newest key. A token has no expiry, so a moved expiry alone never
///   re-sends it. When the session is destroyed, the response header is sent with an **empty
///   value**: the client should forget its token.
///
/// Header names are HTTP tokens, kept lowercase.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{HeaderConfig, KeyRing};
/// use sessionbank_core::SessionId;
///
/// let keys = KeyRing::generate()?;
/// let config = HeaderConfig::bearer();
/// assert_eq!(config.request_header_name(), "authorization");
/// assert_eq!(config.response_header_name(), "x-session-token");
///
/// let id = SessionId::generate()?;
/// let token = config.token(&id, &keys);
/// let header = format!("bearer {token}"); // the scheme in any case
/// assert_eq!(config.read([header.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
/// assert_eq!(config.read(["Basic dXNlcjpwdw=="], &keys), Ok(None), "not a session token");
///
/// let api = HeaderConfig::custom("X-Api-Session")?;
/// assert_eq!(api.request_header_name(), "x-api-session");
/// assert!(HeaderConfig::custom("bad name").is_err());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderConfig {
    request_header: String,
    scheme: Option<String>,
    response_header: String,
    /// `header:<request_header>`: what the token is signed over.
    context: String,
}

impl HeaderConfig {
    /// `Authorization: Bearer <token>` on requests, `x-session-token: <token>` on responses.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = sessionbank_cookie::HeaderConfig::bearer();
    /// assert_eq!(config.scheme(), Some("Bearer"));
    /// ```
    pub fn bearer() -> Self {
        Self {
            request_header: AUTHORIZATION_HEADER.to_owned(),
            scheme: Some(BEARER_SCHEME.to_owned()),
            response_header: DEFAULT_RESPONSE_HEADER.to_owned(),
            context: format!("header:{AUTHORIZATION_HEADER}"),
        }
    }

    /// One custom header, used both ways, carrying the bare token (no scheme), e.g.
    /// `x-session-token`. The name is lowercased.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `name` is not an HTTP token (empty, spaces, `:`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::HeaderConfig;
    ///
    /// let config = HeaderConfig::custom("X-Session-Token")?;
    /// assert_eq!(config.request_header_name(), "x-session-token");
    /// assert_eq!(config.response_header_name(), "x-session-token");
    /// assert_eq!(config.scheme(), None);
    /// assert_eq!(HeaderConfig::custom("").unwrap_err().kind(), sessionbank_core::ErrorKind::Config);
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn custom(name: &str) -> Result<Self> {
        let name = header_name(name)?;
        Ok(Self {
            context: format!("header:{name}"),
            response_header: name.clone(),
            request_header: name,
            scheme: None,
        })
    }

    /// Sets the response header the token goes out in (lowercased).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `name` is not an HTTP token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::HeaderConfig;
    ///
    /// let config = HeaderConfig::bearer().response_header("X-New-Token")?;
    /// assert_eq!(config.response_header_name(), "x-new-token");
    /// assert!(HeaderConfig::bearer().response_header("x-new token").is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn response_header(mut self, name: &str) -> Result<Self> {
        self.response_header = header_name(name)?;
        Ok(self)
    }

    /// The request header the token is read from (lowercase).
    pub fn request_header_name(&self) -> &str {
        &self.request_header
    }

    /// The response header a new token is sent in (lowercase).
    pub fn response_header_name(&self) -> &str {
        &self.response_header
    }

    /// The scheme expected before the token in the request header (`Bearer`), if any.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The token for `id`, signed with the newest key of `keys`: `ID.SIG`, 76 characters of
    /// `[A-Za-z0-9_.-]`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, KeyRing};
    /// use sessionbank_core::SessionId;
    ///
    /// let id = SessionId::generate()?;
    /// let token = HeaderConfig::bearer().token(&id, &KeyRing::generate()?);
    /// assert_eq!(token.len(), 76);
    /// assert!(token.starts_with(id.as_str()));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn token(&self, id: &SessionId, keys: &KeyRing) -> String {
        sign_native(&self.context, id, keys)
    }

    /// Reads and verifies the token from a request's values of the request header: `Ok(None)`
    /// when none was sent (no value, only empty values, or only values of another scheme).
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when a token was sent but none verifies: the first failure (too large,
    /// malformed, or a bad signature).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, KeyRing, Rejection};
    /// use sessionbank_core::SessionId;
    ///
    /// let keys = KeyRing::generate()?;
    /// let config = HeaderConfig::custom("x-api-session")?;
    /// let id = SessionId::generate()?;
    /// let token = config.token(&id, &keys);
    /// assert_eq!(config.read(["forged", token.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
    /// assert_eq!(config.read(["forged"], &keys), Err(Rejection::Malformed));
    /// // A token signed for another header does not verify here.
    /// let other = HeaderConfig::bearer().token(&id, &keys);
    /// assert_eq!(config.read([other.as_str()], &keys), Err(Rejection::BadSignature));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn read<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
        keys: &KeyRing,
    ) -> std::result::Result<Option<Verified>, Rejection> {
        first_verified(
            values
                .into_iter()
                .filter_map(|value| self.credentials(value)),
            |token| verify_native(&self.context, token, keys),
        )
    }

    /// The token in one header value: `None` when the value is empty or of another scheme.
    fn credentials<'v>(&self, value: &'v str) -> Option<&'v str> {
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() {
            return None;
        }
        let Some(scheme) = &self.scheme else {
            return Some(value);
        };
        let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
        given
            .eq_ignore_ascii_case(scheme)
            .then(|| rest.trim_start_matches(' '))
    }
}

impl fmt::Debug for HeaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderConfig")
            .field("request_header", &self.request_header)
            .field("scheme", &self.scheme)
            .field("response_header", &self.response_header)
            .finish()
    }
}

/// Checks that `name` is an HTTP token (RFC 9110 `tchar`s) and lowercases it.
fn header_name(name: &str) -> Result<String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(Error::new(
            ErrorKind::Config,
            Action::Cookie,
            format!(
                "`{}` is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
                name.escape_debug()
            ),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// One header of a response, as [`Transport::issue`] and [`Transport::revoke`] return them: `set-cookie` with the
/// cookie's text, or the [`HeaderConfig`]'s response header with the token (or an empty value,
/// "forget your token"). Its `Debug` shows the value's length only.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieConfig, Transport};
///
/// let removal = Transport::from(CookieConfig::new()).revoke().remove(0);
/// assert_eq!(removal.name, "set-cookie");
/// assert!(removal.value.starts_with("id=;"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The header name, lowercase.
    pub name: String,
    /// The header value.
    pub value: String,
}

impl ResponseHeader {
    /// The header as a web framework's name and value types, built by `name` and `value`
    /// (e.g. `http::HeaderName::from_bytes` and `http::HeaderValue::from_str`): the one
    /// conversion every adapter makes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when the framework refuses the name or the value (a cookie
    /// name, path or domain with characters a header cannot carry).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::ResponseHeader;
    ///
    /// let header = ResponseHeader { name: "x-session-token".into(), value: "abc".into() };
    /// let (name, value) = header.to_parts(
    ///     |n| std::str::from_utf8(n).map(str::to_owned),
    ///     |v| if v.contains('\n') { Err(()) } else { Ok(v.to_owned()) },
    /// )?;
    /// assert_eq!((name.as_str(), value.as_str()), ("x-session-token", "abc"));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn to_parts<N, V, A, B>(
        &self,
        name: impl FnOnce(&[u8]) -> std::result::Result<N, A>,
        value: impl FnOnce(&str) -> std::result::Result<V, B>,
    ) -> Result<(N, V)> {
        let invalid = || {
            Error::new(
                ErrorKind::InvalidInput,
                Action::Cookie,
                "the session cookie or token is not a valid header; check the cookie name, path and domain",
            )
        };
        let name = name(self.name.as_bytes()).map_err(|_| invalid())?;
        let value = value(&self.value).map_err(|_| invalid())?;
        Ok((name, value))
    }
}

impl fmt::Debug for ResponseHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHeader")
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

/// How the signed session id travels between client and server: in a cookie (the default, for
/// browsers) or in a header (for API clients). The web adapters hold one and ask it which
/// request header to read and which response headers to send.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieConfig, HeaderConfig, KeyRing, Transport};
/// use sessionbank_core::{SessionId, Timestamp};
///
/// let keys = KeyRing::generate()?;
/// let id = SessionId::generate()?;
/// let now = Timestamp::now();
///
/// let cookie = Transport::default();
/// assert_eq!(cookie.request_header(), "cookie");
/// assert_eq!(cookie.issue(&id, None, now, &keys)[0].name, "set-cookie");
///
/// let header = Transport::from(HeaderConfig::bearer());
/// assert_eq!(header.request_header(), "authorization");
/// let issued = header.issue(&id, None, now, &keys).remove(0);
/// assert_eq!(issued.name, "x-session-token");
/// let sent = format!("Bearer {}", issued.value);
/// assert_eq!(header.read([sent.as_str()], &keys).unwrap().map(|v| v.id), Some(id));
/// assert_eq!(header.revoke()[0].value, "", "an empty value: forget the token");
/// assert!(!header.is_persistent());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum Transport {
    /// A signed cookie: `Cookie` in, `Set-Cookie` out.
    Cookie(CookieConfig),
    /// A token in a request header, a new one in a response header.
    Header(HeaderConfig),
}

impl Default for Transport {
    /// A cookie with [`CookieConfig::default`].
    fn default() -> Self {
        Transport::Cookie(CookieConfig::default())
    }
}

impl From<CookieConfig> for Transport {
    fn from(config: CookieConfig) -> Self {
        Transport::Cookie(config)
    }
}

impl From<HeaderConfig> for Transport {
    fn from(config: HeaderConfig) -> Self {
        Transport::Header(config)
    }
}

impl Transport {
    /// The request header that carries the session: `cookie`, or the [`HeaderConfig`]'s
    /// request header (lowercase).
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, Transport};
    ///
    /// assert_eq!(Transport::default().request_header(), "cookie");
    /// let custom = Transport::from(HeaderConfig::custom("X-Api-Session")?);
    /// assert_eq!(custom.request_header(), "x-api-session");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn request_header(&self) -> &str {
        match self {
            Transport::Cookie(_) => "cookie",
            Transport::Header(config) => config.request_header_name(),
        }
    }

    /// Verifies the session id from the request's values of
    /// [`request_header`](Self::request_header): `Ok(None)` when none was sent. See
    /// [`CookieConfig::read`] and [`HeaderConfig::read`].
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when a cookie or token was sent but is oversized, malformed or does not
    /// verify with any key of `keys`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, KeyRing, Rejection, Transport};
    ///
    /// let keys = KeyRing::generate()?;
    /// assert_eq!(Transport::default().read(["theme=dark"], &keys), Ok(None));
    /// let bearer = Transport::from(HeaderConfig::bearer());
    /// assert_eq!(bearer.read(["Bearer forged"], &keys), Err(Rejection::Malformed));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn read<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
        keys: &KeyRing,
    ) -> std::result::Result<Option<Verified>, Rejection> {
        match self {
            Transport::Cookie(config) => config.read(values, keys),
            Transport::Header(config) => config.read(values, keys),
        }
    }

    /// The response headers that give the client `id`, signed with the newest key: the
    /// `Set-Cookie` cookies (with `Max-Age` up to `expires_at` when persistent, see
    /// [`CookieConfig::set_cookies`]), or the response header with the token (a token carries
    /// no expiry: `expires_at` and `now` are not used).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessionbank_cookie::{HeaderConfig, KeyRing, Transport};
    /// use sessionbank_core::{SessionId, Timestamp};
    ///
    /// let (keys, id, now) = (KeyRing::generate()?, SessionId::generate()?, Timestamp::now());
    /// let later = Some(now + Duration::from_secs(60));
    /// let cookie = Transport::default().issue(&id, later, now, &keys).remove(0);
    /// assert!(cookie.value.contains("Max-Age=60"));
    /// let token = Transport::from(HeaderConfig::bearer()).issue(&id, later, now, &keys).remove(0);
    /// assert_eq!((token.name.as_str(), token.value.len()), ("x-session-token", 76));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn issue(
        &self,
        id: &SessionId,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        keys: &KeyRing,
    ) -> Vec<ResponseHeader> {
        match self {
            Transport::Cookie(config) => config
                .set_cookies(id, expires_at, now, keys)
                .iter()
                .map(set_cookie)
                .collect(),
            Transport::Header(config) => vec![ResponseHeader {
                name: config.response_header_name().to_owned(),
                value: config.token(id, keys),
            }],
        }
    }

    /// Checks that `keys` suit this transport: sessionbank's own cookie format and header
    /// tokens need every key to have at least [`MIN_KEY_LEN`](crate::MIN_KEY_LEN) bytes of key
    /// material; short [legacy](crate::Key::is_legacy) secrets are for the Express and Koa
    /// formats only. The web core runs this before it signs anything.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the first short key (its position in the ring, newest
    /// first, and its length) and what to use instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{CookieConfig, ExpressFormat, Key, KeyRing, Transport};
    ///
    /// let legacy = KeyRing::new(Key::from_legacy_secret("keyboard cat")?);
    /// assert!(Transport::default().check_keys(&legacy).is_err());
    /// let express = Transport::from(CookieConfig::new().format(ExpressFormat));
    /// assert!(express.check_keys(&legacy).is_ok());
    /// assert!(Transport::default().check_keys(&KeyRing::generate()?).is_ok());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn check_keys(&self, keys: &KeyRing) -> Result<()> {
        let (accepts_legacy, what) = match self {
            Transport::Cookie(config) => (
                config.accepts_legacy_keys(),
                "sessionbank's native cookie format",
            ),
            Transport::Header(_) => (false, "header tokens"),
        };
        if accepts_legacy {
            return Ok(());
        }
        let short = keys
            .keys()
            .iter()
            .enumerate()
            .find(|(_, key)| key.is_legacy());
        match short {
            None => Ok(()),
            Some((index, key)) => Err(Error::new(
                ErrorKind::Config,
                Action::Cookie,
                format!(
                    "key number {} of the ring has {} bytes; {what} needs at least {} bytes of \
                     key material (Key::generate or Key::from_base64); short secrets \
                     (Key::from_legacy_secret) are only for the Express and Koa cookie formats",
                    index + 1,
                    key.expose_secret().len(),
                    crate::MIN_KEY_LEN
                ),
            )),
        }
    }

    /// The response headers that make the client drop the session: removal cookies
    /// ([`CookieConfig::removal_cookies`]), or the response header with an **empty value**,
    /// which tells an API client to forget its token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, Transport};
    ///
    /// assert!(Transport::default().revoke()[0].value.contains("Max-Age=0"));
    /// let revoked = Transport::from(HeaderConfig::bearer()).revoke().remove(0);
    /// assert_eq!((revoked.name.as_str(), revoked.value.as_str()), ("x-session-token", ""));
    /// ```
    pub fn revoke(&self) -> Vec<ResponseHeader> {
        match self {
            Transport::Cookie(config) => config.removal_cookies().iter().map(set_cookie).collect(),
            Transport::Header(config) => vec![ResponseHeader {
                name: config.response_header_name().to_owned(),
                value: String::new(),
            }],
        }
    }

    /// Whether what the client holds carries the session's expiry, so that a moved expiry
    /// alone is worth re-sending: persistent cookies do ([`CookieConfig::is_persistent`]);
    /// browser-session cookies and header tokens do not.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{CookieConfig, HeaderConfig, Transport};
    ///
    /// assert!(Transport::default().is_persistent());
    /// assert!(!Transport::from(CookieConfig::new().persistent(false)).is_persistent());
    /// assert!(!Transport::from(HeaderConfig::bearer()).is_persistent());
    /// ```
    pub fn is_persistent(&self) -> bool {
        match self {
            Transport::Cookie(config) => config.is_persistent(),
            Transport::Header(_) => false,
        }
    }

    /// The cookie configuration, for the cookie transport.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, Transport};
    ///
    /// assert_eq!(Transport::default().as_cookie().map(|c| c.cookie_name()), Some("id"));
    /// assert!(Transport::from(HeaderConfig::bearer()).as_cookie().is_none());
    /// ```
    pub fn as_cookie(&self) -> Option<&CookieConfig> {
        match self {
            Transport::Cookie(config) => Some(config),
            Transport::Header(_) => None,
        }
    }

    /// The header configuration, for the header transport.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{HeaderConfig, Transport};
    ///
    /// let transport = Transport::from(HeaderConfig::bearer());
    /// assert_eq!(transport.as_header().and_then(|h| h.scheme()), Some("Bearer"));
    /// ```
    pub fn as_header(&self) -> Option<&HeaderConfig> {
        match self {
            Transport::Cookie(_) => None,
            Transport::Header(config) => Some(config),
        }
    }
}

fn set_cookie(cookie: &cookie::Cookie<'_>) -> ResponseHeader {
    ResponseHeader {
        name: "set-cookie".to_owned(),
        value: cookie.to_string(),
    }
}
