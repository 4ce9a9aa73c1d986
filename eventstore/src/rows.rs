//! Rows of `ledger.events` as the log's types: the columns reads select, their decoding, the
//! integer conversions between the log's `u64` and PostgreSQL's `bigint`, and a stream's
//! version (which both the store and its group commit look up).

use futures::{Stream, TryStreamExt};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;

use crate::error::ReadError;
use crate::model::{LogPosition, Metadata, Payload, RecordedEvent, StreamId};

/// The columns [`decode_row`] reads, as one SQL fragment.
macro_rules! event_columns {
    () => {
        "transaction_id::text AS tx, position, event_id, stream_id, stream_version, event_type,
         schema_version, payload, metadata, recorded_at, row_hash"
    };
}
pub(crate) use event_columns;

/// The number of events `stream_id` holds.
pub(crate) async fn stream_version(
    pool: &PgPool,
    stream_id: &StreamId,
) -> Result<u64, sqlx::Error> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT stream_version FROM ledger.events WHERE stream_id = $1
         ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(stream_id.as_str())
    .fetch_optional(pool)
    .await?;
    version.map_or(Ok(0), to_u64)
}

/// Reads a [`LogPosition`] from a transaction id selected as text and a position.
pub(crate) fn read_position(
    row: &PgRow,
    tx_column: &str,
    position_column: &str,
) -> Result<LogPosition, sqlx::Error> {
    let tx: String = row.try_get(tx_column)?;
    let transaction_id = tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(LogPosition {
        transaction_id,
        position: to_u64(row.try_get(position_column)?)?,
    })
}

/// Decodes one `ledger.events` row selected with [`event_columns`].
pub(crate) fn decode_row(row: &PgRow) -> Result<RecordedEvent, ReadError> {
    let log_position = read_position(row, "tx", "position")?;
    let corrupt = |why: String| ReadError::Corrupt {
        position: log_position.position,
        why,
    };
    let stream_id: String = row.try_get("stream_id")?;
    let hash: Vec<u8> = row.try_get("row_hash")?;
    // Straight into its type: through a `serde_json::Value` first cost a second pass.
    let Json(metadata): Json<Metadata> = row
        .try_get("metadata")
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(RecordedEvent {
        log_position,
        event_id: row.try_get("event_id")?,
        stream_id: StreamId::parse(stream_id).map_err(|e| corrupt(e.to_string()))?,
        stream_version: to_u64(row.try_get("stream_version")?)
            .map_err(|e| corrupt(e.to_string()))?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?)
            .map_err(|e| corrupt(e.to_string()))?,
        payload: row
            .try_get::<Json<Payload>, _>("payload")
            .map_err(|e| corrupt(e.to_string()))?
            .0,
        metadata,
        recorded_at: row.try_get("recorded_at")?,
        row_hash: hash
            .try_into()
            .map_err(|_| corrupt("row hash is not 32 bytes".into()))?,
    })
}

/// Decodes rows as they arrive, so decoding runs while the server still sends the rest; `limit`
/// is the most the query returns (at most [`crate::limits::MAX_READ_BATCH`]), room made for at
/// once rather than by copying a large batch each time it outgrows its buffer.
pub(crate) async fn decode_as_read(
    mut rows: impl Stream<Item = Result<PgRow, sqlx::Error>> + Unpin,
    limit: i64,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let mut events = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
    while let Some(row) = rows.try_next().await? {
        events.push(decode_row(&row)?);
    }
    Ok(events)
}

/// A version, position or count as a `bigint`. Saturates: one past `i64::MAX` (only a caller's
/// "after" bound can be) lies beyond anything stored.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `bigint` the schema keeps non-negative (a position, a version, a count) as a `u64`; a
/// negative one is a row the schema should have refused, reported as a decode error.
pub(crate) fn to_u64(value: i64) -> Result<u64, sqlx::Error> {
    u64::try_from(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
