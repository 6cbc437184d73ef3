//! Where a `memory://` save+load pair spends its time, next to the `DashMap` baseline: each
//! piece timed alone on one thread, in a tight loop over 1,000 ids (best of several reps, so
//! the figures are CPU cost without the scheduler or a busy machine's noise).
//!
//! ```text
//! cargo bench -p sessionbank-cli --bench memory_breakdown
//! ```
//!
//! The `arc-record map` rows are what a pair would cost if the memory store took the record by
//! value on `set`, kept `Arc<Record>` and handed it out without a deep copy (still reading the
//! clock and checking liveness on every get): a bound for that change in core. The last part
//! runs the same what-if through the concurrent load driver next to the baseline and
//! `memory://` (64 tasks, 2 s each; `SESSIONBANK_BENCH_SECONDS` changes the length).

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;
use sessionbank::{
    DEFAULT_BROWSER_IDLE, Data, MemoryStore, Record, Result, SessionId, Store, StoreHandle,
    Timestamp,
};
use sessionbank_cli::load::{
    Baseline, LoadConfig, LoadTarget, SESSION_TTL, VALUE_KEY, payload, run_load,
};

const IDS: usize = 1000;
const ITERATIONS: usize = 200_000;
const REPS: usize = 7;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ids: Vec<SessionId> = (0..IDS)
            .map(|_| SessionId::generate())
            .collect::<Result<_, _>>()?;
        let value = payload(500);
        let record = make_record(&value);

        let baseline = Baseline::default();
        let handle: StoreHandle = sessionbank::connect("memory://").await?;
        let concrete = MemoryStore::new();
        let arc_map = ArcRecordMap::default();

        let rows: Vec<(&str, f64)> = vec![
            (
                "dashmap baseline pair (save+load)",
                time(&ids, |id| async {
                    baseline.save(id, &value).await.ok();
                    black_box(baseline.load(id).await.ok());
                })
                .await,
            ),
            (
                "memory:// pair via StoreHandle (what bench runs)",
                time(&ids, |id| async {
                    handle.save(id, &value).await.ok();
                    black_box(handle.load(id).await.ok());
                })
                .await,
            ),
            (
                "  set alone (record built outside the loop)",
                time(&ids, |id| async {
                    black_box(concrete.set(id, &record).await.ok());
                })
                .await,
            ),
            (
                "  get alone (returns a deep clone)",
                time(&ids, |id| async {
                    black_box(concrete.get(id).await.ok());
                })
                .await,
            ),
            (
                "  build a Record {payload: 500 B} + drop",
                time(&ids, |_| async {
                    black_box(make_record(&value));
                })
                .await,
            ),
            (
                "  Record::clone + drop",
                time(&ids, |_| async {
                    black_box(record.clone());
                })
                .await,
            ),
            (
                "  Vec<u8> 500 B clone + drop (baseline's copy)",
                time(&ids, |_| async {
                    black_box(value.as_bytes().to_vec());
                })
                .await,
            ),
            (
                "  Timestamp::now()",
                time(&ids, |_| async {
                    black_box(Timestamp::now());
                })
                .await,
            ),
            (
                "  one async-trait box (Box<dyn Future> + await)",
                time(&ids, |id| async move {
                    let boxed: Boxed<'_, usize> = Box::pin(async move { id.as_str().len() });
                    black_box(boxed.await);
                })
                .await,
            ),
            (
                "arc-record map pair (build, move in as Arc; get clones the Arc)",
                time(&ids, |id| async {
                    arc_map.save(id, &value).await.ok();
                    black_box(arc_map.load(id).await.ok());
                })
                .await,
            ),
        ];
        println!(
            "memory_breakdown: one thread, {IDS} ids, best of {REPS} x {ITERATIONS} iterations"
        );
        for (name, nanos) in rows {
            println!("{nanos:>9.1} ns  {name}");
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;

    let seconds: f64 = std::env::var("SESSIONBANK_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let config = LoadConfig {
        duration: Duration::from_secs_f64(seconds),
        ..LoadConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let baseline = Arc::new(Baseline::default());
        let memory = Arc::new(sessionbank::connect("memory://").await?);
        let arc_map = Arc::new(ArcRecordMap::default());
        let (mut memory_ratios, mut arc_ratios) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let base = run_load(baseline.clone(), &config).await?.ops_per_sec();
            let mem = run_load(memory.clone(), &config).await?.ops_per_sec();
            let arc = run_load(arc_map.clone(), &config).await?.ops_per_sec();
            println!(
                "load driver, {} tasks, {seconds} s each: dashmap {base:.0} ops/s, memory {mem:.0} ops/s ({:.3}), arc-record map {arc:.0} ops/s ({:.3})",
                config.concurrency,
                mem / base,
                arc / base,
            );
            memory_ratios.push(mem / base);
            arc_ratios.push(arc / base);
        }
        memory_ratios.sort_by(f64::total_cmp);
        arc_ratios.sort_by(f64::total_cmp);
        println!(
            "median ratio to dashmap: memory {:.3}, arc-record map {:.3}",
            memory_ratios[1], arc_ratios[1]
        );
        Ok(())
    })
}

/// The what-if: records moved in on save, shared as `Arc<Record>` on load, liveness checked
/// against the clock on every load as the memory store does.
#[derive(Default)]
struct ArcRecordMap {
    map: DashMap<SessionId, Arc<Record>>,
}

impl LoadTarget for ArcRecordMap {
    fn name(&self) -> String {
        "arc-record map".to_owned()
    }

    async fn save(&self, id: &SessionId, value: &str) -> Result<()> {
        self.map.insert(*id, Arc::new(make_record(value)));
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let now = Timestamp::now();
        let record = self
            .map
            .get(id)
            .map(|r| Arc::clone(r.value()))
            .filter(|r| r.is_live(now, DEFAULT_BROWSER_IDLE));
        Ok(record.and_then(|r| r.data.get(VALUE_KEY).and_then(Value::as_str).map(str::len)))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        self.map.remove(id);
        Ok(())
    }
}

fn make_record(value: &str) -> Record {
    let now = Timestamp::now();
    let mut data = Data::new();
    data.insert(VALUE_KEY.to_owned(), Value::String(value.to_owned()));
    Record::new(now)
        .with_data(data)
        .expiring_at(now + SESSION_TTL)
}

/// Best-of-`REPS` nanoseconds per call of `op`, cycling over `ids`.
async fn time<'a, F, Fut>(ids: &'a [SessionId], op: F) -> f64
where
    F: Fn(&'a SessionId) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut best = Duration::MAX;
    for _ in 0..REPS {
        let start = Instant::now();
        for i in 0..ITERATIONS {
            op(&ids[i % ids.len()]).await;
        }
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / ITERATIONS as f64
}
