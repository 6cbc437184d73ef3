//! [`SessionService`]: the middleware service [`SessionLayer`](crate::SessionLayer) builds.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use sessionbank_core::SessionHandle;
use tower_service::Service;

use crate::config::SessionConfig;
use crate::extractor::Session;
use crate::future::{Finish, ResponseFuture};

/// Middleware that gives each request a [`Session`] and writes it back afterwards. Built by
/// [`SessionLayer`](crate::SessionLayer); see there for what it does.
///
/// # Examples
///
/// ```
/// use sessionbank_tower::{KeyRing, SessionLayer, SessionService};
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use tower_layer::Layer;
///
/// let layer = SessionLayer::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
/// let service: SessionService<()> = layer.layer(());
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<SessionConfig>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, config: Arc<SessionConfig>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let headers = request
            .headers()
            .get_all(config.transport.request_header())
            .iter()
            .filter_map(|value| value.to_str().ok());
        let incoming = match config.transport.read(headers, &config.keys) {
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
        request
            .extensions_mut()
            .insert(Session::new(handle.clone()));
        let finish = Finish::new(handle, self.config.clone(), incoming);
        ResponseFuture::new(self.inner.call(request), finish)
    }
}
