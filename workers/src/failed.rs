//! Failed jobs: where a job a handler gave up on is kept, and how ops put it back.
//!
//! Stream `<LOG STREAM>_FAILED`, subjects `<log prefix>_failed.<queue>.{dead,retry}`, work-queue
//! retention (a message is removed once acknowledged), kept at most [`FAILED_MAX_AGE`]. A job
//! given up on is published on `.dead` with the subject it came from in the [`SUBJECT_HEADER`]
//! and the reason in the [`REASON_HEADER`], and only then terminated where it came from, so a
//! failed job is never lost. [`retry_failed`] moves every `.dead` message to `.retry`, which the
//! queue consumes like its own subjects: the handler sees the original subject and payload.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures::{StreamExt, TryStreamExt};
use lightspeed_eventstore::nats::{DUPLICATE_WINDOW, LogStreamConfig};

/// How long a failed job is kept for a retry: 30 days.
pub const FAILED_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most failed jobs kept before new ones are refused (and their source retried instead).
pub const MAX_FAILED_JOBS: i64 = 1_000_000;
/// Header naming the subject a failed job was first published on.
pub const SUBJECT_HEADER: &str = "Ls-Subject";
/// Header with why the job was given up on.
pub const REASON_HEADER: &str = "Ls-Reason";
/// Longest reason kept, in characters.
const MAX_REASON_CHARS: usize = 500;
/// How long one read of the `.dead` messages waits for the next one before it stops.
const READ_WAIT: Duration = Duration::from_secs(2);

/// Where failed jobs live for one log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJobStream {
    /// JetStream stream name, e.g. `LEDGER_FAILED`.
    pub stream_name: String,
    /// First subject token, e.g. `ledger_failed`.
    pub subject_prefix: String,
}

/// Why a failed-job operation did not complete.
#[derive(Debug, thiserror::Error)]
#[error("failed jobs: {action}: {reason}")]
pub struct FailedJobError {
    /// What was being done.
    pub action: &'static str,
    /// What JetStream said.
    pub reason: String,
}

fn broker(action: &'static str) -> impl Fn(&dyn std::fmt::Display) -> FailedJobError {
    move |e| FailedJobError {
        action,
        reason: e.to_string(),
    }
}

impl FailedJobStream {
    /// The failed-jobs stream that goes with a log stream: `<name>_FAILED`, `<prefix>_failed.>`.
    pub fn for_log(log: &LogStreamConfig) -> Self {
        Self {
            stream_name: format!("{}_FAILED", log.stream_name),
            subject_prefix: format!("{}_failed", log.subject_prefix),
        }
    }

    /// Where `queue`'s jobs wait for a retry.
    pub fn dead_subject(&self, queue: &str) -> String {
        format!("{}.{queue}.dead", self.subject_prefix)
    }

    /// Where `queue`'s retried jobs are put back.
    pub fn retry_subject(&self, queue: &str) -> String {
        format!("{}.{queue}.retry", self.subject_prefix)
    }

    /// Creates the stream if absent.
    pub async fn ensure_stream(
        &self,
        jetstream: &jetstream::Context,
    ) -> Result<stream::Stream, FailedJobError> {
        jetstream
            .get_or_create_stream(stream::Config {
                name: self.stream_name.clone(),
                subjects: vec![format!("{}.>", self.subject_prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_messages: MAX_FAILED_JOBS,
                max_age: FAILED_MAX_AGE,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| broker("create the stream")(&e))
    }

    /// Keeps a job of `queue` that was given up on (the `subject` it was first published on and
    /// its `payload`); `Ok` once JetStream stored it. `source_id` names the delivered message
    /// (stream and sequence) so a repeated give-up stores it once.
    pub async fn keep(
        &self,
        jetstream: &jetstream::Context,
        queue: &str,
        subject: &str,
        payload: bytes::Bytes,
        source_id: &str,
        reason: &str,
    ) -> Result<(), FailedJobError> {
        let mut headers = HeaderMap::new();
        headers.insert(SUBJECT_HEADER, subject);
        let reason: String = reason
            .chars()
            .take(MAX_REASON_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        headers.insert(REASON_HEADER, reason.as_str());
        jetstream
            .send_publish(
                self.dead_subject(queue),
                PublishMessage::build()
                    .payload(payload)
                    .headers(headers)
                    .message_id(format!("dead:{source_id}")),
            )
            .await
            .map_err(|e| broker("publish a failed job")(&e))?
            .await
            .map_err(|e| broker("store a failed job")(&e))?;
        Ok(())
    }

    /// How many jobs of `queue` wait for a retry.
    pub async fn count(
        &self,
        jetstream: &jetstream::Context,
        queue: &str,
    ) -> Result<u64, FailedJobError> {
        let stream = self.ensure_stream(jetstream).await?;
        let subject = self.dead_subject(queue);
        let mut subjects = stream
            .info_with_subjects(&subject)
            .await
            .map_err(|e| broker("count failed jobs")(&e))?;
        let mut count = 0u64;
        while let Some((_, n)) = subjects
            .try_next()
            .await
            .map_err(|e| broker("count failed jobs")(&e))?
        {
            count = count.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        }
        Ok(count)
    }

    /// Puts every failed job of `queue` back into it (each one is stored on `.retry` before it
    /// leaves `.dead`); answers how many.
    pub async fn retry_failed(
        &self,
        jetstream: &jetstream::Context,
        queue: &str,
    ) -> Result<u64, FailedJobError> {
        let waiting = self.count(jetstream, queue).await?;
        if waiting == 0 {
            return Ok(0);
        }
        let stream = self.ensure_stream(jetstream).await?;
        // An ephemeral consumer: a work-queue stream allows one consumer per subject, so two
        // retries of one queue at once are refused by the server rather than racing.
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: self.dead_subject(queue),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(|e| broker("read failed jobs")(&e))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .expires(READ_WAIT)
            .messages()
            .await
            .map_err(|e| broker("read failed jobs")(&e))?;
        let mut moved = 0u64;
        while moved < waiting {
            let message = match tokio::time::timeout(READ_WAIT, messages.next()).await {
                Ok(Some(message)) => message.map_err(|e| broker("read failed jobs")(&e))?,
                Ok(None) | Err(_) => break,
            };
            let sequence = message
                .info()
                .map_err(|e| broker("read failed jobs")(&e))?
                .stream_sequence;
            // Only our own headers travel: the dead message's `Nats-Msg-Id` would make the
            // server take the retried job for a duplicate of it.
            let mut headers = HeaderMap::new();
            for name in [SUBJECT_HEADER, REASON_HEADER] {
                if let Some(value) = message.headers.as_ref().and_then(|h| h.get(name)) {
                    headers.insert(name, value.clone());
                }
            }
            let publish = PublishMessage::build()
                .payload(message.payload.clone())
                .headers(headers)
                .message_id(format!("retry:{}:{sequence}", self.stream_name));
            jetstream
                .send_publish(self.retry_subject(queue), publish)
                .await
                .map_err(|e| broker("put a failed job back")(&e))?
                .await
                .map_err(|e| broker("put a failed job back")(&e))?;
            message
                .double_ack()
                .await
                .map_err(|e| broker("remove a retried job")(&e))?;
            moved += 1;
        }
        Ok(moved)
    }
}

/// The subject a retried job was first published on, from its headers.
pub(crate) fn original_subject(headers: Option<&HeaderMap>) -> Option<String> {
    headers
        .and_then(|headers| headers.get(SUBJECT_HEADER))
        .map(|subject| subject.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_jobs_sit_beside_the_log() {
        let failed = FailedJobStream::for_log(&LogStreamConfig::default());
        assert_eq!(failed.stream_name, "LEDGER_FAILED");
        assert_eq!(
            failed.dead_subject("merchant-webhooks"),
            "ledger_failed.merchant-webhooks.dead"
        );
        assert_eq!(
            failed.retry_subject("merchant-webhooks"),
            "ledger_failed.merchant-webhooks.retry"
        );
    }
}
