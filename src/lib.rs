#![doc = include_str!("../README.md")]

pub use sessionbank_core::*;

/// Signed session cookies: the key ring and the signing formats (`sessionbank-cookie`).
pub use sessionbank_cookie as cookie;

/// The tower layer and axum extractor (`sessionbank-tower`; cargo feature `tower`).
#[cfg(feature = "tower")]
pub use sessionbank_tower as tower;

/// The actix-web middleware and extractor (`sessionbank-actix`; cargo feature `actix`).
#[cfg(feature = "actix")]
pub use sessionbank_actix as actix;

/// Sessions over plain `http` types without a framework, the mongosess API
/// (`sessionbank-http`; cargo feature `http`).
#[cfg(feature = "http")]
pub use sessionbank_http as http;

/// The entry for a backend behind a cargo feature: the backend crate's own entry when the feature
/// is on, otherwise one with the same name and schemes and no opener, so connecting names the
/// feature to enable.
macro_rules! backend {
    ($feature:literal, $name:literal, [$($scheme:literal),+], $entry:path) => {{
        #[cfg(feature = $feature)]
        let entry = $entry;
        #[cfg(not(feature = $feature))]
        let entry = BackendEntry {
            name: $name,
            schemes: &[$($scheme),+],
            feature: $feature,
            open: None,
        };
        entry
    }};
}

/// The default registry: every backend this build of sessionbank knows, compiled in or not
/// (connecting to a compiled-out one names the cargo feature to enable).
///
/// | scheme | backend | cargo feature |
/// |---|---|---|
/// | `memory://` | in-process | always |
/// | `disk://` | embedded (redb) | `disk` (default) |
/// | `sqlite://` | SQLite | `sqlite` |
/// | `postgres://`, `postgresql://` | PostgreSQL | `postgres` |
/// | `mysql://`, `mariadb://` | MySQL / MariaDB | `mysql` |
/// | `redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://` | Redis | `redis` |
/// | `memcached://` | Memcached | `memcached` |
/// | `mongodb://`, `mongodb+srv://` | MongoDB | `mongodb` |
///
/// # Examples
///
/// ```
/// let schemes = sessionbank::registry().known_schemes();
/// assert!(schemes.contains(&"memory"));
/// assert!(schemes.contains(&"disk"));
/// assert!(schemes.contains(&"redis+cluster"));
/// ```
pub fn registry() -> Registry {
    let mut registry = Registry::with_memory();
    for entry in [
        backend!(
            "disk",
            "disk",
            ["disk"],
            sessionbank_store_disk::DiskStore::REGISTRY_ENTRY
        ),
        backend!(
            "sqlite",
            "sqlite",
            ["sqlite"],
            sessionbank_store_sqlite::SqliteStore::REGISTRY_ENTRY
        ),
        backend!(
            "postgres",
            "postgres",
            ["postgres", "postgresql"],
            sessionbank_store_postgres::PostgresStore::REGISTRY_ENTRY
        ),
        backend!(
            "mysql",
            "mysql",
            ["mysql", "mariadb"],
            sessionbank_store_mysql::MySqlStore::REGISTRY_ENTRY
        ),
        backend!(
            "redis",
            "redis",
            ["redis", "rediss", "redis+sentinel", "redis+cluster"],
            sessionbank_store_redis::RedisStore::REGISTRY_ENTRY
        ),
        backend!(
            "memcached",
            "memcached",
            ["memcached"],
            sessionbank_store_memcached::MemcachedStore::REGISTRY_ENTRY
        ),
        backend!(
            "mongodb",
            "mongodb",
            ["mongodb", "mongodb+srv"],
            sessionbank_store_mongodb::MongoStore::REGISTRY_ENTRY
        ),
    ] {
        registry.register(entry);
    }
    registry
}

/// Opens the store a URL names, from the default [`registry`]: `memory://`,
/// `disk:///var/lib/app/sessions`, … The application never names a backend type.
///
/// Every URL accepts `cleanup_time` (the janitor's interval, default 45 minutes, `off` for
/// none), `browser_idle` (how long a browser session lives after its last access, default
/// one day) and `coalesce` (default `true`: concurrent requests on one session share one read
/// and one merged write, see [`Coalescing`]), plus the backend's
/// own options.
///
/// # Errors
///
/// [`ErrorKind::Config`] for a malformed URL, an unknown scheme (the message lists the known
/// ones), a compiled-out backend (the message names the cargo feature) or an unknown option;
/// otherwise the backend's connection error.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = sessionbank::connect("memory://?cleanup_time=10m").await?;
/// assert_eq!(store.backend(), "memory");
/// # Ok::<(), sessionbank::Error>(())
/// # })?;
/// # Ok::<(), sessionbank::Error>(())
/// ```
pub async fn connect(url: &str) -> Result<StoreHandle> {
    registry().connect(url).await
}
