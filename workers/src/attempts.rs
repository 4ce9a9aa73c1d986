//! The delivery-attempt skeleton that merchant webhooks and WhatsApp notifications share; each
//! says only what differs, through [`DeliveryAttempts`].
//!
//! An event on a message's stream owes one attempt while it is still the stream's latest event
//! and the message still waits to be sent. The job loads the message's latest state, checks
//! that, waits (a delayed `nak`, re-checked at least every `due_recheck`) until the attempt is
//! due on the ledger's clock, attempts, and records the attempt as a command whose id derives
//! from the message and the event's version, so a redelivered job records it once: the record
//! carries what the attempt observed, so a delivery that raced the first one and saw another
//! answer is answered with the first record. The domain decides from that record when to try
//! again or that it gives up.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_eventstore::{CommandError, CommandHandler, PgEventStore, RecordedEvent};
use lightspeed_services::Ledger;
use uuid::Uuid;

use crate::queue::{Job, JobOutcome};
use crate::support::{caused_by, remaining, stream_key};

/// What one kind of outgoing message does its own way in the delivery-attempt skeleton.
pub(crate) trait DeliveryAttempts: Sync {
    /// The message, whose stream records its attempts.
    type Message: Decider<State = Option<Self::Message>>;
    /// The message's id, the key of its stream.
    type Id: FromStr + Display + Copy + Send + Sync;
    /// What an attempt leaves to do once its record is stored.
    type Recorded: Send;

    /// The queue's name, the actor of the commands it issues.
    const QUEUE: &'static str;
    /// The event types that owe an attempt.
    const OWING_EVENTS: &'static [&'static str];
    /// What the message is called in logs and give-up reasons.
    const NOUN: &'static str;

    /// The handler of the messages' commands.
    fn records(&self) -> &CommandHandler<Self::Message, PgEventStore>;

    /// The ledger, for its clock.
    fn ledger(&self) -> &Ledger;

    /// The longest a waiting job sleeps before it looks again.
    fn due_recheck(&self) -> Duration;

    /// Whether the message still waits to be sent.
    fn is_pending(message: &Self::Message) -> bool;

    /// When the message's next attempt is due.
    fn next_attempt_at(message: &Self::Message) -> Option<DateTime<Utc>>;

    /// The id of the command recording the attempt owed after the stream's `version`-th event.
    fn record_command_id(id: Self::Id, version: u64) -> Uuid;

    /// Whether a refused record says the attempt is recorded already.
    fn is_already_recorded(refusal: &<Self::Message as Decider>::Error) -> bool;

    /// Makes the attempt: the command that records it and what to do once that is stored, or
    /// the job's outcome when no attempt is made.
    async fn attempt(
        &self,
        job: &Job,
        id: Self::Id,
        message: &Self::Message,
        now: DateTime<Utc>,
    ) -> Result<(<Self::Message as Decider>::Command, Self::Recorded), JobOutcome>;

    /// What follows a record this job stored; nothing unless a message says otherwise.
    async fn after_recorded(&self, _event: &RecordedEvent, _recorded: Self::Recorded) {}
}

/// Makes and records the attempt `event` owes, if it still owes one.
pub(crate) async fn attempt_owed<A: DeliveryAttempts>(
    sender: &A,
    job: &Job,
    event: &RecordedEvent,
) -> Result<JobOutcome, JobOutcome> {
    if !A::OWING_EVENTS.contains(&event.event_type.as_str()) {
        return Ok(JobOutcome::Done);
    }
    let id: A::Id = stream_key(event)?;
    let Some(message) = still_owing(sender, job, event, id).await? else {
        return Ok(JobOutcome::Done);
    };
    let now = sender.ledger().now();
    if let Some(wait) = A::next_attempt_at(&message).and_then(|due| remaining(due, now)) {
        return Ok(JobOutcome::RetryAfter(wait.min(sender.due_recheck())));
    }
    let (record, recorded) = sender.attempt(job, id, &message, now).await?;
    if record_attempt(sender, job, event, id, &record).await? {
        sender.after_recorded(event, recorded).await;
    }
    Ok(JobOutcome::Done)
}

/// The message as of its stream's latest event, if that is `event` and the message still waits
/// to be sent.
async fn still_owing<A: DeliveryAttempts>(
    sender: &A,
    job: &Job,
    event: &RecordedEvent,
    id: A::Id,
) -> Result<Option<A::Message>, JobOutcome> {
    let loaded = sender
        .records()
        .load(&event.stream_id)
        .await
        .map_err(|error| {
            tracing::warn!(queue = A::QUEUE, %id, %error, "could not load the {}; retrying", A::NOUN);
            job.retry_transient()
        })?;
    // Only the latest event owes an attempt; anything later already made it.
    if loaded.version != event.stream_version {
        return Ok(None);
    }
    let message = loaded
        .state
        .ok_or_else(|| JobOutcome::GiveUp(format!("unknown {} {id}", A::NOUN)))?;
    Ok(A::is_pending(&message).then_some(message))
}

/// Records the attempt; `true` when this job stored the record, `false` when another delivery
/// of the job had already.
async fn record_attempt<A: DeliveryAttempts>(
    sender: &A,
    job: &Job,
    event: &RecordedEvent,
    id: A::Id,
    record: &<A::Message as Decider>::Command,
) -> Result<bool, JobOutcome> {
    let command_id = A::record_command_id(id, event.stream_version);
    let context = caused_by(event, A::QUEUE, Some(command_id));
    match sender
        .records()
        .execute_observed(&event.stream_id, record, &context)
        .await
    {
        // A replay: another delivery of this job recorded this attempt first.
        Ok(executed) => Ok(!executed.idempotent_replay),
        Err(CommandError::Rejected(refusal)) if A::is_already_recorded(&refusal) => Ok(false),
        Err(CommandError::Rejected(refusal)) => Err(JobOutcome::GiveUp(format!(
            "record attempt of {id}: {refusal}"
        ))),
        Err(error) => {
            tracing::warn!(queue = A::QUEUE, %id, %error, "could not record the attempt; retrying");
            Err(job.retry_transient())
        }
    }
}
