//! What the auditor's tools read from the log: events exactly as stored (for the export), and
//! the events of chosen categories and types a replay folds.
//!
//! Rows come back as stored, metadata untyped and stream ids unchecked, so an export copies a
//! tampered row faithfully instead of refusing it; only what cannot be represented at all (a
//! negative version, a row hash of the wrong length) is a [`ReadError::Corrupt`].

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::rows::{to_i64, to_u64};
use crate::{LogPosition, ReadError};

/// One event as stored in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Where it sits in the read order.
    pub log_position: LogPosition,
    /// Its id.
    pub event_id: Uuid,
    /// Its stream, as stored.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its type.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u16,
    /// The payload, as stored.
    pub payload: serde_json::Value,
    /// The metadata, as stored.
    pub metadata: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Its row hash.
    pub row_hash: [u8; 32],
}

/// Which events a replay reads: every event of one category, and the events of some types of
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySelection<'a> {
    /// The category whose every event is read.
    pub every_event_of: &'a str,
    /// The category of which only some types are read.
    pub some_events_of: &'a str,
    /// Those types.
    pub event_types: &'a [&'a str],
}

/// One event a replay folds, its payload as stored text (the replay parses what it needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText {
    /// Where it sits in the read order.
    pub log_position: LogPosition,
    /// Its stream, as stored.
    pub stream_id: String,
    /// Its type.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u16,
    /// The payload, as stored.
    pub payload: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// The position of the last event a gap-safe reader sees now, among those recorded at or
/// before `until` when given.
pub async fn last_position_until(
    pool: &PgPool,
    until: Option<DateTime<Utc>>,
) -> Result<Option<LogPosition>, ReadError> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS tx, position FROM ledger.events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            AND ($1::timestamptz IS NULL OR recorded_at <= $1)
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .persistent(false)
    .bind(until)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(log_position).transpose()
}

/// How many events the log holds up to and including `end`, in read order.
pub async fn count_through(pool: &PgPool, end: LogPosition) -> Result<u64, ReadError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger.events
          WHERE (transaction_id, position) <= ($1::text::xid8, $2)",
    )
    .bind(end.transaction_id.to_string())
    .bind(to_i64(end.position))
    .fetch_one(pool)
    .await?;
    Ok(to_u64(count)?)
}

/// At most `limit` events after `after` and up to `end`, in read order, as stored.
pub async fn events_between(
    pool: &PgPool,
    after: LogPosition,
    end: LogPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, ReadError> {
    let rows = sqlx::query(
        "SELECT transaction_id::text AS tx, position, event_id, stream_id, stream_version,
                event_type, schema_version, payload, metadata, recorded_at, row_hash
           FROM ledger.events
          WHERE (transaction_id, position) > ($1::text::xid8, $2)
            AND (transaction_id, position) <= ($3::text::xid8, $4)
          ORDER BY transaction_id, position LIMIT $5",
    )
    .bind(after.transaction_id.to_string())
    .bind(to_i64(after.position))
    .bind(end.transaction_id.to_string())
    .bind(to_i64(end.position))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(stored_event).collect()
}

/// At most `limit` events after `after` that `selection` names, below the gap-safe watermark,
/// in read order, on `conn` (so a caller can read them in the snapshot of its own
/// transaction).
pub async fn selected_events(
    conn: &mut PgConnection,
    selection: &ReplaySelection<'_>,
    after: LogPosition,
    limit: i64,
) -> Result<Vec<EventText>, ReadError> {
    let rows = sqlx::query(
        "SELECT transaction_id::text AS tx, position, stream_id, event_type, schema_version,
                payload::text AS payload, recorded_at
           FROM ledger.events
          WHERE (category = $1 OR (category = $2 AND event_type = ANY($3)))
            AND (transaction_id, position) > ($4::text::xid8, $5)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY transaction_id, position LIMIT $6",
    )
    .bind(selection.every_event_of)
    .bind(selection.some_events_of)
    .bind(selection.event_types)
    .bind(after.transaction_id.to_string())
    .bind(to_i64(after.position))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(event_text).collect()
}

fn stored_event(row: &PgRow) -> Result<StoredEvent, ReadError> {
    let log_position = log_position(row)?;
    let corrupt = |why: String| ReadError::Corrupt {
        position: log_position.position,
        why,
    };
    let row_hash: Vec<u8> = row.try_get("row_hash")?;
    Ok(StoredEvent {
        log_position,
        event_id: row.try_get("event_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_version: u64::try_from(row.try_get::<i64, _>("stream_version")?)
            .map_err(|e| corrupt(e.to_string()))?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?)
            .map_err(|e| corrupt(e.to_string()))?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
        row_hash: row_hash
            .try_into()
            .map_err(|_| corrupt("row hash is not 32 bytes".into()))?,
    })
}

fn event_text(row: &PgRow) -> Result<EventText, ReadError> {
    let log_position = log_position(row)?;
    Ok(EventText {
        log_position,
        stream_id: row.try_get("stream_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?).map_err(|e| {
            ReadError::Corrupt {
                position: log_position.position,
                why: e.to_string(),
            }
        })?,
        payload: row.try_get("payload")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// The `tx` and `position` columns of a row as a log position.
fn log_position(row: &PgRow) -> Result<LogPosition, ReadError> {
    let tx: String = row.try_get("tx")?;
    let position: i64 = row.try_get("position")?;
    let position = u64::try_from(position).map_err(|_| ReadError::Corrupt {
        position: 0,
        why: format!("position {position}"),
    })?;
    Ok(LogPosition {
        transaction_id: tx.parse().map_err(|_| ReadError::Corrupt {
            position,
            why: format!("transaction id {tx:?}"),
        })?,
        position,
    })
}
