//! One connection type over the three deployments: a standalone server (a multiplexed
//! [`ConnectionManager`] that reconnects by itself), a cluster (redis-rs's cluster connection,
//! which follows MOVED and ASK), and a sentinel-watched master (a multiplexed connection to
//! the master the sentinels name, asked again after a connection error or a `READONLY` answer,
//! which is how a failover shows).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A cheap-to-clone connection to the deployment.
#[derive(Clone)]
pub(crate) enum Conn {
    /// A standalone server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
    /// A master found through sentinels.
    Sentinel(SentinelConn),
}

impl Conn {
    /// Whether keys live on several masters (so multi-key commands must stay in one slot).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

/// The master named by sentinels, over one multiplexed connection that is replaced after an
/// error that a failover causes.
#[derive(Clone)]
pub(crate) struct SentinelConn {
    shared: Arc<SentinelShared>,
    db: i64,
}

struct SentinelShared {
    client: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    /// The current connection and its generation.
    current: std::sync::Mutex<Option<(u64, MultiplexedConnection)>>,
    generation: AtomicU64,
}

impl SentinelConn {
    /// Asks the sentinels for the master and connects to it.
    pub(crate) async fn connect(
        client: SentinelClient,
        config: AsyncConnectionConfig,
        db: i64,
    ) -> RedisResult<Self> {
        let conn = Self {
            shared: Arc::new(SentinelShared {
                client: tokio::sync::Mutex::new(client),
                config,
                current: std::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
            }),
            db,
        };
        conn.connection().await?;
        Ok(conn)
    }

    fn cached(&self) -> Option<(u64, MultiplexedConnection)> {
        match self.shared.current.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current connection, or a new one to the master the sentinels name now.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.cached() {
            return Ok(current);
        }
        let mut client = self.shared.client.lock().await;
        // Another task may have reconnected while this one waited for the lock.
        if let Some(current) = self.cached() {
            return Ok(current);
        }
        let conn = client
            .get_async_connection_with_config(&self.shared.config)
            .await?;
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut guard = match self.shared.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Some((generation, conn.clone()));
        tracing::debug!(target: "sessionbank::redis", "connected to the master the sentinels name");
        Ok((generation, conn))
    }

    /// Forgets connection `generation` after an error that may mean a failover.
    fn forget(&self, generation: u64, err: &redis::RedisError) {
        let failover = err.is_io_error()
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
        if !failover {
            return;
        }
        let mut guard = match self.shared.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.as_ref().is_some_and(|(g, _)| *g == generation) {
            *guard = None;
            tracing::info!(target: "sessionbank::redis", "the sentinel master connection failed; asking the sentinels again");
        }
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let (generation, mut conn) = self.connection().await?;
            let result = conn.req_packed_command(cmd).await;
            if let Err(e) = &result {
                self.forget(generation, e);
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let (generation, mut conn) = self.connection().await?;
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &result {
                self.forget(generation, e);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}
