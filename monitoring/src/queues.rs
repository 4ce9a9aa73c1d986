//! The work queues as operators see them: [`QueueControl`], which the admin API acts through
//! (production's is the workers' broker, `crate::work_queues`), and the sampler that keeps a day
//! of depths for the time series (in `ops.queue_depth_samples`, this crate's table).
//!
//! Who decides what: pause and resume are facts in the log (`queue-<name>` streams, see
//! [`lightspeed_services::Ledger::queue_paused`]), which every worker replica reads before it
//! fetches, so the broker needs no pause feature and a paused queue keeps its jobs. Retrying
//! failed jobs and draining waiting ones happen on the broker through this trait; the admin API
//! records their outcome in the log afterwards.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_services::Ledger;
use sqlx::PgPool;

/// How often the sampler records depths.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// How long samples are kept.
pub const SAMPLE_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Longest time a depth query to the broker may take before the sample skips that queue.
const DEPTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Jobs of one queue, as the broker counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting to be fetched.
    pub waiting: u64,
    /// Fetched and not acknowledged yet (running, or waiting out a retry delay).
    pub active: u64,
    /// Given up on and kept for a retry (0 where the broker keeps none).
    pub failed: u64,
}

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueControlError {
    /// No queue of this name.
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    /// The broker failed or refused.
    #[error("{0}")]
    Broker(String),
}

/// The work queues; production's are the workers' on JetStream (`WorkQueues`).
pub trait QueueControl: Send + Sync {
    /// The queues' names, in display order.
    fn queues(&self) -> Vec<String>;

    /// How many jobs of `queue` wait, run and failed.
    fn depth<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueDepth, QueueControlError>>;

    /// When the oldest job waiting in `queue` reached the broker (`None`: none waits).
    fn oldest_waiting<'a>(
        &'a self,
        queue: &'a str,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, QueueControlError>>;

    /// Puts the failed jobs of `queue` back into it; answers how many.
    fn retry_failed<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>>;

    /// Discards the jobs of `queue` that wait to be fetched; answers how many.
    fn drain<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>>;

    /// Told after a pause or resume of `queue` is recorded in the log, so local workers can react
    /// before their next read of it. Workers must not rely on it: the log is the truth.
    fn pause_changed<'a>(&'a self, queue: &'a str, paused: bool) -> BoxFuture<'a, ()> {
        let _ = (queue, paused);
        Box::pin(async {})
    }
}

/// One sampled depth.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueSample {
    /// The queue.
    pub queue: String,
    /// The start of the sample's interval (or of the bucket, in a series).
    pub sampled_at: DateTime<Utc>,
    /// Jobs waiting (the most seen in the bucket).
    pub waiting: i64,
    /// Jobs running (the most seen in the bucket).
    pub active: i64,
    /// Jobs failed (the most seen in the bucket).
    pub failed: i64,
    /// Whether the queue was paused (at any sample in the bucket).
    pub paused: bool,
}

/// Samples queue depths every [`SAMPLE_INTERVAL`] into `ops.queue_depth_samples` and the
/// `queue_depth{queue,state}` gauges. One per deployment is enough; several write the same rows
/// (samples are keyed by queue and interval), so running one per replica is harmless.
pub struct QueueSampler {
    ledger: Ledger,
    control: Arc<dyn QueueControl>,
}

impl QueueSampler {
    /// A sampler over `control`, reading pauses from and writing samples to `ledger`'s database.
    pub fn new(ledger: Ledger, control: Arc<dyn QueueControl>) -> Self {
        Self { ledger, control }
    }

    /// Samples forever; spawn it.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.sample_once().await {
                tracing::warn!(error = %e, "queue sampling failed");
            }
        }
    }

    /// Records one sample of every queue (a queue the broker cannot answer for is skipped) and
    /// deletes samples older than [`SAMPLE_RETENTION`]; answers what was sampled.
    pub async fn sample_once(&self) -> Result<Vec<QueueSample>, sqlx::Error> {
        let now = self.ledger.now();
        let sampled_at = interval_start(now, SAMPLE_INTERVAL);
        let mut samples = Vec::new();
        for queue in self.control.queues() {
            let depth = match tokio::time::timeout(DEPTH_TIMEOUT, self.control.depth(&queue)).await
            {
                Ok(Ok(depth)) => depth,
                Ok(Err(e)) => {
                    tracing::warn!(%queue, error = %e, "queue depth unavailable");
                    continue;
                }
                Err(_) => {
                    tracing::warn!(%queue, "queue depth timed out");
                    continue;
                }
            };
            let paused = match self.ledger.queue_paused(&queue).await {
                Ok(paused) => paused,
                Err(e) => {
                    tracing::warn!(%queue, error = %e, "queue state unavailable");
                    false
                }
            };
            record_gauges(&queue, depth);
            samples.push(QueueSample {
                queue,
                sampled_at,
                waiting: count(depth.waiting),
                active: count(depth.active),
                failed: count(depth.failed),
                paused,
            });
        }
        let pool = self.ledger.store().pool();
        sqlx::query(
            "INSERT INTO ops.queue_depth_samples (queue, sampled_at, waiting, active, failed, paused)
             SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[],
                                  $5::bigint[], $6::boolean[])
             ON CONFLICT (queue, sampled_at) DO NOTHING",
        )
        .bind(samples.iter().map(|s| s.queue.clone()).collect::<Vec<_>>())
        .bind(samples.iter().map(|s| s.sampled_at).collect::<Vec<_>>())
        .bind(samples.iter().map(|s| s.waiting).collect::<Vec<_>>())
        .bind(samples.iter().map(|s| s.active).collect::<Vec<_>>())
        .bind(samples.iter().map(|s| s.failed).collect::<Vec<_>>())
        .bind(samples.iter().map(|s| s.paused).collect::<Vec<_>>())
        .execute(pool)
        .await?;
        let expired = now - chrono::TimeDelta::from_std(SAMPLE_RETENTION).unwrap_or_default();
        sqlx::query("DELETE FROM ops.queue_depth_samples WHERE sampled_at < $1")
            .bind(expired)
            .execute(pool)
            .await?;
        Ok(samples)
    }
}

/// Publishes a queue's depth as `queue_depth{queue, state}` gauges.
pub fn record_gauges(queue: &str, depth: QueueDepth) {
    // Gauges are floats by nature; these are job counts.
    for (state, value) in [
        ("waiting", depth.waiting),
        ("active", depth.active),
        ("failed", depth.failed),
    ] {
        metrics::gauge!("queue_depth", "queue" => queue.to_owned(), "state" => state)
            .set(value as f64);
    }
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn interval_start(at: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let secs = i64::try_from(interval.as_secs()).unwrap_or(1).max(1);
    let start = at.timestamp() - at.timestamp().rem_euclid(secs);
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// A queue's samples from `from` to `to`, in buckets of `bucket` (the most seen per bucket),
/// oldest first.
pub async fn series(
    pool: &PgPool,
    queue: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Duration,
) -> Result<Vec<QueueSample>, sqlx::Error> {
    let bucket_secs = f64::from(u32::try_from(bucket.as_secs()).unwrap_or(u32::MAX).max(1));
    sqlx::query_as(
        "SELECT queue, date_bin(make_interval(secs => $4), sampled_at, 'epoch') AS sampled_at,
                max(waiting) AS waiting, max(active) AS active, max(failed) AS failed,
                bool_or(paused) AS paused
           FROM ops.queue_depth_samples
          WHERE queue = $1 AND sampled_at >= $2 AND sampled_at < $3
          GROUP BY 1, 2
          ORDER BY 2",
    )
    .bind(queue)
    .bind(from)
    .bind(to)
    .bind(bucket_secs)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_one_interval_share_its_start() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("instant");
        assert_eq!(
            interval_start(at(1_000_003), SAMPLE_INTERVAL),
            at(1_000_000)
        );
        assert_eq!(
            interval_start(at(1_000_005), SAMPLE_INTERVAL),
            at(1_000_005)
        );
    }
}
