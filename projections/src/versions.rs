//! The registry of projection versions (`projections.versions`): which versions exist, which one
//! readers see, and each version's checkpoint.
//!
//! Every write to a version's tables happens in a transaction that first locks the version's
//! row (`FOR UPDATE`) and moves its checkpoint before committing, so two writers of one version
//! (a projector and a rebuild, or two replicas) queue behind each other and never apply an event
//! twice, and a crash loses nothing: the rows and the checkpoint commit together or not at all.

use lightspeed_eventstore::{LogPosition, RecordedEvent};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::error::ProjectionError;
use crate::projection::{Projection, position_i64};

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Being built beside the active version; readers do not see it.
    Building,
    /// What readers see through the `read` views.
    Active,
    /// Replaced by another version; kept until dropped on request.
    Retired,
    /// Its schema was dropped.
    Dropped,
}

impl VersionState {
    /// The name stored in `projections.versions.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Building => "building",
            VersionState::Active => "active",
            VersionState::Retired => "retired",
            VersionState::Dropped => "dropped",
        }
    }

    /// Reads a state as the registry stores it; anything else is a row the registry's check
    /// should have refused.
    pub(crate) fn parse(state: &str) -> Result<VersionState, sqlx::Error> {
        match state {
            "building" => Ok(VersionState::Building),
            "active" => Ok(VersionState::Active),
            "retired" => Ok(VersionState::Retired),
            "dropped" => Ok(VersionState::Dropped),
            other => Err(sqlx::Error::Decode(
                format!("unknown projection version state {other:?}").into(),
            )),
        }
    }
}

/// One version of a projection as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The projection.
    pub projection: String,
    /// Its version number.
    pub version: i32,
    /// The table layout its rows follow.
    pub layout: i32,
    /// The schema holding its tables.
    pub schema_name: String,
    /// Where it stands.
    pub state: VersionState,
    /// The last log position applied.
    pub checkpoint: LogPosition,
}

/// The schema of one version: `proj_<name>_v<version>`.
pub fn schema_name(projection: &str, version: i32) -> String {
    format!("proj_{projection}_v{version}")
}

const VERSION_COLUMNS: &str =
    "projection, version, layout, schema_name, state, transaction_id::text AS tx, position";

fn record(row: &sqlx::postgres::PgRow) -> Result<VersionRecord, sqlx::Error> {
    let tx: String = row.try_get("tx")?;
    let position: i64 = row.try_get("position")?;
    let state: String = row.try_get("state")?;
    Ok(VersionRecord {
        projection: row.try_get("projection")?,
        version: row.try_get("version")?,
        layout: row.try_get("layout")?,
        schema_name: row.try_get("schema_name")?,
        state: VersionState::parse(&state)?,
        checkpoint: LogPosition {
            transaction_id: tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            position: u64::try_from(position).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        },
    })
}

/// The active version of `projection`, if one was ever activated.
pub async fn active(
    pool: &PgPool,
    projection: &str,
) -> Result<Option<VersionRecord>, ProjectionError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM projections.versions
          WHERE projection = $1 AND state = 'active'"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(projection)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(record).transpose()?)
}

/// One version of `projection`.
pub async fn find(
    pool: &PgPool,
    projection: &str,
    version: i32,
) -> Result<Option<VersionRecord>, ProjectionError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM projections.versions WHERE projection = $1 AND version = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(projection)
        .bind(version)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(record).transpose()?)
}

/// Serialises changes to one projection's set of versions (creating, activating, dropping).
pub(crate) async fn lock_projection(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('projections:' || $1, 0))")
        .bind(projection)
        .execute(conn)
        .await?;
    Ok(())
}

/// The version to build for this code's layout: the one already building (a rebuild that was
/// interrupted resumes it), or a new one with its own empty schema. With `restart`, a version
/// already building is dropped and the build starts again from the beginning of the log.
pub async fn building_version(
    pool: &PgPool,
    projection: &dyn Projection,
    restart: bool,
) -> Result<VersionRecord, ProjectionError> {
    let name = projection.name();
    let mut tx = pool.begin().await?;
    lock_projection(&mut tx, name).await?;
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM projections.versions
          WHERE projection = $1 AND layout = $2 AND state = 'building'
          ORDER BY version DESC LIMIT 1"
    );
    let existing = sqlx::query(AssertSqlSafe(sql))
        .bind(name)
        .bind(projection.layout())
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = existing {
        let existing = record(&row)?;
        if !restart {
            tx.commit().await?;
            return Ok(existing);
        }
        drop_schema(&mut tx, &existing).await?;
    }
    let version: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(version), 0) + 1 FROM projections.versions WHERE projection = $1",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let schema = schema_name(name, version);
    let ddl = format!(
        "CREATE SCHEMA {schema};\n{}",
        split_ddl(&projection.create_tables(&schema)).tables
    );
    sqlx::raw_sql(AssertSqlSafe(ddl)).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO projections.versions (projection, version, layout, schema_name, state)
         VALUES ($1, $2, $3, $4, 'building')",
    )
    .bind(name)
    .bind(version)
    .bind(projection.layout())
    .bind(&schema)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(VersionRecord {
        projection: name.to_owned(),
        version,
        layout: projection.layout(),
        schema_name: schema,
        state: VersionState::Building,
        checkpoint: LogPosition::START,
    })
}

/// A projection's DDL in two parts: what a version is created with, and its plain (non-unique)
/// indexes, which a rebuild creates once the rows are in: building an index from the finished
/// table is far cheaper than keeping it up to date row by row through the whole log. Keys and
/// unique indexes are created with the tables, so a fact applied twice still fails at once.
pub(crate) struct SplitDdl {
    /// The tables, their keys and their unique indexes.
    pub(crate) tables: String,
    /// The `CREATE INDEX` statements.
    pub(crate) indexes: String,
}

/// Splits a projection's DDL (statements separated by `;`) into tables and plain indexes.
pub(crate) fn split_ddl(ddl: &str) -> SplitDdl {
    let mut split = SplitDdl {
        tables: String::new(),
        indexes: String::new(),
    };
    for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let part = if statement.to_ascii_uppercase().starts_with("CREATE INDEX") {
            &mut split.indexes
        } else {
            &mut split.tables
        };
        part.push_str(statement);
        part.push_str(";\n");
    }
    split
}

/// Creates the plain indexes of a built version, unless it has them already (a rebuild that
/// stopped after creating them and is resumed); all or none, under the version's lock.
pub(crate) async fn create_indexes(
    pool: &PgPool,
    projection: &dyn Projection,
    version: &VersionRecord,
) -> Result<(), ProjectionError> {
    let indexes = split_ddl(&projection.create_tables(&version.schema_name)).indexes;
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection.name(), version.version).await?;
    let existing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_index x
           JOIN pg_class c ON c.oid = x.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND NOT x.indisunique",
    )
    .bind(&version.schema_name)
    .fetch_one(&mut *tx)
    .await?;
    if existing == 0 && !indexes.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(indexes))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Locks a version's row for the rest of `conn`'s transaction and reads it.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    projection: &str,
    version: i32,
) -> Result<VersionRecord, ProjectionError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM projections.versions
          WHERE projection = $1 AND version = $2 FOR UPDATE"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(projection)
        .bind(version)
        .fetch_optional(conn)
        .await?;
    match row {
        Some(row) => Ok(record(&row)?),
        None => Err(ProjectionError::WrongState {
            projection: projection.to_owned(),
            version,
            state: "missing".into(),
            why: "no such version",
        }),
    }
}

/// Moves a locked version's checkpoint past `applied` (the events just written).
pub(crate) async fn advance(
    conn: &mut PgConnection,
    projection: &str,
    version: i32,
    applied: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let Some(last) = applied.last() else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE projections.versions
            SET transaction_id = $3::text::xid8, position = $4,
                events_applied = events_applied + $5,
                last_event_recorded_at = $6, checkpoint_at = now()
          WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(version)
    .bind(last.log_position.transaction_id.to_string())
    .bind(position_i64(last))
    .bind(i64::try_from(applied.len()).expect("a batch's length fits a bigint"))
    .bind(last.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes `version` the one readers see, in the caller's transaction: the previous active version
/// is retired and every `read` view of the projection is replaced. Readers see the old views
/// until the transaction commits and the new ones after; never a mix.
pub(crate) async fn activate(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    version: &VersionRecord,
) -> Result<Option<i32>, ProjectionError> {
    let name = projection.name();
    lock_projection(conn, name).await?;
    let previous: Option<(i32, String)> = sqlx::query_as(
        "SELECT version, schema_name FROM projections.versions
          WHERE projection = $1 AND state = 'active' FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((_, old_schema)) = &previous {
        let views: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT view_name::text FROM information_schema.view_table_usage
              WHERE view_schema = 'read' AND table_schema = $1",
        )
        .bind(old_schema)
        .fetch_all(&mut *conn)
        .await?;
        for view in views {
            let sql = format!("DROP VIEW IF EXISTS read.{view}");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
        }
    }
    for table in projection.tables() {
        let sql = format!(
            "DROP VIEW IF EXISTS read.{table};
             CREATE VIEW read.{table} AS SELECT * FROM {}.{table};",
            version.schema_name
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE projections.versions SET state = 'retired', retired_at = now()
          WHERE projection = $1 AND state = 'active'",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE projections.versions SET state = 'active', activated_at = now()
          WHERE projection = $1 AND version = $2",
    )
    .bind(name)
    .bind(version.version)
    .execute(&mut *conn)
    .await?;
    Ok(previous.map(|(version, _)| version))
}

async fn drop_schema(conn: &mut PgConnection, version: &VersionRecord) -> Result<(), sqlx::Error> {
    let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", version.schema_name);
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    sqlx::query(
        "UPDATE projections.versions SET state = 'dropped'
          WHERE projection = $1 AND version = $2",
    )
    .bind(&version.projection)
    .bind(version.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops a version that readers no longer see (retired) or never saw (building): its schema and
/// tables go, its registry row stays as `dropped`. The active version is refused.
pub async fn drop_version(
    pool: &PgPool,
    projection: &str,
    version: i32,
) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock_projection(&mut tx, projection).await?;
    let record = lock(&mut tx, projection, version).await?;
    match record.state {
        VersionState::Retired | VersionState::Building => drop_schema(&mut tx, &record).await?,
        VersionState::Dropped => {}
        VersionState::Active => {
            return Err(ProjectionError::WrongState {
                projection: projection.to_owned(),
                version,
                state: record.state.as_str().into(),
                why: "readers see it; activate another version first",
            });
        }
    }
    tx.commit().await?;
    Ok(())
}
