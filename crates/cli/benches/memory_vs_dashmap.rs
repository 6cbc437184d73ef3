//! `memory://` against a bare `DashMap`, in one process, with the same load driver
//! (`sessionbank_load`): same tasks, same payload, same timing and histogram work.
//!
//! ```text
//! cargo bench -p sessionbank-cli --bench memory_vs_dashmap
//! ```
//!
//! Runs baseline and store alternately (warm-up, then `ROUNDS` rounds), prints every run, the
//! median rates and the median of the per-round ratios `store / baseline` (target: >= 0.9), then
//! the disk store's figure in a temporary directory.
//!
//! Each target gets the payload in its own form, built once per task: the baseline a `Vec<u8>`
//! that every save copies into the map (a byte map must own its copy) and every load copies out;
//! the store a `Record` that it shares copy-on-write. For transparency every round also runs the
//! store with the record built from the payload inside every save (`memory+build`), the cost an
//! application pays when each request produces new session data. Knobs, from the environment:
//! `SESSIONBANK_BENCH_SECONDS` (per run, default 3), `SESSIONBANK_BENCH_ROUNDS` (default 3),
//! `SESSIONBANK_BENCH_CONCURRENCY` (default 64), `SESSIONBANK_BENCH_VALUE_BYTES` (default 500),
//! `SESSIONBANK_BENCH_DISK` (`0` skips the disk run).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sessionbank::{Record, Result as SessionResult, SessionId, StoreHandle};
use sessionbank_load::{
    Baseline, LoadConfig, LoadReport, LoadTarget, knob, median, run_load, session_record,
};

/// A stricter baseline: a `DashMap` whose values are shared (`Arc<[u8]>`), so save and load
/// copy nothing, like the store's copy-on-write records.
#[derive(Default)]
struct SharedBaseline(dashmap::DashMap<String, Arc<[u8]>>);

impl LoadTarget for SharedBaseline {
    type Value = Arc<[u8]>;

    fn name(&self) -> String {
        "dashmap-arc".to_owned()
    }

    fn prepare(&self, payload: &str) -> Arc<[u8]> {
        payload.as_bytes().into()
    }

    async fn save(&self, id: &SessionId, value: &Arc<[u8]>) -> SessionResult<()> {
        self.0.insert(id.as_str().to_owned(), value.clone());
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<usize>> {
        let value = self.0.get(id.as_str()).map(|v| v.value().clone());
        Ok(std::hint::black_box(value).map(|v| v.len()))
    }

    async fn remove(&self, id: &SessionId) -> SessionResult<()> {
        self.0.remove(id.as_str());
        Ok(())
    }
}

/// The store, with the record built from the payload inside every save.
struct BuildPerSave(StoreHandle);

impl LoadTarget for BuildPerSave {
    type Value = Arc<str>;

    fn name(&self) -> String {
        "memory+build".to_owned()
    }

    fn prepare(&self, payload: &str) -> Arc<str> {
        payload.into()
    }

    async fn save(&self, id: &SessionId, value: &Arc<str>) -> SessionResult<()> {
        let record: Record = session_record(value);
        self.0.save(id, &record).await
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<usize>> {
        self.0.load(id).await
    }

    async fn remove(&self, id: &SessionId) -> SessionResult<()> {
        self.0.remove(id).await
    }
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memory_vs_dashmap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = knob("SESSIONBANK_BENCH_SECONDS", 3.0);
    let rounds: usize = knob("SESSIONBANK_BENCH_ROUNDS", 3).max(1);
    let config = LoadConfig {
        concurrency: knob("SESSIONBANK_BENCH_CONCURRENCY", 64),
        duration: Duration::from_secs_f64(seconds),
        value_bytes: knob("SESSIONBANK_BENCH_VALUE_BYTES", 500),
        ..LoadConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let baseline = Arc::new(Baseline::default());
        let store = Arc::new(sessionbank::connect("memory://").await?);
        println!(
            "memory_vs_dashmap: concurrency {}, value {} bytes, {seconds} s per run, {rounds} rounds, {} runtime workers",
            config.concurrency,
            config.value_bytes,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );

        let warm_up = LoadConfig {
            duration: Duration::from_millis(500),
            ..config.clone()
        };
        let built = Arc::new(BuildPerSave((*store).clone()));
        let shared = Arc::new(SharedBaseline::default());
        run_load(baseline.clone(), &warm_up).await?;
        run_load(store.clone(), &warm_up).await?;

        let mut base_rates = Vec::new();
        let mut store_rates = Vec::new();
        let mut ratios = Vec::new();
        let mut built_ratios = Vec::new();
        let mut shared_ratios = Vec::new();
        for round in 1..=rounds {
            let b = checked(run_load(baseline.clone(), &config).await?)?;
            let s = checked(run_load(store.clone(), &config).await?)?;
            let sb = checked(run_load(built.clone(), &config).await?)?;
            let a = checked(run_load(shared.clone(), &config).await?)?;
            for report in [&b, &s, &sb, &a] {
                println!("round {round}: {}", line(report));
            }
            shared_ratios.push(s.ops_per_sec() / a.ops_per_sec());
            base_rates.push(b.ops_per_sec());
            store_rates.push(s.ops_per_sec());
            ratios.push(s.ops_per_sec() / b.ops_per_sec());
            built_ratios.push(sb.ops_per_sec() / b.ops_per_sec());
        }
        let ratio = median(&ratios);
        println!(
            "median: dashmap {:.0} ops/s, memory {:.0} ops/s, ratio memory/dashmap {ratio:.3} (target >= 0.9: {})",
            median(&base_rates),
            median(&store_rates),
            if ratio >= 0.9 { "met" } else { "NOT met" },
        );
        println!(
            "median ratio with the record built in every save: memory+build/dashmap {:.3}",
            median(&built_ratios),
        );
        println!(
            "median ratio against a DashMap of shared values: memory/dashmap-arc {:.3}",
            median(&shared_ratios),
        );
        if !baseline.is_empty() || store.length().await? != 0 {
            return Err("the load driver left values behind".into());
        }

        if knob("SESSIONBANK_BENCH_DISK", 1) != 0 {
            let dir = tempfile::tempdir()?;
            let url = format!("disk://{}", dir.path().join("sessions").display());
            match sessionbank::connect(&url).await {
                Ok(disk) => {
                    let d = checked(run_load(Arc::new(disk), &config).await?)?;
                    println!("disk (temp dir): {}", line(&d));
                }
                Err(e) => println!("disk: not available in this build: {}", e.chain()),
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

fn checked(report: LoadReport) -> Result<LoadReport, String> {
    if report.errors > 0 || report.cleanup_errors > 0 {
        return Err(format!(
            "{}: {} ops failed, {} ids not cleaned up",
            report.target, report.errors, report.cleanup_errors
        ));
    }
    Ok(report)
}

fn line(report: &LoadReport) -> String {
    format!(
        "{:<13} {:>10.0} ops/s  p50 {:>8.2} us  p99 {:>8.2} us  ({} ops in {:.2} s)",
        report.target,
        report.ops_per_sec(),
        report.latency_us(0.5),
        report.latency_us(0.99),
        report.ops,
        report.elapsed.as_secs_f64(),
    )
}
