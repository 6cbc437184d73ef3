//! STOPGAP until `sessionbank-tower` lands: a minimal session layer and extractor with the
//! planned `sessionbank_tower` API (`SessionLayer::new(store, keys).with_cookie(..)
//! .with_policy(..)`, `Session::{get, insert, remove, id, owner, set_owner, record, cycle_id,
//! destroy, store}`), so the demo and its tests run today. Delete this file and import
//! `sessionbank_tower::{Session, SessionLayer}` instead once that crate is ready.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sessionbank_cookie::{CookieConfig, KeyRing};
use sessionbank_core::{
    Error, ErrorKind, ExpiryPolicy, Operation, Patch, Record, Result, SessionId, StoreHandle,
    Timestamp,
};
use tokio::sync::Mutex;

struct Shared {
    store: StoreHandle,
    keys: KeyRing,
    cookie: CookieConfig,
    policy: ExpiryPolicy,
}

/// The session layer: reads the signed cookie, hands each request a [`Session`], and writes
/// the session and the cookie after the handler.
#[derive(Clone)]
pub(crate) struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    pub(crate) fn new(store: StoreHandle, keys: KeyRing) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                keys,
                cookie: CookieConfig::new(),
                policy: ExpiryPolicy::default(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            f(shared);
        }
        self
    }

    pub(crate) fn with_cookie(self, cookie: CookieConfig) -> Self {
        self.edit(|s| s.cookie = cookie)
    }

    pub(crate) fn with_policy(self, policy: ExpiryPolicy) -> Self {
        self.edit(|s| s.policy = policy)
    }
}

impl<S> tower_layer::Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around the routes.
#[derive(Clone)]
pub(crate) struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> tower_service::Service<Request<Body>> for SessionService<S>
where
    S: tower_service::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let values: Vec<&str> = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        // A cookie that is malformed or signed with an unknown key is treated as no cookie.
        let sent = self.shared.cookie.read(values, &self.shared.keys);
        let had_cookie = !matches!(sent, Ok(None));
        let id = sent.ok().flatten().map(|v| v.id);
        let session = Session {
            shared: self.shared.clone(),
            state: Arc::new(Mutex::new(State {
                id,
                had_cookie,
                ..State::default()
            })),
        };
        req.extensions_mut().insert(session.clone());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(req).await?;
            if let Err(e) = session.finish(&mut response).await {
                tracing::error!(error = %e, "cannot save the session");
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        })
    }
}

#[derive(Default)]
struct State {
    /// The id from the cookie, then of the stored session; `None` for a session not stored yet.
    id: Option<SessionId>,
    had_cookie: bool,
    loaded: bool,
    /// The session as this request sees it; `None` when there is none.
    record: Option<Record>,
    patch: Patch,
    /// The cookie must be (re)sent: new id, rotated id.
    send_cookie: bool,
    destroyed: bool,
}

/// One request's session: loaded on first use, written after the handler when it changed.
#[derive(Clone)]
pub(crate) struct Session {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the session layer is missing",
        ))
    }
}

fn codec_error(e: &serde_json::Error) -> Error {
    Error::new(ErrorKind::InvalidInput, Operation::Session, e.to_string())
}

impl Session {
    async fn loaded(&self) -> Result<tokio::sync::MutexGuard<'_, State>> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            state.loaded = true;
            if let Some(id) = state.id {
                state.record = self.shared.store.get(&id).await?;
                if state.record.is_none() {
                    state.id = None;
                }
            }
        }
        Ok(state)
    }

    fn ensure(state: &mut State) -> &mut Record {
        state
            .record
            .get_or_insert_with(|| Record::new(Timestamp::now()))
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.loaded().await?;
        state
            .record
            .as_ref()
            .and_then(|r| r.data.get(key))
            .map(|v| serde_json::from_value(v.clone()).map_err(|e| codec_error(&e)))
            .transpose()
    }

    pub(crate) async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| codec_error(&e))?;
        let mut state = self.loaded().await?;
        Self::ensure(&mut state)
            .data
            .insert(key.to_owned(), value.clone());
        state.patch.unset.remove(key);
        state.patch.set.insert(key.to_owned(), value);
        Ok(())
    }

    pub(crate) async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let mut state = self.loaded().await?;
        let old = state.record.as_mut().and_then(|r| r.data.remove(key));
        if old.is_some() {
            state.patch.set.remove(key);
            state.patch.unset.insert(key.to_owned());
        }
        old.map(|v| serde_json::from_value(v).map_err(|e| codec_error(&e)))
            .transpose()
    }

    pub(crate) async fn id(&self) -> Result<Option<SessionId>> {
        Ok(self.loaded().await?.id)
    }

    pub(crate) async fn owner(&self) -> Result<Option<String>> {
        Ok(self
            .loaded()
            .await?
            .record
            .as_ref()
            .and_then(|r| r.owner.clone()))
    }

    pub(crate) async fn set_owner(&self, owner: Option<String>) -> Result<()> {
        let mut state = self.loaded().await?;
        Self::ensure(&mut state).owner.clone_from(&owner);
        state.patch.owner = Some(owner);
        Ok(())
    }

    #[allow(dead_code)] // part of the planned API
    pub(crate) async fn record(&self) -> Result<Option<Record>> {
        Ok(self.loaded().await?.record.clone())
    }

    pub(crate) async fn cycle_id(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        if let Some(old) = state.id {
            let new = SessionId::generate()?;
            self.shared.store.rename(&old, &new).await?;
            state.id = Some(new);
            state.send_cookie = true;
        }
        Ok(())
    }

    pub(crate) async fn destroy(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        if let Some(id) = state.id.take() {
            self.shared.store.destroy(&id).await?;
        }
        state.record = None;
        state.patch = Patch::new();
        state.destroyed = true;
        Ok(())
    }

    pub(crate) fn store(&self) -> &StoreHandle {
        &self.shared.store
    }

    async fn finish(&self, response: &mut Response) -> Result<()> {
        let mut state = self.state.lock().await;
        let now = Timestamp::now();
        let changed = !state.patch.is_empty();
        let mut cookie_for = None;
        match (state.id, state.record.clone()) {
            (Some(id), Some(record)) if changed => {
                let expires = self.shared.policy.expiry_for(&record, now);
                let patch = std::mem::take(&mut state.patch).expire_at(expires);
                match self.shared.store.update(&id, &patch).await {
                    Ok(()) => cookie_for = Some((id, expires)),
                    // Destroyed elsewhere meanwhile: never bring it back.
                    Err(e) if e.kind() == ErrorKind::Gone => state.destroyed = true,
                    Err(e) => return Err(e),
                }
            }
            (Some(id), Some(record)) if state.send_cookie => {
                cookie_for = Some((id, record.expires_at));
            }
            (None, Some(mut record)) if changed => {
                let id = SessionId::generate()?;
                record.expires_at = self.shared.policy.expiry_for(&record, now);
                record.last_access = now;
                self.shared.store.create(&id, &record).await?;
                cookie_for = Some((id, record.expires_at));
            }
            _ => {}
        }
        let cookies = match cookie_for {
            Some((id, expires)) => {
                self.shared
                    .cookie
                    .set_cookies(&id, expires, now, &self.shared.keys)
            }
            None if state.destroyed || (state.had_cookie && state.id.is_none()) => {
                self.shared.cookie.removal_cookies()
            }
            None => Vec::new(),
        };
        for cookie in cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(())
    }
}
