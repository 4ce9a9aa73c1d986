//! Ops' control of the queues: the pause gate workers ask before fetching, and the broker side
//! of retry and drain that the admin API calls.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_services::Ledger;

use crate::QueueName;
use crate::queue::{self, DEFAULT_CONCURRENCY, PauseGate, QueueDepth, QueueError};

/// How long a pause read from the log is trusted before it is read again. Bounds the log reads
/// of a busy queue (one per half second per replica), and how late a pause or resume is seen.
pub const PAUSE_CACHE: Duration = Duration::from_millis(500);

/// The pause switch of one queue, as recorded in the log (`queue-<name>` streams). A log that
/// cannot be read counts as paused: jobs wait in the broker rather than run half-blind.
pub struct LogPauseGate {
    ledger: Ledger,
    queue: &'static str,
    last: Mutex<Option<(Instant, bool)>>,
}

impl LogPauseGate {
    /// The gate of `queue`.
    pub fn new(ledger: Ledger, queue: QueueName) -> Self {
        Self {
            ledger,
            queue: queue.as_str(),
            last: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<bool> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(read_at, _)| read_at.elapsed() < PAUSE_CACHE)
            .map(|(_, paused)| paused)
    }
}

impl PauseGate for LogPauseGate {
    async fn is_paused(&self) -> bool {
        if let Some(paused) = self.cached() {
            return paused;
        }
        let paused = match self.ledger.queue_paused(self.queue).await {
            Ok(paused) => paused,
            Err(error) => {
                tracing::warn!(queue = self.queue, %error, "queue state unreadable; not fetching");
                return true;
            }
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), paused));
        paused
    }
}

/// The queues on the broker: depths, retry of failed jobs, drain of waiting ones.
#[derive(Clone)]
pub struct WorkQueues {
    jetstream: jetstream::Context,
    log_stream: LogStreamConfig,
}

impl WorkQueues {
    /// The queues of the log `log_stream` on `jetstream`.
    pub fn new(jetstream: jetstream::Context, log_stream: LogStreamConfig) -> Self {
        Self {
            jetstream,
            log_stream,
        }
    }

    fn spec(&self, queue: QueueName) -> queue::QueueSpec {
        queue.spec(&self.log_stream, DEFAULT_CONCURRENCY)
    }

    /// How many jobs of `queue` wait, run and failed.
    pub async fn depth(&self, queue: QueueName) -> Result<QueueDepth, QueueError> {
        queue::depth(&self.jetstream, &self.spec(queue)).await
    }

    /// When the oldest job waiting in `queue` reached the broker (`None`: none waits).
    pub async fn oldest_waiting(
        &self,
        queue: QueueName,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, QueueError> {
        queue::oldest_waiting(&self.jetstream, &self.spec(queue)).await
    }

    /// Puts the failed jobs of `queue` back into it; answers how many.
    pub async fn retry_failed(&self, queue: QueueName) -> Result<u64, QueueError> {
        let spec = self.spec(queue);
        spec.failed
            .retry_failed(&self.jetstream, &spec.name)
            .await
            .map_err(|e| QueueError::JetStream {
                queue: spec.name.clone(),
                action: "retry failed jobs",
                reason: e.to_string(),
            })
    }

    /// Discards the jobs of `queue` waiting to be fetched; answers how many.
    pub async fn drain(&self, queue: QueueName) -> Result<u64, QueueError> {
        queue::drain(&self.jetstream, &self.spec(queue)).await
    }
}
