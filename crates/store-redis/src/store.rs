//! The [`Store`] implementation: one string per session, Lua scripts for every
//! read-modify-write, Redis TTLs for expiry, and a set per owner. The hash layout's own
//! operations live in `hash.rs`; each `Store` method picks the layout once, here.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, RedisResult, Value};
use sessionbank_core::{
    Capabilities, Error, ErrorKind, Operation, Page, Patch, Record, Result, SessionId, Store,
    Timestamp, async_trait,
};

use crate::client;
use crate::config::{Layout, RedisStoreBuilder, validate_prefix};
use crate::conn::Conn;
use crate::error::{self, BACKEND};
use crate::layout::{self, Keys};
use crate::scripts;

/// How many keys one `SCAN` call asks for.
pub const SCAN_COUNT: usize = 1000;

/// A Redis store: one string per session under `PREFIX s:ID`, expired by Redis itself (a TTL at
/// the session's deadline, in milliseconds), with a set per owner under `PREFIX o:{OWNER}`.
///
/// Cheap to clone (the connection is shared and multiplexed). See the crate docs and `docs.md`
/// for the layout and the URL.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_core::{Record, SessionId, Store, Timestamp};
/// use sessionbank_store_redis::RedisStore;
///
/// # async fn run() -> sessionbank_core::Result<()> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/0?prefix=app:").await?;
/// let id = SessionId::generate()?;
/// store.set(&id, &Record::new(Timestamp::now())).await?;
/// assert!(store.get(&id).await?.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    conn: Conn,
    keys: Keys,
    layout: Layout,
    browser_idle: Duration,
    target: String,
}

impl Inner {
    pub(crate) fn new(conn: Conn, builder: &RedisStoreBuilder) -> Self {
        Self {
            conn,
            keys: Keys::new(builder.get_prefix(), builder.layout),
            layout: builder.layout,
            browser_idle: builder.browser_idle,
            target: builder.target().to_owned(),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.inner.target)
            .field("prefix", &self.inner.keys.prefix())
            .field("cluster", &self.inner.conn.is_cluster())
            .field("layout", &self.inner.layout)
            .finish()
    }
}

/// `SET key value PXAT deadline [NX]`, sized up front, the value encoded straight into it.
fn set_command(
    key: &str,
    record: &Record,
    deadline: i64,
    only_new: bool,
) -> std::result::Result<Cmd, &'static str> {
    layout::with_encoded(record, |value| {
        let mut cmd = Cmd::with_capacity(6, key.len() + value.len() + 32);
        cmd.arg("SET").arg(key).arg(value).arg("PXAT").arg(deadline);
        if only_new {
            cmd.arg("NX");
        }
        cmd
    })
}

/// A command named `name` whose buffers have room for `args` arguments (the name included)
/// of `bytes` bytes in all: no growing on the hot paths.
fn command(name: &str, args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(args, bytes);
    cmd.arg(name);
    cmd
}

/// What the update script answered: `None` when it is not an answer of that script, else the
/// deadline (`None`: the session is gone), whether the session is a browser session, and the
/// owner when the script named one.
fn update_answer(answer: &Value) -> Option<(Option<i64>, bool, Option<String>)> {
    let (deadline, owner) = match answer {
        Value::Nil => return Some((None, false, None)),
        Value::BulkString(deadline) => (deadline.as_slice(), None),
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(deadline), Value::BulkString(owner)] => {
                (deadline.as_slice(), Some(layout::owner_token(owner)?))
            }
            _ => return None,
        },
        _ => return None,
    };
    let (browser, digits) = match deadline.strip_prefix(b"-") {
        Some(digits) => (true, digits),
        None => (false, deadline),
    };
    let deadline: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((Some(i64::try_from(deadline).ok()?), browser, owner))
}

/// `EXEC`'s answers out of the answers to a redirected `[ASKING,] MULTI, …, EXEC` pipeline; an
/// error answered to a queued command (`ASK`, `MOVED`, `TRYAGAIN`, `READONLY`: the transaction
/// was aborted) comes out as that command's error.
fn exec_answers(answers: Vec<Value>) -> RedisResult<Vec<Value>> {
    let failed = answers.iter().find_map(|v| match v {
        Value::ServerError(e) if e.kind() != Some(redis::ServerErrorKind::ExecAbort) => {
            Some(e.clone())
        }
        _ => None,
    });
    if let Some(e) = failed {
        return Err(redis::RedisError::from(e));
    }
    match answers.into_iter().last() {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort),
            "the redirected transaction was aborted",
        ))),
    }
}

/// The error of the first failed command of an aborted transaction or pipeline, as if that
/// command had run alone, so that a `READONLY` or `MASTERDOWN` inside (a Sentinel failover)
/// drops the connection and maps to `Unavailable`, and `ASK`/`MOVED`/`TRYAGAIN` are seen as
/// such. Any other error is returned as it is.
fn unwrap_aborted(err: redis::RedisError) -> redis::RedisError {
    let first = err.clone().into_server_errors().and_then(|errors| {
        errors
            .iter()
            .map(|(_, e)| e.clone())
            .find(|e| e.kind() != Some(redis::ServerErrorKind::ExecAbort))
    });
    match first {
        Some(inner) => redis::RedisError::from(inner),
        None => err,
    }
}

/// Where a transaction that a cluster redirected must go: the node of the first `ASK` or
/// `MOVED` among its commands' errors, and whether it was `ASK` (send `ASKING` first).
fn transaction_redirect(err: &redis::RedisError) -> Option<(String, u16, bool)> {
    let errors = err.clone().into_server_errors()?;
    errors.iter().find_map(|(_, e)| {
        let asking = match e.kind()? {
            redis::ServerErrorKind::Ask => true,
            redis::ServerErrorKind::Moved => false,
            _ => return None,
        };
        // `SLOT HOST:PORT`
        let address = e.details()?.split_ascii_whitespace().nth(1)?;
        let (host, port) = address.rsplit_once(':')?;
        Some((host.to_owned(), port.parse().ok()?, asking))
    })
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

impl RedisStore {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The key prefix every key of this store starts with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_redis::RedisStore::connect("redis://127.0.0.1/0?prefix=a:").await?;
    /// assert_eq!(store.prefix(), "a:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// Whether the store talks to a Redis Cluster.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_redis::RedisStore::connect("redis://127.0.0.1/0").await?;
    /// assert!(!store.is_cluster());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.inner.conn.is_cluster()
    }

    /// How this store keeps sessions: [`Layout::String`] or [`Layout::Hash`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_store_redis::{Layout, RedisStore};
    ///
    /// # async fn run() -> sessionbank_core::Result<()> {
    /// let store = RedisStore::connect("redis://127.0.0.1/0?layout=hash").await?;
    /// assert_eq!(store.layout(), Layout::Hash);
    /// # Ok(())
    /// # }
    /// ```
    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) fn browser_idle(&self) -> Duration {
        self.inner.browser_idle
    }

    fn err(&self, operation: Operation, e: redis::RedisError) -> Error {
        error::from_redis(operation, &self.inner.target, e)
    }

    pub(crate) fn corrupt(&self, operation: Operation, what: &'static str) -> Error {
        error::corrupt(operation, &self.inner.target, what)
    }

    pub(crate) fn browser_deadline(&self, now: Timestamp) -> i64 {
        now.saturating_add(self.inner.browser_idle).as_millis()
    }

    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        operation: Operation,
        cmd: &Cmd,
    ) -> Result<T> {
        self.query_redis(cmd)
            .await
            .map_err(|e| self.err(operation, e))
    }

    /// [`query`](Self::query), with the driver's error as it is.
    async fn query_redis<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let mut attempt = 0;
        loop {
            let result = match self.inner.conn.checkout().await {
                Ok(mut conn) => {
                    let result = cmd.query_async(&mut conn).await;
                    if let Err(e) = &result {
                        self.inner.conn.settle(&conn, e);
                    }
                    result
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e) if self.redirect_again(&e, &mut attempt).await => {}
                result => return result,
            }
        }
    }

    /// Runs `lua` with the keys and arguments `args` writes (`numkeys` first): as `EVALSHA`,
    /// or as `EVAL` after `NOSCRIPT`. Both are routed by their first key on a cluster.
    ///
    /// `capacity` is the number of arguments and of their bytes to make room for up front
    /// (more is fine, at the cost of growing the command's buffers).
    async fn eval(
        &self,
        operation: Operation,
        lua: &scripts::Lua,
        capacity: (usize, usize),
        args: impl Fn(&mut Cmd) -> std::result::Result<(), &'static str>,
    ) -> Result<Value> {
        let invalid =
            |what| Error::new(ErrorKind::InvalidInput, operation, what).with_backend(BACKEND);
        let mut cmd = command("EVALSHA", capacity.0 + 2, capacity.1 + 7 + lua.sha.len());
        cmd.arg(lua.sha.as_str());
        args(&mut cmd).map_err(invalid)?;
        match self.query_redis(&cmd).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(lua.code.as_str());
                args(&mut cmd).map_err(invalid)?;
                self.query(operation, &cmd).await
            }
            result => result.map_err(|e| self.err(operation, e)),
        }
    }

    /// [`eval`](Self::eval) of a script whose few arguments need no room made up front, its
    /// answer converted to `T`.
    pub(crate) async fn eval_as<T: FromRedisValue>(
        &self,
        operation: Operation,
        lua: &scripts::Lua,
        args: impl Fn(&mut Cmd),
    ) -> Result<T> {
        let value = self
            .eval(operation, lua, (0, 0), |cmd| {
                args(cmd);
                Ok(())
            })
            .await?;
        redis::from_redis_value(value)
            .map_err(|_| self.corrupt(operation, "a script answered something unexpected"))
    }

    /// Runs the commands of `pipe` (all on one key, so one slot) as one `MULTI … EXEC` and
    /// returns `EXEC`'s answers, one per command (`pipe` is atomic and marks no command
    /// ignored).
    ///
    /// On a cluster, a slot in migration makes the queued commands answer `ASK` (or `MOVED`
    /// once it moved), which aborts the whole transaction (`EXECABORT`: nothing ran), and
    /// redis-rs follows neither inside a transaction. This sends it again to the node named,
    /// as `ASKING`, `MULTI`, the commands, `EXEC` in one pipeline on one connection (so the
    /// `ASKING` flag, which Redis keeps until `EXEC` inside a transaction, cannot be taken by
    /// another request), up to 20 times; other redirections go through
    /// [`redirect_again`](Self::redirect_again). An aborted transaction's error is its first
    /// failed command's (`READONLY` after a failover is then `Unavailable`, as for one
    /// command).
    pub(crate) async fn transaction(
        &self,
        operation: Operation,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<Value>> {
        let mut attempt = 0;
        let mut redirect: Option<(String, u16, bool)> = None;
        loop {
            let result = match (&redirect, &self.inner.conn) {
                (Some((host, port, asking)), Conn::Cluster(conn)) => {
                    let mut redirected = redis::pipe();
                    if *asking {
                        redirected.cmd("ASKING");
                    }
                    redirected.cmd("MULTI");
                    for cmd in pipe.cmd_iter() {
                        redirected.add_command(cmd.clone());
                    }
                    redirected.cmd("EXEC");
                    let count = redirected.len();
                    let route = SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    };
                    let mut conn = conn.clone();
                    conn.route_pipeline(redirected, 0, count, route)
                        .await
                        .map_err(unwrap_aborted)
                        .and_then(exec_answers)
                }
                _ => match self.inner.conn.checkout().await {
                    Ok(mut conn) => {
                        let result = pipe.query_async(&mut conn).await.map_err(unwrap_aborted);
                        if let Err(e) = &result {
                            self.inner.conn.settle(&conn, e);
                        }
                        result
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(answers) => return Ok(answers),
                Err(e) => {
                    if self.is_cluster()
                        && attempt < 20
                        && let Some(target) = transaction_redirect(&e)
                    {
                        attempt += 1;
                        redirect = Some(target);
                        continue;
                    }
                    // A redirected transaction that was aborted without a redirection (the
                    // migration ended meanwhile) ran nothing either: start over.
                    let aborted_redirect = redirect.is_some()
                        && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort);
                    if (aborted_redirect && attempt < 20)
                        || self.redirect_again(&e, &mut attempt).await
                    {
                        if aborted_redirect {
                            attempt += 1;
                        }
                        redirect = None;
                        continue;
                    }
                    return Err(self.err(operation, e));
                }
            }
        }
    }

    /// Whether to send a command again after a cluster redirection the client gave up on.
    ///
    /// redis-rs follows ASK by sending `ASKING` and then the command as two requests on the
    /// shared multiplexed connection, so under concurrency another request can take the
    /// `ASKING` flag, and the command bounces between the two masters of a slot in migration
    /// until the client's retries run out. An ASK, MOVED or TRYAGAIN answer means the command
    /// did not run, so sending it again is safe; this does, up to 20 times with a short pause.
    async fn redirect_again(&self, err: &redis::RedisError, attempt: &mut u32) -> bool {
        let redirected = matches!(
            err.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::Ask
                    | redis::ServerErrorKind::Moved
                    | redis::ServerErrorKind::TryAgain
            )
        );
        if !redirected || !self.is_cluster() || *attempt >= 20 {
            return false;
        }
        *attempt += 1;
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(*attempt) * 5)).await;
        true
    }

    /// Reads one session in this store's layout; `None` when absent or past its deadline.
    async fn read(&self, operation: Operation, id: &SessionId) -> Result<Option<Record>> {
        match self.inner.layout {
            Layout::String => self.string_read(operation, id).await,
            Layout::Hash => self.hash_read(operation, id).await,
        }
    }

    /// Reads one session (string layout) and decodes it; `None` when absent or past its deadline.
    async fn string_read(&self, operation: Operation, id: &SessionId) -> Result<Option<Record>> {
        let key = self.inner.keys.session(id);
        let mut get = command("GET", 2, 3 + key.len());
        get.arg(key.as_str());
        let value: Option<Vec<u8>> = self.query(operation, &get).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let record = layout::decode(&value).map_err(|what| self.corrupt(operation, what))?;
        if record.is_live(Timestamp::now(), self.inner.browser_idle) {
            Ok(Some(record))
        } else {
            Ok(None)
        }
    }

    /// Writes a whole record (`set`, `create`) in this store's layout.
    async fn write(&self, operation: Operation, id: &SessionId, record: &Record) -> Result<()> {
        match self.inner.layout {
            Layout::String => self.string_write(operation, id, record).await,
            Layout::Hash => self.hash_write(operation, id, record).await,
        }
    }

    /// Writes a whole record with one `SET … PXAT deadline` (`NX` for `create`), then adds it
    /// to its owner's set.
    async fn string_write(
        &self,
        operation: Operation,
        id: &SessionId,
        record: &Record,
    ) -> Result<()> {
        let key = self.inner.keys.session(id);
        let deadline = record.deadline(self.inner.browser_idle).as_millis();
        let cmd = set_command(&key, record, deadline, operation == Operation::Create).map_err(
            |what| Error::new(ErrorKind::InvalidInput, operation, what).with_backend(BACKEND),
        )?;
        let answer: Value = self.query(operation, &cmd).await?;
        if answer == Value::Nil {
            return Err(Error::already_exists(operation).with_backend(BACKEND));
        }
        self.owner_add(operation, record.owner.as_deref(), id, deadline)
            .await
    }

    /// After an update or touch of either layout: the owner's set must outlive the session, so
    /// it is refreshed when the owner or the deadline may have changed (`patch` moves the owner
    /// or the expiry, or the session is a browser session, whose deadline follows its last
    /// access). A plain update of a fixed-expiry session stays one round trip.
    pub(crate) async fn owner_after_update(
        &self,
        operation: Operation,
        patch: &Patch,
        browser: bool,
        owner: Option<&str>,
        id: &SessionId,
        deadline: i64,
    ) -> Result<()> {
        if patch.owner.is_some() || patch.expires_at.is_some() || browser {
            self.owner_add(operation, owner, id, deadline).await
        } else {
            Ok(())
        }
    }

    /// Adds `id` to `owner`'s set, keeping the set alive until `deadline`: nothing to do for
    /// a session without an owner or whose deadline has passed.
    pub(crate) async fn owner_add(
        &self,
        operation: Operation,
        owner: Option<&str>,
        id: &SessionId,
        deadline: i64,
    ) -> Result<()> {
        let now = Timestamp::now().as_millis();
        let Some(owner) = owner.filter(|_| deadline > now) else {
            return Ok(());
        };
        let key = self.inner.keys.owner(owner);
        let _: i64 = self
            .eval_as(operation, &scripts::OWNER_ADD, |cmd| {
                cmd.arg(1).arg(&key).arg(id.as_str()).arg(deadline).arg(now);
            })
            .await?;
        Ok(())
    }

    /// Removes `id` from `owner`'s set, then reads the session again and adds it back if a
    /// concurrent write gave it to `owner` meanwhile: writers change the session first and add
    /// it to the set second, so a session owned by `owner` is never left out of its set.
    async fn owner_remove(&self, operation: Operation, owner: &str, id: &SessionId) -> Result<()> {
        let key = self.inner.keys.owner(owner);
        let _: i64 = self
            .query(operation, redis::cmd("SREM").arg(&key).arg(id.as_str()))
            .await?;
        if let Some(record) = self.read(operation, id).await?
            && record.owner.as_deref() == Some(owner)
        {
            let deadline = record.deadline(self.inner.browser_idle).as_millis();
            self.owner_add(operation, Some(owner), id, deadline).await?;
        }
        Ok(())
    }

    /// Applies a patch (`update`, `touch`) in this store's layout.
    async fn patch(&self, operation: Operation, id: &SessionId, patch: &Patch) -> Result<()> {
        match self.inner.layout {
            Layout::String => self.string_patch(operation, id, patch).await,
            Layout::Hash => self.hash_patch(operation, id, patch).await,
        }
    }

    /// Runs the update script (also `touch`).
    async fn string_patch(
        &self,
        operation: Operation,
        id: &SessionId,
        patch: &Patch,
    ) -> Result<()> {
        let now = Timestamp::now();
        let key = self.inner.keys.session(id);
        let browser_deadline = self.browser_deadline(now);
        // Room for the fixed arguments (numbers, tokens, modes) and a guess at each pair's.
        let capacity = (
            11 + 2 * patch.set.len() + patch.unset.len(),
            160 + key.len()
                + patch.set.keys().map(|k| 2 * k.len() + 40).sum::<usize>()
                + patch.unset.iter().map(String::len).sum::<usize>(),
        );
        let answer = self
            .eval(operation, &scripts::UPDATE, capacity, |cmd| {
                cmd.arg(1).arg(key.as_str());
                cmd.arg(layout::NumberToken::new(now.as_millis()).as_bytes());
                match patch.expires_at {
                    None => cmd.arg("keep").arg("").arg(""),
                    Some(None) => cmd.arg("browser").arg("").arg(""),
                    Some(Some(t)) => cmd
                        .arg("at")
                        .arg(t.as_millis())
                        .arg(layout::NumberToken::new(t.as_millis()).as_bytes()),
                };
                cmd.arg(browser_deadline);
                match &patch.owner {
                    None => {
                        cmd.arg("keep").arg("").arg("");
                    }
                    Some(None) => {
                        cmd.arg("clear").arg("").arg("");
                    }
                    Some(Some(o)) => {
                        cmd.arg("set");
                        layout::with_owner_token(o, |token| {
                            // The token is `LEN:=OWNER`; the script also wants `=OWNER`.
                            cmd.arg(token);
                            let content = token.len() - o.len() - 1;
                            cmd.arg(&token[content..]);
                        })?;
                    }
                }
                cmd.arg(patch.set.len());
                for (k, v) in &patch.set {
                    cmd.arg(k.as_str());
                    layout::with_pair_tokens(k, v, |tokens| {
                        cmd.arg(tokens);
                    })?;
                }
                for k in &patch.unset {
                    cmd.arg(k.as_str());
                }
                Ok(())
            })
            .await?;
        let Some((deadline, browser, owner)) = update_answer(&answer) else {
            return Err(self.corrupt(operation, "the update script answered something unexpected"));
        };
        let Some(deadline) = deadline else {
            return Err(Error::gone(operation).with_backend(BACKEND));
        };
        // The script names the owner only when the set must be refreshed.
        self.owner_after_update(operation, patch, browser, owner.as_deref(), id, deadline)
            .await
    }

    /// Deletes a session; its id leaves its owner's set when that set is next read.
    async fn delete(&self, operation: Operation, id: &SessionId) -> Result<bool> {
        let key = self.inner.keys.session(id);
        let n: i64 = self.query(operation, redis::cmd("DEL").arg(&key)).await?;
        Ok(n > 0)
    }

    /// The addresses of the masters to `SCAN`: one `None` for a single server, every master's
    /// address for a cluster (sorted, so a cursor names a stable position).
    async fn masters(&self, operation: Operation) -> Result<Vec<Option<(String, u16)>>> {
        let Conn::Cluster(conn) = &self.inner.conn else {
            return Ok(vec![None]);
        };
        let mut conn = conn.clone();
        let value = conn
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await
            .map_err(|e| self.err(operation, e))?;
        let mut masters = BTreeSet::new();
        if let Value::Array(ranges) = value {
            for range in ranges {
                if let Value::Array(parts) = range
                    && let Some(Value::Array(node)) = parts.get(2)
                    && let (Some(host), Some(port)) = (
                        node.first().and_then(text),
                        node.get(1)
                            .and_then(int)
                            .and_then(|p| u16::try_from(p).ok()),
                    )
                {
                    masters.insert((host, port));
                }
            }
        }
        if masters.is_empty() {
            return Err(self.corrupt(operation, "CLUSTER SLOTS named no master"));
        }
        Ok(masters.into_iter().map(Some).collect())
    }

    /// One `SCAN` call on one master: the next cursor and the matching keys.
    async fn scan(
        &self,
        operation: Operation,
        node: &Option<(String, u16)>,
        cursor: u64,
        pattern: &str,
        only_sessions: bool,
    ) -> Result<(u64, Vec<String>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        if only_sessions {
            cmd.arg("TYPE").arg(match self.inner.layout {
                Layout::String => "string",
                Layout::Hash => "hash",
            });
        }
        let value: Value = match (node, &self.inner.conn) {
            (Some((host, port)), Conn::Cluster(conn)) => {
                let mut conn = conn.clone();
                conn.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    }),
                )
                .await
                .map_err(|e| self.err(operation, e))?
            }
            _ => self.query(operation, &cmd).await?,
        };
        let parsed: RedisResult<(u64, Vec<String>)> =
            redis::from_redis_value(value).map_err(redis::RedisError::from);
        parsed.map_err(|e| self.err(operation, e))
    }

    /// Walks every key matching `pattern` on every master, in `SCAN` pages, calling `each`
    /// with each page's keys.
    async fn scan_all<F, Fut>(
        &self,
        operation: Operation,
        pattern: &str,
        only_sessions: bool,
        mut each: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        for node in self.masters(operation).await? {
            let mut cursor = 0;
            loop {
                let (next, keys) = self
                    .scan(operation, &node, cursor, pattern, only_sessions)
                    .await?;
                if !keys.is_empty() {
                    each(keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// Rename on a cluster, where the two ids hash to different slots: copy (`SET new … NX`),
    /// then delete the old id only if it still holds what was copied; if a write changed it in
    /// between, copy again (up to three times), then delete it. Never loses the session: until
    /// the delete, both ids hold it. Returns the new deadline and the owner.
    async fn rename_cluster(
        &self,
        old: &SessionId,
        new: &SessionId,
    ) -> Result<(i64, Option<String>)> {
        let op = Operation::Rename;
        let old_key = self.inner.keys.session(old);
        let new_key = self.inner.keys.session(new);
        let mut first = true;
        let mut result = None;
        for _ in 0..3 {
            let original: Option<Vec<u8>> = self.query(op, redis::cmd("GET").arg(&old_key)).await?;
            let Some(original) = original else {
                if first {
                    return Err(Error::gone(op).with_backend(BACKEND));
                }
                // Destroyed or expired after the copy: the copy stands.
                return result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"));
            };
            let mut record = layout::decode(&original).map_err(|what| self.corrupt(op, what))?;
            let now = Timestamp::now();
            record.last_access = now;
            let deadline = record.deadline(self.inner.browser_idle).as_millis();
            let set = set_command(&new_key, &record, deadline, first)
                .map_err(|what| self.corrupt(op, what))?;
            let answer: Value = self.query(op, &set).await?;
            if answer == Value::Nil {
                return Err(Error::already_exists(op).with_backend(BACKEND));
            }
            first = false;
            result = Some((deadline, record.owner.clone()));
            let deleted: i64 = self
                .eval_as(op, &scripts::DELETE_IF_UNCHANGED, |cmd| {
                    cmd.arg(1).arg(&old_key).arg(original.as_slice());
                })
                .await?;
            if deleted >= 0 {
                return result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"));
            }
        }
        // Three writes raced three copies: the old id goes now, whatever it holds.
        let _: i64 = self.query(op, redis::cmd("DEL").arg(&old_key)).await?;
        result.ok_or_else(|| self.corrupt(op, "the rename copied nothing"))
    }
}

impl RedisStoreBuilder {
    /// Validates the settings, makes the clients (`client.rs`) and connects.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionbank_core::ErrorKind::Config) for a bad prefix, a `tls_ca`
    /// file that cannot be read, or (`rediss://`) a server certificate that the trusted roots
    /// do not vouch for or that does not name the host; [`ErrorKind::Unavailable`] or
    /// [`ErrorKind::Timeout`] when Redis cannot be reached within the connect timeout (also
    /// when a `redis://` client meets a TLS-only port: the server closes the connection).
    ///
    /// [`ErrorKind::Unavailable`]: sessionbank_core::ErrorKind::Unavailable
    /// [`ErrorKind::Timeout`]: sessionbank_core::ErrorKind::Timeout
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_store_redis::RedisStoreBuilder;
    ///
    /// # async fn run() -> sessionbank_core::Result<()> {
    /// let store = RedisStoreBuilder::parse("redis://127.0.0.1:6379/0")?.open().await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(self) -> Result<RedisStore> {
        validate_prefix(&self.prefix)?;
        let conn = client::connect(&self).await?;
        Ok(RedisStore::from_inner(Inner::new(conn, &self)))
    }
}

impl RedisStore {
    /// A builder for the standalone server at `host:port` (database 0); for Sentinel,
    /// Cluster or TLS, [`RedisStoreBuilder::parse`] a URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionbank_store_redis::RedisStore;
    ///
    /// let builder = RedisStore::builder("127.0.0.1", 6379).prefix("app:");
    /// assert_eq!(builder.get_prefix(), "app:");
    /// ```
    pub fn builder(host: &str, port: u16) -> RedisStoreBuilder {
        RedisStoreBuilder::standalone(host, port)
    }

    /// Reads a Redis store URL and opens the store it names: [`RedisStoreBuilder::parse`],
    /// then [`RedisStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// As [`RedisStoreBuilder::parse`] and [`RedisStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> sessionbank_core::Result<()> {
    /// let store = sessionbank_store_redis::RedisStore::connect("redis://127.0.0.1:6379/0?prefix=app:").await?;
    /// assert_eq!(store.prefix(), "app:");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(text: &str) -> Result<Self> {
        RedisStoreBuilder::parse(text)?.open().await
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_list(true)
            .with_owner_index(true)
            .with_atomic_rename(!self.is_cluster())
            .with_native_expiry(true)
            .with_durable(false)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Record>> {
        self.read(Operation::Get, id).await
    }

    async fn set(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.write(Operation::Set, id, record).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.write(Operation::Create, id, record).await
    }

    async fn update(&self, id: &SessionId, patch: &Patch) -> Result<()> {
        self.patch(Operation::Update, id, patch).await
    }

    async fn touch(&self, id: &SessionId, expires_at: Option<Timestamp>) -> Result<()> {
        let patch = Patch {
            expires_at: Some(expires_at),
            ..Patch::default()
        };
        self.patch(Operation::Touch, id, &patch).await
    }

    async fn destroy(&self, id: &SessionId) -> Result<()> {
        self.delete(Operation::Destroy, id).await.map(|_| ())
    }

    async fn rename(&self, old: &SessionId, new: &SessionId) -> Result<()> {
        let op = Operation::Rename;
        let (deadline, owner) = if self.is_cluster() {
            match self.inner.layout {
                Layout::String => self.rename_cluster(old, new).await?,
                Layout::Hash => self.hash_rename_cluster(old, new).await?,
            }
        } else {
            let now = Timestamp::now();
            // Both scripts take the same arguments and answer alike.
            let script = match self.inner.layout {
                Layout::String => &*scripts::RENAME,
                Layout::Hash => &*scripts::HASH_RENAME,
            };
            let (old_key, new_key) = (self.inner.keys.session(old), self.inner.keys.session(new));
            let answer: Vec<Value> = self
                .eval_as(op, script, |cmd| {
                    cmd.arg(2)
                        .arg(&old_key)
                        .arg(&new_key)
                        .arg(now.as_millis())
                        .arg(self.browser_deadline(now));
                })
                .await?;
            match answer.first().and_then(int) {
                Some(0) => return Err(Error::gone(op).with_backend(BACKEND)),
                Some(-1) => return Err(Error::already_exists(op).with_backend(BACKEND)),
                Some(1) => {}
                _ => {
                    return Err(self.corrupt(op, "the rename script answered something unexpected"));
                }
            }
            let deadline = answer
                .get(1)
                .and_then(int)
                .ok_or_else(|| self.corrupt(op, "the rename script lost the deadline"))?;
            let owner = answer
                .get(2)
                .and_then(bytes)
                .and_then(|t| layout::owner_token(&t));
            (deadline, owner)
        };
        self.owner_add(op, owner.as_deref(), new, deadline).await?;
        if let Some(owner) = &owner {
            let key = self.inner.keys.owner(owner);
            let _: i64 = self
                .query(op, redis::cmd("SREM").arg(&key).arg(old.as_str()))
                .await?;
        }
        Ok(())
    }

    async fn all(&self, cursor: Option<&str>, limit: usize) -> Result<Page> {
        let op = Operation::All;
        let limit = limit.max(1);
        let masters = self.masters(op).await?;
        let mut position = match cursor {
            None => layout::Cursor::start(),
            Some(text) => layout::Cursor::parse(text).ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, op, "the page cursor is malformed")
                    .with_backend(BACKEND)
            })?,
        };
        let pattern = self.inner.keys.session_pattern();
        let mut ids: Vec<SessionId> = Vec::new();
        let mut next = None;
        'nodes: while position.node < masters.len() {
            let node = &masters[position.node];
            loop {
                let (after, keys) = self.scan(op, node, position.scan, &pattern, true).await?;
                let mut batch: Vec<SessionId> = keys
                    .iter()
                    .filter_map(|k| self.inner.keys.id_of_session(k))
                    .filter(|id| {
                        position
                            .after
                            .as_ref()
                            .is_none_or(|a| id.as_str() > a.as_str())
                    })
                    .collect();
                batch.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                batch.dedup();
                let room = limit - ids.len();
                if batch.len() > room {
                    let taken: Vec<SessionId> = batch.into_iter().take(room).collect();
                    let last = taken.last().map(|id| id.as_str().to_owned());
                    ids.extend(taken);
                    position.after = last;
                    next = Some(position.render());
                    break 'nodes;
                }
                ids.extend(batch);
                position.after = None;
                if after == 0 {
                    position.node += 1;
                    position.scan = 0;
                } else {
                    position.scan = after;
                }
                if ids.len() == limit {
                    if position.node < masters.len() {
                        next = Some(position.render());
                    }
                    break 'nodes;
                }
                if after == 0 {
                    continue 'nodes;
                }
            }
        }
        let reads = ids.iter().map(|id| self.read(op, id));
        let records = futures::future::join_all(reads).await;
        let mut sessions = Vec::with_capacity(ids.len());
        for (id, record) in ids.into_iter().zip(records) {
            if let Some(record) = record? {
                sessions.push((id, record));
            }
        }
        Ok(Page { sessions, next })
    }

    async fn length(&self) -> Result<u64> {
        let op = Operation::Length;
        let pattern = self.inner.keys.session_pattern();
        let counted = &std::sync::atomic::AtomicU64::new(0);
        self.scan_all(op, &pattern, true, |keys| {
            let ours: Vec<String> = keys
                .into_iter()
                .filter(|k| self.inner.keys.id_of_session(k).is_some())
                .collect();
            async move {
                let n = match self.inner.layout {
                    Layout::String => ours.len() as u64,
                    // Zombies (hashes without `c`) are not sessions.
                    Layout::Hash => self.hash_count_live(op, &ours).await?,
                };
                counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
        Ok(counted.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn clear(&self) -> Result<u64> {
        let op = Operation::Clear;
        let keys = &self.inner.keys;
        let mut batches = Vec::new();
        // The hash layout walks hashes only: it checks `c` of each before unlinking it.
        let hash = self.inner.layout == Layout::Hash;
        self.scan_all(op, &keys.session_pattern(), hash, |page| {
            batches.push(
                page.into_iter()
                    .filter(|k| keys.id_of_session(k).is_some())
                    .collect::<Vec<_>>(),
            );
            async { Ok(()) }
        })
        .await?;
        let sessions = batches.len();
        self.scan_all(op, &keys.owner_pattern(), false, |page| {
            batches.push(
                page.into_iter()
                    .filter(|k| keys.is_owner_key(k))
                    .collect::<Vec<_>>(),
            );
            async { Ok(()) }
        })
        .await?;
        let mut removed = 0u64;
        for (i, batch) in batches.into_iter().enumerate() {
            let deletes = batch.iter().map(|k| async move {
                if hash && i < sessions {
                    // A zombie is removed but not counted: it was no session.
                    return self.hash_unlink(op, k).await;
                }
                let n: i64 = self.query(op, redis::cmd("UNLINK").arg(k)).await?;
                Ok::<_, Error>(n > 0)
            });
            for result in futures::future::join_all(deletes).await {
                if result? && i < sessions {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn cleanup(&self) -> Result<u64> {
        // Redis removes expired keys itself; owner sets expire with their last session and are
        // pruned of dead ids whenever they are read.
        Ok(0)
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionId, Record)>> {
        let op = Operation::OwnedBy;
        let key = self.inner.keys.owner(owner);
        let members: Vec<String> = self.query(op, redis::cmd("SMEMBERS").arg(&key)).await?;
        let mut ids = Vec::with_capacity(members.len());
        for member in members {
            match SessionId::parse(&member) {
                Ok(id) => ids.push(id),
                Err(_) => {
                    let _: i64 = self
                        .query(op, redis::cmd("SREM").arg(&key).arg(&member))
                        .await?;
                }
            }
        }
        let reads = ids.iter().map(|id| self.read(op, id));
        let records = futures::future::join_all(reads).await;
        let mut sessions = Vec::new();
        for (id, record) in ids.into_iter().zip(records) {
            match record? {
                Some(record) if record.owner.as_deref() == Some(owner) => {
                    sessions.push((id, record));
                }
                // Expired, destroyed or given to another owner: prune it.
                _ => self.owner_remove(op, owner, &id).await?,
            }
        }
        Ok(sessions)
    }

    async fn destroy_owned_by(&self, owner: &str, except: Option<&SessionId>) -> Result<u64> {
        let op = Operation::DestroyOwnedBy;
        let sessions = self.owned_by(owner).await?;
        let victims: Vec<SessionId> = sessions
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| Some(id) != except)
            .collect();
        let deletes = victims.iter().map(|id| self.delete(op, id));
        let mut destroyed = 0;
        for result in futures::future::join_all(deletes).await {
            if result? {
                destroyed += 1;
            }
        }
        Ok(destroyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_answers_are_read() {
        assert_eq!(update_answer(&Value::Nil), Some((None, false, None)));
        assert_eq!(
            update_answer(&Value::BulkString(b"1800000000000".to_vec())),
            Some((Some(1_800_000_000_000), false, None))
        );
        assert_eq!(
            update_answer(&Value::BulkString(b"-1800000000000".to_vec())),
            Some((Some(1_800_000_000_000), true, None))
        );
        assert_eq!(
            update_answer(&Value::Array(vec![
                Value::BulkString(b"-5".to_vec()),
                Value::BulkString(b"=ada".to_vec()),
            ])),
            Some((Some(5), true, Some("ada".to_owned())))
        );
        for bad in [
            Value::Int(1),
            Value::BulkString(b"soon".to_vec()),
            Value::BulkString(b"--5".to_vec()),
            Value::Array(vec![Value::BulkString(b"5".to_vec())]),
        ] {
            assert_eq!(update_answer(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn script_answers_are_read() {
        assert_eq!(int(&Value::BulkString(b"42".to_vec())), Some(42));
        assert_eq!(int(&Value::Int(-1)), Some(-1));
        assert_eq!(
            text(&Value::BulkString(b"ada".to_vec())).as_deref(),
            Some("ada")
        );
        assert_eq!(text(&Value::Nil), None);
    }
}
