//! The one sampler per process for what the log does not record as it changes: work queue
//! depths and projection and relay lag. It reads them once per interval, however many pages
//! are open, and publishes only what changed.

use std::sync::Arc;
use std::time::Duration;

use lightspeed_eventstore::relay_lag::relay_lag;
use lightspeed_monitoring::queues::QueueControl;
use lightspeed_services::Ledger;

use crate::hub::{Hub, Inner};
use crate::item::{LiveItem, ProjectionLag, ProjectionLagItem, QueueStat, QueueStatsItem};

/// Longest a depth query may take before the sample leaves that queue out.
const DEPTH_TIMEOUT: Duration = Duration::from_secs(3);

/// What the sampler reads.
pub struct Sampler {
    ledger: Ledger,
    queues: Option<Arc<dyn QueueControl>>,
    relay_stream: Option<String>,
    interval: Duration,
}

impl Sampler {
    /// Samples projection lag from `ledger`'s database once a second; nothing else until told.
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger,
            queues: None,
            relay_stream: None,
            interval: Duration::from_secs(1),
        }
    }

    /// Also samples the depth and pause of every queue `control` knows.
    pub fn queues(mut self, control: Arc<dyn QueueControl>) -> Self {
        self.queues = Some(control);
        self
    }

    /// Also measures the relay's lag on JetStream stream `stream`.
    pub fn relay(mut self, stream: impl Into<String>) -> Self {
        self.relay_stream = Some(stream.into());
        self
    }

    /// Samples every `interval` instead.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Samples for good, publishing each figure set that differs from the last published.
    async fn run(self, hub: Arc<Inner>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut last_queues, mut last_lag) = (None, None);
        loop {
            ticks.tick().await;
            if let Some(stats) = self.queue_stats().await
                && last_queues.as_ref() != Some(&stats.queues)
            {
                last_queues = Some(stats.queues.clone());
                hub.publish(LiveItem::QueueStats(stats));
            }
            if let Some(lag) = self.lag().await {
                let figures = (lag.projections.clone(), lag.relay_events, lag.relay_ms);
                if last_lag.as_ref() != Some(&figures) {
                    last_lag = Some(figures);
                    hub.publish(LiveItem::ProjectionLag(lag));
                }
            }
        }
    }

    /// Every queue's depth and pause; a queue the broker cannot answer for is left out.
    async fn queue_stats(&self) -> Option<QueueStatsItem> {
        let control = self.queues.as_ref()?;
        let mut queues = Vec::new();
        for queue in control.queues() {
            let depth = match tokio::time::timeout(DEPTH_TIMEOUT, control.depth(&queue)).await {
                Ok(Ok(depth)) => depth,
                _ => continue,
            };
            let paused = self.ledger.queue_paused(&queue).await.unwrap_or(false);
            queues.push(QueueStat {
                queue,
                waiting: depth.waiting,
                active: depth.active,
                failed: depth.failed,
                paused,
            });
        }
        Some(QueueStatsItem {
            queues,
            at: self.ledger.now(),
        })
    }

    /// Each active projection's lag (as its projector last measured it) and the relay's.
    async fn lag(&self) -> Option<ProjectionLagItem> {
        let pool = self.ledger.store().pool();
        let versions = match lightspeed_projections::status::all(pool).await {
            Ok(versions) => versions,
            Err(e) => {
                tracing::debug!(error = %e, "live sampler: projection status unavailable");
                return None;
            }
        };
        let projections = versions
            .into_iter()
            .filter(|v| v.state == "active")
            .map(|v| ProjectionLag {
                projection: v.projection,
                version: v.version,
                lag_events: v.lag_events,
                lag_ms: v.lag_ms,
            })
            .collect();
        let relay = match &self.relay_stream {
            Some(stream) => relay_lag(pool, stream).await.ok(),
            None => None,
        };
        Some(ProjectionLagItem {
            projections,
            relay_events: relay.map(|r| r.events),
            relay_ms: relay.map(|r| r.oldest_ms),
            at: self.ledger.now(),
        })
    }
}

impl Hub {
    /// Starts `sampler` as this hub's one sampler.
    pub fn sample(&self, sampler: Sampler) {
        let inner = self.inner();
        self.keep(tokio::spawn(sampler.run(inner)));
    }
}
