//! [`ResponseFuture`]: the response future every service-shaped adapter shares. It runs the
//! inner service, then (only when there is session work) saves the session and appends the
//! session headers, or answers 500 when saving failed.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;
use pin_project_lite::pin_project;
use sessionbank_cookie::ResponseHeader;
use sessionbank_core::{Error, Result};

use crate::request::RequestSession;

/// A framework's response, as [`ResponseFuture`] handles it. Each adapter implements this once,
/// on a marker type of its own.
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::ResponseHeader;
/// use sessionbank_web::FrameworkResponse;
///
/// /// Responses as plain header lists, for illustration.
/// struct Plain;
///
/// impl FrameworkResponse for Plain {
///     type Response = Vec<(String, String)>;
///     type Output = (u16, Vec<(String, String)>);
///
///     fn append(response: &mut Self::Response, headers: Vec<ResponseHeader>) -> sessionbank_core::Result<()> {
///         response.extend(headers.into_iter().map(|h| (h.name, h.value)));
///         Ok(())
///     }
///     fn finished(response: Self::Response) -> Self::Output {
///         (200, response)
///     }
///     fn failed(_: Self::Response) -> Self::Output {
///         (500, Vec::new())
///     }
/// }
/// ```
pub trait FrameworkResponse {
    /// What the inner service answers with.
    type Response;
    /// What the session middleware answers with.
    type Output;

    /// Appends the session headers to the response.
    ///
    /// # Errors
    ///
    /// When a header is not valid for the framework (the cookie name or an attribute is not a
    /// valid header value): the future then answers [`failed`](Self::failed).
    fn append(response: &mut Self::Response, headers: Vec<ResponseHeader>) -> Result<()>;

    /// The response as the middleware returns it, after the session work (or without any).
    fn finished(response: Self::Response) -> Self::Output;

    /// A bare `500 Internal Server Error` in place of `response`: saving the session failed.
    fn failed(response: Self::Response) -> Self::Output;
}

/// Logs a session error that becomes a bare 500, with its kind, backend and whole chain; the
/// client sees none of it. Every adapter logs through this.
pub fn log_failure(error: &Error, what: &str) {
    tracing::error!(
        error = %error.chain(),
        kind = %error.kind(),
        backend = error.backend(),
        "{what}; answering 500"
    );
}

pin_project! {
    /// The response future of a session middleware: first the inner service's future, then
    /// (only when the handler touched the session or the cookie needs re-signing) a boxed
    /// future that saves the session and computes `Set-Cookie`.
    ///
    /// `R` says how the framework's responses take headers ([`FrameworkResponse`]).
    pub struct ResponseFuture<F, R: FrameworkResponse> {
        #[pin]
        state: State<F, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R: FrameworkResponse> {
        Running {
            #[pin]
            future: F,
            session: Option<RequestSession>,
        },
        Finishing {
            future: BoxFuture<'static, Result<Vec<ResponseHeader>>>,
            response: Option<R::Response>,
        },
        Done { marker: PhantomData<R> },
    }
}

impl<F, R: FrameworkResponse> ResponseFuture<F, R> {
    /// Runs `future` (the inner service's), then finishes `session` into its response.
    pub fn new(future: F, session: RequestSession) -> Self {
        Self {
            state: State::Running {
                future,
                session: Some(session),
            },
        }
    }
}

impl<F, R: FrameworkResponse> fmt::Debug for ResponseFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Finishing { .. } => "finishing",
            State::Done { .. } => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, R, E> Future for ResponseFuture<F, R>
where
    F: Future<Output = std::result::Result<R::Response, E>>,
    R: FrameworkResponse,
{
    type Output = std::result::Result<R::Output, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Running { future, session } => {
                    let result = ready!(future.poll(cx));
                    let session = session.take();
                    let done = State::Done {
                        marker: PhantomData,
                    };
                    let response = match result {
                        Ok(response) => response,
                        Err(e) => {
                            // The inner service failed without a response: nothing to attach a
                            // cookie to, so the session's changes are not saved.
                            this.state.set(done);
                            return Poll::Ready(Err(e));
                        }
                    };
                    match session {
                        Some(session) if session.has_work() => {
                            this.state.set(State::Finishing {
                                future: Box::pin(session.finish()),
                                response: Some(response),
                            });
                        }
                        _ => {
                            this.state.set(done);
                            return Poll::Ready(Ok(R::finished(response)));
                        }
                    }
                }
                StateProj::Finishing { future, response } => {
                    let result = ready!(future.as_mut().poll(cx));
                    let Some(mut response) = response.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let output = match result.and_then(|headers| R::append(&mut response, headers))
                    {
                        Ok(()) => R::finished(response),
                        Err(e) => {
                            log_failure(&e, "saving the session failed");
                            R::failed(response)
                        }
                    };
                    this.state.set(State::Done {
                        marker: PhantomData,
                    });
                    return Poll::Ready(Ok(output));
                }
                StateProj::Done { .. } => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// [`FrameworkResponse`] for `http::Response<B>` (tower, hyper): headers are appended, and a
/// failure is an empty-bodied 500.
#[derive(Debug)]
pub struct HttpResponse<B>(PhantomData<fn() -> B>);

impl<B: Default> FrameworkResponse for HttpResponse<B> {
    type Response = http::Response<B>;
    type Output = http::Response<B>;

    fn append(response: &mut Self::Response, headers: Vec<ResponseHeader>) -> Result<()> {
        append_http(response.headers_mut(), &headers)
    }

    fn finished(response: Self::Response) -> Self::Output {
        response
    }

    fn failed(_: Self::Response) -> Self::Output {
        let mut response = http::Response::new(B::default());
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    }
}

/// Appends session headers to an `http` header map.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`](sessionbank_core::ErrorKind::InvalidInput) when a header is not
/// a valid `http` header (nothing is appended then).
///
/// # Examples
///
/// ```
/// use sessionbank_cookie::ResponseHeader;
///
/// let mut headers = http::HeaderMap::new();
/// let header = ResponseHeader { name: "set-cookie".into(), value: "id=x; Path=/".into() };
/// sessionbank_web::append_http(&mut headers, &[header])?;
/// assert_eq!(headers["set-cookie"], "id=x; Path=/");
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub fn append_http(headers: &mut http::HeaderMap, session: &[ResponseHeader]) -> Result<()> {
    let parts = session
        .iter()
        .map(|header| header.to_parts(http::HeaderName::from_bytes, http::HeaderValue::from_str))
        .collect::<Result<Vec<_>>>()?;
    for (name, value) in parts {
        headers.append(name, value);
    }
    Ok(())
}
