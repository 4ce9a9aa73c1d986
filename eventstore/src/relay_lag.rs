//! How far the relay is behind the log: what readiness checks and the relay lag gauges read.

use sqlx::PgPool;

use crate::ReadError;

/// Events counted when measuring relay lag; a relay further behind shows this number.
pub const MAX_COUNTED_RELAY_LAG: i64 = 1_000_000;

/// How far the relay is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLag {
    /// Committed events not published yet (at most [`MAX_COUNTED_RELAY_LAG`]).
    pub events: i64,
    /// How long the oldest of them has waited, in milliseconds (0 when caught up).
    pub oldest_ms: i64,
}

/// Measures the relay's lag behind the log for JetStream stream `stream`: the gap-safe events
/// after its mark in `ledger.relay_state`.
pub async fn relay_lag(pool: &PgPool, stream: &str) -> Result<RelayLag, ReadError> {
    let (events, oldest_ms): (i64, i64) = sqlx::query_as(
        "SELECT count(*),
                coalesce((extract(epoch FROM now() - min(p.recorded_at)) * 1000)::bigint, 0)
           FROM (SELECT e.recorded_at
                   FROM ledger.events e
                   LEFT JOIN ledger.relay_state r ON r.jetstream_stream = $1
                  WHERE (r.transaction_id IS NULL
                         OR (e.transaction_id, e.position) > (r.transaction_id, r.position))
                    AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY e.transaction_id, e.position
                  LIMIT $2) p",
    )
    .bind(stream)
    .bind(MAX_COUNTED_RELAY_LAG)
    .fetch_one(pool)
    .await?;
    Ok(RelayLag {
        events,
        oldest_ms: oldest_ms.max(0),
    })
}
