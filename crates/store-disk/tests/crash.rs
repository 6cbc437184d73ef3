//! Acknowledged writes survive `kill -9`.
//!
//! The parent re-runs this test binary as a child writer (`SESSIONBANK_DISK_CRASH_DIR` set,
//! `--exact crash_child_writer`). The child writes sessions and prints `ACK <id> <n>` for each
//! only after `set` returned Ok. The parent kills it with SIGKILL at a random moment, reopens
//! the store, and checks every acknowledged session is there with its exact data, and that the
//! store still works. Five rounds on one directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use sessionbank_core::{ErrorKind, Record, SessionId, Store, Timestamp};
use sessionbank_store_disk::DiskStore;

const DIR_VAR: &str = "SESSIONBANK_DISK_CRASH_DIR";
const CHILD_TEST: &str = "crash_child_writer";
/// Concurrent writer tasks in the child, so kills also land in the middle of group commits.
const CHILD_TASKS: u64 = 8;

/// The record the child writes as number `n`: the parent rebuilds it to compare exactly.
fn record(n: u64) -> Record {
    let base = Timestamp::from_millis(1_700_000_000_000);
    let n_i64 = i64::try_from(n).unwrap();
    let mut record = Record::new(Timestamp::from_millis(base.as_millis() + n_i64))
        .with_data(
            json!({"n": n, "user": format!("user-{n}"), "pad": "p".repeat(usize::try_from(n % 300).unwrap())})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        )
        .expiring_at(Timestamp::from_millis(4_000_000_000_000 + n_i64));
    if n.is_multiple_of(3) {
        record = record.owned_by(format!("owner-{}", n % 7));
    }
    record
}

/// Not a test on its own: the entry point of the child writer. Without the environment
/// variable it has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let start: u64 = std::env::var("SESSIONBANK_DISK_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let store = DiskStore::open(PathBuf::from(dir)).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..CHILD_TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = start + t;
            loop {
                let id = SessionId::generate().unwrap();
                store.set(&id, &record(n)).await.unwrap();
                // Line-buffered: the line leaves the process as soon as it is printed.
                println!("ACK {} {n}", id.as_str());
                n += CHILD_TASKS;
            }
        }));
    }
    // The writers run until the parent kills this process; one stopping is a failure.
    let (stopped, _, _) = futures::future::select_all(tasks).await;
    panic!("a child writer task stopped: {stopped:?}");
}

fn spawn_child(dir: &Path, start: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env("SESSIONBANK_DISK_CRASH_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sessions");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acknowledged: Vec<(SessionId, u64)> = Vec::new();
    let mut rng = rand::rng();
    let mut next_start = 0u64;
    for round in 0..5 {
        let mut child = spawn_child(&dir, next_start);
        let stdout = child.stdout.take().unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    // Only whole lines count: a line cut by the kill was not acknowledged.
                    let Some(text) = line.strip_suffix('\n') else {
                        break;
                    };
                    let mut parts = text.split(' ');
                    if parts.next() != Some("ACK") {
                        continue;
                    }
                    let id = SessionId::parse(parts.next().unwrap()).unwrap();
                    let n: u64 = parts.next().unwrap().parse().unwrap();
                    acks.lock().unwrap().push((id, n));
                }
            })
        };
        // Wait for the first acknowledgement, then kill at a random moment after it.
        let waiting = Instant::now();
        while acks.lock().unwrap().is_empty() {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "the child never wrote"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the child writer exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // While the child holds the store, another process (this one) is refused clearly.
        let err = runtime
            .block_on(DiskStore::open(&dir))
            .expect_err("a second process must not open a store that is in use");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("already open"), "{err}");

        let delay = Duration::from_millis(rng.random_range(0..400));
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let round_acks = std::mem::take(&mut *acks.lock().unwrap());
        next_start = round_acks
            .iter()
            .map(|(_, n)| n + 1)
            .max()
            .unwrap_or(next_start)
            + 1000;
        println!(
            "round {round}: killed after {delay:?}, {} acknowledged writes",
            round_acks.len()
        );
        acknowledged.extend(round_acks);

        // The lock died with the child: reopening works at once, and everything acknowledged
        // in every round so far is there, exactly.
        runtime.block_on(check_store(&dir, &acknowledged));
    }
    assert!(acknowledged.len() >= 5);
}

async fn check_store(dir: &Path, acknowledged: &[(SessionId, u64)]) {
    let store = DiskStore::open(dir).await.expect("reopen after SIGKILL");
    for (id, n) in acknowledged {
        let got = store.get(id).await.unwrap();
        assert_eq!(
            got.as_ref(),
            Some(&record(*n)),
            "acknowledged session {n} lost or changed"
        );
    }
    assert!(store.length().await.unwrap() >= acknowledged.len() as u64);
    // Still works: write, read, cleanup.
    let id = SessionId::generate().unwrap();
    let now = Timestamp::now();
    let fresh = Record::new(now).expiring_at(now + Duration::from_secs(60));
    store.set(&id, &fresh).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(fresh));
    let expired = SessionId::generate().unwrap();
    store
        .set(
            &expired,
            &Record::new(now).expiring_at(now - Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert_eq!(store.cleanup().await.unwrap(), 1);
    store.destroy(&id).await.unwrap();
}
