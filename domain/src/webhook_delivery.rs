//! Webhook delivery: one payment status change delivered to a merchant's endpoint.
//!
//! Stream `webhook_delivery-<WebhookDeliveryId>`. Lifecycle: queued (payment, event type, JSON
//! payload, endpoint URL; first attempt due at once) → each attempt is recorded (status code or
//! transport error, duration, response excerpt) → delivered on a 2xx, else a retry is scheduled
//! at the next slot of [`crate::retry::WEBHOOK_WAITS`] (jittered ±20 %; a `Retry-After` answered
//! by the endpoint is honoured when longer, up to the longest slot, 10 h), or the delivery is
//! given up after the 8th attempt. Ops may requeue a given-up delivery.
//!
//! Endpoint health is a separate pure policy ([`endpoint_health`]): an endpoint failing
//! continuously for 5 days should be disabled, which the merchant stream records
//! (`WebhookEndpointDisabled`, per endpoint; `MerchantWebhookEndpointDisabled` in older logs).

use crate::calendar;
use crate::decider::Decider;
use crate::ids::{MerchantId, PaymentId, WebhookDeliveryId, WebhookEndpointId};
use crate::payment::PaymentStatus;
use crate::retry::{Jitter, WEBHOOK_LONGEST_WAIT, webhook_wait_after};
use crate::validation::{self, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An endpoint failing continuously for this long is disabled: 5 days.
pub const ENDPOINT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// Longest response excerpt or transport error kept per attempt, in characters.
pub const MAX_EXCERPT_CHARS: usize = 1_024;

/// Longest event type name, in characters.
pub const MAX_EVENT_TYPE_CHARS: usize = 64;

/// What the endpoint-health policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum EndpointHealth {
    /// The last attempt succeeded (or none failed).
    Healthy,
    /// Failing since `since`; disabled at `disable_at` if it keeps failing.
    Failing {
        /// Since when every attempt failed.
        since: DateTime<Utc>,
        /// When it will be disabled if nothing succeeds.
        disable_at: DateTime<Utc>,
    },
    /// Failing for 5 days or more: disable it.
    Disable {
        /// Since when every attempt failed.
        since: DateTime<Utc>,
    },
}

/// The endpoint-health policy: given since when an endpoint has failed continuously (`None` if
/// its last attempt succeeded), whether to disable it at `now`.
pub fn endpoint_health(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> EndpointHealth {
    match failing_since {
        None => EndpointHealth::Healthy,
        Some(since) => {
            let disable_at = calendar::plus(since, ENDPOINT_DISABLE_AFTER);
            if now >= disable_at {
                EndpointHealth::Disable { since }
            } else {
                EndpointHealth::Failing { since, disable_at }
            }
        }
    }
}

/// What one attempt got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The endpoint answered.
    Response {
        /// HTTP status code.
        status_code: u16,
        /// The start of the response body.
        body_excerpt: String,
    },
    /// No answer: connection refused, timeout, TLS error, ...
    TransportError {
        /// What went wrong.
        error: String,
    },
}

impl AttemptOutcome {
    /// Only a 2xx answer counts as delivered.
    pub fn is_success(&self) -> bool {
        matches!(self, AttemptOutcome::Response { status_code, .. } if (200..300).contains(status_code))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Attempts exhausted.
    GivenUp,
}

/// A delivery as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    id: WebhookDeliveryId,
    merchant_id: MerchantId,
    payment_id: Option<PaymentId>,
    event_type: String,
    payload: serde_json::Value,
    endpoint_url: String,
    endpoint_id: WebhookEndpointId,
    attempts: u32,
    status: WebhookDeliveryStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    queued_at: DateTime<Utc>,
}

impl WebhookDelivery {
    /// The delivery's id.
    pub fn id(&self) -> WebhookDeliveryId {
        self.id
    }

    /// The merchant it is for.
    pub fn merchant_id(&self) -> MerchantId {
        self.merchant_id
    }

    /// The payment it reports on; none for a test event (its body names a sample payment).
    pub fn payment_id(&self) -> Option<PaymentId> {
        self.payment_id
    }

    /// Whether it carries a test event rather than news of a payment.
    pub fn is_test(&self) -> bool {
        self.payment_id.is_none()
    }

    /// The event type sent to the merchant, e.g. `payment.succeeded`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The JSON body to sign and send.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }

    /// Where to send it.
    pub fn endpoint_url(&self) -> &str {
        &self.endpoint_url
    }

    /// The endpoint it goes to (signed with that endpoint's secrets).
    pub fn endpoint_id(&self) -> WebhookEndpointId {
        self.endpoint_id
    }

    /// Attempts made since it was (re)queued.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Pending, delivered or given up.
    pub fn status(&self) -> WebhookDeliveryStatus {
        self.status
    }

    /// When the next attempt is due, while pending.
    pub fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.next_attempt_at
    }

    /// Whether an attempt is due at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_attempt_at.is_some_and(|due| due <= now)
    }

    /// The status code of the last attempt that got an answer.
    pub fn last_status_code(&self) -> Option<u16> {
        self.last_status_code
    }

    /// The last failed attempt's error (transport error or non-2xx summary).
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// When it was first queued.
    pub fn queued_at(&self) -> DateTime<Utc> {
        self.queued_at
    }
}

/// Everything needed to queue a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueWebhookDelivery {
    /// The new delivery's id.
    pub delivery_id: WebhookDeliveryId,
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The payment reported on; none for a test event.
    pub payment_id: Option<PaymentId>,
    /// Event type sent to the merchant, e.g. `payment.succeeded`.
    pub event_type: String,
    /// The JSON body.
    pub payload: serde_json::Value,
    /// The merchant's endpoint.
    pub endpoint_url: String,
    /// Which of the merchant's endpoints.
    pub endpoint_id: WebhookEndpointId,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// One attempt's result, as the webhook relay observed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    /// Answer or transport error.
    pub outcome: AttemptOutcome,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
    /// The endpoint's `Retry-After`, in seconds, if it sent one.
    pub retry_after_secs: Option<u64>,
    /// Jitter for the next wait, drawn by the caller.
    pub jitter: Jitter,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// What can be asked of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookDeliveryCommand {
    /// Queues a delivery, due at once.
    Queue(QueueWebhookDelivery),
    /// Records an attempt and decides what follows.
    RecordAttempt(WebhookAttempt),
    /// Queues a given-up delivery again with a fresh schedule (ops).
    Requeue {
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a webhook delivery stream records.
    pub enum WebhookDeliveryEvent {
        /// A delivery was queued.
        WebhookDeliveryQueued {
            /// The delivery's id.
            delivery_id: WebhookDeliveryId,
            /// The merchant.
            merchant_id: MerchantId,
            /// The payment; none for a test event.
            payment_id: Option<PaymentId>,
            /// Event type sent.
            event_type: String,
            /// The JSON body.
            payload: serde_json::Value,
            /// The endpoint.
            endpoint_url: String,
            /// Which of the merchant's endpoints; deliveries queued before merchants had several
            /// went to the first one.
            #[serde(default)]
            endpoint_id: Option<WebhookEndpointId>,
            /// When.
            at: DateTime<Utc>,
        },
        /// An attempt was made.
        WebhookDeliveryAttempted {
            /// Which attempt (1-based).
            attempt: u32,
            /// HTTP status code, if the endpoint answered.
            status_code: Option<u16>,
            /// Transport error, if it did not.
            error: Option<String>,
            /// How long it took, in milliseconds.
            duration_ms: u64,
            /// The start of the response body.
            response_excerpt: Option<String>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The endpoint answered 2xx.
        WebhookDelivered {
            /// Which attempt.
            attempt: u32,
            /// The status code.
            status_code: u16,
            /// When.
            at: DateTime<Utc>,
        },
        /// Another attempt is scheduled.
        WebhookRetryScheduled {
            /// The attempt that will be made.
            next_attempt: u32,
            /// When it is due.
            next_attempt_at: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The schedule is exhausted.
        WebhookDeliveryGivenUp {
            /// Attempts made.
            attempts: u32,
            /// When.
            at: DateTime<Utc>,
        },
        /// A given-up delivery was queued again.
        WebhookDeliveryRequeued {
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a delivery command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookDeliveryError {
    /// The stream has no `WebhookDeliveryQueued` yet.
    #[error("webhook delivery not queued")]
    NotQueued,
    /// `Queue` on an existing delivery.
    #[error("webhook delivery already queued")]
    AlreadyQueued,
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The delivery already succeeded.
    #[error("webhook already delivered")]
    AlreadyDelivered,
    /// The delivery was given up; requeue it to try again.
    #[error("webhook delivery already given up")]
    AlreadyGivenUp,
    /// Only a given-up delivery can be requeued.
    #[error("webhook delivery is {status:?}; only a given-up one can be requeued")]
    NotGivenUp {
        /// Its status.
        status: WebhookDeliveryStatus,
    },
}

impl WebhookDeliveryError {
    /// True for a repeated or late attempt report: callers acknowledge it without effect.
    pub fn is_already_recorded(&self) -> bool {
        matches!(
            self,
            WebhookDeliveryError::AlreadyDelivered | WebhookDeliveryError::AlreadyGivenUp
        )
    }
}

/// The wait before the next attempt after `failed_attempt`: the schedule's slot, or the
/// endpoint's `Retry-After` when longer, capped at the longest slot so an endpoint cannot park a
/// delivery indefinitely; `None` when the schedule is exhausted.
pub fn next_wait(
    failed_attempt: u32,
    retry_after_secs: Option<u64>,
    jitter: Jitter,
) -> Option<Duration> {
    let scheduled = webhook_wait_after(failed_attempt, jitter)?;
    let asked = retry_after_secs.map_or(Duration::ZERO, |secs| {
        Duration::from_secs(secs).min(WEBHOOK_LONGEST_WAIT)
    });
    Some(scheduled.max(asked))
}

impl Decider for WebhookDelivery {
    const CATEGORY: &'static str = "webhook_delivery";
    type State = Option<WebhookDelivery>;
    type Command = WebhookDeliveryCommand;
    type Event = WebhookDeliveryEvent;
    type Error = WebhookDeliveryError;

    fn decide(
        state: &Option<WebhookDelivery>,
        command: &WebhookDeliveryCommand,
    ) -> Result<Vec<WebhookDeliveryEvent>, WebhookDeliveryError> {
        let delivery = match (state, command) {
            (None, WebhookDeliveryCommand::Queue(queue)) => return queue_delivery(queue),
            (Some(_), WebhookDeliveryCommand::Queue(_)) => {
                return Err(WebhookDeliveryError::AlreadyQueued);
            }
            (None, _) => return Err(WebhookDeliveryError::NotQueued),
            (Some(delivery), _) => delivery,
        };
        match command {
            WebhookDeliveryCommand::Queue(_) => Err(WebhookDeliveryError::AlreadyQueued),
            WebhookDeliveryCommand::RecordAttempt(attempt) => record_attempt(delivery, attempt),
            WebhookDeliveryCommand::Requeue { at } => {
                if delivery.status != WebhookDeliveryStatus::GivenUp {
                    return Err(WebhookDeliveryError::NotGivenUp {
                        status: delivery.status,
                    });
                }
                Ok(vec![WebhookDeliveryEvent::WebhookDeliveryRequeued {
                    at: *at,
                }])
            }
        }
    }

    fn evolve(
        state: Option<WebhookDelivery>,
        event: &WebhookDeliveryEvent,
    ) -> Option<WebhookDelivery> {
        match state {
            Some(delivery) => delivery.apply(event),
            // Events before the queueing describe no delivery yet.
            None => WebhookDelivery::queued(event),
        }
    }
}

/// The body with its `data.status` named as [`PaymentStatus::as_str`] names it: bodies queued
/// by earlier releases carry the names `initiated` and `awaiting_payment`, and the recorded
/// event keeps them, so they are renamed when the body is read.
fn with_current_status_name(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(status) = payload.pointer_mut("/data/status")
        && let Some(current) = status.as_str().and_then(PaymentStatus::parse)
    {
        *status = serde_json::Value::from(current.as_str());
    }
    payload
}

impl WebhookDelivery {
    /// The delivery a queueing event starts; `None` for any other event.
    fn queued(event: &WebhookDeliveryEvent) -> Option<WebhookDelivery> {
        let WebhookDeliveryEvent::WebhookDeliveryQueued {
            delivery_id,
            merchant_id,
            payment_id,
            event_type,
            payload,
            endpoint_url,
            endpoint_id,
            at,
        } = event
        else {
            return None;
        };
        Some(WebhookDelivery {
            id: *delivery_id,
            merchant_id: *merchant_id,
            payment_id: *payment_id,
            event_type: event_type.clone(),
            payload: with_current_status_name(payload.clone()),
            endpoint_url: endpoint_url.clone(),
            endpoint_id: endpoint_id
                .unwrap_or_else(|| crate::merchant::first_endpoint_id(*merchant_id)),
            attempts: 0,
            status: WebhookDeliveryStatus::Pending,
            next_attempt_at: Some(*at),
            last_status_code: None,
            last_error: None,
            queued_at: *at,
        })
    }

    /// The delivery after `event`; a queueing event starts it afresh.
    fn apply(mut self, event: &WebhookDeliveryEvent) -> Option<WebhookDelivery> {
        match event {
            WebhookDeliveryEvent::WebhookDeliveryQueued { .. } => {
                return WebhookDelivery::queued(event);
            }
            WebhookDeliveryEvent::WebhookDeliveryAttempted {
                attempt,
                status_code,
                error,
                ..
            } => {
                self.attempts = *attempt;
                self.last_status_code = status_code.or(self.last_status_code);
                self.last_error = error
                    .clone()
                    .or_else(|| status_code.map(|code| format!("HTTP {code}")));
                self.next_attempt_at = None;
            }
            WebhookDeliveryEvent::WebhookDelivered { .. } => {
                self.status = WebhookDeliveryStatus::Delivered;
                self.last_error = None;
            }
            WebhookDeliveryEvent::WebhookRetryScheduled {
                next_attempt_at, ..
            } => self.next_attempt_at = Some(*next_attempt_at),
            WebhookDeliveryEvent::WebhookDeliveryGivenUp { .. } => {
                self.status = WebhookDeliveryStatus::GivenUp
            }
            WebhookDeliveryEvent::WebhookDeliveryRequeued { at } => {
                self.status = WebhookDeliveryStatus::Pending;
                self.attempts = 0;
                self.next_attempt_at = Some(*at);
            }
        }
        Some(self)
    }
}

fn queue_delivery(
    queue: &QueueWebhookDelivery,
) -> Result<Vec<WebhookDeliveryEvent>, WebhookDeliveryError> {
    validation::token(
        "event_type",
        &queue.event_type,
        MAX_EVENT_TYPE_CHARS,
        |c| c.is_ascii_graphic(),
        "printable ASCII",
    )?;
    validation::http_url("endpoint_url", &queue.endpoint_url)?;
    Ok(vec![WebhookDeliveryEvent::WebhookDeliveryQueued {
        delivery_id: queue.delivery_id,
        merchant_id: queue.merchant_id,
        payment_id: queue.payment_id,
        event_type: queue.event_type.clone(),
        payload: queue.payload.clone(),
        endpoint_url: queue.endpoint_url.clone(),
        endpoint_id: Some(queue.endpoint_id),
        at: queue.at,
    }])
}

fn record_attempt(
    delivery: &WebhookDelivery,
    attempt: &WebhookAttempt,
) -> Result<Vec<WebhookDeliveryEvent>, WebhookDeliveryError> {
    match delivery.status {
        WebhookDeliveryStatus::Pending => {}
        WebhookDeliveryStatus::Delivered => return Err(WebhookDeliveryError::AlreadyDelivered),
        WebhookDeliveryStatus::GivenUp => return Err(WebhookDeliveryError::AlreadyGivenUp),
    }
    let number = delivery.attempts.saturating_add(1);
    let at = attempt.at;
    let (status_code, error, response_excerpt) = match &attempt.outcome {
        AttemptOutcome::Response {
            status_code,
            body_excerpt,
        } => (
            Some(*status_code),
            None,
            Some(validation::excerpt(body_excerpt, MAX_EXCERPT_CHARS)),
        ),
        AttemptOutcome::TransportError { error } => (
            None,
            Some(validation::excerpt(error, MAX_EXCERPT_CHARS)),
            None,
        ),
    };
    let mut events = vec![WebhookDeliveryEvent::WebhookDeliveryAttempted {
        attempt: number,
        status_code,
        error,
        duration_ms: attempt.duration_ms,
        response_excerpt,
        at,
    }];
    let delivered = status_code.filter(|_| attempt.outcome.is_success());
    let next = match (
        delivered,
        next_wait(number, attempt.retry_after_secs, attempt.jitter),
    ) {
        (Some(status_code), _) => WebhookDeliveryEvent::WebhookDelivered {
            attempt: number,
            status_code,
            at,
        },
        (None, Some(wait)) => WebhookDeliveryEvent::WebhookRetryScheduled {
            next_attempt: number.saturating_add(1),
            next_attempt_at: calendar::plus(at, wait),
            at,
        },
        // The schedule has no slot after the last attempt.
        (None, None) => WebhookDeliveryEvent::WebhookDeliveryGivenUp {
            attempts: number,
            at,
        },
    };
    events.push(next);
    Ok(events)
}

#[cfg(test)]
mod tests;
