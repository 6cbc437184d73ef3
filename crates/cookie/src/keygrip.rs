//! Keygrip's signed cookies (Koa's `cookies` module, koa-generic-session, mongosess).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessionbank_core::SessionId;

use crate::format::{CookieFormat, MAX_VALUE_LEN, Rejection, RequestCookies, Verified};
use crate::format::{decode_tag, first_verified};
use crate::key::KeyRing;

/// The HMAC Keygrip signs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeygripAlgorithm {
    /// HMAC-SHA1, Keygrip's default.
    #[default]
    Sha1,
    /// HMAC-SHA256 (`new Keygrip(keys, 'sha256')`).
    Sha256,
}

/// The cookies Koa's `cookies` module writes with `signed: true`: the id in a cookie `name`, and
/// in `name.sig` the base64url (no padding) HMAC, under the first Keygrip key, of
/// `name=value`.
///
/// Keygrip signs with its first key and accepts any, which is this crate's [`KeyRing`] (newest
/// first); like `cookies`, a cookie that verifies with an older key reports it, so the layer
/// re-signs it with the newest. Load Koa's `app.keys` with
/// [`Key::from_legacy_secret`](crate::Key::from_legacy_secret).
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieFormat, Key, KeyRing, KeygripFormat, RequestCookies};
/// use sessionbank_core::SessionId;
///
/// let keys = KeyRing::new(Key::from_legacy_secret("keyboard cat")?);
/// let id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")?;
/// let cookies = KeygripFormat::default().encode("koa.sid", &id, &keys);
/// // The signature keygrip computes for `koa.sid=<id>` with this key:
/// assert_eq!(cookies[1], ("koa.sid.sig".to_owned(), "Xlk7gpSblNuwln2GUX1G1qE2EHQ".to_owned()));
///
/// let header = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
/// let request = RequestCookies::parse([header.as_str()], 8192).unwrap();
/// let verified = KeygripFormat::default().decode("koa.sid", &request, &keys).unwrap();
/// assert_eq!(verified.map(|v| v.id), Some(id));
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KeygripFormat {
    algorithm: KeygripAlgorithm,
}

impl KeygripFormat {
    /// Keygrip with HMAC-SHA1, its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keygrip with another HMAC.
    pub fn with_algorithm(algorithm: KeygripAlgorithm) -> Self {
        Self { algorithm }
    }

    fn sig_name(name: &str) -> String {
        format!("{name}.sig")
    }

    fn verify_one(
        &self,
        name: &str,
        value: &str,
        sig: &str,
        keys: &KeyRing,
    ) -> Result<Verified, Rejection> {
        if value.len() > MAX_VALUE_LEN || sig.len() > MAX_VALUE_LEN {
            return Err(Rejection::TooLarge);
        }
        let id = SessionId::parse(value).map_err(|_| Rejection::Malformed)?;
        let mut tag = [0u8; 33];
        let tag = decode_tag(sig, true, &mut tag)?;
        let parts: [&[u8]; 3] = [name.as_bytes(), b"=", value.as_bytes()];
        let key_index = keys
            .find(|key| match self.algorithm {
                KeygripAlgorithm::Sha1 => key.verify_hmac_sha1(&parts, tag),
                KeygripAlgorithm::Sha256 => key.verify_hmac_sha256(&parts, tag),
            })
            .ok_or(Rejection::BadSignature)?;
        Ok(Verified { id, key_index })
    }
}

impl CookieFormat for KeygripFormat {
    fn encode(&self, name: &str, id: &SessionId, keys: &KeyRing) -> Vec<(String, String)> {
        let parts: [&[u8]; 3] = [name.as_bytes(), b"=", id.as_str().as_bytes()];
        let sig = match self.algorithm {
            KeygripAlgorithm::Sha1 => URL_SAFE_NO_PAD.encode(keys.newest().hmac_sha1(&parts)),
            KeygripAlgorithm::Sha256 => URL_SAFE_NO_PAD.encode(keys.newest().hmac_sha256(&parts)),
        };
        vec![
            (name.to_owned(), id.as_str().to_owned()),
            (Self::sig_name(name), sig),
        ]
    }

    fn decode(
        &self,
        name: &str,
        cookies: &RequestCookies<'_>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection> {
        let sig_name = Self::sig_name(name);
        // As `cookies` does: the first `name.sig` signs the value.
        let sig = cookies.get(&sig_name);
        first_verified(cookies.get_all(name), |value| match sig {
            Some(sig) => self.verify_one(name, value, sig, keys),
            None => Err(Rejection::Malformed),
        })
    }

    fn accepts_legacy_keys(&self) -> bool {
        true
    }

    fn cookie_names(&self, name: &str) -> Vec<String> {
        vec![name.to_owned(), Self::sig_name(name)]
    }
}
