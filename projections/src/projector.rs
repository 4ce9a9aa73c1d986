//! What every projector shares, whether it follows the log live or rebuilds a version: where it
//! reads the log from, which categories it reads, and how a batch is applied: its rows and the
//! version's checkpoint in one transaction that first locks the checkpoint, so whatever lies at
//! or before it (a redelivery, a restart from an older position) is skipped.

use async_nats::jetstream;
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_eventstore::{LogPosition, PgEventStore, RecordedEvent};
use sqlx::{PgConnection, PgPool};

use crate::error::ProjectionError;
use crate::projection::{Projection, RowCache};
use crate::versions::{self, VersionRecord, VersionState};

/// What a projector needs from the outside.
#[derive(Clone, Debug)]
pub struct ProjectorDeps {
    /// The event log (and its pool, which also holds the read models).
    pub store: PgEventStore,
    /// JetStream and the log's stream, to follow live events; `None` polls PostgreSQL instead.
    pub live: Option<(jetstream::Context, LogStreamConfig)>,
}

impl ProjectorDeps {
    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        self.store.pool()
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// This many events were applied (those at or before the checkpoint were skipped).
    Applied(usize),
    /// The version is no longer maintained by this projector (it was retired or dropped).
    NotMaintained(VersionState),
}

/// The categories `projection` reads, as the log's readers take them; `None` for the whole log.
pub(crate) fn read_categories(projection: &dyn Projection) -> Option<Vec<String>> {
    projection
        .categories()
        .map(|c| c.iter().map(|c| (*c).to_owned()).collect())
}

/// Applies `events` to one version in one transaction with its checkpoint. Events at or before
/// the checkpoint are skipped, so a batch delivered twice changes nothing the second time.
pub async fn apply_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<BatchOutcome, ProjectionError> {
    let mut tx = pool.begin().await?;
    let record = versions::lock(&mut tx, projection.name(), version).await?;
    if !matches!(record.state, VersionState::Active | VersionState::Building) {
        return Ok(BatchOutcome::NotMaintained(record.state));
    }
    let applied = apply_locked(&mut tx, projection, &record, events).await?;
    tx.commit().await?;
    Ok(BatchOutcome::Applied(applied))
}

/// Applies what in `events` lies after the checkpoint of a version locked by the caller's
/// transaction, writes its rows and moves the checkpoint; answers how many events were applied.
pub(crate) async fn apply_locked(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    record: &VersionRecord,
    events: &[RecordedEvent],
) -> Result<usize, ProjectionError> {
    let mut rows = RowCache::for_batch();
    let applied = apply_keeping(conn, projection, record, events, &mut rows).await?;
    rows.write(conn, &record.schema_name).await?;
    Ok(applied)
}

/// Like [`apply_locked`], but leaves the rows kept by key in `rows`, which the caller writes
/// before its transaction commits.
pub(crate) async fn apply_keeping(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    record: &VersionRecord,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<usize, ProjectionError> {
    if events
        .windows(2)
        .any(|pair| pair[0].log_position >= pair[1].log_position)
    {
        return Err(ProjectionError::InvalidQuery(
            "a batch must be in log order without repeats".into(),
        ));
    }
    let fresh = after(events, record.checkpoint);
    if fresh.is_empty() {
        return Ok(0);
    }
    rows.next_batch();
    projection
        .apply(&mut *conn, &record.schema_name, fresh, rows)
        .await?;
    versions::advance(conn, projection.name(), record.version, fresh).await?;
    metrics::counter!("projection_events_applied_total", "projection" => projection.name())
        .increment(fresh.len() as u64);
    Ok(fresh.len())
}

/// The suffix of `events` (in log order) after `checkpoint`.
fn after(events: &[RecordedEvent], checkpoint: LogPosition) -> &[RecordedEvent] {
    let first_new = events.partition_point(|event| event.log_position <= checkpoint);
    &events[first_new..]
}
