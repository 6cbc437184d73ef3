//! One HTTP behaviour suite for every web adapter (axum/tower, actix-web, plain `http`).
//!
//! Each trial here is a session behaviour seen from the outside: requests with and without a
//! cookie (or, for the header transport, a token header), the `Set-Cookie` and other headers and
//! bodies that come back, and what reached the store (a real
//! [`MemoryStore`] behind an [`InstrumentedStore`] that counts calls and fails on demand).
//! An adapter's test target implements [`Framework`] once (the fixed route set below, in that
//! framework's idiom) and runs every trial with [`http_suite!`](crate::http_suite!), which
//! writes one test per trial, named as the trial:
//!
//! ```text
//! sessionbank_testkit::http_suite!(Axum, #[tokio::test]);
//! ```
//!
//! (a whole, compiled example is on [`http_suite!`](crate::http_suite!)).
//!
//! # The routes
//!
//! | method and path              | what the handler does                                        |
//! |------------------------------|--------------------------------------------------------------|
//! | `GET /count`                 | `visits` + 1 (from 0), stored; the body is the new count      |
//! | `GET /ignore`                | never touches the session; body `ignored`                     |
//! | `GET /get/{key}`             | the JSON value of `key` (`to_string`), or an empty body      |
//! | `POST /set/{key}/{value}`    | stores the string `value` under `key`; body `ok`             |
//! | `POST /barrier-set/{k}/{v}`  | reads `visits`, waits on [`AppOptions::barrier`], sets; `ok` |
//! | `POST /gated-set/{k}/{v}`    | reads `visits`, [`Gate::loaded`], awaits [`Gate::go`], sets  |
//! | `POST /cycle`                | cycles the session id; body `cycled`                         |
//! | `POST /destroy`              | destroys the session; body `destroyed`                       |
//! | `GET /n`                     | the number of sessions in the store (through the session)    |
//!
//! A store error in a handler is the adapter's own error response (a bare 500).
//!
//! Most trials use the default cookie transport; the `header_*` trials and
//! `custom_header_token_round_trip` build the same app with a [`HeaderConfig`]
//! ([`AppOptions::transport`]) and send the token in `Authorization: Bearer TOKEN` or a custom
//! header ([`SessionApp::send_headers`]).
//!
//! # Stores
//!
//! The store behind the layer is a [`Backend`]: [`Memory`] (a [`MemoryStore`] on the trial's
//! [`ManualClock`]), or a server store an adapter's test target opens in its own namespace (a key
//! prefix, a table) for each world. [`http_suite!`](crate::http_suite!) runs every trial on
//! [`Memory`]; [`http_suite_trials!`](crate::http_suite_trials!) lists the trials for a server
//! backend, as `libtest-mimic` trials named `<backend>::<trial>`, for a `harness = false` target
//! that starts the server once in its `main`.
//!
//! On a server the layer still reads the [`ManualClock`] (started at the wall-clock time), but the
//! server expires keys and stamps records by its own, real clock. So only the trials whose
//! assertions hold with a real clock on the store side run there ([`SERVER_TRIALS`]); these stay
//! memory-only:
//!
//! - `touch_only_when_the_policy_says_so`: it checks the stored expiry equals the manual clock's
//!   now + 30 minutes, which only a store on that clock writes.
//!
//! (`tampered_unknown_and_expired_cookies_get_a_fresh_session` moves the clock 31 minutes; it
//! does run on servers, because the layer, not the store, finds that session expired.)

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use sessionbank_cookie::{CookieConfig, HeaderConfig, Key, KeyRing, Transport};
use sessionbank_core::{
    Clock, ExpiryPolicy, ManualClock, MemoryStore, Operation, SessionId, Store, StoreHandle,
    Timestamp,
};
use tokio::sync::{Barrier, Notify};

use crate::InstrumentedStore;

#[doc(hidden)]
pub use libtest_mimic;

/// Where a trial's sessions are stored: opens a fresh, empty store for each world.
///
/// # Examples
///
/// ```
/// use sessionbank_core::{ManualClock, MemoryStore};
/// use sessionbank_testkit::http_suite::Backend;
///
/// #[derive(Clone)]
/// struct Plain;
/// impl Backend for Plain {
///     type Store = MemoryStore;
///     fn clock(&self) -> ManualClock {
///         ManualClock::starting_now()
///     }
///     async fn open(&self, _clock: &ManualClock) -> MemoryStore {
///         MemoryStore::new()
///     }
/// }
/// ```
pub trait Backend: Clone + Send + Sync + 'static {
    /// The store type.
    type Store: Store + Clone;

    /// A clock for the layer, standing where the store expects time to be (a server store
    /// stamps with the wall clock, so start it there).
    fn clock(&self) -> ManualClock;

    /// A fresh, empty store of its own (its own namespace on a server); `clock` is the layer's.
    fn open(&self, clock: &ManualClock) -> impl Future<Output = Self::Store> + Send;
}

/// The [`MemoryStore`] backend, on the trial's own [`ManualClock`].
///
/// # Examples
///
/// ```
/// use sessionbank_core::Clock;
/// use sessionbank_testkit::http_suite::{Backend, Memory};
///
/// assert_eq!(Memory.clock().now().as_millis(), 1_700_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory;

impl Backend for Memory {
    type Store = MemoryStore;

    fn clock(&self) -> ManualClock {
        ManualClock::new(Timestamp::from_millis(1_700_000_000_000))
    }

    async fn open(&self, clock: &ManualClock) -> MemoryStore {
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build()
    }
}

/// How a [`Prefixed`] backend opens a store from a URL.
pub type ConnectFn<S> =
    fn(String) -> futures::future::BoxFuture<'static, sessionbank_core::Result<S>>;

/// A server store opened from a URL, each trial under a fresh `?prefix=suiteN:` of its own
/// (Redis, Memcached): one server for the test binary, no trial sees another's sessions.
///
/// # Examples
///
/// ```
/// use sessionbank_core::MemoryStore;
/// use sessionbank_testkit::http_suite::Prefixed;
///
/// // A real test passes e.g. `|url| Box::pin(async move { RedisStore::connect(&url).await })`.
/// let backend: Prefixed<MemoryStore> =
///     Prefixed::new("redis://127.0.0.1:6379/0", |_url| Box::pin(async { Ok(MemoryStore::new()) }));
/// # let _ = backend;
/// ```
#[derive(Debug)]
pub struct Prefixed<S> {
    url: String,
    connect: ConnectFn<S>,
}

impl<S> Clone for Prefixed<S> {
    fn clone(&self) -> Self {
        Self {
            url: self.url.clone(),
            connect: self.connect,
        }
    }
}

impl<S> Prefixed<S> {
    /// Stores at `url` (without a query), opened with `connect`.
    pub fn new(url: impl Into<String>, connect: ConnectFn<S>) -> Self {
        Self {
            url: url.into(),
            connect,
        }
    }
}

/// Numbers the key prefixes of this process.
static NEXT_PREFIX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl<S: Store + Clone> Backend for Prefixed<S> {
    type Store = S;

    fn clock(&self) -> ManualClock {
        ManualClock::starting_now()
    }

    async fn open(&self, _clock: &ManualClock) -> S {
        let n = NEXT_PREFIX.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = format!("{}?prefix=suite{n}:", self.url);
        (self.connect)(url.clone())
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
    }
}

/// Text planted in injected store failures; it must never reach a response.
pub const SECRET_ERROR_TEXT: &str = "db-password=hunter2 at 10.0.0.7";

/// One minute.
pub const MIN: Duration = Duration::from_secs(60);

/// Lets a trial hold a handler (`/gated-set`) between loading its session and writing to it.
///
/// # Examples
///
/// ```
/// use sessionbank_testkit::http_suite::Gate;
///
/// let gate = Gate::default();
/// gate.loaded.notify_one(); // the handler says: loaded
/// gate.go.notify_one(); // the trial says: go on
/// ```
#[derive(Debug, Default)]
pub struct Gate {
    /// Notified by the handler once it has loaded the session.
    pub loaded: Notify,
    /// Notified by the trial to let the handler write.
    pub go: Notify,
}

/// Everything an adapter needs to build the app under test.
///
/// # Examples
///
/// ```
/// use sessionbank_testkit::http_suite::{AppOptions, Framework, Reply, SessionApp, TestApp};
///
/// struct Fixed;
/// impl SessionApp for Fixed {
///     async fn send_headers(&self, _method: &str, _path: &str, _headers: &[(&str, &str)]) -> Reply {
///         Reply { status: 404, set_cookies: Vec::new(), headers: Vec::new(), body: String::new() }
///     }
/// }
/// struct Nothing;
/// impl Framework for Nothing {
///     async fn app(options: AppOptions) -> impl SessionApp {
///         let _ = (options.store, options.keys, options.transport, options.policy, options.clock);
///         Fixed
///     }
/// }
/// let app = TestApp::<Nothing>::new();
/// let options: AppOptions = app.options(app.keys.clone());
/// assert_eq!(options.barrier.as_ref() as *const _, app.barrier.as_ref() as *const _);
/// ```
#[derive(Clone)]
pub struct AppOptions {
    /// The store behind the session layer (an instrumented store of the [`Backend`]).
    pub store: StoreHandle,
    /// The signing keys.
    pub keys: KeyRing,
    /// How the session travels: a cookie (the default) or a token header.
    pub transport: Transport,
    /// The expiry policy.
    pub policy: ExpiryPolicy,
    /// The clock the layer reads (on [`Memory`], the store runs on the same one).
    pub clock: ManualClock,
    /// For `/barrier-set`: two parties.
    pub barrier: Arc<Barrier>,
    /// For `/gated-set`.
    pub gate: Arc<Gate>,
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A built app that answers requests, with the session layer of one framework.
///
/// # Examples
///
/// ```
/// use sessionbank_testkit::http_suite::{Reply, SessionApp};
///
/// struct Fixed;
/// impl SessionApp for Fixed {
///     async fn send_headers(&self, _method: &str, _path: &str, headers: &[(&str, &str)]) -> Reply {
///         let set_cookies = Vec::new();
///         let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
///         Reply { status: 200, set_cookies, headers, body: "ignored".into() }
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // `send` is `send_headers` with the cookie as the `Cookie` header.
/// assert_eq!(Fixed.send("GET", "/", Some("id=x")).await.header("cookie"), Some("id=x"));
/// # });
/// ```
pub trait SessionApp {
    /// Sends one request with `headers` (`(name, value)` pairs, names lowercase, each appended
    /// as given) and reads the response whole.
    fn send_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> impl Future<Output = Reply>;

    /// Sends one request (`cookie` is the whole `Cookie` header) and reads the response whole.
    fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> impl Future<Output = Reply> {
        async move {
            match cookie {
                Some(cookie) => self.send_headers(method, path, &[("cookie", cookie)]).await,
                None => self.send_headers(method, path, &[]).await,
            }
        }
    }
}

/// A web framework with a session layer: builds the app (the routes of the
/// [module docs](self)) from [`AppOptions`].
///
/// # Examples
///
/// ```
/// use sessionbank_testkit::http_suite::{AppOptions, Framework, Reply, SessionApp};
///
/// struct Fixed;
/// impl SessionApp for Fixed {
///     async fn send_headers(&self, _method: &str, _path: &str, _headers: &[(&str, &str)]) -> Reply {
///         Reply { status: 404, set_cookies: Vec::new(), headers: Vec::new(), body: String::new() }
///     }
/// }
/// struct Nothing;
/// impl Framework for Nothing {
///     async fn app(_options: AppOptions) -> impl SessionApp {
///         Fixed
///     }
/// }
/// ```
pub trait Framework {
    /// The app with every route, behind the framework's session layer configured by `options`.
    fn app(options: AppOptions) -> impl Future<Output = impl SessionApp>;
}

/// A response, read whole.
///
/// # Examples
///
/// ```
/// use sessionbank_testkit::http_suite::Reply;
///
/// let reply = Reply {
///     status: 200,
///     set_cookies: vec!["id=abc.sig; Path=/; HttpOnly".into()],
///     headers: vec![("set-cookie".into(), "id=abc.sig; Path=/; HttpOnly".into())],
///     body: "1".into(),
/// };
/// assert_eq!(reply.cookie_pair(), "id=abc.sig");
/// ```
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Every `Set-Cookie` header, in order.
    pub set_cookies: Vec<String>,
    /// Every header (`Set-Cookie` too), names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as UTF-8.
    pub body: String,
}

impl Reply {
    /// The first value of the header `name` (lowercase), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_testkit::http_suite::Reply;
    /// let headers = vec![("x-session-token".into(), "abc.sig".into())];
    /// let reply = Reply { status: 200, set_cookies: Vec::new(), headers, body: String::new() };
    /// assert_eq!(reply.header("x-session-token"), Some("abc.sig"));
    /// assert_eq!(reply.header("authorization"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// Every value of the header `name` (lowercase), in order.
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The single value of the header `name`, which must be there exactly once.
    ///
    /// # Panics
    ///
    /// When the response has not exactly one such header.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_testkit::http_suite::Reply;
    /// let headers = vec![("x-session-token".into(), "abc.sig".into())];
    /// let reply = Reply { status: 200, set_cookies: Vec::new(), headers, body: String::new() };
    /// assert_eq!(reply.only_header("x-session-token"), "abc.sig");
    /// ```
    #[track_caller]
    pub fn only_header(&self, name: &str) -> &str {
        let values: Vec<&str> = self.header_values(name).collect();
        assert_eq!(values.len(), 1, "one `{name}` header expected: {self:?}");
        values[0]
    }

    /// The single `Set-Cookie` header, which must be there.
    ///
    /// # Panics
    ///
    /// When there is not exactly one `Set-Cookie` header.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_testkit::http_suite::Reply;
    /// let reply = Reply { status: 200, set_cookies: vec!["id=; Max-Age=0".into()], headers: Vec::new(), body: String::new() };
    /// assert!(reply.set_cookie().contains("Max-Age=0"));
    /// ```
    #[track_caller]
    pub fn set_cookie(&self) -> &str {
        assert_eq!(self.set_cookies.len(), 1, "{self:?}");
        &self.set_cookies[0]
    }

    /// The `name=value` pair of the single `Set-Cookie`, as the next request sends it.
    ///
    /// # Panics
    ///
    /// When there is not exactly one `Set-Cookie` header.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_testkit::http_suite::Reply;
    /// let reply = Reply { status: 200, set_cookies: vec!["sb=x.y; Secure".into()], headers: Vec::new(), body: String::new() };
    /// assert_eq!(reply.cookie_pair(), "sb=x.y");
    /// ```
    #[track_caller]
    pub fn cookie_pair(&self) -> String {
        let set_cookie = self.set_cookie();
        set_cookie
            .split_once(';')
            .map_or(set_cookie, |(pair, _)| pair)
            .to_owned()
    }

    /// Every `name=value` pair, joined as a `Cookie` header (for multi-cookie formats).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionbank_testkit::http_suite::Reply;
    /// let reply = Reply {
    ///     status: 200,
    ///     set_cookies: vec!["a=1; Path=/".into(), "a.sig=2; Path=/".into()],
    ///     headers: Vec::new(),
    ///     body: String::new(),
    /// };
    /// assert_eq!(reply.cookie_header(), "a=1; a.sig=2");
    /// ```
    pub fn cookie_header(&self) -> String {
        self.set_cookies
            .iter()
            .map(|c| c.split_once(';').map_or(c.as_str(), |(pair, _)| pair))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The session id behind a `name=ID.SIG` cookie pair.
///
/// # Panics
///
/// When the pair holds no valid session id.
///
/// # Examples
///
/// ```
/// use sessionbank_core::SessionId;
/// use sessionbank_testkit::http_suite::id_of;
///
/// let id = SessionId::generate()?;
/// assert_eq!(id_of(&format!("id={}.signature", id.as_str())), id);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[allow(clippy::expect_used)] // a test helper: a malformed cookie is a failed trial
#[track_caller]
pub fn id_of(cookie: &str) -> SessionId {
    let value = cookie.split_once('=').map_or("", |(_, v)| v);
    let id = value.split('.').next().unwrap_or_default();
    SessionId::parse(id).expect("a session id in the cookie")
}

/// The session id behind an `ID.SIG` token (of the header transport).
///
/// # Panics
///
/// When the token holds no valid session id.
///
/// # Examples
///
/// ```
/// use sessionbank_core::SessionId;
/// use sessionbank_testkit::http_suite::id_of_token;
///
/// let id = SessionId::generate()?;
/// assert_eq!(id_of_token(&format!("{}.signature", id.as_str())), id);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
#[track_caller]
pub fn id_of_token(token: &str) -> SessionId {
    id_of(&format!("token={token}"))
}

/// One trial's world: a manual clock, an instrumented store (a [`MemoryStore`] on that clock
/// unless opened on another [`Backend`]), keys, transport (a default cookie), expiry policy (idle 30
/// minutes, no absolute limit) and the synchronisation points, for the framework `F`.
///
/// # Examples
///
/// ```
/// use sessionbank_core::Operation;
/// use sessionbank_testkit::http_suite::{AppOptions, Framework, Reply, SessionApp, TestApp};
///
/// struct Fixed;
/// impl SessionApp for Fixed {
///     async fn send_headers(&self, _method: &str, _path: &str, _headers: &[(&str, &str)]) -> Reply {
///         Reply { status: 200, set_cookies: Vec::new(), headers: Vec::new(), body: "ignored".into() }
///     }
/// }
/// struct Nothing;
/// impl Framework for Nothing {
///     async fn app(_options: AppOptions) -> impl SessionApp {
///         Fixed
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let app = TestApp::<Nothing>::new();
/// assert_eq!(app.send("GET", "/ignore", None).await.body, "ignored");
/// assert_eq!(app.store.total_calls(), 0);
/// # });
/// ```
pub struct TestApp<F, S = MemoryStore> {
    /// The clock of the layer (and of the store, on [`Memory`]).
    pub clock: ManualClock,
    /// The store, for counting calls and injecting failures.
    pub store: InstrumentedStore<S>,
    /// The same store, as the layer sees it.
    pub handle: StoreHandle,
    /// The signing keys the app is built with by default.
    pub keys: KeyRing,
    /// How the session travels (default: a cookie with [`CookieConfig::new`]).
    pub transport: Transport,
    /// The expiry policy.
    pub policy: ExpiryPolicy,
    /// For `/barrier-set`.
    pub barrier: Arc<Barrier>,
    /// For `/gated-set`.
    pub gate: Arc<Gate>,
    framework: PhantomData<fn() -> F>,
}

impl<F, S> std::fmt::Debug for TestApp<F, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<F: Framework> Default for TestApp<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Framework> TestApp<F> {
    /// A fresh world on [`Memory`].
    ///
    /// # Panics
    ///
    /// When the system has no randomness for a key.
    pub fn new() -> Self {
        let clock = Memory.clock();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        Self::with_store(clock, store)
    }
}

impl<F: Framework, S: Store + Clone> TestApp<F, S> {
    /// A fresh world on a fresh store of `backend`.
    ///
    /// # Panics
    ///
    /// When the system has no randomness for a key, or the backend cannot open a store.
    pub async fn open<B: Backend<Store = S>>(backend: &B) -> Self {
        let clock = backend.clock();
        let store = backend.open(&clock).await;
        Self::with_store(clock, store)
    }

    /// A world on `store`, with the layer on `clock`.
    ///
    /// # Panics
    ///
    /// When the system has no randomness for a key.
    #[allow(clippy::expect_used)]
    pub fn with_store(clock: ManualClock, store: S) -> Self {
        let store = InstrumentedStore::new(store)
            .with_failure_message(&format!("injected failure: {SECRET_ERROR_TEXT}"));
        Self {
            handle: StoreHandle::new(store.clone()),
            clock,
            store,
            keys: KeyRing::generate().expect("a random key"),
            transport: CookieConfig::new().into(),
            policy: ExpiryPolicy::new().idle(30 * MIN).no_absolute(),
            barrier: Arc::new(Barrier::new(2)),
            gate: Arc::new(Gate::default()),
            framework: PhantomData,
        }
    }

    /// The options to build the app with, signing with `keys`.
    pub fn options(&self, keys: KeyRing) -> AppOptions {
        AppOptions {
            store: self.handle.clone(),
            keys,
            transport: self.transport.clone(),
            policy: self.policy,
            clock: self.clock.clone(),
            barrier: self.barrier.clone(),
            gate: self.gate.clone(),
        }
    }

    /// The app, built with [`keys`](Self::keys).
    pub async fn app(&self) -> impl SessionApp {
        F::app(self.options(self.keys.clone())).await
    }

    /// The app, built with other keys.
    pub async fn app_with_keys(&self, keys: KeyRing) -> impl SessionApp {
        F::app(self.options(keys)).await
    }

    /// One request to a freshly built app.
    pub async fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        self.app().await.send(method, path, cookie).await
    }

    /// One request with these headers to a freshly built app.
    pub async fn send_headers(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.app().await.send_headers(method, path, headers).await
    }

    /// One request to a freshly built app, with `Authorization: Bearer TOKEN` when a token is
    /// given (for [`HeaderConfig::bearer`]).
    pub async fn send_bearer(&self, method: &str, path: &str, token: Option<&str>) -> Reply {
        match token {
            Some(token) => {
                let value = format!("Bearer {token}");
                self.send_headers(method, path, &[("authorization", &value)])
                    .await
            }
            None => self.send_headers(method, path, &[]).await,
        }
    }
}

/// Writes one test per trial of the suite for a [`Framework`], each named as its trial, with
/// the given test attribute (`#[tokio::test]`, `#[actix_web::test]`...).
///
/// # Examples
///
/// In a test target (`tests/suite.rs`), with a framework whose app answers every route of the
/// [module docs](mod@crate::http_suite) (this one answers nothing, so its trials would fail):
///
/// ```
/// use sessionbank_testkit::http_suite::{AppOptions, Framework, Reply, SessionApp};
///
/// struct NotFound;
/// impl SessionApp for NotFound {
///     async fn send_headers(&self, _method: &str, _path: &str, _headers: &[(&str, &str)]) -> Reply {
///         Reply { status: 404, set_cookies: Vec::new(), headers: Vec::new(), body: String::new() }
///     }
/// }
/// struct Nothing;
/// impl Framework for Nothing {
///     async fn app(_options: AppOptions) -> impl SessionApp {
///         NotFound
///     }
/// }
///
/// // One `#[tokio::test] async fn visit_counter_increments_with_the_returned_cookie()`, ...
/// sessionbank_testkit::http_suite!(Nothing, #[tokio::test]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! http_suite {
    ($framework:ty, #[$test:meta]) => {
        $crate::http_suite!(@trials $framework, $test,
            visit_counter_increments_with_the_returned_cookie,
            a_handler_that_ignores_the_session_costs_nothing,
            concurrent_requests_changing_different_keys_both_keep_their_change,
            tampered_unknown_and_expired_cookies_get_a_fresh_session,
            cycle_id_sends_a_new_cookie_and_kills_the_old_id,
            destroy_clears_the_cookie_and_the_session,
            a_request_in_flight_does_not_bring_a_destroyed_session_back,
            touch_only_when_the_policy_says_so,
            store_failures_are_a_bare_500,
            an_old_key_gets_the_cookie_re_signed_a_retired_key_starts_over,
            cookie_attributes,
            session_gives_access_to_the_store,
            header_token_continues_the_session_and_is_sent_only_when_it_changes,
            header_tokens_tampered_misplaced_or_of_another_scheme_get_a_fresh_session,
            header_token_cycle_sends_a_new_token_and_kills_the_old_one,
            header_token_destroy_sends_an_empty_value_and_removes_the_session,
            header_token_of_an_older_key_is_re_signed,
            custom_header_token_round_trip,
        );
    };
    (@trials $framework:ty, $test:meta, $($trial:ident,)*) => {
        $(
            #[$test]
            async fn $trial() {
                $crate::http_suite::trials::$trial::<$framework, _>(&$crate::http_suite::Memory)
                    .await;
            }
        )*
    };
}

/// The names of the trials that also run on server stores (every trial but those the
/// [module docs](self) keep memory-only), as [`http_suite_trials!`](crate::http_suite_trials!)
/// registers them.
pub const SERVER_TRIALS: &[&str] = &[
    "visit_counter_increments_with_the_returned_cookie",
    "a_handler_that_ignores_the_session_costs_nothing",
    "concurrent_requests_changing_different_keys_both_keep_their_change",
    "tampered_unknown_and_expired_cookies_get_a_fresh_session",
    "cycle_id_sends_a_new_cookie_and_kills_the_old_id",
    "destroy_clears_the_cookie_and_the_session",
    "a_request_in_flight_does_not_bring_a_destroyed_session_back",
    "store_failures_are_a_bare_500",
    "an_old_key_gets_the_cookie_re_signed_a_retired_key_starts_over",
    "cookie_attributes",
    "session_gives_access_to_the_store",
    "header_token_continues_the_session_and_is_sent_only_when_it_changes",
    "header_tokens_tampered_misplaced_or_of_another_scheme_get_a_fresh_session",
    "header_token_cycle_sends_a_new_token_and_kills_the_old_one",
    "header_token_destroy_sends_an_empty_value_and_removes_the_session",
    "header_token_of_an_older_key_is_re_signed",
    "custom_header_token_round_trip",
];

/// The trials of [`SERVER_TRIALS`] for a [`Framework`] on a server [`Backend`], as a
/// `Vec<libtest_mimic::Trial>` named `<name>::<trial>`, for a `harness = false` test target.
///
/// `$block_on` is the path of a generic `fn<T: Future>(T) -> T::Output` that runs one trial to
/// its end on the framework's runtime (a fresh one per trial).
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::http_suite::{AppOptions, Framework, Memory, Reply, SessionApp};
///
/// struct NotFound;
/// impl SessionApp for NotFound {
///     async fn send_headers(&self, _method: &str, _path: &str, _headers: &[(&str, &str)]) -> Reply {
///         Reply { status: 404, set_cookies: Vec::new(), headers: Vec::new(), body: String::new() }
///     }
/// }
/// struct Nothing;
/// impl Framework for Nothing {
///     async fn app(_options: AppOptions) -> impl SessionApp {
///         NotFound
///     }
/// }
/// fn block_on<T: std::future::Future>(future: T) -> T::Output {
///     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
/// }
///
/// fn main() -> std::process::ExitCode {
///     use sessionbank_testkit::http_suite::libtest_mimic::{Arguments, run};
///     // (a server test opens its own backend here, after starting the server)
///     let trials = sessionbank_testkit::http_suite_trials!(Nothing, "memory", Memory, block_on);
///     run(&Arguments::from_args(), trials).exit_code()
/// }
/// ```
#[macro_export]
macro_rules! http_suite_trials {
    ($framework:ty, $name:expr, $backend:expr, $block_on:path) => {
        $crate::http_suite_trials!(@trials $framework, $name, $backend, $block_on,
            visit_counter_increments_with_the_returned_cookie,
            a_handler_that_ignores_the_session_costs_nothing,
            concurrent_requests_changing_different_keys_both_keep_their_change,
            tampered_unknown_and_expired_cookies_get_a_fresh_session,
            cycle_id_sends_a_new_cookie_and_kills_the_old_id,
            destroy_clears_the_cookie_and_the_session,
            a_request_in_flight_does_not_bring_a_destroyed_session_back,
            store_failures_are_a_bare_500,
            an_old_key_gets_the_cookie_re_signed_a_retired_key_starts_over,
            cookie_attributes,
            session_gives_access_to_the_store,
            header_token_continues_the_session_and_is_sent_only_when_it_changes,
            header_tokens_tampered_misplaced_or_of_another_scheme_get_a_fresh_session,
            header_token_cycle_sends_a_new_token_and_kills_the_old_one,
            header_token_destroy_sends_an_empty_value_and_removes_the_session,
            header_token_of_an_older_key_is_re_signed,
            custom_header_token_round_trip,
        )
    };
    (@trials $framework:ty, $name:expr, $backend:expr, $block_on:path, $($trial:ident,)*) => {{
        let backend = $backend;
        let name: &str = $name;
        let mut trials: ::std::vec::Vec<$crate::http_suite::libtest_mimic::Trial> =
            ::std::vec::Vec::new();
        $(
            let on = backend.clone();
            trials.push($crate::http_suite::libtest_mimic::Trial::test(
                format!("{name}::{}", stringify!($trial)),
                move || {
                    $block_on($crate::http_suite::trials::$trial::<$framework, _>(&on));
                    Ok(())
                },
            ));
        )*
        trials
    }};
}

/// The trials, one `async fn` each, generic over the [`Framework`]; [`http_suite!`](crate::http_suite!)
/// runs them all.
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test bodies: a panic is a failed trial
pub mod trials {
    use super::*;

    /// Each visit counts; the cookie keeps naming the same session.
    pub async fn visit_counter_increments_with_the_returned_cookie<F: Framework, B: Backend>(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let first = app.send("GET", "/count", None).await;
        assert_eq!(first.status, 200);
        assert_eq!(first.body, "1");
        let mut cookie = first.cookie_pair();
        let id = id_of(&cookie);

        for expected in 2..=4 {
            app.clock.advance(MIN);
            let reply = app.send("GET", "/count", Some(&cookie)).await;
            assert_eq!(reply.body, expected.to_string());
            if !reply.set_cookies.is_empty() {
                cookie = reply.cookie_pair();
                assert_eq!(id_of(&cookie), id, "same session, same id");
            }
        }
        let record = app.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(record.data["visits"], 4);
        assert_eq!(app.store.calls(Operation::Create), 1);
        assert_eq!(app.store.calls(Operation::Update), 3);
    }

    /// A handler that never touches the session costs no store call and sends no cookie.
    pub async fn a_handler_that_ignores_the_session_costs_nothing<F: Framework, B: Backend>(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let reply = app.send("GET", "/ignore", None).await;
        assert_eq!(reply.body, "ignored");
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.total_calls(), 0);

        // Also with a valid session cookie.
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        app.store.reset_calls();
        let reply = app.send("GET", "/ignore", Some(&cookie)).await;
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.total_calls(), 0);

        // A read-only visit well within the idle timeout: one get, no write, no cookie.
        app.clock.advance(MIN);
        let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
        assert_eq!(reply.body, "1");
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.calls(Operation::Get), 1);
        assert_eq!(app.store.total_calls(), 1);

        // A new visitor who only reads gets no session stored and no cookie.
        let reply = app.send("GET", "/get/visits", None).await;
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.calls(Operation::Create), 0);
    }

    /// Two requests that load the same session, then each change a different key: both changes
    /// are kept.
    pub async fn concurrent_requests_changing_different_keys_both_keep_their_change<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&cookie);

        // Both handlers load the session, then wait for each other before writing.
        let service = app.app().await;
        let (a, b) = tokio::join!(
            service.send("POST", "/barrier-set/a/from-a", Some(&cookie)),
            service.send("POST", "/barrier-set/b/from-b", Some(&cookie)),
        );
        assert_eq!((a.status, b.status), (200, 200));
        let data = app.handle.get(&id).await.unwrap().unwrap().data;
        assert_eq!(data["a"], "from-a");
        assert_eq!(data["b"], "from-b");
        assert_eq!(data["visits"], 1);
    }

    /// Tampered, unknown, expired, garbage and oversized cookies: a fresh session, never an
    /// error, never the client's id.
    pub async fn tampered_unknown_and_expired_cookies_get_a_fresh_session<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&cookie);

        // Tampered: one character of the id changed.
        let (name, value) = cookie.split_once('=').unwrap();
        let mut bytes = value.as_bytes().to_vec();
        bytes[3] = if bytes[3] == b'x' { b'y' } else { b'x' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        let tampered_id = &tampered[name.len() + 1..name.len() + 33];
        let reply = app.send("GET", "/count", Some(&tampered)).await;
        assert_eq!(reply.body, "1", "fresh session");
        let fresh = id_of(&reply.cookie_pair());
        assert_ne!(fresh, id);
        assert_ne!(fresh.as_str(), tampered_id);

        // Unknown: correctly signed, but no such session in the store.
        let unknown = SessionId::generate().unwrap();
        let forged = app
            .transport
            .as_cookie()
            .unwrap()
            .set_cookies(&unknown, None, app.clock.now(), &app.keys)
            .remove(0)
            .stripped()
            .to_string();
        let reply = app.send("GET", "/count", Some(&forged)).await;
        assert_eq!(reply.body, "1");
        let fresh = id_of(&reply.cookie_pair());
        assert_ne!(fresh, unknown, "never adopts the client's id");
        assert!(app.handle.get(&unknown).await.unwrap().is_none());

        // Expired: 31 minutes idle with a 30-minute idle timeout.
        app.clock.advance(31 * MIN);
        let reply = app.send("GET", "/count", Some(&cookie)).await;
        assert_eq!(reply.body, "1");
        let fresh = id_of(&reply.cookie_pair());
        assert_ne!(fresh, id);

        // Garbage and oversized headers: fresh session, no error.
        let huge = format!("id={}", "A".repeat(20_000));
        for junk in ["id=", "id=....", "id=%ff%00", huge.as_str()] {
            let reply = app.send("GET", "/count", Some(junk)).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "1"),
                "{junk:.40}"
            );
        }
    }

    /// `cycle_id` sends a new cookie; the old id is gone from the store and starts over.
    pub async fn cycle_id_sends_a_new_cookie_and_kills_the_old_id<F: Framework, B: Backend>(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let old = id_of(&cookie);

        let reply = app.send("POST", "/cycle", Some(&cookie)).await;
        assert_eq!(reply.body, "cycled");
        let new_cookie = reply.cookie_pair();
        let new = id_of(&new_cookie);
        assert_ne!(new, old);
        assert!(app.handle.get(&old).await.unwrap().is_none(), "old id gone");
        assert_eq!(
            app.handle.get(&new).await.unwrap().unwrap().data["visits"],
            1
        );

        // The new cookie carries on; the old one starts over.
        assert_eq!(app.send("GET", "/count", Some(&new_cookie)).await.body, "2");
        assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "1");
    }

    /// `destroy` removes the cookie (`Max-Age=0`, same path) and the stored session.
    pub async fn destroy_clears_the_cookie_and_the_session<F: Framework, B: Backend>(backend: &B) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&cookie);

        let reply = app.send("POST", "/destroy", Some(&cookie)).await;
        let removal = reply.set_cookie();
        assert!(removal.starts_with("id=;"), "{removal}");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert!(removal.contains("Path=/"), "{removal}");
        assert!(app.handle.get(&id).await.unwrap().is_none());
        assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "1");
    }

    /// A request that loaded the session before a logout, and writes after it, neither brings
    /// the session back nor creates another.
    pub async fn a_request_in_flight_does_not_bring_a_destroyed_session_back<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&cookie);

        let service = app.app().await;
        let slow = service.send("POST", "/gated-set/cart/full", Some(&cookie));
        let logout = async {
            app.gate.loaded.notified().await; // the slow request has loaded the session
            let reply = service.send("POST", "/destroy", Some(&cookie)).await;
            assert!(reply.set_cookie().contains("Max-Age=0"));
            app.gate.go.notify_one();
        };
        let (slow, ()) = tokio::join!(slow, logout);

        assert_eq!(slow.status, 200);
        assert!(slow.set_cookie().contains("Max-Age=0"), "clears the cookie");
        assert!(
            app.handle.get(&id).await.unwrap().is_none(),
            "not resurrected"
        );
        assert_eq!(
            app.handle.length().await.unwrap(),
            0,
            "nor re-created elsewhere"
        );
    }

    /// A read-only visit touches the expiry (and re-sends the cookie) only below the policy's
    /// threshold.
    pub async fn touch_only_when_the_policy_says_so<F: Framework, B: Backend>(backend: &B) {
        let app = TestApp::<F, B::Store>::open(backend).await; // idle 30 minutes, touch below half
        let cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&cookie);
        app.store.reset_calls();

        app.clock.advance(5 * MIN); // 25 minutes left: plenty
        let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.calls(Operation::Touch), 0);
        assert_eq!(app.store.calls(Operation::Update), 0);

        app.clock.advance(11 * MIN); // 14 minutes left: below the threshold
        let reply = app.send("GET", "/get/visits", Some(&cookie)).await;
        assert_eq!(app.store.calls(Operation::Touch), 1);
        assert_eq!(
            app.store.calls(Operation::Update),
            0,
            "a touch writes no data"
        );
        let refreshed = reply.set_cookie();
        assert!(refreshed.contains("Max-Age=1800"), "{refreshed}");
        assert_eq!(id_of(&reply.cookie_pair()), id);
        let record = app.handle.get(&id).await.unwrap().unwrap();
        assert_eq!(record.expires_at, Some(app.clock.now() + 30 * MIN));
    }

    /// A store failure, in the handler or in the save after it, is a bare 500 with no cookie
    /// and nothing of the error's text.
    pub async fn store_failures_are_a_bare_500<F: Framework, B: Backend>(backend: &B) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let cookie = app.send("GET", "/count", None).await.cookie_pair();

        // Failing while the handler reads: SessionError.
        app.store.fail(&[Operation::Get]);
        let reply = app.send("GET", "/count", Some(&cookie)).await;
        assert_eq!(reply.status, 500);
        assert!(!reply.body.contains("hunter2"), "{}", reply.body);
        assert!(!reply.body.contains(SECRET_ERROR_TEXT));
        assert!(reply.body.is_empty(), "bare 500: {}", reply.body);
        app.store.heal();

        // Failing while the layer saves after the handler.
        app.store.fail(&[Operation::Update, Operation::Create]);
        for cookie in [Some(cookie.as_str()), None] {
            let reply = app.send("GET", "/count", cookie).await;
            assert_eq!(reply.status, 500, "{reply:?}");
            assert!(reply.body.is_empty(), "{}", reply.body);
            assert!(
                reply.set_cookies.is_empty(),
                "no cookie for an unsaved session"
            );
        }
        app.store.heal();
        assert_eq!(app.send("GET", "/count", Some(&cookie)).await.body, "2");
    }

    /// A cookie signed with an older key of the ring is re-signed with the newest (even when
    /// the handler ignores the session); once that key is retired, its cookie starts over.
    pub async fn an_old_key_gets_the_cookie_re_signed_a_retired_key_starts_over<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let old_cookie = app.send("GET", "/count", None).await.cookie_pair();
        let id = id_of(&old_cookie);

        let mut rotated = app.keys.clone();
        rotated.rotate(Key::generate().unwrap());
        let service = app.app_with_keys(rotated.clone()).await;

        // A request that never touches the session still gets the cookie re-signed.
        let reply = service.send("GET", "/ignore", Some(&old_cookie)).await;
        let new_cookie = reply.cookie_pair();
        assert_ne!(new_cookie, old_cookie);
        assert_eq!(id_of(&new_cookie), id, "same session");
        assert!(
            reply.set_cookie().contains("Max-Age="),
            "{}",
            reply.set_cookie()
        );
        let newest_only = KeyRing::new(rotated.newest().clone());
        let verified = app
            .transport
            .read([new_cookie.as_str()], &newest_only)
            .unwrap()
            .unwrap();
        assert_eq!(verified.id, id);

        // The data is all there, under either cookie while the old key is in the ring.
        assert_eq!(
            service.send("GET", "/count", Some(&old_cookie)).await.body,
            "2"
        );
        assert_eq!(
            service.send("GET", "/count", Some(&new_cookie)).await.body,
            "3"
        );

        // Retire the old key: its cookie no longer verifies.
        let mut retired = rotated;
        retired.retire_oldest();
        let service = app.app_with_keys(retired).await;
        let reply = service.send("GET", "/count", Some(&old_cookie)).await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of(&reply.cookie_pair()), id);
        assert_eq!(
            service.send("GET", "/count", Some(&new_cookie)).await.body,
            "4"
        );
    }

    /// The cookie's name and attributes follow the [`CookieConfig`]; a browser-session cookie
    /// has no `Max-Age` and is not re-sent when only the expiry moves.
    pub async fn cookie_attributes<F: Framework, B: Backend>(backend: &B) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        let reply = app.send("GET", "/count", None).await;
        let set_cookie = reply.set_cookie();
        assert!(set_cookie.starts_with("id="), "{set_cookie}");
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=1800",
        ] {
            assert!(
                set_cookie.split("; ").any(|a| a == attr),
                "{attr} missing: {set_cookie}"
            );
        }

        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = CookieConfig::new().name("sb").secure(false).into();
        let reply = app.send("GET", "/count", None).await;
        let set_cookie = reply.set_cookie();
        assert!(set_cookie.starts_with("sb="), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "{set_cookie}");
        assert!(set_cookie.contains("HttpOnly"));

        // Browser-session cookies: no Max-Age, and not re-sent when only the expiry moves.
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = CookieConfig::new().persistent(false).into();
        let first = app.send("GET", "/count", None).await;
        assert!(
            !first.set_cookie().contains("Max-Age"),
            "{}",
            first.set_cookie()
        );
        app.clock.advance(MIN);
        let second = app.send("GET", "/count", Some(&first.cookie_pair())).await;
        assert_eq!(second.body, "2");
        assert!(second.set_cookies.is_empty(), "{second:?}");
    }

    /// A handler reaches the store through its session (`GET /n` counts the sessions).
    pub async fn session_gives_access_to_the_store<F: Framework, B: Backend>(backend: &B) {
        let app = TestApp::<F, B::Store>::open(backend).await;
        app.send("GET", "/count", None).await;
        app.send("GET", "/count", None).await;
        assert_eq!(app.send("GET", "/n", None).await.body, "2");
    }

    /// The response header of [`HeaderConfig::bearer`].
    const TOKEN_HEADER: &str = "x-session-token";

    /// A first request's token (`x-session-token`), after checking it came without a cookie.
    #[track_caller]
    fn token_of(reply: &Reply) -> String {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.set_cookies.is_empty(), "no cookie: {reply:?}");
        let token = reply.only_header(TOKEN_HEADER).to_owned();
        assert_eq!(token.len(), 76, "{token}");
        token
    }

    /// Header transport (`Authorization: Bearer TOKEN` in, `x-session-token` out): the first
    /// response carries the token and no cookie; the token continues the session; a response
    /// whose token did not change (data written, a read, a touch that moved the expiry) sends
    /// no token header.
    pub async fn header_token_continues_the_session_and_is_sent_only_when_it_changes<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = HeaderConfig::bearer().into();
        let first = app.send_bearer("GET", "/count", None).await;
        assert_eq!(first.body, "1");
        let token = token_of(&first);
        let id = id_of_token(&token);
        assert_eq!(
            app.handle.get(&id).await.unwrap().unwrap().data["visits"],
            1
        );

        for expected in 2..=3 {
            app.clock.advance(MIN);
            let reply = app.send_bearer("GET", "/count", Some(&token)).await;
            assert_eq!(reply.body, expected.to_string());
            assert_eq!(
                reply.header(TOKEN_HEADER),
                None,
                "unchanged token: {reply:?}"
            );
            assert!(reply.set_cookies.is_empty(), "{reply:?}");
        }
        // The scheme in another case, and more than one space: the same session.
        let sent = format!("bEaReR   {token}");
        let reply = app
            .send_headers("GET", "/count", &[("authorization", &sent)])
            .await;
        assert_eq!(reply.body, "4");
        assert_eq!(reply.header(TOKEN_HEADER), None, "{reply:?}");

        // Ignored: no store call, no header.
        app.store.reset_calls();
        let reply = app.send_bearer("GET", "/ignore", Some(&token)).await;
        assert_eq!(reply.body, "ignored");
        assert_eq!(reply.header(TOKEN_HEADER), None);
        assert_eq!(app.store.total_calls(), 0);

        // A read below the touch threshold moves the expiry, which a token does not carry.
        app.clock.advance(20 * MIN);
        let reply = app.send_bearer("GET", "/get/visits", Some(&token)).await;
        assert_eq!(reply.body, "4");
        assert_eq!(app.store.calls(Operation::Touch), 1);
        assert_eq!(reply.header(TOKEN_HEADER), None, "{reply:?}");
        assert!(reply.set_cookies.is_empty());
        assert_eq!(app.store.calls(Operation::Create), 0);
    }

    /// Header transport: a tampered token, a token sent as a cookie, a cookie value sent as a
    /// token, a token without or with another scheme, or in another header: a fresh session,
    /// never the client's id. The real token keeps working.
    pub async fn header_tokens_tampered_misplaced_or_of_another_scheme_get_a_fresh_session<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = HeaderConfig::bearer().into();
        let token = token_of(&app.send_bearer("GET", "/count", None).await);
        let id = id_of_token(&token);

        // A cookie app on the same store and keys, for real cookies.
        let cookie_app = F::app(AppOptions {
            transport: CookieConfig::new().into(),
            ..app.options(app.keys.clone())
        })
        .await;
        let cookie_reply = cookie_app.send("GET", "/count", None).await;
        let cookie = cookie_reply.cookie_pair();
        let cookie_id = id_of(&cookie);
        let cookie_value = cookie.split_once('=').unwrap().1.to_owned();

        // The header app ignores cookies, and does not take a cookie's value as a token.
        let mut bytes = token.as_bytes().to_vec();
        bytes[3] = if bytes[3] == b'x' { b'y' } else { b'x' };
        let tampered = String::from_utf8(bytes).unwrap();
        let cases: Vec<(&str, String)> = vec![
            ("authorization", format!("Bearer {tampered}")),
            ("authorization", format!("Bearer {cookie_value}")),
            ("cookie", format!("id={token}")),
            ("cookie", cookie.clone()),
            ("authorization", format!("Basic {token}")),
            ("authorization", format!("Token {token}")),
            ("authorization", token.clone()),
            ("authorization", format!("Bearer{token}")),
            (TOKEN_HEADER, token.clone()),
            ("authorization", format!("Bearer {}", "A".repeat(20_000))),
        ];
        for (name, value) in &cases {
            let reply = app.send_headers("GET", "/count", &[(name, value)]).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "1"),
                "{name}: {value:.40}"
            );
            let fresh = id_of_token(&token_of(&reply));
            assert_ne!(fresh, id, "{name}: {value:.40}");
            assert_ne!(fresh, cookie_id, "{name}: {value:.40}");
        }

        // The cookie app does not take the token as a cookie either.
        let reply = cookie_app
            .send("GET", "/count", Some(&format!("id={token}")))
            .await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of(&reply.cookie_pair()), id);

        // The real token and the real cookie carry on.
        assert_eq!(
            app.send_bearer("GET", "/count", Some(&token)).await.body,
            "2"
        );
        assert_eq!(
            cookie_app.send("GET", "/count", Some(&cookie)).await.body,
            "2"
        );
    }

    /// Header transport: `/cycle` sends a new token; the old id is gone and its token starts
    /// over.
    pub async fn header_token_cycle_sends_a_new_token_and_kills_the_old_one<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = HeaderConfig::bearer().into();
        let token = token_of(&app.send_bearer("GET", "/count", None).await);
        let old = id_of_token(&token);

        let reply = app.send_bearer("POST", "/cycle", Some(&token)).await;
        assert_eq!(reply.body, "cycled");
        let new_token = token_of(&reply);
        let new = id_of_token(&new_token);
        assert_ne!(new, old);
        assert!(app.handle.get(&old).await.unwrap().is_none(), "old id gone");
        assert_eq!(
            app.handle.get(&new).await.unwrap().unwrap().data["visits"],
            1
        );

        let reply = app.send_bearer("GET", "/count", Some(&new_token)).await;
        assert_eq!(reply.body, "2");
        assert_eq!(reply.header(TOKEN_HEADER), None);
        let reply = app.send_bearer("GET", "/count", Some(&token)).await;
        assert_eq!(reply.body, "1", "the old token starts over");
        let fresh = id_of_token(&token_of(&reply));
        assert!(fresh != old && fresh != new);
    }

    /// Header transport: `/destroy` answers the token header with an empty value ("forget your
    /// token") and the session is gone from the store.
    pub async fn header_token_destroy_sends_an_empty_value_and_removes_the_session<
        F: Framework,
        B: Backend,
    >(
        backend: &B,
    ) {
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = HeaderConfig::bearer().into();
        let token = token_of(&app.send_bearer("GET", "/count", None).await);
        let id = id_of_token(&token);

        let reply = app.send_bearer("POST", "/destroy", Some(&token)).await;
        assert_eq!(reply.body, "destroyed");
        assert_eq!(reply.only_header(TOKEN_HEADER), "", "{reply:?}");
        assert!(reply.set_cookies.is_empty(), "{reply:?}");
        assert!(app.handle.get(&id).await.unwrap().is_none());
        assert_eq!(app.handle.length().await.unwrap(), 0);

        let reply = app.send_bearer("GET", "/count", Some(&token)).await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of_token(&token_of(&reply)), id);
    }

    /// Header transport: a token signed with an older key of the ring is re-issued signed with
    /// the newest (even when the handler ignores the session); once that key is retired, its
    /// token starts over.
    pub async fn header_token_of_an_older_key_is_re_signed<F: Framework, B: Backend>(backend: &B) {
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        let config = HeaderConfig::bearer();
        app.transport = config.clone().into();
        let old_token = token_of(&app.send_bearer("GET", "/count", None).await);
        let id = id_of_token(&old_token);
        let bearer = |token: &str| format!("Bearer {token}");

        let mut rotated = app.keys.clone();
        rotated.rotate(Key::generate().unwrap());
        let service = app.app_with_keys(rotated.clone()).await;

        let reply = service
            .send_headers("GET", "/ignore", &[("authorization", &bearer(&old_token))])
            .await;
        assert_eq!(reply.body, "ignored");
        let new_token = token_of(&reply);
        assert_ne!(new_token, old_token);
        assert_eq!(id_of_token(&new_token), id, "same session");
        let newest_only = KeyRing::new(rotated.newest().clone());
        let verified = config
            .read([bearer(&new_token).as_str()], &newest_only)
            .unwrap()
            .unwrap();
        assert_eq!(verified.id, id);

        // Both tokens work while the old key is in the ring; the new one is current.
        let reply = service
            .send_headers("GET", "/count", &[("authorization", &bearer(&old_token))])
            .await;
        assert_eq!(reply.body, "2");
        assert_eq!(
            reply.only_header(TOKEN_HEADER),
            new_token,
            "re-signed again"
        );
        let reply = service
            .send_headers("GET", "/count", &[("authorization", &bearer(&new_token))])
            .await;
        assert_eq!(reply.body, "3");
        assert_eq!(reply.header(TOKEN_HEADER), None);

        // Retire the old key: its token no longer verifies.
        let mut retired = rotated;
        retired.retire_oldest();
        let service = app.app_with_keys(retired).await;
        let reply = service
            .send_headers("GET", "/count", &[("authorization", &bearer(&old_token))])
            .await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of_token(&token_of(&reply)), id);
        let reply = service
            .send_headers("GET", "/count", &[("authorization", &bearer(&new_token))])
            .await;
        assert_eq!(reply.body, "4");
    }

    /// One custom header both ways (`x-api-session`, no scheme): round trip, a token of another
    /// header or in another header does not verify, destroy sends it empty.
    pub async fn custom_header_token_round_trip<F: Framework, B: Backend>(backend: &B) {
        const NAME: &str = "x-api-session";
        let mut app = TestApp::<F, B::Store>::open(backend).await;
        app.transport = HeaderConfig::custom(NAME).unwrap().into();

        let first = app.send_headers("GET", "/count", &[]).await;
        assert_eq!(first.body, "1");
        assert!(first.set_cookies.is_empty(), "{first:?}");
        assert_eq!(first.header(TOKEN_HEADER), None, "{first:?}");
        let token = first.only_header(NAME).to_owned();
        let id = id_of_token(&token);

        let reply = app.send_headers("GET", "/count", &[(NAME, &token)]).await;
        assert_eq!(reply.body, "2");
        assert_eq!(reply.header(NAME), None, "unchanged: {reply:?}");

        // In the Authorization header, or signed for another header: a fresh session.
        let reply = app.send_bearer("GET", "/count", Some(&token)).await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of_token(reply.only_header(NAME)), id);
        let bearer_token = HeaderConfig::bearer().token(&id, &app.keys);
        let reply = app
            .send_headers("GET", "/count", &[(NAME, &bearer_token)])
            .await;
        assert_eq!(reply.body, "1");
        assert_ne!(id_of_token(reply.only_header(NAME)), id);

        let reply = app
            .send_headers("POST", "/destroy", &[(NAME, &token)])
            .await;
        assert_eq!(reply.only_header(NAME), "");
        assert!(app.handle.get(&id).await.unwrap().is_none());
    }
}
