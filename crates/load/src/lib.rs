//! sessionbank's load driver, shared by `sessionbank bench` and every backend's benchmark, so
//! the figures they print come from exactly the same code. It depends on `sessionbank-core`
//! alone: benching one backend compiles no other driver.
//!
//! The load driver: `concurrency` tasks, each running save+load pairs over its own fixed pool of
//! session ids for a fixed time, with every pair's latency in an HDR histogram.
//!
//! The same harness drives any [`LoadTarget`]: a real store behind a [`StoreHandle`], or the
//! [`Baseline`], a bare `DashMap` that does the least a byte store must do (copy the value in on
//! save, copy it out on load). Same tasks, same payload, same timing and histogram work, so
//! `store / baseline` is an honest ratio of what the store costs.
//!
//! # What one op is
//! Each task first asks the target to [`prepare`](LoadTarget::prepare) the payload in the
//! target's own form, once: bytes for the baseline, a [`Record`] for a store. Building that value
//! is the application's work, not the store's, so it is outside the loop for both. One op is
//! then one pair: `save(id, &value)` then `load(id)`, and a check that the loaded value has the
//! length that was saved. After each pair the task yields to the runtime, as a server task
//! finishing a request would, so all `concurrency` tasks interleave even against a store whose
//! futures never wait. The yield is outside the timed region: latencies cover save+load only,
//! throughput covers everything.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hdrhistogram::Histogram;
use serde_json::Value;
use sessionbank_core::{
    Action, Data, Error, ErrorKind, Record, Result, SessionId, StoreHandle, Timestamp,
};

/// The session key the store target writes the payload under.
pub const VALUE_KEY: &str = "payload";

/// How long the sessions the store target writes live: long enough to outlast any run.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

/// Longest latency the histogram can hold; longer ones are recorded as this.
const MAX_LATENCY_NANOS: u64 = 3_600_000_000_000;

/// Something the load driver can save values into and load them back from.
///
/// # Examples
///
/// ```
/// use sessionbank_core::SessionId;
/// use sessionbank_load::{Baseline, LoadTarget};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let target = Baseline::default();
/// let id = SessionId::generate()?;
/// let value = target.prepare("hello");
/// target.save(&id, &value).await?;
/// assert_eq!(target.load(&id).await?, Some(5));
/// target.remove(&id).await?;
/// assert_eq!(target.load(&id).await?, None);
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub trait LoadTarget: Send + Sync + 'static {
    /// The payload in the target's own form, built once per task.
    type Value: Send + Sync + 'static;

    /// A short name for reports, e.g. `dashmap` or the store's backend.
    fn name(&self) -> String;

    /// Turns the payload into the value `save` takes (outside the timed loop).
    fn prepare(&self, payload: &str) -> Self::Value;

    /// Stores `value` under `id`, replacing what was there.
    ///
    /// # Errors
    ///
    /// Whatever the target reports; the driver counts it as a failed op.
    fn save(&self, id: &SessionId, value: &Self::Value) -> impl Future<Output = Result<()>> + Send;

    /// Reads back what `id` holds and returns the value's length in bytes, or `None` when `id`
    /// holds nothing.
    ///
    /// # Errors
    ///
    /// Whatever the target reports; the driver counts it as a failed op.
    fn load(&self, id: &SessionId) -> impl Future<Output = Result<Option<usize>>> + Send;

    /// Removes `id` (the driver's clean-up at the end of a run).
    ///
    /// # Errors
    ///
    /// Whatever the target reports; the driver counts it in [`LoadReport::cleanup_errors`].
    fn remove(&self, id: &SessionId) -> impl Future<Output = Result<()>> + Send;
}

/// The baseline: a bare sharded map (`DashMap<String, Vec<u8>>`) from the id's text to the
/// value's bytes. Save allocates the key and copies the value in; load copies the value out.
/// No expiry, no metadata, no JSON: the least a session store must do.
///
/// # Examples
///
/// ```
/// use sessionbank_load::Baseline;
///
/// assert!(Baseline::default().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Baseline {
    map: DashMap<String, Vec<u8>>,
}

impl Baseline {
    /// How many values the map holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl LoadTarget for Baseline {
    type Value = Vec<u8>;

    fn name(&self) -> String {
        "dashmap".to_owned()
    }

    fn prepare(&self, payload: &str) -> Vec<u8> {
        payload.as_bytes().to_vec()
    }

    async fn save(&self, id: &SessionId, value: &Vec<u8>) -> Result<()> {
        self.map.insert(id.as_str().to_owned(), value.clone());
        Ok(())
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        let value: Option<Vec<u8>> = self.map.get(id.as_str()).map(|v| v.value().clone());
        Ok(std::hint::black_box(value).map(|v| v.len()))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        self.map.remove(id.as_str());
        Ok(())
    }
}

/// A real store: the value is a record whose data is `{"payload": value}` and which expires
/// after [`SESSION_TTL`]; save is [`Store::set`](sessionbank_core::Store::set) of it, load is
/// [`Store::get`](sessionbank_core::Store::get) and the length of that string.
impl LoadTarget for StoreHandle {
    type Value = Record;

    fn name(&self) -> String {
        self.backend().to_owned()
    }

    fn prepare(&self, payload: &str) -> Record {
        session_record(payload)
    }

    async fn save(&self, id: &SessionId, record: &Record) -> Result<()> {
        self.set(id, record).await
    }

    async fn load(&self, id: &SessionId) -> Result<Option<usize>> {
        Ok(self.get(id).await?.and_then(|record| {
            record
                .data
                .get(VALUE_KEY)
                .and_then(Value::as_str)
                .map(str::len)
        }))
    }

    async fn remove(&self, id: &SessionId) -> Result<()> {
        self.destroy(id).await
    }
}

/// The record the store target saves: `{"payload": payload}`, expiring after [`SESSION_TTL`].
///
/// # Examples
///
/// ```
/// let record = sessionbank_load::session_record("abc");
/// assert_eq!(record.data[sessionbank_load::VALUE_KEY], "abc");
/// assert!(record.expires_at.is_some());
/// ```
pub fn session_record(payload: &str) -> Record {
    let now = Timestamp::now();
    let mut data = Data::new();
    data.insert(VALUE_KEY.to_owned(), Value::String(payload.to_owned()));
    Record::new(now)
        .with_data(data)
        .expiring_at(now + SESSION_TTL)
}

/// How to drive a load.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_load::LoadConfig;
///
/// let config = LoadConfig { concurrency: 8, duration: Duration::from_secs(1), ..LoadConfig::default() };
/// assert_eq!(config.value_bytes, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadConfig {
    /// How many tasks run pairs at once (default 64).
    pub concurrency: usize,
    /// How long the tasks run (default 5 s).
    pub duration: Duration,
    /// The payload's length in bytes (default 500).
    pub value_bytes: usize,
    /// How many distinct ids each task cycles over (default 1,000), so the target does not
    /// grow without bound.
    pub ids_per_task: usize,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            duration: Duration::from_secs(5),
            value_bytes: 500,
            ids_per_task: 1000,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The target's name.
    pub target: String,
    /// Pairs that completed and checked out.
    pub ops: u64,
    /// Pairs that failed: an error, a missing value, or a value of the wrong length.
    pub errors: u64,
    /// Ids the clean-up at the end could not remove.
    pub cleanup_errors: u64,
    /// Wall time from the first task's start to the last task's end (clean-up excluded).
    pub elapsed: Duration,
    /// Latency of every pair, in nanoseconds.
    pub latency_nanos: Histogram<u64>,
}

impl LoadReport {
    /// Completed pairs per second.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0.0–1.0) in microseconds.
    pub fn latency_us(&self, quantile: f64) -> f64 {
        self.latency_nanos.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The report as `sessionbank bench` prints it, one JSON object in this key order:
    /// `{"ops_per_sec": …, "p50_us": …, "p99_us": …, "errors": …}` (rate and latencies rounded
    /// to two decimals).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use sessionbank_load::{Baseline, LoadConfig, run_load};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config = LoadConfig { concurrency: 1, duration: Duration::from_millis(10), ..LoadConfig::default() };
    /// let line = run_load(Arc::new(Baseline::default()), &config).await?.to_json_line();
    /// assert!(line.starts_with(r#"{"ops_per_sec":"#));
    /// let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    /// assert_eq!(json["errors"], 0);
    /// assert!(json["ops_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    /// # Ok::<(), sessionbank_core::Error>(())
    /// # })?;
    /// # Ok::<(), sessionbank_core::Error>(())
    /// ```
    pub fn to_json_line(&self) -> String {
        format!(
            r#"{{"ops_per_sec":{},"p50_us":{},"p99_us":{},"errors":{}}}"#,
            Value::from(round2(self.ops_per_sec())),
            Value::from(round2(self.latency_us(0.5))),
            Value::from(round2(self.latency_us(0.99))),
            self.errors,
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A benchmark knob: the environment variable `name` parsed as `T`, or `default` when it is
/// unset or does not parse.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_load::knob("SESSIONBANK_DOC_UNSET_KNOB", 5_u64), 5);
/// ```
pub fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values`: the middle one, or the mean of the two middle ones for an even
/// count; NaN when there is none.
///
/// # Examples
///
/// ```
/// use sessionbank_load::median;
///
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// assert!(median(&[]).is_nan());
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The payload: `len` bytes of printable ASCII.
///
/// # Examples
///
/// ```
/// assert_eq!(sessionbank_load::payload(40).len(), 40);
/// ```
pub fn payload(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..len)
        .map(|i| char::from(ALPHABET[i % ALPHABET.len()]))
        .collect()
}

/// One task's tally.
struct TaskTally {
    ops: u64,
    errors: u64,
    cleanup_errors: u64,
    latency_nanos: Histogram<u64>,
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NANOS, 3).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            Action::Session,
            format!("cannot build the latency histogram: {e}"),
        )
    })
}

/// Runs `config.concurrency` tasks of save+load pairs against `target` for `config.duration`,
/// then removes every id the tasks wrote. Must run inside a tokio runtime; a multi-threaded one
/// spreads the tasks over its workers.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] when `concurrency` or `ids_per_task` is zero;
/// [`ErrorKind::Unavailable`] when the operating system cannot provide random ids. Failed ops
/// are not errors: they are counted in [`LoadReport::errors`].
///
/// # Panics
///
/// When a task panics (the panic is passed on).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sessionbank_load::{LoadConfig, run_load};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = sessionbank_core::Registry::with_memory().connect("memory://").await?;
/// let config = LoadConfig { concurrency: 4, duration: Duration::from_millis(50), ..LoadConfig::default() };
/// let report = run_load(Arc::new(store.clone()), &config).await?;
/// assert_eq!((report.errors, report.cleanup_errors), (0, 0));
/// assert_eq!(store.length().await?, 0, "the run cleans up after itself");
/// # Ok::<(), sessionbank_core::Error>(())
/// # })?;
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub async fn run_load<T: LoadTarget>(target: Arc<T>, config: &LoadConfig) -> Result<LoadReport> {
    if config.concurrency == 0 || config.ids_per_task == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            Action::Session,
            "the load needs at least one task and one id per task",
        ));
    }
    let value: Arc<str> = payload(config.value_bytes).into();
    let expected_len = value.len();
    let mut pools = Vec::with_capacity(config.concurrency);
    for _ in 0..config.concurrency {
        let ids = (0..config.ids_per_task)
            .map(|_| SessionId::generate())
            .collect::<Result<Vec<_>>>()?;
        pools.push(ids);
    }
    let histogram = new_histogram()?;

    let start = Instant::now();
    let deadline = start + config.duration;
    let tasks: Vec<_> = pools
        .into_iter()
        .map(|ids| {
            let target = target.clone();
            let value = target.prepare(&value);
            let latency_nanos = histogram.clone();
            tokio::spawn(drive(
                target,
                ids,
                value,
                expected_len,
                deadline,
                latency_nanos,
            ))
        })
        .collect();
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(tally) => tallies.push(tally),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Backend,
                    Action::Session,
                    format!("a load task was cancelled: {e}"),
                ));
            }
        }
    }
    let elapsed = tallies
        .iter()
        .map(|t| t.1)
        .max()
        .unwrap_or(start)
        .duration_since(start);

    let mut report = LoadReport {
        target: target.name(),
        ops: 0,
        errors: 0,
        cleanup_errors: 0,
        elapsed,
        latency_nanos: histogram,
    };
    for (tally, _) in tallies {
        report.ops += tally.ops;
        report.errors += tally.errors;
        report.cleanup_errors += tally.cleanup_errors;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = report.latency_nanos.add(&tally.latency_nanos);
    }
    Ok(report)
}

/// One task: pairs until `deadline`, then clean-up. Returns the tally and when the timed part
/// ended.
async fn drive<T: LoadTarget>(
    target: Arc<T>,
    ids: Vec<SessionId>,
    value: T::Value,
    expected_len: usize,
    deadline: Instant,
    latency_nanos: Histogram<u64>,
) -> (TaskTally, Instant) {
    let mut tally = TaskTally {
        ops: 0,
        errors: 0,
        cleanup_errors: 0,
        latency_nanos,
    };
    let mut used = 0usize;
    let mut next = 0usize;
    let mut warned = false;
    let ended = loop {
        let begin = Instant::now();
        if begin >= deadline {
            break begin;
        }
        let index = next;
        next = (next + 1) % ids.len();
        used = used.max(index + 1);
        let id = &ids[index];
        let outcome = match target.save(id, &value).await {
            Ok(()) => target.load(id).await,
            Err(e) => Err(e),
        };
        let took = begin.elapsed();
        tally
            .latency_nanos
            .saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        match outcome {
            Ok(Some(len)) if len == expected_len => tally.ops += 1,
            other => {
                tally.errors += 1;
                if !warned {
                    warned = true;
                    match other {
                        Err(error) => tracing::warn!(%error, "a load op failed"),
                        Ok(found) => tracing::warn!(
                            expected = expected_len,
                            found = ?found,
                            "a load op read back the wrong value"
                        ),
                    }
                }
            }
        }
        tokio::task::yield_now().await;
    };
    for id in &ids[..used] {
        if target.remove(id).await.is_err() {
            tally.cleanup_errors += 1;
        }
    }
    (tally, ended)
}
