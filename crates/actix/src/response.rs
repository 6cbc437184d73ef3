//! [`ActixResponse`]: how the shared response future ([`sessionbank_web::ResponseFuture`])
//! appends session headers to an actix-web response, and the [`ResponseFuture`] alias.

use std::marker::PhantomData;

use actix_web::HttpResponse;
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use sessionbank_core::Result;
use sessionbank_web::{FrameworkResponse, ResponseHeader};

/// actix-web's side of [`sessionbank_web::ResponseFuture`]: session headers are appended to
/// the [`ServiceResponse`], and a failed save becomes a bare `500 Internal Server Error`. The
/// body is [`EitherBody`]: the handler's on the left, the 500's empty body on the right.
///
/// # Examples
///
/// ```
/// use actix_web::body::{BoxBody, EitherBody};
/// use actix_web::dev::ServiceResponse;
/// use sessionbank_actix::ActixResponse;
/// use sessionbank_web::FrameworkResponse;
///
/// fn output_of<R: FrameworkResponse>() -> std::marker::PhantomData<R::Output> {
///     std::marker::PhantomData
/// }
/// let _: std::marker::PhantomData<ServiceResponse<EitherBody<BoxBody>>> =
///     output_of::<ActixResponse<BoxBody>>();
/// ```
#[derive(Debug)]
pub struct ActixResponse<B>(PhantomData<fn() -> B>);

impl<B> FrameworkResponse for ActixResponse<B> {
    type Response = ServiceResponse<B>;
    type Output = ServiceResponse<EitherBody<B>>;

    fn append(response: &mut Self::Response, headers: Vec<ResponseHeader>) -> Result<()> {
        let parts = headers
            .iter()
            .map(|header| header.to_parts(HeaderName::from_bytes, HeaderValue::from_str))
            .collect::<Result<Vec<_>>>()?;
        let map = response.headers_mut();
        for (name, value) in parts {
            map.append(name, value);
        }
        Ok(())
    }

    fn finished(response: Self::Response) -> Self::Output {
        response.map_into_left_body()
    }

    fn failed(response: Self::Response) -> Self::Output {
        response.into_response(
            HttpResponse::InternalServerError()
                .finish()
                .map_into_right_body(),
        )
    }
}

/// The response future of [`SessionService`](crate::SessionService): first the inner
/// service's future, then (only when the handler touched the session or the cookie needs
/// re-signing) saving the session and setting `Set-Cookie`; a failed save answers a bare 500.
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
pub type ResponseFuture<F, B> = sessionbank_web::ResponseFuture<F, ActixResponse<B>>;
