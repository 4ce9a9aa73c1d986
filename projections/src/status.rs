//! Where every projection version stands: checkpoint, events applied, lag behind the log head.
//! The projector measures lag, stores it in `projections.versions` and exports it as the
//! gauges `projection_lag_events{projection}` and `projection_lag_seconds{projection}`.

use chrono::{DateTime, Utc};
use lightspeed_eventstore::backlog::{Backlog, backlog_after};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::versions::{self, VersionState};

/// Lag is counted up to this many events; a projection further behind shows this number.
pub const MAX_COUNTED_LAG: i64 = 1_000_000;

/// One version of one projection, as `GET /admin/projections` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProjectionStatus {
    /// The projection.
    pub projection: String,
    /// The version.
    pub version: i32,
    /// The table layout it follows.
    pub layout: i32,
    /// `building`, `active`, `retired` or `dropped`.
    pub state: String,
    /// The schema holding its tables.
    pub schema_name: String,
    /// The last log position applied, `<transaction id>:<position>`.
    pub checkpoint: String,
    /// Events applied since it was created.
    pub events_applied: i64,
    /// When the last event applied was recorded in the log.
    pub last_event_recorded_at: Option<DateTime<Utc>>,
    /// When the checkpoint last moved.
    pub checkpoint_at: Option<DateTime<Utc>>,
    /// Events of its categories in the log and not applied yet (at most [`MAX_COUNTED_LAG`]).
    pub lag_events: i64,
    /// How long the oldest event not applied yet has waited, in milliseconds (0 when caught up).
    pub lag_ms: i64,
    /// When lag was last measured (a stale value means its projector is not running).
    pub lag_measured_at: Option<DateTime<Utc>>,
    /// When the version was created.
    pub created_at: DateTime<Utc>,
    /// When readers started to see it.
    pub activated_at: Option<DateTime<Utc>>,
    /// When another version replaced it.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Every version not dropped, active ones first, by projection then newest version first.
pub async fn all(pool: &PgPool) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    Ok(sqlx::query_as(
        "SELECT projection, version, layout, state, schema_name,
                transaction_id::text || ':' || position AS checkpoint, events_applied,
                last_event_recorded_at, checkpoint_at, lag_events, lag_ms, lag_measured_at,
                created_at, activated_at, retired_at
           FROM projections.versions
          WHERE state <> 'dropped'
          ORDER BY state <> 'active', projection, version DESC",
    )
    .fetch_all(pool)
    .await?)
}

/// Measures how far a version is behind the log, stores it and exports it; answers the
/// version's state so a projector notices when another version was activated.
pub async fn measure_lag(
    pool: &PgPool,
    projection: &dyn Projection,
    version: i32,
) -> Result<VersionState, ProjectionError> {
    let Some(record) = versions::find(pool, projection.name(), version).await? else {
        return Ok(VersionState::Dropped);
    };
    // Counted from the checkpoint as just read: a batch the projector commits in between makes
    // the figure a few milliseconds stale, which a lag (approximate by nature, measured again
    // every second) allows.
    let lag = backlog_after(
        pool,
        record.checkpoint,
        projection.categories(),
        MAX_COUNTED_LAG,
    )
    .await?;
    let Some(state) = store_lag(pool, projection.name(), version, lag).await? else {
        return Ok(VersionState::Dropped);
    };
    if state == VersionState::Active {
        let name = projection.name();
        // Gauges are floats by nature; these are counts and seconds, never money.
        metrics::gauge!("projection_lag_events", "projection" => name).set(lag.events as f64);
        metrics::gauge!("projection_lag_seconds", "projection" => name)
            .set(lag.oldest_ms as f64 / 1_000.0);
    }
    Ok(state)
}

/// Stores a version's lag; answers its state, or `None` when the version is gone.
async fn store_lag(
    pool: &PgPool,
    projection: &str,
    version: i32,
    lag: Backlog,
) -> Result<Option<VersionState>, ProjectionError> {
    let state: Option<String> = sqlx::query_scalar(
        "UPDATE projections.versions
            SET lag_events = $3, lag_ms = $4, lag_measured_at = now()
          WHERE projection = $1 AND version = $2
         RETURNING state",
    )
    .bind(projection)
    .bind(version)
    .bind(lag.events)
    .bind(lag.oldest_ms)
    .fetch_optional(pool)
    .await?;
    Ok(state.as_deref().map(VersionState::parse).transpose()?)
}
