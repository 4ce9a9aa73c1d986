//! Schema migrations: applied by `lightspeed migrate` and by tests; checked by everything else.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};

/// Every migration in `migrations/`, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why the database is not ready for the product.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The schema is older than this binary (or was never created).
    #[error(
        "database is not migrated ({0}); run `lightspeed migrate` against the same DATABASE_URL first"
    )]
    NotMigrated(String),
    /// The URL cannot be used.
    #[error("invalid DATABASE_URL: {0}")]
    InvalidUrl(String),
    /// Applying a migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// How the product connects to the database named in `url`: with PostgreSQL's JIT compilation
/// off. Without statistics on a grown log (autovacuum off, or not yet run) the planner prices a
/// stream read over the log at millions, above `jit_above_cost`, and compiled every read with
/// LLVM: 30 to 45 ms of CPU per read on a 10-million-event log, more than the read itself.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, MigrationError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| MigrationError::InvalidUrl(e.to_string()))?;
    Ok(options.options([("jit", "off")]))
}

/// Creates the database named in `url` if it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<(), MigrationError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| MigrationError::InvalidUrl(e.to_string()))?;
    let name = options
        .get_database()
        .ok_or_else(|| MigrationError::InvalidUrl("no database name".into()))?
        .to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another process created it between the check and the create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrationError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Refuses a database whose schema is not exactly what this binary was built with.
pub async fn check_migrated(pool: &PgPool) -> Result<(), MigrationError> {
    let applied: Vec<(i64, bool)> =
        match sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Err(MigrationError::NotMigrated("no migrations applied".into()));
            }
            Err(e) => return Err(e.into()),
        };
    for migration in MIGRATOR.iter() {
        if !applied
            .iter()
            .any(|(version, success)| *version == migration.version && *success)
        {
            return Err(MigrationError::NotMigrated(format!(
                "migration {} {} is missing",
                migration.version, migration.description
            )));
        }
    }
    Ok(())
}
