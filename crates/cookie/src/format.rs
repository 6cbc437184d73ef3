//! The [`CookieFormat`] trait, the parsed request cookies it reads, and what verification yields.

use std::borrow::Cow;
use std::fmt;

use cookie::Cookie;
use sessionbank_core::SessionId;

use crate::key::KeyRing;

/// The longest `Cookie` header (all `Cookie` headers of a request together) that is parsed at
/// all: 8 KiB, the limit most servers put on one header. Longer ones are rejected whole.
pub const DEFAULT_MAX_HEADER_LEN: usize = 8 * 1024;

/// The longest single cookie value a format looks at. Anything longer is rejected before any
/// decoding or MAC work.
pub const MAX_VALUE_LEN: usize = 1024;

/// The cookies of one request, parsed from its `Cookie` header(s) with the `cookie` crate.
///
/// Values are kept as sent (not percent-decoded), so each format decodes what it needs. A name
/// may appear more than once (a browser sends every cookie whose path and domain match), and
/// [`RequestCookies::get_all`] yields every value in order.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::RequestCookies;
///
/// let cookies = RequestCookies::parse(["a=1; b=2", "a=3"], 8192)?;
/// assert_eq!(cookies.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
/// assert_eq!(cookies.get("b"), Some("2"));
///
/// let huge = "x=".to_owned() + &"y".repeat(10_000);
/// assert!(RequestCookies::parse([huge.as_str()], 8192).is_err());
/// # Ok::<(), sessionbank_cookie::Rejection>(())
/// ```
#[derive(Clone, Default)]
pub struct RequestCookies<'h> {
    /// Names and values, borrowed from the headers they were parsed from.
    pairs: Vec<(Cow<'h, str>, Cow<'h, str>)>,
}

impl<'h> RequestCookies<'h> {
    /// Parses the values of a request's `Cookie` headers. Malformed pairs are skipped. Names
    /// and values borrow from `headers` (see [`into_owned`](Self::into_owned)).
    ///
    /// # Errors
    ///
    /// [`Rejection::TooLarge`] when the headers together are longer than `max_len` bytes.
    pub fn parse(
        headers: impl IntoIterator<Item = &'h str>,
        max_len: usize,
    ) -> Result<Self, Rejection> {
        let mut pairs = Vec::new();
        let mut total = 0usize;
        for header in headers {
            total = total.saturating_add(header.len());
            if total > max_len {
                return Err(Rejection::TooLarge);
            }
            for cookie in Cookie::split_parse(header).flatten() {
                // A parsed (not encoded) cookie has both as slices of `header`.
                let name = match cookie.name_raw() {
                    Some(name) => Cow::Borrowed(name),
                    None => Cow::Owned(cookie.name().to_owned()),
                };
                let value = match cookie.value_raw() {
                    Some(value) => Cow::Borrowed(value),
                    None => Cow::Owned(cookie.value().to_owned()),
                };
                pairs.push((name, value));
            }
        }
        Ok(Self { pairs })
    }

    /// The same cookies, owning their names and values.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::RequestCookies;
    ///
    /// let owned = RequestCookies::parse([String::from("a=1").as_str()], 8192)?.into_owned();
    /// assert_eq!(owned.get("a"), Some("1"));
    /// # Ok::<(), sessionbank_cookie::Rejection>(())
    /// ```
    pub fn into_owned(self) -> RequestCookies<'static> {
        RequestCookies {
            pairs: self
                .pairs
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        }
    }

    /// The first value sent under `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Every value sent under `name`, in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// How many cookies were sent.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no cookie was sent.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Debug for RequestCookies<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be session ids or other secrets.
        f.debug_struct("RequestCookies")
            .field(
                "names",
                &self.pairs.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A session id whose signature verified, and which key verified it.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieFormat, KeyRing, NativeFormat, RequestCookies};
/// use sessionbank_core::SessionId;
///
/// let keys = KeyRing::generate()?;
/// let id = SessionId::generate()?;
/// let (name, value) = NativeFormat.encode("id", &id, &keys).remove(0);
/// let header = format!("{name}={value}");
/// let cookies = RequestCookies::parse([header.as_str()], 8192).unwrap();
/// let verified = NativeFormat.decode("id", &cookies, &keys).unwrap().unwrap();
/// assert_eq!(verified.id, id);
/// assert!(!verified.needs_resign());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The session id the cookie carries.
    pub id: SessionId,
    /// The index in the key ring of the key that verified it; `0` is the newest.
    pub key_index: usize,
}

impl Verified {
    /// Whether an older key verified the cookie, so it should be re-signed with the newest.
    pub fn needs_resign(&self) -> bool {
        self.key_index > 0
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("id", &self.id)
            .field("key_index", &self.key_index)
            .finish()
    }
}

/// Why a session cookie was not accepted. It never carries the cookie's text.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::Rejection;
///
/// assert_eq!(Rejection::BadSignature.to_string(), "the session cookie's signature does not verify");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The `Cookie` header or the value is longer than allowed.
    TooLarge,
    /// The value does not have the format's shape (separator, base64, id characters).
    Malformed,
    /// The signature does not verify with any key of the ring.
    BadSignature,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::TooLarge => "the cookie header or session cookie is too large",
            Rejection::Malformed => "the session cookie is malformed",
            Rejection::BadSignature => "the session cookie's signature does not verify",
        })
    }
}

impl std::error::Error for Rejection {}

/// How a session id is carried in signed cookies.
///
/// A format turns an id into one or more `(cookie name, cookie value)` pairs, and reads it back
/// from all of the request's cookies, so formats that use several cookies fit: Express's
/// `cookie-signature` (`s:` + id + `.` + base64 HMAC-SHA256, one cookie) and Keygrip's (`name`
/// plus `name.sig`, HMAC-SHA1) can be added beside [`NativeFormat`] without changing this trait.
///
/// Implementations must never panic on hostile input and must compare signatures in constant
/// time.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieFormat, NativeFormat};
///
/// let format: &dyn CookieFormat = &NativeFormat;
/// assert_eq!(format.cookie_names("id"), ["id"]);
/// ```
pub trait CookieFormat: Send + Sync + fmt::Debug {
    /// The cookies that carry `id` under the configured `name`, signed with the ring's newest
    /// key. Values must be valid cookie values (no encoding is applied on top).
    fn encode(&self, name: &str, id: &SessionId, keys: &KeyRing) -> Vec<(String, String)>;

    /// Reads and verifies the session id from the request's cookies: `Ok(None)` when no
    /// session cookie was sent.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] when a session cookie was sent but is oversized, malformed or does not
    /// verify with any key.
    fn decode(
        &self,
        name: &str,
        cookies: &RequestCookies<'_>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection>;

    /// Every cookie name the format writes for `name` (what a removal must clear).
    fn cookie_names(&self, name: &str) -> Vec<String>;

    /// Whether this format may sign with short [legacy](crate::Key::is_legacy) secrets: only
    /// the Node formats, whose apps dictate the secret. `false` unless a format says so.
    fn accepts_legacy_keys(&self) -> bool {
        false
    }
}

/// sessionbank's own format: one cookie whose value is `ID.SIG`, where `SIG` is the unpadded
/// base64url HMAC-SHA256, under the ring's newest key, of `cookie_name + "=" + ID`.
///
/// Signing the cookie's name with the id means a value cannot be moved to a cookie of another
/// name (another app's session cookie on the same domain, say) and still verify. The value is
/// 76 characters of `[A-Za-z0-9_.-]`, so it needs no encoding.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieFormat, KeyRing, NativeFormat, RequestCookies, Rejection};
/// use sessionbank_core::SessionId;
///
/// let keys = KeyRing::generate()?;
/// let id = SessionId::generate()?;
/// let (_, value) = NativeFormat.encode("id", &id, &keys).remove(0);
/// assert_eq!(value.len(), 76);
///
/// // The same value under another cookie name does not verify.
/// let header = format!("other={value}");
/// let moved = RequestCookies::parse([header.as_str()], 8192).unwrap();
/// assert_eq!(NativeFormat.decode("other", &moved, &keys), Err(Rejection::BadSignature));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeFormat;

impl CookieFormat for NativeFormat {
    fn encode(&self, name: &str, id: &SessionId, keys: &KeyRing) -> Vec<(String, String)> {
        vec![(name.to_owned(), sign_native(name, id, keys))]
    }

    fn decode(
        &self,
        name: &str,
        cookies: &RequestCookies<'_>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection> {
        first_verified(cookies.get_all(name), |value| {
            verify_native(name, value, keys)
        })
    }

    fn cookie_names(&self, name: &str) -> Vec<String> {
        vec![name.to_owned()]
    }
}

/// The native signed value `ID.SIG`: `SIG` is the unpadded base64url HMAC-SHA256, under the
/// ring's newest key, of `context + "=" + ID`. The context is the cookie name for
/// [`NativeFormat`], `header:<name>` for a [`HeaderConfig`](crate::HeaderConfig) token, so a
/// value signed for one place does not verify in another.
pub(crate) fn sign_native(context: &str, id: &SessionId, keys: &KeyRing) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let tag = keys
        .newest()
        .hmac_sha256(&[context.as_bytes(), b"=", id.as_str().as_bytes()]);
    let mut value = String::with_capacity(76);
    value.push_str(id.as_str());
    value.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut value);
    value
}

/// Verifies a value made by [`sign_native`] for `context` with any key of `keys`: longer than
/// [`MAX_VALUE_LEN`] is `TooLarge` (before any decoding), a wrong shape `Malformed`, a tag no
/// key made `BadSignature`.
pub(crate) fn verify_native(
    context: &str,
    value: &str,
    keys: &KeyRing,
) -> Result<Verified, Rejection> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Rejection::TooLarge);
    }
    let (id_text, sig_text) = value.rsplit_once('.').ok_or(Rejection::Malformed)?;
    let id = SessionId::parse(id_text).map_err(|_| Rejection::Malformed)?;
    // A SHA-256 tag is 32 bytes: 43 characters of unpadded base64.
    if sig_text.len() != 43 {
        return Err(Rejection::Malformed);
    }
    let mut tag = [0u8; 33];
    let tag = decode_tag(sig_text, true, &mut tag)?;
    let parts: [&[u8]; 3] = [context.as_bytes(), b"=", id_text.as_bytes()];
    // A short legacy secret never verifies a native value: it could be guessed.
    let key_index = keys
        .find(|key| !key.is_legacy() && key.verify_hmac_sha256(&parts, tag))
        .ok_or(Rejection::BadSignature)?;
    Ok(Verified { id, key_index })
}

/// A browser may send several cookies of one name (different paths or domains): the first value
/// that verifies wins; otherwise the first failure is reported; no value at all is `Ok(None)`.
pub(crate) fn first_verified<'a>(
    values: impl Iterator<Item = &'a str>,
    mut verify: impl FnMut(&str) -> Result<Verified, Rejection>,
) -> Result<Option<Verified>, Rejection> {
    let mut first_error = None;
    for value in values {
        match verify(value) {
            Ok(verified) => return Ok(Some(verified)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Decodes unpadded base64 (`url_safe` picks the alphabet) into `out`, returning the bytes
/// written; anything else, including padding, is `Malformed`.
pub(crate) fn decode_tag<'o>(
    text: &str,
    url_safe: bool,
    out: &'o mut [u8],
) -> Result<&'o [u8], Rejection> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

    let engine = if url_safe {
        &URL_SAFE_NO_PAD
    } else {
        &STANDARD_NO_PAD
    };
    let written = engine
        .decode_slice(text.as_bytes(), out)
        .map_err(|_| Rejection::Malformed)?;
    out.get(..written).ok_or(Rejection::Malformed)
}
