//! URL handling of the registry: errors are clear, secrets are redacted.

use sessionbank_core::{BackendEntry, ErrorKind, Registry, redact_url};

#[tokio::test]
async fn unknown_scheme_lists_the_known_ones() {
    let err = Registry::with_memory()
        .connect("cassandra://db/x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains("cassandra") && text.contains("memory"),
        "{text}"
    );
}

#[tokio::test]
async fn compiled_out_scheme_names_the_feature() {
    let mut registry = Registry::with_memory();
    registry.register(BackendEntry {
        name: "postgres",
        schemes: &["postgres", "postgresql"],
        feature: "postgres",
        open: None,
    });
    let err = registry
        .connect("postgresql://app:s3cret@db/sessions")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = format!("{err} {err:?}");
    assert!(text.contains("feature `postgres`"), "{text}");
    assert!(!text.contains("s3cret"), "the password leaked: {text}");
    assert_eq!(
        registry.known_schemes(),
        vec!["memory", "postgres", "postgresql"]
    );
}

#[tokio::test]
async fn unknown_duplicate_and_malformed_options_are_errors() {
    let registry = Registry::with_memory();
    for (url, needle) in [
        ("memory://?colour=blue", "`colour`"),
        ("memory://?max_entries=1&max_entries=2", "more than once"),
        ("memory://?max_entries=lots", "max_entries"),
        ("memory://?cleanup_time=soon", "cleanup_time"),
        ("memory://?coalesce=sometimes", "coalesce"),
        ("memory://?browser_idle=-1", "browser_idle"),
        ("memory://somewhere/else", "no host or path"),
        ("not a url", "does not parse"),
    ] {
        let err = registry.connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
    let err = registry.connect("memory://?colour=blue").await.unwrap_err();
    assert!(
        err.to_string().contains("max_entries"),
        "names the known options: {err}"
    );
}

#[tokio::test]
async fn stores_are_coalescing_unless_the_url_says_not() {
    let registry = Registry::with_memory();
    for (url, coalescing) in [
        ("memory://", true),
        ("memory://?coalesce=true", true),
        ("memory://?coalesce=false", false),
    ] {
        let store = registry.connect(url).await.unwrap();
        let shown = format!("{:?}", store.store());
        assert_eq!(
            shown.starts_with("Coalescing"),
            coalescing,
            "{url}: {shown}"
        );
        assert_eq!(store.backend(), "memory", "{url}");
    }
}

#[tokio::test]
async fn options_reach_the_store() {
    let store = Registry::with_memory()
        .connect("memory://?max_entries=2&cleanup_time=off")
        .await
        .unwrap();
    let record = sessionbank_core::Record::new(sessionbank_core::Timestamp::now());
    for _ in 0..2 {
        store
            .set(&sessionbank_core::SessionId::generate().unwrap(), &record)
            .await
            .unwrap();
    }
    let err = store
        .set(&sessionbank_core::SessionId::generate().unwrap(), &record)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        store.length().await.unwrap(),
        2,
        "the refused session was not kept"
    );
}

#[test]
fn redaction_hides_passwords_and_secret_options() {
    let url = url::Url::parse("mysql://root:pw@127.0.0.1:3306/db?token=abc&table=s").unwrap();
    let shown = redact_url(&url);
    assert!(!shown.contains("pw@") && !shown.contains("abc"), "{shown}");
    assert!(
        shown.contains("table=s") && shown.contains("root"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_host_list_reaches_a_backend_that_takes_it_and_is_refused_by_one_that_does_not() {
    use std::sync::{Arc, Mutex};

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    fn open(
        url: &url::Url,
        options: &mut sessionbank_core::UrlOptions,
        _: &sessionbank_core::CommonOptions,
    ) -> sessionbank_core::Result<sessionbank_core::OpenFuture> {
        let mut hosts = vec![format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port().unwrap_or_default()
        )];
        hosts.extend(options.take_extra_hosts());
        hosts.push(format!("path={} user={}", url.path(), url.username()));
        *SEEN.lock().unwrap() = hosts;
        let store: Arc<dyn sessionbank_core::Store> =
            Arc::new(sessionbank_core::MemoryStore::new());
        Ok(Box::pin(async move { Ok(store) }))
    }
    let mut registry = Registry::with_memory();
    registry.register(BackendEntry {
        name: "many",
        schemes: &["many"],
        feature: "many",
        open: Some(open),
    });
    registry
        .connect("many://app:pw@h1:1,h2:2,[::1]:3/master?cleanup_time=off")
        .await
        .unwrap();
    assert_eq!(
        *SEEN.lock().unwrap(),
        ["h1:1", "h2:2", "[::1]:3", "path=/master user=app"]
    );
    fn open_single(
        _: &url::Url,
        _: &mut sessionbank_core::UrlOptions,
        _: &sessionbank_core::CommonOptions,
    ) -> sessionbank_core::Result<sessionbank_core::OpenFuture> {
        let store: Arc<dyn sessionbank_core::Store> =
            Arc::new(sessionbank_core::MemoryStore::new());
        Ok(Box::pin(async move { Ok(store) }))
    }
    registry.register(BackendEntry {
        name: "single",
        schemes: &["single"],
        feature: "single",
        open: Some(open_single),
    });
    let err = registry.connect("single://a:1,b:2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string().contains("takes one host; this URL lists 2"),
        "{err}"
    );
    let err = registry.connect("many://a:1,,b:2").await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
}
