//! The demo in a real headless Chromium, driven over WebDriver (chromedriver) with fantoccini.
//!
//! Two WebDriver sessions are two browsers with their own cookie jars ("contexts" A and B). Both
//! sign in as the same person; A signs out everywhere; B's next page load shows it signed out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMIUM` / `CHROMEDRIVER` pointing at
//! the binaries). Without them the test fails with an install hint; it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Demo, Place, session_rows, signed_in_as, visits};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const INSTALL_HINT: &str = "install them with `apt-get update && apt-get install -y chromium chromium-driver` \
     (or set CHROMIUM and CHROMEDRIVER to the binaries)";

/// How long to wait for an element after a navigation.
const WAIT: Duration = Duration::from_secs(20);

fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found at {}: {INSTALL_HINT}",
        var.to_lowercase(),
        path.display()
    );
    path
}

/// chromedriver on a free 127.0.0.1 port; stopped when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(binary: &Path) -> ChromeDriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", binary.display()));
        let mut driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start ({status}); {INSTALL_HINT}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // SIGTERM first so chromedriver can take its browsers down with it.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh browser: its own profile folder, hence its own cookie jar.
async fn browser(driver: &ChromeDriver, chromium: &Path, profile: &tempfile::TempDir) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1024,768",
    ]
    .iter()
    .map(ToString::to_string)
    .chain([format!("--user-data-dir={}", profile.path().display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": args,
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::native()
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}; {INSTALL_HINT}"))
}

async fn source(client: &Client) -> String {
    client.source().await.expect("page source")
}

/// Loads `path` and waits for the page's `<main>`.
async fn open(client: &Client, base: &str, path: &str) -> String {
    client
        .goto(&format!("{base}{path}"))
        .await
        .expect("navigate");
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("main"))
        .await
        .expect("the page loads");
    source(client).await
}

/// Types `name` into the labelled sign-in field and presses the button, as a person would.
async fn sign_in(client: &Client, base: &str, name: &str) {
    let page = open(client, base, "/").await;
    assert_eq!(signed_in_as(&page), None, "starts signed out");
    let label = client
        .find(Locator::Css("label[for=name]"))
        .await
        .expect("the name field has a label");
    assert!(label.text().await.unwrap().contains("Sign in as"));
    let field = client.find(Locator::Id("name")).await.expect("name field");
    field.send_keys(name).await.expect("type the name");
    click_and_wait(client, "#sign-in button[type=submit]", "#signed-in").await;
}

async fn click_and_wait(client: &Client, button: &str, then: &str) {
    client
        .find(Locator::Css(button))
        .await
        .unwrap_or_else(|e| panic!("no {button}: {e}"))
        .click()
        .await
        .expect("click");
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(then))
        .await
        .unwrap_or_else(|e| panic!("after clicking {button}, no {then}: {e}"));
}

/// With `DEMO_SCREENSHOTS=DIR`, saves a PNG of the current page as `DIR/NAME.png`, to look at.
async fn screenshot(client: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("DEMO_SCREENSHOTS") {
        let png = client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).expect("save it");
    }
}

async fn cookie(client: &Client) -> Option<String> {
    client
        .get_named_cookie("sessionbank_demo")
        .await
        .ok()
        .map(|c| c.value().to_owned())
}

async fn scenario(a: Client, b: Client, base: String, demo_addr: SocketAddr) {
    // The counter, in a browser.
    let page = open(&a, &base, "/").await;
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert_eq!(a.title().await.unwrap(), "Home · sessionbank demo");
    assert_eq!(visits(&page), 1);
    a.refresh().await.unwrap();
    assert_eq!(visits(&source(&a).await), 2);
    assert_eq!(visits(&open(&a, &base, "/").await), 3);

    screenshot(&a, "home-signed-out").await;

    // A and B sign in as the same person.
    sign_in(&a, &base, "Grace Hopper").await;
    let page = source(&a).await;
    assert_eq!(signed_in_as(&page).as_deref(), Some("Grace Hopper"));
    // `sign_in` loaded `/` once more (4), and the sign-in redirect loads it again (5).
    assert_eq!(
        visits(&page),
        5,
        "sign-in kept the session's data under the new id"
    );
    sign_in(&b, &base, "Grace Hopper").await;
    assert_eq!(visits(&source(&b).await), 2, "B has its own counter");
    let a_cookie = cookie(&a).await.expect("A has a session cookie");
    let b_cookie = cookie(&b).await.expect("B has a session cookie");
    assert_ne!(a_cookie, b_cookie);

    // Both see both sessions, each marking its own.
    let mut shorts = Vec::new();
    for client in [&a, &b] {
        client
            .find(Locator::LinkText("See your sessions"))
            .await
            .expect("a link to your sessions")
            .click()
            .await
            .unwrap();
        client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("table#sessions"))
            .await
            .expect("the sessions page");
        let page = source(client).await;
        let rows = session_rows(&page);
        assert_eq!(rows.len(), 2, "{page}");
        assert_eq!(rows.iter().filter(|(_, current)| *current).count(), 1);
        assert!(
            page.contains("HeadlessChrome"),
            "the user agent is listed: {page}"
        );
        shorts.push(rows.iter().find(|(_, c)| *c).unwrap().0.clone());
        screenshot(client, "sessions").await;
    }
    assert_ne!(shorts[0], shorts[1]);

    // A signs out everywhere.
    click_and_wait(&a, "#sign-out-everywhere", "#signed-out").await;
    let page = source(&a).await;
    assert_eq!(signed_in_as(&page), None);

    // B's next page load shows it signed out, with the sign-in form.
    b.refresh().await.unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("main"))
        .await
        .unwrap();
    let page = source(&b).await;
    assert!(
        b.current_url().await.unwrap().path() == "/",
        "/sessions sends a signed-out browser home"
    );
    assert_eq!(signed_in_as(&page), None, "{page}");
    b.find(Locator::Css("form#sign-in"))
        .await
        .expect("B sees the sign-in form");
    assert_ne!(
        cookie(&b).await,
        Some(b_cookie.clone()),
        "B's old session is gone"
    );

    // B's old cookie, replayed, is dead; and so is A's.
    for old in [b_cookie, a_cookie] {
        let mut replay = common::HttpClient::new(demo_addr);
        replay.jar.insert("sessionbank_demo".into(), old);
        let page = replay.get("/").body;
        assert_eq!(signed_in_as(&page), None);
        assert_eq!(visits(&page), 1, "a fresh session, not the old one");
    }
    let page = open(&a, &base, "/sessions").await;
    assert_eq!(signed_in_as(&page), None, "A is signed out too");

    // Signing in again shows one session: the old ones are gone from the owner's list.
    sign_in(&a, &base, "Grace Hopper").await;
    let page = open(&a, &base, "/sessions").await;
    let rows = session_rows(&page);
    assert_eq!(rows.len(), 1, "{page}");
    assert!(!shorts.contains(&rows[0].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_sign_in_and_one_signs_out_everywhere() {
    let chromium = binary("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
    let place = Place::new();
    let demo = Demo::start(&place.store(), &place.key());
    let driver = ChromeDriver::start(&chromedriver);
    let profile_a = tempfile::tempdir().unwrap();
    let profile_b = tempfile::tempdir().unwrap();
    let a = browser(&driver, &chromium, &profile_a).await;
    let b = browser(&driver, &chromium, &profile_b).await;

    // Run the scenario in a task so the browsers are closed even when an assertion fails.
    let outcome = tokio::spawn(scenario(a.clone(), b.clone(), demo.base_url(), demo.addr)).await;
    let _ = a.close().await;
    let _ = b.close().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
