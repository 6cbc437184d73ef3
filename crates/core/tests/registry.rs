//! URL handling of the registry: errors are clear, secrets are redacted.

use futures::future::BoxFuture;
use sessionbank_core::{
    BackendEntry, ErrorKind, FromStoreUrl, MemoryStore, MemoryStoreBuilder, Registry, StoreUrl,
    parse_builder, redact_url,
};

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
    registry.register(BackendEntry::compiled_out(
        "postgres",
        &["postgres", "postgresql"],
        "postgres",
    ));
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

/// A test backend that records the hosts it was given, and opens a memory store.
struct Many;

static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl FromStoreUrl for Many {
    type Store = MemoryStore;
    const BACKEND: &'static str = "many";
    const SCHEMES: &'static [&'static str] = &["many"];

    fn from_url(url: &mut StoreUrl) -> sessionbank_core::Result<Self> {
        let parsed = url.url().clone();
        let mut hosts = vec![format!(
            "{}:{}",
            parsed.host_str().unwrap_or_default(),
            parsed.port().unwrap_or_default()
        )];
        hosts.extend(url.take_extra_hosts());
        hosts.push(format!("path={} user={}", parsed.path(), parsed.username()));
        *SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hosts;
        Ok(Many)
    }

    fn open_store(self) -> BoxFuture<'static, sessionbank_core::Result<MemoryStore>> {
        Box::pin(async { Ok(MemoryStore::new()) })
    }
}

/// A test backend that takes one host.
struct Single;

impl FromStoreUrl for Single {
    type Store = MemoryStore;
    const BACKEND: &'static str = "single";
    const SCHEMES: &'static [&'static str] = &["single"];

    fn from_url(_: &mut StoreUrl) -> sessionbank_core::Result<Self> {
        Ok(Single)
    }

    fn open_store(self) -> BoxFuture<'static, sessionbank_core::Result<MemoryStore>> {
        Box::pin(async { Ok(MemoryStore::new()) })
    }
}

#[tokio::test]
async fn a_host_list_reaches_a_backend_that_takes_it_and_is_refused_by_one_that_does_not() {
    let mut registry = Registry::with_memory();
    registry.register(BackendEntry::of::<Many>());
    registry
        .connect("many://app:pw@h1:1,h2:2,[::1]:3/master?cleanup_time=off")
        .await
        .unwrap();
    assert_eq!(
        *SEEN.lock().unwrap(),
        ["h1:1", "h2:2", "[::1]:3", "path=/master user=app"]
    );
    registry.register(BackendEntry::of::<Single>());
    let err = registry.connect("single://a:1,b:2").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string().contains("takes one host; this URL lists 2"),
        "{err}"
    );
    let err = registry.connect("many://a:1,,b:2").await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[test]
fn a_store_opened_directly_refuses_the_registry_options_by_name() {
    for option in ["cleanup_time=off", "coalesce=false"] {
        let url = format!("memory://?{option}");
        let err = parse_builder::<MemoryStoreBuilder>(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        let name = option.split('=').next().unwrap_or_default();
        assert!(
            err.to_string().contains(name) && err.to_string().contains("registry"),
            "{url}: {err}"
        );
    }
    assert!(parse_builder::<MemoryStoreBuilder>("memory://?browser_idle=2h").is_ok());
}

#[test]
fn numbers_and_durations_out_of_range_are_config_errors_naming_the_option() {
    for (url, needle) in [
        ("memory://?max_entries=0", "max_entries"),
        ("memory://?max_entries=18446744073709551616", "max_entries"),
        ("memory://?browser_idle=580000000000y", "browser_idle"),
    ] {
        let err = parse_builder::<MemoryStoreBuilder>(url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

/// `cleanup_time=580000000000y` once panicked inside the janitor (cleanup then silently never
/// ran again); now every duration is bounded, and the registry's own options say so by name.
#[tokio::test]
async fn registry_durations_out_of_range_are_config_errors_not_janitor_panics() {
    let registry = Registry::with_memory();
    for (url, needle) in [
        ("memory://?cleanup_time=580000000000y", "cleanup_time"),
        (
            "memory://?cleanup_time=18446744073709551615ms",
            "cleanup_time",
        ),
    ] {
        let err = registry.connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
    let store = registry
        .connect("memory://?cleanup_time=99y")
        .await
        .unwrap();
    assert_eq!(store.backend(), "memory");
}
