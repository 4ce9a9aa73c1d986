//! Queue: ops' switches on one work queue, and the record of what ops did to it.
//!
//! Stream `queue-<queue name>`. Workers read whether their queue is paused from here (every
//! replica sees the same answer, and a paused queue keeps its jobs in JetStream: pausing only
//! stops fetching). Retrying failed jobs and draining waiting ones happen on the broker; their
//! outcome is recorded here afterwards, so the audit log shows who did what to which queue
//! without bookkeeping of its own.
//!
//! Rules: pausing a paused queue or resuming a running one decides nothing; a retry or a drain is
//! always recorded, even when it moved no job (ops asked for it).
//!
//! Why the log and not a table: a pause is an ops decision worth keeping with its actor, and the
//! log already reaches every process (PostgreSQL for reads, JetStream for followers).

use crate::decider::Decider;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// A queue's switches. A new stream is a running queue with no history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    paused_since: Option<DateTime<Utc>>,
    last_drained_at: Option<DateTime<Utc>>,
    last_retried_at: Option<DateTime<Utc>>,
}

impl Queue {
    /// Whether workers must stop fetching jobs of this queue.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Since when it is paused, if it is.
    pub fn paused_since(&self) -> Option<DateTime<Utc>> {
        self.paused_since
    }

    /// When waiting jobs were last discarded.
    pub fn last_drained_at(&self) -> Option<DateTime<Utc>> {
        self.last_drained_at
    }

    /// When failed jobs were last put back.
    pub fn last_retried_at(&self) -> Option<DateTime<Utc>> {
        self.last_retried_at
    }
}

/// What ops can do to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    /// Stops workers from fetching jobs; jobs wait in the broker.
    Pause {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Lets workers fetch jobs again.
    Resume {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that failed jobs were put back into the queue.
    RecordRetry {
        /// How many jobs were put back.
        jobs: u64,
        /// When it was done.
        at: DateTime<Utc>,
    },
    /// Records that waiting jobs were discarded.
    RecordDrain {
        /// How many jobs were discarded.
        jobs: u64,
        /// When it was done.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a queue stream records.
    pub enum QueueEvent {
        /// Workers stop fetching jobs of the queue.
        QueuePaused {
            /// When.
            at: DateTime<Utc>,
        },
        /// Workers fetch jobs of the queue again.
        QueueResumed {
            /// When.
            at: DateTime<Utc>,
        },
        /// Failed jobs were put back into the queue.
        QueueFailedJobsRetried {
            /// How many.
            jobs: u64,
            /// When.
            at: DateTime<Utc>,
        },
        /// Waiting jobs were discarded.
        QueueDrained {
            /// How many.
            jobs: u64,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

impl Decider for Queue {
    const CATEGORY: &'static str = "queue";
    type State = Queue;
    type Command = QueueCommand;
    type Event = QueueEvent;
    /// Never refused: every command is either recorded or already in effect.
    type Error = Infallible;

    fn decide(state: &Queue, command: &QueueCommand) -> Result<Vec<QueueEvent>, Infallible> {
        Ok(match *command {
            QueueCommand::Pause { .. } if state.is_paused() => vec![],
            QueueCommand::Pause { at } => vec![QueueEvent::QueuePaused { at }],
            QueueCommand::Resume { .. } if !state.is_paused() => vec![],
            QueueCommand::Resume { at } => vec![QueueEvent::QueueResumed { at }],
            QueueCommand::RecordRetry { jobs, at } => {
                vec![QueueEvent::QueueFailedJobsRetried { jobs, at }]
            }
            QueueCommand::RecordDrain { jobs, at } => vec![QueueEvent::QueueDrained { jobs, at }],
        })
    }

    fn evolve(mut state: Queue, event: &QueueEvent) -> Queue {
        match *event {
            QueueEvent::QueuePaused { at } => state.paused_since = Some(at),
            QueueEvent::QueueResumed { .. } => state.paused_since = None,
            QueueEvent::QueueFailedJobsRetried { at, .. } => state.last_retried_at = Some(at),
            QueueEvent::QueueDrained { at, .. } => state.last_drained_at = Some(at),
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, t};

    #[test]
    fn pausing_twice_is_one_pause_and_resuming_a_running_queue_is_nothing() {
        let paused = given::<Queue>([])
            .when(QueueCommand::Pause { at: t(1) })
            .then([QueueEvent::QueuePaused { at: t(1) }]);
        assert!(paused.is_paused());
        assert_eq!(paused.paused_since(), Some(t(1)));
        given::<Queue>([QueueEvent::QueuePaused { at: t(1) }])
            .when(QueueCommand::Pause { at: t(2) })
            .then_nothing();
        given::<Queue>([])
            .when(QueueCommand::Resume { at: t(2) })
            .then_nothing();
        let resumed = given::<Queue>([QueueEvent::QueuePaused { at: t(1) }])
            .when(QueueCommand::Resume { at: t(3) })
            .then([QueueEvent::QueueResumed { at: t(3) }]);
        assert!(!resumed.is_paused());
    }

    #[test]
    fn retries_and_drains_are_always_recorded() {
        let state = given::<Queue>([QueueEvent::QueuePaused { at: t(1) }])
            .when(QueueCommand::RecordDrain { jobs: 0, at: t(2) })
            .then([QueueEvent::QueueDrained { jobs: 0, at: t(2) }]);
        assert_eq!(state.last_drained_at(), Some(t(2)));
        assert!(state.is_paused(), "a drain does not resume the queue");
        let state = given::<Queue>([])
            .when(QueueCommand::RecordRetry { jobs: 7, at: t(4) })
            .then([QueueEvent::QueueFailedJobsRetried { jobs: 7, at: t(4) }]);
        assert_eq!(state.last_retried_at(), Some(t(4)));
    }
}
