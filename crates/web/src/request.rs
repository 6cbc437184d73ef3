//! [`RequestSession`]: one request's session, from the verified cookie (or token) to the headers
//! of its response.

use std::fmt;
use std::sync::Arc;

use sessionbank_cookie::{ResponseHeader, Verified};
use sessionbank_core::session::Outcome;
use sessionbank_core::{Result, SessionHandle, Timestamp};

use crate::config::SessionConfig;

/// One request's session: the lazy [`SessionHandle`] a handler uses, and what the response
/// needs afterwards (the verified incoming cookie, the shared settings).
///
/// An adapter calls [`start`](Self::start) with the values of the request header the transport
/// reads, hands [`handle`](Self::handle) to the handler, and after it calls
/// [`finish`](Self::finish) for the headers to append, unless [`has_work`](Self::has_work) says
/// there is nothing to do.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use sessionbank_cookie::KeyRing;
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use sessionbank_web::{RequestSession, SessionConfig};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = Arc::new(SessionConfig::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?));
///
/// // A request without a cookie; the handler stores a key.
/// let session = RequestSession::start(&config, std::iter::empty());
/// session.handle().insert("visits", 1).await?;
/// let headers = session.finish().await?;
/// assert_eq!(headers[0].name, "set-cookie");
///
/// // The next request carries the cookie back.
/// let cookie = headers[0].value.split(';').next().unwrap_or_default().to_owned();
/// let session = RequestSession::start(&config, [cookie.as_str()]);
/// assert_eq!(session.handle().get::<u32>("visits").await?, Some(1));
/// assert!(session.finish().await?.is_empty(), "nothing changed: no header");
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone)]
pub struct RequestSession {
    handle: SessionHandle,
    config: Arc<SessionConfig>,
    incoming: Option<Verified>,
    browser_cookie: bool,
    resend: bool,
}

impl RequestSession {
    /// Starts the session of a request from the `values` of its
    /// [`request_header`](sessionbank_cookie::Transport::request_header) (the `Cookie` headers,
    /// or the token header). A missing, tampered, malformed or oversized cookie or token counts
    /// as none (logged at `debug`): the request gets a fresh session. Nothing is read from the
    /// store until the handler asks.
    pub fn start<'a>(
        config: &Arc<SessionConfig>,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let incoming = match config.transport.read(values, &config.keys) {
            Ok(verified) => verified,
            Err(rejection) => {
                tracing::debug!(%rejection, "session cookie or token rejected; starting a fresh session");
                None
            }
        };
        let handle = SessionHandle::new(
            config.store.clone(),
            config.policy,
            config.clock.clone(),
            incoming.map(|v| v.id),
        );
        Self {
            handle,
            config: config.clone(),
            incoming,
            browser_cookie: false,
            resend: false,
        }
    }

    /// The session handle for the handler.
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// The settings this session was started with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
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

    /// Whether [`finish`](Self::finish) can do anything: the session was touched, the cookie
    /// needs re-signing, or a re-send was asked for. When not, an adapter sends the response as
    /// it is, without allocating.
    pub fn has_work(&self) -> bool {
        self.handle.is_loaded() || self.needs_resign() || self.resend
    }

    /// Saves the session ([`SessionHandle::finish`]) and returns the headers to append to the
    /// response:
    ///
    /// - nothing to do (session untouched, cookie current): no store call, no header;
    /// - a new session, a new id, or a moved expiry on a persistent cookie: the session
    ///   cookie(s), or the token header;
    /// - a cookie that verified with an older key: re-signed with the newest, even when nothing
    ///   else changed; removed if its session is gone;
    /// - destroyed (here, or by another request meanwhile): removal cookies, or the token
    ///   header with an empty value.
    ///
    /// A token carries no expiry, so a moved expiry alone sends no token.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) when the key ring holds a
    /// short legacy secret and the transport is not a Node format
    /// ([`Transport::check_keys`](sessionbank_cookie::Transport::check_keys)); nothing is
    /// written then. Otherwise the store's error from saving (other than `Gone`, which clears
    /// the cookie instead).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a cancelled finish loses the request's changes, as a dropped request
    /// would.
    pub async fn finish(self) -> Result<Vec<ResponseHeader>> {
        if !self.has_work() {
            return Ok(Vec::new());
        }
        let config = &*self.config;
        // Before anything is written or signed: a native cookie or token signed with a short
        // legacy secret could be forged.
        config.transport.check_keys(&config.keys)?;
        let outcome = self.handle.finish().await?;
        let resign = self.needs_resign();
        let persistent = config.transport.is_persistent() && !self.browser_cookie;
        let cookie_expiry = |at: Option<Timestamp>| if persistent { at } else { None };
        let now = config.clock.now();
        Ok(match outcome {
            Outcome::Unchanged if resign || self.resend => {
                // The signature is stale or the cookie's attributes changed: re-send the same
                // id, or drop a stale cookie whose session is gone.
                match (self.handle.id().await?, self.handle.record().await?) {
                    (Some(id), Some(record)) => config.transport.issue(
                        &id,
                        cookie_expiry(record.expires_at),
                        now,
                        &config.keys,
                    ),
                    _ if resign => config.transport.revoke(),
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
                    config
                        .transport
                        .issue(&id, cookie_expiry(expires_at), now, &config.keys)
                }
            }
            Outcome::ClearCookie => config.transport.revoke(),
        })
    }
}

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSession")
            .field("handle", &self.handle)
            .field("incoming", &self.incoming.map(|_| "<redacted>"))
            .field("browser_cookie", &self.browser_cookie)
            .field("resend", &self.resend)
            .finish()
    }
}
