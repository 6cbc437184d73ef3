//! The PostgreSQL store's own tests: the seed's options and table shape, setup errors, hostile
//! names, time zones, concurrent cleaners, and a server that goes away.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use libtest_mimic::{Failed, Trial};
use serde_json::json;
use sessionbank_core::{
    Data, ErrorKind, Patch, Record, Registry, SessionId, Store, StoreHandle, Timestamp,
};
use sessionbank_store_postgres::{Layout, PostgresStore, PostgresStoreBuilder};
use sessionbank_testkit::random_name;
use sessionbank_testkit::servers::postgres::PostgresServer;

type TestFn = fn(String) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        const TESTS: &[(&str, TestFn)] = &[$((stringify!($name), |url| Box::pin($name(url)))),*];
    };
}

tests![
    options_come_from_the_url,
    cleanup_time_from_the_url_drives_the_janitor,
    create_false_refuses_a_missing_table,
    builder_options_and_schema,
    the_seeds_table_shape_works_with_layout_koa,
    a_native_store_on_a_koa_table_says_so,
    a_missing_or_wrongly_typed_column_is_named,
    an_id_without_unique_index_is_refused,
    extra_columns_are_fine,
    hostile_identifiers_never_reach_sql,
    a_non_utc_time_zone_shifts_no_expiry,
    a_server_started_in_another_time_zone_shifts_no_expiry,
    two_stores_cleaning_at_once_neither_fail_nor_deadlock,
    operations_before_setup_wait_for_it,
    a_pool_from_the_application_works,
    a_config_struct_works,
    a_server_that_goes_away_gives_unavailable,
    killed_connections_are_replaced,
    update_merges_in_one_statement_and_never_resurrects,
    secrets_stay_out_of_errors,
    extreme_times_are_refused_or_clamped_never_a_panic,
];

/// The tests, as trials named `postgres::own::<name>`.
pub(crate) fn tests(url: &str) -> Vec<Trial> {
    TESTS
        .iter()
        .map(|(name, test)| {
            let url = url.to_owned();
            let test = *test;
            Trial::test(format!("postgres::own::{name}"), move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| Failed::from(format!("runtime: {e}")))?;
                runtime
                    .block_on(async move {
                        match tokio::time::timeout(Duration::from_secs(120), test(url)).await {
                            Ok(result) => result,
                            Err(_) => Err(anyhow!("the test did not finish within 120 s")),
                        }
                    })
                    .map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect()
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(sessionbank_core::BackendEntry::of::<PostgresStoreBuilder>());
    registry
}

/// A plain driver connection for checking what the store wrote.
async fn raw(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("raw connect")?;
    tokio::spawn(connection);
    Ok(client)
}

fn with_query(url: &str, query: &str) -> String {
    format!("{url}?{query}")
}

fn record(ttl: Duration) -> Record {
    let now = Timestamp::now();
    Record::new(now)
        .with_data(Data::from_value(json!({"user": "ada", "n": 1})).unwrap_or_default())
        .expiring_at(now + ttl)
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

fn id() -> anyhow::Result<SessionId> {
    Ok(SessionId::generate()?)
}

async fn table_exists(client: &tokio_postgres::Client, schema: &str, table: &str) -> bool {
    client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            &[&schema, &table],
        )
        .await
        .map(|r| r.get::<_, i64>(0) == 1)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------

async fn options_come_from_the_url(url: String) -> anyhow::Result<()> {
    let schema = random_name();
    let table = random_name();
    let handle = registry()
        .connect(&with_query(
            &url,
            &format!("schema={schema}&table={table}&create=true&cleanup_time=10m"),
        ))
        .await?;
    ensure!(handle.backend() == "postgres");
    ensure!(handle.janitor().is_some(), "cleanup_time starts a janitor");
    let client = raw(&url).await?;
    ensure!(
        table_exists(&client, &schema, &table).await,
        "create=true made {schema}.{table}"
    );
    let id = id()?;
    handle.set(&id, &record(hour())).await?;
    let n: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".\"{table}\""),
            &[],
        )
        .await?
        .get(0);
    ensure!(
        n == 1,
        "the session went to the configured schema and table"
    );
    let off = registry()
        .connect(&with_query(
            &url,
            &format!("schema={schema}&table={table}&create=false&cleanup_time=off"),
        ))
        .await?;
    ensure!(off.janitor().is_none(), "cleanup_time=off starts none");
    ensure!(
        off.get(&id).await?.is_some(),
        "a second store sees the session"
    );
    let err = registry()
        .connect(&with_query(&url, "table=x&colour=blue"))
        .await
        .err()
        .context("an unknown option must fail")?;
    ensure!(err.kind() == ErrorKind::Config && err.to_string().contains("colour"));
    Ok(())
}

async fn cleanup_time_from_the_url_drives_the_janitor(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let handle = registry()
        .connect(&with_query(
            &url,
            &format!("table={table}&cleanup_time=200"),
        ))
        .await?;
    let dead = id()?;
    let mut expired = record(hour());
    expired.expires_at = Some(Timestamp::now() - Duration::from_secs(60));
    handle.set(&dead, &expired).await?;
    let live = id()?;
    handle.set(&live, &record(hour())).await?;
    let client = raw(&url).await?;
    let janitor = handle.janitor().context("a janitor runs")?;
    let started = Instant::now();
    loop {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await?
            .get(0);
        // The row goes when cleanup commits; the janitor counts it when cleanup returns.
        if rows == 1 && janitor.removed() >= 1 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the janitor (every 200 ms) did not remove the expired row"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(handle.get(&live).await?.is_some());
    Ok(())
}

async fn create_false_refuses_a_missing_table(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let err = registry()
        .connect(&with_query(&url, &format!("table={table}&create=false")))
        .await
        .err()
        .context("create=false on a missing table must fail")?;
    ensure!(err.kind() == ErrorKind::Config, "{}", err.chain());
    ensure!(
        err.to_string().contains(&table) && err.to_string().contains("create"),
        "{err}"
    );
    ensure!(
        !table_exists(&raw(&url).await?, "public", &table).await,
        "nothing was created"
    );
    Ok(())
}

async fn builder_options_and_schema(url: String) -> anyhow::Result<()> {
    let schema = random_name();
    let table = random_name();
    let store = PostgresStoreBuilder::parse(&url)?
        .schema(&schema)
        .table(&table)
        .create(true)
        .browser_idle(Duration::from_secs(60))
        .pool_size(2)
        .open()
        .await?;
    ensure!(store.is_ready());
    ensure!(table_exists(&raw(&url).await?, &schema, &table).await);
    // browser_idle from the builder: a browser session idle for two minutes is gone.
    let now = Timestamp::now();
    let stale = id()?;
    let mut old = Record::new(now - Duration::from_secs(600));
    old.last_access = now - Duration::from_secs(120);
    store.set(&stale, &old).await?;
    ensure!(store.get(&stale).await?.is_none(), "idle past browser_idle");
    let fresh = id()?;
    store.set(&fresh, &Record::new(now)).await?;
    ensure!(store.get(&fresh).await?.is_some());
    ensure!(store.cleanup().await? == 1);
    Ok(())
}

/// The seed's DDL, verbatim but for the table name.
fn koa_ddl(schema: &str, table: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; CREATE TABLE IF NOT EXISTS \"{schema}\".\"{table}\" (\
         id TEXT NOT NULL PRIMARY KEY, expiry timestamp NOT NULL, session JSON)"
    )
}

async fn the_seeds_table_shape_works_with_layout_koa(url: String) -> anyhow::Result<()> {
    let schema = "__koa_pg_session_test";
    let table = random_name();
    let client = raw(&url).await?;
    client.batch_execute(&koa_ddl(schema, &table)).await?;
    // A row as koa-pg-session writes it: to_timestamp(seconds) into the timestamp column.
    let koa_id = id()?;
    let expiry_ms = Timestamp::now().as_millis() + 3_600_000;
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".\"{table}\" (id, expiry, session) VALUES ($1, to_timestamp($2::float8 / 1000), $3)"
            ),
            &[
                &koa_id.as_str(),
                &(expiry_ms as f64),
                &tokio_postgres::types::Json(json!({"counter": 7, "cookie": {"maxAge": 3600000}})),
            ],
        )
        .await?;
    let store = registry()
        .connect(&with_query(
            &url,
            &format!("schema={schema}&table={table}&create=false&layout=koa"),
        ))
        .await?;
    ensure!(!store.capabilities().owner_index, "no owner column");
    let back = store.get(&koa_id).await?.context("koa's row reads")?;
    ensure!(back.data["counter"] == json!(7), "{:?}", back.data);
    ensure!(
        back.expires_at == Some(Timestamp::from_millis(expiry_ms)),
        "expiry {:?} vs {:?}",
        back.expires_at,
        Timestamp::from_millis(expiry_ms)
    );
    // Writes that koa-pg-session can read back: expiry in the timestamp column, data as JSON.
    let ours = id()?;
    let rec = record(hour());
    store.set(&ours, &rec).await?;
    store
        .update(&ours, &Patch::new().set("x", json!(1)).unset("n"))
        .await?;
    let row = client
        .query_one(
            &format!(
                "SELECT session::text, extract(epoch from expiry::timestamptz)::float8 * 1000 \
                 FROM \"{schema}\".\"{table}\" WHERE id = $1 AND expiry >= to_timestamp($2::float8 / 1000)"
            ),
            &[&ours.as_str(), &(Timestamp::now().as_millis() as f64)],
        )
        .await?;
    let session: serde_json::Value = serde_json::from_str(&row.get::<_, String>(0))?;
    ensure!(session == json!({"user": "ada", "x": 1}), "{session}");
    let expiry: f64 = row.get(1);
    ensure!(
        (expiry - rec.expires_at.map(|t| t.as_millis()).unwrap_or(0) as f64).abs() < 1.0,
        "expiry {expiry}"
    );
    // Expired rows are hidden, and cleanup removes them.
    let dead = id()?;
    let mut expired = record(hour());
    expired.expires_at = Some(Timestamp::now() - Duration::from_secs(60));
    store.set(&dead, &expired).await?;
    ensure!(store.get(&dead).await?.is_none());
    ensure!(store.cleanup().await? == 1);
    ensure!(store.length().await? == 2);
    let new = id()?;
    store.rename(&ours, &new).await?;
    ensure!(store.get(&ours).await?.is_none() && store.get(&new).await?.is_some());
    store.destroy(&new).await?;
    ensure!(store.get(&new).await?.is_none());
    ensure!(
        store.owned_by("ada").await.err().map(|e| e.kind()) == Some(ErrorKind::Unsupported),
        "owner index: Unsupported"
    );
    client
        .batch_execute(&format!("DROP TABLE \"{schema}\".\"{table}\""))
        .await?;
    Ok(())
}

async fn a_native_store_on_a_koa_table_says_so(url: String) -> anyhow::Result<()> {
    let table = random_name();
    raw(&url)
        .await?
        .batch_execute(&koa_ddl("public", &table))
        .await?;
    let err = registry()
        .connect(&with_query(&url, &format!("table={table}")))
        .await
        .err()
        .context("the native layout on a koa table must fail")?;
    ensure!(err.kind() == ErrorKind::Config);
    ensure!(err.to_string().contains("layout=koa"), "{err}");
    Ok(())
}

async fn a_missing_or_wrongly_typed_column_is_named(url: String) -> anyhow::Result<()> {
    let client = raw(&url).await?;
    let missing = random_name();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{missing}\" (id text PRIMARY KEY, data jsonb NOT NULL, expiry timestamptz NOT NULL, \
             expires_at timestamptz, created_at timestamptz NOT NULL, last_access timestamptz NOT NULL)"
        ))
        .await?;
    let err = PostgresStoreBuilder::parse(&url)?
        .table(&missing)
        .open()
        .await
        .err()
        .context("a missing column must fail")?;
    ensure!(err.kind() == ErrorKind::Config);
    ensure!(
        err.to_string()
            .contains("has no column `owner`; the native layout expects `owner text`"),
        "{err}"
    );
    let wrong = random_name();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{wrong}\" (id text PRIMARY KEY, data json NOT NULL, expiry timestamptz NOT NULL, \
             expires_at timestamptz, created_at timestamptz NOT NULL, last_access timestamptz NOT NULL, owner text)"
        ))
        .await?;
    let err = PostgresStoreBuilder::parse(&url)?
        .table(&wrong)
        .open()
        .await
        .err()
        .context("a wrongly typed column must fail")?;
    ensure!(
        err.to_string().contains("column `data` of public.")
            && err
                .to_string()
                .contains("has type json; the native layout expects `data jsonb`"),
        "{err}"
    );
    let koa = random_name();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{koa}\" (id TEXT NOT NULL PRIMARY KEY, expiry timestamptz NOT NULL, session JSON)"
        ))
        .await?;
    let err = registry()
        .connect(&with_query(&url, &format!("table={koa}&layout=koa")))
        .await
        .err()
        .context("koa layout with a timestamptz expiry must fail")?;
    ensure!(
        err.to_string().contains("column `expiry` of public.")
            && err
                .to_string()
                .contains("the koa layout expects `expiry timestamp`"),
        "{err}"
    );
    Ok(())
}

async fn an_id_without_unique_index_is_refused(url: String) -> anyhow::Result<()> {
    let table = random_name();
    raw(&url)
        .await?
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (id text, expiry timestamp NOT NULL, session json)"
        ))
        .await?;
    let err = registry()
        .connect(&with_query(&url, &format!("table={table}&layout=koa")))
        .await
        .err()
        .context("an id without a unique index must fail")?;
    ensure!(
        err.to_string().contains("`id`") && err.to_string().contains("PRIMARY KEY"),
        "{err}"
    );
    Ok(())
}

async fn extra_columns_are_fine(url: String) -> anyhow::Result<()> {
    let table = random_name();
    raw(&url)
        .await?
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (id character varying PRIMARY KEY, data jsonb NOT NULL, \
             expiry timestamptz NOT NULL, expires_at timestamptz, created_at timestamptz NOT NULL, \
             last_access timestamptz NOT NULL, owner text, tenant text DEFAULT 'acme', note int)"
        ))
        .await?;
    let store = PostgresStoreBuilder::parse(&url)?
        .table(&table)
        .create(false)
        .open()
        .await?;
    let id = id()?;
    let rec = record(hour()).owned_by("ada");
    store.set(&id, &rec).await?;
    ensure!(store.get(&id).await? == Some(rec));
    Ok(())
}

async fn hostile_identifiers_never_reach_sql(url: String) -> anyhow::Result<()> {
    let long = "a".repeat(200);
    let hostile = [
        "a\"b",
        "x\"; DROP TABLE pg_class; --",
        "s;t",
        "",
        long.as_str(),
        "has space",
        "1starts_with_digit",
    ];
    let client = raw(&url).await?;
    let tables_before: i64 = client
        .query_one("SELECT count(*) FROM pg_tables", &[])
        .await?
        .get(0);
    for name in hostile {
        for (schema, table) in [("public", name), (name, "session")] {
            // Through the builder: refused before any connection is made.
            let err = PostgresStoreBuilder::parse(&url)?
                .schema(schema)
                .table(table)
                .open()
                .await
                .err()
                .with_context(|| format!("{name:?} must be refused"))?;
            ensure!(
                err.kind() == ErrorKind::InvalidInput,
                "{name:?}: {}",
                err.chain()
            );
            ensure!(
                !err.to_string().contains(name) || name.is_empty(),
                "the message does not echo the name"
            );
            // Through a URL.
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("schema", schema)
                .append_pair("table", table)
                .finish();
            let err = registry()
                .connect(&with_query(&url, &query))
                .await
                .err()
                .with_context(|| format!("{name:?} in a URL must be refused"))?;
            ensure!(
                err.kind() == ErrorKind::InvalidInput,
                "{name:?}: {}",
                err.chain()
            );
        }
    }
    // And against a closed port the error is still InvalidInput: no connection was tried.
    let closed = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        sessionbank_testkit::servers::free_port()
    );
    let err = PostgresStoreBuilder::parse(&closed)?
        .table("a;b")
        .open()
        .await
        .err()
        .context("refused")?;
    ensure!(err.kind() == ErrorKind::InvalidInput);
    let tables_after: i64 = client
        .query_one("SELECT count(*) FROM pg_tables", &[])
        .await?
        .get(0);
    ensure!(tables_before <= tables_after, "pg_class is intact");
    Ok(())
}

async fn time_zone_check(utc_url: &str, other_url: &str, table: &str) -> anyhow::Result<()> {
    let other = PostgresStoreBuilder::parse(other_url)?
        .table(table)
        .open()
        .await?;
    let utc = PostgresStoreBuilder::parse(utc_url)?
        .table(table)
        .open()
        .await?;
    let client = raw(other_url).await?;
    let tz: String = client.query_one("SHOW TimeZone", &[]).await?.get(0);
    ensure!(tz != "UTC", "the connection runs in {tz}");
    // Written in one zone, read in the other: the same instants.
    let a = id()?;
    let rec_a = record(hour());
    other.set(&a, &rec_a).await?;
    ensure!(utc.get(&a).await? == Some(rec_a.clone()), "read in UTC");
    ensure!(other.get(&a).await? == Some(rec_a), "read in {tz}");
    let b = id()?;
    let rec_b = record(2 * hour());
    utc.set(&b, &rec_b).await?;
    ensure!(
        other.get(&b).await? == Some(rec_b),
        "written in UTC, read in {tz}"
    );
    // A short lifetime is live now and gone after it (a shift of hours would show either way).
    // 8 s leaves a loaded machine room between the create and the first reads.
    let short = id()?;
    let now = Timestamp::now();
    let lifetime = Duration::from_secs(8);
    other
        .create(&short, &Record::new(now).expiring_at(now + lifetime))
        .await?;
    ensure!(other.get(&short).await?.is_some() && utc.get(&short).await?.is_some());
    let left = (now + lifetime).duration_since(Timestamp::now());
    tokio::time::sleep(left + Duration::from_millis(500)).await;
    ensure!(other.get(&short).await?.is_none() && utc.get(&short).await?.is_none());
    ensure!(
        other.cleanup().await? == 1,
        "cleanup in {tz} removes exactly the expired one"
    );
    // The raw value is the instant written.
    let stored: std::time::SystemTime = client
        .query_one(
            &format!("SELECT expiry FROM \"{table}\" WHERE id = $1"),
            &[&a.as_str()],
        )
        .await?
        .get(0);
    ensure!(
        Timestamp::from_system_time(stored)
            == other
                .get(&a)
                .await?
                .and_then(|r| r.expires_at)
                .unwrap_or(Timestamp::from_millis(0)),
        "the stored expiry is the instant"
    );
    Ok(())
}

async fn a_non_utc_time_zone_shifts_no_expiry(url: String) -> anyhow::Result<()> {
    // `options` is passed to the server at connect, as `SET TIME ZONE` would be; tokio-postgres
    // reads the same query key, so the raw client in the check runs in that zone too.
    let kiritimati = with_query(&url, "options=-c%20TimeZone%3DPacific%2FKiritimati");
    let utc = with_query(&url, "options=-c%20TimeZone%3DUTC");
    time_zone_check(&utc, &kiritimati, &random_name()).await
}

async fn a_server_started_in_another_time_zone_shifts_no_expiry(
    _url: String,
) -> anyhow::Result<()> {
    let server = tokio::task::spawn_blocking(|| {
        PostgresServer::start_with(&["timezone=Pacific/Kiritimati"])
    })
    .await?;
    let table = random_name();
    let utc = with_query(&server.url(), "options=-c%20TimeZone%3DUTC");
    let result = time_zone_check(&utc, &server.url(), &table).await;
    tokio::task::spawn_blocking(move || drop(server)).await?;
    result
}

async fn two_stores_cleaning_at_once_neither_fail_nor_deadlock(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let a = PostgresStoreBuilder::parse(&url)?
        .table(&table)
        .pool_size(2)
        .open()
        .await?;
    let b = PostgresStoreBuilder::parse(&url)?
        .table(&table)
        .pool_size(2)
        .open()
        .await?;
    let client = raw(&url).await?;
    let expired = 6_500i64;
    client
        .execute(
            &format!(
                "INSERT INTO \"{table}\" (id, data, expiry, expires_at, created_at, last_access) \
                 SELECT 'dead' || g, '{{}}', now() - interval '1 hour' + g * interval '1 ms', \
                 now() - interval '1 hour', now() - interval '2 hours', now() - interval '2 hours' \
                 FROM generate_series(1, $1::bigint) g"
            ),
            &[&expired],
        )
        .await?;
    let live: Vec<SessionId> = (0..20).map(|_| id()).collect::<anyhow::Result<_>>()?;
    for id in &live {
        a.set(id, &record(hour())).await?;
    }
    let mut removed = 0u64;
    for _ in 0..3 {
        let (ra, rb, rc, rd) = tokio::join!(a.cleanup(), b.cleanup(), a.cleanup(), b.cleanup());
        removed += ra? + rb? + rc? + rd?;
    }
    ensure!(
        removed == expired.unsigned_abs(),
        "removed {removed} of {expired}"
    );
    ensure!(a.length().await? == 20);
    for id in &live {
        ensure!(b.get(id).await?.is_some());
    }
    let left: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await?
        .get(0);
    ensure!(left == 20, "{left} rows left");
    Ok(())
}

async fn operations_before_setup_wait_for_it(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let store = PostgresStoreBuilder::parse(&url)?.table(&table).build()?;
    ensure!(!store.is_ready());
    let ids: Vec<SessionId> = (0..16).map(|_| id()).collect::<anyhow::Result<_>>()?;
    let writes = ids.iter().map(|id| {
        let store = store.clone();
        let id = *id;
        async move { store.create(&id, &record(hour())).await }
    });
    for result in futures::future::join_all(writes).await {
        result?;
    }
    ensure!(store.is_ready());
    ensure!(store.length().await? == 16, "no session was lost");
    // Setup again is a no-op.
    store.setup().await?;
    Ok(())
}

async fn a_pool_from_the_application_works(url: String) -> anyhow::Result<()> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(2)
        .build()?;
    let table = random_name();
    let store = PostgresStore::builder_from_pool(pool.clone())
        .table(&table)
        .open()
        .await?;
    let id = id()?;
    store.set(&id, &record(hour())).await?;
    ensure!(store.get(&id).await?.is_some());
    // The application's own queries keep working on the same pool.
    let client = pool.get().await?;
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await?
        .get(0);
    ensure!(n == 1);
    Ok(())
}

async fn a_config_struct_works(url: String) -> anyhow::Result<()> {
    let config: tokio_postgres::Config = url.parse()?;
    let table = random_name();
    let store = PostgresStore::builder(config).table(&table).open().await?;
    let handle = StoreHandle::new(store);
    let id = id()?;
    handle.set(&id, &record(hour())).await?;
    ensure!(handle.get(&id).await?.is_some());
    Ok(())
}

async fn a_server_that_goes_away_gives_unavailable(_url: String) -> anyhow::Result<()> {
    let mut server = tokio::task::spawn_blocking(PostgresServer::start).await?;
    let table = random_name();
    let store = PostgresStoreBuilder::parse(&server.url())?
        .table(&table)
        .pool_size(4)
        .statement_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .open()
        .await?;
    let id = id()?;
    store.set(&id, &record(hour())).await?;
    // Requests in flight while the server stops, and for a second after.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let one = SessionId::generate().map_err(|e| anyhow!("{e}"))?;
                if let Err(e) = store.set(&one, &record(hour())).await {
                    errors.push(e.kind());
                }
                if let Err(e) = store.get(&one).await {
                    errors.push(e.kind());
                }
            }
            anyhow::Ok(errors)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.extend(task.await??);
    }
    ensure!(!kinds.is_empty(), "requests after the stop failed");
    ensure!(
        kinds
            .iter()
            .all(|k| matches!(k, ErrorKind::Unavailable | ErrorKind::Timeout)),
        "every failure is Unavailable or Timeout: {kinds:?}"
    );
    // And afterwards, with the server gone: a clear Unavailable, quickly.
    let started = Instant::now();
    let err = store
        .get(&id)
        .await
        .err()
        .context("get with the server gone")?;
    ensure!(err.kind() == ErrorKind::Unavailable, "{}", err.chain());
    ensure!(err.backend() == "postgres");
    ensure!(started.elapsed() < Duration::from_secs(30));
    drop(store);
    tokio::task::spawn_blocking(move || drop(server)).await?;
    Ok(())
}

async fn update_merges_in_one_statement_and_never_resurrects(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let store = PostgresStoreBuilder::parse(&url)?
        .table(&table)
        .open()
        .await?;
    let id = id()?;
    store.set(&id, &record(hour())).await?;
    store
        .update(
            &id,
            &Patch::new()
                .set("a", json!({"deep": [1, 2]}))
                .unset("n")
                .owner(Some("ada".into())),
        )
        .await?;
    let client = raw(&url).await?;
    let row = client
        .query_one(
            &format!("SELECT data::text, owner FROM \"{table}\" WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    let data: serde_json::Value = serde_json::from_str(&row.get::<_, String>(0))?;
    ensure!(
        data == json!({"user": "ada", "a": {"deep": [1, 2]}}),
        "{data}"
    );
    ensure!(row.get::<_, Option<String>>(1).as_deref() == Some("ada"));
    // An expired row that cleanup has not removed yet is not brought back.
    client
        .execute(
            &format!("UPDATE \"{table}\" SET expiry = now() - interval '1 second' WHERE id = $1"),
            &[&id.as_str()],
        )
        .await?;
    let err = store
        .update(&id, &Patch::new().set("b", json!(1)))
        .await
        .err()
        .context("Gone")?;
    ensure!(err.kind() == ErrorKind::Gone);
    let err = store
        .touch(&id, Some(Timestamp::now() + hour()))
        .await
        .err()
        .context("Gone")?;
    ensure!(err.kind() == ErrorKind::Gone);
    ensure!(store.get(&id).await?.is_none());
    // A value PostgreSQL's jsonb cannot hold is InvalidInput, not a crash.
    let bad = Patch::new().set("nul", json!("a\u{0}b"));
    let other = self::id()?;
    store.set(&other, &record(hour())).await?;
    let err = store
        .update(&other, &bad)
        .await
        .err()
        .context("NUL in jsonb")?;
    ensure!(err.kind() == ErrorKind::InvalidInput, "{}", err.chain());
    let _ = Layout::Native;
    Ok(())
}

async fn secrets_stay_out_of_errors(url: String) -> anyhow::Result<()> {
    let port = sessionbank_testkit::servers::free_port();
    let secret_url =
        format!("postgres://app:hunter2@127.0.0.1:{port}/db?table=t&connect_timeout=2s");
    let err = registry()
        .connect(&secret_url)
        .await
        .err()
        .context("nothing listens there")?;
    ensure!(err.kind() == ErrorKind::Unavailable, "{}", err.chain());
    let text = format!("{err} {err:?} {}", err.chain());
    ensure!(!text.contains("hunter2"), "{text}");
    ensure!(text.contains("***"), "the target is shown redacted: {text}");
    let _ = url;
    Ok(())
}

async fn extreme_times_are_refused_or_clamped_never_a_panic(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let store = PostgresStoreBuilder::parse(&url)?
        .table(&table)
        .browser_idle(Duration::MAX)
        .open()
        .await?;
    let id = id()?;
    let far = Record::new(Timestamp::now()).expiring_at(Timestamp::from_millis(i64::MAX));
    let err = store
        .set(&id, &far)
        .await
        .err()
        .context("year 292 million")?;
    ensure!(err.kind() == ErrorKind::InvalidInput, "{}", err.chain());
    let err = store
        .set(
            &id,
            &record(hour()).expiring_at(Timestamp::from_millis(i64::MIN)),
        )
        .await
        .err()
        .context("before year 1")?;
    ensure!(err.kind() == ErrorKind::InvalidInput, "{}", err.chain());
    // A browser session with an unbounded browser_idle: the deadline is clamped to year 9999.
    let browser = Record::new(Timestamp::now());
    store.set(&id, &browser).await?;
    ensure!(store.get(&id).await? == Some(browser), "kept and read back");
    store.update(&id, &Patch::new().set("a", json!(1))).await?;
    store.touch(&id, None).await?;
    let err = store
        .touch(&id, Some(Timestamp::from_millis(i64::MAX)))
        .await
        .err()
        .context("touch far away")?;
    ensure!(err.kind() == ErrorKind::InvalidInput);
    ensure!(store.get(&id).await?.is_some());
    Ok(())
}

async fn killed_connections_are_replaced(url: String) -> anyhow::Result<()> {
    let table = random_name();
    let app = random_name();
    let store = PostgresStoreBuilder::parse(&with_query(&url, &format!("application_name={app}")))?
        .table(&table)
        .pool_size(2)
        .open()
        .await?;
    let id = id()?;
    let rec = record(hour());
    store.set(&id, &rec).await?;
    ensure!(store.get(&id).await?.is_some());
    let client = raw(&url).await?;
    let killed: i64 = client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .await?
        .get(0);
    ensure!(
        killed >= 1,
        "the store's connections carry its application_name"
    );
    // The store notices the closed connections, reports Unavailable meanwhile, and replaces them.
    let mut recovered = false;
    for _ in 0..100 {
        match store.get(&id).await {
            Ok(Some(back)) => {
                ensure!(back == rec);
                recovered = true;
                break;
            }
            Ok(None) => return Err(anyhow!("the session vanished")),
            Err(e) => ensure!(e.kind() == ErrorKind::Unavailable, "{}", e.chain()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        recovered,
        "the store never recovered from killed connections"
    );
    // Every slot is refilled: at most one failure per shared connection, then only successes.
    let mut failures = 0;
    for _ in 0..10 {
        if let Err(e) = store.set(&id, &rec).await {
            ensure!(e.kind() == ErrorKind::Unavailable, "{}", e.chain());
            failures += 1;
        }
    }
    ensure!(
        failures <= 2,
        "{failures} of 10 sets failed after the recovery"
    );
    ensure!(store.get(&id).await? == Some(rec));
    Ok(())
}
