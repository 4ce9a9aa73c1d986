//! Ops' switches on the work queues, recorded in the log (`queue-<name>` streams).
//!
//! Workers ask [`Ledger::queue_paused`] before fetching: a paused queue's jobs stay in the
//! broker, so pausing loses nothing. The admin API appends the pause and resume, and records the
//! retries and drains it ran on the broker.

use lightspeed_domain::queue::{Queue, QueueCommand};
use lightspeed_eventstore::{CommandContext, StreamId, stream_of};

use crate::error::ServiceError;
use crate::ledger::Ledger;

impl Ledger {
    /// A queue's switches as of the log's latest event.
    pub async fn queue_state(&self, queue: &str) -> Result<Queue, ServiceError> {
        Ok(self.queues.load(&queue_stream(queue)?).await?.state)
    }

    /// Whether workers of `queue` must stop fetching jobs now (read from the log on every call,
    /// so a pause made on any replica holds from the next fetch on).
    pub async fn queue_paused(&self, queue: &str) -> Result<bool, ServiceError> {
        Ok(self.queue_state(queue).await?.is_paused())
    }

    /// Pauses `queue` (nothing new when it is paused); answers the state after.
    pub async fn pause_queue(
        &self,
        queue: &str,
        context: &CommandContext,
    ) -> Result<Queue, ServiceError> {
        let command = QueueCommand::Pause { at: self.now() };
        self.queue_command(queue, &command, context).await
    }

    /// Resumes `queue` (nothing new when it runs); answers the state after.
    pub async fn resume_queue(
        &self,
        queue: &str,
        context: &CommandContext,
    ) -> Result<Queue, ServiceError> {
        let command = QueueCommand::Resume { at: self.now() };
        self.queue_command(queue, &command, context).await
    }

    /// Records that `jobs` failed jobs of `queue` were put back.
    pub async fn record_queue_retry(
        &self,
        queue: &str,
        jobs: u64,
        context: &CommandContext,
    ) -> Result<Queue, ServiceError> {
        let command = QueueCommand::RecordRetry {
            jobs,
            at: self.now(),
        };
        self.queue_command(queue, &command, context).await
    }

    /// Records that `jobs` waiting jobs of `queue` were discarded.
    pub async fn record_queue_drain(
        &self,
        queue: &str,
        jobs: u64,
        context: &CommandContext,
    ) -> Result<Queue, ServiceError> {
        let command = QueueCommand::RecordDrain {
            jobs,
            at: self.now(),
        };
        self.queue_command(queue, &command, context).await
    }

    async fn queue_command(
        &self,
        queue: &str,
        command: &QueueCommand,
        context: &CommandContext,
    ) -> Result<Queue, ServiceError> {
        let executed = self
            .queues
            .execute(&queue_stream(queue)?, command, context)
            .await?;
        Ok(executed.state)
    }
}

fn queue_stream(queue: &str) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<Queue>(queue)?)
}
