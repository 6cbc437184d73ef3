//! Redis: starts real servers for tests (standalone, a three-master cluster, and a master with a
//! replica watched by three sentinels), as `../shared/SERVERS.md` verified them.
//!
//! Every `redis-server` runs as our child process (not daemonized) with
//! `--save '' --appendonly no`, on a free 127.0.0.1 port and in its own temporary directory, so
//! the [`ServerProcess`] guards stop them (by pid) when dropped.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ServerProcess, free_port, require_program, run_checked, wait_for_port};

/// How long a server, a cluster or a sentinel group may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Spawns one `redis-server` (or `redis-sentinel` when `sentinel_conf` is given) with `args`, waits
/// until it accepts connections, and guards it.
fn spawn(name: &str, port: u16, args: &[String], sentinel_conf: Option<&str>) -> ServerProcess {
    spawn_with_files(name, port, args, sentinel_conf, &[])
}

/// As [`spawn`], after writing `files` (name, content) into the server's temporary directory,
/// which is also its working directory, so `args` can name them by relative path.
fn spawn_with_files(
    name: &str,
    port: u16,
    args: &[String],
    sentinel_conf: Option<&str>,
    files: &[(&str, &str)],
) -> ServerProcess {
    let program = if sentinel_conf.is_some() {
        require_program("redis-sentinel", "redis-sentinel")
    } else {
        require_program("redis-server", "redis-server")
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("sessionbank-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("{name}: cannot create a temporary directory: {e}"));
    let log = dir.path().join("redis.log");
    let log_file =
        File::create(&log).unwrap_or_else(|e| panic!("{name}: cannot create its log: {e}"));
    let log_err = log_file
        .try_clone()
        .unwrap_or_else(|e| panic!("{name}: cannot share its log: {e}"));
    for (file, content) in files {
        std::fs::write(dir.path().join(file), content)
            .unwrap_or_else(|e| panic!("{name}: cannot write {file}: {e}"));
    }
    let mut command = Command::new(program);
    command.current_dir(dir.path());
    if let Some(conf) = sentinel_conf {
        // The sentinel rewrites its configuration file, so it lives in the writable temp dir.
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf)
            .unwrap_or_else(|e| panic!("{name}: cannot write sentinel.conf: {e}"));
        command.arg(&path);
    }
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir.path());
    if sentinel_conf.is_none() {
        command.args(["--save", "", "--appendonly", "no"]);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} could not start: {e}"));
    wait_for_port(port, READY_TIMEOUT, &mut child, &log);
    ServerProcess::new(name, child, dir)
}

/// Runs `redis-cli -p PORT args...` and returns its standard output (empty on failure).
fn cli(port: u16, args: &[&str]) -> String {
    let program = require_program("redis-cli", "redis-tools");
    Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Polls `check` every 20 ms until it holds.
///
/// # Panics
///
/// When it does not within [`READY_TIMEOUT`]; `what` and the server's log explain why.
fn wait_until(what: &str, log: &Path, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > READY_TIMEOUT {
            panic!(
                "{what} did not happen within {READY_TIMEOUT:?}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A standalone Redis server on a free 127.0.0.1 port, stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::redis::RedisServer;
///
/// let server = RedisServer::start();
/// assert!(server.url().starts_with("redis://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    tls: bool,
    guard: ServerProcess,
}

/// The PEM texts a TLS server needs: the CA certificate its clients trust, and the server's
/// certificate (for `127.0.0.1`, signed by that CA) and private key.
///
/// The testkit does not make them (that would add a certificate crate to every user of the
/// testkit); a test generates them, e.g. with `rcgen`.
#[derive(Clone)]
pub struct TlsPems {
    /// The certificate authority's certificate.
    pub ca_cert: String,
    /// The server's certificate.
    pub server_cert: String,
    /// The server's private key.
    pub server_key: String,
}

impl std::fmt::Debug for TlsPems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPems").finish_non_exhaustive()
    }
}

/// The CA certificate's file name in a TLS server's directory.
const TLS_CA_FILE: &str = "ca.pem";

impl RedisServer {
    /// Starts a server with persistence off.
    ///
    /// # Panics
    ///
    /// When redis-server is not installed (with an install hint), or does not answer within
    /// a minute.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments, e.g. `["--maxmemory", "10mb"]`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_on_port(free_port(), extra)
    }

    /// Starts a server on `port` (e.g. the port of a server just stopped, to test that
    /// clients reconnect), with extra command-line arguments.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_testkit::servers::redis::RedisServer;
    ///
    /// let first = RedisServer::start();
    /// let port = first.port();
    /// drop(first);
    /// let again = RedisServer::start_on_port(port, &[]);
    /// assert_eq!(again.port(), port);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the port is taken.
    pub fn start_on_port(port: u16, extra: &[&str]) -> Self {
        let args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let guard = spawn("redis", port, &args, None);
        let log = guard.dir().join("redis.log");
        wait_until("redis PING", &log, || cli(port, &["ping"]).contains("PONG"));
        Self {
            port,
            tls: false,
            guard,
        }
    }

    /// Starts a server that speaks only TLS (`--port 0 --tls-port PORT`), with `pems` written
    /// into its directory. Clients need not present a certificate (`--tls-auth-clients no`).
    /// [`url`](Self::url) is then `rediss://127.0.0.1:PORT/0` and [`ca_path`](Self::ca_path)
    /// the CA certificate to trust.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_testkit::servers::redis::{RedisServer, TlsPems};
    ///
    /// # fn pems() -> TlsPems { unimplemented!() }
    /// let server = RedisServer::start_tls(&pems());
    /// assert!(server.url().starts_with("rediss://127.0.0.1:"));
    /// assert!(server.ca_path().is_some());
    /// ```
    ///
    /// # Panics
    ///
    /// When redis-server is not installed or was built without TLS (with a hint), or does not
    /// answer within a minute.
    pub fn start_tls(pems: &TlsPems) -> Self {
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            TLS_CA_FILE,
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let files = [
            (TLS_CA_FILE, pems.ca_cert.as_str()),
            ("server.pem", pems.server_cert.as_str()),
            ("server.key", pems.server_key.as_str()),
        ];
        let guard = spawn_with_files("redis-tls", port, &args, None, &files);
        let log = guard.dir().join("redis.log");
        let ca = guard.dir().join(TLS_CA_FILE);
        let ca = ca.to_string_lossy().into_owned();
        wait_until(
            "redis PING over TLS (redis-server and redis-cli must be built with TLS, as Debian's are)",
            &log,
            || cli(port, &["--tls", "--cacert", &ca, "ping"]).contains("PONG"),
        );
        Self {
            port,
            tls: true,
            guard,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`, or `rediss://127.0.0.1:PORT/0` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// The CA certificate (PEM) that a TLS server's certificate chains to; `None` for a plain
    /// server.
    pub fn ca_path(&self) -> Option<std::path::PathBuf> {
        self.tls.then(|| self.guard.dir().join(TLS_CA_FILE))
    }

    /// Runs `redis-cli` against this server (over TLS for a TLS server) and returns what it
    /// printed.
    pub fn cli(&self, args: &[&str]) -> String {
        match self.ca_path() {
            Some(ca) => {
                let ca = ca.to_string_lossy().into_owned();
                let mut all = vec!["--tls", "--cacert", ca.as_str()];
                all.extend_from_slice(args);
                cli(self.port, &all)
            }
            None => cli(self.port, args),
        }
    }

    /// The process guard (its directory holds the log).
    pub fn guard(&self) -> &ServerProcess {
        &self.guard
    }
}

/// A Redis Cluster of three masters (no replicas) on free 127.0.0.1 ports, stopped when dropped.
///
/// Each node gets a second free port as its cluster bus (`--cluster-port`): the default,
/// port + 10000, fails for ports above 55535.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::redis::RedisCluster;
///
/// let cluster = RedisCluster::start();
/// assert_eq!(cluster.ports().len(), 3);
/// assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    guards: Vec<ServerProcess>,
}

impl RedisCluster {
    /// Starts three masters, creates the cluster and waits until every node reports
    /// `cluster_state:ok` (about 2 seconds: a new master waits that long).
    ///
    /// # Panics
    ///
    /// When redis-server or redis-cli is missing, or the cluster is not ready within a minute.
    pub fn start() -> Self {
        let mut ports = Vec::new();
        let mut guards = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let bus = free_port();
            let args: Vec<String> = [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            guards.push(spawn("redis-cluster", port, &args, None));
            ports.push(port);
        }
        let program = require_program("redis-cli", "redis-tools");
        let mut create = Command::new(program);
        create.args(["--cluster", "create"]);
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        run_checked(&mut create);
        for (port, guard) in ports.iter().zip(&guards) {
            let log = guard.dir().join("redis.log");
            wait_until("cluster_state:ok", &log, || {
                cli(*port, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        Self { ports, guards }
    }

    /// The masters' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Runs `redis-cli` against the node on `port` and returns what it printed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// The process guards, one per node.
    pub fn guards(&self) -> &[ServerProcess] {
        &self.guards
    }
}

/// A Redis master, one replica of it, and three sentinels watching it under the name
/// `mymaster` (down after 1 s, failover timeout 3 s), stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::redis::RedisSentinel;
///
/// let group = RedisSentinel::start();
/// assert!(group.url().starts_with("redis+sentinel://127.0.0.1:"));
/// assert!(group.url().ends_with("/mymaster"));
/// ```
#[derive(Debug)]
pub struct RedisSentinel {
    master_port: u16,
    replica_port: u16,
    sentinel_ports: Vec<u16>,
    master: Option<ServerProcess>,
    replica: ServerProcess,
    sentinels: Vec<ServerProcess>,
}

/// The master name the sentinels monitor.
pub const SENTINEL_MASTER_NAME: &str = "mymaster";

impl RedisSentinel {
    /// Starts the master, the replica (and waits for its link), then the three sentinels (and
    /// waits until each knows the master and the two other sentinels).
    ///
    /// # Panics
    ///
    /// When redis-server or redis-sentinel is missing, or the group is not ready in a minute.
    pub fn start() -> Self {
        let master_port = free_port();
        let master = spawn(
            "redis-master",
            master_port,
            &["--repl-diskless-sync-delay".to_owned(), "0".to_owned()],
            None,
        );
        let replica_port = free_port();
        let replica = spawn(
            "redis-replica",
            replica_port,
            &[
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                master_port.to_string(),
                "--repl-diskless-sync-delay".to_owned(),
                "0".to_owned(),
            ],
            None,
        );
        let log = replica.dir().join("redis.log");
        wait_until("the replica's link to its master", &log, || {
            cli(replica_port, &["info", "replication"]).contains("master_link_status:up")
        });
        let mut sentinel_ports = Vec::new();
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = format!(
                "sentinel monitor {SENTINEL_MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER_NAME} 1000\n\
                 sentinel failover-timeout {SENTINEL_MASTER_NAME} 3000\n"
            );
            sentinels.push(spawn("redis-sentinel", port, &[], Some(&conf)));
            sentinel_ports.push(port);
        }
        for (port, guard) in sentinel_ports.iter().zip(&sentinels) {
            let log = guard.dir().join("redis.log");
            wait_until("the sentinel knowing its master", &log, || {
                cli(
                    *port,
                    &["sentinel", "get-master-addr-by-name", SENTINEL_MASTER_NAME],
                )
                .contains("127.0.0.1")
            });
        }
        for (port, guard) in sentinel_ports.iter().zip(&sentinels) {
            let log = guard.dir().join("redis.log");
            wait_until("the sentinels discovering each other", &log, || {
                cli(*port, &["sentinel", "master", SENTINEL_MASTER_NAME])
                    .lines()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w[0] == "num-other-sentinels" && w[1] == "2")
            });
        }
        Self {
            master_port,
            replica_port,
            sentinel_ports,
            master: Some(master),
            replica,
            sentinels,
        }
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!(
            "redis+sentinel://{}/{SENTINEL_MASTER_NAME}",
            nodes.join(",")
        )
    }

    /// The first master's port.
    pub fn master_port(&self) -> u16 {
        self.master_port
    }

    /// The replica's port (the master after a failover).
    pub fn replica_port(&self) -> u16 {
        self.replica_port
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> &[u16] {
        &self.sentinel_ports
    }

    /// Stops the first master (by its pid), as a crash would, so the sentinels fail over to the
    /// replica.
    pub fn kill_master(&mut self) {
        drop(self.master.take());
    }

    /// Runs `redis-cli` against `port` and returns what it printed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args)
    }

    /// The replica's and the sentinels' guards.
    pub fn guards(&self) -> (&ServerProcess, &[ServerProcess]) {
        (&self.replica, &self.sentinels)
    }
}
