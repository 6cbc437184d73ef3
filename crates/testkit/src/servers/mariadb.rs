//! MariaDB: starts a real server for tests, as `../shared/SERVERS.md` verified it.
//!
//! `mariadb-install-db --no-defaults --user=root` makes a data directory in which root has no
//! password over TCP; `mariadbd --no-defaults --user=root` serves it on a free 127.0.0.1 port
//! with its socket, pid file and error log in the temporary directory; `mariadb-admin ping`
//! says when it is ready; `mariadb -e "create database sess"` makes the test database.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ServerProcess, free_port, require_program, run_checked};

/// The database the server is started with.
pub const DATABASE: &str = "sess";

/// A MariaDB server on a free 127.0.0.1 port with its data in a temporary directory, root
/// without a password, and the database [`DATABASE`]. Stopped (`mariadb-admin shutdown`, then
/// the process guard) and deleted when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::mariadb::MariaDbServer;
///
/// let server = MariaDbServer::start();
/// assert!(server.url().starts_with("mysql://root@127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct MariaDbServer {
    port: u16,
    admin: PathBuf,
    stopped: bool,
    guard: Option<ServerProcess>,
}

impl MariaDbServer {
    /// Starts a server with the settings of SERVERS.md (no binary log, relaxed flushing,
    /// a 64 MiB buffer pool).
    ///
    /// # Panics
    ///
    /// When MariaDB is not installed (with an install hint), or when the server does not start
    /// within 60 seconds.
    pub fn start() -> Self {
        let install = require_program("mariadb-install-db", "mariadb-server");
        let server = require_program("mariadbd", "mariadb-server");
        let admin = require_program("mariadb-admin", "mariadb-client");
        let client = require_program("mariadb", "mariadb-client");
        let dir = tempfile::Builder::new()
            .prefix("sb-my-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("mariadb: cannot create a temporary directory: {e}"));
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        run_checked(
            Command::new(&install)
                .arg("--no-defaults")
                .arg("--user=root")
                .arg(format!("--datadir={}", data.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db"),
        );
        let port = free_port();
        let log = root.join("err.log");
        let mut child = Command::new(&server)
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", root.join("sock").display()))
            .arg(format!("--pid-file={}", root.join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=500",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mariadb: cannot start {}: {e}", server.display()));
        let started = Instant::now();
        loop {
            let ping = Command::new(&admin)
                .args(["--no-defaults", "-h127.0.0.1", "-uroot"])
                .arg(format!("-P{port}"))
                .arg("ping")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ping.is_ok_and(|s| s.success()) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "mariadb exited with {status} before answering ping; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mariadb did not answer ping within 60 s; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let guard = ServerProcess::new("mariadb", child, dir);
        run_checked(
            Command::new(&client)
                .args(["--no-defaults", "-h127.0.0.1", "-uroot"])
                .arg(format!("-P{port}"))
                .args(["-e", &format!("create database {DATABASE}")]),
        );
        Self {
            port,
            admin,
            stopped: false,
            guard: Some(guard),
        }
    }

    /// `mysql://root@127.0.0.1:PORT/sess`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (`mariadb-admin shutdown`), e.g. to test what a store does when its
    /// database goes away. Dropping the guard afterwards only removes the directory.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new(&self.admin)
            .args(["--no-defaults", "-h127.0.0.1", "-uroot"])
            .arg(format!("-P{}", self.port))
            .arg("shutdown")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        self.stop();
        drop(self.guard.take());
    }
}
