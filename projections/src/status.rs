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

/// The lag measurement of [`measure_lag`], given the filter on pending events and the query
/// answering the oldest one's `recorded_at`. The checkpoint drives every scan (`LATERAL`), so
/// even a generic plan over stale statistics reads the log from the checkpoint on, and a
/// filtered projection counts through `events_category_read_order` rather than every event since
/// its checkpoint (a projection of a rare category keeps an old checkpoint).
macro_rules! measure_lag_sql {
    ($filter:literal, $oldest:literal) => {
        concat!(
            "WITH v AS (
                 SELECT state, transaction_id, position FROM projections.versions
                  WHERE projection = $1 AND version = $2
             ), pending AS (
                 SELECT 1 FROM v, LATERAL (
                     SELECT 1 FROM ledger.events e
                      WHERE (e.transaction_id, e.position) > (v.transaction_id, v.position)
                        AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ",
            $filter,
            " LIMIT $3) AS p
             ), lag AS (
                 SELECT (SELECT count(*) FROM pending) AS events,
                        coalesce(extract(epoch FROM now() - (",
            $oldest,
            ")) * 1000, 0)::bigint AS ms
             )
             UPDATE projections.versions p
                SET lag_events = lag.events, lag_ms = greatest(lag.ms, 0), lag_measured_at = now()
               FROM lag
              WHERE p.projection = $1 AND p.version = $2
             RETURNING p.state, lag.events, greatest(lag.ms, 0)"
        )
    };
}

/// Measures how far a version is behind the log, stores it and exports it; answers the
/// version's state so a projector notices when another version was activated.
pub async fn measure_lag(
    pool: &PgPool,
    projection: &dyn Projection,
    version: i32,
) -> Result<VersionState, ProjectionError> {
    let measured: Option<(String, i64, i64)> = match projection.categories() {
        Some(categories) => sqlx::query_as(measure_lag_sql!(
            "AND e.category = ANY($4)",
            // The oldest pending event is the first of some category: one index probe each.
            "SELECT min(first.recorded_at) FROM unnest($4::text[]) AS c(category), v,
             LATERAL (SELECT e.recorded_at FROM ledger.events e
                       WHERE e.category = c.category AND (e.transaction_id, e.position) >
                             (v.transaction_id, v.position)
                         AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                       ORDER BY e.transaction_id, e.position LIMIT 1) AS first"
        ))
        .bind(projection.name())
        .bind(version)
        .bind(MAX_COUNTED_LAG)
        .bind(categories.to_vec()),
        None => sqlx::query_as(measure_lag_sql!(
            "",
            "SELECT first.recorded_at FROM v,
             LATERAL (SELECT e.recorded_at FROM ledger.events e
                       WHERE (e.transaction_id, e.position) > (v.transaction_id, v.position)
                         AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                       ORDER BY e.transaction_id, e.position LIMIT 1) AS first"
        ))
        .bind(projection.name())
        .bind(version)
        .bind(MAX_COUNTED_LAG),
    }
    .fetch_optional(pool)
    .await?;
    let Some((state, events, ms)) = measured else {
        return Ok(VersionState::Dropped);
    };
    let state = VersionState::parse(&state)?;
    if state == VersionState::Active {
        let name = projection.name();
        // Gauges are floats by nature; these are counts and seconds, never money.
        metrics::gauge!("projection_lag_events", "projection" => name).set(events as f64);
        metrics::gauge!("projection_lag_seconds", "projection" => name).set(ms as f64 / 1_000.0);
    }
    Ok(state)
}
