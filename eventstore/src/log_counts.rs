//! How much the log holds: what `lightspeed status` shows and what a rebuild counts down.
//!
//! Counted on the table as committed now, not with the gap-safe reader: these are figures for
//! people, not positions anyone resumes from.

use sqlx::PgPool;

use crate::rows::{to_i64, to_u64};
use crate::{LogPosition, ReadError};

/// The log's size at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCounts {
    /// Events in the log.
    pub events: i64,
    /// Streams with at least one event.
    pub streams: i64,
    /// Events per category, by category name.
    pub by_category: Vec<(String, i64)>,
    /// Events covered by a seal.
    pub sealed_events: i64,
}

/// Counts the events, streams, events per category and sealed events of the log in `pool`.
pub async fn log_counts(pool: &PgPool) -> Result<LogCounts, ReadError> {
    let (events, streams): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT stream_id) FROM ledger.events")
            .fetch_one(pool)
            .await?;
    let by_category = sqlx::query_as(
        "SELECT category, count(*) FROM ledger.events GROUP BY category ORDER BY category",
    )
    .fetch_all(pool)
    .await?;
    let sealed_events: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(event_count), 0)::bigint FROM ledger.seals")
            .fetch_one(pool)
            .await?;
    Ok(LogCounts {
        events,
        streams,
        by_category,
        sealed_events,
    })
}

/// How many events of `categories` (every category when `None`) the log holds after `after`:
/// what a rebuild still has to apply, for its progress and ETA.
pub async fn events_after(
    pool: &PgPool,
    after: LogPosition,
    categories: Option<&[String]>,
) -> Result<u64, ReadError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger.events
          WHERE (transaction_id, position) > ($1::text::xid8, $2)
            AND ($3::text[] IS NULL OR category = ANY($3))",
    )
    .persistent(false)
    .bind(after.transaction_id.to_string())
    .bind(to_i64(after.position))
    .bind(categories)
    .fetch_one(pool)
    .await?;
    Ok(to_u64(count)?)
}

/// What autovacuum does to a log that only grows: the planner's statistics and the visibility
/// map, for a bulk load on a server that runs without autovacuum.
pub async fn vacuum_analyze(pool: &PgPool) -> Result<(), ReadError> {
    sqlx::raw_sql("VACUUM (ANALYZE) ledger.events")
        .execute(pool)
        .await?;
    Ok(())
}

/// The log's size on disk with its indexes and TOAST, in bytes.
pub async fn log_bytes(pool: &PgPool) -> Result<i64, ReadError> {
    Ok(
        sqlx::query_scalar("SELECT pg_total_relation_size('ledger.events')")
            .fetch_one(pool)
            .await?,
    )
}
