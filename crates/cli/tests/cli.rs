//! The `sessionbank` binary, run for real. State that must outlive one command lives in a
//! `disk:` store in a temporary directory (a `memory://` store dies with its process).

// Helpers outside `#[test]` functions panic on failure like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_sessionbank");

/// A disk store in its own temporary directory.
struct DiskStore {
    _dir: TempDir,
    url: String,
}

impl DiskStore {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("disk://{}", dir.path().join("sessions").display());
        Self { _dir: dir, url }
    }

    fn run(&self, args: &[&str]) -> Output {
        sessionbank(&self.url, args)
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        ok(&self.url, args)
    }
}

fn bare() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("SESSIONBANK_URL")
        .env_remove("SESSIONBANK_LOG");
    command
}

fn sessionbank(url: &str, args: &[&str]) -> Output {
    bare().arg("--store").arg(url).args(args).output().unwrap()
}

fn ok(url: &str, args: &[&str]) -> String {
    let out = sessionbank(url, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{args:?} wrote to stderr: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

/// Asserts exit status 2, nothing on stdout, and one line on stderr containing every `needle`.
fn assert_error(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    }
}

/// Asserts exit status 1 and nothing at all on stdout.
fn assert_not_found(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
}

#[test]
fn a_session_lives_through_create_get_list_count_set_touch_and_destroy() {
    let store = DiskStore::new();

    let id = store.ok(&[
        "create",
        r#"{"user":"ada","visits":3}"#,
        "--ttl",
        "30m",
        "--owner",
        "ada",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 32, "{id:?}");

    assert_eq!(
        json(&store.ok(&["get", id])),
        json(r#"{"user":"ada","visits":3}"#)
    );

    let meta = json(&store.ok(&["get", id, "--meta"]));
    assert_eq!(meta["data"], json(r#"{"user":"ada","visits":3}"#));
    assert_eq!(meta["owner"], "ada");
    let created = meta["created_at"].as_str().unwrap();
    assert_eq!(meta["last_access"].as_str(), Some(created));
    let expires = meta["expires_at"].as_str().unwrap();
    assert!(expires > created, "{expires} is not after {created}");
    assert_eq!(meta.as_object().unwrap().len(), 5, "{meta}");

    assert_eq!(store.ok(&["list"]), format!("{id}\t{expires}\tada\n"));
    assert_eq!(store.ok(&["count"]), "1\n");

    // set replaces the whole record: the old keys and owner are gone.
    assert_eq!(
        store.ok(&[
            "set",
            id,
            r#"{"user":"bob"}"#,
            "--expires-at",
            "2099-01-01T00:00:00Z"
        ]),
        ""
    );
    let meta = json(&store.ok(&["get", id, "--meta"]));
    assert_eq!(meta["data"], json(r#"{"user":"bob"}"#));
    assert_eq!(meta["expires_at"], "2099-01-01T00:00:00.000Z");
    assert_eq!(meta["owner"], Value::Null);
    assert_eq!(
        store.ok(&["list"]),
        format!("{id}\t2099-01-01T00:00:00.000Z\t-\n")
    );

    // touch moves the expiry only.
    assert_eq!(store.ok(&["touch", id, "--ttl", "1h"]), "");
    let touched = json(&store.ok(&["get", id, "--meta"]));
    assert_eq!(touched["data"], json(r#"{"user":"bob"}"#));
    let new_expiry = touched["expires_at"].as_str().unwrap();
    assert!(new_expiry < "2099", "{new_expiry}");
    assert!(new_expiry > touched["last_access"].as_str().unwrap());
    assert_eq!(store.ok(&["touch", id, "--browser-session"]), "");
    assert_eq!(
        json(&store.ok(&["get", id, "--meta"]))["expires_at"],
        Value::Null
    );

    assert_eq!(store.ok(&["destroy", id]), "");
    assert_not_found(&store.run(&["get", id]));
    assert_not_found(&store.run(&["get", id, "--meta"]));
    assert_not_found(&store.run(&["touch", id, "--ttl", "1h"]));
    assert_eq!(store.ok(&["destroy", id]), "", "destroy is idempotent");
    assert_eq!(store.ok(&["count"]), "0\n");
    assert_eq!(store.ok(&["list"]), "");
}

#[test]
fn create_without_an_expiry_makes_a_browser_session() {
    let store = DiskStore::new();
    let id = store.ok(&["create", "{}"]);
    let id = id.trim();
    assert_eq!(store.ok(&["list"]), format!("{id}\tbrowser-session\t-\n"));
    let meta = json(&store.ok(&["get", id, "--meta"]));
    assert_eq!(meta["expires_at"], Value::Null);
    assert_eq!(meta["data"], json("{}"));
}

#[test]
fn list_pages_through_every_session_and_stops_at_the_limit() {
    let store = DiskStore::new();
    let mut ids: Vec<String> = (0..3)
        .map(|i| {
            store
                .ok(&["create", &format!(r#"{{"i":{i}}}"#), "--ttl", "1h"])
                .trim()
                .to_owned()
        })
        .collect();
    ids.sort();
    let mut listed: Vec<String> = store
        .ok(&["list"])
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ids);
    assert_eq!(store.ok(&["list", "--limit", "2"]).lines().count(), 2);
    assert_eq!(store.ok(&["list", "--limit", "0"]), "");
    assert_eq!(store.ok(&["count"]), "3\n");
}

#[test]
fn set_with_an_expiry_in_the_past_is_never_read_back() {
    let store = DiskStore::new();
    let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    store.ok(&[
        "set",
        id,
        r#"{"a":1}"#,
        "--expires-at",
        "2001-01-01T00:00:00Z",
    ]);
    assert_not_found(&store.run(&["get", id]));
    assert_not_found(&store.run(&["touch", id, "--ttl", "1h"]));
    assert_eq!(store.ok(&["count"]), "0\n");
    assert_eq!(store.ok(&["list"]), "");
}

#[test]
fn gc_removes_an_expired_session_and_keeps_live_ones() {
    let store = DiskStore::new();
    let live = store.ok(&["create", r#"{"keep":true}"#, "--ttl", "1h"]);
    // Long enough for `count` to run before it expires even on a busy machine.
    let expiring = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    store.ok(&["set", expiring, "{}", "--ttl", "3s"]);
    assert_eq!(store.ok(&["count"]), "2\n");
    std::thread::sleep(Duration::from_millis(3300));
    assert_eq!(store.ok(&["gc"]), "1\n");
    assert_eq!(store.ok(&["gc"]), "0\n");
    assert_eq!(store.ok(&["count"]), "1\n");
    assert_eq!(
        json(&store.ok(&["get", live.trim()])),
        json(r#"{"keep":true}"#)
    );
}

#[test]
fn clear_refuses_without_yes_and_empties_the_store_with_it() {
    let store = DiskStore::new();
    store.ok(&["create", "{}", "--ttl", "1h"]);
    store.ok(&["create", "{}"]);
    assert_error(&store.run(&["clear"]), &["--yes"]);
    assert_eq!(store.ok(&["count"]), "2\n", "the refusal removed nothing");
    assert_eq!(store.ok(&["clear", "--yes"]), "2\n");
    assert_eq!(store.ok(&["count"]), "0\n");
}

#[test]
fn an_unknown_scheme_lists_the_known_ones() {
    let out = sessionbank("nosuch://somewhere", &["count"]);
    assert_error(&out, &["nosuch", "memory", "disk"]);
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_url_option_is_named() {
    assert_error(
        &sessionbank("memory://?colour=blue", &["count"]),
        &["colour"],
    );
    let store = DiskStore::new();
    assert_error(
        &sessionbank(&format!("{}?colour=blue", store.url), &["count"]),
        &["colour"],
    );
}

#[test]
fn passwords_in_the_url_never_reach_stderr() {
    let out = sessionbank("nosuch://app:hunter2@db.example/x", &["count"]);
    assert_error(&out, &["nosuch"]);
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn invalid_ids_are_refused_without_being_echoed() {
    for args in [
        &["get", "not-an-id"][..],
        &["get", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/+"],
        &["set", "not-an-id", "{}"],
        &["destroy", "not-an-id"],
        &["touch", "not-an-id", "--ttl", "1h"],
    ] {
        let out = sessionbank("memory://", args);
        assert_error(&out, &["invalid session id"]);
        assert!(
            !text(&out.stderr).contains(args[1]),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn session_data_must_be_a_json_object() {
    assert_error(
        &sessionbank("memory://", &["create", "[1,2]"]),
        &["JSON object", "array"],
    );
    assert_error(
        &sessionbank("memory://", &["create", "\"ada\""]),
        &["JSON object", "string"],
    );
    assert_error(
        &sessionbank("memory://", &["create", "{oops"]),
        &["not valid JSON"],
    );
    let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_error(
        &sessionbank("memory://", &["set", id, "3"]),
        &["JSON object", "number"],
    );
}

#[test]
fn bad_durations_and_times_are_refused() {
    assert_error(
        &sessionbank("memory://", &["create", "{}", "--ttl", "0s"]),
        &["--ttl", "zero"],
    );
    assert_error(
        &sessionbank("memory://", &["create", "{}", "--ttl", "soon"]),
        &["--ttl"],
    );
    assert_error(
        &sessionbank("memory://", &["create", "{}", "--ttl", "30"]),
        &["--ttl"],
    );
    assert_error(
        &sessionbank("memory://", &["create", "{}", "--expires-at", "tomorrow"]),
        &["--expires-at", "RFC 3339"],
    );
    assert_error(
        &sessionbank(
            "memory://",
            &[
                "create",
                "{}",
                "--ttl",
                "1h",
                "--expires-at",
                "2030-01-01T00:00:00Z",
            ],
        ),
        &["--ttl", "--expires-at"],
    );
    let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_error(&sessionbank("memory://", &["touch", id]), &["--ttl"]);
    assert_error(
        &sessionbank("memory://", &["bench", "--seconds", "0"]),
        &["--seconds"],
    );
    assert_error(
        &sessionbank("memory://", &["bench", "--concurrency", "0"]),
        &["--concurrency"],
    );
}

#[test]
fn a_missing_session_exits_1_with_nothing_on_stdout() {
    let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_not_found(&sessionbank("memory://", &["get", id]));
    assert_not_found(&sessionbank("memory://", &["touch", id, "--ttl", "1m"]));
}

#[test]
fn bench_prints_one_json_line_with_four_fields() {
    let out = ok(
        "memory://",
        &["bench", "--seconds", "1", "--concurrency", "4"],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(r#"{"ops_per_sec":"#), "{out}");
    let report = json(&out);
    assert_eq!(report.as_object().unwrap().len(), 4, "{report}");
    assert!(report["ops_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    let p50 = report["p50_us"].as_f64().unwrap();
    let p99 = report["p99_us"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn bench_on_disk_checks_every_op_and_cleans_up_after_itself() {
    let store = DiskStore::new();
    let live = store.ok(&["create", "{}", "--ttl", "1h"]);
    let out = store.ok(&[
        "bench",
        "--seconds",
        "0.5",
        "--concurrency",
        "4",
        "--value-bytes",
        "64",
    ]);
    let report = json(&out);
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["ops_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(
        store.ok(&["count"]),
        "1\n",
        "only the session that was there before remains"
    );
    assert_eq!(store.ok(&["list"]).split('\t').next(), Some(live.trim()));
}

#[test]
fn the_store_url_can_come_from_the_environment() {
    let store = DiskStore::new();
    let run = |args: &[&str]| {
        bare()
            .env("SESSIONBANK_URL", &store.url)
            .args(args)
            .output()
            .unwrap()
    };
    let created = run(&["create", r#"{"via":"env"}"#]);
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let id = text(&created.stdout);
    assert_eq!(text(&run(&["count"]).stdout), "1\n");
    assert_eq!(
        json(&text(&run(&["get", id.trim()]).stdout)),
        json(r#"{"via":"env"}"#)
    );
    // --store wins over the environment.
    let out = bare()
        .env("SESSIONBANK_URL", &store.url)
        .args(["--store", "memory://", "count"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "0\n");
    // Neither given: a clear error naming both ways.
    assert_error(
        &bare().arg("count").output().unwrap(),
        &["--store", "SESSIONBANK_URL"],
    );
}

#[test]
fn the_store_option_may_follow_the_command() {
    let out = bare()
        .args(["count", "--store", "memory://"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "0\n", "{}", text(&out.stderr));
}

#[test]
fn help_documents_every_command_url_form_and_the_environment() {
    let out = bare().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "count",
        "list",
        "get",
        "create",
        "set",
        "destroy",
        "touch",
        "gc",
        "clear",
        "bench",
        "memory://",
        "disk:///",
        "disk:relative",
        "SESSIONBANK_URL",
        "--store",
    ] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle:?}:\n{help}"
        );
    }
    for (command, flags) in [
        ("list", &["--limit"][..]),
        ("get", &["--meta"]),
        ("create", &["--ttl", "--expires-at", "--owner"]),
        ("set", &["--ttl", "--expires-at", "--owner"]),
        ("touch", &["--ttl", "--expires-at", "--browser-session"]),
        ("clear", &["--yes"]),
        ("bench", &["--concurrency", "--seconds", "--value-bytes"]),
    ] {
        let out = bare().args([command, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        for flag in flags {
            assert!(
                help.contains(flag),
                "`{command} --help` lacks {flag}:\n{help}"
            );
        }
    }
}

#[test]
fn the_env_value_is_not_shown_in_help() {
    let out = bare()
        .env("SESSIONBANK_URL", "redis://app:hunter2@cache/0")
        .arg("--help")
        .output()
        .unwrap();
    assert!(!text(&out.stdout).contains("hunter2"));
}

#[test]
fn data_can_come_from_stdin_and_a_closed_stdout_is_not_an_error() {
    let store = DiskStore::new();
    // 300 KB: more than a pipe holds and more than one command-line argument may be.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(300_000));
    let mut child = bare()
        .args(["--store", &store.url, "create", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(big.as_bytes())
        .unwrap();
    let created = child.wait_with_output().unwrap();
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let id = text(&created.stdout);

    let mut child = bare()
        .args(["--store", &store.url, "get", id.trim()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, as `| head -c0` would
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    assert_eq!(store.ok(&["get", id.trim()]).len(), big.len() + 1);
}

#[test]
fn list_streams_several_pages_and_lists_each_session_once() {
    // Written through the library into the same directory, then listed by the binary: more
    // sessions than one page of `list` (500) holds.
    let store = DiskStore::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut written: Vec<String> = runtime.block_on(async {
        let disk = sessionbank::connect(&format!("{}?cleanup_time=off", store.url))
            .await
            .unwrap();
        let now = sessionbank::Timestamp::now();
        let record = sessionbank::Record::new(now).expiring_at(now + Duration::from_secs(3600));
        let writes = (0..1203).map(|_| {
            let disk = disk.clone();
            let record = record.clone();
            async move {
                let id = sessionbank::SessionId::generate().unwrap();
                disk.set(&id, &record).await.unwrap();
                id.as_str().to_owned()
            }
        });
        futures::future::join_all(writes).await
    });
    drop(runtime); // closes the store before the binary opens it

    let listed = store.ok(&["list"]);
    let mut ids: Vec<String> = listed
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    ids.sort();
    written.sort();
    assert_eq!(ids.len(), 1203);
    assert_eq!(ids, written);
    assert_eq!(store.ok(&["list", "--limit", "700"]).lines().count(), 700);
    assert_eq!(store.ok(&["count"]), "1203\n");
}
