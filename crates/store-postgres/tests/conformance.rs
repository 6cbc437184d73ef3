//! The shared conformance suite against a real PostgreSQL server, on both table layouts (each
//! trial in its own table: `postgres::…` in the native layout in `public`, `postgres_koa::…` in
//! koa-pg-session's layout in the schema `koa`), plus this backend's own tests, in one binary so
//! they share the server.
//!
//! koa-pg-session's table has no created, last-access or owner column and no browser sessions
//! (`expiry NOT NULL`), so the trials that read those back ([`KOA_LIMITS`]) cannot pass on it.
//! The binary re-runs itself with `--skip` for each of them (and says so on stderr); every other
//! trial runs on both layouts.

mod pg;

use std::process::{Command, ExitCode};

use sessionbank_core::StoreHandle;
use sessionbank_store_postgres::{Layout, PostgresStoreBuilder};
use sessionbank_testkit::servers::postgres::PostgresServer;
use sessionbank_testkit::{Conformance, Namespace};

/// Set when this binary runs as the re-run that does the work.
const RERUN_ENV: &str = "SESSIONBANK_POSTGRES_CONFORMANCE_RERUN";

/// The conformance trials the koa layout cannot pass, and why: what koa-pg-session's table does
/// not keep. (The layout reads created and last-access times as now and the owner as none; a
/// browser session is stored with the deadline `now + browser_idle`.)
const KOA_LIMITS: &[(&str, &str)] = &[
    (
        "get::returns_what_set_wrote",
        "created_at, last_access and owner are not stored; a browser session reads back with its deadline",
    ),
    (
        "set::inserts_a_new_id_and_overwrites_an_existing_one",
        "compares whole records: created_at and last_access are not stored",
    ),
    (
        "create::stores_a_new_session",
        "compares whole records: created_at and last_access are not stored",
    ),
    (
        "create::refuses_a_live_id_and_leaves_it_untouched",
        "compares whole records: created_at and last_access are not stored",
    ),
    (
        "create::succeeds_over_an_expired_record",
        "compares whole records: created_at and last_access are not stored",
    ),
    (
        "update::changes_only_the_named_keys",
        "created_at is not stored",
    ),
    (
        "update::new_expiry_takes_effect_and_is_kept_otherwise",
        "`expiry` is NOT NULL: expire_at(None) stores now + browser_idle, which reads back as an expiry",
    ),
    (
        "update::sets_last_access_and_owner",
        "there is no owner column (and no last-access time)",
    ),
    (
        "touch::moves_expiry_and_keeps_data",
        "created_at and owner are not stored",
    ),
    (
        "rename::moves_the_data_and_kills_the_old_id",
        "created_at and owner are not stored",
    ),
    (
        "rename::onto_a_live_id_is_already_exists_changing_neither",
        "compares whole records: created_at and last_access are not stored",
    ),
];

/// The conformance suite's backend for one layout: a store in `schema`, in the trial's table.
fn backend(
    conformance: Conformance,
    label: &str,
    url: &str,
    schema: &'static str,
    layout: Layout,
) -> Conformance {
    let url = url.to_owned();
    conformance.backend(label, move |ns: Namespace| {
        let url = url.clone();
        async move {
            let store = PostgresStoreBuilder::parse(&url)?
                .schema(schema)
                .table(ns.name)
                .layout(layout)
                .pool_size(4)
                .open()
                .await?;
            Ok(StoreHandle::new(store))
        }
    })
}

/// Runs this binary again with the caller's arguments and a `--skip` for each of
/// [`KOA_LIMITS`] (the suite reads its command line itself), and returns its exit code.
fn rerun_without_koa_limits() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("conformance: cannot find this test binary to re-run it: {e}");
            return ExitCode::from(101);
        }
    };
    let mut command = Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(RERUN_ENV, "1");
    for (trial, why) in KOA_LIMITS {
        eprintln!("postgres_koa::{trial}: skipped, the koa table cannot pass it: {why}");
        command.arg("--skip").arg(format!("postgres_koa::{trial}"));
    }
    match command.status() {
        Ok(status) => status
            .code()
            .and_then(|code| u8::try_from(code).ok())
            .map_or(ExitCode::from(101), ExitCode::from),
        Err(e) => {
            eprintln!("conformance: cannot re-run this test binary: {e}");
            ExitCode::from(101)
        }
    }
}

fn main() -> ExitCode {
    if std::env::var_os(RERUN_ENV).is_none() {
        return rerun_without_koa_limits();
    }
    let server = PostgresServer::start();
    let url = server.url();
    let conformance = backend(
        Conformance::new(),
        "postgres",
        &url,
        "public",
        Layout::Native,
    );
    let code = backend(conformance, "postgres_koa", &url, "koa", Layout::Koa)
        .with_tests(pg::tests(&url))
        .run();
    drop(server);
    code
}
