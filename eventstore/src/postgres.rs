//! The event log on PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::Clock;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

use crate::error::{AppendError, InvalidInput, ReadError};
use crate::group_commit::{self, GroupCommit, RequestOutcome};
use crate::hash::{RowContent, canonical_json, row_hash};
use crate::limits::{
    MAX_EVENTS_PER_APPEND, MAX_METADATA_BYTES, MAX_PAYLOAD_BYTES, MAX_READ_BATCH,
    MAX_STREAMS_PER_APPEND,
};
use crate::model::{
    AppendResult, ExpectedVersion, LogPosition, Metadata, RecordedEvent, StreamAppend, StreamId,
    check_event_type,
};
use crate::store::EventStore;

/// The columns [`decode_row`] reads, as one SQL fragment.
macro_rules! event_columns {
    () => {
        "transaction_id::text AS tx, position, event_id, stream_id, stream_version, event_type,
         schema_version, payload, metadata, recorded_at, row_hash"
    };
}
pub(crate) use event_columns;

/// How many times an append is retried after losing a race it can win by trying again (an
/// `Any` append against an exact one, or a retried event id whose first try rolled back).
const RACE_RETRIES: usize = 8;

const UNIQUE_VIOLATION_STATE: &str = "23505";

/// The event log stored in PostgreSQL (`ledger.events`).
#[derive(Clone, Debug)]
pub struct PgEventStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    group_commit: Arc<GroupCommit>,
}

/// One event ready for the database: validated, canonical JSON, and its row hash (computed by
/// the writer, not in the committer every writer waits for).
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) schema_version: u16,
    pub(crate) payload: String,
    pub(crate) metadata: String,
    pub(crate) row_hash: [u8; 32],
}

/// One stream's part of an append, validated.
#[derive(Debug)]
pub(crate) struct PreparedStream {
    pub(crate) stream_id: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
}

enum Attempt {
    Stored(Vec<(Uuid, i64, i64)>),
    WrongVersion { stream_id: StreamId, actual: u64 },
    DuplicateEventId,
    VersionTaken,
}

impl PgEventStore {
    /// A store over `pool` that stamps events with `clock`.
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Self {
        Self {
            pool,
            clock,
            group_commit: Arc::new(GroupCommit::default()),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The clock events are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The number of events `stream_id` holds.
    pub async fn stream_version(&self, stream_id: &StreamId) -> Result<u64, sqlx::Error> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT stream_version FROM ledger.events WHERE stream_id = $1
             ORDER BY stream_version DESC LIMIT 1",
        )
        .bind(stream_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(version.map_or(0, to_u64))
    }

    /// Appends on its own (outside group commit), telling the races apart.
    async fn try_append(
        &self,
        streams: &[PreparedStream],
        recorded_at: DateTime<Utc>,
    ) -> Result<Attempt, sqlx::Error> {
        match group_commit::execute(&self.pool, &[(streams, recorded_at)]).await {
            Ok(outcomes) => Ok(match outcomes.into_iter().next() {
                Some(RequestOutcome::Stored(rows)) => Attempt::Stored(rows),
                Some(RequestOutcome::WrongVersion { stream_id, actual }) => {
                    Attempt::WrongVersion { stream_id, actual }
                }
                None => Attempt::VersionTaken,
            }),
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some(UNIQUE_VIOLATION_STATE) =>
            {
                match db.constraint() {
                    Some("events_event_id_key") => Ok(Attempt::DuplicateEventId),
                    Some("events_stream_version_key") => Ok(Attempt::VersionTaken),
                    _ => Err(sqlx::Error::Database(db)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Answers a retried append from what is stored, if its events are all already there.
    async fn find_replay(
        &self,
        streams: &[PreparedStream],
    ) -> Result<Option<AppendResult>, AppendError> {
        let ids: Vec<Uuid> = streams
            .iter()
            .flat_map(|s| s.events.iter().map(|e| e.event_id))
            .collect();
        let rows = sqlx::query(
            "SELECT event_id, stream_id, stream_version, event_type, schema_version,
                    payload, position
               FROM ledger.events WHERE event_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut stored = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.try_get("event_id")?;
            stored.insert(event_id, row);
        }
        let mut positions = Vec::with_capacity(ids.len());
        let mut versions = Vec::with_capacity(streams.len());
        for stream in streams {
            let mut last_version = checked_version(stream);
            for event in &stream.events {
                let Some(row) = stored.get(&event.event_id) else {
                    return Err(AppendError::IdempotencyConflict {
                        event_id: event.event_id,
                    });
                };
                let same_stream =
                    row.try_get::<String, _>("stream_id")? == stream.stream_id.as_str();
                let same_type = row.try_get::<String, _>("event_type")? == event.event_type;
                let same_schema = row.try_get::<i16, _>("schema_version")?
                    == i16::try_from(event.schema_version).unwrap_or(i16::MAX);
                let payload: serde_json::Value = row.try_get("payload")?;
                let same_payload =
                    canonical_json(&payload).is_ok_and(|p| p == event.payload.as_bytes());
                if !(same_stream && same_type && same_schema && same_payload) {
                    return Err(AppendError::IdempotencyConflict {
                        event_id: event.event_id,
                    });
                }
                positions.push(to_u64(row.try_get("position")?));
                last_version = last_version.max(to_u64(row.try_get("stream_version")?));
            }
            versions.push((stream.stream_id.clone(), last_version));
        }
        Ok(Some(AppendResult {
            streams: versions,
            positions,
            idempotent_replay: true,
        }))
    }
}

/// What a part's stream held before its events: known for a check-only part, which has none.
fn checked_version(stream: &PreparedStream) -> u64 {
    match stream.expected {
        ExpectedVersion::Exact(version) => version,
        _ => 0,
    }
}

/// The result of a successful append, in the order the events were given.
fn stored_result(streams: &[PreparedStream], rows: &[(Uuid, i64, i64)]) -> AppendResult {
    let by_id: std::collections::HashMap<Uuid, (i64, i64)> = rows
        .iter()
        .map(|(id, position, version)| (*id, (*position, *version)))
        .collect();
    let mut positions = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(streams.len());
    for stream in streams {
        let mut last = checked_version(stream);
        for event in &stream.events {
            let (position, version) = by_id.get(&event.event_id).copied().unwrap_or_default();
            positions.push(to_u64(position));
            last = last.max(to_u64(version));
        }
        versions.push((stream.stream_id.clone(), last));
    }
    AppendResult {
        streams: versions,
        positions,
        idempotent_replay: false,
    }
}

/// Validates `appends` and encodes them as they will be stored, recorded at `recorded_at`.
fn prepare(
    appends: Vec<StreamAppend>,
    recorded_at: DateTime<Utc>,
) -> Result<Vec<PreparedStream>, InvalidInput> {
    if appends.len() > MAX_STREAMS_PER_APPEND {
        return Err(InvalidInput::Streams(format!(
            "{} streams exceed the limit of {MAX_STREAMS_PER_APPEND}",
            appends.len()
        )));
    }
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    let checks_nothing = |a: &StreamAppend| {
        a.events.is_empty()
            && matches!(
                a.expected,
                ExpectedVersion::Any | ExpectedVersion::Unchanged { .. }
            )
    };
    if total == 0 || appends.iter().any(checks_nothing) {
        return Err(InvalidInput::Empty);
    }
    if total > MAX_EVENTS_PER_APPEND {
        return Err(InvalidInput::TooManyEvents {
            count: total,
            limit: MAX_EVENTS_PER_APPEND,
        });
    }
    let mut seen_streams = HashSet::with_capacity(appends.len());
    let mut seen_ids = HashSet::with_capacity(total);
    let mut prepared = Vec::with_capacity(appends.len());
    // The events of one append nearly always share their metadata: encode it once.
    let mut last_metadata: Option<(Metadata, String)> = None;
    for append in appends {
        if !seen_streams.insert(append.stream_id.clone()) {
            return Err(InvalidInput::Streams(format!(
                "stream {} appears twice in one append",
                append.stream_id
            )));
        }
        let mut events = Vec::with_capacity(append.events.len());
        for event in append.events {
            check_event_type(&event.event_type)?;
            if !seen_ids.insert(event.event_id) {
                return Err(InvalidInput::DuplicateEventId(event.event_id));
            }
            let payload = canonical_text(&event.payload)?;
            if payload.len() > MAX_PAYLOAD_BYTES {
                return Err(InvalidInput::PayloadTooLarge {
                    size: payload.len(),
                    limit: MAX_PAYLOAD_BYTES,
                });
            }
            let metadata = match &last_metadata {
                Some((same, text)) if *same == event.metadata => text.clone(),
                _ => {
                    let value = serde_json::to_value(&event.metadata)
                        .map_err(|e| InvalidInput::Payload(e.to_string()))?;
                    let text = canonical_text(&value)?;
                    last_metadata = Some((event.metadata, text.clone()));
                    text
                }
            };
            if metadata.len() > MAX_METADATA_BYTES {
                return Err(InvalidInput::MetadataTooLarge {
                    size: metadata.len(),
                    limit: MAX_METADATA_BYTES,
                });
            }
            let row_hash = row_hash(&RowContent {
                event_id: event.event_id,
                stream_id: append.stream_id.as_str(),
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: payload.as_bytes(),
                metadata: metadata.as_bytes(),
                recorded_at,
            });
            events.push(PreparedEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload,
                metadata,
                row_hash,
            });
        }
        prepared.push(PreparedStream {
            stream_id: append.stream_id,
            expected: append.expected,
            events,
        });
    }
    Ok(prepared)
}

impl EventStore for PgEventStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, AppendError> {
        let recorded_at = truncate_to_micros(self.clock.now());
        let streams = Arc::new(prepare(appends, recorded_at)?);
        let events: usize = streams.iter().map(|s| s.events.len()).sum();
        let grouped = if events < group_commit::ALONE_FROM_EVENTS {
            self.group_commit
                .submit(&self.pool, Arc::clone(&streams), recorded_at)
                .await
        } else {
            None
        };
        match grouped {
            Some(RequestOutcome::Stored(rows)) => return Ok(stored_result(&streams, &rows)),
            Some(RequestOutcome::WrongVersion { stream_id, actual }) => {
                if let Some(replay) = self.find_replay(&streams).await? {
                    return Ok(replay);
                }
                let expected = streams
                    .iter()
                    .find(|s| s.stream_id == stream_id)
                    .map_or(ExpectedVersion::Any, |s| s.expected);
                return Err(AppendError::WrongExpectedVersion {
                    stream_id,
                    expected,
                    actual,
                });
            }
            // Too big to group, or the batch failed as a whole: append alone, where each race
            // can be told apart.
            None => {}
        }
        for _ in 0..=RACE_RETRIES {
            let wrong_version = match self.try_append(&streams, recorded_at).await? {
                Attempt::Stored(rows) => return Ok(stored_result(&streams, &rows)),
                Attempt::WrongVersion { stream_id, actual } => Some((stream_id, actual)),
                Attempt::DuplicateEventId | Attempt::VersionTaken => None,
            };
            if let Some(replay) = self.find_replay(&streams).await? {
                return Ok(replay);
            }
            if let Some((stream_id, actual)) = wrong_version {
                let expected = streams
                    .iter()
                    .find(|s| s.stream_id == stream_id)
                    .map_or(ExpectedVersion::Any, |s| s.expected);
                return Err(AppendError::WrongExpectedVersion {
                    stream_id,
                    expected,
                    actual,
                });
            }
            // A version taken by a concurrent writer: exact expectations are now wrong.
            for stream in streams.iter() {
                let actual = self.stream_version(&stream.stream_id).await?;
                let holds = match stream.expected {
                    // Whether the growth was tolerable is the database's call: try again.
                    ExpectedVersion::Any | ExpectedVersion::Unchanged { .. } => true,
                    ExpectedVersion::NoStream => actual == 0,
                    ExpectedVersion::Exact(v) => actual == v,
                };
                if !holds {
                    return Err(AppendError::WrongExpectedVersion {
                        stream_id: stream.stream_id.clone(),
                        expected: stream.expected,
                        actual,
                    });
                }
            }
        }
        Err(AppendError::Contended {
            attempts: RACE_RETRIES + 1,
        })
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM ledger.events
              WHERE stream_id = $1 AND stream_version > $2
              ORDER BY stream_version LIMIT $3"
        ))
        .bind(stream_id.as_str())
        .bind(to_i64(after_version))
        .bind(read_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_streams(
        &self,
        after: &[(StreamId, u64)],
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        if after.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = after.iter().map(|(id, _)| id.as_str()).collect();
        let versions: Vec<i64> = after.iter().map(|(_, v)| to_i64(*v)).collect();
        // One index probe per stream, whatever the statistics say: as a join, the plan made
        // while the log was small (a hash join over a sequential scan) stayed in use as the log
        // grew, and every command scanned the whole log. `OFFSET 0` keeps the planner from
        // folding the lateral subquery back into that join.
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM unnest($1::text[], $2::bigint[]) AS wanted(id, after_version)
               CROSS JOIN LATERAL (
                   SELECT * FROM ledger.events e
                    WHERE e.stream_id = wanted.id AND e.stream_version > wanted.after_version
                   OFFSET 0
               ) AS events
              ORDER BY stream_id, stream_version"
        ))
        .bind(&ids)
        .bind(&versions)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_events(&self, event_ids: &[Uuid]) -> Result<Vec<RecordedEvent>, ReadError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM ledger.events WHERE event_id = ANY($1)"
        ))
        .bind(event_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_log(
        &self,
        after: LogPosition,
        categories: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let sql = match categories {
            None => concat!(
                "SELECT ",
                event_columns!(),
                " FROM ledger.events
                  WHERE (transaction_id, position) > ($1::text::xid8, $2)
                    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY transaction_id, position
                  LIMIT $3"
            ),
            // Each category's next events in read order through `events_category_read_order`,
            // merged: the cost follows the batch, not what lies beyond it, whether a category
            // is rare or most of the log (one scan with `category = ANY` sorted every later
            // event of the categories on each batch).
            Some(_) => concat!(
                "SELECT e.* FROM (SELECT DISTINCT unnest($4::text[])) AS c(category), LATERAL (
                     SELECT ",
                event_columns!(),
                ", transaction_id AS read_transaction_id FROM ledger.events
                      WHERE category = c.category
                        AND (transaction_id, position) > ($1::text::xid8, $2)
                        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY transaction_id, position
                      LIMIT $3) AS e
                  ORDER BY e.read_transaction_id, e.position
                  LIMIT $3"
            ),
        };
        let mut query = sqlx::query(sql)
            .bind(after.transaction_id.to_string())
            .bind(to_i64(after.position))
            .bind(read_limit(limit));
        if let Some(categories) = categories {
            query = query.bind(categories);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(decode_row).collect()
    }

    async fn head(&self) -> Result<LogPosition, ReadError> {
        let row = sqlx::query(
            "SELECT transaction_id::text AS tx, position FROM ledger.events
              WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(LogPosition::START),
            Some(row) => Ok(read_position(&row, "tx", "position")?),
        }
    }
}

fn read_limit(limit: usize) -> i64 {
    to_i64(limit.clamp(1, MAX_READ_BATCH) as u64)
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
        position: to_u64(row.try_get(position_column)?),
    })
}

/// Decodes one `ledger.events` row selected with the columns the reads above use.
pub(crate) fn decode_row(row: &PgRow) -> Result<RecordedEvent, ReadError> {
    let log_position = read_position(row, "tx", "position")?;
    let corrupt = |why: String| ReadError::Corrupt {
        position: log_position.position,
        why,
    };
    let stream_id: String = row.try_get("stream_id")?;
    let hash: Vec<u8> = row.try_get("row_hash")?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    Ok(RecordedEvent {
        log_position,
        event_id: row.try_get("event_id")?,
        stream_id: StreamId::parse(stream_id).map_err(|e| corrupt(e.to_string()))?,
        stream_version: to_u64(row.try_get("stream_version")?),
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?)
            .map_err(|e| corrupt(e.to_string()))?,
        payload: row.try_get("payload")?,
        metadata: serde_json::from_value(metadata).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.try_get("recorded_at")?,
        row_hash: hash
            .try_into()
            .map_err(|_| corrupt("row hash is not 32 bytes".into()))?,
    })
}

/// PostgreSQL keeps microseconds; the hash must cover exactly what is stored.
pub(crate) fn truncate_to_micros(instant: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(instant.timestamp_micros()).unwrap_or(instant)
}

fn canonical_text(value: &serde_json::Value) -> Result<String, InvalidInput> {
    String::from_utf8(canonical_json(value)?).map_err(|e| InvalidInput::Payload(e.to_string()))
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
