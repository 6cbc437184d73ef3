//! The janitor: a background task that runs `cleanup` on an interval, with jitter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;

/// How often the janitor runs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sessionbank_core::JanitorConfig;
///
/// let config = JanitorConfig::every(Duration::from_secs(300)).with_jitter(0.2);
/// assert_eq!(config.interval, Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JanitorConfig {
    /// The mean time between two runs.
    pub interval: Duration,
    /// Each wait is `interval` times a random factor in `1 ± jitter`, so several instances
    /// started together drift apart. Clamped to `0.0..=0.5`; default `0.1`.
    pub jitter: f64,
}

impl JanitorConfig {
    /// Runs every `interval`, with 10% jitter.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            jitter: 0.1,
        }
    }

    /// Sets the jitter fraction.
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    fn next_wait(&self) -> Duration {
        let jitter = self.jitter.clamp(0.0, 0.5);
        let mut raw = [0u8; 8];
        let unit = match getrandom::fill(&mut raw) {
            Ok(()) => (u64::from_le_bytes(raw) >> 11) as f64 / (1u64 << 53) as f64,
            Err(_) => 0.5,
        };
        let factor = 1.0 + jitter * (2.0 * unit - 1.0);
        self.interval.mul_f64(factor).max(Duration::from_millis(1))
    }
}

/// A running janitor. Dropping it asks the task to stop after the run in progress, if any;
/// [`Janitor::shutdown`] also waits for that.
///
/// A failed run is logged at `warn` and the next tick runs as planned; a successful one logs
/// the number removed at `debug`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sessionbank_core::{Janitor, JanitorConfig, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let janitor = Janitor::spawn(Arc::new(MemoryStore::new()), JanitorConfig::every(Duration::from_secs(60)));
/// janitor.shutdown().await;
/// # });
/// ```
#[derive(Debug)]
pub struct Janitor {
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<JanitorStats>,
}

#[derive(Debug, Default)]
struct JanitorStats {
    runs: AtomicU64,
    failures: AtomicU64,
    removed: AtomicU64,
}

impl Janitor {
    /// Starts the janitor on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn(store: Arc<dyn Store>, config: JanitorConfig) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let stats = Arc::new(JanitorStats::default());
        let task_stats = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(config.next_wait()) => {}
                    _ = stopped.changed() => break,
                }
                task_stats.runs.fetch_add(1, Ordering::Relaxed);
                match store.cleanup().await {
                    Ok(removed) => {
                        task_stats.removed.fetch_add(removed, Ordering::Relaxed);
                        tracing::debug!(
                            backend = store.backend(),
                            removed,
                            "janitor cleaned expired sessions"
                        );
                    }
                    Err(error) => {
                        task_stats.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(backend = store.backend(), %error, "janitor cleanup failed; will try again next tick");
                    }
                }
                if *stopped.borrow() {
                    break;
                }
            }
        });
        Self {
            stop,
            task: std::sync::Mutex::new(Some(task)),
            stats,
        }
    }

    /// Stops the janitor and waits for a run in progress to finish.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// How many runs started so far.
    pub fn runs(&self) -> u64 {
        self.stats.runs.load(Ordering::Relaxed)
    }

    /// How many runs failed so far.
    pub fn failures(&self) -> u64 {
        self.stats.failures.load(Ordering::Relaxed)
    }

    /// How many sessions the janitor removed so far.
    pub fn removed(&self) -> u64 {
        self.stats.removed.load(Ordering::Relaxed)
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_within_the_jitter_band_and_vary() {
        let config = JanitorConfig::every(Duration::from_millis(1000)).with_jitter(0.2);
        let waits: Vec<_> = (0..200).map(|_| config.next_wait()).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_millis(800) && *w <= Duration::from_millis(1200))
        );
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter must spread the waits, got {} distinct",
            distinct.len()
        );
    }
}
