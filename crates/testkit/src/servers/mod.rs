//! The real-server harness: starts database servers on free 127.0.0.1 ports, in temporary
//! directories, and stops them when the guard is dropped.
//!
//! A test binary starts each server once (in its `main`, before
//! [`Conformance::run`](crate::Conformance::run)) and every trial gets its own namespace on it
//! (a table, a key prefix, a database). A server binary that is not installed is a failure with
//! an install hint, never a skip: `./scripts/test` installs them.
//!
//! The commands follow `../shared/SERVERS.md`, which were verified on these machines.

pub mod mariadb;
pub mod memcached;
pub mod mongo;
pub mod postgres;
pub mod redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1, as the OS hands it out (bound and released at once).
///
/// # Panics
///
/// When the OS has no free port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"));
    match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port on 127.0.0.1: {e}"),
    }
}

/// The path of `program` on `PATH` (or the absolute path given), or a panic that says which
/// Debian package to install.
///
/// # Panics
///
/// When the program is not installed.
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
    let candidate = Path::new(program);
    if candidate.is_absolute() {
        if candidate.is_file() {
            return candidate.to_path_buf();
        }
    } else if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let full = dir.join(program);
            if full.is_file() {
                return full;
            }
        }
    }
    panic!(
        "`{program}` is not installed: run ./scripts/test (it installs every server), or \
         `apt-get install {debian_package}`. Server tests never skip."
    )
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
///
/// # Panics
///
/// When nothing does within `timeout`, or `child` exits first (its log is in `log`).
pub fn wait_for_port(port: u16, timeout: Duration, child: &mut Child, log: &Path) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the server exited with {status} before listening on port {port}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if start.elapsed() > timeout {
            panic!(
                "nothing listened on port {port} within {timeout:?}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion, panicking with its output when it fails.
///
/// # Panics
///
/// When the command cannot start or exits unsuccessfully.
pub fn run_checked(command: &mut Command) {
    let shown = format!("{command:?}");
    match command.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{shown} failed with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("{shown} could not start: {e}"),
    }
}

/// A server process that is stopped (SIGTERM, then SIGKILL after a grace period) when dropped,
/// together with its temporary data directory.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    /// Extra pids to stop (servers that daemonize write a pid file instead of staying our child).
    daemon_pids: Vec<i32>,
    dir: Option<tempfile::TempDir>,
    name: String,
}

impl ServerProcess {
    /// Guards a spawned child and its directory.
    pub fn new(name: &str, child: Child, dir: tempfile::TempDir) -> Self {
        Self {
            child: Some(child),
            daemon_pids: Vec::new(),
            dir: Some(dir),
            name: name.to_owned(),
        }
    }

    /// Guards a server that daemonized: it is stopped by the pid read from `pid_file`.
    ///
    /// # Panics
    ///
    /// When the pid file cannot be read.
    pub fn daemon(name: &str, pid_file: &Path, dir: tempfile::TempDir) -> Self {
        let text = std::fs::read_to_string(pid_file)
            .unwrap_or_else(|e| panic!("{name}: cannot read {}: {e}", pid_file.display()));
        let pid: i32 = text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {} holds no pid: {e}", pid_file.display()));
        Self {
            child: None,
            daemon_pids: vec![pid],
            dir: Some(dir),
            name: name.to_owned(),
        }
    }

    /// Adds a daemon's pid to stop with this guard.
    pub fn also_stop(&mut self, pid: i32) {
        self.daemon_pids.push(pid);
    }

    /// The temporary directory (data, logs, sockets).
    ///
    /// # Panics
    ///
    /// Never: the directory lives as long as the guard.
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Some(dir) => dir.path(),
            None => Path::new("/nonexistent"),
        }
    }

    /// The server's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pids of the server's processes (the child, and any daemon pids).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = self.daemon_pids.clone();
        if let Some(child) = &self.child
            && let Ok(pid) = i32::try_from(child.id())
        {
            pids.push(pid);
        }
        pids
    }
}

/// Pins a benchmark's server and client to one core each, as the issues' reference figures
/// were measured: every thread of the `server` processes to CPU 0, and every thread of this
/// process (and those it starts afterwards, e.g. a tokio runtime's workers) to CPU 1.
///
/// Returns whether it pinned: a machine with
/// one CPU, or without `taskset` (util-linux), is left as it is, with a note on stderr, so a
/// benchmark still runs there (its figures are then less steady).
///
/// # Examples
///
/// ```no_run
/// let server = sessionbank_testkit::servers::redis::RedisServer::start();
/// let pinned = sessionbank_testkit::servers::pin_apart(&[server.guard()]);
/// println!("server and client pinned apart: {pinned}");
/// ```
pub fn pin_apart(servers: &[&ServerProcess]) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpus < 2 {
        eprintln!("one CPU only: server and client are not pinned apart");
        return false;
    }
    let mut pinned = true;
    for pid in servers.iter().flat_map(|s| s.pids()) {
        // `-a`: every thread of the server, not just its main one.
        pinned &= taskset(&["-a", "-p", "-c", "0", &pid.to_string()]);
    }
    // Every thread of this process (a runtime started already included); threads started
    // later inherit the mask.
    pinned &= taskset(&["-a", "-p", "-c", "1", &std::process::id().to_string()]);
    pinned
}

fn taskset(args: &[&str]) -> bool {
    match Command::new("taskset").args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "taskset {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("taskset not available ({e}): server and client are not pinned apart");
            false
        }
    }
}

/// Sends `signal` to `pid` (via `kill(1)`, so the harness needs no unsafe code).
fn signal(pid: i32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .output();
}

/// Whether `pid` still runs (a zombie counts as stopped).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let pids = self.pids();
        for pid in &pids {
            signal(*pid, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(child) = &mut self.child {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &pids {
            if alive(*pid) {
                signal(*pid, "KILL");
            }
        }
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.dir.take());
    }
}

/// CPU time a process has used, from `/proc/PID/stat` (Linux; zeros elsewhere or for a pid
/// that is gone), for benchmarks that report CPU per operation beside their rates.
///
/// # Examples
///
/// ```
/// let cpu = sessionbank_testkit::servers::ProcessCpu::of(std::process::id());
/// assert!(cpu.own >= 0.0 && cpu.children >= 0.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessCpu {
    /// Seconds of user + system time of the process itself (all its threads).
    pub own: f64,
    /// Seconds of user + system time of its children that it has waited for.
    pub children: f64,
}

impl ProcessCpu {
    /// Reads fields 14–17 (`utime`, `stime`, `cutime`, `cstime`, in ticks of 1/100 s, Linux's
    /// `USER_HZ`) of `/proc/PID/stat`.
    pub fn of(pid: u32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The command name, in parentheses, may hold spaces; the fields after it do not.
        let fields: Vec<f64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0) / 100.0;
        Self {
            own: field(14) + field(15),
            children: field(16) + field(17),
        }
    }
}
