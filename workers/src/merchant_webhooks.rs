//! The merchant webhook sender (`merchant-webhooks`): tells merchants about their payments, in
//! the Standard Webhooks format, at least once.
//!
//! Two kinds of jobs share the queue:
//!
//! - **Queueing**, on payment status changes: `PaymentInitiated` → `payment.created`,
//!   `PaymentSucceeded` → `payment.succeeded`, `PaymentFailed` → `payment.failed`,
//!   `PaymentRefunded` → `refund.succeeded` (and `payment.refunded` too when it refunds the
//!   payment in full), `RefundFailed` → `refund.failed`. Each webhook fans out to every
//!   endpoint of the merchant that is enabled and whose filter matches its type: one
//!   `WebhookDelivery` per webhook and endpoint, with an id derived from the event's (and the
//!   webhook's type, for the second one; and the endpoint's, for endpoints but the first), as of
//!   the event's recording, so a redelivered event decides the same deliveries and queues
//!   nothing new. The body is fixed then, from the payment as of that event. A redelivered
//!   event that would now queue another delivery (the merchant moved an endpoint since) is given
//!   up with the reason: the first try's delivery stands.
//!   Reroutes are not sent: they happen before the payer sees a checkout and change nothing the
//!   merchant acts on.
//! - **Delivering**, on `WebhookDeliveryQueued`, `WebhookRetryScheduled` and
//!   `WebhookDeliveryRequeued`: such an event owes one attempt while it is still the delivery's
//!   latest event. The job waits (a delayed `nak`, re-checked at least every `due_recheck`) until
//!   the attempt is due on the ledger's clock, vets the URL again (SSRF: its host must still
//!   resolve to allowed addresses, and the attempt connects only to the vetted one), POSTs the
//!   body signed with its endpoint's current secret (and the previous one during its grace
//!   period), and records the attempt (a refused address as a transport error); the
//!   domain decides whether it was delivered, when to retry (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//!   10 h, ±20 % jitter drawn here, `Retry-After` honoured) or that it gives up.
//!
//! After every attempt the endpoint's health is updated; an endpoint failing continuously for 5
//! days is disabled on the merchant's stream (the domain's policy decides), and its pending
//! deliveries are no longer attempted; the merchant's other endpoints are not affected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::secrets::Keyring;
use lightspeed_adapters::webhook_target::{TargetPolicy, pinned_client, vet};
use lightspeed_domain::merchant::{MerchantCommand, WebhookEndpoint, first_endpoint_id};
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::webhook_delivery::{
    AttemptOutcome, EndpointHealth, QueueWebhookDelivery, WebhookAttempt, WebhookDeliveryCommand,
    WebhookDeliveryError, WebhookDeliveryStatus, endpoint_health,
};
use lightspeed_domain::{
    Decider, Merchant, MerchantId, Payment, PaymentId, Provider, RefundId, WebhookDelivery,
    WebhookDeliveryId, WebhookEndpointId,
};
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::limits::MAX_READ_BATCH;
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandError, CommandHandler, EventStore, ExpectedVersion,
    PgEventStore, RecordedEvent, stream_of,
};
use lightspeed_services::Ledger;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use uuid::Uuid;

use crate::attempts::{DeliveryAttempts, attempt_owed};
use crate::endpoint_health::{EndpointHealthBook, Observation};
use crate::ids::{self, delivery_id_for, delivery_id_for_endpoint};
use crate::queue::{JOB_TIMEOUT, Job, JobHandler, JobOutcome};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event, stream_key};

/// The queue's name.
pub const QUEUE: &str = "merchant-webhooks";
/// The payment events merchants hear about, with the event type they receive.
pub const PAYMENT_EVENTS: [(&str, &str); 5] = [
    ("PaymentInitiated", "payment.created"),
    ("PaymentSucceeded", "payment.succeeded"),
    ("PaymentFailed", "payment.failed"),
    ("PaymentRefunded", "refund.succeeded"),
    ("RefundFailed", "refund.failed"),
];
/// What a refund that refunds its payment in full also sends, after `refund.succeeded`.
pub const FULLY_REFUNDED: &str = "payment.refunded";
/// The delivery events that owe an attempt.
pub const DELIVERY_EVENTS: [&str; 3] = [
    "WebhookDeliveryQueued",
    "WebhookRetryScheduled",
    "WebhookDeliveryRequeued",
];
/// Longest wait for a merchant endpoint's answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);
// An attempt and its recording fit in one job.
const _: () = assert!(WEBHOOK_TIMEOUT.as_secs() * 2 < JOB_TIMEOUT.as_secs());
/// Most bytes of an endpoint's answer read for the attempt's excerpt.
const MAX_RESPONSE_READ_BYTES: usize = 4 * 1024;

/// Queues and delivers merchant webhooks.
#[derive(Debug, Clone)]
pub(crate) struct MerchantWebhooks {
    pub(crate) ledger: Ledger,
    pub(crate) deliveries: CommandHandler<WebhookDelivery, PgEventStore>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) targets: TargetPolicy,
    pub(crate) health: EndpointHealthBook,
    pub(crate) due_recheck: Duration,
}

impl JobHandler for MerchantWebhooks {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let handled = match event.stream_id.category() {
            Payment::CATEGORY => self.queue_delivery(&job, &event).await,
            WebhookDelivery::CATEGORY => attempt_owed(self, &job, &event).await,
            _ => Ok(JobOutcome::Done),
        };
        handled.unwrap_or_else(|outcome| outcome)
    }
}

/// What an attempt saw of the merchant's endpoint, for its health once the attempt is recorded.
pub(crate) struct EndpointObserved {
    merchant_id: MerchantId,
    endpoint_id: WebhookEndpointId,
    observation: Observation,
}

impl DeliveryAttempts for MerchantWebhooks {
    type Message = WebhookDelivery;
    type Id = WebhookDeliveryId;
    type Recorded = EndpointObserved;

    const QUEUE: &'static str = QUEUE;
    const OWING_EVENTS: &'static [&'static str] = &DELIVERY_EVENTS;
    const NOUN: &'static str = "delivery";

    fn records(&self) -> &CommandHandler<WebhookDelivery, PgEventStore> {
        &self.deliveries
    }

    fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn due_recheck(&self) -> Duration {
        self.due_recheck
    }

    fn is_pending(delivery: &WebhookDelivery) -> bool {
        delivery.status() == WebhookDeliveryStatus::Pending
    }

    fn next_attempt_at(delivery: &WebhookDelivery) -> Option<DateTime<Utc>> {
        delivery.next_attempt_at()
    }

    fn record_command_id(delivery_id: WebhookDeliveryId, version: u64) -> Uuid {
        ids::record_attempt_command(delivery_id, version)
    }

    fn is_already_recorded(refusal: &WebhookDeliveryError) -> bool {
        refusal.is_already_recorded()
    }

    /// POSTs the body signed with its endpoint's secrets, unless the endpoint is gone or
    /// disabled.
    async fn attempt(
        &self,
        job: &Job,
        delivery_id: WebhookDeliveryId,
        delivery: &WebhookDelivery,
        now: DateTime<Utc>,
    ) -> Result<(WebhookDeliveryCommand, EndpointObserved), JobOutcome> {
        let merchant = self
            .ledger
            .merchant(delivery.merchant_id())
            .await
            .map_err(|e| ledger_failure(job, "load the merchant", &e))?;
        let Some(endpoint) = merchant
            .webhook_endpoint(delivery.endpoint_id())
            .filter(|endpoint| endpoint.is_receiving())
        else {
            tracing::info!(%delivery_id, merchant_id = %merchant.id(), "webhook endpoint removed or disabled; delivery not attempted");
            return Err(JobOutcome::Done);
        };
        let (current, previous) = open_secrets(&self.keyring, endpoint, now).map_err(|why| {
            tracing::error!(%delivery_id, merchant_id = %merchant.id(), %why, "cannot sign the webhook; retrying");
            job.retry_transient()
        })?;
        let signing = Signing {
            current: &current,
            previous: &previous,
            at: now,
        };
        let attempt = attempt_delivery(self.targets, delivery, &signing, WEBHOOK_TIMEOUT).await;
        let observation = if attempt.outcome.is_success() {
            Observation::Succeeded(now)
        } else {
            Observation::Failed(now)
        };
        let observed = EndpointObserved {
            merchant_id: merchant.id(),
            endpoint_id: endpoint.id(),
            observation,
        };
        Ok((WebhookDeliveryCommand::RecordAttempt(attempt), observed))
    }

    async fn after_recorded(&self, event: &RecordedEvent, observed: EndpointObserved) {
        self.track_health(event, observed).await;
    }
}

/// The webhook event type merchants receive for a payment event type, if they receive one.
pub fn merchant_event_type(payment_event_type: &str) -> Option<&'static str> {
    PAYMENT_EVENTS
        .iter()
        .find(|(ours, _)| *ours == payment_event_type)
        .map(|(_, theirs)| *theirs)
}

impl MerchantWebhooks {
    /// The merchant whose payment it is.
    async fn merchant_of(&self, job: &Job, payment_id: PaymentId) -> Result<Merchant, JobOutcome> {
        let merchant_id = self
            .ledger
            .payment(payment_id)
            .await
            .map_err(|e| ledger_failure(job, "load the payment", &e))?
            .ok_or_else(|| JobOutcome::GiveUp(format!("unknown payment {payment_id}")))?
            .merchant_id();
        self.ledger
            .merchant(merchant_id)
            .await
            .map_err(|e| ledger_failure(job, "load the merchant", &e))
    }

    async fn queue_delivery(
        &self,
        job: &Job,
        event: &RecordedEvent,
    ) -> Result<JobOutcome, JobOutcome> {
        let Some(event_type) = merchant_event_type(&event.event_type) else {
            return Ok(JobOutcome::Done);
        };
        let payment_event: PaymentEvent = domain_event(event)?;
        let payment_id: PaymentId = stream_key(event)?;
        let merchant = self.merchant_of(job, payment_id).await?;
        if !merchant
            .webhook_endpoints()
            .iter()
            .any(WebhookEndpoint::is_receiving)
        {
            return Ok(JobOutcome::Done);
        }
        let payment = self
            .payment_as_of(job, payment_id, event.stream_version)
            .await?;
        let provider = self
            .ledger
            .gateway_of(merchant.id(), payment.gateway_id())
            .await
            .map_err(|e| ledger_failure(job, "load the gateway", &e))?
            .provider();
        let mut given_up = Vec::new();
        for (first_id, webhook_type) in webhooks_of(event, event_type, &payment, &payment_event) {
            let payload = webhook_body(webhook_type, &payment, provider, &payment_event);
            for endpoint in merchant.webhook_endpoints_for(webhook_type) {
                let queue = QueueWebhookDelivery {
                    delivery_id: delivery_id_to(
                        event,
                        first_id,
                        &merchant,
                        endpoint.id(),
                        webhook_type,
                    ),
                    merchant_id: merchant.id(),
                    payment_id: Some(payment_id),
                    event_type: webhook_type.to_owned(),
                    payload: payload.clone(),
                    endpoint_url: endpoint.url().to_owned(),
                    endpoint_id: endpoint.id(),
                    // The event's instant, not the clock's: a redelivery decides the same delivery.
                    at: event.recorded_at,
                };
                if let Err(reason) = self.queue_one(job, event, queue).await? {
                    given_up.push(reason);
                }
            }
        }
        if given_up.is_empty() {
            Ok(JobOutcome::Done)
        } else {
            Err(JobOutcome::GiveUp(given_up.join("; ")))
        }
    }

    /// Queues one delivery; answers why it was given up (a refusal, or an earlier try that
    /// queued other content), or the job's retry when the log failed.
    pub(crate) async fn queue_one(
        &self,
        job: &Job,
        event: &RecordedEvent,
        queue: QueueWebhookDelivery,
    ) -> Result<Result<(), String>, JobOutcome> {
        let delivery_id = queue.delivery_id;
        let stream = stream_of::<WebhookDelivery>(delivery_id)
            .map_err(|e| JobOutcome::GiveUp(e.to_string()))?;
        let context = caused_by(event, QUEUE, Some(ids::queue_delivery_command(delivery_id)));
        let command = WebhookDeliveryCommand::Queue(queue);
        match self.deliveries.execute(&stream, &command, &context).await {
            Ok(_) | Err(CommandError::Rejected(WebhookDeliveryError::AlreadyQueued)) => Ok(Ok(())),
            // Trying again changes neither a refusal nor an earlier try's other content.
            Err(
                error @ (CommandError::Rejected(_)
                | CommandError::Append(AppendError::IdempotencyConflict { .. })),
            ) => Ok(Err(format!("queue delivery {delivery_id}: {error}"))),
            Err(error) => {
                tracing::warn!(%delivery_id, %error, "could not queue the delivery; retrying");
                Err(job.retry_transient())
            }
        }
    }

    /// The payment as of the `version`-th event of its stream.
    async fn payment_as_of(
        &self,
        job: &Job,
        payment_id: PaymentId,
        version: u64,
    ) -> Result<Payment, JobOutcome> {
        let stream =
            stream_of::<Payment>(payment_id).map_err(|e| JobOutcome::GiveUp(e.to_string()))?;
        let mut state: Option<Payment> = None;
        let mut seen = 0;
        while seen < version {
            let batch = self
                .ledger
                .store()
                .read_stream(&stream, seen, MAX_READ_BATCH)
                .await
                .map_err(|error| {
                    tracing::warn!(%payment_id, %error, "could not read the payment; retrying");
                    job.retry_transient()
                })?;
            if batch.is_empty() {
                break;
            }
            for recorded in batch.iter().take_while(|e| e.stream_version <= version) {
                let event: PaymentEvent = domain_event(recorded)?;
                state = Payment::evolve(state, &event);
                seen = recorded.stream_version;
            }
            if batch.last().is_some_and(|e| e.stream_version >= version) {
                break;
            }
        }
        state.ok_or_else(|| JobOutcome::GiveUp(format!("unknown payment {payment_id}")))
    }

    /// Records what the attempt says about the endpoint and disables an endpoint the domain's
    /// policy says has failed for too long. Failures here are logged: the attempt itself is
    /// already recorded, and the next attempt observes the endpoint again.
    async fn track_health(&self, event: &RecordedEvent, observed: EndpointObserved) {
        let EndpointObserved {
            merchant_id,
            endpoint_id,
            observation,
        } = observed;
        let failing_since = match self.health.observe(endpoint_id, observation).await {
            Ok(failing_since) => failing_since,
            Err(error) => {
                tracing::warn!(%merchant_id, %endpoint_id, %error, "endpoint health not updated");
                return;
            }
        };
        // Judged as of the attempt, not of whenever this runs: a clock read here could already
        // lie past the five days and disable an endpoint after its first failure.
        let at = observation.at();
        let EndpointHealth::Disable { since } = endpoint_health(failing_since, at) else {
            return;
        };
        let disable = MerchantCommand::DisableFailingWebhookEndpoint {
            endpoint_id,
            failing_since: since,
            at,
        };
        let disabled = match stream_of::<Merchant>(merchant_id) {
            Ok(stream) => self
                .ledger
                .merchants()
                .execute(&stream, &disable, &caused_by(event, QUEUE, None))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match disabled {
            Ok(_) => {
                tracing::warn!(%merchant_id, %endpoint_id, %since, "webhook endpoint disabled after failing continuously");
                if let Err(error) = self.health.reset(endpoint_id).await {
                    tracing::warn!(%merchant_id, %endpoint_id, %error, "endpoint health not reset");
                }
            }
            Err(error) => {
                tracing::warn!(%merchant_id, %endpoint_id, %error, "could not disable the webhook endpoint")
            }
        }
    }
}

/// The delivery of `event`'s `webhook_type` webhook to `endpoint`: the first endpoint keeps
/// `first_id`, the id such a delivery had when merchants had one endpoint, so an event
/// redelivered across that change queues nothing new.
fn delivery_id_to(
    event: &RecordedEvent,
    first_id: WebhookDeliveryId,
    merchant: &Merchant,
    endpoint: WebhookEndpointId,
    webhook_type: &str,
) -> WebhookDeliveryId {
    if endpoint == first_endpoint_id(merchant.id()) {
        first_id
    } else {
        delivery_id_for_endpoint(event, endpoint, webhook_type)
    }
}

/// Vets the delivery's URL again (its host may resolve elsewhere since registration), then
/// sends one signed attempt to the vetted address only and observes the answer; a refused
/// target is an attempt that failed without leaving.
async fn attempt_delivery(
    targets: TargetPolicy,
    delivery: &WebhookDelivery,
    signing: &Signing<'_>,
    timeout: Duration,
) -> WebhookAttempt {
    let started = Instant::now();
    let client = match vet(delivery.endpoint_url(), targets).await {
        Ok(target) => pinned_client(&target, timeout)
            .map(|client| (client, target.url))
            .map_err(|_| "the HTTP client could not be built".to_owned()),
        Err(refusal) => Err(format!("target refused: {refusal}")),
    };
    let (outcome, retry_after_secs) = match client {
        Ok((client, url)) => post(&client, url, delivery, signing).await,
        Err(error) => (AttemptOutcome::TransportError { error }, None),
    };
    WebhookAttempt {
        outcome,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        retry_after_secs,
        jitter: Jitter::from_bps(rand::random_range(-Jitter::MAX_BPS..=Jitter::MAX_BPS)),
        at: signing.at,
    }
}

/// The secrets an attempt is signed with, opened for it only, and its instant.
struct Signing<'a> {
    current: &'a WebhookSecret,
    previous: &'a [WebhookSecret],
    at: DateTime<Utc>,
}

/// The endpoint's current secret and the previous one while its grace period lasts.
fn open_secrets(
    keyring: &Keyring,
    endpoint: &WebhookEndpoint,
    at: DateTime<Utc>,
) -> Result<(WebhookSecret, Vec<WebhookSecret>), String> {
    let mut opened = endpoint
        .secrets_valid_at(at)
        .into_iter()
        .map(|sealed| {
            let clear = keyring.open(sealed).map_err(|e| e.to_string())?;
            WebhookSecret::from_secret(&clear).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?
        .into_iter();
    let current = opened
        .next()
        .ok_or_else(|| "the endpoint has no webhook secret".to_owned())?;
    Ok((current, opened.collect()))
}

/// POSTs the signed body and observes the answer and its `Retry-After`.
async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    delivery: &WebhookDelivery,
    signing: &Signing<'_>,
) -> (AttemptOutcome, Option<u64>) {
    let body = delivery.payload().to_string().into_bytes();
    let signed = sign(
        signing.current,
        signing.previous,
        &delivery.id().to_string(),
        signing.at.timestamp(),
        &body,
    );
    let mut request = http.post(url).header(CONTENT_TYPE, "application/json");
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    match request.body(body).send().await {
        Ok(response) => {
            let status_code = response.status().as_u16();
            let retry_after_secs = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok());
            let body_excerpt = read_excerpt(response).await;
            (
                AttemptOutcome::Response {
                    status_code,
                    body_excerpt,
                },
                retry_after_secs,
            )
        }
        Err(error) => (
            AttemptOutcome::TransportError {
                error: transport_kind(&error).to_owned(),
            },
            None,
        ),
    }
}

/// The start of the answer's body, as text; what cannot be read in time is left out.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut read = Vec::new();
    while read.len() < MAX_RESPONSE_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    read.truncate(MAX_RESPONSE_READ_BYTES);
    String::from_utf8_lossy(&read).into_owned()
}

/// The kind of a transport failure, without reqwest's message (which quotes the URL, and a
/// merchant's URL may carry a token).
fn transport_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect not followed"
    } else if error.is_body() || error.is_decode() {
        "response could not be read"
    } else {
        "transport error"
    }
}

/// The webhooks a payment event sends, each with its delivery id: the event's own type, and
/// `payment.refunded` after a refund that brought the refunded total to the payment's amount.
fn webhooks_of(
    event: &RecordedEvent,
    event_type: &'static str,
    payment: &Payment,
    payment_event: &PaymentEvent,
) -> Vec<(WebhookDeliveryId, &'static str)> {
    let mut webhooks = vec![(delivery_id_for(event), event_type)];
    if let PaymentEvent::PaymentRefunded { refunded_total, .. } = payment_event
        && *refunded_total >= payment.amount()
    {
        webhooks.push((
            ids::delivery_id_of_type(event, FULLY_REFUNDED),
            FULLY_REFUNDED,
        ));
    }
    webhooks
}

/// The Standard Webhooks body of a payment event: `{"type", "timestamp", "data"}`. Amounts are
/// integer paise; `data.status` is the payment's status once this event happened.
fn webhook_body(
    event_type: &str,
    payment: &Payment,
    provider: Provider,
    event: &PaymentEvent,
) -> serde_json::Value {
    let mut data = serde_json::json!({
        "transaction_id": payment.id(),
        "order_id": payment.merchant_order_id(),
        "amount": payment.amount(),
        "currency": payment.currency(),
        "status": payment.status(),
        "gateway_id": payment.gateway_id(),
        "provider": provider,
        "initiated_at": payment.initiated_at(),
    });
    if !payment.details().notes.is_empty() {
        data["notes"] = serde_json::json!(payment.details().notes);
    }
    match event {
        PaymentEvent::PaymentSucceeded {
            commission,
            psp_payment_id,
            late_success,
            ..
        } => {
            data["commission"] = serde_json::json!(commission);
            data["psp_payment_id"] = serde_json::json!(psp_payment_id);
            data["late_success"] = serde_json::json!(late_success);
        }
        PaymentEvent::PaymentFailed {
            code, description, ..
        } => {
            data["error"] = serde_json::json!({ "code": code, "description": description });
        }
        PaymentEvent::PaymentRefunded {
            refund_id,
            amount,
            refunded_total,
            psp_refund_id,
            ..
        } => {
            let ours = refund_id.parse::<RefundId>().ok();
            data["refund"] = serde_json::json!({
                "refund_id": ours.and_then(|id| merchant_refund_id(payment, id)),
                "amount": amount,
                "refunded_total": refunded_total,
                "status": "succeeded",
                "psp_refund_id": psp_refund_id.as_deref().or(ours.is_none().then_some(refund_id.as_str())),
            });
        }
        PaymentEvent::RefundFailed {
            refund_id,
            amount,
            code,
            reason,
            ..
        } => {
            data["refund"] = serde_json::json!({
                "refund_id": merchant_refund_id(payment, *refund_id),
                "amount": amount,
                "refunded_total": payment.refunded(),
                "status": "failed",
                "error": { "code": code, "description": reason },
            });
        }
        _ => {}
    }
    serde_json::json!({ "type": event_type, "timestamp": event.at(), "data": data })
}

/// Longest wait for an endpoint's answer to a test event: within the API's request timeout.
pub const TEST_EVENT_TIMEOUT: Duration = Duration::from_secs(8);

/// A test event sent: its delivery (pending a retry when the attempt failed) and the attempt.
#[derive(Debug, Clone)]
pub struct TestEventSent {
    /// The delivery recorded for it.
    pub delivery: WebhookDelivery,
    /// What the endpoint answered.
    pub attempt: WebhookAttempt,
}

/// Why a test event could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TestEventError {
    /// The endpoint's secret could not be opened.
    #[error("cannot sign the test event: {0}")]
    Signing(String),
    /// The domain refused the delivery (e.g. a bad event type).
    #[error(transparent)]
    Refused(#[from] WebhookDeliveryError),
    /// The log failed.
    #[error("event log: {0}")]
    Store(String),
}

/// Sends a signed sample `event_type` event to `endpoint` through the delivery path: the
/// delivery is decided like any other, its first attempt made at once (SSRF checks, signing
/// with the endpoint's secrets) and recorded in the same append as its queueing, so the queue
/// never makes that attempt again; a failed attempt is retried on the usual schedule.
pub async fn send_test_event(
    ledger: &Ledger,
    keyring: &Keyring,
    targets: TargetPolicy,
    merchant: &Merchant,
    endpoint: &WebhookEndpoint,
    event_type: &str,
    context: &CommandContext,
) -> Result<TestEventSent, TestEventError> {
    let now = ledger.now();
    let sample_payment = PaymentId::new();
    let delivery_id = WebhookDeliveryId::new();
    let queue = WebhookDeliveryCommand::Queue(QueueWebhookDelivery {
        delivery_id,
        merchant_id: merchant.id(),
        // About no payment of ours: the body names a sample one, marked `"test": true`.
        payment_id: None,
        event_type: event_type.to_owned(),
        payload: sample_body(event_type, sample_payment, now),
        endpoint_url: endpoint.url().to_owned(),
        endpoint_id: endpoint.id(),
        at: now,
    });
    let mut events = WebhookDelivery::decide(&None, &queue)?;
    let queued = WebhookDelivery::fold(&events)
        .ok_or_else(|| TestEventError::Store("a queued delivery folds to nothing".into()))?;
    let (current, previous) =
        open_secrets(keyring, endpoint, now).map_err(TestEventError::Signing)?;
    let signing = Signing {
        current: &current,
        previous: &previous,
        at: now,
    };
    let attempt = attempt_delivery(targets, &queued, &signing, TEST_EVENT_TIMEOUT).await;
    let record = WebhookDeliveryCommand::RecordAttempt(attempt.clone());
    events.extend(WebhookDelivery::decide(&Some(queued), &record)?);
    let stream = stream_of::<WebhookDelivery>(delivery_id)
        .map_err(|e| TestEventError::Store(e.to_string()))?;
    let encoded =
        new_events(&stream, &events, context).map_err(|e| TestEventError::Store(e.to_string()))?;
    ledger
        .store()
        .append(stream, ExpectedVersion::NoStream, encoded)
        .await
        .map_err(|e| TestEventError::Store(e.to_string()))?;
    let delivery = WebhookDelivery::fold(&events)
        .ok_or_else(|| TestEventError::Store("a recorded delivery folds to nothing".into()))?;
    Ok(TestEventSent { delivery, attempt })
}

/// The body of a test event: the shape merchants receive for `event_type`, about a sample
/// payment, marked `"test": true`.
fn sample_body(event_type: &str, payment_id: PaymentId, at: DateTime<Utc>) -> serde_json::Value {
    let status = match event_type {
        "payment.created" => "created",
        "payment.failed" | "refund.failed" => "failed",
        "payment.refunded" => "refunded",
        _ => "succeeded",
    };
    serde_json::json!({
        "type": event_type,
        "timestamp": at,
        "test": true,
        "data": {
            "transaction_id": payment_id,
            "order_id": "TEST-ORDER",
            "amount": 10_000,
            "currency": "INR",
            "status": status,
            "provider": "sandbox",
            "initiated_at": at,
        },
    })
}

/// The merchant's id of one of our refunds of the payment.
fn merchant_refund_id(payment: &Payment, refund_id: RefundId) -> Option<&str> {
    payment
        .refund(refund_id)
        .map(|refund| refund.merchant_refund_id.as_str())
}

/// Why a delivery could not be sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// No delivery with this id.
    #[error("unknown webhook delivery {0}")]
    UnknownDelivery(WebhookDeliveryId),
    /// Only a delivery that was given up can be sent again.
    #[error("webhook delivery is {status:?}; only a given-up delivery can be resent")]
    NotGivenUp {
        /// Its status.
        status: WebhookDeliveryStatus,
    },
    /// The log failed.
    #[error("event log: {0}")]
    Store(String),
}

/// Sends a given-up delivery again from its first attempt (the domain's `Requeue`); the
/// merchant-webhooks queue makes the attempts.
pub async fn resend_delivery(
    ledger: &Ledger,
    delivery_id: WebhookDeliveryId,
    context: &CommandContext,
) -> Result<WebhookDelivery, ResendError> {
    let deliveries = CommandHandler::<WebhookDelivery, PgEventStore>::new(ledger.store().clone());
    let stream =
        stream_of::<WebhookDelivery>(delivery_id).map_err(|e| ResendError::Store(e.to_string()))?;
    let requeue = WebhookDeliveryCommand::Requeue { at: ledger.now() };
    match deliveries.execute(&stream, &requeue, context).await {
        Ok(executed) => executed
            .state
            .ok_or(ResendError::UnknownDelivery(delivery_id)),
        Err(CommandError::Rejected(WebhookDeliveryError::NotQueued)) => {
            Err(ResendError::UnknownDelivery(delivery_id))
        }
        Err(CommandError::Rejected(WebhookDeliveryError::NotGivenUp { status })) => {
            Err(ResendError::NotGivenUp { status })
        }
        Err(other) => Err(ResendError::Store(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::webhook_delivery::WebhookDeliveryEvent;
    use lightspeed_domain::{BasisPoints, Currency, GatewayId, MerchantId, Paise};

    fn paid() -> (Payment, PaymentEvent) {
        let at = DateTime::from_timestamp(1_795_000_000, 0).expect("instant");
        let gateway_id = GatewayId(uuid::Uuid::from_u128(2));
        let initiated = PaymentEvent::PaymentInitiated {
            payment_id: PaymentId(uuid::Uuid::from_u128(1)),
            merchant_id: MerchantId(uuid::Uuid::from_u128(3)),
            amount: Paise(49_900),
            currency: Currency::Inr,
            merchant_order_id: "ORD-1".into(),
            details: Default::default(),
            gateway_id,
            fee: BasisPoints::DEFAULT_FEE,
            at,
        };
        let succeeded = PaymentEvent::PaymentSucceeded {
            gateway_id,
            amount: Paise(49_900),
            fee: BasisPoints::DEFAULT_FEE,
            commission: Paise(1_747),
            psp_payment_id: "pay_1".into(),
            late_success: false,
            at,
        };
        let payment = Payment::fold([&initiated, &succeeded]).expect("payment");
        (payment, succeeded)
    }

    #[test]
    fn a_success_body_carries_amounts_in_paise_and_the_commission() {
        let (payment, succeeded) = paid();
        let body = webhook_body("payment.succeeded", &payment, Provider::Sandbox, &succeeded);
        assert_eq!(body["type"], "payment.succeeded");
        assert_eq!(body["timestamp"], "2026-11-18T11:06:40Z");
        let data = &body["data"];
        assert_eq!(
            data["transaction_id"],
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(data["order_id"], "ORD-1");
        assert_eq!(data["amount"], 49_900);
        assert_eq!(data["currency"], "INR");
        assert_eq!(data["status"], "succeeded");
        assert_eq!(data["provider"], "sandbox");
        assert_eq!(data["commission"], 1_747);
        assert_eq!(data["psp_payment_id"], "pay_1");
        assert!(data.get("notes").is_none());
    }

    fn recorded(event: &PaymentEvent) -> RecordedEvent {
        RecordedEvent {
            log_position: lightspeed_eventstore::LogPosition::START,
            event_id: uuid::Uuid::from_u128(9),
            stream_id: stream_of::<Payment>(PaymentId(uuid::Uuid::from_u128(1))).expect("stream"),
            stream_version: 3,
            event_type: "PaymentRefunded".to_owned(),
            schema_version: 1,
            payload: lightspeed_eventstore::Payload::of(event).expect("payload"),
            metadata: Default::default(),
            recorded_at: event.at(),
            row_hash: [0; 32],
        }
    }

    #[test]
    fn a_refund_sends_refund_succeeded_and_payment_refunded_only_once_refunded_in_full() {
        let (payment, succeeded) = paid();
        let refunded = |total: i64| PaymentEvent::PaymentRefunded {
            refund_id: "pay_ext_1".into(),
            amount: Paise(total),
            refunded_total: Paise(total),
            commission_reversed: Paise::ZERO,
            psp_refund_id: None,
            at: succeeded.at(),
        };
        let partial = refunded(100);
        let partial_webhooks =
            webhooks_of(&recorded(&partial), "refund.succeeded", &payment, &partial);
        assert_eq!(
            partial_webhooks.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
            ["refund.succeeded"]
        );
        let full = refunded(49_900);
        let full_webhooks = webhooks_of(&recorded(&full), "refund.succeeded", &payment, &full);
        assert_eq!(
            full_webhooks.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
            ["refund.succeeded", "payment.refunded"]
        );
        assert_ne!(full_webhooks[0].0, full_webhooks[1].0);
        let body = webhook_body("refund.succeeded", &payment, Provider::Sandbox, &partial);
        assert_eq!(body["data"]["refund"]["psp_refund_id"], "pay_ext_1");
        assert_eq!(body["data"]["refund"]["refund_id"], serde_json::Value::Null);
        assert_eq!(body["data"]["refund"]["refunded_total"], 100);
    }

    #[test]
    fn event_type_names_exist_in_the_domain() {
        for (ours, _) in PAYMENT_EVENTS {
            assert!(PaymentEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
        for ours in DELIVERY_EVENTS {
            assert!(WebhookDeliveryEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
        assert_eq!(merchant_event_type("PaymentRerouted"), None);
        assert_eq!(
            merchant_event_type("PaymentRefunded"),
            Some("refund.succeeded")
        );
        assert_eq!(merchant_event_type("RefundFailed"), Some("refund.failed"));
    }
}
