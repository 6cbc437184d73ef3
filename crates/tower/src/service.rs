//! [`SessionService`]: the middleware service [`SessionLayer`](crate::SessionLayer) builds.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use sessionbank_web::{HttpResponse, RequestSession, SessionConfig};
use tower_service::Service;

use crate::extractor::Session;

/// The response future of [`SessionService`]: the inner service's future, then (only when the
/// handler touched the session or the cookie needs re-signing) saving the session and setting
/// `Set-Cookie`; a failed save answers a bare 500.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use sessionbank_tower::{KeyRing, SessionLayer};
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let service = ServiceBuilder::new()
///     .layer(SessionLayer::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?))
///     .service(service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) }));
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert!(response.headers().get("set-cookie").is_none());
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub type ResponseFuture<F, B> = sessionbank_web::ResponseFuture<F, HttpResponse<B>>;

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
        let values = request
            .headers()
            .get_all(self.config.transport.request_header())
            .iter()
            .filter_map(|value| value.to_str().ok());
        let session = RequestSession::start(&self.config, values);
        request
            .extensions_mut()
            .insert(Session::new(session.handle().clone()));
        ResponseFuture::new(self.inner.call(request), session)
    }
}
