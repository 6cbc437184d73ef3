//! [`SessionService`]: the service [`SessionMiddleware`](crate::SessionMiddleware) wraps
//! around the app's.

use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use sessionbank_web::{RequestSession, SessionConfig};

use crate::extractor::Session;
use crate::response::ResponseFuture;

/// Middleware service that gives each request a [`Session`] and writes it back afterwards.
/// Built by [`SessionMiddleware`](crate::SessionMiddleware); see there for what it does.
///
/// # Examples
///
/// ```
/// use actix_web::dev::Transform;
/// use actix_web::test;
/// use sessionbank_actix::{KeyRing, SessionMiddleware};
/// use sessionbank_core::{MemoryStore, StoreHandle};
///
/// # actix_web::rt::System::new().block_on(async {
/// let middleware =
///     SessionMiddleware::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
/// let service = middleware.new_transform(test::ok_service()).await.unwrap();
/// let _inner = service.get_ref();
/// # Ok::<(), sessionbank_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
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

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let values = request
            .headers()
            .get_all(self.config.transport.request_header())
            .filter_map(|value| value.to_str().ok());
        let session = RequestSession::start(&self.config, values);
        request
            .extensions_mut()
            .insert(Session::new(session.handle().clone()));
        ResponseFuture::new(self.inner.call(request), session)
    }
}
