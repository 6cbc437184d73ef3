//! The wrk benchmark: a visit counter through [`SessionLayer`] on Redis, against the same counter
//! written by hand (redis-rs `GET` + `SET` keyed by the cookie), both as axum apps.
//!
//! It starts a Redis server (the testkit harness), serves both apps on free ports, gets one valid
//! session cookie, then runs `wrk -t2 -c64 -d5s` with that cookie against each app, alternating,
//! three rounds, and prints the requests per second of each and their ratio (target: >= 0.9).
//! Needs `redis-server` and `wrk` (`apt-get install -y redis-server wrk`). Run it in release:
//!
//! ```text
//! cargo run --release -p sessionbank-tower --example wrk_redis
//! ```
//!
//! `SESSIONBANK_WRK_ONLY=ours` (or `raw`) loads one app alone, once, for a profiler;
//! `SESSIONBANK_WRK_STORE_OPTIONS=…` adds URL options to the store's (`a=b&c=d`). Each round
//! also prints the CPU time per request of Redis, the app and wrk (from `/proc`).
//!
//! Where the time goes (2-core machine, wrk, both apps and Redis sharing it; CPU time of each
//! process from `/proc`, per request, as each round prints it). 2026-11-22, after writes
//! stopped moving the expiry (and re-sending the cookie) on every request: sessionbank 52–66 µs
//! (Redis 13–16, app 27–36, wrk 11–14), raw 35–36 µs (Redis 5, app 20, wrk 10–11); ratio of
//! rates 0.58–0.83 over nine runs, the machine's noise included. The Redis side is the update
//! script (`EVALSHA` 9.5–12.6 µs a call under this load, against 0.2–0.3 µs for a plain `GET`
//! or `SET`). With `SESSIONBANK_WRK_STORE_OPTIONS=layout=hash` Redis spends 7–11 µs (native
//! `MULTI … EXEC`, no Lua) but the app 31–40 µs parsing six replies instead of two, so the total
//! and the ratio (0.64–0.72) do not improve here (docs/decisions/0004-redis-hash-layout.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure ends it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::HeaderMap;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use sessionbank_cookie::{CookieConfig, KeyRing};
use sessionbank_core::StoreHandle;
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::ProcessCpu;
use sessionbank_testkit::servers::redis::RedisServer;
use sessionbank_testkit::servers::require_program;
use sessionbank_tower::{Session, SessionError, SessionLayer};

/// wrk's arguments for every run.
const WRK_ARGS: [&str; 3] = ["-t2", "-c64", "-d5s"];
/// Rounds of (sessionbank, raw), alternating.
const ROUNDS: usize = 3;

/// App (a): the counter in the session.
async fn count(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(n.to_string())
}

/// App (b): the counter by hand, `GET` then `SET` of `raw:<cookie>`.
async fn raw_count(State(conn): State<MultiplexedConnection>, headers: HeaderMap) -> String {
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = format!("raw:{cookie}");
    let mut conn = conn;
    let n: u64 = conn
        .get::<_, Option<u64>>(&key)
        .await
        .unwrap_or_default()
        .unwrap_or(0)
        + 1;
    let _: Result<(), _> = conn.set(&key, n).await;
    n.to_string()
}

/// Serves `router` on a free 127.0.0.1 port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One `GET /` without a cookie; returns the `name=value` of its `Set-Cookie`.
fn first_cookie(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let line = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in:\n{response}"));
    let value = line.split_once(':').unwrap().1.trim();
    value.split(';').next().unwrap().to_owned()
}

/// The Redis commands run since the last call, per request (`requests`), as `name×n` pairs.
fn commands_per_request(server: &RedisServer, requests: f64) -> String {
    let stats = server.cli(&["info", "commandstats"]);
    server.cli(&["config", "resetstat"]);
    let mut shown = Vec::new();
    for line in stats.lines() {
        if let Some((name, rest)) = line
            .trim()
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(":calls="))
            && let Some(calls) = rest.split(',').next().and_then(|c| c.parse::<f64>().ok())
            && name != "info"
            && name != "config|resetstat"
        {
            let usec = rest
                .split(',')
                .find_map(|f| f.strip_prefix("usec_per_call="))
                .unwrap_or("?");
            shown.push(format!("{name}×{:.2} ({usec} µs each)", calls / requests));
        }
    }
    shown.join(" ")
}

/// CPU time per request of Redis, the app (this process) and wrk over one run, in µs.
#[derive(Default, Clone, Copy)]
struct CpuPerRequest {
    redis: f64,
    app: f64,
    wrk: f64,
}

impl CpuPerRequest {
    fn total(self) -> f64 {
        self.redis + self.app + self.wrk
    }

    fn scaled(self, by: f64) -> Self {
        Self {
            redis: self.redis * by,
            app: self.app * by,
            wrk: self.wrk * by,
        }
    }

    fn add(&mut self, other: Self) {
        self.redis += other.redis;
        self.app += other.app;
        self.wrk += other.wrk;
    }
}

impl std::fmt::Display for CpuPerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} µs (redis {:.1}, app {:.1}, wrk {:.1})",
            self.total(),
            self.redis,
            self.app,
            self.wrk
        )
    }
}

/// Runs wrk against `addr` and measures the CPU each process spent on it.
fn measured_wrk(addr: SocketAddr, cookie: &str, redis_pids: &[i32]) -> (f64, f64, CpuPerRequest) {
    let redis_cpu = || -> f64 {
        redis_pids
            .iter()
            .filter_map(|p| u32::try_from(*p).ok())
            .map(|p| ProcessCpu::of(p).own)
            .sum()
    };
    let me = std::process::id();
    let (redis_before, before) = (redis_cpu(), ProcessCpu::of(me));
    let (rate, requests) = wrk(addr, cookie);
    let (redis_after, after) = (redis_cpu(), ProcessCpu::of(me));
    let per = |seconds: f64| seconds * 1e6 / requests;
    let cpu = CpuPerRequest {
        redis: per(redis_after - redis_before),
        app: per(after.own - before.own),
        wrk: per(after.children - before.children),
    };
    (rate, requests, cpu)
}

/// Runs wrk against `addr` with `cookie`; returns its Requests/sec and how many requests it sent.
fn wrk(addr: SocketAddr, cookie: &str) -> (f64, f64) {
    let program = require_program("wrk", "wrk");
    let output = Command::new(program)
        .args(WRK_ARGS)
        .args(["-H", &format!("Cookie: {cookie}")])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed:\n{text}");
    assert!(
        !text.contains("Non-2xx"),
        "the app answered errors under load:\n{text}"
    );
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    (rate, requests)
}

fn main() -> ExitCode {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ours, raw) = runtime.block_on(async {
        // `SESSIONBANK_WRK_STORE_OPTIONS=a=b&c=d`: more URL options for the store.
        let extra = std::env::var("SESSIONBANK_WRK_STORE_OPTIONS")
            .map(|o| format!("&{o}"))
            .unwrap_or_default();
        let store = RedisStore::connect(&format!("{}?prefix=bench:{extra}", server.url()))
            .await
            .unwrap();
        let layer = SessionLayer::new(StoreHandle::new(store), KeyRing::generate().unwrap())
            .with_cookie(CookieConfig::new().secure(false));
        let ours = serve(Router::new().route("/", get(count)).layer(layer)).await;

        let client = redis::Client::open(server.url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let raw = serve(Router::new().route("/", get(raw_count)).with_state(conn)).await;
        (ours, raw)
    });

    let cookie = first_cookie(ours);
    println!("redis {}, cookie {cookie}", server.url());
    println!(
        "wrk {} against each, alternating, {ROUNDS} rounds",
        WRK_ARGS.join(" ")
    );
    // `SESSIONBANK_WRK_ONLY=ours|raw`: load one app alone, once (for a profiler).
    if let Ok(only) = std::env::var("SESSIONBANK_WRK_ONLY") {
        let (rate, _) = wrk(if only == "raw" { raw } else { ours }, &cookie);
        println!("{only} alone: {rate:.0} req/s");
        drop(runtime);
        drop(server);
        return ExitCode::SUCCESS;
    }
    let (mut ours_total, mut raw_total) = (0.0, 0.0);
    let (mut ours_cpu, mut raw_cpu) = (CpuPerRequest::default(), CpuPerRequest::default());
    let redis_pids = server.guard().pids();
    server.cli(&["config", "resetstat"]);
    for round in 1..=ROUNDS {
        let (a, requests, a_cpu) = measured_wrk(ours, &cookie, &redis_pids);
        let ours_commands = commands_per_request(&server, requests);
        let (b, requests, b_cpu) = measured_wrk(raw, &cookie, &redis_pids);
        let raw_commands = commands_per_request(&server, requests);
        println!(
            "round {round}: sessionbank {a:>9.0} req/s   raw redis {b:>9.0} req/s   ratio {:.2}",
            a / b
        );
        println!("  CPU per request: sessionbank {a_cpu}; raw {b_cpu}");
        if round == 1 {
            println!(
                "  redis commands per request (those inside scripts too): sessionbank {ours_commands}; raw {raw_commands}"
            );
        }
        ours_total += a;
        raw_total += b;
        ours_cpu.add(a_cpu);
        raw_cpu.add(b_cpu);
    }
    let rounds = ROUNDS as f64;
    let (a, b) = (ours_total / rounds, raw_total / rounds);
    println!(
        "mean:    sessionbank {a:>9.0} req/s   raw redis {b:>9.0} req/s   ratio {:.2} (target >= 0.90)",
        a / b
    );
    // On a machine whose cores all serve this run, throughput follows the CPU each request
    // costs in all three processes together; that ratio is steadier than the rates when
    // something else takes CPU in one round.
    println!(
        "CPU per request, mean of rounds: sessionbank {}; raw {}; raw/sessionbank {:.2}",
        ours_cpu.scaled(1.0 / rounds),
        raw_cpu.scaled(1.0 / rounds),
        raw_cpu.total() / ours_cpu.total()
    );
    drop(runtime);
    drop(server);
    ExitCode::SUCCESS
}
