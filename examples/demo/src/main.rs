//! `sessionbank-demo`: a small website on sessionbank — a visit counter, sign-in, the list of
//! your sessions with "sign out this one", and "sign out everywhere".
//!
//! See the crate's README.md for the flags, the signing key file and the cookie settings.

mod cli;
mod key;
mod name;
mod pages;
mod routes;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sessionbank_cookie::{CookieConfig, KeyRing};
use sessionbank_core::ExpiryPolicy;
use sessionbank_tower::SessionLayer;
use tracing_subscriber::EnvFilter;

use crate::cli::Args;

/// Name of the session cookie.
const COOKIE_NAME: &str = "sessionbank_demo";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sessionbank-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let store = sessionbank::connect(&args.store)
        .await
        .context("cannot open the session store")?;
    tracing::info!(store = store.target(), "session store open");

    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| key::default_key_file(&args.store));
    let env_key = std::env::var("SESSIONBANK_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let loaded = key::load_key(env_key.as_deref(), &key_file)?;
    if loaded.created {
        tracing::info!(path = %loaded.origin, "created a new signing key file (mode 0600)");
    } else {
        tracing::info!(from = %loaded.origin, "loaded the signing key");
    }
    let keys = KeyRing::new(loaded.key);

    // Plain http on a loopback address cannot carry a `Secure` cookie; anywhere else the demo
    // expects a TLS-terminating proxy in front of it.
    let secure = !args.listen.ip().is_loopback();
    if secure {
        tracing::warn!(
            "listening on a non-loopback address: cookies are marked Secure, so serve the demo over HTTPS"
        );
    }
    let layer = SessionLayer::new(store, keys)
        .with_cookie(CookieConfig::new().name(COOKIE_NAME).secure(secure))
        .with_policy(ExpiryPolicy::default());

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%addr, "listening");
    // One line on stdout, for people and for tests that asked for port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "sessionbank-demo listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    drop(stdout);

    axum::serve(listener, routes::router(layer))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
