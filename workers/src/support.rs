//! What every job over the event log shares: decoding the event, the metadata of the commands it
//! causes, turning a ledger failure into a job outcome, and waiting for a due time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_domain::DomainEvent;
use lightspeed_eventstore::{CommandContext, Metadata, RecordedEvent};
use lightspeed_services::ServiceError;
use uuid::Uuid;

use crate::queue::{Job, JobOutcome};

/// The recorded event a log message carries, or the outcome for a message that is not one.
pub(crate) fn recorded_event(job: &Job) -> Result<RecordedEvent, JobOutcome> {
    lightspeed_eventstore::nats::decode(job.stream_sequence, &job.payload)
        .map_err(|e| JobOutcome::GiveUp(e.to_string()))
}

/// The domain event a recorded event holds, or the outcome for one that does not decode.
pub(crate) fn domain_event<E: DomainEvent>(event: &RecordedEvent) -> Result<E, JobOutcome> {
    event
        .decode()
        .map_err(|e| JobOutcome::GiveUp(format!("event {}: {e}", event.event_id)))
}

/// The id part of the event's stream, parsed (e.g. the payment of a `payment-…` stream).
pub(crate) fn stream_key<T: std::str::FromStr>(event: &RecordedEvent) -> Result<T, JobOutcome> {
    event
        .stream_id
        .id()
        .parse()
        .map_err(|_| JobOutcome::GiveUp(format!("stream {} does not name an id", event.stream_id)))
}

/// The context of a command a worker issues because of `event`: same correlation, caused by the
/// event, acting as `system:<queue>`.
pub(crate) fn caused_by(
    event: &RecordedEvent,
    queue: &str,
    command_id: Option<Uuid>,
) -> CommandContext {
    CommandContext {
        command_id,
        metadata: Metadata {
            correlation_id: event.metadata.correlation_id.or(Some(event.event_id)),
            causation_id: Some(event.event_id),
            actor: Some(format!("system:{queue}")),
            request_id: event.metadata.request_id.clone(),
        },
    }
}

/// The outcome of a job whose ledger operation failed: a passing failure (database, contention)
/// is retried; a refusal, or a command that decided other events than its earlier try stored
/// (an idempotency conflict), can never succeed on redelivery and is given up with the reason.
pub(crate) fn ledger_failure(job: &Job, what: &str, error: &ServiceError) -> JobOutcome {
    match error {
        ServiceError::Store(_) | ServiceError::Contended => {
            tracing::warn!(subject = %job.subject, %error, "{what} failed; retrying");
            job.retry_transient()
        }
        refusal => JobOutcome::GiveUp(format!("{what}: {refusal}")),
    }
}

/// How long until `due`, if it is still ahead of `now`.
pub(crate) fn remaining(due: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (due - now).to_std().ok().filter(|wait| !wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn waits_only_for_instants_ahead() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 6, 0, 0)
            .single()
            .expect("instant");
        assert_eq!(
            remaining(now + chrono::Duration::seconds(2), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(remaining(now, now), None);
        assert_eq!(remaining(now - chrono::Duration::seconds(2), now), None);
    }
}
