//! Memcached: starts a real server for tests, as `../shared/SERVERS.md` verified it.
//!
//! `memcached -u root -l 127.0.0.1 -p PORT -U 0 -m 64`, run as our child process (not
//! daemonized), so the [`ServerProcess`] guard stops it when dropped. `-u root` is needed when
//! the tests run as root and ignored otherwise; `-U 0` turns UDP off.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ServerProcess, free_port, require_program, wait_for_port};

/// A memcached server on a free 127.0.0.1 port, stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::memcached::MemcachedServer;
///
/// let a = MemcachedServer::start();
/// let b = MemcachedServer::start_with(&["-I", "2m"]);
/// let url = format!("memcached://{},{}", a.addr(), b.addr());
/// assert!(url.starts_with("memcached://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct MemcachedServer {
    port: u16,
    guard: ServerProcess,
}

impl MemcachedServer {
    /// Starts a server with 64 MB of memory and the default 1 MiB item size limit.
    ///
    /// # Panics
    ///
    /// When memcached is not installed (with an install hint), or does not start listening
    /// within 30 seconds.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments, e.g. `["-I", "2m"]` for a 2 MiB item
    /// size limit.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> Self {
        let program = require_program("memcached", "memcached");
        let dir = tempfile::Builder::new()
            .prefix("sessionbank-memcached-")
            .tempdir()
            .unwrap_or_else(|e| panic!("memcached: cannot create a temporary directory: {e}"));
        let port = free_port();
        let log = dir.path().join("memcached.log");
        let log_file =
            File::create(&log).unwrap_or_else(|e| panic!("memcached: cannot create its log: {e}"));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("memcached: cannot share its log: {e}"));
        let mut child = Command::new(program)
            .args(["-u", "root", "-l", "127.0.0.1", "-U", "0", "-m", "64", "-p"])
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("memcached could not start: {e}"));
        wait_for_port(port, Duration::from_secs(30), &mut child, &log);
        Self {
            port,
            guard: ServerProcess::new("memcached", child, dir),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, one entry of a `memcached://` URL.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `memcached://127.0.0.1:PORT` for this server alone.
    pub fn url(&self) -> String {
        format!("memcached://{}", self.addr())
    }

    /// The process guard (its temporary directory holds `memcached.log`).
    pub fn process(&self) -> &ServerProcess {
        &self.guard
    }

    /// Stops the server now (SIGTERM, then SIGKILL after a grace period) and waits for it to
    /// exit.
    pub fn stop(self) {
        drop(self);
    }
}
