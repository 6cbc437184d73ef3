//! save+load pairs through `MemcachedStore` and through a raw text-protocol client doing the
//! equivalent (the baseline), in the same run, against one memcached started for the run, with
//! the same load driver (`sessionbank_load`) and the same ~500-byte payload as the Redis
//! bench, at 64 concurrent tasks and at 1.
//!
//! The baseline is a bare hand-written client of memcached's text protocol (there is no
//! official Rust driver): 16 connections, each behind a mutex, no timeout, no pool. As in the
//! Redis bench, save is `set key 0 3600 LEN` of JSON text made once before the run (it never
//! serializes) and load is `get key` and reading the payload out of the JSON. Two more raw
//! variants are measured in the same rounds: one that makes its JSON on every save, as an
//! application whose session changes must, and one that never parses what it reads back (a
//! client that hands out bytes, not a session: the strictest figure). The store (pool of 16)
//! does `set` (the record encoded on every call, size-checked, one `set` under a timeout) and
//! `get` (one `gets`, decoded into a record, deadline checked).
//!
//! ```text
//! cargo bench -p sessionbank-store-memcached --bench memcached
//! ```
//!
//! The server is pinned to CPU 0 and the client to CPU 1 (`taskset`); each concurrency runs
//! several rounds in alternating order and reports median ratios.
//!
//! Each round also prints the client's CPU time per pair (this process; memcached runs apart),
//! which moves less than the rates when something else takes CPU.
//!
//! Knobs from the environment: `SESSIONBANK_BENCH_SECONDS` (per run, default 2),
//! `SESSIONBANK_BENCH_ROUNDS` (default 5), `SESSIONBANK_BENCH_CONCURRENCY` (default 64; a run
//! at 1 always follows), `SESSIONBANK_BENCH_ONLY=store|raw` (one side only, for a profiler).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sessionbank_core::{Action, Error, ErrorKind, Result, SessionId, StoreHandle};
use sessionbank_load::{LoadConfig, LoadTarget, VALUE_KEY, knob, median, run_load};
use sessionbank_store_memcached::MemcachedStore;
use sessionbank_testkit::servers::ProcessCpu;
use sessionbank_testkit::servers::memcached::MemcachedServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const CONNECTIONS: usize = 16;

fn fail(what: &str) -> Error {
    Error::new(
        ErrorKind::Backend,
        Action::Session,
        format!("raw memcached: {what}"),
    )
}

/// One bare text-protocol connection.
struct RawConnection {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl RawConnection {
    async fn open(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::with_capacity(64 * 1024, stream),
            out: Vec::with_capacity(1024),
            line: Vec::with_capacity(256),
        }
    }

    async fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.out.clear();
        self.out.extend_from_slice(b"set ");
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b" 0 3600 ");
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value.len()).as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self.stream
            .get_mut()
            .write_all(&self.out)
            .await
            .map_err(|_| fail("write"))?;
        self.line.clear();
        self.stream
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|_| fail("read"))?;
        if self.line == b"STORED\r\n" {
            Ok(())
        } else {
            Err(fail("not stored"))
        }
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.out.clear();
        self.out.extend_from_slice(b"get ");
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\r\n");
        self.stream
            .get_mut()
            .write_all(&self.out)
            .await
            .map_err(|_| fail("write"))?;
        self.line.clear();
        self.stream
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|_| fail("read"))?;
        if self.line == b"END\r\n" {
            return Ok(None);
        }
        let len: usize = std::str::from_utf8(&self.line)
            .ok()
            .and_then(|header| header.trim_end().rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| fail("bad VALUE line"))?;
        let mut value = vec![0; len + 2];
        self.stream
            .read_exact(&mut value)
            .await
            .map_err(|_| fail("read"))?;
        value.truncate(len);
        self.line.clear();
        self.stream
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|_| fail("read"))?;
        if self.line != b"END\r\n" {
            return Err(fail("no END"));
        }
        Ok(Some(value))
    }
}

/// What the raw client does with JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Json {
    /// Text made once before the run; parsed on load (the baseline).
    ParseOnLoad,
    /// Made on every save and parsed on load.
    MadePerSave,
    /// Made once, never parsed: load returns the byte count.
    Never,
}

/// The raw client: `CONNECTIONS` connections, each behind a mutex, taken round-robin.
struct RawMemcached {
    connections: Vec<Mutex<RawConnection>>,
    next: AtomicUsize,
    json: Json,
}

impl RawMemcached {
    async fn open(addr: &str, json: Json) -> Self {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            connections.push(Mutex::new(RawConnection::open(addr).await));
        }
        Self {
            connections,
            next: AtomicUsize::new(0),
            json,
        }
    }

    fn connection(&self) -> &Mutex<RawConnection> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        &self.connections[n % self.connections.len()]
    }
}

fn raw_key(id: &SessionId) -> Vec<u8> {
    let mut key = b"raw:".to_vec();
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

impl LoadTarget for RawMemcached {
    type Value = (serde_json::Value, Vec<u8>);

    fn name(&self) -> String {
        match self.json {
            Json::ParseOnLoad => "raw memcached".to_owned(),
            Json::MadePerSave => "raw memcached, JSON made per save".to_owned(),
            Json::Never => "raw memcached, never parsed".to_owned(),
        }
    }

    fn prepare(&self, payload: &str) -> Self::Value {
        let value = serde_json::json!({ VALUE_KEY: payload });
        let text = serde_json::to_vec(&value).unwrap();
        (value, text)
    }

    async fn save(&self, id: &SessionId, value: &Self::Value) -> Result<()> {
        let made;
        let text = if self.json == Json::MadePerSave {
            made = serde_json::to_vec(&value.0).map_err(|_| fail("encode"))?;
            made.as_slice()
        } else {
            value.1.as_slice()
        };
        self.connection().lock().await.set(&raw_key(id), text).await
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let Some(bytes) = self.connection().lock().await.get(&raw_key(id)).await? else {
            return Ok(None);
        };
        if self.json == Json::Never {
            // The payload's length, as the others report: the JSON text minus `{"payload":""}`.
            return Ok(Some(bytes.len().saturating_sub(VALUE_KEY.len() + 7)));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| fail("decode"))?;
        Ok(value[VALUE_KEY].as_str().map(str::len))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        let mut conn = self.connection().lock().await;
        let mut key = b"delete ".to_vec();
        key.extend_from_slice(&raw_key(id));
        key.extend_from_slice(b"\r\n");
        conn.stream
            .get_mut()
            .write_all(&key)
            .await
            .map_err(|_| fail("write"))?;
        conn.line.clear();
        let RawConnection { stream, line, .. } = &mut *conn;
        stream
            .read_until(b'\n', line)
            .await
            .map_err(|_| fail("read"))?;
        Ok(())
    }
}

/// Runs one load and returns its report and the client CPU microseconds per pair.
async fn measured<T: LoadTarget>(
    target: Arc<T>,
    config: &LoadConfig,
) -> (sessionbank_load::LoadReport, f64) {
    let before = ProcessCpu::of(std::process::id()).own;
    let report = run_load(target, config).await.unwrap();
    let cpu = (ProcessCpu::of(std::process::id()).own - before) * 1e6 / (report.ops.max(1) as f64);
    (report, cpu)
}

fn main() {
    let secs = knob("SESSIONBANK_BENCH_SECONDS", 2_u64);
    let rounds = knob("SESSIONBANK_BENCH_ROUNDS", 5_u64);
    let concurrency = usize::try_from(knob("SESSIONBANK_BENCH_CONCURRENCY", 64_u64)).unwrap();
    let only = std::env::var("SESSIONBANK_BENCH_ONLY").ok();
    let server = MemcachedServer::start();
    let pinned = sessionbank_testkit::servers::pin_apart(&[server.process()]);
    println!("server on CPU 0, client on CPU 1: {pinned}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = MemcachedStore::builder([server.addr()])
            .pool_size(CONNECTIONS)
            .open()
            .await
            .unwrap();
        let store = Arc::new(StoreHandle::new(store));
        let raw = Arc::new(RawMemcached::open(&server.addr(), Json::ParseOnLoad).await);
        let serializing = Arc::new(RawMemcached::open(&server.addr(), Json::MadePerSave).await);
        let unparsed = Arc::new(RawMemcached::open(&server.addr(), Json::Never).await);
        if let Some(only) = only {
            let config = LoadConfig {
                concurrency,
                duration: Duration::from_secs(secs * rounds),
                ids_per_task: 64,
                ..LoadConfig::default()
            };
            let (report, cpu) = if only == "raw" {
                measured(raw.clone(), &config).await
            } else {
                measured(store.clone(), &config).await
            };
            println!(
                "{only} alone: {:.0} pairs/s, {cpu:.1} us client CPU per pair",
                report.ops_per_sec()
            );
            return;
        }
        for tasks in [concurrency, 1] {
            let config = LoadConfig {
                concurrency: tasks,
                duration: Duration::from_secs(secs),
                ids_per_task: 64,
                ..LoadConfig::default()
            };
            println!(
                "{tasks} tasks, {}-byte payload, {rounds} rounds of {secs}s, save+load pairs/s",
                config.value_bytes
            );
            let (mut to_raw, mut to_serializing, mut to_unparsed) =
                (Vec::new(), Vec::new(), Vec::new());
            // Rounds alternate the order, so neither side always runs on a warmer server.
            for round in 1..=rounds {
                let (store_report, store_cpu);
                let (raw_report, raw_cpu);
                if round % 2 == 1 {
                    (store_report, store_cpu) = measured(store.clone(), &config).await;
                    (raw_report, raw_cpu) = measured(raw.clone(), &config).await;
                } else {
                    (raw_report, raw_cpu) = measured(raw.clone(), &config).await;
                    (store_report, store_cpu) = measured(store.clone(), &config).await;
                }
                let (serializing_report, serializing_cpu) =
                    measured(serializing.clone(), &config).await;
                let (unparsed_report, unparsed_cpu) = measured(unparsed.clone(), &config).await;
                for report in [
                    &store_report,
                    &raw_report,
                    &serializing_report,
                    &unparsed_report,
                ] {
                    assert_eq!(report.errors, 0, "{} had errors", report.target);
                }
                let (s, r) = (store_report.ops_per_sec(), raw_report.ops_per_sec());
                let (j, u) = (
                    serializing_report.ops_per_sec(),
                    unparsed_report.ops_per_sec(),
                );
                to_raw.push(s / r);
                to_serializing.push(s / j);
                to_unparsed.push(s / u);
                println!(
                    "round {round}: MemcachedStore {s:>8.0} (p50 {:>5.0} us, p99 {:>5.0} us)   \
                     raw {r:>8.0} (p50 {:>5.0} us, p99 {:>5.0} us)   \
                     raw, JSON per save {j:>8.0}   raw, never parsed {u:>8.0}   store/raw {:.2}",
                    store_report.latency_us(0.5),
                    store_report.latency_us(0.99),
                    raw_report.latency_us(0.5),
                    raw_report.latency_us(0.99),
                    s / r
                );
                println!(
                    "  client CPU per pair: store {store_cpu:.1} us, raw {raw_cpu:.1} us, raw with \
                     JSON per save {serializing_cpu:.1} us, raw never parsing {unparsed_cpu:.1} us"
                );
            }
            println!(
                "{tasks} tasks: median store / raw memcached {:.2}, store / raw with JSON made \
                 per save {:.2}, store / raw never parsing {:.2}",
                median(&to_raw),
                median(&to_serializing),
                median(&to_unparsed)
            );
        }
    });
    drop(server);
}
