//! STOPGAP until `sessionbank-tower` lands: a minimal session layer and extractor with the
//! planned `sessionbank_tower` API (`SessionLayer::new(store, keys).with_cookie(..)
//! .with_policy(..)`, and a `Session` extractor over core's `SessionHandle`), so the demo and
//! its tests run today. Delete this file and import `sessionbank_tower::{Session, SessionLayer}`
//! instead once that crate is ready.

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
use sessionbank_cookie::{CookieConfig, KeyRing};
use sessionbank_core::session::{Outcome, SessionHandle};
use sessionbank_core::{ExpiryPolicy, Result, StoreHandle, Timestamp, system_clock};

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
        let id = self
            .shared
            .cookie
            .read(values, &self.shared.keys)
            .ok()
            .flatten()
            .map(|v| v.id);
        let session = SessionHandle::new(
            self.shared.store.clone(),
            self.shared.policy,
            system_clock(),
            id,
        );
        req.extensions_mut().insert(Session(session.clone()));
        let shared = self.shared.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(req).await?;
            if let Err(e) = shared.finish(&session, &mut response).await {
                tracing::error!(error = %e, "cannot save the session");
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        })
    }
}

/// One request's session: core's [`SessionHandle`] (lazy load, per-key writes, id rotation,
/// never re-creating a session another request destroyed), as an axum extractor.
#[derive(Clone)]
pub(crate) struct Session(SessionHandle);

impl std::ops::Deref for Session {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.0
    }
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

impl Shared {
    async fn finish(&self, session: &SessionHandle, response: &mut Response) -> Result<()> {
        let cookies = match session.finish().await? {
            Outcome::Unchanged => Vec::new(),
            Outcome::SetCookie { id, expires_at } => {
                self.cookie
                    .set_cookies(&id, expires_at, Timestamp::now(), &self.keys)
            }
            Outcome::ClearCookie => self.cookie.removal_cookies(),
        };
        for cookie in cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(())
    }
}
