//! `sessionbank --store URL …` against every server backend, each on a real server started here:
//! the CLI and `bench` work with every URL form the issues name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use sessionbank_testkit::servers::mariadb::MariaDbServer;
use sessionbank_testkit::servers::memcached::MemcachedServer;
use sessionbank_testkit::servers::mongo::MongoServer;
use sessionbank_testkit::servers::postgres::PostgresServer;
use sessionbank_testkit::servers::redis::{RedisCluster, RedisSentinel, RedisServer};

fn sessionbank(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionbank"))
        .arg("--store")
        .arg(url)
        .args(args)
        .env_remove("SESSIONBANK_URL")
        .output()
        .expect("the sessionbank binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// `bench` runs without errors, and (for stores that can list) a session written by `create` is
/// read back by `get` and counted by `count`.
fn exercise(url: &str, lists: bool) {
    let bench = sessionbank(url, &["bench", "--seconds", "0.5", "--concurrency", "4"]);
    assert!(
        bench.status.success(),
        "{url}: bench failed: {}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&bench)).unwrap();
    assert_eq!(report["errors"], 0, "{url}: {report}");
    assert!(
        report["ops_per_sec"].as_f64().unwrap() > 0.0,
        "{url}: {report}"
    );

    let created = sessionbank(
        url,
        &[
            "create",
            r#"{"via":"cli"}"#,
            "--ttl",
            "10m",
            "--owner",
            "ada",
        ],
    );
    assert!(
        created.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let id = stdout(&created);
    let got = sessionbank(url, &["get", &id]);
    assert_eq!(
        stdout(&got),
        r#"{"via":"cli"}"#,
        "{url}: get exited {:?}: {}",
        got.status.code(),
        String::from_utf8_lossy(&got.stderr)
    );
    let count = sessionbank(url, &["count"]);
    if lists {
        assert!(
            count.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&count.stderr)
        );
        assert!(stdout(&count).parse::<u64>().unwrap() >= 1, "{url}");
    } else {
        assert_eq!(count.status.code(), Some(2), "{url}: count is unsupported");
        assert!(
            String::from_utf8_lossy(&count.stderr).contains("unsupported"),
            "{url}"
        );
    }
    let destroyed = sessionbank(url, &["destroy", &id]);
    assert!(destroyed.status.success(), "{url}");
    assert_eq!(
        sessionbank(url, &["get", &id]).status.code(),
        Some(1),
        "{url}: gone"
    );
}

#[test]
fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(
        &format!("sqlite://{}", dir.path().join("s.db").display()),
        true,
    );
}

#[test]
fn postgres() {
    let server = PostgresServer::start();
    exercise(&format!("{}?table=cli_sessions", server.url()), true);
}

#[test]
fn mysql_and_mariadb() {
    let server = MariaDbServer::start();
    let url = server.url();
    exercise(&format!("{url}?table=cli_mysql"), true);
    exercise(
        &format!(
            "{}?table=cli_mariadb",
            url.replacen("mysql://", "mariadb://", 1)
        ),
        true,
    );
}

#[test]
fn redis_standalone() {
    let server = RedisServer::start();
    exercise(&server.url(), true);
}

#[test]
fn redis_cluster() {
    let cluster = RedisCluster::start();
    exercise(&cluster.url(), true);
}

#[test]
fn redis_sentinel() {
    let sentinel = RedisSentinel::start();
    exercise(&sentinel.url(), true);
}

#[test]
fn memcached() {
    let a = MemcachedServer::start();
    let b = MemcachedServer::start();
    exercise(&format!("memcached://{},{}", a.addr(), b.addr()), false);
}

#[test]
fn mongodb() {
    let server = MongoServer::start();
    exercise(
        &format!("{}?collection=cli_sessions", server.url("cli")),
        true,
    );
}
