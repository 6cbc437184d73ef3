//! `memory://` against a bare `DashMap`, in one process, with the same load driver
//! (`sessionbank_cli::load`): same tasks, same payload, same timing and histogram work.
//!
//! ```text
//! cargo bench -p sessionbank-cli --bench memory_vs_dashmap
//! ```
//!
//! Runs baseline and store alternately (warm-up, then `ROUNDS` pairs), prints every run, the
//! median rates and the median of the per-pair ratios `store / baseline` (target: >= 0.9), then
//! the disk store's figure in a temporary directory. Knobs, from the environment:
//! `SESSIONBANK_BENCH_SECONDS` (per run, default 3), `SESSIONBANK_BENCH_ROUNDS` (default 3),
//! `SESSIONBANK_BENCH_CONCURRENCY` (default 64), `SESSIONBANK_BENCH_VALUE_BYTES` (default 500),
//! `SESSIONBANK_BENCH_DISK` (`0` skips the disk run).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sessionbank_cli::load::{Baseline, LoadConfig, LoadReport, run_load};

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memory_vs_dashmap: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
        run_load(baseline.clone(), &warm_up).await?;
        run_load(store.clone(), &warm_up).await?;

        let mut base_rates = Vec::new();
        let mut store_rates = Vec::new();
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let b = checked(run_load(baseline.clone(), &config).await?)?;
            let s = checked(run_load(store.clone(), &config).await?)?;
            println!("round {round}: {}", line(&b));
            println!("round {round}: {}", line(&s));
            base_rates.push(b.ops_per_sec());
            store_rates.push(s.ops_per_sec());
            ratios.push(s.ops_per_sec() / b.ops_per_sec());
        }
        let ratio = median(&mut ratios);
        println!(
            "median: dashmap {:.0} ops/s, memory {:.0} ops/s, ratio memory/dashmap {ratio:.3} (target >= 0.9: {})",
            median(&mut base_rates),
            median(&mut store_rates),
            if ratio >= 0.9 { "met" } else { "NOT met" },
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
        "{:<8} {:>12.0} ops/s  p50 {:>8.2} us  p99 {:>8.2} us  ({} ops in {:.2} s)",
        report.target,
        report.ops_per_sec(),
        report.latency_us(0.5),
        report.latency_us(0.99),
        report.ops,
        report.elapsed.as_secs_f64(),
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
