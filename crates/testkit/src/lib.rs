//! sessionbank's test kit, published so other backends and adapters can use it:
//!
//! - the **conformance suite** for the [`Store`](sessionbank_core::Store) contract
//!   ([`Conformance`], below);
//! - the **HTTP behaviour suite** every web adapter runs ([`http_suite`](mod@http_suite));
//! - the **real-server harness** that starts PostgreSQL, MariaDB, Redis (standalone, Cluster,
//!   Sentinel), Memcached and a MongoDB wire-protocol server on free 127.0.0.1 ports in temporary
//!   directories ([`servers`]);
//! - [`InstrumentedStore`], which counts calls and injects failures around any real store.
//!
//! # The conformance suite
//!
//! Every sentence of every `# Contract` section in `sessionbank_core::Store` is one named trial
//! here. A backend runs the whole suite with one call in a test target that has
//! `harness = false`:
//!
//! ```no_run
//! use sessionbank_core::{MemoryStore, StoreHandle};
//! use sessionbank_testkit::{Conformance, Namespace};
//!
//! fn main() -> std::process::ExitCode {
//!     Conformance::new()
//!         .backend("memory", |_ns: Namespace| async move { Ok(StoreHandle::new(MemoryStore::new())) })
//!         .run()
//! }
//! ```
//!
//! Each trial gets its own [`Namespace`] (a random name and a fresh directory), so trials run
//! in parallel; trial names read `backend::operation::sentence`, so
//! `cargo test --test conformance -- disk::update` runs one group. Trials whose operation a backend
//! does not offer check that it answers [`ErrorKind::Unsupported`](sessionbank_core::ErrorKind)
//! instead, so a capability flag cannot lie.

pub mod http_suite;
mod instrumented;
pub mod servers;
mod trials;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sessionbank_core::StoreHandle;

pub use instrumented::InstrumentedStore;
pub use trials::{TRIALS, Trial, TrialContext};

/// Where one trial may keep its data: a random name (for a key prefix, table or collection) and
/// a fresh empty directory (for embedded stores). The directory is removed after the run.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// A random name of lowercase letters and digits, starting with a letter, e.g. `t3k9x0q2mz`.
    pub name: String,
    /// A fresh, empty directory for this namespace.
    pub dir: PathBuf,
}

/// Opens a store in a namespace.
pub type StoreFactory = Arc<
    dyn Fn(Namespace) -> BoxFuture<'static, sessionbank_core::Result<StoreHandle>> + Send + Sync,
>;

/// A run of the conformance suite against one or more backends.
///
/// # Examples
///
/// ```no_run
/// use sessionbank_core::{MemoryStore, StoreHandle};
/// use sessionbank_testkit::Conformance;
///
/// let code = Conformance::new()
///     .backend("memory", |_ns| async move { Ok(StoreHandle::new(MemoryStore::new())) })
///     .run();
/// ```
#[derive(Default)]
pub struct Conformance {
    backends: Vec<(String, StoreFactory)>,
    extra: Vec<libtest_mimic::Trial>,
}

impl std::fmt::Debug for Conformance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conformance")
            .field(
                "backends",
                &self
                    .backends
                    .iter()
                    .map(|(label, _)| label)
                    .collect::<Vec<_>>(),
            )
            .field("extra", &self.extra.len())
            .finish()
    }
}

impl Conformance {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a backend under `label` (the first part of every trial name). `factory` opens a
    /// store in the namespace it is given; it is called once per trial, and twice by trials
    /// that check namespaces are isolated.
    #[must_use]
    pub fn backend<F, Fut>(mut self, label: &str, factory: F) -> Self
    where
        F: Fn(Namespace) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = sessionbank_core::Result<StoreHandle>> + Send + 'static,
    {
        let factory: StoreFactory = Arc::new(move |ns| Box::pin(factory(ns)));
        self.backends.push((label.to_owned(), factory));
        self
    }

    /// Adds other tests to run in the same binary (and so with the same servers).
    #[must_use]
    pub fn with_tests(mut self, tests: impl IntoIterator<Item = libtest_mimic::Trial>) -> Self {
        self.extra.extend(tests);
        self
    }

    /// Runs every trial for every backend, with libtest's command line (filters,
    /// `--test-threads`, `--list`), and returns the process exit code.
    pub fn run(self) -> ExitCode {
        let args = libtest_mimic::Arguments::from_args();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => Arc::new(rt),
            Err(e) => {
                eprintln!("conformance: cannot start a tokio runtime: {e}");
                return ExitCode::from(101);
            }
        };
        let root = match tempfile::Builder::new()
            .prefix("sessionbank-conformance-")
            .tempdir()
        {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("conformance: cannot create a temporary directory: {e}");
                return ExitCode::from(101);
            }
        };
        let root_path = root.path().to_path_buf();
        let mut tests = self.extra;
        for (label, factory) in &self.backends {
            for trial in TRIALS {
                let runtime = runtime.clone();
                let factory = factory.clone();
                let root = root_path.clone();
                let name = format!("{label}::{}::{}", trial.operation, trial.name);
                let run = trial.run;
                tests.push(libtest_mimic::Trial::test(name, move || {
                    runtime
                        .block_on(async move {
                            let ctx = TrialContext::new(factory, root).await?;
                            match tokio::time::timeout(TRIAL_TIMEOUT, run(ctx)).await {
                                Ok(result) => result,
                                Err(_) => Err(anyhow::anyhow!(
                                    "the trial did not finish within {TRIAL_TIMEOUT:?}"
                                )),
                            }
                        })
                        .map_err(|e| libtest_mimic::Failed::from(format!("{e:#}")))
                }));
            }
        }
        let conclusion = libtest_mimic::run(&args, tests);
        drop(root);
        conclusion.exit_code()
    }
}

/// The longest one trial may take before it fails as hung.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(120);

/// A random name: a letter then nine lowercase letters or digits.
pub fn random_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 10];
    if getrandom::fill(&mut raw).is_err() {
        // Extremely unlikely; fall back on time and a counter so names still differ.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        raw.copy_from_slice(&nanos.to_le_bytes()[..10]);
    }
    raw.iter()
        .enumerate()
        .map(|(i, b)| {
            let set = if i == 0 { &ALPHABET[..26] } else { ALPHABET };
            char::from(set[usize::from(*b) % set.len()])
        })
        .collect()
}
