//! Snapshots of long streams' states (`ledger.snapshots`), so loading a cold stream costs the
//! events since its last snapshot rather than its whole history.
//!
//! A snapshot is derived and disposable: it lives outside the log, the audit never reads it,
//! and it is trusted only while its decider's state shape is the same and the log still holds,
//! at the snapshot's version, the very event it was taken after. Anything else is ignored, the
//! stream is folded from the log, and the next snapshot replaces it.

use sqlx::PgPool;
use sqlx::Row;

use crate::error::ReadError;
use crate::model::StreamId;
use crate::rows::{to_i64, to_u64};

/// How many events a stream grows by between two snapshots of its state.
pub const SNAPSHOT_EVERY: u64 = 1_000;

/// A stream's state as of a version, in its decider's snapshot shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// How many of the stream's events the state folds.
    pub version: u64,
    /// The state.
    pub state: serde_json::Value,
}

/// Whether a stream that grew from `before` to `after` events is due a new snapshot.
pub fn due(before: u64, after: u64) -> bool {
    after / SNAPSHOT_EVERY > before / SNAPSHOT_EVERY
}

/// The stream's snapshot of shape `state_version`, if the log still holds the event it was
/// taken after.
pub(crate) async fn read(
    pool: &PgPool,
    stream_id: &StreamId,
    state_version: u32,
) -> Result<Option<Snapshot>, ReadError> {
    let row = sqlx::query(
        "SELECT s.stream_version, s.state FROM ledger.snapshots s
           JOIN ledger.events e ON e.stream_id = s.stream_id
                               AND e.stream_version = s.stream_version
                               AND e.event_id = s.event_id
          WHERE s.stream_id = $1 AND s.state_version = $2",
    )
    .bind(stream_id.as_str())
    .bind(i64::from(state_version))
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Snapshot {
            version: to_u64(row.try_get("stream_version")?)?,
            state: row.try_get("state")?,
        })
    })
    .transpose()
}

/// Keeps `snapshot` as the stream's, unless a later one of the same shape is kept already.
/// Records the id of the event it was taken after, read from the log in the same statement.
pub(crate) async fn write(
    pool: &PgPool,
    stream_id: &StreamId,
    state_version: u32,
    snapshot: &Snapshot,
) -> Result<(), ReadError> {
    sqlx::query(
        "INSERT INTO ledger.snapshots (stream_id, state_version, stream_version, event_id, state)
         SELECT e.stream_id, $2, e.stream_version, e.event_id, $4
           FROM ledger.events e
          WHERE e.stream_id = $1 AND e.stream_version = $3
         ON CONFLICT (stream_id) DO UPDATE
            SET state_version = EXCLUDED.state_version,
                stream_version = EXCLUDED.stream_version,
                event_id = EXCLUDED.event_id,
                state = EXCLUDED.state,
                taken_at = now()
          WHERE ledger.snapshots.state_version <> EXCLUDED.state_version
             OR ledger.snapshots.stream_version < EXCLUDED.stream_version",
    )
    .bind(stream_id.as_str())
    .bind(i64::from(state_version))
    .bind(to_i64(snapshot.version))
    .bind(&snapshot.state)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_per_interval() {
        assert!(!due(0, SNAPSHOT_EVERY - 1));
        assert!(due(0, SNAPSHOT_EVERY));
        assert!(due(SNAPSHOT_EVERY - 1, SNAPSHOT_EVERY));
        assert!(!due(SNAPSHOT_EVERY, 2 * SNAPSHOT_EVERY - 1));
        assert!(due(10, 300_000));
    }
}
