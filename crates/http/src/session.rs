//! [`Session`]: one request's session with mongosess's verbs (`set`, `get`, `del`, `end`,
//! `expire`), and [`commit`](Session::commit), which saves it and sets the cookie.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sessionbank_core::{
    Action, Data, Error, ErrorKind, Operation, Result, SessionHandle, SessionId, StoreHandle,
};
use sessionbank_web::{RequestSession, append_http};

/// The data key under which [`Session::expire`] records that the session's cookie is a
/// browser-session cookie, so that later responses keep it one. Reserved (see
/// [`is_reserved_key`]): `get`, `set` and `del` refuse it and `get_all` hides it.
pub const BROWSER_COOKIE_KEY: &str = "_sessionbank_browser_cookie";

/// Whether `key` is reserved, so that [`Session::set`], [`Session::get`] and [`Session::del`]
/// refuse it with [`ErrorKind::InvalidInput`] and [`Session::get_all`] leaves it out:
///
/// - `_id`: mongosess refuses it (MongoDB's document id; the mongosess layout keeps a session's
///   keys at the top level of its document, beside `_id`);
/// - keys starting with `$`: MongoDB reads them as operators, so no MongoDB layout can store
///   them as field names;
/// - keys starting with `_sessionbank`: this crate's own markers, e.g. [`BROWSER_COOKIE_KEY`].
///
/// # Examples
///
/// ```
/// use sessionbank_http::is_reserved_key;
///
/// assert!(is_reserved_key("_id"));
/// assert!(is_reserved_key("$set"));
/// assert!(is_reserved_key("_sessionbank_browser_cookie"));
/// assert!(!is_reserved_key("createdAt")); // mongosess allows it, and so do we
/// assert!(!is_reserved_key("id"));
/// ```
pub fn is_reserved_key(key: &str) -> bool {
    key == "_id" || key.starts_with('$') || key.starts_with("_sessionbank")
}

fn check_key(key: &str, operation: Operation) -> Result<()> {
    if is_reserved_key(key) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            operation,
            format!(
                "the session key `{key}` is reserved (`_id`, keys starting with `$` or `_sessionbank`)"
            ),
        ));
    }
    Ok(())
}

/// One request's session, with the verbs of mongosess: [`set`](Self::set) several keys at
/// once, [`get`](Self::get) one key, [`get_all`](Self::get_all), [`del`](Self::del) keys,
/// [`end`](Self::end) the session, [`expire`](Self::expire) the cookie at browser close; and
/// after the handler, [`commit`](Self::commit) the response.
///
/// Built by [`Sessions::start`](crate::Sessions::start). Lazy: the store is read when a method
/// first needs the data, at most once per request. Only changed and removed keys are written,
/// with one `update`, so concurrent requests that change different keys all keep their
/// changes; a request that changed nothing writes nothing, or a `touch` when the
/// [`ExpiryPolicy`](crate::ExpiryPolicy) says one is due. The behaviour is the tower layer's:
/// see [`SessionHandle`] for the details.
///
/// Cheap to clone; clones share the session. Its `Debug` never shows the id or the values.
/// Nothing is saved until `commit`: a session dropped without it loses this request's
/// changes, as a request that failed would (`end` and `cycle_id` act on the store at once).
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use sessionbank_http::{KeyRing, Sessions};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
///
/// let session = sessions.start(&http::Request::new(()));
/// session.set(json!({"name": "john doe", "visits": 1})).await?;
/// let mut response = http::Response::new(String::from("Your name is John Doe."));
/// session.commit(&mut response).await?;
/// let cookie = response.headers()["set-cookie"].to_str()?.split(';').next().unwrap().to_owned();
///
/// // Some time later...
/// let request = http::Request::get("/").header("cookie", cookie).body(())?;
/// let session = sessions.start(&request);
/// assert_eq!(session.get("name").await?, Some(json!("john doe")));
/// session.del(&["visits"]).await?;
/// assert_eq!(session.get_all().await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Session {
    request: RequestSession,
    expire: Arc<AtomicBool>,
}

impl Session {
    pub(crate) fn new(request: RequestSession) -> Self {
        Self {
            request,
            expire: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets several keys at once from a JSON object (`json!({"a": 1, "b": 2})`, a map, or any
    /// struct that serializes to one). Either every key is set or, on an error, none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when `values` does not serialize to a JSON object, or names a
    /// reserved key (see [`is_reserved_key`]); the store's error when loading the session fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde_json::json;
    /// # use sessionbank_core::{ErrorKind, MemoryStore, StoreHandle};
    /// # use sessionbank_http::{KeyRing, Sessions};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// let session = sessions.start(&http::Request::new(()));
    /// session.set(json!({"a": 1, "b": [2, 3]})).await?;
    /// assert_eq!(session.get("b").await?, Some(json!([2, 3])));
    ///
    /// let err = session.set(json!({"c": 4, "_id": "mine"})).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert_eq!(session.get("c").await?, None, "all or nothing");
    /// assert!(session.set(json!([1, 2])).await.is_err(), "not an object");
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set(&self, values: impl Serialize) -> Result<()> {
        let value = serde_json::to_value(values).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                Action::Encode,
                "the values for the session do not serialize to JSON",
            )
            .with_source(e)
        })?;
        let Value::Object(map) = value else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                Operation::Set,
                "Session::set takes a JSON object of keys and values",
            ));
        };
        for key in map.keys() {
            check_key(key, Operation::Set)?;
        }
        for (key, value) in map {
            self.request.handle().insert(&key, value).await?;
        }
        Ok(())
    }

    /// The JSON value under `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a reserved key; the store's error when loading the
    /// session fails.
    pub async fn get(&self, key: &str) -> Result<Option<Value>> {
        check_key(key, Operation::Get)?;
        self.request.handle().get_value(key).await
    }

    /// The value under `key`, deserialized into `T`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), and [`ErrorKind::InvalidInput`] when the value does not
    /// deserialize into `T` (the message names the key, never the value).
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde_json::json;
    /// # use sessionbank_core::{MemoryStore, StoreHandle};
    /// # use sessionbank_http::{KeyRing, Sessions};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// # let session = sessions.start(&http::Request::new(()));
    /// session.set(json!({"visits": 3})).await?;
    /// assert_eq!(session.get_as::<u64>("visits").await?, Some(3));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        check_key(key, Operation::Get)?;
        self.request.handle().get(key).await
    }

    /// Every key and value of the session (the reserved keys left out); empty for a new one.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn get_all(&self) -> Result<Data> {
        let mut data = self.request.handle().data().await?;
        if data.keys().any(|k| is_reserved_key(k)) {
            data.retain(|k, _| !is_reserved_key(k));
        }
        Ok(data)
    }

    /// Deletes `keys` and their values, returning how many of them were there. Either every
    /// key is deleted or, on an error, none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when a key is reserved; the store's error when loading the
    /// session fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde_json::json;
    /// # use sessionbank_core::{MemoryStore, StoreHandle};
    /// # use sessionbank_http::{KeyRing, Sessions};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// # let session = sessions.start(&http::Request::new(()));
    /// session.set(json!({"a": 1, "b": 2, "c": 3})).await?;
    /// assert_eq!(session.del(&["a", "b", "missing"]).await?, 2);
    /// assert!(session.del(&["c", "_id"]).await.is_err());
    /// assert_eq!(session.get("c").await?, Some(json!(3)));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn del<K: AsRef<str>>(&self, keys: &[K]) -> Result<usize> {
        for key in keys {
            check_key(key.as_ref(), Operation::Update)?;
        }
        let mut removed = 0;
        for key in keys {
            if self.request.handle().remove(key.as_ref()).await?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Ends the session: deletes it from the store right away (no read needed), and makes
    /// [`commit`](Self::commit) send removal cookies for every cookie name the cookie format
    /// uses. Keys set afterwards start a new session under a fresh id.
    ///
    /// # Errors
    ///
    /// The store's error when deleting fails.
    pub async fn end(&self) -> Result<()> {
        self.expire.store(false, Ordering::Relaxed);
        self.request.handle().destroy().await
    }

    /// Makes the session cookie a browser-session cookie (no `Max-Age`, no `Expires`: gone
    /// when the browser closes) from this response on, without changing the session's expiry
    /// in the store, as mongosess's `expire()` does: the store still expires the session by
    /// the [`ExpiryPolicy`](crate::ExpiryPolicy), since a browser may stay open for weeks.
    ///
    /// [`commit`](Self::commit) re-sends the cookie without an expiry, and records the choice
    /// in the session (under [`BROWSER_COOKIE_KEY`]) so later responses that send the cookie
    /// (a new id, a re-signed cookie) keep it a browser-session cookie. Recording it is a
    /// write, which renews the idle timeout as any write does. A session that does not exist
    /// and holds no data is not created for this.
    pub fn expire(&self) {
        self.expire.store(true, Ordering::Relaxed);
    }

    /// Gives the session a new id, keeping its data; the old id is dead right away and
    /// `commit` sends the new cookie. Call it when a user signs in, against session fixation.
    ///
    /// # Errors
    ///
    /// The store's error when loading or renaming fails.
    pub async fn cycle_id(&self) -> Result<()> {
        self.request.handle().cycle_id().await
    }

    /// The session's id: `None` while the session is new and unsaved, or after `end`.
    ///
    /// # Errors
    ///
    /// The store's error when loading the session fails.
    pub async fn id(&self) -> Result<Option<SessionId>> {
        self.request.handle().id().await
    }

    /// Whether the session was loaded (or started) yet.
    pub fn is_loaded(&self) -> bool {
        self.request.handle().is_loaded()
    }

    /// The store the session lives in.
    pub fn store(&self) -> &StoreHandle {
        self.request.handle().store()
    }

    /// The core handle, for everything else: owner, record, typed `insert`, `clear`.
    /// Changes made through it are saved by [`commit`](Self::commit) too (and bypass the
    /// reserved-key check).
    pub fn handle(&self) -> &SessionHandle {
        self.request.handle()
    }

    /// Saves what this request changed ([`SessionHandle::finish`]) and appends the
    /// `Set-Cookie` headers (or, with [`Sessions::with_header`](crate::Sessions::with_header),
    /// the token's response header; an empty value instead of removal cookies) to `response`: a new cookie for a new session, a new id or a
    /// moved expiry; removal cookies after [`end`](Self::end) (or when another request ended
    /// the session meanwhile); a re-signed cookie when an older key of the ring verified the
    /// incoming one; nothing otherwise. A handler that never touched the session costs no
    /// store call here either.
    ///
    /// # Errors
    ///
    /// The store's error from saving. Nothing is appended then; the caller chooses the
    /// response, typically [`error_response`](crate::error_response) (a logged, bare 500).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a cancelled commit loses the request's changes, as a dropped request
    /// would.
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde_json::json;
    /// # use sessionbank_core::{MemoryStore, StoreHandle};
    /// # use sessionbank_http::{KeyRing, Sessions};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let sessions = Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// let session = sessions.start(&http::Request::new(()));
    /// session.set(json!({"visits": 1})).await?;
    /// let mut response = http::Response::new(());
    /// match session.commit(&mut response).await {
    ///     Ok(()) => assert!(response.headers().contains_key("set-cookie")),
    ///     Err(e) => response = sessionbank_http::error_response(&e),
    /// }
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn commit<B>(self, response: &mut Response<B>) -> Result<()> {
        let expire_now = self.expire.load(Ordering::Relaxed);
        let handle = self.request.handle();
        if expire_now {
            let exists = handle.record().await?.is_some();
            if exists || !handle.data().await?.is_empty() {
                handle.insert(BROWSER_COOKIE_KEY, true).await?;
            }
        }
        let browser = expire_now
            || (handle.is_loaded()
                && handle.get_value(BROWSER_COOKIE_KEY).await? == Some(Value::Bool(true)));
        let headers = self
            .request
            .browser_cookie(browser, expire_now)
            .finish()
            .await?;
        append_http(response.headers_mut(), &headers)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("request", &self.request)
            .field("expire", &self.expire.load(Ordering::Relaxed))
            .finish()
    }
}
