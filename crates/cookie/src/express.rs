//! Express's signed cookies (`express-session` with `cookie-signature`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sessionbank_core::SessionId;

use crate::format::{CookieFormat, MAX_VALUE_LEN, Rejection, RequestCookies, Verified};
use crate::format::{decode_tag, first_verified};
use crate::key::KeyRing;

/// What `encodeURIComponent` leaves alone: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The cookie express-session writes: `s:` + id + `.` + the base64 (standard alphabet, no
/// padding) HMAC-SHA256 of the id under the first secret, URI-encoded as Express encodes cookie
/// values (`s%3A…`, with `+` and `/` as `%2B` and `%2F`).
///
/// Express's `secret` option may be a list: it signs with the first and accepts any, which is
/// this crate's [`KeyRing`] (newest first). Load Express secrets with
/// [`Key::from_legacy_secret`](crate::Key::from_legacy_secret). The id must be a
/// [`SessionId`]: 32 characters of base64url, which is what express-session generates by
/// default (`uid-safe(24)`).
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieFormat, ExpressFormat, Key, KeyRing, RequestCookies};
/// use sessionbank_core::SessionId;
///
/// let keys = KeyRing::new(Key::from_legacy_secret("keyboard cat")?);
/// let id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")?;
/// let (name, value) = ExpressFormat.encode("connect.sid", &id, &keys).remove(0);
/// // The same value express-session sends for this id and secret:
/// assert_eq!(value, "s%3AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.RT5Cal5xFtX9GjJLGoiK%2BGzZ%2BcCRnZ5ZbIS8ml7E5Xo");
///
/// let header = format!("{name}={value}");
/// let cookies = RequestCookies::parse([header.as_str()], 8192).unwrap();
/// assert_eq!(ExpressFormat.decode("connect.sid", &cookies, &keys).unwrap().map(|v| v.id), Some(id));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpressFormat;

impl ExpressFormat {
    fn verify_one(value: &str, keys: &KeyRing) -> Result<Verified, Rejection> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Rejection::TooLarge);
        }
        let decoded = percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| Rejection::Malformed)?;
        // Unsigned values (no `s:`) are not sessions express-session accepts either.
        let signed = decoded.strip_prefix("s:").ok_or(Rejection::Malformed)?;
        let (id_text, sig_text) = signed.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let id = SessionId::parse(id_text).map_err(|_| Rejection::Malformed)?;
        // A SHA-256 tag is 32 bytes: 43 characters of unpadded base64.
        if sig_text.len() != 43 {
            return Err(Rejection::Malformed);
        }
        let mut tag = [0u8; 33];
        let tag = decode_tag(sig_text, false, &mut tag)?;
        let key_index = keys
            .find(|key| key.verify_hmac_sha256(&[id_text.as_bytes()], tag))
            .ok_or(Rejection::BadSignature)?;
        Ok(Verified { id, key_index })
    }
}

impl CookieFormat for ExpressFormat {
    fn encode(&self, name: &str, id: &SessionId, keys: &KeyRing) -> Vec<(String, String)> {
        let tag = keys.newest().hmac_sha256(&[id.as_str().as_bytes()]);
        let mut signed = String::with_capacity(78);
        signed.push_str("s:");
        signed.push_str(id.as_str());
        signed.push('.');
        STANDARD_NO_PAD.encode_string(tag, &mut signed);
        vec![(
            name.to_owned(),
            utf8_percent_encode(&signed, URI_COMPONENT).to_string(),
        )]
    }

    fn decode(
        &self,
        name: &str,
        cookies: &RequestCookies<'_>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection> {
        first_verified(cookies.get_all(name), |value| Self::verify_one(value, keys))
    }

    fn accepts_legacy_keys(&self) -> bool {
        true
    }

    fn cookie_names(&self, name: &str) -> Vec<String> {
        vec![name.to_owned()]
    }
}
