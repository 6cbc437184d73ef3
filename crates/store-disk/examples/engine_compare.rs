//! Throwaway engine comparison behind `docs/decisions/0001-disk-engine.md`: durable
//! single-session writes + reads at 64 concurrent threads, redb vs SQLite (WAL,
//! synchronous=FULL). First each write is its own durable transaction; then both engines get
//! the same group commit as `DiskStore` (one writer thread commits everything queued at once,
//! then answers each writer).
//!
//! Run: `cargo run --release -p sessionbank-store-disk --example engine_compare [seconds]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, TableDefinition};

const TASKS: usize = 64;
const SESSIONS: &TableDefinition<&str, &[u8]> = &TableDefinition::new("sessions");

fn payload() -> Vec<u8> {
    let mut p = br#"{"user":"ada","cart":["#.to_vec();
    while p.len() < 490 {
        p.extend_from_slice(br#""item-0042","#);
    }
    p.extend_from_slice(br#""end"]}"#);
    p
}

fn run(name: &str, secs: u64, work: impl Fn(usize, u64) + Send + Sync + 'static) -> f64 {
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..TASKS)
        .map(|t| {
            let (work, stop, pairs) = (work.clone(), stop.clone(), pairs.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    work(t, i);
                    i += 1;
                    pairs.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let rate = pairs.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("{name:<28} {rate:>10.0} write+read pairs/s");
    rate
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::Builder::new()
        .prefix("engine-compare-")
        .tempdir_in(std::env::current_dir().unwrap())
        .unwrap();
    let value = Arc::new(payload());
    println!(
        "payload {} bytes, {TASKS} threads, {secs}s each, dir {}",
        value.len(),
        dir.path().display()
    );

    // redb: one durable (Immediate) write transaction per save, one read transaction per load.
    let db = Arc::new(redb::Database::create(dir.path().join("bench.redb")).unwrap());
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(*SESSIONS).unwrap();
        tx.commit().unwrap();
    }
    let (db2, v) = (db.clone(), value.clone());
    let redb_rate = run("redb (commit per write)", secs, move |t, i| {
        let id = format!("session-{t:03}-{}", i % 1000);
        let tx = db2.begin_write().unwrap();
        {
            let mut table = tx.open_table(*SESSIONS).unwrap();
            table.insert(id.as_str(), v.as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let rx = db2.begin_read().unwrap();
        let table = rx.open_table(*SESSIONS).unwrap();
        assert_eq!(
            table.get(id.as_str()).unwrap().unwrap().value().len(),
            v.len()
        );
    });
    drop(db);

    // SQLite: WAL, synchronous=FULL, one connection per thread, autocommit per statement.
    let path = dir.path().join("bench.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE sessions (id TEXT PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
    }
    let conns: Vec<_> = (0..TASKS)
        .map(|_| {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.pragma_update(None, "synchronous", "FULL").unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            std::sync::Mutex::new(c)
        })
        .collect();
    let (conns, v) = (Arc::new(conns), value.clone());
    let sqlite_rate = run("sqlite WAL sync=FULL", secs, move |t, i| {
        let id = format!("session-{t:03}-{}", i % 1000);
        let c = conns[t].lock().unwrap();
        c.prepare_cached("INSERT OR REPLACE INTO sessions (id, data) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![id, v.as_slice()])
            .unwrap();
        let len: usize = c
            .prepare_cached("SELECT length(data) FROM sessions WHERE id = ?1")
            .unwrap()
            .query_row([&id], |r| r.get(0))
            .unwrap();
        assert_eq!(len, v.len());
    });
    println!(
        "ratio redb / sqlite (commit per write) = {:.2}",
        redb_rate / sqlite_rate
    );

    // Group commit for both: the writer thread drains the queue into one transaction.
    type Job = (String, mpsc::Sender<()>);
    fn grouped(
        name: &str,
        secs: u64,
        commit: impl FnMut(&[Job]) + Send + 'static,
        read: impl Fn(usize, &str) + Send + Sync + 'static,
    ) -> f64 {
        let (tx, rx) = mpsc::channel::<Job>();
        let mut commit = commit;
        let writer = std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                commit(&batch);
                for (_, done) in batch {
                    let _ = done.send(());
                }
            }
        });
        let tx = std::sync::Mutex::new(tx);
        let rate = run(name, secs, move |t, i| {
            let id = format!("session-{t:03}-{}", i % 1000);
            let (done_tx, done_rx) = mpsc::channel();
            tx.lock().unwrap().send((id.clone(), done_tx)).unwrap();
            done_rx.recv().unwrap();
            read(t, &id);
        });
        writer.join().unwrap();
        rate
    }

    let db = Arc::new(redb::Database::create(dir.path().join("grouped.redb")).unwrap());
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(*SESSIONS).unwrap();
        tx.commit().unwrap();
    }
    let (dbw, dbr, v, v2) = (db.clone(), db.clone(), value.clone(), value.clone());
    let redb_grouped = grouped(
        "redb (group commit)",
        secs,
        move |batch| {
            let tx = dbw.begin_write().unwrap();
            {
                let mut table = tx.open_table(*SESSIONS).unwrap();
                for (id, _) in batch {
                    table.insert(id.as_str(), v.as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        },
        move |_, id| {
            let rx = dbr.begin_read().unwrap();
            let table = rx.open_table(*SESSIONS).unwrap();
            assert_eq!(table.get(id).unwrap().unwrap().value().len(), v2.len());
        },
    );
    drop(db);

    let writer_conn = rusqlite::Connection::open(&path).unwrap();
    writer_conn
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();
    let v = value.clone();
    let sqlite_grouped = grouped(
        "sqlite (group commit)",
        secs,
        move |batch| {
            let tx = writer_conn.unchecked_transaction().unwrap();
            {
                let mut stmt = tx
                    .prepare_cached("INSERT OR REPLACE INTO sessions (id, data) VALUES (?1, ?2)")
                    .unwrap();
                for (id, _) in batch {
                    stmt.execute(rusqlite::params![id, v.as_slice()]).unwrap();
                }
            }
            tx.commit().unwrap();
        },
        {
            let (conns, v) = (conns_for_reads(&path), value.clone());
            move |t, id| {
                let c = conns[t].lock().unwrap();
                let len: usize = c
                    .prepare_cached("SELECT length(data) FROM sessions WHERE id = ?1")
                    .unwrap()
                    .query_row([id], |r| r.get(0))
                    .unwrap();
                assert_eq!(len, v.len());
            }
        },
    );
    println!(
        "ratio redb / sqlite (group commit) = {:.2}",
        redb_grouped / sqlite_grouped
    );
}

fn conns_for_reads(path: &std::path::Path) -> Vec<std::sync::Mutex<rusqlite::Connection>> {
    (0..TASKS)
        .map(|_| {
            let c = rusqlite::Connection::open(path).unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            std::sync::Mutex::new(c)
        })
        .collect()
}
