//! The store's connections: its pool (its own, built from a driver config, or the
//! application's), the few connections shared by single statements, and [`Inner`], what every
//! operation reads.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use sessionbank_core::Result;
use tokio_postgres::NoTls;

use crate::config::{Source, config_error};
use crate::layout::Sql;

/// What every operation of a store reads: the pool, the statements, the names and limits.
pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) sql: Sql,
    pub(crate) target: String,
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) create: bool,
    pub(crate) browser_idle: Duration,
    pub(crate) timeout: Duration,
    pub(crate) ready: tokio::sync::OnceCell<()>,
    /// Connections taken from the pool once and shared by every single-statement operation:
    /// tokio-postgres pipelines the statements of concurrent callers on one connection.
    pub(crate) shared: Vec<Mutex<Option<Arc<Object>>>>,
    pub(crate) next: AtomicUsize,
}

/// The pool for `source` and how many of its connections single statements share. Own pool:
/// `pool_size` shared connections, plus two for the operations that need one to themselves
/// (rename's transaction, cleanup, setup). An application's pool: half of it, so the
/// application keeps the rest.
pub(crate) fn build_pool(
    source: Source,
    pool_size: usize,
    connect_timeout: Duration,
    statement_timeout: Duration,
) -> Result<(Pool, usize)> {
    match source {
        Source::Pool(pool) => {
            let shared = (pool.status().max_size / 2).max(1);
            Ok((pool, shared))
        }
        Source::Config(mut config) => {
            config.connect_timeout(connect_timeout);
            config.keepalives(true);
            config.keepalives_idle(Duration::from_secs(60));
            let manager = Manager::from_config(
                *config,
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            let pool = Pool::builder(manager)
                .max_size(pool_size.saturating_add(2))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(statement_timeout))
                .create_timeout(Some(connect_timeout))
                .recycle_timeout(Some(connect_timeout))
                .build()
                .map_err(|e| config_error("the connection pool cannot be built").with_source(e))?;
            Ok((pool, pool_size))
        }
    }
}
