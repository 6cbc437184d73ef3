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

/// The web core every adapter is glue over: the shared settings, a request's session from
/// its cookie to its response headers (`sessionbank-web`).
pub use sessionbank_web as web;

/// One row of the backend table: the backend's name, its URL schemes and the cargo feature
/// that compiles it in. Expands to the backend's own entry ([`BackendEntry::of`]) when the
/// feature is on, otherwise to [`BackendEntry::compiled_out`] with the same name and schemes,
/// so connecting names the feature to enable.
macro_rules! backend {
    ($feature:literal, $name:literal, [$($scheme:literal),+], $builder:path) => {{
        #[cfg(feature = $feature)]
        let entry = BackendEntry::of::<$builder>();
        #[cfg(not(feature = $feature))]
        let entry = BackendEntry::compiled_out($name, &[$($scheme),+], $feature);
        (entry, &[$($scheme),+] as &'static [&'static str])
    }};
}

/// The backend table, each row with the schemes as written here (for a compiled-in backend
/// the entry carries the backend's own `SCHEMES`; a test checks the two agree).
fn backend_table() -> [(BackendEntry, &'static [&'static str]); 7] {
    [
        backend!(
            "disk",
            "disk",
            ["disk"],
            sessionbank_store_disk::DiskStoreBuilder
        ),
        backend!(
            "sqlite",
            "sqlite",
            ["sqlite"],
            sessionbank_store_sqlite::SqliteStoreBuilder
        ),
        backend!(
            "postgres",
            "postgres",
            ["postgres", "postgresql"],
            sessionbank_store_postgres::PostgresStoreBuilder
        ),
        backend!(
            "mysql",
            "mysql",
            ["mysql", "mariadb"],
            sessionbank_store_mysql::MySqlStoreBuilder
        ),
        backend!(
            "redis",
            "redis",
            ["redis", "rediss", "redis+cluster", "redis+sentinel"],
            sessionbank_store_redis::RedisStoreBuilder
        ),
        backend!(
            "memcached",
            "memcached",
            ["memcached"],
            sessionbank_store_memcached::MemcachedStoreBuilder
        ),
        backend!(
            "mongodb",
            "mongodb",
            ["mongodb", "mongodb+srv"],
            sessionbank_store_mongodb::MongoStoreBuilder
        ),
    ]
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
    for (entry, _) in backend_table() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's schemes (what a build without the backend answers to) are the backend's
    /// own `SCHEMES` (what a build with it answers to), and its names are the backends' names.
    #[test]
    fn table_agrees_with_every_compiled_in_backend() {
        let mut compiled_in = 0;
        for (entry, written) in backend_table() {
            if entry.is_compiled_in() {
                compiled_in += 1;
                assert_eq!(entry.schemes(), written, "backend {}", entry.name());
            }
        }
        assert!(
            compiled_in >= 1,
            "the default build compiles in the disk store"
        );
    }
}
