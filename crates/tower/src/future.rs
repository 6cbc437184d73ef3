//! [`ResponseFuture`]: runs the inner service, then saves the session and sets the cookie (or
//! the token header).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;
use sessionbank_cookie::{SessionResponse, Verified};
use sessionbank_core::{Error, SessionHandle};

use crate::config::SessionConfig;

/// What the response future needs to save the session after the handler.
pub(crate) struct Finish {
    handle: SessionHandle,
    config: Arc<SessionConfig>,
    incoming: Option<Verified>,
}

impl Finish {
    pub(crate) fn new(
        handle: SessionHandle,
        config: Arc<SessionConfig>,
        incoming: Option<Verified>,
    ) -> Self {
        Self {
            handle,
            config,
            incoming,
        }
    }

    fn response(&self) -> SessionResponse<'_> {
        let config = &*self.config;
        SessionResponse::new(
            &self.handle,
            &config.transport,
            &config.keys,
            &*config.clock,
            self.incoming,
        )
    }

    /// Whether anything can happen after the handler. If not, the response goes out as it is,
    /// without allocating.
    fn has_work(&self) -> bool {
        self.response().has_work()
    }

    /// Saves the session and returns the headers to append (`Set-Cookie`, or the token's).
    async fn run(self) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
        let headers = self.response().save().await?;
        headers
            .iter()
            .map(|header| header.to_parts(HeaderName::from_bytes, HeaderValue::from_str))
            .collect()
    }
}

pin_project! {
    /// The response future of [`SessionService`](crate::SessionService): first the inner
    /// service's future, then (only when the handler touched the session or the cookie needs
    /// re-signing) a boxed future that saves the session and computes `Set-Cookie`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use sessionbank_tower::{KeyRing, ResponseFuture, SessionLayer};
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
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Running {
            #[pin]
            future: F,
            finish: Option<Finish>,
        },
        Finishing {
            future: BoxFuture<'static, Result<Vec<(HeaderName, HeaderValue)>, Error>>,
            response: Option<Response<B>>,
        },
        Done,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(future: F, finish: Finish) -> Self {
        Self {
            state: State::Running {
                future,
                finish: Some(finish),
            },
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Finishing { .. } => "finishing",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Running { future, finish } => {
                    let result = ready!(future.poll(cx));
                    let finish = finish.take();
                    let response = match result {
                        Ok(response) => response,
                        Err(e) => {
                            // The inner service failed without a response: nothing to attach a
                            // cookie to, so the session's changes are not saved.
                            this.state.set(State::Done);
                            return Poll::Ready(Err(e));
                        }
                    };
                    match finish {
                        Some(finish) if finish.has_work() => {
                            this.state.set(State::Finishing {
                                future: Box::pin(finish.run()),
                                response: Some(response),
                            });
                        }
                        _ => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Finishing { future, response } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let Some(mut response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    match result {
                        Ok(session_headers) => {
                            let headers = response.headers_mut();
                            for (name, value) in session_headers {
                                headers.append(name, value);
                            }
                        }
                        Err(e) => {
                            tracing::error!(
                                error = %e.chain(),
                                kind = %e.kind(),
                                backend = e.backend(),
                                "saving the session failed; answering 500"
                            );
                            response = Response::new(B::default());
                            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        }
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}
