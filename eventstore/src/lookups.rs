//! Questions about streams that the log's own indexes answer, for operations that span
//! streams: which streams of a category await an event, which stream recorded a given value,
//! which streams recorded an event of some type, where given events sit in the log.
//!
//! Categories, event types and payload fields are the caller's: this crate names none. Each
//! query is tuned to the log's indexes (`events_category_read_order`, and `(stream_id,
//! stream_version)` for a test per stream), so it lives beside the table rather than in the
//! crate that asks. Each reads the table as committed now, not with the gap-safe reader, which
//! stays below the oldest transaction running anywhere on the cluster and could miss what was
//! appended a moment ago.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::rows::{read_position, to_i64};
use crate::{LogPosition, ReadError, StreamId};

/// One event's type, schema version and payload, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPayload {
    /// The event type.
    pub event_type: String,
    /// The payload's schema version, as stored (a `smallint`).
    pub schema_version: i16,
    /// The payload.
    pub payload: serde_json::Value,
}

/// The streams of a category that recorded an event of one type in a window of recording
/// instants and hold no event of some other types (the ones they await).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awaiting<'a> {
    /// The streams' category.
    pub category: &'a str,
    /// The type of the event recorded in the window.
    pub recorded: &'a str,
    /// The window's start, included.
    pub recorded_from: DateTime<Utc>,
    /// The window's end, excluded.
    pub recorded_before: DateTime<Utc>,
    /// The event types none of which the streams hold.
    pub awaited: &'a [&'a str],
    /// Most streams answered.
    pub limit: usize,
}

/// The streams `awaiting` describes, in the order their event of type `awaiting.recorded` was
/// recorded, at most `awaiting.limit`. The `(stream_id, stream_version)` index answers the
/// test for awaited events per stream.
pub async fn streams_awaiting(
    pool: &PgPool,
    awaiting: &Awaiting<'_>,
) -> Result<Vec<StreamId>, ReadError> {
    let limit = i64::try_from(awaiting.limit).unwrap_or(i64::MAX);
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT i.stream_id FROM ledger.events i
          WHERE i.category = $1 AND i.event_type = $2
            AND i.recorded_at >= $3 AND i.recorded_at < $4
            AND NOT EXISTS (
                SELECT 1 FROM ledger.events o
                 WHERE o.stream_id = i.stream_id AND o.event_type = ANY($5))
          ORDER BY i.recorded_at, i.stream_id
          LIMIT $6",
    )
    .bind(awaiting.category)
    .bind(awaiting.recorded)
    .bind(awaiting.recorded_from)
    .bind(awaiting.recorded_before)
    .bind(awaiting.awaited)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    parse_streams(streams)
}

/// An event of one type in one category whose payload holds a top-level field with a given
/// text value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadMatch<'a> {
    /// The event's category.
    pub category: &'a str,
    /// The event's type.
    pub event_type: &'a str,
    /// The payload field, at the payload's top level.
    pub field: &'a str,
    /// The field's value, as text.
    pub value: &'a str,
}

/// A stream holding an event `matching` describes, if any (one of them when several do).
pub async fn stream_matching(
    pool: &PgPool,
    matching: &PayloadMatch<'_>,
) -> Result<Option<StreamId>, ReadError> {
    let stream_id: Option<String> = sqlx::query_scalar(
        "SELECT stream_id FROM ledger.events
          WHERE category = $1 AND event_type = $2
            AND payload->>$3::text = $4
          LIMIT 1",
    )
    .bind(matching.category)
    .bind(matching.event_type)
    .bind(matching.field)
    .bind(matching.value)
    .fetch_optional(pool)
    .await?;
    Ok(stream_id.map(StreamId::parse).transpose()?)
}

/// The stream of every event of `event_type` in `category`, in log position order: once per
/// such event, so for a type a stream records once (its opening event, say) each stream once,
/// in the order the streams were opened.
pub async fn streams_recording(
    pool: &PgPool,
    category: &str,
    event_type: &str,
) -> Result<Vec<StreamId>, ReadError> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM ledger.events
          WHERE category = $1 AND event_type = $2
          ORDER BY position",
    )
    .bind(category)
    .bind(event_type)
    .fetch_all(pool)
    .await?;
    parse_streams(streams)
}

/// Every event of `category` whose type is one of `event_types`, in log position order.
pub async fn events_of_types(
    pool: &PgPool,
    category: &str,
    event_types: &[&str],
) -> Result<Vec<StoredPayload>, ReadError> {
    let rows: Vec<(String, i16, serde_json::Value)> = sqlx::query_as(
        "SELECT event_type, schema_version, payload FROM ledger.events
          WHERE category = $1 AND event_type = ANY($2)
          ORDER BY position",
    )
    .bind(category)
    .bind(event_types)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event_type, schema_version, payload)| StoredPayload {
            event_type,
            schema_version,
            payload,
        })
        .collect())
}

/// The log position of each event named by its stream and version, in the order given; `None`
/// for an event the log does not hold. One query for them all.
pub async fn positions_of(
    pool: &PgPool,
    events: &[(&str, u64)],
) -> Result<Vec<Option<LogPosition>>, ReadError> {
    let streams: Vec<&str> = events.iter().map(|(stream, _)| *stream).collect();
    let versions: Vec<i64> = events.iter().map(|(_, version)| to_i64(*version)).collect();
    let rows = sqlx::query(
        "SELECT w.n, e.transaction_id::text AS tx, e.position
           FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS w(stream, version, n)
           JOIN ledger.events e ON e.stream_id = w.stream AND e.stream_version = w.version",
    )
    .bind(&streams)
    .bind(&versions)
    .fetch_all(pool)
    .await?;
    let mut positions = vec![None; events.len()];
    for row in &rows {
        let n: i64 = row.try_get("n")?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|index| positions.get_mut(index))
            .ok_or_else(|| sqlx::Error::Decode(format!("ordinality {n}").into()))?;
        *slot = Some(read_position(row, "tx", "position")?);
    }
    Ok(positions)
}

fn parse_streams(streams: Vec<String>) -> Result<Vec<StreamId>, ReadError> {
    Ok(streams
        .into_iter()
        .map(StreamId::parse)
        .collect::<Result<_, _>>()?)
}
