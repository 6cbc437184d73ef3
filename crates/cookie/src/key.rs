//! Signing keys and the key ring.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sessionbank_core::{Action, Error, ErrorKind, Result};
use sha1::Sha1;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// The shortest key the native format accepts: 32 bytes (256 bits), the output size of
/// HMAC-SHA256.
pub const MIN_KEY_LEN: usize = 32;

/// The length of a key from [`Key::generate`]: 64 bytes, HMAC-SHA256's block size.
pub const GENERATED_KEY_LEN: usize = 64;

/// A secret signing key: at least [`MIN_KEY_LEN`] bytes.
///
/// `Debug` never shows the bytes. Keep keys out of source code: generate one with
/// [`Key::generate`], store it base64-encoded in your secret store, and load it with
/// [`Key::from_base64`].
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::Key;
///
/// let key = Key::generate()?;
/// assert_eq!(format!("{key:?}"), "Key(<redacted>)");
/// let again = Key::from_base64(&key.to_base64())?;
/// assert_eq!(again.hmac_sha256(&[b"msg"]), key.hmac_sha256(&[b"msg"]));
/// assert!(Key::from_bytes(b"too short").is_err());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    bytes: Box<[u8]>,
    /// HMAC-SHA256 already keyed with `bytes` (the key's two padded blocks hashed once), cloned
    /// for each signature instead of keyed again.
    sha256: HmacSha256,
}

impl Key {
    /// A fresh key of [`GENERATED_KEY_LEN`] bytes from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self> {
        let mut bytes = vec![0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                Action::Cookie,
                format!("the operating system's random source failed: {e}"),
            )
        })?;
        Ok(Self::with_bytes(bytes.into_boxed_slice()))
    }

    /// A key from raw bytes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `bytes` is shorter than [`MIN_KEY_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::Key;
    ///
    /// assert!(Key::from_bytes(&[7u8; 32]).is_ok());
    /// assert!(Key::from_bytes(&[7u8; 31]).is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(Error::new(
                ErrorKind::Config,
                Action::Cookie,
                format!(
                    "a signing key needs at least {MIN_KEY_LEN} bytes, this one has {}; \
                     generate one with Key::generate",
                    bytes.len()
                ),
            ));
        }
        Ok(Self::with_bytes(bytes.into()))
    }

    /// A key from a secret string of any length, as Express (`secret`) and Koa (`app.keys`)
    /// apps configure them, so a Rust service can verify and sign the cookies those apps use.
    ///
    /// Only for the [`ExpressFormat`](crate::ExpressFormat) and
    /// [`KeygripFormat`](crate::KeygripFormat): short secrets are as weak as they look. A
    /// secret shorter than [`MIN_KEY_LEN`] is a [legacy](Key::is_legacy) key, which the native
    /// format and header tokens never sign or verify with
    /// ([`Transport::check_keys`](crate::Transport::check_keys) says why). New deployments use
    /// [`Key::generate`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the secret is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::Key;
    ///
    /// assert!(Key::from_legacy_secret("keyboard cat").is_ok());
    /// assert!(Key::from_legacy_secret("").is_err());
    /// ```
    pub fn from_legacy_secret(secret: impl AsRef<[u8]>) -> Result<Self> {
        let bytes = secret.as_ref();
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                Action::Cookie,
                "a signing secret must not be empty",
            ));
        }
        Ok(Self::with_bytes(bytes.into()))
    }

    /// A key from base64 text, standard or URL-safe alphabet, padded or not.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the text is not base64 (the message never echoes it) or
    /// decodes to fewer than [`MIN_KEY_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::Key;
    ///
    /// let text = "A".repeat(43); // 32 bytes
    /// assert!(Key::from_base64(&text).is_ok());
    /// assert!(Key::from_base64("not base64!").is_err());
    /// ```
    pub fn from_base64(text: &str) -> Result<Self> {
        let normalized: String = text
            .trim()
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let bytes = STANDARD_NO_PAD.decode(normalized.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                Action::Cookie,
                "the signing key is not valid base64",
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// The key as standard base64 without padding, for storing it in a secret store.
    pub fn to_base64(&self) -> String {
        STANDARD_NO_PAD.encode(&self.bytes)
    }

    /// The raw secret, for signing formats that need another MAC (Keygrip's HMAC-SHA1).
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether this key is a short legacy secret ([`Key::from_legacy_secret`] with fewer than
    /// [`MIN_KEY_LEN`] bytes): usable for the Express and Koa formats, whose Node apps dictate
    /// the secret, and refused by sessionbank's own format and header tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::Key;
    ///
    /// assert!(Key::from_legacy_secret("keyboard cat")?.is_legacy());
    /// assert!(!Key::generate()?.is_legacy());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn is_legacy(&self) -> bool {
        self.bytes.len() < MIN_KEY_LEN
    }

    /// A key of `bytes` (whose length the constructors checked), with its keyed HMAC-SHA256.
    fn with_bytes(bytes: Box<[u8]>) -> Self {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
        // rather than panicking should that ever change.
        let sha256 = <HmacSha256 as Mac>::new_from_slice(&bytes)
            .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()));
        Self { bytes, sha256 }
    }

    fn mac(&self) -> HmacSha256 {
        self.sha256.clone()
    }

    /// HMAC-SHA256 of the concatenation of `parts`.
    pub fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC-SHA256 of the concatenation of `parts`, compared in constant
    /// time.
    pub fn verify_hmac_sha256(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    }

    fn mac_sha1(&self) -> HmacSha1 {
        <HmacSha1 as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| <HmacSha1 as hmac::digest::KeyInit>::new(&Default::default()))
    }

    /// HMAC-SHA1 of the concatenation of `parts` (Keygrip's default; not for new formats).
    pub fn hmac_sha1(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.mac_sha1();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC-SHA1 of the concatenation of `parts`, compared in constant
    /// time.
    pub fn verify_hmac_sha1(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac_sha1();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Signing keys, newest first: cookies are signed with the newest and verified with any, so keys
/// can be rotated without logging anyone out.
///
/// Rotation in three steps: [`rotate`](KeyRing::rotate) a new key in (new cookies use it, old
/// ones still verify and get re-signed with it as their users come back), wait at least one
/// session lifetime, then [`retire_oldest`](KeyRing::retire_oldest) (or
/// [`retain`](KeyRing::retain)) to drop the old key. A cookie signed with a retired key no longer
/// verifies, and its user gets a fresh session.
///
/// A ring always holds at least one key.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{Key, KeyRing};
///
/// let old = Key::generate()?;
/// let mut ring = KeyRing::new(old.clone());
/// let tag = ring.newest().hmac_sha256(&[b"hello"]);
///
/// ring.rotate(Key::generate()?);
/// // The old key still verifies, and says it is not the newest (index 1).
/// assert_eq!(ring.find(|key| key.verify_hmac_sha256(&[b"hello"], &tag)), Some(1));
///
/// ring.retire_oldest();
/// assert_eq!(ring.find(|key| key.verify_hmac_sha256(&[b"hello"], &tag)), None);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn new(key: Key) -> Self {
        Self { keys: vec![key] }
    }

    /// A ring from keys ordered newest first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `keys` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_cookie::{Key, KeyRing};
    ///
    /// let ring = KeyRing::from_keys(vec![Key::generate()?, Key::generate()?])?;
    /// assert_eq!(ring.len(), 2);
    /// assert!(KeyRing::from_keys(Vec::new()).is_err());
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn from_keys(keys: Vec<Key>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                Action::Cookie,
                "a key ring needs at least one key",
            ));
        }
        Ok(Self { keys })
    }

    /// A ring with one freshly generated key: sessions do not survive a restart. For tests and
    /// development.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the operating system cannot provide random bytes.
    pub fn generate() -> Result<Self> {
        Ok(Self::new(Key::generate()?))
    }

    /// Puts `key` in front: it signs from now on; the others still verify.
    pub fn rotate(&mut self, key: Key) {
        self.keys.insert(0, key);
    }

    /// Drops the oldest key and returns it, unless it is the only one (a ring is never empty).
    pub fn retire_oldest(&mut self) -> Option<Key> {
        if self.keys.len() > 1 {
            self.keys.pop()
        } else {
            None
        }
    }

    /// Keeps the `n` newest keys (at least one).
    pub fn retain(&mut self, n: usize) {
        self.keys.truncate(n.max(1));
    }

    /// The key that signs.
    pub fn newest(&self) -> &Key {
        // A ring is never empty: every constructor and mutator keeps at least one key.
        &self.keys[0]
    }

    /// The keys, newest first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// How many keys the ring holds (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false`: a ring holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of the first key (newest first) for which `verifies` holds: `0` is the
    /// newest, anything larger means the value should be re-signed with the newest key.
    pub fn find(&self, verifies: impl FnMut(&Key) -> bool) -> Option<usize> {
        self.keys.iter().position(verifies)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish()
    }
}
