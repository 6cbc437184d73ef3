//! The library half of the `sessionbank` command-line tool: the load driver that both
//! `sessionbank bench` and the `memory_vs_dashmap` benchmark run, so the figures they print come
//! from exactly the same code.
//!
//! The tool itself lives in the binary (`src/main.rs`); run `sessionbank --help` for its
//! commands.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sessionbank_cli::load::{Baseline, LoadConfig, run_load};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let config = LoadConfig { concurrency: 2, duration: Duration::from_millis(50), ..LoadConfig::default() };
//! let report = run_load(Arc::new(Baseline::default()), &config).await?;
//! assert_eq!(report.errors, 0);
//! assert!(report.ops > 0);
//! # Ok::<(), sessionbank::Error>(())
//! # })?;
//! # Ok::<(), sessionbank::Error>(())
//! ```

pub mod load;
