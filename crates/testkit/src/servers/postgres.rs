//! PostgreSQL: starts a real server for tests, as `../shared/SERVERS.md` verified it.
//!
//! `initdb` and `pg_ctl` live in `/usr/lib/postgresql/15/bin` (not on `PATH`) and refuse to run
//! as root, so they run through `runuser -u postgres`. The temporary directory is made
//! traversable (mode 755) and its `pg` subdirectory belongs to `postgres`; the Unix socket goes
//! there too (`-k`), which keeps its path short.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ServerProcess, free_port, require_program, run_checked};

/// Where Debian's PostgreSQL 15 keeps `initdb` and `pg_ctl`.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server on a free 127.0.0.1 port with its data in a temporary directory, trusting
/// every local connection as user `postgres`. Stopped (`pg_ctl stop -m fast`, then the process
/// guard) and deleted when dropped.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_testkit::servers::postgres::PostgresServer;
///
/// let server = PostgresServer::start();
/// assert!(server.url().starts_with("postgres://postgres@127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    data: PathBuf,
    pg_ctl: PathBuf,
    stopped: bool,
    guard: Option<ServerProcess>,
}

impl PostgresServer {
    /// Starts a server with the settings of SERVERS.md (`fsync=off`, `synchronous_commit=off`,
    /// `full_page_writes=off`).
    ///
    /// # Panics
    ///
    /// When PostgreSQL 15 or `runuser` is not installed (with an install hint), or when the
    /// server does not start.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `-c name=value` settings, e.g. `["timezone=Pacific/Kiritimati"]`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(settings: &[&str]) -> Self {
        let initdb = require_program(&format!("{PG_BIN}/initdb"), "postgresql");
        let pg_ctl = require_program(&format!("{PG_BIN}/pg_ctl"), "postgresql");
        let runuser = require_program("runuser", "util-linux");
        let dir = tempfile::Builder::new()
            .prefix("sb-pg-")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("postgres: cannot create a temporary directory: {e}"));
        set_mode(dir.path(), 0o755);
        let root = dir.path().join("pg");
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("postgres: cannot create {}: {e}", root.display()));
        run_checked(Command::new("chown").args(["postgres:postgres"]).arg(&root));
        let data = root.join("data");
        run_checked(
            Command::new(&runuser)
                .args(["-u", "postgres", "--"])
                .arg(&initdb)
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        );
        let port = free_port();
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            root.display()
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        run_checked(
            Command::new(&runuser)
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(root.join("log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]),
        );
        // postmaster.pid: the first line is the server's pid.
        let pid_text = std::fs::read_to_string(data.join("postmaster.pid"))
            .unwrap_or_else(|e| panic!("postgres: cannot read postmaster.pid: {e}"));
        let pid_file = dir.path().join("server.pid");
        std::fs::write(&pid_file, pid_text.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("postgres: cannot write {}: {e}", pid_file.display()));
        let guard = ServerProcess::daemon("postgres", &pid_file, dir);
        Self {
            port,
            data,
            pg_ctl,
            stopped: false,
            guard: Some(guard),
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (`pg_ctl stop -m fast`), e.g. to test what a store does when its
    /// database goes away. Dropping the guard afterwards only removes the directory.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .output();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        drop(self.guard.take());
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}
