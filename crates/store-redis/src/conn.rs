//! One connection type over the three deployments: a standalone server and a sentinel-watched
//! master (both [`Reconnecting`]: multiplexed connections that are replaced after an error that
//! means the connection or the master is gone), and a cluster (redis-rs's cluster connection,
//! which follows MOVED and ASK).
//!
//! Why not redis-rs's `ConnectionManager` for a single server: it reaches its connection
//! through a shared future on every request, which cost about a tenth of the client's CPU time
//! in `benches/redis.rs`; [`Reconnecting`] hands out a clone of a plain
//! `MultiplexedConnection` from a mutex, and the same code follows a Sentinel failover.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A cheap-to-clone connection to the deployment.
#[derive(Clone)]
pub(crate) enum Conn {
    /// A standalone server, or the master that sentinels name.
    Server(Reconnecting),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl Conn {
    /// Whether keys live on several masters (so multi-key commands must stay in one slot).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl Conn {
    /// A connection for one request: the current one of a server (opened if needed), or the
    /// cluster connection. Hand the request's error, if any, to [`settle`](Self::settle).
    pub(crate) async fn checkout(&self) -> RedisResult<Checked> {
        match self {
            Conn::Server(server) => {
                let slot = server.pick();
                let (generation, conn) = server.connection(slot).await?;
                Ok(Checked::Server {
                    conn,
                    slot,
                    generation,
                })
            }
            Conn::Cluster(cluster) => Ok(Checked::Cluster(cluster.clone())),
        }
    }

    /// Forgets a checked-out server connection after an error that means it is gone.
    pub(crate) fn settle(&self, checked: &Checked, err: &redis::RedisError) {
        if let (
            Conn::Server(server),
            Checked::Server {
                slot, generation, ..
            },
        ) = (self, checked)
        {
            server.forget(*slot, *generation, err);
        }
    }
}

/// A connection checked out for one request (see [`Conn::checkout`]); requests go straight to
/// the driver's connection.
pub(crate) enum Checked {
    /// A server connection, and where it came from.
    Server {
        conn: MultiplexedConnection,
        slot: usize,
        generation: u64,
    },
    /// The cluster connection.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Checked {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Checked::Server { conn, .. } => conn.req_packed_command(cmd),
            Checked::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Checked::Server { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
            Checked::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Checked::Server { conn, .. } => conn.get_db(),
            Checked::Cluster(c) => c.get_db(),
        }
    }
}

/// Where new connections come from.
pub(crate) enum Connector {
    /// One server at a fixed address.
    Direct(redis::Client),
    /// Whichever server the sentinels name as the master now.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl Connector {
    async fn connect(&self, config: &AsyncConnectionConfig) -> RedisResult<MultiplexedConnection> {
        match self {
            Connector::Direct(client) => {
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
            }
            Connector::Sentinel(client) => {
                client
                    .lock()
                    .await
                    .get_async_connection_with_config(config)
                    .await
            }
        }
    }
}

/// After a connection attempt fails, requests within this long fail at once with that error
/// instead of each trying again (so a server that is down costs one attempt per pause, not one
/// per request, and a blackholed one does not queue every request behind a connect timeout).
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Multiplexed connections (one by default; `connections=N` spreads requests round-robin over
/// N) that are opened on first use and replaced after an error that means they are gone.
#[derive(Clone)]
pub(crate) struct Reconnecting {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    config: AsyncConnectionConfig,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    /// The current connection and its generation.
    current: std::sync::Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while connecting, so one task connects and the others wait for its result.
    connecting: tokio::sync::Mutex<Option<Failure>>,
    generation: AtomicU64,
}

/// The last failed connection attempt of a slot.
struct Failure {
    at: Instant,
    error: redis::RedisError,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Reconnecting {
    /// Opens `connections` (at least one) connections through `connector`.
    pub(crate) async fn connect(
        connector: Connector,
        config: AsyncConnectionConfig,
        connections: usize,
    ) -> RedisResult<Self> {
        let slots = (0..connections.max(1)).map(|_| Slot::default()).collect();
        let conn = Self {
            shared: Arc::new(Shared {
                connector,
                config,
                slots,
                next: AtomicUsize::new(0),
            }),
        };
        for slot in 0..conn.shared.slots.len() {
            conn.connection(slot).await?;
        }
        Ok(conn)
    }

    fn pick(&self) -> usize {
        match self.shared.slots.len() {
            1 => 0,
            n => self.shared.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    fn cached(&self, slot: usize) -> Option<(u64, MultiplexedConnection)> {
        lock(&self.shared.slots[slot].current).clone()
    }

    /// The slot's connection, or a new one.
    async fn connection(&self, slot: usize) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.cached(slot) {
            return Ok(current);
        }
        let waited_from = Instant::now();
        let state = &self.shared.slots[slot];
        let mut failure = state.connecting.lock().await;
        // Another task may have connected, or failed to, while this one waited.
        if let Some(current) = self.cached(slot) {
            return Ok(current);
        }
        if let Some(f) = failure.as_ref()
            && (f.at >= waited_from || f.at.elapsed() < RETRY_PAUSE)
        {
            // The same error (so the same kind for the caller), without another attempt.
            return Err(f.error.clone());
        }
        match self.shared.connector.connect(&self.shared.config).await {
            Ok(conn) => {
                *failure = None;
                let generation = state.generation.fetch_add(1, Ordering::SeqCst) + 1;
                *lock(&state.current) = Some((generation, conn.clone()));
                tracing::debug!(target: "sessionbank::redis", slot, generation, "connected");
                Ok((generation, conn))
            }
            Err(e) => {
                *failure = Some(Failure {
                    at: Instant::now(),
                    error: e.clone(),
                });
                Err(e)
            }
        }
    }

    /// Forgets connection `generation` of `slot` after an error that may mean it is gone or
    /// no longer talks to the master.
    fn forget(&self, slot: usize, generation: u64, err: &redis::RedisError) {
        let gone = err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_unrecoverable_error()
            || matches!(
                err.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::ReadOnly | redis::ServerErrorKind::MasterDown
                )
            );
        if !gone {
            return;
        }
        let mut current = lock(&self.shared.slots[slot].current);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
            tracing::info!(target: "sessionbank::redis", slot, error = %err, "a Redis connection failed; the next request reconnects");
        }
    }
}
