//! The projector runtime: follows the log and applies it to one projection's active version,
//! batch by batch, each batch's rows and checkpoint in one transaction.
//!
//! A projector reads from its checkpoint: from PostgreSQL while catching up, then live from
//! JetStream through [`Subscription`], which hands over without gap or repeat, and reads
//! PostgreSQL again within a heartbeat when live delivery stops (a NATS restart), so the
//! projector needs no restart of its own. Whatever the source delivers twice (a JetStream
//! redelivery, a restart from an older position) is skipped, because each batch first locks the
//! version's checkpoint and applies only what lies after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightspeed_eventstore::subscription::Subscription;

use crate::catalog;
use crate::error::ProjectionError;
use crate::progress::LogLines;
use crate::projection::Projection;
use crate::projector::{BatchOutcome, ProjectorDeps, apply_batch, read_categories};
use crate::rebuild::{RebuildOptions, rebuild_projection};
use crate::status;
use crate::versions::{self, VersionRecord, VersionState};

/// How a projector paces itself.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Most events applied in one transaction.
    pub batch_size: usize,
    /// How often lag is measured, stored and exported.
    pub lag_interval: Duration,
    /// How often a projector whose layout is not active yet checks whether a rebuild switched.
    pub rebuild_poll: Duration,
    /// How long a projector that keeps up lets events gather after a batch before it takes the
    /// next one (a projector behind, whose batches are full, never waits). Each batch costs
    /// about six round trips whatever its size; at 1 000 payments/s, batches taken as soon as
    /// one event was there spent the CPU the writers needed.
    pub linger: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lag_interval: Duration::from_secs(1),
            rebuild_poll: Duration::from_secs(1),
            linger: Duration::from_millis(50),
        }
    }
}

/// Runs the projector named `name` until it fails. See [`run_projection`].
pub async fn run_projector(name: &str, deps: ProjectorDeps) -> Result<(), ProjectionError> {
    let projection =
        catalog::by_name(name).ok_or_else(|| ProjectionError::UnknownProjection(name.into()))?;
    run_projection(projection, deps, RunConfig::default()).await
}

/// Runs every projector of the catalogue in this process (the all-in-one mode) until one fails.
pub async fn run_all(deps: ProjectorDeps) -> Result<(), ProjectionError> {
    let mut tasks = tokio::task::JoinSet::new();
    for projection in catalog::all() {
        let deps = deps.clone();
        tasks.spawn(async move { run_projection(projection, deps, RunConfig::default()).await });
    }
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(join) => {
                tracing::error!(error = %join, "a projector task ended abnormally");
                return Err(ProjectionError::InvalidQuery(join.to_string()));
            }
        }
    }
    Ok(())
}

/// Keeps a projection's active version up to date with the log, forever.
///
/// - No version active yet (first install): builds one from the log and activates it.
/// - The active version has this code's layout: follows it.
/// - The active version has an older layout: waits for `lightspeed rebuild <name>` to build and
///   activate this layout (the old layout's projectors keep the old version fresh meanwhile).
/// - The active version has a newer layout: this binary is out of date; fails with
///   [`ProjectionError::Superseded`].
///
/// When another version is activated while following, it moves over to it.
pub async fn run_projection(
    projection: Arc<dyn Projection>,
    deps: ProjectorDeps,
    config: RunConfig,
) -> Result<(), ProjectionError> {
    let name = projection.name();
    let mut told_to_wait = false;
    loop {
        match versions::active(deps.pool(), name).await? {
            None => {
                tracing::info!(
                    projection = name,
                    "no active version; building the first one"
                );
                // Every projector may build at once on one pool: none holds a connection
                // across batches.
                let options = RebuildOptions {
                    rows_kept: 0,
                    ..RebuildOptions::default()
                };
                match rebuild_projection(projection.clone(), &deps, &options, &LogLines::default())
                    .await
                {
                    // Another replica finished the same first build and switched first.
                    Ok(_) | Err(ProjectionError::WrongState { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(active) if active.layout == projection.layout() => {
                told_to_wait = false;
                follow(projection.as_ref(), &deps, &config, &active).await?;
            }
            Some(active) if active.layout < projection.layout() => {
                if !told_to_wait {
                    tracing::warn!(
                        projection = name,
                        active_layout = active.layout,
                        code_layout = projection.layout(),
                        "the active version has an older layout; run `lightspeed rebuild {name}`"
                    );
                    told_to_wait = true;
                }
                tokio::time::sleep(config.rebuild_poll).await;
            }
            Some(active) => {
                return Err(ProjectionError::Superseded {
                    projection: name,
                    active_layout: active.layout,
                    code_layout: projection.layout(),
                });
            }
        }
    }
}

/// Follows the log into `version` until it stops being active.
async fn follow(
    projection: &dyn Projection,
    deps: &ProjectorDeps,
    config: &RunConfig,
    version: &VersionRecord,
) -> Result<(), ProjectionError> {
    let mut subscription = Subscription::new(
        deps.store.clone(),
        deps.live.clone(),
        read_categories(projection),
        version.checkpoint,
    );
    tracing::info!(
        projection = projection.name(),
        version = version.version,
        checkpoint = %version.checkpoint,
        "projector follows the log"
    );
    // When the next batch may be taken.
    let mut next_batch_at = Instant::now();
    let mut last_lag = Instant::now()
        .checked_sub(config.lag_interval)
        .unwrap_or_else(Instant::now);
    loop {
        if last_lag.elapsed() >= config.lag_interval {
            let state = status::measure_lag(deps.pool(), projection, version.version).await?;
            if state != VersionState::Active {
                return Ok(());
            }
            last_lag = Instant::now();
        }
        tokio::time::sleep_until(next_batch_at.into()).await;
        // The wait is bounded so lag keeps being measured (and a switch noticed) while idle.
        // Giving it up keeps the subscription (a wait given up on has taken nothing from it),
        // so an idle projector stays live instead of reading the log again from its checkpoint.
        let Ok(batch) = tokio::time::timeout(
            config.lag_interval,
            subscription.next_batch(config.batch_size),
        )
        .await
        else {
            continue;
        };
        let batch = batch?;
        if batch.len() < config.batch_size {
            next_batch_at = Instant::now() + config.linger;
        }
        match apply_batch(deps.pool(), projection, version.version, &batch).await? {
            BatchOutcome::Applied(_) => {}
            BatchOutcome::NotMaintained(_) => return Ok(()),
        }
    }
}
