//! Versioned rebuilds ("blue/green"): build a projection's new version beside the one readers
//! see, straight from PostgreSQL in large batches, catch up to the head of the log, then switch
//! readers in one transaction. The old version serves throughout and is dropped only on request.
//!
//! Nothing here calls out: projections have no side effects, so replaying the whole log never
//! sends a notification or a webhook again.

use std::sync::Arc;
use std::time::Instant;

use lightspeed_eventstore::log_counts::events_after;
use lightspeed_eventstore::{EventStore, LogReader, ReadError, RecordedEvent};

use crate::catalog;
use crate::error::ProjectionError;
use crate::progress::{Progress, ProgressUpdate};
use crate::projection::{Projection, RowCache};
use crate::projector::{ProjectorDeps, apply_keeping, apply_locked, read_categories};
use crate::versions::{self, VersionRecord, VersionState};

/// Most events read (and applied in one transaction) per rebuild batch: the log's read limit.
pub const MAX_REBUILD_BATCH: usize = lightspeed_eventstore::limits::MAX_READ_BATCH;

/// Rows per table a rebuild keeps in memory between its writes by default (see
/// [`RebuildOptions::rows_kept`]).
pub const KEPT_ROWS: usize = 250_000;

/// A build that keeps rows commits at the latest once its transaction has applied this many
/// events (a crash loses at most that much work).
const COMMIT_AFTER_EVENTS: usize = 500_000;

/// Most batches applied inside the switch transaction before giving up on catching up (the log
/// grows faster than the rebuild applies it); the build is kept and can be switched later.
pub const MAX_SWITCH_BATCHES: usize = 20;

/// How a rebuild runs.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Events per batch (at most [`MAX_REBUILD_BATCH`]).
    pub batch_size: usize,
    /// Drop a version of this layout that is already building and start from the beginning.
    pub restart: bool,
    /// Activate the new version once caught up (otherwise leave it building, to switch later).
    pub switch: bool,
    /// After switching, drop the version that was active before (its tables are gone for good).
    pub drop_previous: bool,
    /// Rows per table kept in memory between writes; the changed ones are written, and the
    /// build commits, once four in five of that are changed. A build that keeps rows holds one
    /// transaction open across batches, so 0 (every batch written and committed on its own) is
    /// for builds that share a pool with others: a projector's first build.
    pub rows_kept: usize,
}

impl Default for RebuildOptions {
    /// Batches of 10 000, resume a build in progress, switch, keep the previous version, keep
    /// [`KEPT_ROWS`] rows.
    fn default() -> Self {
        Self {
            batch_size: MAX_REBUILD_BATCH,
            restart: false,
            switch: true,
            drop_previous: false,
            rows_kept: KEPT_ROWS,
        }
    }
}

impl RebuildOptions {
    /// Events per batch, within what the log reads at once.
    fn batch(&self) -> usize {
        self.batch_size.clamp(1, MAX_REBUILD_BATCH)
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RebuildReport {
    /// The projection.
    pub projection: String,
    /// The version built.
    pub version: i32,
    /// Events applied by this run.
    pub events_applied: u64,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// Whether readers now see the new version.
    pub switched: bool,
    /// The version readers saw before, if any.
    pub previous_version: Option<i32>,
    /// Whether that previous version was dropped.
    pub dropped_previous: bool,
}

/// Rebuilds the projection named `name`. See [`rebuild_projection`].
pub async fn rebuild(
    name: &str,
    deps: &ProjectorDeps,
    options: &RebuildOptions,
    progress: &dyn Progress,
) -> Result<RebuildReport, ProjectionError> {
    let projection =
        catalog::by_name(name).ok_or_else(|| ProjectionError::UnknownProjection(name.into()))?;
    rebuild_projection(projection, deps, options, progress).await
}

/// Builds this code's layout of `projection` as a new version (or resumes the one building),
/// catches up with the log and, with `options.switch`, activates it atomically.
pub async fn rebuild_projection(
    projection: Arc<dyn Projection>,
    deps: &ProjectorDeps,
    options: &RebuildOptions,
    progress: &dyn Progress,
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let version =
        versions::building_version(deps.pool(), projection.as_ref(), options.restart).await?;
    let (applied, mut update) = build(
        projection.as_ref(),
        deps,
        &version,
        options,
        progress,
        started,
    )
    .await?;
    let mut report = RebuildReport {
        projection: projection.name().to_owned(),
        version: version.version,
        events_applied: applied,
        elapsed_ms: 0,
        switched: false,
        previous_version: None,
        dropped_previous: false,
    };
    if options.switch {
        versions::create_indexes(deps.pool(), projection.as_ref(), &version).await?;
        switch_readers(projection.as_ref(), deps, &version, options, &mut report).await?;
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    update.finish(report.events_applied, started.elapsed());
    progress.report(&update);
    Ok(report)
}

/// Applies the log after the version's checkpoint, batch by batch, reading the next batch
/// while one is applied and keeping up to `options.rows_kept` rows per table between writes; answers
/// how many events were applied and the last progress report.
async fn build(
    projection: &dyn Projection,
    deps: &ProjectorDeps,
    version: &VersionRecord,
    options: &RebuildOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<(u64, ProgressUpdate), ProjectionError> {
    let (batch_size, rows_kept) = (options.batch(), options.rows_kept);
    let categories = read_categories(projection);
    let mut reader = LogReader::new(
        deps.store.clone(),
        version.checkpoint,
        categories.as_deref(),
    );
    // What is left is counted for the progress report on a connection of its own, beside the
    // batches: on a large log the count of a rare category takes longer than its first batches.
    let mut count = Some(tokio::spawn({
        let (pool, after, categories) = (
            deps.store.pool().clone(),
            version.checkpoint,
            categories.clone(),
        );
        async move { events_after(&pool, after, categories.as_deref()).await }
    }));
    let mut batch = reader.next_batch(batch_size).await?;
    let mut update = ProgressUpdate::new(projection.name(), version.version, None);
    progress.report(&update);
    let mut applied = 0u64;
    let mut rows = RowCache::keeping(rows_kept);
    let write_after = rows_kept / 5 * 4;
    let mut open: Option<OpenBuild> = None;
    while !batch.is_empty() {
        let next = tokio::spawn(async move {
            let next = reader.next_batch(batch_size).await;
            (reader, next)
        });
        let build = match open.as_mut() {
            Some(build) => build,
            None => open.insert(OpenBuild::begin(deps.pool(), projection, version.version).await?),
        };
        applied += build.apply(projection, &batch, &mut rows).await? as u64;
        if (rows.changed() >= write_after || build.applied >= COMMIT_AFTER_EVENTS)
            && let Some(build) = open.take()
        {
            build.commit(&mut rows).await?;
        }
        if let Some(counted) = count.take_if(|count| count.is_finished()) {
            update.total = counted_total(counted.await);
        }
        update.advance(applied, started.elapsed());
        progress.report(&update);
        let (returned, next) = next
            .await
            .map_err(|e| ProjectionError::InvalidQuery(e.to_string()))?;
        reader = returned;
        batch = next?;
    }
    if let Some(build) = open {
        build.commit(&mut rows).await?;
    }
    if let Some(count) = count {
        count.abort();
    }
    let checkpoint = reader.position();
    tracing::debug!(%checkpoint, "rebuild read up to");
    Ok((applied, update))
}

/// The count of what a rebuild has to apply, if it could be made: a progress report without a
/// total is no reason to fail the rebuild.
fn counted_total(counted: Result<Result<u64, ReadError>, tokio::task::JoinError>) -> Option<u64> {
    match counted {
        Ok(Ok(total)) => Some(total),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not count the events left to rebuild");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the count of the events left to rebuild stopped");
            None
        }
    }
}

/// Switches readers to the built version and, with `options.drop_previous`, drops the one they
/// saw before; records both in `report`.
async fn switch_readers(
    projection: &dyn Projection,
    deps: &ProjectorDeps,
    version: &VersionRecord,
    options: &RebuildOptions,
    report: &mut RebuildReport,
) -> Result<(), ProjectionError> {
    let (previous, drained) = switch(projection, deps, version, options.batch()).await?;
    report.switched = true;
    report.previous_version = previous;
    report.events_applied += drained;
    if options.drop_previous
        && let Some(previous) = previous
    {
        versions::drop_version(deps.pool(), projection.name(), previous).await?;
        report.dropped_previous = true;
    }
    Ok(())
}

/// Activates a caught-up version in one transaction: it locks the active version (so its
/// projector pauses between batches), applies what the log gained since the build's last batch,
/// then replaces the views and the registry rows. Answers the previous version and how many
/// events were applied here.
async fn switch(
    projection: &dyn Projection,
    deps: &ProjectorDeps,
    version: &VersionRecord,
    batch_size: usize,
) -> Result<(Option<i32>, u64), ProjectionError> {
    let pool = deps.pool();
    let mut tx = pool.begin().await?;
    // The registry lock first, as every change to the set of versions takes it first.
    versions::lock_projection(&mut tx, projection.name()).await?;
    if let Some(active) = versions::active(pool, projection.name()).await?
        && active.version != version.version
    {
        versions::lock(&mut tx, projection.name(), active.version).await?;
    }
    let mut record = versions::lock(&mut tx, projection.name(), version.version).await?;
    if record.state != VersionState::Building {
        return Err(ProjectionError::WrongState {
            projection: projection.name().into(),
            version: version.version,
            state: record.state.as_str().into(),
            why: "only a version being built can be switched to",
        });
    }
    let categories = read_categories(projection);
    let mut drained = 0u64;
    for round in 0.. {
        if round == MAX_SWITCH_BATCHES {
            return Err(ProjectionError::WrongState {
                projection: projection.name().into(),
                version: version.version,
                state: record.state.as_str().into(),
                why: "the log grows faster than the build catches up; switch again later",
            });
        }
        let batch = deps
            .store
            .read_log(record.checkpoint, categories.as_deref(), batch_size)
            .await?;
        let Some(last) = batch.last().map(|e| e.log_position) else {
            break;
        };
        drained += apply_locked(&mut tx, projection, &record, &batch).await? as u64;
        record.checkpoint = last;
    }
    let previous = versions::activate(&mut tx, projection, &record).await?;
    tx.commit().await?;
    tracing::info!(
        projection = projection.name(),
        version = version.version,
        previous = ?previous,
        "readers switched to the rebuilt version"
    );
    Ok((previous, drained))
}

/// A transaction of a build: the version locked, the batches applied since it began.
struct OpenBuild {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    record: VersionRecord,
    applied: usize,
}

impl OpenBuild {
    /// Begins a transaction on a version being built and locks it.
    async fn begin(
        pool: &sqlx::PgPool,
        projection: &dyn Projection,
        version: i32,
    ) -> Result<Self, ProjectionError> {
        let mut tx = pool.begin().await?;
        // A build's transaction need not wait for its commit to reach the disk: its rows and its
        // checkpoint commit together, so a crash loses whole transactions, and the build resumes
        // from the checkpoint that was lost with them. The switch commits durably, which also
        // makes everything before it durable (the WAL is flushed in order).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let record = versions::lock(&mut tx, projection.name(), version).await?;
        if record.state != VersionState::Building {
            return Err(ProjectionError::WrongState {
                projection: projection.name().into(),
                version,
                state: record.state.as_str().into(),
                why: "a rebuild writes only a version being built",
            });
        }
        Ok(Self {
            tx,
            record,
            applied: 0,
        })
    }

    /// Applies a batch, keeping its rows in `rows`, and moves the checkpoint past it.
    async fn apply(
        &mut self,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        rows: &mut RowCache,
    ) -> Result<usize, ProjectionError> {
        let applied = apply_keeping(&mut self.tx, projection, &self.record, events, rows).await?;
        if let Some(last) = events.last() {
            self.record.checkpoint = self.record.checkpoint.max(last.log_position);
        }
        self.applied += applied;
        Ok(applied)
    }

    /// Writes the rows changed since it began and commits them with the checkpoint.
    async fn commit(mut self, rows: &mut RowCache) -> Result<(), ProjectionError> {
        rows.write(&mut self.tx, &self.record.schema_name).await?;
        self.tx.commit().await?;
        Ok(())
    }
}
