//! `sessionbank cookie sign|verify`, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn sessionbank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionbank"))
        .args(args)
        .env_remove("SESSIONBANK_URL")
        .output()
        .expect("the sessionbank binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim_end()
        .to_owned()
}

const ID: &str = "x3Jk9_-Qa2ZzTt0pLmN8vWbC4dEfGhIj";

#[test]
fn sign_prints_what_the_node_packages_send() {
    // Vectors from cookie-signature 1.2.2 and keygrip 1.1.0 (crates/cookie/tests/node).
    let express = sessionbank(&[
        "cookie",
        "sign",
        "--format",
        "express",
        "--key",
        "new secret",
        "--key",
        "old secret",
        ID,
    ]);
    assert!(express.status.success());
    assert_eq!(
        stdout(&express),
        "connect.sid=s%3Ax3Jk9_-Qa2ZzTt0pLmN8vWbC4dEfGhIj.PFJ3TR%2FrcdS8iPd2VmIhTF%2B7hgEuWfjUTWexzCwqEO8"
    );
    let keygrip = sessionbank(&[
        "cookie",
        "sign",
        "--format",
        "keygrip",
        "--key",
        "new secret",
        ID,
    ]);
    assert_eq!(
        stdout(&keygrip),
        format!("koa.sid={ID}; koa.sid.sig=0lhbXnL-nqfh5m52SwtsNwVPzOs")
    );
    let sha256 = sessionbank(&[
        "cookie",
        "sign",
        "--format",
        "keygrip",
        "--algorithm",
        "sha256",
        "--key",
        "new secret",
        ID,
    ]);
    assert_eq!(
        stdout(&sha256),
        format!("koa.sid={ID}; koa.sid.sig=jV7wouFnDb8C0J7cYNR2slpilxfHEGpbiKXYiIycUZ8")
    );
}

#[test]
fn verify_accepts_good_signatures_and_rejects_tampered_ones_for_every_format() {
    let native_key = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"; // 36 bytes
    for (format, key, name) in [
        ("native", native_key, "id"),
        ("express", "keyboard cat", "connect.sid"),
        ("keygrip", "keyboard cat", "koa.sid"),
    ] {
        let signed = sessionbank(&["cookie", "sign", "--format", format, "--key", key, ID]);
        assert!(signed.status.success(), "{format}");
        let header = stdout(&signed);
        assert!(
            header.starts_with(&format!("{name}=")),
            "{format}: {header}"
        );

        let ok = sessionbank(&[
            "cookie", "verify", "--format", format, "--key", key, &header,
        ]);
        assert_eq!(ok.status.code(), Some(0), "{format}");
        assert_eq!(stdout(&ok), ID);

        // Change one character of the signature (the header's last character).
        let mut tampered = header.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let bad = sessionbank(&[
            "cookie", "verify", "--format", format, "--key", key, &tampered,
        ]);
        assert_eq!(
            bad.status.code(),
            Some(1),
            "{format}: a tampered cookie must not verify"
        );
        assert!(
            stdout(&bad).is_empty(),
            "nothing on stdout when it does not verify"
        );

        // Another id under the same signature.
        let swapped = header.replacen(ID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1);
        let bad = sessionbank(&[
            "cookie", "verify", "--format", format, "--key", key, &swapped,
        ]);
        assert_eq!(
            bad.status.code(),
            Some(1),
            "{format}: a swapped id must not verify"
        );

        let missing = sessionbank(&[
            "cookie", "verify", "--format", format, "--key", key, "other=1",
        ]);
        assert_eq!(
            missing.status.code(),
            Some(1),
            "{format}: no session cookie"
        );
    }
}

#[test]
fn an_old_key_still_verifies_and_says_so() {
    let old = stdout(&sessionbank(&[
        "cookie",
        "sign",
        "--format",
        "express",
        "--key",
        "old secret",
        ID,
    ]));
    let out = sessionbank(&[
        "cookie",
        "verify",
        "--format",
        "express",
        "--key",
        "new secret",
        "--key",
        "old secret",
        &old,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), ID);
    assert!(String::from_utf8_lossy(&out.stderr).contains("older key"));
    let retired = sessionbank(&[
        "cookie",
        "verify",
        "--format",
        "express",
        "--key",
        "new secret",
        &old,
    ]);
    assert_eq!(
        retired.status.code(),
        Some(1),
        "a retired key no longer verifies"
    );
}

#[test]
fn bad_keys_and_ids_are_errors_not_verdicts() {
    let short = sessionbank(&["cookie", "sign", "--key", "c2hvcnQ=", ID]);
    assert_eq!(
        short.status.code(),
        Some(2),
        "a native key under 32 bytes is refused"
    );
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("--key number 1") && !stderr.contains("c2hvcnQ"),
        "{stderr}"
    );
    let bad_id = sessionbank(&[
        "cookie",
        "sign",
        "--format",
        "express",
        "--key",
        "k",
        "not-an-id",
    ]);
    assert_eq!(bad_id.status.code(), Some(2));
    let no_key = sessionbank(&["cookie", "sign", ID]);
    assert_eq!(no_key.status.code(), Some(2), "--key is required");
    let help = stdout(&sessionbank(&["cookie", "--help"]));
    assert!(help.contains("sign") && help.contains("verify"), "{help}");
}

#[test]
fn ids_that_start_with_a_hyphen_are_ids_not_flags() {
    // About one id in 32 starts with '-' (base64url).
    let id = "-J3k9_-Qa2ZzTt0pLmN8vWbC4dEfGhIj";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("disk:{}", dir.path().join("s").display());
    let set = Command::new(env!("CARGO_BIN_EXE_sessionbank"))
        .args(["--store", &url, "set", id, r#"{"a":1}"#, "--ttl", "1m"])
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let get = sessionbank(&["--store", &url, "get", id]);
    assert_eq!(
        stdout(&get),
        r#"{"a":1}"#,
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    let signed = sessionbank(&["cookie", "sign", "--format", "keygrip", "--key", "k", id]);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
}
