//! MongoDB wire protocol: starts a SecantusDB server for tests, as `../shared/SERVERS.md`
//! verified it.
//!
//! Debian has no MongoDB, so the tests run SecantusDB (PyPI `secantusdb`, GPL-2.0), a MongoDB
//! wire-protocol server, as a separate process (never linked):
//! `secantusd-py --host 127.0.0.1 --port PORT --storage-path DIR --log-level WARNING`.
//! The program is `$SECANTUSD` when set, else `<repo>/.venv-mongo/bin/secantusd-py` (created by
//! `./scripts/test`), else `secantusd-py` on `PATH`. It takes a few seconds to exit on SIGTERM;
//! the guard waits up to 10 s, then sends SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ServerProcess, free_port, wait_for_port};

/// The install hint shown when no server program is found.
const INSTALL_HINT: &str = "run ./scripts/test (it installs every server), or \
     `python3 -m venv .venv-mongo && .venv-mongo/bin/pip install 'secantusdb==0.7.0b3'` \
     at the repository root, or set SECANTUSD to the server program. Server tests never skip.";

/// A MongoDB wire-protocol server (SecantusDB) on a free 127.0.0.1 port, stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::mongo::MongoServer;
///
/// let server = MongoServer::start();
/// let url = server.url("sessions_test");
/// assert!(url.starts_with("mongodb://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct MongoServer {
    port: u16,
    guard: ServerProcess,
}

/// The server program: `$SECANTUSD`, the repository's `.venv-mongo`, or `PATH`.
///
/// # Panics
///
/// When none is found, with the install hint.
pub fn program() -> PathBuf {
    if let Some(explicit) = std::env::var_os("SECANTUSD") {
        let path = PathBuf::from(&explicit);
        if path.is_file() {
            return path;
        }
        if let Some(found) = on_path(&path) {
            return found;
        }
        panic!(
            "SECANTUSD={} is not a program: {INSTALL_HINT}",
            path.display()
        );
    }
    // crates/testkit → the repository root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv-mongo/bin/secantusd-py");
    if venv.is_file() {
        return venv;
    }
    if let Some(found) = on_path(Path::new("secantusd-py")) {
        return found;
    }
    panic!("the MongoDB wire-protocol server `secantusd-py` is not installed: {INSTALL_HINT}")
}

/// `name` looked up on `PATH`.
fn on_path(name: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|full| full.is_file())
}

impl MongoServer {
    /// Starts a server with its data in a fresh temporary directory. It answers `hello` as the
    /// primary of a one-member replica set named `secantus`, so drivers and stores take their
    /// replica-set paths (multi-document transactions work).
    ///
    /// # Panics
    ///
    /// When the server program is not installed (with an install hint), or does not accept
    /// connections within 60 seconds.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server that answers `hello` as a standalone server (`--standalone`): no
    /// replica set, so stores take their paths for servers without transactions.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use sessionbank_testkit::servers::mongo::MongoServer;
    ///
    /// let replica_set = MongoServer::start();
    /// let standalone = MongoServer::start_standalone();
    /// assert_ne!(replica_set.port(), standalone.port());
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_standalone() -> Self {
        Self::start_with(&["--standalone"])
    }

    fn start_with(extra: &[&str]) -> Self {
        let program = program();
        let dir = tempfile::Builder::new()
            .prefix("sessionbank-mongo-")
            .tempdir()
            .unwrap_or_else(|e| panic!("mongo: cannot create a temporary directory: {e}"));
        let port = free_port();
        let log = dir.path().join("server.log");
        let log_file =
            File::create(&log).unwrap_or_else(|e| panic!("mongo: cannot create its log: {e}"));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("mongo: cannot share its log: {e}"));
        let mut child = Command::new(&program)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--storage-path")
            .arg(dir.path().join("data"))
            .args(["--log-level", "WARNING"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("{} could not start: {e}", program.display()));
        wait_for_port(port, Duration::from_secs(60), &mut child, &log);
        Self {
            port,
            guard: ServerProcess::new("mongo", child, dir),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `mongodb://127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("mongodb://{}/{database}", self.addr())
    }

    /// The process guard (its temporary directory holds `server.log`).
    pub fn process(&self) -> &ServerProcess {
        &self.guard
    }

    /// Stops the server now (SIGTERM, then SIGKILL after 10 s) and waits for it to exit.
    pub fn stop(self) {
        drop(self);
    }
}
