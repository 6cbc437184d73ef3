//! [`SessionService`]: the service [`SessionMiddleware`](crate::SessionMiddleware) wraps
//! around the app's.

use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use sessionbank_core::SessionHandle;

use crate::config::SessionConfig;
use crate::extractor::Session;
use crate::future::{Finish, ResponseFuture};

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
        let config = &self.config;
        let headers = request
            .headers()
            .get_all(config.transport.request_header())
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
        let finish = Finish::new(handle, config.clone(), incoming);
        ResponseFuture::new(self.inner.call(request), finish)
    }
}
