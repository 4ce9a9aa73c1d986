//! Watches the running system: ops alerts, queue depth samples, metric gauges. None of it is
//! HTTP; the binary spawns each watcher beside the API, and the admin API reads what they keep.
//!
//! - [`alerts::AlertEvaluator`]: reads the read models, records alerts in the log and posts
//!   each new one to Slack.
//! - [`queues::QueueSampler`]: samples every work queue's depth through [`queues::QueueControl`]
//!   (the admin API controls the queues through the same trait) into `ops.queue_depth_samples`
//!   and the `queue_depth` gauges; [`queues::series`] reads the samples back. Production's
//!   `QueueControl` is the workers' `WorkQueues` on JetStream (`work_queues`).
//! - [`gauges::MetricsRefresher`]: publishes what the read models and the log count as gauges.
//! - [`allowances`]: request allowances the API replicas share (`ops.rate_allowances`), so a
//!   per-minute limit holds across replicas.
//!
//! This crate owns the `ops` schema: measurements that are not business facts, so they live
//! outside the log and the read models.

pub mod alerts;
pub mod allowances;
pub mod gauges;
pub mod queues;
mod work_queues;
