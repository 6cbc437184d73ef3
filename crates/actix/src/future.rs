//! [`ResponseFuture`]: runs the inner service, then saves the session and sets the cookie (or
//! the token header).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::HttpResponse;
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use futures::future::BoxFuture;
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
    /// The response body is [`EitherBody`]: the handler's body on the left, the empty body of
    /// a `500 Internal Server Error` on the right when saving the session failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::dev::{Service, Transform};
    /// use actix_web::test;
    /// use sessionbank_actix::{KeyRing, ResponseFuture, SessionMiddleware};
    /// use sessionbank_core::{MemoryStore, StoreHandle};
    ///
    /// # actix_web::rt::System::new().block_on(async {
    /// let middleware =
    ///     SessionMiddleware::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?);
    /// let service = middleware.new_transform(test::ok_service()).await.unwrap();
    /// let future: ResponseFuture<_, _> = service.call(test::TestRequest::get().to_srv_request());
    /// let response = future.await?;
    /// assert_eq!(response.status(), 200);
    /// assert!(response.headers().get("set-cookie").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
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
            response: Option<ServiceResponse<B>>,
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
    F: Future<Output = Result<ServiceResponse<B>, E>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, E>;

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
                            return Poll::Ready(Ok(response.map_into_left_body()));
                        }
                    }
                }
                StateProj::Finishing { future, response } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let Some(mut response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let response = match result {
                        Ok(session_headers) => {
                            let headers = response.headers_mut();
                            for (name, value) in session_headers {
                                headers.append(name, value);
                            }
                            response.map_into_left_body()
                        }
                        Err(e) => {
                            tracing::error!(
                                error = %e.chain(),
                                kind = %e.kind(),
                                backend = e.backend(),
                                "saving the session failed; answering 500"
                            );
                            response.into_response(
                                HttpResponse::InternalServerError()
                                    .finish()
                                    .map_into_right_body(),
                            )
                        }
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}
