//! save+load pairs at 64 concurrent tasks against one real memcached (started here): through
//! `MemcachedStore` (`set` then `get`, pool of 16 connections) and through a raw text-protocol
//! baseline doing `set` + `get` of the same bytes (the encoded record) on 16 connections, in the
//! same run; and that baseline again with the record encoded before `set` and decoded after
//! `get` (serde_json), the work any client that hands out a `Record` must do.
//!
//! The server is pinned to CPU 0 and the client to CPU 1 (`taskset`).
//!
//! Run: `cargo bench -p sessionbank-store-memcached --bench memcached [-- seconds]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessionbank_core::{Record, SessionId, Store, Timestamp};
use sessionbank_store_memcached::MemcachedStore;
use sessionbank_testkit::servers::memcached::MemcachedServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const TASKS: usize = 64;
const CONNECTIONS: usize = 16;

fn record() -> Record {
    let now = Timestamp::now();
    let cart: Vec<String> = (0..30).map(|i| format!("item-{i:04}")).collect();
    Record::new(now)
        .with_data(
            json!({"user": "ada", "role": "admin", "csrf": "x".repeat(43), "cart": cart})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        )
        .expiring_at(now + Duration::from_secs(3600))
}

/// This process's CPU time (user + system) so far, from `/proc/self/stat` (Linux; zero
/// elsewhere). memcached runs in its own process, so this is the client side alone.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the command name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Pairs per second, and client CPU microseconds per pair.
async fn measure<F, Fut>(secs: u64, pair: F) -> (f64, f64)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let pair = Arc::new(pair);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu_before = cpu_time();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (pair, stop, count) = (pair.clone(), stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    pair(t, i).await;
                    i += 1;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let pairs = count.load(Ordering::Relaxed) as f64;
    let cpu = (cpu_time() - cpu_before).as_secs_f64();
    (
        pairs / started.elapsed().as_secs_f64(),
        cpu * 1e6 / pairs.max(1.0),
    )
}

/// The baseline: a bare text-protocol connection.
struct Raw {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl Raw {
    async fn open(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: BufReader::with_capacity(64 * 1024, stream),
            out: Vec::new(),
            line: Vec::new(),
        }
    }

    async fn set(&mut self, key: &[u8], value: &[u8]) {
        self.out.clear();
        self.out.extend_from_slice(b"set ");
        self.out.extend_from_slice(key);
        self.out
            .extend_from_slice(format!(" 1 3600 {}\r\n", value.len()).as_bytes());
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&self.out).await.unwrap();
        self.line.clear();
        self.stream.read_until(b'\n', &mut self.line).await.unwrap();
        assert_eq!(self.line, b"STORED\r\n");
    }

    async fn get(&mut self, key: &[u8]) -> Vec<u8> {
        self.out.clear();
        self.out.extend_from_slice(b"get ");
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&self.out).await.unwrap();
        self.line.clear();
        self.stream.read_until(b'\n', &mut self.line).await.unwrap();
        let header = std::str::from_utf8(&self.line).unwrap();
        let len: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut value = vec![0; len + 2];
        self.stream.read_exact(&mut value).await.unwrap();
        value.truncate(len);
        self.line.clear();
        self.stream.read_until(b'\n', &mut self.line).await.unwrap();
        assert_eq!(self.line, b"END\r\n");
        value
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let server = MemcachedServer::start();
    let pinned = sessionbank_testkit::servers::pin_apart(&[server.process()]);
    println!("server on CPU 0, client on CPU 1: {pinned}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let record = Arc::new(record());
        let payload = Arc::new(serde_json::to_vec(&*record).unwrap());
        println!(
            "payload {} bytes of JSON, {TASKS} tasks, {CONNECTIONS} connections, {secs}s per measurement",
            payload.len()
        );
        let ids: Arc<Vec<SessionId>> = Arc::new(
            (0..TASKS * 64)
                .map(|_| SessionId::generate().unwrap())
                .collect(),
        );

        let store = MemcachedStore::builder([server.addr()])
            .pool_size(CONNECTIONS)
            .connect()
            .await
            .unwrap();
        let prefix = store.prefix().to_owned();
        let mut conns = Vec::new();
        for _ in 0..CONNECTIONS {
            conns.push(Mutex::new(Raw::open(&server.addr()).await));
        }
        let conns = Arc::new(conns);
        let keys: Arc<Vec<Vec<u8>>> = Arc::new(
            ids.iter()
                .map(|id| format!("{prefix}{}", id.as_str()).into_bytes())
                .collect(),
        );
        // Alternate the two, three times, and keep each one's best round: other work on the machine
        // then disadvantages neither.
        let (mut best_store, mut best_raw, mut best_json) = (0f64, 0f64, 0f64);
        for round in 1..=3 {
            let (s, r, i) = (store.clone(), record.clone(), ids.clone());
            let (store_rate, store_cpu) = measure(secs, move |t, n| {
                let (s, r, i) = (s.clone(), r.clone(), i.clone());
                async move {
                    let id = &i[t * 64 + (n as usize % 64)];
                    s.set(id, &r).await.unwrap();
                    assert!(s.get(id).await.unwrap().is_some());
                }
            })
            .await;
            println!(
                "round {round}: MemcachedStore set+get:    {store_rate:>9.0} pairs/s, {store_cpu:>5.1} µs client CPU per pair"
            );
            let (c, p, k) = (conns.clone(), payload.clone(), keys.clone());
            let (raw_rate, raw_cpu) = measure(secs, move |t, n| {
                let (c, p, k) = (c.clone(), p.clone(), k.clone());
                async move {
                    let key = &k[t * 64 + (n as usize % 64)];
                    c[t % CONNECTIONS].lock().await.set(key, &p).await;
                    let back = c[t % CONNECTIONS].lock().await.get(key).await;
                    assert_eq!(back.len(), p.len());
                }
            })
            .await;
            println!(
                "round {round}: raw text protocol set+get: {raw_rate:>9.0} pairs/s, {raw_cpu:>5.1} µs client CPU per pair"
            );
            // The raw client again, encoding the record before `set` and decoding what `get`
            // returns, as anything that hands out a `Record` must.
            let (c, r, k) = (conns.clone(), record.clone(), keys.clone());
            let (json_rate, json_cpu) = measure(secs, move |t, n| {
                let (c, r, k) = (c.clone(), r.clone(), k.clone());
                async move {
                    let key = &k[t * 64 + (n as usize % 64)];
                    let bytes = serde_json::to_vec(&*r).unwrap();
                    c[t % CONNECTIONS].lock().await.set(key, &bytes).await;
                    let back = c[t % CONNECTIONS].lock().await.get(key).await;
                    let decoded: Record = serde_json::from_slice(&back).unwrap();
                    assert_eq!(decoded.created_at, r.created_at);
                }
            })
            .await;
            println!(
                "round {round}: raw + JSON encode/decode:  {json_rate:>9.0} pairs/s, {json_cpu:>5.1} µs client CPU per pair"
            );
            best_store = best_store.max(store_rate);
            best_raw = best_raw.max(raw_rate);
            best_json = best_json.max(json_rate);
        }
        println!(
            "best: store {best_store:.0} pairs/s, raw {best_raw:.0} pairs/s, raw + JSON \
             {best_json:.0} pairs/s; ratio store/raw {:.2}, store/(raw + JSON) {:.2}",
            best_store / best_raw,
            best_store / best_json
        );
    });
    drop(server);
}
