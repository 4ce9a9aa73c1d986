//! Group commit: appends from many concurrent writers share one transaction, so one commit (one
//! WAL flush) stores them all. Each request keeps its own all-or-nothing and expected-version
//! semantics (`ledger.append_batch` leaves out a request whose versions do not hold).
//!
//! Batching is natural, not timed: a committer takes whatever is waiting when it is free, so a
//! lone writer pays no delay and many writers share commits.
//!
//! A request that locks a stream (expected version `Any` or `Unchanged`) queues for the
//! committer that stream hashes to; the others queue in one shared queue that any free
//! committer takes from. A batch holds its streams' locks until it commits; with only the
//! shared queue, the committers took turns batching requests for one hot stream (a merchant's
//! busiest gateway) and each waited on the others' locks, so the batches were small and ran one
//! after the other. Requests that lock nothing keep the shared queue: split by stream among
//! the committers, each waited for its own committer while others were free.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::model::{ExpectedVersion, StreamId};
use crate::prepare::PreparedStream;
use crate::rows::{stream_version, to_i64, to_u64};

/// Most requests one batch carries.
const MAX_BATCH_REQUESTS: usize = 256;
/// Most events one batch carries (a request bigger than this goes alone).
const MAX_BATCH_EVENTS: usize = 5_000;
/// Batches in flight at once, so building one overlaps another's commit. Two on a 2-core
/// machine: eight ran initiation 10–20 % slower, four a little slower than two.
pub(crate) const COMMITTERS: usize = 2;
/// Requests with at least this many events are already batches: they commit on their own.
pub(crate) const ALONE_FROM_EVENTS: usize = 32;
/// Requests waiting in one queue; writers wait for room beyond this.
const QUEUE_CAPACITY: usize = 1_024;

/// What one request of a batch got.
#[derive(Debug)]
pub(crate) enum RequestOutcome {
    /// Stored: each event's id, position and stream version.
    Stored(Vec<(Uuid, i64, i64)>),
    /// Left out: this stream is not at the expected version.
    WrongVersion {
        /// The stream at fault.
        stream_id: StreamId,
        /// What the request expected of it.
        expected: ExpectedVersion,
        /// What it holds.
        actual: u64,
    },
}

struct Pending {
    streams: Arc<Vec<PreparedStream>>,
    recorded_at: DateTime<Utc>,
    reply: oneshot::Sender<Option<RequestOutcome>>,
}

/// The committers' queues, started on first use (inside the caller's runtime).
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queues: OnceLock<Queues>,
}

#[derive(Debug)]
struct Queues {
    /// Requests that lock a stream: one queue per committer, chosen by the stream.
    locking: Vec<mpsc::Sender<Pending>>,
    /// Requests that lock nothing: whichever committer is free takes them.
    shared: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Appends `streams` together with whatever else is waiting. `None` when the batch as a
    /// whole failed (a race with a writer outside it, a duplicate event id, a database error):
    /// the caller then appends on its own, which sorts out which one it was.
    pub(crate) async fn submit(
        &self,
        pool: &PgPool,
        streams: Arc<Vec<PreparedStream>>,
        recorded_at: DateTime<Utc>,
    ) -> Option<RequestOutcome> {
        let queues = self.queues.get_or_init(|| start(pool));
        let queue = match first_locked(&streams) {
            Some(stream_id) => &queues.locking[stream_id.slot(queues.locking.len())],
            None => &queues.shared,
        };
        let (reply, answer) = oneshot::channel();
        queue
            .send(Pending {
                streams,
                recorded_at,
                reply,
            })
            .await
            .ok()?;
        answer.await.ok().flatten()
    }
}

/// The first stream the request appends to with `Any` or `Unchanged`, which a batch locks.
fn first_locked(streams: &[PreparedStream]) -> Option<&StreamId> {
    streams
        .iter()
        .find(|s| {
            matches!(
                s.expected,
                ExpectedVersion::Any | ExpectedVersion::Unchanged { .. }
            )
        })
        .map(|s| &s.stream_id)
}

fn start(pool: &PgPool) -> Queues {
    let (shared, shared_receiver) = mpsc::channel(QUEUE_CAPACITY);
    let shared_receiver = Arc::new(Mutex::new(shared_receiver));
    let locking = (0..COMMITTERS)
        .map(|_| {
            let (sender, mut own) = mpsc::channel(QUEUE_CAPACITY);
            let (pool, shared) = (pool.clone(), Arc::clone(&shared_receiver));
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&mut own, &shared).await {
                    commit(&pool, batch).await;
                }
            });
            sender
        })
        .collect();
    Queues { locking, shared }
}

/// Waits for one request, from the committer's own queue or the shared one, then takes what
/// else is already waiting in either, within the batch bounds.
async fn next_batch(
    own: &mut mpsc::Receiver<Pending>,
    shared: &Mutex<mpsc::Receiver<Pending>>,
) -> Option<Vec<Pending>> {
    let first = tokio::select! {
        Some(pending) = own.recv() => pending,
        pending = async { shared.lock().await.recv().await } => pending?,
    };
    let mut events = event_count(&first);
    let mut batch = vec![first];
    let mut take = |receiver: &mut mpsc::Receiver<Pending>| {
        while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
            let Ok(next) = receiver.try_recv() else { break };
            events += event_count(&next);
            batch.push(next);
        }
    };
    take(own);
    if let Ok(mut shared) = shared.try_lock() {
        take(&mut shared);
    }
    Some(batch)
}

fn event_count(pending: &Pending) -> usize {
    pending.streams.iter().map(|s| s.events.len()).sum()
}

async fn commit(pool: &PgPool, batch: Vec<Pending>) {
    let requests: Vec<(&[PreparedStream], DateTime<Utc>)> = batch
        .iter()
        .map(|p| (p.streams.as_slice(), p.recorded_at))
        .collect();
    match execute(pool, &requests).await {
        Ok(outcomes) => {
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                let _ = pending.reply.send(Some(outcome));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, requests = batch.len(), "batch failed; appending one by one");
            for pending in batch {
                let _ = pending.reply.send(None);
            }
        }
    }
}

/// Appends one request on its own, outside any batch: a duplicate event id or a version taken
/// meanwhile then fails this request alone, as the database's own error.
pub(crate) async fn execute_alone(
    pool: &PgPool,
    streams: &[PreparedStream],
    recorded_at: DateTime<Utc>,
) -> Result<RequestOutcome, sqlx::Error> {
    let mut outcomes = execute(pool, &[(streams, recorded_at)]).await?;
    // One outcome per request, so exactly one.
    Ok(outcomes.swap_remove(0))
}

/// Appends the requests in one transaction (one call to `ledger.append_batch`) and answers
/// each one's outcome, in order.
async fn execute(
    pool: &PgPool,
    requests: &[(&[PreparedStream], DateTime<Utc>)],
) -> Result<Vec<RequestOutcome>, sqlx::Error> {
    if let [([single], recorded_at)] = requests
        && matches!(
            single.expected,
            ExpectedVersion::NoStream | ExpectedVersion::Exact(_)
        )
    {
        return Ok(vec![insert_one_stream(pool, single, *recorded_at).await?]);
    }
    let batch = BatchArrays::of(requests);
    let rows = append_batch(pool, &batch).await?;
    outcomes(requests, rows, batch.event_ids.len())
}

/// One stream with a known version, alone: one plain INSERT. Versions are assigned here, the
/// unique (stream, version) key refuses a stream that moved on, and the EXISTS refuses one that
/// is not there yet.
async fn insert_one_stream(
    pool: &PgPool,
    stream: &PreparedStream,
    recorded_at: DateTime<Utc>,
) -> Result<RequestOutcome, sqlx::Error> {
    let base = match stream.expected {
        ExpectedVersion::Exact(v) => to_i64(v),
        ExpectedVersion::NoStream | ExpectedVersion::Any | ExpectedVersion::Unchanged { .. } => 0,
    };
    let count = stream.events.len();
    let mut event_ids = Vec::with_capacity(count);
    let mut event_types = Vec::with_capacity(count);
    let mut schema_versions = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut metadatas = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for event in &stream.events {
        event_ids.push(event.event_id);
        event_types.push(event.event_type.as_str());
        schema_versions.push(i16::try_from(event.schema_version).unwrap_or(i16::MAX));
        payloads.push(event.payload.as_str());
        metadatas.push(event.metadata.as_str());
        hashes.push(event.row_hash.to_vec());
    }
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "INSERT INTO ledger.events (event_id, stream_id, category, stream_version,
             event_type, schema_version, payload, metadata, recorded_at, row_hash)
         SELECT n.event_id, $1, $2, $3 + n.ord, n.event_type, n.schema_version,
                n.payload::jsonb, n.metadata::jsonb, $4, n.row_hash
           FROM unnest($5::uuid[], $6::text[], $7::smallint[], $8::text[], $9::text[],
                       $10::bytea[])
                WITH ORDINALITY AS n(event_id, event_type, schema_version, payload,
                                     metadata, row_hash, ord)
          WHERE $3 = 0 OR EXISTS (SELECT 1 FROM ledger.events
                                   WHERE stream_id = $1 AND stream_version = $3)
         RETURNING event_id, position, stream_version",
    )
    .bind(stream.stream_id.as_str())
    .bind(stream.stream_id.category())
    .bind(base)
    .bind(recorded_at)
    .bind(&event_ids)
    .bind(&event_types)
    .bind(&schema_versions)
    .bind(&payloads)
    .bind(&metadatas)
    .bind(&hashes)
    .fetch_all(pool)
    .await?;
    if !rows.is_empty() {
        return Ok(RequestOutcome::Stored(rows));
    }
    Ok(RequestOutcome::WrongVersion {
        stream_id: stream.stream_id.clone(),
        expected: stream.expected,
        actual: stream_version(pool, &stream.stream_id).await?,
    })
}

/// A row `ledger.append_batch` answers: a refused request (its number, the stream at fault and
/// the version it holds) or an appended event (its id, position and version).
type BatchRow = (
    Option<i32>,
    Option<String>,
    Option<i64>,
    Option<Uuid>,
    Option<i64>,
    Option<i64>,
);

/// Calls `ledger.append_batch` with the batch's arguments.
async fn append_batch(
    pool: &PgPool,
    batch: &BatchArrays<'_>,
) -> Result<Vec<BatchRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT failed_request, failed_stream, actual_version,
                appended_event_id, appended_position, appended_version
           FROM ledger.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                    $14, $15, $16, $17::text[]::jsonb[], $18::text[]::jsonb[],
                                    $19, $20)",
    )
    .bind(&batch.part_requests)
    .bind(&batch.part_streams)
    .bind(&batch.expected_versions)
    .bind(&batch.since_versions)
    .bind(&batch.part_checks)
    .bind(&batch.part_counts)
    .bind(&batch.part_types)
    .bind(&batch.stream_ids)
    .bind(&batch.categories)
    .bind(&batch.check_streams)
    .bind(&batch.check_since)
    .bind(&batch.check_tolerated)
    .bind(&batch.event_parts)
    .bind(&batch.event_ids)
    .bind(&batch.event_types)
    .bind(&batch.schema_versions)
    .bind(&batch.payloads)
    .bind(&batch.metadatas)
    .bind(&batch.recorded_ats)
    .bind(&batch.row_hashes)
    .fetch_all(pool)
    .await
}

/// Each request's outcome from the rows of `ledger.append_batch`: a refused request has a row
/// naming the stream at fault, and every event of the others a row of its own.
fn outcomes(
    requests: &[(&[PreparedStream], DateTime<Utc>)],
    rows: Vec<BatchRow>,
    events: usize,
) -> Result<Vec<RequestOutcome>, sqlx::Error> {
    let mut refused: Vec<Option<RequestOutcome>> = (0..requests.len()).map(|_| None).collect();
    let mut stored = HashMap::with_capacity(events);
    for row in rows {
        match row {
            (Some(request), Some(stream), Some(actual), None, None, None) => {
                let (index, outcome) = refusal(requests, request, &stream, actual)?;
                refused[index] = Some(outcome);
            }
            (None, None, None, Some(event_id), Some(position), Some(version)) => {
                stored.insert(event_id, (position, version));
            }
            _ => return Err(unexpected("a row that is neither a refusal nor an event")),
        }
    }
    let mut outcomes = Vec::with_capacity(requests.len());
    for (refusal, (streams, _)) in refused.into_iter().zip(requests) {
        outcomes.push(match refusal {
            Some(refusal) => refusal,
            None => stored_outcome(streams, &stored)?,
        });
    }
    Ok(outcomes)
}

/// The outcome of request number `request` (1-based), left out because `stream` holds
/// `actual` events; with the request's index.
fn refusal(
    requests: &[(&[PreparedStream], DateTime<Utc>)],
    request: i32,
    stream: &str,
    actual: i64,
) -> Result<(usize, RequestOutcome), sqlx::Error> {
    let index = usize::try_from(request)
        .ok()
        .and_then(|number| number.checked_sub(1))
        .filter(|&index| index < requests.len())
        .ok_or_else(|| unexpected("a refusal of a request it was not given"))?;
    let (streams, _) = requests[index];
    let part = streams
        .iter()
        .find(|s| s.stream_id.as_str() == stream)
        .ok_or_else(|| unexpected("a refusal naming a stream the request does not append to"))?;
    let outcome = RequestOutcome::WrongVersion {
        stream_id: part.stream_id.clone(),
        expected: part.expected,
        actual: to_u64(actual)?,
    };
    Ok((index, outcome))
}

/// The outcome of a request the batch stored: each of its events' id, position and version,
/// in the order given.
fn stored_outcome(
    streams: &[PreparedStream],
    stored: &HashMap<Uuid, (i64, i64)>,
) -> Result<RequestOutcome, sqlx::Error> {
    let mut rows = Vec::with_capacity(streams.iter().map(|s| s.events.len()).sum());
    for event in streams.iter().flat_map(|s| &s.events) {
        let (position, version) = stored
            .get(&event.event_id)
            .copied()
            .ok_or_else(|| unexpected("no row for an event of a request it stored"))?;
        rows.push((event.event_id, position, version));
    }
    Ok(RequestOutcome::Stored(rows))
}

/// `ledger.append_batch` answered what it never should: the function in the database and this
/// code disagree.
fn unexpected(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("ledger.append_batch answered {what}"))
}

/// The arguments of `ledger.append_batch`, in the shape it wants them: one entry per part
/// (a request's share of one stream), per distinct stream, per distinct "unchanged since"
/// check, and per event. Everything the function would otherwise work out per part (which
/// stream, how many events of which types, which check) is worked out here, where it costs
/// no SQL.
struct BatchArrays<'a> {
    part_requests: Vec<i32>,
    part_streams: Vec<i32>,
    expected_versions: Vec<i64>,
    since_versions: Vec<i64>,
    part_checks: Vec<Option<i32>>,
    part_counts: Vec<i32>,
    part_types: Vec<String>,
    stream_ids: Vec<&'a str>,
    categories: Vec<&'a str>,
    check_streams: Vec<i32>,
    check_since: Vec<i64>,
    check_tolerated: Vec<String>,
    event_parts: Vec<i32>,
    event_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i16>,
    payloads: Vec<&'a str>,
    metadatas: Vec<&'a str>,
    recorded_ats: Vec<DateTime<Utc>>,
    row_hashes: Vec<Vec<u8>>,
    /// Each stream's number (1-based) in `stream_ids`.
    slots: HashMap<&'a str, i32>,
    /// Each (stream number, tolerated types)'s index in the `check_*` arrays.
    checks: HashMap<(i32, &'static [&'static str]), usize>,
}

impl<'a> BatchArrays<'a> {
    /// The arguments for `requests`, numbered from 1 in the order given.
    fn of(requests: &[(&'a [PreparedStream], DateTime<Utc>)]) -> Self {
        let events: usize = requests
            .iter()
            .flat_map(|(streams, _)| streams.iter())
            .map(|s| s.events.len())
            .sum();
        let parts: usize = requests.iter().map(|(streams, _)| streams.len()).sum();
        let mut batch = Self::with_capacity(parts, events);
        for (request, (streams, recorded_at)) in (1i32..).zip(requests) {
            for stream in *streams {
                batch.push_part(request, stream, *recorded_at);
            }
        }
        batch
    }

    fn with_capacity(parts: usize, events: usize) -> Self {
        Self {
            part_requests: Vec::with_capacity(parts),
            part_streams: Vec::with_capacity(parts),
            expected_versions: Vec::with_capacity(parts),
            since_versions: Vec::with_capacity(parts),
            part_checks: Vec::with_capacity(parts),
            part_counts: Vec::with_capacity(parts),
            part_types: Vec::with_capacity(parts),
            stream_ids: Vec::with_capacity(parts),
            categories: Vec::with_capacity(parts),
            check_streams: Vec::new(),
            check_since: Vec::new(),
            check_tolerated: Vec::new(),
            event_parts: Vec::with_capacity(events),
            event_ids: Vec::with_capacity(events),
            event_types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            payloads: Vec::with_capacity(events),
            metadatas: Vec::with_capacity(events),
            recorded_ats: Vec::with_capacity(events),
            row_hashes: Vec::with_capacity(events),
            slots: HashMap::with_capacity(parts),
            checks: HashMap::new(),
        }
    }

    /// Adds one part of request number `request` (1-based), with its events.
    fn push_part(&mut self, request: i32, stream: &'a PreparedStream, recorded_at: DateTime<Utc>) {
        let next_slot = to_i32(self.stream_ids.len() + 1);
        let slot = *self
            .slots
            .entry(stream.stream_id.as_str())
            .or_insert(next_slot);
        if slot == next_slot {
            self.stream_ids.push(stream.stream_id.as_str());
            self.categories.push(stream.stream_id.category());
        }
        let (mode, since, check) = match stream.expected {
            ExpectedVersion::Any => (-1, 0, None),
            ExpectedVersion::NoStream => (0, 0, None),
            ExpectedVersion::Exact(v) => (to_i64(v), 0, None),
            ExpectedVersion::Unchanged { since, except } => {
                let since = to_i64(since);
                (-2, since, Some(self.check(slot, except, since)))
            }
        };
        self.part_requests.push(request);
        self.part_streams.push(slot);
        self.expected_versions.push(mode);
        self.since_versions.push(since);
        self.part_checks.push(check);
        self.part_counts.push(to_i32(stream.events.len()));
        let part = to_i32(self.part_requests.len());
        let mut types = String::new();
        for event in &stream.events {
            types.push(',');
            types.push_str(&event.event_type);
            self.event_parts.push(part);
            self.event_ids.push(event.event_id);
            self.event_types.push(event.event_type.as_str());
            self.schema_versions
                .push(i16::try_from(event.schema_version).unwrap_or(i16::MAX));
            self.payloads.push(event.payload.as_str());
            self.metadatas.push(event.metadata.as_str());
            self.recorded_ats.push(recorded_at);
            self.row_hashes.push(event.row_hash.to_vec());
        }
        self.part_types.push(types);
    }

    /// The number of the check of `slot` against `tolerated`, which now covers `since` too:
    /// one look at the log from the oldest decision answers every part of the batch.
    fn check(&mut self, slot: i32, tolerated: &'static [&'static str], since: i64) -> i32 {
        let next = self.check_streams.len();
        let index = *self.checks.entry((slot, tolerated)).or_insert(next);
        if index == next {
            self.check_streams.push(slot);
            self.check_since.push(since);
            self.check_tolerated.push(tolerated.join(","));
        } else {
            let oldest = &mut self.check_since[index];
            *oldest = (*oldest).min(since);
        }
        to_i32(index + 1)
    }
}

fn to_i32(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::PreparedEvent;

    fn part(stream: &str, expected: ExpectedVersion, types: &[&str]) -> PreparedStream {
        PreparedStream {
            stream_id: StreamId::parse(stream).expect("stream id"),
            expected,
            events: types
                .iter()
                .map(|t| PreparedEvent {
                    event_id: Uuid::now_v7(),
                    event_type: (*t).to_owned(),
                    schema_version: 1,
                    payload: "{}".into(),
                    metadata: "{}".into(),
                    row_hash: [0; 32],
                })
                .collect(),
        }
    }

    #[test]
    fn streams_and_checks_are_numbered_once_and_a_check_looks_from_the_oldest_decision() {
        let unchanged = |since, except| ExpectedVersion::Unchanged { since, except };
        let parts = [
            part("gateway-a", unchanged(7, &["Booked"]), &["Booked"]),
            part(
                "payment-1",
                ExpectedVersion::NoStream,
                &["Initiated", "Routed"],
            ),
            part("gateway-a", unchanged(5, &["Booked"]), &["Booked"]),
            part("gateway-a", unchanged(9, &["Booked", "Released"]), &[]),
            part("gateway-a", ExpectedVersion::Exact(12), &["Toggled"]),
        ];
        let mut batch = BatchArrays::with_capacity(parts.len(), 5);
        for (request, stream) in (1..).zip(&parts) {
            batch.push_part(request, stream, Utc::now());
        }
        assert_eq!(batch.stream_ids, ["gateway-a", "payment-1"]);
        assert_eq!(batch.categories, ["gateway", "payment"]);
        assert_eq!(batch.part_streams, [1, 2, 1, 1, 1]);
        assert_eq!(batch.part_checks, [Some(1), None, Some(1), Some(2), None]);
        assert_eq!(batch.check_streams, [1, 1]);
        assert_eq!(batch.check_since, [5, 9]);
        assert_eq!(batch.check_tolerated, ["Booked", "Booked,Released"]);
        assert_eq!(batch.since_versions, [7, 0, 5, 9, 0]);
        assert_eq!(batch.expected_versions, [-2, 0, -2, -2, 12]);
        assert_eq!(batch.part_counts, [1, 2, 1, 0, 1]);
        assert_eq!(
            batch.part_types,
            [",Booked", ",Initiated,Routed", ",Booked", "", ",Toggled"]
        );
        assert_eq!(batch.event_parts, [1, 2, 2, 3, 5]);
    }
}
