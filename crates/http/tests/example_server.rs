//! Runs the example hyper server (examples/hyper_server.rs) on a free port and talks to it over
//! real TCP with hyper's client: the visit counter counts, `/forget-me` turns the cookie into a
//! browser-session cookie, `/logout` removes it.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/hyper_server.rs"]
mod hyper_server;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

struct Reply {
    status: u16,
    set_cookies: Vec<String>,
    body: String,
}

/// One request on a new TCP connection.
async fn get(addr: std::net::SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::get(path).header("host", addr.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        set_cookies,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_counts_visits_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hyper_server::serve(
        listener,
        hyper_server::sessions().unwrap(),
    ));

    let first = get(addr, "/", None).await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, "visit number 1\n")
    );
    assert_eq!(first.set_cookies.len(), 1);
    let set_cookie = &first.set_cookies[0];
    assert!(set_cookie.starts_with("id="), "{set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("Max-Age="),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains("Secure"),
        "the example runs on plain HTTP"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    for n in 2..=3 {
        let reply = get(addr, "/", Some(&cookie)).await;
        assert_eq!(reply.body, format!("visit number {n}\n"));
    }
    // Another visitor has their own count.
    assert_eq!(get(addr, "/", None).await.body, "visit number 1\n");

    let reply = get(addr, "/forget-me", Some(&cookie)).await;
    assert_eq!(reply.set_cookies.len(), 1);
    assert_eq!(
        reply.set_cookies[0].split(';').next().unwrap(),
        cookie,
        "same session"
    );
    assert!(
        !reply.set_cookies[0].contains("Max-Age"),
        "{}",
        reply.set_cookies[0]
    );
    assert_eq!(get(addr, "/", Some(&cookie)).await.body, "visit number 4\n");

    let reply = get(addr, "/logout", Some(&cookie)).await;
    assert_eq!(reply.body, "goodbye\n");
    assert!(
        reply.set_cookies[0].contains("Max-Age=0"),
        "{}",
        reply.set_cookies[0]
    );
    assert_eq!(
        get(addr, "/", Some(&cookie)).await.body,
        "visit number 1\n",
        "ended"
    );
    assert_eq!(get(addr, "/nowhere", None).await.status, 404);

    server.abort();
}
