//! The shared conformance suite against a real PostgreSQL server (each trial in its own table),
//! plus this backend's own tests, in one binary so they share the server.

mod pg;

use sessionbank_core::StoreHandle;
use sessionbank_store_postgres::PostgresStoreBuilder;
use sessionbank_testkit::servers::postgres::PostgresServer;
use sessionbank_testkit::{Conformance, Namespace};

fn main() -> std::process::ExitCode {
    let server = PostgresServer::start();
    let url = server.url();
    let conformance_url = url.clone();
    let code = Conformance::new()
        .backend("postgres", move |ns: Namespace| {
            let url = conformance_url.clone();
            async move {
                let store = PostgresStoreBuilder::parse(&url)?
                    .table(ns.name)
                    .pool_size(4)
                    .open()
                    .await?;
                Ok(StoreHandle::new(store))
            }
        })
        .with_tests(pg::tests(&url))
        .run();
    drop(server);
    code
}
