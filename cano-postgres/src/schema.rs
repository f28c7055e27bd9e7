//! The schema, created and migrated by the crate: a `cano_migrations` table records which
//! versions are applied; each start applies the missing ones in one transaction, under an
//! advisory lock so concurrent starts do not race.

use cano_core::persist::{PersistError, PersistResult};
use tokio_postgres::Client;

use crate::error::from_pg;

/// The schema versions this crate knows, in order: (version, name, SQL).
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "schedule store and fire ledger",
        include_str!("schema_v1.sql"),
    ),
    (2, "checkpoint store", include_str!("schema_v2.sql")),
    (
        3,
        "takeover within the overlap limit",
        include_str!("schema_v3.sql"),
    ),
    (
        4,
        "durable fleet command log",
        include_str!("schema_v4.sql"),
    ),
    (
        5,
        "cano_holds_claim, the side-effect contract",
        include_str!("schema_v5.sql"),
    ),
    (
        6,
        "cano_claim_batch, a batch's claims decided together",
        include_str!("schema_v6.sql"),
    ),
];

/// The newest schema version this crate writes.
pub const SCHEMA_VERSION: i32 = 6;

/// Whether `schema` is a plain lower-case identifier (so it needs no quoting rules beyond
/// double quotes and cannot inject SQL).
pub(crate) fn check_schema_name(schema: &str) -> PersistResult<()> {
    let mut chars = schema.chars();
    let ok = schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PersistError::invalid(format!(
            "schema name {schema:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// Creates `schema` if needed and applies the missing migrations; returns the version the
/// schema is at afterwards.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> PersistResult<i32> {
    check_schema_name(schema)?;
    let tx = client.transaction().await.map_err(from_pg)?;
    // One lock per schema name, held to the end of the transaction.
    tx.execute(
        "SELECT pg_advisory_xact_lock(7243013, hashtext($1))",
        &[&schema],
    )
    .await
    .map_err(from_pg)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         SET LOCAL search_path TO \"{schema}\";
         CREATE TABLE IF NOT EXISTS cano_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
         );"
    ))
    .await
    .map_err(from_pg)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM cano_migrations", &[])
        .await
        .map_err(from_pg)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(PersistError::backend(format!(
            "schema \"{schema}\" is at version {current}, newer than this cano-postgres \
             (version {SCHEMA_VERSION}): upgrade cano-postgres"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(from_pg)?;
        tx.execute(
            "INSERT INTO cano_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(from_pg)?;
    }
    tx.commit().await.map_err(from_pg)?;
    Ok(SCHEMA_VERSION)
}
