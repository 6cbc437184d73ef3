//! `setup`: connect, create the schema and table if allowed, check the table's shape.

use sessionbank_core::{Action, Result};

use crate::conn::Inner;
use crate::error::{self, BACKEND};

const COLUMNS: &str = "SELECT column_name::text, data_type::text FROM information_schema.columns \
                       WHERE table_schema = $1 AND table_name = $2";

/// Whether the key column (`id`) has a one-column unique index (a primary key counts), which
/// `ON CONFLICT (id)` needs. `$1` is the quoted, schema-qualified table name, `$2` the column.
const KEY_UNIQUE: &str = "SELECT EXISTS (SELECT 1 FROM pg_index i \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                          WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 \
                          AND i.indpred IS NULL AND a.attname = $2)";

pub(crate) async fn run(inner: &Inner) -> Result<()> {
    let op = Action::Setup;
    let pg = |e| error::from_pg(op, &inner.target, e);
    let mut client = inner
        .pool
        .get()
        .await
        .map_err(|e| error::from_pool(op, &inner.target, e))?;
    let mut columns = read_columns(&client, inner).await?;
    if columns.is_empty() {
        if !inner.create {
            return Err(error::setup(
                format!(
                    "the table {}.{} does not exist and `create` is false: create it (see the \
                     crate's docs.md for the DDL) or allow create",
                    inner.schema, inner.table
                ),
                &inner.target,
            ));
        }
        let tx = client.transaction().await.map_err(pg)?;
        // One instance creates at a time; the others wait, then find the table.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("sessionbank:{}.{}", inner.schema, inner.table)],
        )
        .await
        .map_err(pg)?;
        if !schema_exists(&tx, inner).await? {
            // Setups of other tables in the same new schema race here (`CREATE SCHEMA IF NOT
            // EXISTS` is not safe against a concurrent create): one creates the schema at a
            // time, and the others, once they hold the lock, find it.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&format!("sessionbank:{}", inner.schema)],
            )
            .await
            .map_err(pg)?;
            if !schema_exists(&tx, inner).await? {
                tx.batch_execute(&inner.sql.create_schema)
                    .await
                    .map_err(pg)?;
            }
        }
        for statement in &inner.sql.create_table {
            tx.batch_execute(statement).await.map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        tracing::info!(target: "sessionbank::postgres", schema = %inner.schema, table = %inner.table,
            layout = %inner.sql.layout, "session table ready");
        columns = read_columns(&client, inner).await?;
    }
    check_columns(inner, &columns)?;
    let qualified = format!("\"{}\".\"{}\"", inner.schema, inner.table);
    let key = inner.sql.layout.key();
    let unique: bool = client
        .query_one(KEY_UNIQUE, &[&qualified, &key])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    if !unique {
        return Err(error::setup(
            format!(
                "column `{key}` of {}.{} has no unique index; the {} layout expects `{key} text PRIMARY KEY`",
                inner.schema, inner.table, inner.sql.layout
            ),
            &inner.target,
        ));
    }
    tracing::debug!(target: "sessionbank::postgres", backend = BACKEND, "setup done");
    Ok(())
}

/// Whether the store's schema exists (as of this statement: committed creates count).
async fn schema_exists(tx: &tokio_postgres::Transaction<'_>, inner: &Inner) -> Result<bool> {
    let pg = |e| error::from_pg(Action::Setup, &inner.target, e);
    tx.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        &[&inner.schema],
    )
    .await
    .map_err(pg)?
    .try_get::<_, bool>(0)
    .map_err(pg)
}

async fn read_columns(
    client: &tokio_postgres::Client,
    inner: &Inner,
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(COLUMNS, &[&inner.schema, &inner.table])
        .await
        .map_err(|e| error::from_pg(Action::Setup, &inner.target, e))?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0)
                    .map_err(|e| error::from_pg(Action::Setup, &inner.target, e))?,
                row.try_get(1)
                    .map_err(|e| error::from_pg(Action::Setup, &inner.target, e))?,
            ))
        })
        .collect()
}

/// Every column the layout needs is there with an accepted type; extra columns are fine.
fn check_columns(inner: &Inner, columns: &[(String, String)]) -> Result<()> {
    let layout = inner.sql.layout;
    let hint = layout.hint(columns);
    for (name, accepted) in layout.columns() {
        let expected = sql_type(accepted[0]);
        match columns.iter().find(|(n, _)| n == name) {
            None => {
                return Err(error::setup(
                    format!(
                        "the table {}.{} has no column `{name}`; the {layout} layout expects \
                         `{name} {expected}`{hint}",
                        inner.schema, inner.table
                    ),
                    &inner.target,
                ));
            }
            Some((_, found)) if !accepted.contains(&found.as_str()) => {
                return Err(error::setup(
                    format!(
                        "column `{name}` of {}.{} has type {found}; the {layout} layout expects \
                         `{name} {expected}`{hint}",
                        inner.schema, inner.table
                    ),
                    &inner.target,
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The short SQL spelling of an `information_schema` type name.
fn sql_type(info: &str) -> &str {
    match info {
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        other => other,
    }
}
