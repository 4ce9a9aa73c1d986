//! Where every projection version stands: checkpoint, events applied, lag behind the log head.
//! The projector measures lag, stores it in `projections.versions` and exports it as the
//! gauges `projection_lag_events{projection}` and `projection_lag_seconds{projection}`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::versions::VersionState;

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
pub(crate) async fn measure_lag(
    pool: &PgPool,
    projection: &dyn Projection,
    version: i32,
) -> Result<VersionState, ProjectionError> {
    let categories: Option<Vec<&str>> = projection.categories().map(<[&str]>::to_vec);
    let measured: Option<(String, i64, i64)> = sqlx::query_as(
        "WITH v AS (
             SELECT state, transaction_id, position FROM projections.versions
              WHERE projection = $1 AND version = $2
         ), pending AS (
             SELECT e.recorded_at FROM ledger.events e, v
              WHERE (e.transaction_id, e.position) > (v.transaction_id, v.position)
                AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                AND ($3::text[] IS NULL OR e.category = ANY($3))
              ORDER BY e.transaction_id, e.position
              LIMIT $4
         ), lag AS (
             SELECT count(*) AS events,
                    coalesce(extract(epoch FROM now() - min(recorded_at)) * 1000, 0)::bigint AS ms
               FROM pending
         )
         UPDATE projections.versions p
            SET lag_events = lag.events, lag_ms = greatest(lag.ms, 0), lag_measured_at = now()
           FROM lag
          WHERE p.projection = $1 AND p.version = $2
         RETURNING p.state, lag.events, greatest(lag.ms, 0)",
    )
    .bind(projection.name())
    .bind(version)
    .bind(categories)
    .bind(MAX_COUNTED_LAG)
    .fetch_optional(pool)
    .await?;
    let Some((state, events, ms)) = measured else {
        return Ok(VersionState::Dropped);
    };
    let state = VersionState::parse(&state);
    if state == VersionState::Active {
        let name = projection.name();
        // Gauges are floats by nature; these are counts and seconds, never money.
        metrics::gauge!("projection_lag_events", "projection" => name).set(events as f64);
        metrics::gauge!("projection_lag_seconds", "projection" => name).set(ms as f64 / 1_000.0);
    }
    Ok(state)
}
