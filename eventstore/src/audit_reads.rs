//! What the auditor's tools read from the log: events exactly as stored (for the export), and
//! the events of chosen categories and types a replay folds.
//!
//! Rows come back as stored, metadata untyped and stream ids unchecked, so an export copies a
//! tampered row faithfully instead of refusing it; only what cannot be represented at all (a
//! negative version, a row hash of the wrong length) is a [`ReadError::Corrupt`].

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::category_reads::in_read_order;
use crate::limits::MAX_READ_BATCH;
use crate::postgres::read_limit;
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

/// The events `selection` names, in read order, batch after batch, as one transaction's
/// snapshot sees them (below its oldest running transaction, so only committed events): one walk
/// of `events_category_read_order` per category, merged here.
///
/// Each walk is [`crate::category_reads`]'s read of a category (its bound written so that only
/// the category index answers, whatever the planner knows of the table); the types a category
/// is read for are picked out of its walk rather than in its `WHERE`, which would let the
/// planner judge the walk short and sort the category's every later event instead. Merging in
/// SQL would sort each batch's rows, payloads included, on the server.
#[derive(Debug)]
pub struct SelectedEvents<'a> {
    walks: [Walk<'a>; 2],
}

impl<'a> SelectedEvents<'a> {
    /// A reader of `selection`'s events from the start of the log.
    pub fn new(selection: &ReplaySelection<'a>) -> Self {
        Self {
            walks: [
                Walk::new(selection.every_event_of, None),
                Walk::new(selection.some_events_of, Some(selection.event_types)),
            ],
        }
    }

    /// The next events, at most `limit` (clamped to the log's read limit), on `conn` (so a
    /// caller reads them all in the snapshot of its own transaction); none when every one has
    /// been handed out.
    pub async fn next_batch(
        &mut self,
        conn: &mut PgConnection,
        limit: usize,
    ) -> Result<Vec<EventText>, ReadError> {
        let limit = limit.clamp(1, MAX_READ_BATCH);
        loop {
            for walk in &mut self.walks {
                if !walk.exhausted && walk.buffered.len() < limit {
                    walk.read(conn, limit).await?;
                }
            }
            let known_up_to = self
                .walks
                .iter()
                .map(Walk::known_up_to)
                .min()
                .unwrap_or(LogPosition::START);
            let mut buffers = self.walks.each_mut().map(|walk| &mut walk.buffered);
            let batch = in_read_order(&mut buffers, |e| e.log_position, known_up_to, limit);
            // A batch comes back empty while a walk went through types it does not select
            // only: the walk behind is read further.
            let done = self
                .walks
                .iter()
                .all(|walk| walk.exhausted && walk.buffered.is_empty());
            if !batch.is_empty() || done {
                return Ok(batch);
            }
        }
    }
}

/// One category's events read ahead and not yet handed out.
#[derive(Debug)]
struct Walk<'a> {
    category: &'a str,
    /// The types handed out; every type when `None`.
    event_types: Option<&'a [&'a str]>,
    buffered: VecDeque<EventText>,
    /// The last event read, handed out or not.
    read_up_to: LogPosition,
    /// Whether a read came back short: in one snapshot, no more events follow.
    exhausted: bool,
}

impl<'a> Walk<'a> {
    fn new(category: &'a str, event_types: Option<&'a [&'a str]>) -> Self {
        Self {
            category,
            event_types,
            buffered: VecDeque::new(),
            read_up_to: LogPosition::START,
            exhausted: false,
        }
    }

    /// The last position up to which the category is known.
    fn known_up_to(&self) -> LogPosition {
        if self.exhausted {
            LogPosition {
                transaction_id: u64::MAX,
                position: u64::MAX,
            }
        } else {
            self.read_up_to
        }
    }

    /// Reads the category's next `limit` events, keeping those of the types handed out (the
    /// others come without their payload).
    async fn read(&mut self, conn: &mut PgConnection, limit: usize) -> Result<(), ReadError> {
        let rows = sqlx::query(
            "SELECT transaction_id::text AS tx, position, stream_id, event_type, schema_version,
                    CASE WHEN $4::text[] IS NULL OR event_type = ANY($4)
                         THEN payload::text END AS payload,
                    recorded_at
               FROM ledger.events
              WHERE (category, transaction_id, position) > ($1, $2::text::xid8, $3)
                AND category <= $1
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY category, transaction_id, position
              LIMIT $5",
        )
        .bind(self.category)
        .bind(self.read_up_to.transaction_id.to_string())
        .bind(to_i64(self.read_up_to.position))
        .bind(self.event_types)
        .bind(read_limit(limit))
        .fetch_all(conn)
        .await?;
        self.exhausted = rows.len() < limit;
        for row in &rows {
            self.read_up_to = log_position(row)?;
            if let Some(payload) = row.try_get::<Option<String>, _>("payload")? {
                self.buffered.push_back(event_text(row, payload)?);
            }
        }
        Ok(())
    }
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

fn event_text(row: &PgRow, payload: String) -> Result<EventText, ReadError> {
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
        payload,
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
