//! The harness itself: guards stop what they started, missing programs fail loudly.

use std::process::Command;
use std::time::Duration;

use sessionbank_testkit::servers::{ServerProcess, free_port, require_program, wait_for_port};

#[test]
fn dropping_the_guard_stops_the_server_and_removes_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("log");
    // A real listener (python's http.server) as a stand-in server process.
    let mut child = Command::new(require_program("python3", "python3"))
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, Duration::from_secs(10), &mut child, &log);
    let pid = child.id();
    let path = dir.path().to_path_buf();
    let guard = ServerProcess::new("http", child, dir);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(guard);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "the server still runs: {stat}"
    );
    assert!(!path.exists(), "the directory is removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens any more"
    );
}

#[test]
#[should_panic(expected = "apt-get install no-such-package")]
fn a_missing_program_fails_with_an_install_hint() {
    require_program("sessionbank-no-such-server", "no-such-package");
}
