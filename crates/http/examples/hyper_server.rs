//! A plain hyper 1 server with sessions and no framework: a visit counter.
//!
//! ```text
//! cargo run -p sessionbank-http --example hyper_server [127.0.0.1:3000]
//! curl -c jar -b jar http://127.0.0.1:3000/            # visit number 1, 2, 3, ...
//! curl -c jar -b jar http://127.0.0.1:3000/forget-me   # cookie gone when the browser closes
//! curl -c jar -b jar http://127.0.0.1:3000/logout      # session ended, cookie removed
//! ```
//!
//! Sessions live in a MemoryStore here; an application opens its store from a URL
//! (`sessionbank::connect(&std::env::var("SESSIONBANK_URL")?)`) and loads its signing keys
//! from a secret store (`Key::from_base64`), so cookies survive a restart.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sessionbank_core::{MemoryStore, StoreHandle};
use sessionbank_http::{CookieConfig, KeyRing, Session, Sessions, error_response};
use tokio::net::TcpListener;

type Body = Full<Bytes>;

/// What a route answers, or the session error that makes it a bare 500.
async fn route(
    session: &Session,
    path: &str,
) -> Result<(StatusCode, String), sessionbank_core::Error> {
    match path {
        "/" => {
            let visits = session.get_as::<u64>("visits").await?.unwrap_or(0) + 1;
            session.set(json!({ "visits": visits })).await?;
            Ok((StatusCode::OK, format!("visit number {visits}\n")))
        }
        "/forget-me" => {
            session.expire();
            Ok((StatusCode::OK, "forgotten when the browser closes\n".into()))
        }
        "/logout" => {
            session.end().await?;
            Ok((StatusCode::OK, "goodbye\n".into()))
        }
        _ => Ok((StatusCode::NOT_FOUND, "not found\n".into())),
    }
}

/// One request: start the session, run the route, commit the session into the response.
pub async fn handle(
    sessions: Sessions,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let session = sessions.start(&request);
    let (status, text) = match route(&session, request.uri().path()).await {
        Ok(reply) => reply,
        Err(e) => return Ok(error_response(&e)),
    };
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    match session.commit(&mut response).await {
        Ok(()) => Ok(response),
        Err(e) => Ok(error_response(&e)),
    }
}

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, sessions: Sessions) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(sessions.clone(), request));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// The example's sessions: a MemoryStore, fresh keys, and a cookie that also works over plain
/// HTTP on localhost (drop `.secure(false)` behind TLS).
pub fn sessions() -> Result<Sessions, sessionbank_core::Error> {
    Ok(
        Sessions::new(StoreHandle::new(MemoryStore::new()), KeyRing::generate()?)
            .with_cookie(CookieConfig::new().secure(false)),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, sessions()?).await;
    Ok(())
}
