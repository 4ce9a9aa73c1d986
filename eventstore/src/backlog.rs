//! How far a reader of the log is behind it: the events after its position that a gap-safe
//! reader sees, and how long the oldest of them has waited. A projector's lag is its backlog.

use sqlx::PgPool;

use crate::rows::to_i64;
use crate::{LogPosition, ReadError};

/// The events after a reader's position, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Events after the position (at most the cap they were counted up to).
    pub events: i64,
    /// How long the oldest of them has waited, in milliseconds (0 when there is none).
    pub oldest_ms: i64,
}

/// The backlog query, given the filter on pending events and the query answering the oldest
/// one's `recorded_at`. The position drives every scan (`LATERAL` over a materialised `v`, so
/// the planner cannot fold the position into a plain filter), so even a generic plan over stale
/// statistics reads the log from the position on, and a reader of some categories counts
/// through `events_category_read_order` rather than every event since its position (a
/// projection of a rare category keeps an old checkpoint).
macro_rules! backlog_sql {
    ($filter:literal, $oldest:literal) => {
        concat!(
            "WITH v AS MATERIALIZED (
                 SELECT $1::text::xid8 AS transaction_id, $2::bigint AS position
             ), pending AS (
                 SELECT 1 FROM v, LATERAL (
                     SELECT 1 FROM ledger.events e
                      WHERE (e.transaction_id, e.position) > (v.transaction_id, v.position)
                        AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ",
            $filter,
            " LIMIT $3) AS p
             )
             SELECT (SELECT count(*) FROM pending),
                    greatest(coalesce(extract(epoch FROM now() - (",
            $oldest,
            ")) * 1000, 0)::bigint, 0)"
        )
    };
}

/// The backlog of a reader at `after` that reads `categories` (every category when `None`),
/// counted up to `cap` events.
pub async fn backlog_after(
    pool: &PgPool,
    after: LogPosition,
    categories: Option<&[&str]>,
    cap: i64,
) -> Result<Backlog, ReadError> {
    let tx = after.transaction_id.to_string();
    let position = to_i64(after.position);
    let (events, oldest_ms): (i64, i64) = match categories {
        Some(categories) => sqlx::query_as(backlog_sql!(
            "AND e.category = ANY($4)",
            // The oldest pending event is the first of some category: one index probe each.
            "SELECT min(first.recorded_at) FROM unnest($4::text[]) AS c(category), v,
             LATERAL (SELECT e.recorded_at FROM ledger.events e
                       WHERE e.category = c.category AND (e.transaction_id, e.position) >
                             (v.transaction_id, v.position)
                         AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                       ORDER BY e.transaction_id, e.position LIMIT 1) AS first"
        ))
        .bind(tx)
        .bind(position)
        .bind(cap)
        .bind(categories),
        None => sqlx::query_as(backlog_sql!(
            "",
            "SELECT first.recorded_at FROM v,
             LATERAL (SELECT e.recorded_at FROM ledger.events e
                       WHERE (e.transaction_id, e.position) > (v.transaction_id, v.position)
                         AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                       ORDER BY e.transaction_id, e.position LIMIT 1) AS first"
        ))
        .bind(tx)
        .bind(position)
        .bind(cap),
    }
    .fetch_one(pool)
    .await?;
    Ok(Backlog { events, oldest_ms })
}
