//! Jobs that are not events: a JetStream work-queue stream of its own beside the log, and the
//! status-check job the webhook intake publishes when a PSP webhook's signature does not verify.
//!
//! Stream `<LOG STREAM>_JOBS`, subjects `<log prefix>_jobs.>`, work-queue retention (a job is
//! removed once acknowledged), file storage, kept at most [`JOB_MAX_AGE`] and
//! [`MAX_QUEUED_JOBS`] deep (new jobs are refused beyond that, rather than old ones dropped).
//!
//! A status check is published on `<log prefix>_jobs.status_check` as JSON:
//!
//! ```json
//! {"gateway_id": "0190…", "payment_id": "0190…", "psp_order_id": "order_…", "reason": "webhook signature did not verify"}
//! ```
//!
//! `psp_order_id` is optional (the payment's recorded order is used when absent); unknown fields
//! are refused. The message id is `status_check:<gateway>:<payment>`, so a burst of bad webhooks
//! for one payment within JetStream's duplicate window queues one check.
//!
//! A refund check (an unsigned PayU refund callback, or a refund reconciliation finds stale) is
//! published on `<log prefix>_jobs.refund_check`:
//!
//! ```json
//! {"payment_id": "0190…", "refund_id": "0190…", "reason": "reconciliation: refund open 30 minutes"}
//! ```
//!
//! with message id `refund_check:<refund>` (or the caller's).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use lightspeed_domain::{GatewayId, PaymentId, RefundId};
use lightspeed_eventstore::nats::{DUPLICATE_WINDOW, LogStreamConfig};
use serde::{Deserialize, Serialize};

/// How long an unprocessed job is kept: 7 days.
pub const JOB_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most jobs the stream holds before refusing new ones.
pub const MAX_QUEUED_JOBS: i64 = 1_000_000;
/// Longest job message accepted, in bytes.
pub const MAX_JOB_BYTES: i32 = 64 * 1024;
/// Longest reason kept in a status check, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// Where jobs that are not events live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStreamConfig {
    /// JetStream stream name, e.g. `LEDGER_JOBS`.
    pub stream_name: String,
    /// First subject token, e.g. `ledger_jobs`.
    pub subject_prefix: String,
}

impl JobStreamConfig {
    /// The jobs stream that goes with a log stream: `<name>_JOBS`, subjects `<prefix>_jobs.>`.
    pub fn for_log(log: &LogStreamConfig) -> Self {
        Self {
            stream_name: format!("{}_JOBS", log.stream_name),
            subject_prefix: format!("{}_jobs", log.subject_prefix),
        }
    }

    /// The subject status checks are published on.
    pub fn status_check_subject(&self) -> String {
        format!("{}.status_check", self.subject_prefix)
    }

    /// The subject refund checks are published on.
    pub fn refund_check_subject(&self) -> String {
        format!("{}.refund_check", self.subject_prefix)
    }

    /// Creates the stream if absent.
    pub async fn ensure_stream(
        &self,
        jetstream: &jetstream::Context,
    ) -> Result<stream::Stream, JobError> {
        jetstream
            .get_or_create_stream(stream::Config {
                name: self.stream_name.clone(),
                subjects: vec![format!("{}.>", self.subject_prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_messages: MAX_QUEUED_JOBS,
                max_age: JOB_MAX_AGE,
                max_message_size: MAX_JOB_BYTES,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| JobError::JetStream(e.to_string()))
    }
}

/// A request to ask a PSP for a payment's status instead of trusting a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCheck {
    /// The gateway whose webhook asked for it.
    pub gateway_id: GatewayId,
    /// The payment to check.
    pub payment_id: PaymentId,
    /// The PSP's order id, when the webhook named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_order_id: Option<String>,
    /// Why the check is asked for (at most [`MAX_REASON_CHARS`] characters are kept).
    pub reason: String,
}

impl StatusCheck {
    /// The JetStream message id: one queued check per gateway and payment within the duplicate
    /// window.
    pub fn message_id(&self) -> String {
        format!("status_check:{}:{}", self.gateway_id, self.payment_id)
    }
}

/// Whether a published job was queued or recognised as a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// A new job.
    New,
    /// The same job was queued within the duplicate window; nothing new was queued.
    Duplicate,
}

/// Why a job could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// JetStream refused or failed.
    #[error("job stream: {0}")]
    JetStream(String),
    /// The job does not serialise.
    #[error("job message: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Queues a status check (creating the jobs stream if needed) and waits for JetStream's
/// acknowledgement, so an `Ok` means the job is stored.
pub async fn publish_status_check(
    jetstream: &jetstream::Context,
    log_stream: &LogStreamConfig,
    check: &StatusCheck,
) -> Result<Queued, JobError> {
    publish_status_check_as(jetstream, log_stream, check, check.message_id()).await
}

/// Queues a status check under `message_id` (JetStream drops a second message with the same id
/// within its duplicate window), e.g. one per payment and reconciliation window.
pub async fn publish_status_check_as(
    jetstream: &jetstream::Context,
    log_stream: &LogStreamConfig,
    check: &StatusCheck,
    message_id: String,
) -> Result<Queued, JobError> {
    let jobs = JobStreamConfig::for_log(log_stream);
    let check = StatusCheck {
        reason: check.reason.chars().take(MAX_REASON_CHARS).collect(),
        ..check.clone()
    };
    let payload = serde_json::to_vec(&check)?;
    publish(
        jetstream,
        &jobs,
        jobs.status_check_subject(),
        payload,
        message_id,
    )
    .await
}

/// A request to ask the PSP where one of our refunds stands (the gateway is the one that
/// captured the payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundCheck {
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// Our refund.
    pub refund_id: RefundId,
    /// Why the check is asked for (at most [`MAX_REASON_CHARS`] characters are kept).
    pub reason: String,
}

impl RefundCheck {
    /// The JetStream message id: one queued check per refund within the duplicate window.
    pub fn message_id(&self) -> String {
        format!("refund_check:{}", self.refund_id)
    }
}

/// Queues a refund check under `message_id` (see [`RefundCheck::message_id`]) and waits for
/// JetStream's acknowledgement.
pub async fn publish_refund_check(
    jetstream: &jetstream::Context,
    log_stream: &LogStreamConfig,
    check: &RefundCheck,
    message_id: String,
) -> Result<Queued, JobError> {
    let jobs = JobStreamConfig::for_log(log_stream);
    let check = RefundCheck {
        reason: check.reason.chars().take(MAX_REASON_CHARS).collect(),
        ..check.clone()
    };
    let payload = serde_json::to_vec(&check)?;
    publish(
        jetstream,
        &jobs,
        jobs.refund_check_subject(),
        payload,
        message_id,
    )
    .await
}

/// Publishes one job (creating the jobs stream if needed) and waits for its acknowledgement.
async fn publish(
    jetstream: &jetstream::Context,
    jobs: &JobStreamConfig,
    subject: String,
    payload: Vec<u8>,
    message_id: String,
) -> Result<Queued, JobError> {
    jobs.ensure_stream(jetstream).await?;
    let ack = jetstream
        .send_publish(
            subject,
            PublishMessage::build()
                .payload(payload.into())
                .message_id(message_id),
        )
        .await
        .map_err(|e| JobError::JetStream(e.to_string()))?
        .await
        .map_err(|e| JobError::JetStream(e.to_string()))?;
    Ok(if ack.duplicate {
        Queued::Duplicate
    } else {
        Queued::New
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jobs_stream_sits_beside_the_log() {
        let jobs = JobStreamConfig::for_log(&LogStreamConfig::default());
        assert_eq!(jobs.stream_name, "LEDGER_JOBS");
        assert_eq!(jobs.status_check_subject(), "ledger_jobs.status_check");
    }

    #[test]
    fn status_checks_have_a_documented_shape() {
        let check: StatusCheck = serde_json::from_str(
            r#"{"gateway_id":"01937a4e-7a1c-7cc0-8000-000000000001","payment_id":"01937a4e-7a1c-7cc0-8000-000000000002","reason":"bad signature"}"#,
        )
        .expect("parse");
        assert_eq!(check.psp_order_id, None);
        assert_eq!(
            check.message_id(),
            "status_check:01937a4e-7a1c-7cc0-8000-000000000001:01937a4e-7a1c-7cc0-8000-000000000002"
        );
        let extra = serde_json::from_str::<StatusCheck>(
            r#"{"gateway_id":"01937a4e-7a1c-7cc0-8000-000000000001","payment_id":"01937a4e-7a1c-7cc0-8000-000000000002","reason":"x","secret":"no"}"#,
        );
        assert!(extra.is_err());
    }
}
