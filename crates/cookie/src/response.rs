//! After the handler: save the session and decide which `Set-Cookie` cookies (or token
//! headers) go out. One implementation for every web adapter (tower, actix-web, plain http), so
//! they cannot drift.

use sessionbank_core::session::Outcome;
use sessionbank_core::{Clock, Result, SessionHandle, Timestamp};

use crate::format::Verified;
use crate::key::KeyRing;
use crate::transport::{ResponseHeader, Transport};

/// Saves a request's session and computes the session headers of the response, for its
/// [`Transport`].
///
/// - Nothing to do (session untouched, cookie current): no store call, no cookie.
/// - New session, new id, or a moved expiry on a persistent cookie: the session cookie(s).
/// - A cookie that verified with an older key: re-signed with the newest, even when nothing
///   else changed; removed if its session is gone.
/// - Destroyed (here, or by another request meanwhile): removal cookies.
///
/// With the header transport the same rules send the token header, or the header with an
/// empty value for a removal; a token carries no expiry, so a moved expiry alone sends nothing.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::{CookieConfig, HeaderConfig, KeyRing, SessionResponse, Transport};
/// use sessionbank_core::{ExpiryPolicy, MemoryStore, SessionHandle, StoreHandle, system_clock};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (config, keys, clock) = (Transport::from(CookieConfig::new()), KeyRing::generate()?, system_clock());
/// let handle = SessionHandle::new(StoreHandle::new(MemoryStore::new()), ExpiryPolicy::new(), clock.clone(), None);
/// let response = SessionResponse::new(&handle, &config, &keys, &*clock, None);
/// assert!(!response.has_work(), "an untouched session costs nothing");
///
/// handle.insert("visits", 1).await?;
/// let headers = SessionResponse::new(&handle, &config, &keys, &*clock, None).save().await?;
/// assert_eq!(headers.len(), 1);
/// assert_eq!(headers[0].name, "set-cookie");
/// assert!(headers[0].value.starts_with("id="));
///
/// // An API client: the token in a response header.
/// let api = Transport::from(HeaderConfig::bearer());
/// let handle = SessionHandle::new(StoreHandle::new(MemoryStore::new()), ExpiryPolicy::new(), clock.clone(), None);
/// handle.insert("visits", 1).await?;
/// let headers = SessionResponse::new(&handle, &api, &keys, &*clock, None).save().await?;
/// assert_eq!(headers[0].name, "x-session-token");
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SessionResponse<'a> {
    handle: &'a SessionHandle,
    transport: &'a Transport,
    keys: &'a KeyRing,
    clock: &'a dyn Clock,
    incoming: Option<Verified>,
    browser_cookie: bool,
    resend: bool,
}

impl<'a> SessionResponse<'a> {
    /// The response of a request whose session is `handle`, whose cookie (or token) verified
    /// as `incoming` (`None` when it sent no valid one), sent by `transport`.
    pub fn new(
        handle: &'a SessionHandle,
        transport: &'a Transport,
        keys: &'a KeyRing,
        clock: &'a dyn Clock,
        incoming: Option<Verified>,
    ) -> Self {
        Self {
            handle,
            transport,
            keys,
            clock,
            incoming,
            browser_cookie: false,
            resend: false,
        }
    }

    /// Sends a browser-session cookie (no `Max-Age`) whatever the configuration says; with
    /// `resend`, sends it even when nothing else changed (the plain-http adapter's `expire()`).
    #[must_use]
    pub fn browser_cookie(mut self, browser_cookie: bool, resend: bool) -> Self {
        self.browser_cookie = browser_cookie;
        self.resend = resend;
        self
    }

    fn needs_resign(&self) -> bool {
        self.incoming.is_some_and(|v| v.needs_resign())
    }

    /// Whether [`save`](Self::save) can do anything: the session was touched, the cookie needs
    /// re-signing, or a re-send was asked for. When not, an adapter sends the response as it is,
    /// without allocating.
    pub fn has_work(&self) -> bool {
        self.handle.is_loaded() || self.needs_resign() || self.resend
    }

    /// Runs [`SessionHandle::finish`] and returns the headers to append to the response:
    /// `Set-Cookie` cookies, or the token header (see [`Transport::issue`] and
    /// [`Transport::revoke`]).
    ///
    /// # Errors
    ///
    /// The store's error from saving (other than `Gone`, which clears the cookie instead).
    pub async fn save(self) -> Result<Vec<ResponseHeader>> {
        if !self.has_work() {
            return Ok(Vec::new());
        }
        let outcome = self.handle.finish().await?;
        let resign = self.needs_resign();
        let persistent = self.transport.is_persistent() && !self.browser_cookie;
        let cookie_expiry = |at: Option<Timestamp>| if persistent { at } else { None };
        let now = self.clock.now();
        Ok(match outcome {
            Outcome::Unchanged if resign || self.resend => {
                // The signature is stale or the cookie's attributes changed: re-send the same
                // id, or drop a stale cookie whose session is gone.
                match (self.handle.id().await?, self.handle.record().await?) {
                    (Some(id), Some(record)) => {
                        self.transport
                            .issue(&id, cookie_expiry(record.expires_at), now, self.keys)
                    }
                    _ if resign => self.transport.revoke(),
                    _ => Vec::new(),
                }
            }
            Outcome::Unchanged => Vec::new(),
            Outcome::SetCookie { id, expires_at } => {
                let client_has_it = self.incoming.is_some_and(|v| v.id == id) && !resign;
                if client_has_it && !persistent && !self.resend {
                    // A browser-session cookie (or a header token) carries no expiry: nothing
                    // to update.
                    Vec::new()
                } else {
                    self.transport
                        .issue(&id, cookie_expiry(expires_at), now, self.keys)
                }
            }
            Outcome::ClearCookie => self.transport.revoke(),
        })
    }
}
