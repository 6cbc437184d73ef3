//! Shared by the demo's integration tests: start the real `sessionbank-demo` binary on a free
//! port with a disk store, and a tiny HTTP/1.1 client with a cookie jar.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the demo may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running demo process; killed when dropped.
pub struct Demo {
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Demo {
    /// Starts the demo on `127.0.0.1:0` with a disk store in `store_dir` and its key in `key_file`.
    pub fn start(store_dir: &Path, key_file: &Path) -> Demo {
        let store = format!("disk://{}", store_dir.display());
        Demo::start_with(&store, key_file)
    }

    /// Starts the demo on `127.0.0.1:0` with the given store URL and key file.
    pub fn start_with(store_url: &str, key_file: &Path) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessionbank-demo"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--store",
                store_url,
                "--key-file",
            ])
            .arg(key_file)
            .env_remove("SESSIONBANK_KEY")
            .env_remove("SESSIONBANK_URL")
            .env(
                "RUST_LOG",
                std::env::var("DEMO_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sessionbank-demo binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("sessionbank-demo listening on http://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr.parse().expect("the printed address parses"),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the demo did not start listening within {START_TIMEOUT:?} ({status:?})");
            }
        };
        Demo {
            child: Some(child),
            addr,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new cookie-less client for this demo.
    pub fn client(&self) -> HttpClient {
        HttpClient::new(self.addr)
    }

    /// Sends SIGTERM and waits for the process to exit (at most 20 s).
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait for the demo") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A temp folder with a `store/` and a `demo.key` path in it.
pub struct Place {
    pub dir: tempfile::TempDir,
}

impl Place {
    pub fn new() -> Place {
        Place {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("demo.key")
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 client (one connection per request) with a cookie jar: enough to act as a
/// browser without JavaScript, with no HTTP client dependency.
#[derive(Debug, Clone)]
pub struct HttpClient {
    addr: SocketAddr,
    /// Cookie name -> value.
    pub jar: BTreeMap<String, String>,
    pub user_agent: String,
}

impl HttpClient {
    pub fn new(addr: SocketAddr) -> HttpClient {
        HttpClient {
            addr,
            jar: BTreeMap::new(),
            user_agent: "demo-test-client/1.0".into(),
        }
    }

    /// Points the client (and its cookies) at another address: a restarted demo.
    pub fn with_addr(mut self, addr: SocketAddr) -> HttpClient {
        self.addr = addr;
        self
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(
            "POST",
            path,
            Some(("application/x-www-form-urlencoded", &body)),
        )
    }

    pub fn request(&mut self, method: &str, path: &str, body: Option<(&str, &str)>) -> Reply {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the demo");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nConnection: close\r\n",
            self.addr, self.user_agent
        );
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            head.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        let payload = body.map_or("", |(_, b)| b);
        if let Some((content_type, b)) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send request");
        stream.write_all(payload.as_bytes()).expect("send body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response");
        let reply = parse_response(&raw);
        for (name, value) in &reply.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let cookie = cookie::Cookie::parse(value.clone()).expect("a valid Set-Cookie");
                let removed = cookie
                    .max_age()
                    .is_some_and(|a| a.is_zero() || a.is_negative())
                    || cookie.expires_datetime().is_some_and(|t| t <= time_now());
                if removed {
                    self.jar.remove(cookie.name());
                } else {
                    self.jar
                        .insert(cookie.name().to_owned(), cookie.value().to_owned());
                }
            }
        }
        reply
    }
}

fn time_now() -> cookie::time::OffsetDateTime {
    cookie::time::OffsetDateTime::now_utc()
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("ASCII chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("a hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The visit count on the home page.
pub fn visits(body: &str) -> u64 {
    let rest = body
        .split("You have visited this page <strong>")
        .nth(1)
        .unwrap_or_else(|| panic!("no visit counter in:\n{body}"));
    rest.split('<').next().unwrap().parse().expect("a number")
}

/// The name after "Signed in as", or `None` when the page shows the sign-in form.
pub fn signed_in_as(body: &str) -> Option<String> {
    let name = body
        .split("Signed in as <strong>")
        .nth(1)
        .map(|rest| rest.split("</strong>").next().unwrap().to_owned());
    let form = body.contains("action=\"/sign-in\"");
    assert!(
        name.is_some() != form,
        "a page shows either the signed-in name or the sign-in form:\n{body}"
    );
    name
}

/// The rows of `/sessions`: (short id, whether it is marked as this session).
pub fn session_rows(body: &str) -> Vec<(String, bool)> {
    body.split("<tr class=\"session\" data-session=\"")
        .skip(1)
        .map(|row| {
            let short = row.split('"').next().unwrap().to_owned();
            let row = row.split("</tr>").next().unwrap();
            (short, row.contains("(this session)"))
        })
        .collect()
}
