//! The shared conformance suite against a real Redis server that speaks only TLS
//! (`rediss://…?tls_ca=…`, a CA and a server certificate for 127.0.0.1 made here with rcgen),
//! plus the ways TLS goes wrong: an untrusted certificate is a `Config` error, and a plain
//! `redis://` client on the TLS port fails with `Unavailable`/`Timeout` in bounded time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sessionbank_core::{ErrorKind, Record, Registry, SessionId, Store, StoreHandle, Timestamp};
use sessionbank_store_redis::RedisStore;
use sessionbank_testkit::servers::redis::{RedisServer, TlsPems};
use sessionbank_testkit::{Conformance, Namespace, random_name};

/// A new CA, and a certificate for 127.0.0.1 that it signed.
fn make_pems(ca_name: &str) -> anyhow::Result<TlsPems> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca_params, ca_key);
    let server_cert = server_params.signed_by(&server_key, &issuer)?;
    Ok(TlsPems {
        ca_cert: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
    })
}

fn async_trial<F>(name: &str, f: impl FnOnce() -> F + Send + 'static) -> libtest_mimic::Trial
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    libtest_mimic::Trial::test(format!("redis_tls::{name}"), move || {
        common::block_on(f()).map_err(|e| libtest_mimic::Failed::from(format!("{e:#}")))
    })
}

/// The store round-trips a session over TLS, through the registry too.
async fn trusted_ca_connects(url: String, ca: String) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<
        sessionbank_store_redis::RedisStoreBuilder,
    >());
    let prefix = format!("sbtls:{}:", random_name());
    let handle = registry
        .connect(&format!("{url}?tls_ca={ca}&prefix={prefix}"))
        .await
        .map_err(|e| anyhow!("{}", e.chain()))?;
    let id = SessionId::generate()?;
    handle.set(&id, &Record::new(Timestamp::now())).await?;
    ensure!(handle.get(&id).await?.is_some(), "the session reads back");
    ensure!(handle.length().await? == 1);
    handle.clear().await?;
    Ok(())
}

/// A CA the server's certificate does not chain to, a CA file without certificates, the system
/// roots (which know nothing of this private CA), or the right CA but another host name: a
/// `Config` error that says so, in bounded time.
async fn untrusted_certificate_is_config(
    url: String,
    ca: String,
    dir: &Path,
) -> anyhow::Result<()> {
    let other = make_pems("sessionbank other CA")?;
    let wrong = dir.join("wrong-ca.pem");
    std::fs::write(&wrong, other.ca_cert)?;
    let garbage = dir.join("not-a-ca.pem");
    std::fs::write(&garbage, "not a certificate\n")?;
    // The right CA, but the certificate names 127.0.0.1, not localhost.
    let by_name = url.replace("127.0.0.1", "localhost");
    for candidate in [
        format!("{url}?tls_ca={}&connect_timeout=2s", wrong.display()),
        format!("{url}?tls_ca={}&connect_timeout=2s", garbage.display()),
        format!("{url}?connect_timeout=2s"),
        format!("{by_name}?tls_ca={ca}&connect_timeout=2s"),
    ] {
        let started = Instant::now();
        let err = RedisStore::connect(&candidate)
            .await
            .err()
            .with_context(|| format!("{candidate}: an untrusted certificate must fail"))?;
        ensure!(
            err.kind() == ErrorKind::Config,
            "{candidate}: got {}",
            err.chain()
        );
        ensure!(
            err.to_string().contains("TLS certificate"),
            "the message names the cause: {}",
            err.chain()
        );
        ensure!(
            started.elapsed() < Duration::from_secs(20),
            "failed in {:?}",
            started.elapsed()
        );
    }
    Ok(())
}

/// `tls_insecure=true` skips the certificate check: it connects without the CA.
async fn insecure_skips_the_check(url: String) -> anyhow::Result<()> {
    let store = RedisStore::connect(&format!(
        "{url}?tls_insecure=true&prefix=sbtlsi:{}:",
        random_name()
    ))
    .await
    .map_err(|e| anyhow!("{}", e.chain()))?;
    let id = SessionId::generate()?;
    store.set(&id, &Record::new(Timestamp::now())).await?;
    ensure!(store.get(&id).await?.is_some());
    store.clear().await?;
    Ok(())
}

/// A plain-text client on the TLS-only port: the server drops it; no hang.
async fn plain_client_on_tls_port_fails(port: u16) -> anyhow::Result<()> {
    let url = format!("redis://127.0.0.1:{port}/0?connect_timeout=1s&response_timeout=1s");
    let started = Instant::now();
    let err = RedisStore::connect(&url)
        .await
        .err()
        .context("redis:// against a TLS port must fail")?;
    ensure!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "got {}",
        err.chain()
    );
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "failed in {:?}",
        started.elapsed()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let pems = match make_pems("sessionbank test CA") {
        Ok(pems) => pems,
        Err(e) => panic!("cannot make the test certificates: {e:#}"),
    };
    let server = RedisServer::start_tls(&pems);
    let url = server.url();
    let ca = server
        .ca_path()
        .unwrap_or_else(|| panic!("a TLS server has a CA file"))
        .display()
        .to_string();
    let dir = server.guard().dir().to_path_buf();
    let port = server.port();
    let tests = vec![
        {
            let (url, ca) = (url.clone(), ca.clone());
            async_trial("a_trusted_ca_connects_through_the_registry", move || {
                trusted_ca_connects(url, ca)
            })
        },
        {
            let (url, ca) = (url.clone(), ca.clone());
            async_trial(
                "an_untrusted_certificate_is_a_config_error",
                move || async move { untrusted_certificate_is_config(url, ca, &dir).await },
            )
        },
        {
            let url = url.clone();
            async_trial("tls_insecure_skips_the_certificate_check", move || {
                insecure_skips_the_check(url)
            })
        },
        async_trial(
            "a_plain_client_on_the_tls_port_fails_without_hanging",
            move || plain_client_on_tls_port_fails(port),
        ),
    ];
    let code = Conformance::new()
        .backend("redis_tls", move |ns: Namespace| {
            let url = format!("{url}?tls_ca={ca}&prefix=sbtest:{}:", ns.name);
            async move {
                let store = RedisStore::connect(&url).await?;
                Ok(StoreHandle::new(store))
            }
        })
        .with_tests(tests)
        .run();
    drop(server);
    code
}
