//! `sessionbank`: inspect and manage the sessions of any sessionbank store, chosen by URL, and
//! benchmark it. Run `sessionbank --help` for the commands.
//!
//! In ripgrep's manner: `main` calls [`run`], which returns the exit status or an error; the
//! error goes to stderr as one line and the status is 2. A closed stdout (`sessionbank list |
//! head`) is not an error.

mod args;
mod commands;
mod cookie;
mod exit;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::args::Cli;
use crate::exit::EXIT_ERROR;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the error and every source after it, on one line. Errors from the
            // store carry redacted targets only, never a password or a session id.
            let _ = writeln!(io::stderr(), "sessionbank: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with status 0; usage errors with status 2.
            let code = u8::try_from(e.exit_code()).unwrap_or(EXIT_ERROR);
            e.print()?;
            return Ok(ExitCode::from(code));
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SESSIONBANK_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(io::stderr)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = io::BufWriter::new(io::stdout());
    let code = runtime.block_on(commands::execute(
        cli.command,
        cli.store.as_deref(),
        &mut out,
    ))?;
    out.flush()?;
    Ok(code)
}

/// Whether the error is a write to a closed pipe, which ends the program quietly.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
