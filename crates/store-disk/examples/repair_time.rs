//! Throwaway measurement behind the quick-repair note in `docs/decisions/0001-disk-engine.md`:
//! how long redb takes to reopen a file after a crash (the process aborts mid-life, nothing is
//! closed), with and without `set_quick_repair(true)`, and what quick repair costs per commit.
//!
//! Run: `cargo run --release -p sessionbank-store-disk --example repair_time [sessions]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Instant;

use redb::TableDefinition;

const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

fn commit_batches(db: &redb::Database, quick: bool, from: usize, count: usize, per_tx: usize) {
    let value = vec![b'x'; 550];
    let mut n = from;
    while n < from + count {
        let mut tx = db.begin_write().unwrap();
        tx.set_quick_repair(quick);
        {
            let mut table = tx.open_table(SESSIONS).unwrap();
            for _ in 0..per_tx.min(from + count - n) {
                table
                    .insert(format!("session-{n:012}").as_str(), value.as_slice())
                    .unwrap();
                n += 1;
            }
        }
        tx.commit().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        // Fill, then die without closing anything.
        let (path, n, quick) = (&args[2], args[3].parse().unwrap(), args[4] == "true");
        let db = redb::Database::create(path).unwrap();
        commit_batches(&db, quick, 0, n, 5000);
        commit_batches(&db, quick, n, 64, 64); // one last group commit, as in normal work
        std::process::abort();
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::Builder::new()
        .prefix("repair-time-")
        .tempdir_in(std::env::current_dir().unwrap())
        .unwrap();
    for quick in [false, true] {
        let path = dir.path().join(format!("quick-{quick}.redb"));
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "child",
                path.to_str().unwrap(),
                &n.to_string(),
                &quick.to_string(),
            ])
            .status()
            .unwrap();
        assert!(!status.success(), "the child aborts");
        let size = std::fs::metadata(&path).unwrap().len();
        let started = Instant::now();
        let db = redb::Database::create(&path).unwrap();
        let reopen = started.elapsed();
        // Cost per group commit of 64 sessions, with this setting.
        let started = Instant::now();
        commit_batches(&db, quick, n + 64, 64 * 100, 64);
        let per_commit = started.elapsed() / 100;
        println!(
            "quick_repair={quick:<5} {n} sessions, file {:.1} MiB: reopen after crash {reopen:?}, \
             then {per_commit:?} per 64-session commit",
            size as f64 / (1024.0 * 1024.0)
        );
    }
}
