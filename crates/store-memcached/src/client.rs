//! memcached's text protocol over tokio: one connection, a small pool per server, and the
//! rendezvous-hashing ring that picks a key's server.
//!
//! Only the commands the store needs: `gets`, `set`, `add`, `cas`, `delete`, `version`. Every
//! call runs under one timeout that covers waiting for a pooled connection, connecting and the
//! round trip. A connection whose call failed half-way (I/O error, timeout, cancelled future,
//! garbled reply) is closed, never returned to the pool, so the next call cannot read a stale
//! reply.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// What can go wrong talking to one server. Messages never contain a key or a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to the server: {0}")]
    Connect(#[source] io::Error),
    /// Reading or writing an open connection failed (reset, closed by the server).
    #[error("the connection to the server failed: {0}")]
    Io(#[from] io::Error),
    /// No answer within the timeout.
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    /// A reply that is not what the protocol allows here.
    #[error("unexpected reply from the server: {0}")]
    Protocol(&'static str),
    /// `SERVER_ERROR <message>`.
    #[error("the server refused the command: {0}")]
    Server(String),
    /// `ERROR` or `CLIENT_ERROR <message>`.
    #[error("the server rejected the command: {0}")]
    Client(String),
}

impl ClientError {
    /// Whether the connection is still in step with the server after this error.
    fn keeps_connection(&self) -> bool {
        matches!(self, ClientError::Server(_) | ClientError::Client(_))
    }
}

/// One item as `gets` returns it. No `Debug`: it holds a session.
pub(crate) struct Item {
    pub(crate) flags: u32,
    pub(crate) value: Vec<u8>,
    pub(crate) cas: u64,
}

/// The storage commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreCommand {
    /// Store unconditionally.
    Set,
    /// Store only when the key holds nothing.
    Add,
    /// Store only when the item's cas unique is unchanged.
    Cas(u64),
}

/// The answer to a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreReply {
    Stored,
    NotStored,
    Exists,
    NotFound,
}

/// A request to one server. No `Debug`: it holds a key and a value.
pub(crate) enum Request<'a> {
    Gets(&'a [u8]),
    Store {
        command: StoreCommand,
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        value: &'a [u8],
    },
    Delete(&'a [u8]),
    Version,
}

/// The reply to a [`Request`]. No `Debug`: it may hold a session.
pub(crate) enum Reply {
    Item(Option<Item>),
    Store(StoreReply),
    /// `true` for `DELETED`, `false` for `NOT_FOUND`.
    Deleted(bool),
    Version(String),
}

/// The longest reply line we accept (a `VALUE` line is at most about 330 bytes).
const MAX_LINE: usize = 4096;

/// One open text-protocol connection. No `Debug`: its buffers hold the last key and value.
struct Connection {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
    /// The longest value a `VALUE` line may announce: the item size limit. A longer claim is a
    /// protocol error for that call (never an allocation of what a server says).
    max_value: usize,
}

impl Connection {
    async fn open(
        addr: &str,
        connect_timeout: Duration,
        max_value: usize,
    ) -> Result<Self, ClientError> {
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(ClientError::Connect(e)),
            Err(_) => return Err(ClientError::Timeout(connect_timeout)),
        };
        stream.set_nodelay(true).map_err(ClientError::Connect)?;
        Ok(Self {
            stream: BufReader::with_capacity(64 * 1024, stream),
            out: Vec::with_capacity(1024),
            line: Vec::with_capacity(256),
            max_value,
        })
    }

    async fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ClientError> {
        self.out.clear();
        match request {
            Request::Gets(key) => {
                self.out.extend_from_slice(b"gets ");
                self.out.extend_from_slice(key);
                self.out.extend_from_slice(b"\r\n");
            }
            Request::Store {
                command,
                key,
                flags,
                exptime,
                value,
            } => {
                let name: &[u8] = match command {
                    StoreCommand::Set => b"set ",
                    StoreCommand::Add => b"add ",
                    StoreCommand::Cas(_) => b"cas ",
                };
                self.out.extend_from_slice(name);
                self.out.extend_from_slice(key);
                let mut number = itoa::Buffer::new();
                self.out.push(b' ');
                self.out.extend_from_slice(number.format(*flags).as_bytes());
                self.out.push(b' ');
                self.out
                    .extend_from_slice(number.format(*exptime).as_bytes());
                self.out.push(b' ');
                self.out
                    .extend_from_slice(number.format(value.len()).as_bytes());
                if let StoreCommand::Cas(unique) = command {
                    self.out.push(b' ');
                    self.out
                        .extend_from_slice(number.format(*unique).as_bytes());
                }
                self.out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(value);
                self.out.extend_from_slice(b"\r\n");
            }
            Request::Delete(key) => {
                self.out.extend_from_slice(b"delete ");
                self.out.extend_from_slice(key);
                self.out.extend_from_slice(b"\r\n");
            }
            Request::Version => self.out.extend_from_slice(b"version\r\n"),
        }
        self.stream.get_mut().write_all(&self.out).await?;
        // A large write buffer is not worth keeping for every pooled connection.
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::with_capacity(1024);
        }
        self.read_line().await?;
        match request {
            Request::Gets(_) => self.read_item().await.map(Reply::Item),
            Request::Store { .. } => match self.line.as_slice() {
                b"STORED" => Ok(Reply::Store(StoreReply::Stored)),
                b"NOT_STORED" => Ok(Reply::Store(StoreReply::NotStored)),
                b"EXISTS" => Ok(Reply::Store(StoreReply::Exists)),
                b"NOT_FOUND" => Ok(Reply::Store(StoreReply::NotFound)),
                _ => Err(self.error_line("a storage command")),
            },
            Request::Delete(_) => match self.line.as_slice() {
                b"DELETED" => Ok(Reply::Deleted(true)),
                b"NOT_FOUND" => Ok(Reply::Deleted(false)),
                _ => Err(self.error_line("delete")),
            },
            Request::Version => match self.line.strip_prefix(b"VERSION ") {
                Some(v) => Ok(Reply::Version(String::from_utf8_lossy(v).into_owned())),
                None => Err(self.error_line("version")),
            },
        }
    }

    /// Reads one `\r\n`-terminated line into `self.line`, without the terminator.
    async fn read_line(&mut self) -> Result<(), ClientError> {
        self.line.clear();
        let n = (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut self.line)
            .await?;
        if n == 0 {
            return Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        if !self.line.ends_with(b"\r\n") {
            return Err(ClientError::Protocol("a reply line without \\r\\n"));
        }
        self.line.truncate(self.line.len() - 2);
        Ok(())
    }

    /// After `gets`: `END`, or one `VALUE key flags bytes cas` block then `END`.
    async fn read_item(&mut self) -> Result<Option<Item>, ClientError> {
        if self.line == b"END" {
            return Ok(None);
        }
        let Some(rest) = self.line.strip_prefix(b"VALUE ") else {
            return Err(self.error_line("gets"));
        };
        let mut fields = rest.split(|b| *b == b' ');
        let _key = fields.next();
        let flags = parse_number(fields.next()).ok_or(ClientError::Protocol("VALUE flags"))?;
        let len: usize =
            parse_number(fields.next()).ok_or(ClientError::Protocol("VALUE length"))?;
        let cas = parse_number(fields.next()).ok_or(ClientError::Protocol("VALUE cas"))?;
        if len > self.max_value {
            // A reply claiming more than the item size limit is not something memcached sends:
            // refuse it before allocating (the connection is dropped, its stream is unread).
            return Err(ClientError::Protocol(
                "a VALUE longer than the item size limit (max_item_bytes)",
            ));
        }
        let mut value = vec![0u8; len.saturating_add(2)];
        self.stream.read_exact(&mut value).await?;
        if !value.ends_with(b"\r\n") {
            return Err(ClientError::Protocol("a value without \\r\\n"));
        }
        value.truncate(len);
        self.read_line().await?;
        if self.line != b"END" {
            return Err(ClientError::Protocol("more than one VALUE for one key"));
        }
        Ok(Some(Item { flags, value, cas }))
    }

    /// The error a reply line stands for, when it is not the expected answer.
    fn error_line(&self, _command: &'static str) -> ClientError {
        let line = self.line.as_slice();
        if line == b"ERROR" {
            ClientError::Client("unknown command".into())
        } else if let Some(m) = line.strip_prefix(b"CLIENT_ERROR ") {
            ClientError::Client(String::from_utf8_lossy(m).into_owned())
        } else if let Some(m) = line.strip_prefix(b"SERVER_ERROR ") {
            ClientError::Server(String::from_utf8_lossy(m).into_owned())
        } else {
            // Never echo the line: a VALUE line holds the key.
            ClientError::Protocol("a reply the command does not allow")
        }
    }
}

fn parse_number<T: std::str::FromStr>(field: Option<&[u8]>) -> Option<T> {
    std::str::from_utf8(field?).ok()?.parse().ok()
}

/// One memcached server: its address and a pool of at most `pool_size` connections.
pub(crate) struct Server {
    addr: String,
    seed: u64,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    connect_timeout: Duration,
    timeout: Duration,
    /// The item size limit: the longest value a reply may announce.
    max_value: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map(|idle| idle.len()).unwrap_or_default();
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("idle_connections", &idle)
            .field("free_permits", &self.permits.available_permits())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Server {
    pub(crate) fn new(
        addr: String,
        pool_size: usize,
        connect_timeout: Duration,
        timeout: Duration,
        max_value: usize,
    ) -> Self {
        Self {
            seed: xxh3_64(addr.as_bytes()),
            addr,
            idle: Mutex::new(Vec::with_capacity(pool_size)),
            permits: Semaphore::new(pool_size.max(1)),
            connect_timeout,
            timeout,
            max_value,
        }
    }

    /// `host:port` as configured.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one request on a pooled connection, within the timeout.
    ///
    /// Cancel safety: dropping the future closes the connection it was using (it is never
    /// returned to the pool half-way through a request); the command may or may not have
    /// reached the server.
    pub(crate) async fn call(&self, request: &Request<'_>) -> Result<Reply, ClientError> {
        match tokio::time::timeout(self.timeout, self.call_untimed(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    async fn call_untimed(&self, request: &Request<'_>) -> Result<Reply, ClientError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ClientError::Protocol("the connection pool was closed"))?;
        let pooled = self.take_idle();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => Connection::open(&self.addr, self.connect_timeout, self.max_value).await?,
        };
        let result = conn.execute(request).await;
        match &result {
            Ok(_) => self.put_idle(conn),
            Err(e) if e.keeps_connection() => self.put_idle(conn),
            Err(ClientError::Io(_)) => {
                // The server probably went away: its other idle connections are dead too.
                drop(conn);
                self.clear_idle();
            }
            Err(_) => drop(conn),
        }
        result
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn put_idle(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    fn clear_idle(&self) {
        let drained: Vec<Connection> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        drop(drained);
    }

    /// This server's rendezvous score for `key`.
    fn score(&self, key: &[u8]) -> u64 {
        xxh3_64_with_seed(key, self.seed)
    }
}

/// Every configured server; picks a key's server by rendezvous (highest random weight) hashing.
#[derive(Debug)]
pub(crate) struct Cluster {
    servers: Vec<Server>,
}

impl Cluster {
    pub(crate) fn new(servers: Vec<Server>) -> Self {
        Self { servers }
    }

    pub(crate) fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The server that holds `key`: the one with the highest `xxh3_64_with_seed(key,
    /// xxh3_64(addr))`, the first on a tie. Depends only on the key and the list of addresses,
    /// not on their order; removing a server moves only that server's keys.
    pub(crate) fn server_for(&self, key: &[u8]) -> &Server {
        let mut best = &self.servers[0];
        let mut best_score = best.score(key);
        for server in &self.servers[1..] {
            let score = server.score(key);
            if score > best_score {
                best = server;
                best_score = score;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(addrs: &[&str]) -> Cluster {
        Cluster::new(
            addrs
                .iter()
                .map(|a| {
                    Server::new(
                        (*a).to_owned(),
                        1,
                        Duration::from_secs(1),
                        Duration::from_secs(1),
                        1024,
                    )
                })
                .collect(),
        )
    }

    /// A server whose `VALUE` line claims a terabyte (or `u64::MAX`) bytes once aborted the
    /// process allocating it (or overflowed); now that call alone fails with a protocol error,
    /// and the next call on a fresh connection works.
    #[tokio::test]
    async fn a_huge_value_length_is_a_protocol_error_not_an_allocation() {
        for claim in ["1099511627776", "18446744073709551615", "1025"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let reply = format!("VALUE sessionbank:k 0 {claim} 7\r\n");
            let server = tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                for answer in [reply.as_str(), "END\r\n"] {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 256];
                    let _ = socket.read(&mut buf).await.unwrap();
                    socket.write_all(answer.as_bytes()).await.unwrap();
                    socket.flush().await.unwrap();
                }
            });
            let server_entry = Server::new(
                addr,
                1,
                Duration::from_secs(1),
                Duration::from_secs(2),
                1024,
            );
            let err = server_entry
                .call(&Request::Gets(b"sessionbank:k"))
                .await
                .err()
                .unwrap();
            assert!(matches!(err, ClientError::Protocol(_)), "{claim}: {err:?}");
            let next = server_entry.call(&Request::Gets(b"sessionbank:k")).await;
            assert!(
                matches!(next, Ok(Reply::Item(None))),
                "{claim}: the next call works"
            );
            server.await.unwrap();
        }
    }

    #[test]
    fn rendezvous_is_stable_balanced_and_moves_only_the_removed_servers_keys() {
        let three = cluster(&["a:1", "b:2", "c:3"]);
        let reordered = cluster(&["c:3", "a:1", "b:2"]);
        let two = cluster(&["a:1", "c:3"]);
        let mut counts = std::collections::HashMap::new();
        for i in 0..3000 {
            let key = format!("sessionbank:key{i}");
            let owner = three.server_for(key.as_bytes()).addr();
            *counts.entry(owner.to_owned()).or_insert(0) += 1;
            assert_eq!(owner, reordered.server_for(key.as_bytes()).addr());
            if owner != "b:2" {
                assert_eq!(owner, two.server_for(key.as_bytes()).addr(), "key moved");
            }
        }
        for (addr, n) in counts {
            assert!((700..1300).contains(&n), "{addr} got {n} of 3000 keys");
        }
    }

    #[test]
    fn the_hash_is_fixed_across_versions_and_processes() {
        // If this changes, every deployment's keys move to other servers: a breaking change.
        let c = cluster(&["127.0.0.1:11211", "127.0.0.1:11212"]);
        let picks: String = (0..16)
            .map(|i| {
                let addr = c.server_for(format!("sessionbank:k{i}").as_bytes()).addr();
                if addr.ends_with('1') { 'a' } else { 'b' }
            })
            .collect();
        assert_eq!(picks, "aaabbabaaaabbaab");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever bytes a server answers (random, or a reply line followed by random bytes),
        /// a call ends with a reply or an error: no panic, no allocation of what it claims, no
        /// hang past the timeout.
        #[test]
        fn any_server_reply_is_an_answer_or_an_error(
            head in proptest::prop_oneof![
                proptest::prelude::Just(String::new()),
                proptest::prelude::Just("VALUE sessionbank:k ".to_owned()),
                proptest::prelude::Just("STORED\r\n".to_owned()),
                proptest::prelude::Just("SERVER_ERROR ".to_owned()),
                "VALUE [a-z:]{0,12} [0-9]{0,12} [0-9]{0,22} [0-9]{0,22}\r\n",
            ],
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap().to_string();
                let mut reply = head.into_bytes();
                reply.extend_from_slice(&tail);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    if let Ok((mut socket, _)) = listener.accept().await {
                        let mut buf = [0u8; 256];
                        let _ = socket.read(&mut buf).await;
                        let _ = socket.write_all(&reply).await;
                        let _ = socket.shutdown().await;
                    }
                });
                let server = Server::new(addr, 1, Duration::from_secs(1), Duration::from_millis(500), 1024);
                let _ = server.call(&Request::Gets(b"sessionbank:k")).await;
            });
        }
    }
}
