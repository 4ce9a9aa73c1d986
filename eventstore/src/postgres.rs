//! The event log on PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::Clock;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

use crate::error::{AppendError, ReadError};
use crate::group_commit::{self, GroupCommit, RequestOutcome};
use crate::hash::canonical_json;
use crate::limits::MAX_READ_BATCH;
use crate::model::{
    AppendResult, ExpectedVersion, LogPosition, RecordedEvent, StreamAppend, StreamId,
};
use crate::prepare::{PreparedEvent, PreparedStream, prepare, recorded_at};
use crate::rows::{decode_as_read, decode_row, event_columns, read_position, to_i64, to_u64};
use crate::snapshots::{self, Snapshot};
use crate::store::EventStore;

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

/// What appending alone (outside group commit) came to.
enum Attempt {
    /// Stored, or refused for a stream's version.
    Decided(RequestOutcome),
    /// A concurrent writer took an event id or a stream version first: a retry may win.
    Raced,
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
        crate::rows::stream_version(&self.pool, stream_id).await
    }

    /// Answers an append the group commit or a lone append decided: its result, or for a
    /// refused one the result of an identical earlier append if there was one.
    async fn decided(
        &self,
        streams: &[PreparedStream],
        outcome: RequestOutcome,
    ) -> Result<AppendResult, AppendError> {
        match outcome {
            RequestOutcome::Stored(rows) => stored_result(streams, &rows),
            RequestOutcome::WrongVersion {
                stream_id,
                expected,
                actual,
            } => match self.find_replay(streams).await? {
                Some(replay) => Ok(replay),
                None => Err(AppendError::WrongExpectedVersion {
                    stream_id,
                    expected,
                    actual,
                }),
            },
        }
    }

    /// Appends on its own, trying again while concurrent writers win races a retry can win.
    async fn append_alone(
        &self,
        streams: &[PreparedStream],
        recorded_at: DateTime<Utc>,
    ) -> Result<AppendResult, AppendError> {
        for _ in 0..=RACE_RETRIES {
            match self.try_append(streams, recorded_at).await? {
                Attempt::Decided(outcome) => return self.decided(streams, outcome).await,
                Attempt::Raced => {
                    if let Some(replay) = self.find_replay(streams).await? {
                        return Ok(replay);
                    }
                    self.check_expected(streams).await?;
                }
            }
        }
        Err(AppendError::Contended {
            attempts: RACE_RETRIES + 1,
        })
    }

    /// Appends on its own (outside group commit), telling the races apart.
    async fn try_append(
        &self,
        streams: &[PreparedStream],
        recorded_at: DateTime<Utc>,
    ) -> Result<Attempt, sqlx::Error> {
        match group_commit::execute_alone(&self.pool, streams, recorded_at).await {
            Ok(outcome) => Ok(Attempt::Decided(outcome)),
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some(UNIQUE_VIOLATION_STATE) =>
            {
                match db.constraint() {
                    Some("events_event_id_key" | "events_stream_version_key") => Ok(Attempt::Raced),
                    _ => Err(sqlx::Error::Database(db)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// After a race lost to a concurrent writer: refuses the append once an exact expectation
    /// no longer holds. Whether growth was tolerable (`Any`, `Unchanged`) is the database's
    /// call, on the next try.
    async fn check_expected(&self, streams: &[PreparedStream]) -> Result<(), AppendError> {
        for stream in streams {
            let actual = self.stream_version(&stream.stream_id).await?;
            let holds = match stream.expected {
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
        Ok(())
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
        let mut stored = HashMap::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.try_get("event_id")?;
            stored.insert(event_id, row);
        }
        let mut positions = Vec::with_capacity(ids.len());
        let mut versions = Vec::with_capacity(streams.len());
        for stream in streams {
            let mut last_version = checked_version(stream);
            for event in &stream.events {
                let conflict = || AppendError::IdempotencyConflict {
                    event_id: event.event_id,
                };
                let row = stored.get(&event.event_id).ok_or_else(conflict)?;
                if !same_content(row, stream, event)? {
                    return Err(conflict());
                }
                positions.push(to_u64(row.try_get("position")?)?);
                last_version = last_version.max(to_u64(row.try_get("stream_version")?)?);
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

/// Whether a stored row holds what `event` of `stream` would store.
fn same_content(
    row: &PgRow,
    stream: &PreparedStream,
    event: &PreparedEvent,
) -> Result<bool, sqlx::Error> {
    let same_stream = row.try_get::<String, _>("stream_id")? == stream.stream_id.as_str();
    let same_type = row.try_get::<String, _>("event_type")? == event.event_type;
    let same_schema = row.try_get::<i16, _>("schema_version")?
        == i16::try_from(event.schema_version).unwrap_or(i16::MAX);
    let payload: serde_json::Value = row.try_get("payload")?;
    let same_payload = canonical_json(&payload).is_ok_and(|p| p == event.payload.as_bytes());
    Ok(same_stream && same_type && same_schema && same_payload)
}

/// What a part's stream held before its events: known for a check-only part, which has none.
fn checked_version(stream: &PreparedStream) -> u64 {
    match stream.expected {
        ExpectedVersion::Exact(version) => version,
        _ => 0,
    }
}

/// The result of a successful append, in the order the events were given.
fn stored_result(
    streams: &[PreparedStream],
    rows: &[(Uuid, i64, i64)],
) -> Result<AppendResult, AppendError> {
    let by_id: HashMap<Uuid, (i64, i64)> = rows
        .iter()
        .map(|(id, position, version)| (*id, (*position, *version)))
        .collect();
    let mut positions = Vec::with_capacity(rows.len());
    let mut versions = Vec::with_capacity(streams.len());
    for stream in streams {
        let mut last = checked_version(stream);
        for event in &stream.events {
            let (position, version) = by_id.get(&event.event_id).copied().ok_or_else(|| {
                sqlx::Error::Protocol("an append was stored without a row for each event".into())
            })?;
            positions.push(to_u64(position)?);
            last = last.max(to_u64(version)?);
        }
        versions.push((stream.stream_id.clone(), last));
    }
    Ok(AppendResult {
        streams: versions,
        positions,
        idempotent_replay: false,
    })
}

impl EventStore for PgEventStore {
    async fn append_many(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, AppendError> {
        let recorded_at = recorded_at(self.clock.now());
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
            Some(outcome) => self.decided(&streams, outcome).await,
            // Too big to group, or the batch failed as a whole: append alone, where each race
            // can be told apart.
            None => self.append_alone(&streams, recorded_at).await,
        }
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
            Some([category]) => {
                return crate::category_reads::read_category(
                    &self.pool,
                    category,
                    after,
                    None,
                    read_limit(limit),
                )
                .await;
            }
            // Each category's next events in read order through `events_category_read_order`
            // (see `category_reads` for why the bounds are written this way), merged.
            Some(_) => concat!(
                "SELECT e.* FROM (SELECT DISTINCT unnest($4::text[])) AS c(category), LATERAL (
                     SELECT ",
                event_columns!(),
                ", transaction_id AS read_transaction_id FROM ledger.events
                      WHERE (category, transaction_id, position) > (c.category, $1::text::xid8, $2)
                        AND category <= c.category
                        AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                      ORDER BY category, transaction_id, position
                      LIMIT $3) AS e
                  ORDER BY e.read_transaction_id, e.position
                  LIMIT $3"
            ),
        };
        let limit = read_limit(limit);
        let mut query = sqlx::query(sql)
            .bind(after.transaction_id.to_string())
            .bind(to_i64(after.position))
            .bind(limit);
        if let Some(categories) = categories {
            query = query.bind(categories);
        }
        decode_as_read(query.fetch(&self.pool), limit).await
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

    async fn read_snapshot(
        &self,
        stream_id: &StreamId,
        state_version: u32,
    ) -> Result<Option<Snapshot>, ReadError> {
        snapshots::read(&self.pool, stream_id, state_version).await
    }

    async fn write_snapshot(
        &self,
        stream_id: &StreamId,
        state_version: u32,
        snapshot: &Snapshot,
    ) -> Result<(), ReadError> {
        snapshots::write(&self.pool, stream_id, state_version, snapshot).await
    }
}

pub(crate) fn read_limit(limit: usize) -> i64 {
    to_i64(limit.clamp(1, MAX_READ_BATCH) as u64)
}
