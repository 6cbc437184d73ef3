//! Making the Redis clients a [`RedisStoreBuilder`] describes: a standalone server (plain or
//! TLS, with an optional CA file), a Sentinel-watched master, or a Cluster; then the first
//! connection, within the connect timeout.

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates,
};
use sessionbank_core::{Action, Result};

use crate::config::{RedisStoreBuilder, Topology};
use crate::conn::{Conn, Connector, Reconnecting};
use crate::error::{self, BACKEND};

fn connection_config(b: &RedisStoreBuilder) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(b.connect_timeout))
        .set_response_timeout(Some(b.response_timeout))
}

fn redis_info(b: &RedisStoreBuilder) -> redis::RedisConnectionInfo {
    let mut info = redis::RedisConnectionInfo::default();
    if let Topology::Standalone { db, .. } | Topology::Sentinel { db, .. } = &b.topology {
        info = info.set_db(*db);
    }
    if let Some(u) = &b.username {
        info = info.set_username(u.clone());
    }
    if let Some(p) = &b.password {
        info = info.set_password(p.clone());
    }
    info
}

fn connect_error(b: &RedisStoreBuilder, err: redis::RedisError) -> sessionbank_core::Error {
    error::from_redis(Action::Connect, &b.target, err)
}

/// Makes the client for `b`'s topology and opens its first connection(s).
pub(crate) async fn connect(b: &RedisStoreBuilder) -> Result<Conn> {
    let conn = match &b.topology {
        Topology::Standalone { host, port, .. } => {
            let client = standalone_client(b, host, *port)?;
            let conn = tokio::time::timeout(
                b.connect_timeout.saturating_mul(2),
                Reconnecting::connect(
                    Connector::Direct(client),
                    connection_config(b),
                    b.connections,
                ),
            )
            .await
            .map_err(|_| connect_timed_out(b))?
            .map_err(|e| connect_error(b, e))?;
            Conn::Server(conn)
        }
        Topology::Cluster { nodes } => {
            let infos: Vec<ConnectionInfo> = nodes
                .iter()
                .map(|(h, p)| {
                    ConnectionAddr::Tcp(h.clone(), *p)
                        .into_connection_info()
                        .map(|i| i.set_redis_settings(redis_info(b)))
                })
                .collect::<redis::RedisResult<_>>()
                .map_err(|e| connect_error(b, e))?;
            let client = ClusterClientBuilder::new(infos)
                .connection_timeout(b.connect_timeout)
                .response_timeout(b.response_timeout)
                .build()
                .map_err(|e| connect_error(b, e))?;
            let conn = tokio::time::timeout(
                b.connect_timeout.saturating_mul(2),
                client.get_async_connection(),
            )
            .await
            .map_err(|_| connect_timed_out(b))?
            .map_err(|e| connect_error(b, e))?;
            Conn::Cluster(conn)
        }
        Topology::Sentinel {
            sentinels,
            master,
            db,
        } => {
            let addrs: Vec<ConnectionAddr> = sentinels
                .iter()
                .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p))
                .collect();
            let mut builder =
                SentinelClientBuilder::new(addrs, master.clone(), SentinelServerType::Master)
                    .map_err(|e| connect_error(b, e))?
                    .set_client_to_redis_db(*db);
            if let Some(u) = &b.username {
                builder = builder.set_client_to_redis_username(u);
            }
            if let Some(p) = &b.password {
                builder = builder.set_client_to_redis_password(p);
            }
            let client = builder.build().map_err(|e| connect_error(b, e))?;
            let conn = tokio::time::timeout(
                b.connect_timeout.saturating_mul(2),
                Reconnecting::connect(
                    Connector::Sentinel(tokio::sync::Mutex::new(client)),
                    connection_config(b),
                    b.connections,
                ),
            )
            .await
            .map_err(|_| connect_timed_out(b))?
            .map_err(|e| connect_error(b, e))?;
            Conn::Server(conn)
        }
    };
    Ok(conn)
}

/// The redis-rs client for one server, over TLS for `rediss://`.
fn standalone_client(b: &RedisStoreBuilder, host: &str, port: u16) -> Result<redis::Client> {
    if !b.tls {
        let info = ConnectionAddr::Tcp(host.to_owned(), port)
            .into_connection_info()
            .map_err(|e| connect_error(b, e))?
            .set_redis_settings(redis_info(b));
        return redis::Client::open(info).map_err(|e| connect_error(b, e));
    }
    // rustls needs a process-wide crypto provider; install ring's unless the application
    // already chose one (then this does nothing).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let info = ConnectionAddr::TcpTls {
        host: host.to_owned(),
        port,
        insecure: b.tls_insecure,
        tls_params: None,
    }
    .into_connection_info()
    .map_err(|e| connect_error(b, e))?
    .set_redis_settings(redis_info(b));
    match &b.tls_ca {
        None => redis::Client::open(info).map_err(|e| connect_error(b, e)),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                error::config(format!(
                    "cannot read the tls_ca file {}: {e}",
                    path.display()
                ))
                .with_target(b.target.clone())
            })?;
            let certificates = TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(info, certificates).map_err(|_| {
                error::config(format!(
                    "the tls_ca file {} holds no usable PEM certificate",
                    path.display()
                ))
                .with_target(b.target.clone())
            })
        }
    }
}

fn connect_timed_out(b: &RedisStoreBuilder) -> sessionbank_core::Error {
    sessionbank_core::Error::new(
        sessionbank_core::ErrorKind::Timeout,
        Action::Connect,
        "Redis did not accept a connection in time",
    )
    .with_backend(BACKEND)
    .with_target(b.target.clone())
}
